//! `kmodfarm merge DIR... --out DIR`: one build output from shard outputs.

use std::path::PathBuf;

use kmodfarm_builder::{merge, report};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Shard output directories (each with its records.json).
    #[arg(required = true, value_name = "DIR")]
    inputs: Vec<PathBuf>,
    /// The merged output; must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(_ctx: &Context, args: Args) -> Result {
    let records = merge::merge(&args.inputs, &args.out)?;
    print!("{}", report::table(&records));
    Ok(())
}
