//! `kmodfarm matrix`: the build matrix split into shards, as a GitHub
//! Actions matrix, a GitLab parallel:matrix, or a Kubernetes Indexed Job.

use kmodfarm_builder::ci::{self, K8sJob};

use super::{Context, Result};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Github,
    Gitlab,
    K8s,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum)]
    format: Format,
    /// Number of shards [default: one per kernel].
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    #[command(flatten)]
    matrix: super::build::MatrixArgs,
    /// k8s: the image the pods run (with kmodfarm, bubblewrap and mmdebstrap).
    #[arg(long, default_value = "kmodfarm:latest")]
    image: String,
    /// k8s: the PersistentVolumeClaim with the module source, matrix.json and the outputs.
    #[arg(long, default_value = "kmodfarm-work")]
    claim: String,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let set = ctx.distro_set()?;
    let entries = args.matrix.entries(&set)?;
    let shards = args.shards.unwrap_or(entries.len());
    if shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    let text = match args.format {
        Format::Github => format!("{}\n", ci::github(&entries, shards)),
        Format::Gitlab => ci::gitlab(shards),
        Format::K8s => {
            let manifest = ctx.load_manifest()?;
            let job = K8sJob {
                name: format!("kmodfarm-builder-{}", manifest.package.name),
                image: args.image,
                claim: args.claim,
            };
            ci::k8s(&job, shards)
        }
    };
    print!("{text}");
    Ok(())
}
