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
    /// List the kernels of the target distros in the manifest's range, from their package indexes.
    Kernels(cmd::kernels::Args),
    /// Render dkms.conf, package scripts, kernel hooks and boot files from the templates.
    Render(cmd::render::Args),
    /// Check the manifest, the templates and the dkms.conf they render (or any dkms.conf).
    Lint(cmd::lint::Args),
    /// Write the <name>-dkms .deb/.rpm, and prebuilt per-kernel packages from a build's output.
    Package(cmd::package::Args),
    /// Build roots: make the per-distro root file systems builds run in.
    Image(cmd::image::Args),
    /// Build the module for every kernel of the matrix, in parallel containers.
    Build(cmd::build::Args),
    /// Boot each kernel of a build's output under QEMU with its module loaded, and check it.
    BootTest(cmd::boot_test::Args),
    /// Print the build matrix as a CI job matrix or a Kubernetes Indexed Job.
    Matrix(cmd::matrix::Args),
    /// Combine the outputs of sharded builds into one.
    Merge(cmd::merge::Args),
    /// Make an OpenPGP key pair to sign the repository with.
    Keygen(cmd::keygen::Args),
    /// Publish packages and builds as a signed apt repository with the prebuilt index.
    Publish(cmd::publish::Args),
    /// Serve a published repository over HTTP (tests, demos, air-gapped sites).
    Serve(cmd::serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cmd::Context {
        manifest: cli.manifest,
        distros: cli.distros,
    };
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(&ctx, args),
        Command::Kernels(args) => cmd::kernels::run(&ctx, args),
        Command::Image(args) => cmd::image::run(&ctx, args),
        Command::Build(args) => cmd::build::run(&ctx, args),
        Command::BootTest(args) => cmd::boot_test::run(&ctx, args),
        Command::Matrix(args) => cmd::matrix::run(&ctx, args),
        Command::Merge(args) => cmd::merge::run(&ctx, args),
        Command::Serve(args) => cmd::serve::run(&ctx, args),
        Command::Render(args) => cmd::render::run(&ctx, args),
        Command::Lint(args) => cmd::lint::run(&ctx, args),
        Command::Package(args) => cmd::package::run(&ctx, args),
        Command::Keygen(args) => cmd::keygen::run(&ctx, args),
        Command::Publish(args) => cmd::publish::run(&ctx, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::print(&*e);
            ExitCode::FAILURE
        }
    }
}
