//! `kmodfarm publish --repo DIR --key FILE [--packages DIR] [--builds DIR]`:
//! the signed apt and yum repositories, the prebuilt index, the matrix page
//! and (with `--url`) install.sh, from `kmodfarm package` and `kmodfarm
//! build` output. Plans first (`--dry-run` stops there), then writes so
//! that readers see the old repository or the new.

use std::path::PathBuf;

use kmodfarm_publish::rpm_md::MetadataCompression;
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
    /// Where the repository will be served (https://…): install.sh is written for it,
    /// and the matrix page's install lines use it.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Compression of the yum metadata: gzip (every client) or zstd (dnf 4.x and newer).
    #[arg(long, value_name = "KIND", default_value = "gzip", value_parser = parse_compression)]
    rpm_metadata: MetadataCompression,
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
    let url = args.url.as_deref().map(check_url).transpose()?;
    let install_script = match &url {
        Some(url) => Some(kmodfarm_render::render_install_sh(
            &manifest,
            url,
            &key.public_key_armored()?,
        )?),
        None => None,
    };
    let request = Request {
        repo: args.repo.clone(),
        packages: args.packages.clone(),
        builds: args.builds.clone(),
        options: PublishOptions {
            keep: args.keep,
            valid_for: args.valid_for,
            now: publish_time()?,
            rpm_compression: args.rpm_metadata,
            repo_url: url.clone(),
            install_script,
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
                match &c.signed {
                    Some(signed) => println!(
                        "  sign   {} (from {}, unsigned; key {})",
                        c.to,
                        c.from.display(),
                        signed.key_id
                    ),
                    None => println!("  copy   {}", c.to),
                }
            }
            for r in &plan.remove {
                println!("  remove {r}");
            }
        }
        return Ok(());
    }
    let mut removed = 0;
    let mut signed = 0;
    let json = args.json;
    execute(plan, &mut Disk, &mut |event| match event {
        Event::Pruned { removed: n } => removed = n,
        Event::SignedRpm { from, to, key_id } => {
            signed += 1;
            if !json {
                println!("signed {} with key {key_id} into {to}", from.display());
            }
        }
        _ => {}
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
                "signed_rpms": signed,
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
        println!("signed by {}", key.fingerprint());
        match &url {
            Some(url) => println!("hosts install with: curl -fsSL {url}/install.sh | sudo sh"),
            None => println!(
                "note: no --url given, so no install.sh was written (an earlier one stays)"
            ),
        }
    }
    // The state of a large repository is tens of thousands of small
    // strings, and the process ends next: freeing them one by one would
    // be a measurable part of an incremental publish.
    std::mem::forget(prepared);
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

fn parse_compression(text: &str) -> std::result::Result<MetadataCompression, String> {
    match text {
        "gzip" | "gz" => Ok(MetadataCompression::Gzip),
        "zstd" | "zst" => Ok(MetadataCompression::Zstd),
        other => Err(format!("'{other}': use gzip or zstd")),
    }
}

/// The address install.sh fetches from: TLS, or plain HTTP on loopback only
/// (tests and demos); never with a trailing slash.
fn check_url(url: &str) -> Result<String> {
    let url = url.trim_end_matches('/');
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if url.starts_with("https://") || loopback {
        Ok(url.to_string())
    } else {
        Err(format!(
            "--url {url}: hosts must fetch the repository over https:// (plain http:// only on 127.0.0.1 or localhost, for tests); checksums do not protect the first download of install.sh"
        )
        .into())
    }
}
