//! `kmodfarm build`: the module for every kernel of a matrix, in parallel
//! containers, with a live display on a terminal and plain lines in CI, a
//! final table, and JSON / JUnit reports.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use kmodfarm_builder::events::Event;
use kmodfarm_builder::guests::{BootOptions, GuestOptions, PlaceholderMaps};
use kmodfarm_builder::plan::{self, Shard};
use kmodfarm_builder::qemu::AccelChoice;
use kmodfarm_builder::runtime::{self, RuntimeKind};
use kmodfarm_builder::schedule::{self, Options};
use kmodfarm_builder::{cache_dir, report};
use kmodfarm_model::record::MatrixEntry;

use super::{Context, Result};

/// Where the matrix comes from (shared with `kmodfarm matrix`).
#[derive(clap::Args)]
pub struct MatrixArgs {
    /// Kernel to build for, as DISTRO:RELEASE, or RELEASE with one --distro (repeatable).
    #[arg(long = "kernel", value_name = "[DISTRO:]RELEASE")]
    kernels: Vec<String>,
    /// A matrix as JSON: the list `kmodfarm kernels --json` prints.
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Only these distros of the matrix; the distro of bare --kernel releases (repeatable).
    #[arg(long = "distro", value_name = "ID")]
    distro_filter: Vec<String>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    matrix: MatrixArgs,
    /// Builds at once [default: the number of cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
    /// Where builds run [default: podman if it works, else bwrap, else the host].
    #[arg(long, value_name = "podman|docker|bwrap|host")]
    runtime: Option<RuntimeKind>,
    /// Build only shard I of N of the matrix (1-based), e.g. 2/3.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Output directory: <distro>/<arch>/<kernel>/ with <module>.ko.zst, <module>.build.log and record.json, and records.json, which keeps earlier runs' other kernels.
    #[arg(long, short = 'o', value_name = "DIR", default_value = "kmodfarm-out")]
    out: PathBuf,
    #[command(flatten)]
    roots: RootArgs,
    /// Print the plan (jobs and skips) and build nothing.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Write every record (a JSON list of build records) here.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Write a JUnit XML report here (a test case per kernel).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Exit 0 even when kernels failed (the reports still say so).
    #[arg(long)]
    exit_zero_on_failure: bool,
    #[command(flatten)]
    guests: GuestArgs,
    /// Boot each built kernel under QEMU with the module loaded, run the manifest's [test] smoke check, scan the console.
    #[arg(long)]
    boot_test: bool,
}

/// QEMU guests: System.map boots and boot tests (shared with `kmodfarm boot-test`).
#[derive(clap::Args)]
pub struct GuestArgs {
    /// QEMU accelerator [default: auto: KVM when a probe boot works, else TCG].
    #[arg(long, value_name = "auto|kvm|tcg", default_value = "auto")]
    accel: AccelChoice,
    /// Seconds one boot test may take before QEMU is killed [default: the manifest's [test] timeout, else 120].
    #[arg(long, value_name = "SECONDS")]
    boot_timeout: Option<u64>,
    /// A failed boot test is reported but does not fail the kernel (its module stays in the output).
    #[arg(long)]
    keep_going: bool,
    /// The System.map to use for one kernel, checked against its image (repeatable).
    #[arg(long = "system-map", value_name = "DISTRO:RELEASE=FILE")]
    system_maps: Vec<String>,
    /// Where a Debian kernel's real System.map comes from: `boot` its image in QEMU and read /proc/kallsyms, or the `dbg` package (about 1 GB).
    #[arg(long, value_name = "boot|dbg", default_value = "boot")]
    system_map_from: String,
}

impl GuestArgs {
    pub fn keep_going(&self) -> bool {
        self.keep_going
    }

    /// The builder's guest options; `boot` says whether to boot-test.
    pub fn options(&self, set: &kmodfarm_model::DistroSet, boot: bool) -> Result<GuestOptions> {
        let placeholder_maps = match self.system_map_from.as_str() {
            "boot" => PlaceholderMaps::Boot,
            "dbg" => PlaceholderMaps::DebugPackage,
            other => {
                return Err(format!("--system-map-from {other}: use boot or dbg").into());
            }
        };
        let mut supplied_maps = std::collections::BTreeMap::new();
        for arg in &self.system_maps {
            let (kernel, file) = arg
                .split_once('=')
                .ok_or_else(|| format!("--system-map {arg}: write DISTRO:RELEASE=FILE"))?;
            let entry = plan::entries_from_kernels(set, None, &[kernel.to_string()])?.remove(0);
            let file = PathBuf::from(file);
            if !file.is_file() {
                return Err(format!("--system-map {arg}: {} is not a file", file.display()).into());
            }
            supplied_maps.insert(entry.key(), file);
        }
        Ok(GuestOptions {
            accel: self.accel,
            boot: boot.then(|| BootOptions {
                timeout: self.boot_timeout.map(std::time::Duration::from_secs),
                keep_going: self.keep_going,
            }),
            placeholder_maps,
            supplied_maps,
        })
    }
}

impl MatrixArgs {
    /// The matrix from --matrix and --kernel, filtered by --distro.
    pub fn entries(&self, set: &kmodfarm_model::DistroSet) -> Result<Vec<MatrixEntry>> {
        matrix(self, set)
    }

    /// A kernel named with --kernel is one the user asked for, not one a
    /// matrix or discovery turned up: outside the manifest's range it is
    /// an error, not a skip.
    fn check_named_kernels(
        &self,
        set: &kmodfarm_model::DistroSet,
        manifest: &kmodfarm_model::Manifest,
    ) -> Result {
        let default = match self.distro_filter.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let outside: Vec<String> = plan::entries_from_kernels(set, default, &self.kernels)?
            .iter()
            .filter_map(|e| {
                manifest
                    .kernels
                    .exclusion_reason(&e.kernel_release)
                    .map(|why| format!("--kernel {}:{}: {why}", e.distro, e.kernel_release))
            })
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}
the [kernels] range of {} excludes {}: drop {} or widen the range (kernels of a --matrix file outside the range are skipped)",
            outside.join("\n"),
            manifest.path.display(),
            if outside.len() == 1 { "this kernel" } else { "these kernels" },
            if outside.len() == 1 { "it" } else { "them" },
        )
        .into())
    }
}

fn matrix(args: &MatrixArgs, set: &kmodfarm_model::DistroSet) -> Result<Vec<MatrixEntry>> {
    let mut entries: Vec<MatrixEntry> = Vec::new();
    if let Some(path) = &args.matrix {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let parsed: Vec<MatrixEntry> = serde_json::from_str(&text).map_err(|e| format!("{}: not a matrix (a JSON list of entries as `kmodfarm kernels --json` prints): {e}", path.display()))?;
        entries.extend(parsed);
    }
    let default = match args.distro_filter.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    entries.extend(plan::entries_from_kernels(set, default, &args.kernels)?);
    for id in &args.distro_filter {
        plan::find_distro(set, id)?;
    }
    if !args.distro_filter.is_empty() {
        entries.retain(|e| args.distro_filter.contains(&e.distro));
    }
    if entries.is_empty() && args.matrix.is_none() && args.kernels.is_empty() {
        return Err("no kernels: give --kernel DISTRO:RELEASE, or --matrix FILE from `kmodfarm kernels --json`".into());
    }
    if entries.is_empty() {
        let given = match (&args.matrix, args.kernels.is_empty()) {
            (Some(path), true) => format!("--matrix {}", path.display()),
            (Some(path), false) => format!("--kernel and --matrix {}", path.display()),
            (None, _) => "--kernel".to_string(),
        };
        return Err(if args.distro_filter.is_empty() {
            format!("no kernels to build: {given} lists none; give --kernel DISTRO:RELEASE, or a matrix from `kmodfarm kernels --json`")
        } else {
            format!(
                "no kernels to build: the kernels of {given} are none of --distro {}",
                args.distro_filter.join(", ")
            )
        }
        .into());
    }
    Ok(entries)
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.checked_manifest(None)?;
    let set = ctx.distro_set()?;
    let entries = if args.matrix.matrix.is_none() && args.matrix.kernels.is_empty() {
        // No matrix given: discover it, as `kmodfarm kernels` would, for
        // the manifest's target distros (or the --distro ones).
        let ids = if args.matrix.distro_filter.is_empty() {
            manifest.distros.clone()
        } else {
            args.matrix.distro_filter.clone()
        };
        let found =
            super::kernels::discover(ctx, &manifest, &ids, &super::kernels::Args::defaults())?;
        if found.entries.is_empty() {
            return Err(format!("no kernels of {} in the manifest's range", ids.join(", ")).into());
        }
        found.entries
    } else {
        args.matrix.check_named_kernels(&set, &manifest)?;
        args.matrix.entries(&set)?
    };
    let plan = plan::plan(&manifest, &set, &entries, args.shard)?;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            for job in &plan.jobs {
                println!(
                    "build  {}  ({}, {})",
                    job.entry.key(),
                    job.compiler,
                    job.products
                        .iter()
                        .map(|p| p.artifact.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            for skip in &plan.skips {
                println!("skip   {}  {}", skip.entry.key(), skip.reason);
            }
        }
        return Ok(());
    }

    let tty = std::io::stderr().is_terminal();
    let warn = |message: String| eprintln!("warning: {message}");
    let runtime = runtime::select(args.runtime, &warn)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = tty.then(|| {
        let bar = ProgressBar::new(plan.jobs.len() as u64 * manifest.modules.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let bar_lock = Mutex::new(());
    let events = |event: Event<'_>| {
        let _guard = bar_lock.lock();
        let line = match &event {
            Event::Planned { jobs: n, skips } => format!(
                "{n} kernel(s) to build, {skips} skipped, {} at once, runtime {:?}",
                jobs,
                runtime.kind()
            ),
            Event::Root {
                distro,
                root_id,
                making: true,
            } => format!("{distro}: making root {root_id} (mmdebstrap, a few minutes)"),
            Event::Root {
                distro,
                root_id,
                making: false,
            } => format!("{distro}: root {root_id}"),
            Event::FetchingHeaders { key } => format!("{key}: fetching headers"),
            Event::SystemMap { key } => {
                format!("{key}: System.map (cached, from a package, or a QEMU boot)")
            }
            Event::BootTesting { key } => format!("{key}: boot test"),
            Event::Started { key } => format!("{key}: building"),
            Event::Finished { record } => {
                if let Some(bar) = &bar {
                    if !matches!(
                        record.outcome,
                        kmodfarm_model::record::BuildOutcome::Skipped { .. }
                    ) {
                        bar.inc(1);
                    }
                }
                format!(
                    "{}/{}/{} {}: {}",
                    record.distro,
                    record.arch,
                    record.kernel_release,
                    record.module,
                    report::status(&record.outcome)
                )
            }
            Event::Warning { message } => format!("warning: {message}"),
        };
        match &bar {
            Some(bar) => {
                bar.set_message(line.clone());
                if matches!(
                    event,
                    Event::Finished { .. } | Event::Root { .. } | Event::Warning { .. }
                ) {
                    bar.println(line);
                }
            }
            None => eprintln!("{line}"),
        }
    };
    let options = Options {
        jobs,
        runtime: runtime.as_ref(),
        cache: args.roots.cache(),
        out: args.out.clone(),
        mirror: args.roots.mirror.clone(),
        apt_sources: args.roots.apt_sources.clone(),
        guests: args.guests.options(&set, args.boot_test)?,
    };
    let records = schedule::execute(&plan, &manifest, &set, &options, &events)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print!("{}", report::table(&records));
    if let Some(path) = &args.report_json {
        std::fs::write(path, serde_json::to_string_pretty(&records)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        let suite = format!("{} {}", manifest.package.name, manifest.package.version);
        std::fs::write(path, report::junit(&suite, &records))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let failed: Vec<String> = records
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                kmodfarm_model::record::BuildOutcome::Failed { .. }
            )
        })
        .map(|r| format!("{}/{}", r.distro, r.kernel_release))
        .collect();
    if !failed.is_empty() && !args.exit_zero_on_failure {
        return Err(format!(
            "{} kernel build(s) failed: {}",
            failed.len(),
            failed.join(", ")
        )
        .into());
    }
    Ok(())
}

/// `--jobs 0` would build nothing, or everything at once: refuse it.
fn at_least_one(value: &str) -> std::result::Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Where build roots, kernel images and caches come from (build and
/// boot-test alike).
#[derive(clap::Args)]
pub struct RootArgs {
    /// Cache of roots, headers, images, System.maps and built modules [default: $KMODFARM_CACHE or ~/.cache/kmodfarm].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Archive root for roots that must be made [default: this host's apt sources].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// The host's apt sources: /etc/apt, or a directory of deb822 .sources and one-line .list files.
    #[arg(long, value_name = "DIR", default_value = "/etc/apt/sources.list.d")]
    pub apt_sources: PathBuf,
}

impl RootArgs {
    pub fn cache(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(cache_dir::default_cache_dir)
    }
}
