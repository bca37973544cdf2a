//! `kmodfarm publish --repo DIR --key FILE [--packages DIR] [--builds DIR]`:
//! the signed apt repository and the prebuilt index from `kmodfarm
//! package` and `kmodfarm build` output. Plans first (`--dry-run` stops
//! there), then writes so that readers see the old repository or the new.

use std::path::PathBuf;

use kmodfarm_publish::sign::{Passphrase, SigningKey, PASSPHRASE_ENV};
use kmodfarm_publish::{
    execute, parse_duration, prepare, Disk, Event, PublishOptions, Request, Targets,
};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The repository directory (made if missing; an existing one must be a kmodfarm repository).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The OpenPGP secret key to sign with (`kmodfarm keygen`). Its passphrase, if any,
    /// comes from $KMODFARM_KEY_PASSPHRASE or --passphrase-file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Read the key's passphrase from the first line of this file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// `kmodfarm package` output: the .deb (and .rpm) files to publish.
    #[arg(long, value_name = "DIR")]
    packages: Option<PathBuf>,
    /// `kmodfarm build` output (records.json and the modules): the prebuilt index.
    #[arg(long, value_name = "DIR")]
    builds: Option<PathBuf>,
    /// Keep the newest N versions of the module; prune older ones.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// How long the signed metadata stays valid (7d, 36h, ...): Valid-Until and the index's expires.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    valid_for: Option<u64>,
    /// Wait for another publish to the same repository instead of failing.
    #[arg(long)]
    wait: bool,
    /// Print the plan instead of publishing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON: the plan with --dry-run, else a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.load_manifest()?;
    let targets = Targets::new(&manifest, &ctx.distro_set()?);
    let passphrase = match (&args.passphrase_file, std::env::var(PASSPHRASE_ENV)) {
        (Some(file), _) => Passphrase::File(file.clone()),
        (None, Ok(value)) => Passphrase::Value {
            source: PASSPHRASE_ENV.into(),
            value,
        },
        (None, Err(_)) => Passphrase::None,
    };
    // The key first: a missing key or a wrong passphrase writes nothing.
    let key = SigningKey::load(&args.key, &passphrase)?;
    let request = Request {
        repo: args.repo.clone(),
        packages: args.packages.clone(),
        builds: args.builds.clone(),
        options: PublishOptions {
            keep: args.keep,
            valid_for: args.valid_for,
            now: publish_time()?,
        },
        wait: args.wait,
    };
    let prepared = prepare(&request, &targets, &key, args.dry_run)?;
    let plan = &prepared.plan;
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(plan)?);
        } else {
            println!(
                "would publish serial {} to {}: copy {} file(s), write {}, remove {}, {} input(s) unchanged",
                plan.serial,
                plan.repo.display(),
                plan.copy.len(),
                plan.write.len(),
                plan.remove.len(),
                plan.unchanged
            );
            for c in &plan.copy {
                println!("  copy   {}", c.to);
            }
            for r in &plan.remove {
                println!("  remove {r}");
            }
        }
        return Ok(());
    }
    let mut removed = 0;
    execute(plan, &mut Disk, &mut |event| {
        if let Event::Pruned { removed: n } = event {
            removed = n;
        }
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "repo": plan.repo,
                "serial": plan.serial,
                "copied": plan.copy.len(),
                "written": plan.write.len(),
                "removed": removed,
                "unchanged": plan.unchanged,
                "fingerprint": key.fingerprint(),
            })
        );
    } else {
        println!(
            "published serial {} to {}: {} file(s) copied, {} written, {} removed, {} unchanged",
            plan.serial,
            plan.repo.display(),
            plan.copy.len(),
            plan.write.len(),
            removed,
            plan.unchanged
        );
        if !plan.rpms.is_empty() {
            println!(
                "note: {} .rpm file(s) in --packages are not in the apt repository",
                plan.rpms.len()
            );
        }
        println!("signed by {}", key.fingerprint());
    }
    Ok(())
}

/// SOURCE_DATE_EPOCH when set (reproducible publishes), else now.
fn publish_time() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={v} is not a number of seconds").into()),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}
