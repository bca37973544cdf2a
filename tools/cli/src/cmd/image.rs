//! `kmodfarm image build DISTRO...`: the build roots (and, with --podman,
//! their podman images) that `kmodfarm build` compiles in.

use std::path::PathBuf;

use kmodfarm_builder::image::RootRecipe;
use kmodfarm_builder::{cache_dir, sources};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Make (or find cached) the root file system of each distro.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Distro ids (debian-12, debian-13, …).
    #[arg(required = true, value_name = "DISTRO")]
    ids: Vec<String>,
    /// Archive root for every suite [default: this host's apt sources, rewritten].
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// The host's apt sources: /etc/apt, or a directory of deb822 .sources and one-line .list files.
    #[arg(long, value_name = "DIR", default_value = "/etc/apt/sources.list.d")]
    apt_sources: PathBuf,
    /// Cache directory [default: $KMODFARM_CACHE or ~/.cache/kmodfarm].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Also import each root into podman as an image.
    #[arg(long)]
    podman: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let Action::Build(args) = args.action;
    let set = ctx.distro_set()?;
    let cache = args.cache_dir.unwrap_or_else(cache_dir::default_cache_dir);
    for id in &args.ids {
        let distro = kmodfarm_builder::plan::find_distro(&set, id)?;
        RootRecipe::check_supported(distro)?;
        let text = sources::sources_for(distro, args.mirror.as_deref(), &args.apt_sources)?;
        let recipe = RootRecipe::for_distro(distro, text)?;
        eprintln!("{id}: root {} ({})", recipe.id(), recipe.packages.join(" "));
        let info = recipe.ensure(&cache, &distro.toolchain.compiler)?;
        if args.podman {
            let image = kmodfarm_builder::runtime::podman::ensure_image(&info)?;
            eprintln!("{id}: podman image {image}");
        }
        println!("{}\t{}\t{}", id, info.path.display(), info.compiler);
    }
    Ok(())
}
