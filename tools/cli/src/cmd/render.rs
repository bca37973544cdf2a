//! `kmodfarm render`: write dkms.conf, the package scripts, kernel hooks and
//! boot files for the manifest into a directory.

use std::path::PathBuf;

use kmodfarm_render::RenderOptions;

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write [default: kmodfarm-out/render beside the manifest]. An
    /// existing directory is replaced only if kmodfarm rendered it (or it is empty).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A directory of *.tera files that replace the built-in templates of the same name.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.checked_manifest(args.templates.clone())?;
    let out = args
        .out
        .unwrap_or_else(|| kmodfarm_render::default_out_dir(&manifest));
    let opts = RenderOptions {
        templates_dir: args.templates,
    };
    let files = kmodfarm_render::render_to_dir(&manifest, &opts, &out)?;
    println!("rendered {} files into {}", files.len(), out.display());
    Ok(())
}
