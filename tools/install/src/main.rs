//! `kmodfarm-host`: the target-side program (see the crate's lib.rs). Parses
//! arguments, asks the one question (DKMS or not), prints; the library does
//! the rest.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kmodfarm_install::plan::{Decision, DkmsChoice, Plan};
use kmodfarm_install::{
    depmod, detect, doctor, execute, fetch, load_config, only_module, uninstall, Error,
    HttpFetcher, Session, SystemHost, EXIT_NO_MODULE,
};

#[derive(Parser)]
#[command(
    name = "kmodfarm-host",
    version,
    about = "Install and keep a kernel module on this host: prebuilt from its signed repository, or built by DKMS"
)]
struct Cli {
    /// The module (its /etc/kmodfarm-host/<name>.toml); default: the only one configured.
    #[arg(long, global = true)]
    module: Option<String>,
    /// Use this repository instead of the configured one.
    #[arg(long, global = true)]
    repo: Option<String>,
    /// Trust this CA bundle (PEM) for the repository's TLS certificate, besides the system's.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the module for a kernel (default: the running one).
    Install {
        /// Build with DKMS without asking when there is no prebuilt module; later kernels may be built too.
        #[arg(long)]
        enable_dkms: bool,
        #[command(flatten)]
        target: KernelTarget,
    },
    /// Make sure a kernel has the module (the boot unit runs this): staged or prebuilt, DKMS when the host opted in.
    Ensure {
        #[command(flatten)]
        target: KernelTarget,
    },
    /// Download and verify the prebuilt module of a newly installed kernel (the kernel hook runs this; it never calls the package manager).
    Stage { kernel: String },
    /// Check every installed kernel and the boot set-up.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Bring kmod's index of KERNEL up to date after FILES were placed under /lib/modules/KERNEL (the prebuilt packages' scripts run this): the module appended exactly as depmod would write it when that can be shown, else `depmod -a`.
    Reindex { kernel: String, files: Vec<PathBuf> },
    /// Remove everything installed for the module.
    Uninstall {
        /// Keep the kmodfarm-host package itself.
        #[arg(long)]
        keep_program: bool,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

/// What `install` and `ensure` act on, and how.
#[derive(Args)]
struct KernelTarget {
    /// The kernel release (default: the running kernel).
    #[arg(long)]
    kernel: Option<String>,
    /// Do not load the module now.
    #[arg(long)]
    no_load: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("kmodfarm-host: error: {e}");
            ExitCode::from(1)
        }
    }
}

const PROMPT_YES: [&str; 2] = ["y", "yes"];

/// Asks the DKMS question; anything but y/yes, an empty line, a closed
/// stdin or no terminal is No.
fn ask_dkms(kernel: &str, name: &str) -> bool {
    print!("Sorry, the current kernel version {kernel} is not found, would you like to build {name} with DKMS? (y/n) [n]: ");
    let _ = std::io::stdout().flush();
    if !std::io::stdin().is_terminal() {
        println!();
        println!("(no terminal to answer on: No)");
        return false;
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => {
            println!();
            false
        }
        Ok(_) => PROMPT_YES.contains(&line.trim().to_ascii_lowercase().as_str()),
    }
}

fn print_plan(plan: &Plan, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(plan).expect("plans serialize")
        );
        return;
    }
    println!(
        "{}: kernel {} on {}/{}: {}",
        plan.module,
        plan.kernel,
        plan.distro,
        plan.arch,
        describe(&plan.decision)
    );
    for step in &plan.steps {
        println!(
            "  - {}",
            serde_json::to_string(step).expect("steps serialize")
        );
    }
    for note in &plan.notes {
        println!("  note: {note}");
    }
}

fn describe(decision: &Decision) -> String {
    match decision {
        Decision::AlreadyInstalled { route } => format!("already installed ({route})"),
        Decision::Prebuilt {
            version,
            route,
            from,
        } => format!("prebuilt {version}, {route}, from the {from}"),
        Decision::Dkms { package, why } => format!("DKMS build with {package} ({why})"),
        Decision::AskDkms { why } | Decision::NoModule { why } => {
            format!("no prebuilt module: {why}")
        }
        Decision::Refuse { why } => format!("refused: {why}"),
    }
}

fn no_module_message(name: &str, kernel: &str, why: &str) {
    println!("{name}: no module for kernel {kernel}: {why}; nothing was installed.");
    println!(
        "To build it with DKMS later, run: kmodfarm-host install --kernel {kernel} --enable-dkms"
    );
}

fn run(cli: Cli) -> Result<u8, Error> {
    let host = SystemHost::new();
    // Not about one configured module: a package script runs it.
    if let Command::Reindex { kernel, files } = &cli.command {
        println!(
            "{}",
            depmod::reindex(&host, kernel, files)?.describe(kernel)
        );
        return Ok(0);
    }
    let name = match &cli.module {
        Some(name) => name.clone(),
        None => only_module(&host)?,
    };
    let mut config = load_config(&host, &name)?;
    if let Some(repo) = &cli.repo {
        config.repo = repo.trim_end_matches('/').to_string();
    }
    let ca = cli
        .ca
        .clone()
        .or_else(|| config.ca.as_ref().map(PathBuf::from));
    let fetcher = HttpFetcher::new(ca.as_deref(), fetch::Retry::default())?;
    let session = Session::open(config, &host, &fetcher, std::env::consts::ARCH)?;
    let kernel_or_running = |k: Option<String>| k.map_or_else(detect::running_kernel, Ok);
    match cli.command {
        Command::Install {
            enable_dkms,
            target,
        } => {
            let KernelTarget {
                kernel,
                no_load,
                dry_run,
                json,
            } = target;
            let kernel = kernel_or_running(kernel)?;
            let first = if enable_dkms {
                DkmsChoice::Build
            } else {
                DkmsChoice::Ask
            };
            let (mut plan, _) = session.plan_install(&kernel, no_load, first)?;
            if let Decision::AskDkms { why } = &plan.decision {
                if dry_run {
                    print_plan(&plan, json);
                    return Ok(EXIT_NO_MODULE);
                }
                if !ask_dkms(&kernel, &name) {
                    no_module_message(&name, &kernel, why);
                    return Ok(EXIT_NO_MODULE);
                }
                plan = session.plan_install(&kernel, no_load, DkmsChoice::Build)?.0;
            }
            finish(&session, plan, dry_run, json)
        }
        Command::Ensure { target } => {
            let (no_load, dry_run, json) = (target.no_load, target.dry_run, target.json);
            let kernel = target.kernel;
            let kernel = kernel_or_running(kernel)?;
            let plan = session.plan_ensure(&kernel, no_load)?;
            if let Decision::NoModule { why } = &plan.decision {
                if dry_run {
                    print_plan(&plan, json);
                } else {
                    println!("{name}: no module for kernel {kernel}: {why}, and this host did not opt into DKMS builds (install --enable-dkms).");
                }
                return Ok(EXIT_NO_MODULE);
            }
            let staged = plan
                .steps
                .iter()
                .any(|s| matches!(s, kmodfarm_install::plan::Step::Verify { .. }));
            let code = finish(&session, plan, dry_run, json)?;
            if staged && !dry_run {
                let dir = session.state.staged_dir(&kernel);
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(code)
        }
        Command::Stage { kernel } => {
            match session.stage(&kernel)? {
                Ok(files) => {
                    let files: Vec<String> =
                        files.iter().map(|f| f.display().to_string()).collect();
                    println!("{name}: staged the prebuilt module{} for {kernel} ({}); {} placed at the next boot or `kmodfarm-host ensure --kernel {kernel}`", if files.len() == 1 { "" } else { "s" }, files.join(", "), if files.len() == 1 { "it is" } else { "they are" });
                }
                Err(why) => println!(
                    "{name}: {why}; the boot unit will {}",
                    if session.state.dkms_opted_in() {
                        "build it with DKMS"
                    } else {
                        "report it (this host did not opt into DKMS)"
                    }
                ),
            }
            Ok(0)
        }
        Command::Doctor { json } => {
            let report = doctor::doctor(&session);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("reports serialize")
                );
            } else {
                for k in &report.kernels {
                    println!(
                        "{}{}: image {}, headers {}, module {}{}",
                        k.kernel,
                        if k.running { " (running)" } else { "" },
                        yes_no(k.image),
                        yes_no(k.headers),
                        k.module_file.as_deref().unwrap_or("missing"),
                        match (&k.version, &k.route) {
                            (Some(v), Some(r)) => format!(
                                " {v}, {r}, {}, {}",
                                if k.signed { "signed" } else { "unsigned" },
                                if k.loaded { "loaded" } else { "not loaded" }
                            ),
                            _ => String::new(),
                        }
                    );
                }
                println!(
                    "load at boot: {}",
                    if report.load_at_boot.is_empty() {
                        "no entry".to_string()
                    } else {
                        report.load_at_boot.join(", ")
                    }
                );
                println!("index: {}", report.index);
                for p in &report.problems {
                    println!(
                        "PROBLEM {}{}: {}\n  fix: {}",
                        p.id,
                        p.kernel
                            .as_deref()
                            .map(|k| format!(" ({k})"))
                            .unwrap_or_default(),
                        p.message,
                        p.fix
                    );
                }
                if report.ok {
                    println!("{}: all is well", report.module);
                }
            }
            Ok(if report.ok { 0 } else { 1 })
        }
        Command::Reindex { .. } => unreachable!("answered before a module's settings are read"),
        Command::Uninstall {
            keep_program,
            dry_run,
            json,
        } => {
            let undo = uninstall::plan(&session, !keep_program)?;
            if dry_run || json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&undo).expect("plans serialize")
                );
                if dry_run {
                    return Ok(0);
                }
            }
            for line in uninstall::execute(&host, &undo)? {
                println!("{name}: {line}");
            }
            Ok(0)
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn finish(session: &Session<'_>, plan: Plan, dry_run: bool, json: bool) -> Result<u8, Error> {
    match &plan.decision {
        Decision::Refuse { why } => {
            return Err(Error::OutOfRange {
                name: plan.module.clone(),
                kernel: plan.kernel.clone(),
                reason: why.clone(),
            })
        }
        Decision::NoModule { why } | Decision::AskDkms { why } => {
            no_module_message(&plan.module, &plan.kernel, why);
            return Ok(EXIT_NO_MODULE);
        }
        _ => {}
    }
    if dry_run {
        print_plan(&plan, json);
        return Ok(0);
    }
    if !json {
        print_plan(&plan, false);
    }
    let report = execute::execute(&plan, session.host, session.fetcher, &session.state)?;
    if json {
        println!("{}", serde_json::json!({"plan": plan, "report": report}));
    } else {
        for line in report {
            println!("{}: {line}", plan.module);
        }
        println!("{}: kernel {} has its module", plan.module, plan.kernel);
    }
    Ok(0)
}
