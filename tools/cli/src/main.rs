//! The `kmodfarm` binary: parses arguments, calls a stage, prints. Stages
//! never print; errors are rendered here for people.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod report;

#[derive(Parser)]
#[command(
    name = "kmodfarm",
    version,
    about = "Ship an out-of-tree Linux kernel module to a fleet: DKMS packages, prebuilt modules, a signed repository"
)]
struct Cli {
    /// The module's manifest.
    #[arg(
        long,
        short = 'm',
        global = true,
        default_value = "kmodfarm.toml",
        env = "KMODFARM_MANIFEST"
    )]
    manifest: PathBuf,
    /// A directory of distro definitions that add to or replace the built-in ones.
    #[arg(long, global = true, env = "KMODFARM_DISTROS")]
    distros: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a kmodfarm.toml: a fresh one, or imported from an existing DKMS tree.
    Init(cmd::init::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cmd::Context {
        manifest: cli.manifest,
        distros: cli.distros,
    };
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(&ctx, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::print(&*e);
            ExitCode::FAILURE
        }
    }
}
