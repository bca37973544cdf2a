//! `kmodfarm kernels`: the kernel matrix of the manifest's target distros,
//! read from their package indexes.

use std::io::Write;
use std::path::PathBuf;

use kmodfarm_kernels::apt_sources::read_apt_sources;
use kmodfarm_kernels::events::Event;
use kmodfarm_kernels::fetch::{default_cache_dir, HttpFetcher, RetryPolicy};
use kmodfarm_kernels::{
    discover_all, select_distros, Discovered, Mirror, Mirrors, Sources, Wanted,
};
use kmodfarm_model::manifest::KernelInput;

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Only this distro (repeatable) [default: the manifest's targets].
    #[arg(long, value_name = "ID")]
    distro: Vec<String>,
    /// Archive root to read indexes from: URL, or DISTRO=URL or SUITE=URL
    /// (repeatable). Without one, suites come from the host's apt sources,
    /// rewritten for other Debian releases as `kmodfarm build` does.
    #[arg(long, value_name = "[SCOPE=]URL")]
    mirror: Vec<String>,
    /// Keyring that --mirror suites' InRelease files must be signed with.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Directory with the apt sources to use (sources.list, sources.list.d/).
    #[arg(long, value_name = "DIR", default_value = "/etc/apt")]
    apt_dir: PathBuf,
    /// Where fetched indexes are kept [default: $XDG_CACHE_HOME/kmodfarm/indexes].
    #[arg(long, value_name = "DIR", env = "KMODFARM_INDEX_CACHE")]
    cache_dir: Option<PathBuf>,
    /// Use cached indexes only, without asking any server.
    #[arg(long)]
    offline: bool,
    /// Print the matrix as JSON (a list of matrix entries).
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.load_manifest()?;
    let ids = if args.distro.is_empty() {
        manifest.distros.clone()
    } else {
        args.distro.clone()
    };
    let found = discover(ctx, &manifest, &ids, &args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &found.entries)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &found)?;
    }
    for skipped in &found.excluded {
        eprintln!(
            "skipped {} {}: {}",
            skipped.distro, skipped.kernel_release, skipped.reason
        );
    }
    eprintln!(
        "{} kernel(s) in range {}; {} skipped",
        found.entries.len(),
        range_text(&manifest.kernels),
        found.excluded.len()
    );
    Ok(())
}

/// The kernels of `ids` in the manifest's range, read from the distros'
/// package indexes: `kernels` prints them, `build` builds them when it is
/// given no matrix.
pub fn discover(
    ctx: &Context,
    manifest: &kmodfarm_model::Manifest,
    ids: &[String],
    args: &Args,
) -> Result<Discovered> {
    let set = ctx.distro_set()?;
    let distros = select_distros(&set, ids)?;
    let mut explicit = Vec::new();
    for text in &args.mirror {
        let mut mirror: Mirror = text.parse()?;
        mirror.keyring = args.keyring.clone();
        explicit.push(mirror);
    }
    let mirrors = Mirrors {
        explicit,
        apt_sources: read_apt_sources(&args.apt_dir)?,
    };
    mirrors.check_scopes(&set)?;
    let cache = match args.cache_dir.clone().or_else(default_cache_dir) {
        Some(dir) => dir,
        None => return Err("no cache directory: set HOME, XDG_CACHE_HOME or --cache-dir".into()),
    };
    let fetcher = HttpFetcher::new(cache, RetryPolicy::default(), args.offline)?;
    let events = |event: Event<'_>| progress(&event);
    let sources = Sources {
        mirrors: &mirrors,
        fetcher: &fetcher,
        events: &events,
    };
    let wanted = Wanted {
        range: &manifest.kernels,
        system_map: manifest.build.needs(KernelInput::SystemMap),
    };
    Ok(discover_all(&distros, &wanted, &sources)?)
}

impl Args {
    /// Discovery as `kmodfarm kernels` does it by default: the host's apt
    /// sources, the default cache.
    pub fn defaults() -> Args {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: Args,
        }
        Wrapper::parse_from(["kmodfarm"]).args
    }
}

fn range_text(range: &kmodfarm_model::KernelRange) -> String {
    let end =
        |b: &Option<kmodfarm_model::VersionBound>| b.as_ref().map_or("*".into(), |b| b.to_string());
    format!("{} to {}", end(&range.min), end(&range.max))
}

fn print_table(out: &mut impl Write, found: &Discovered) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = found
        .entries
        .iter()
        .map(|e| {
            let extra = e.packages.len().saturating_sub(1);
            [
                e.distro.clone(),
                e.kernel_release.to_string(),
                e.flavour.clone().unwrap_or_else(|| "-".into()),
                match extra {
                    0 => e.packages[0].clone(),
                    n => format!("{} (+{n} deps)", e.packages[0]),
                },
            ]
        })
        .collect();
    let header = ["DISTRO", "KERNEL", "FLAVOUR", "HEADERS PACKAGE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(())
}

/// Progress on stderr, so stdout stays the table or JSON.
fn progress(event: &Event<'_>) {
    match event {
        Event::Retrying {
            url,
            attempt,
            reason,
            wait,
        } => eprintln!("retrying {url} in {wait:?} (attempt {attempt} failed: {reason})"),
        Event::SignatureNotChecked { url } => {
            eprintln!("warning: {url}: no keyring known for this mirror (pass --keyring); its signature was not checked")
        }
        Event::Parsed {
            what,
            kernel_packages,
            elapsed,
        } => eprintln!(
            "{what}: {kernel_packages} kernel packages ({:.2} s)",
            elapsed.as_secs_f64()
        ),
        Event::StanzasFromCache {
            what,
            kernel_packages,
        } => eprintln!("{what}: unchanged, {kernel_packages} kernel packages from the cache"),
        _ => {}
    }
}
