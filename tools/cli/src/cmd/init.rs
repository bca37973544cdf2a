//! `kmodfarm init`: scaffold a manifest, or import an existing DKMS tree.

use std::path::{Path, PathBuf};

use kmodfarm_model::import::{self, ImportDefaults};
use kmodfarm_model::Manifest;

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Import this DKMS source tree (its dkms.conf) instead of starting fresh.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Where to write the manifest [default: DIR/kmodfarm.toml with --from, else ./kmodfarm.toml].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Package and module name for a fresh manifest [default: the directory's name].
    #[arg(long)]
    name: Option<String>,
    /// Replace an existing manifest.
    #[arg(long)]
    force: bool,
}

pub fn run(_ctx: &Context, args: Args) -> Result {
    let out = match (&args.out, &args.from) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => dir.join(kmodfarm_model::manifest::FILE_NAME),
        (None, None) => PathBuf::from(kmodfarm_model::manifest::FILE_NAME),
    };
    if out.exists() && !args.force {
        return Err(format!(
            "{} already exists; pass --force to replace it",
            out.display()
        )
        .into());
    }
    let defaults = ImportDefaults {
        maintainer: maintainer(),
        license: "GPL-2.0-only".into(),
    };
    let (text, notes) = match &args.from {
        Some(dir) => {
            let conf_path = dir.join("dkms.conf");
            let conf = std::fs::read_to_string(&conf_path)
                .map_err(|e| format!("cannot read {}: {e}", conf_path.display()))?;
            let source_dir = relative_source_dir(&out, dir)?;
            let defaults = ImportDefaults {
                license: license_from_sources(dir).unwrap_or(defaults.license),
                ..defaults
            };
            let imported = import::from_dkms_conf(
                &conf_path.display().to_string(),
                &conf,
                &source_dir,
                &defaults,
                &out,
            )?;
            (imported.toml, imported.notes)
        }
        None => {
            let dir = out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(
                    || std::env::current_dir().unwrap_or_default(),
                    Path::to_path_buf,
                );
            let dir = dir.canonicalize().unwrap_or(dir);
            let name = args.name.clone().unwrap_or_else(|| {
                dir.file_name().map_or("mymodule".into(), |n| {
                    n.to_string_lossy().to_ascii_lowercase().replace('_', "-")
                })
            });
            (
                scaffold(&name, &defaults),
                vec![
                    "edit summary, description and maintainer, then run `kmodfarm lint`"
                        .to_string(),
                ],
            )
        }
    };
    // Validate before writing: a manifest init writes always loads.
    Manifest::parse(&out, &text)?;
    write_atomically(&out, &text)?;
    eprintln!("wrote {}", out.display());
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

fn scaffold(name: &str, d: &ImportDefaults) -> String {
    let module = name.replace('-', "_");
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
license = "{license}"
summary = "{name} kernel module"
description = "The {name} out-of-tree Linux kernel module."
maintainer = "{maintainer}"

[source]
# The module's source tree, with its Makefile/Kbuild.
dir = "src"

[[module]]
name = "{module}"
dest = "/updates/dkms"

[build]
# Default: make -C <kernel build dir> M=<source> modules
# needs = ["system-map"]   # when a configure step reads the kernel's symbols
compression = "zst"

[kernels]
min = "5.15"

[targets]
distros = ["debian-12", "ubuntu-24.04", "rhel-9"]

[boot]
load = ["{module}"]
"#,
        license = d.license,
        maintainer = d.maintainer,
    )
}

/// The source dir as the manifest will name it: relative to the manifest.
fn relative_source_dir(manifest: &Path, tree: &Path) -> Result<String> {
    let base = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", base.display()))?;
    let tree = tree
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", tree.display()))?;
    match tree.strip_prefix(&base) {
        Ok(rel) if rel.as_os_str().is_empty() => Ok(".".into()),
        Ok(rel) => Ok(rel.display().to_string()),
        Err(_) => Err(format!(
            "{} is not inside {}: write the manifest next to or above the source tree (--out)",
            tree.display(),
            base.display()
        )
        .into()),
    }
}

/// Who the package is from: the Debian packaging variables, then git.
fn maintainer() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let git = |k: &str| {
        std::process::Command::new("git")
            .args(["config", k])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let name = env("DEBFULLNAME")
        .or_else(|| git("user.name"))
        .unwrap_or_else(|| "Unknown Maintainer".into());
    let email = env("DEBEMAIL")
        .or_else(|| git("user.email"))
        .unwrap_or_else(|| "maintainer@example.invalid".into());
    format!("{name} <{email}>")
}

/// The SPDX id matching the sources' MODULE_LICENSE, when there is one.
fn license_from_sources(dir: &Path) -> Option<String> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "c") {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            if let Some(pos) = text.find("MODULE_LICENSE(\"") {
                let rest = &text[pos + 16..];
                let tag = &rest[..rest.find('"')?];
                return Some(
                    match tag {
                        "GPL" => "GPL-2.0-or-later",
                        "GPL v2" => "GPL-2.0-only",
                        "Dual BSD/GPL" => "GPL-2.0-only OR BSD-3-Clause",
                        "Dual MIT/GPL" => "GPL-2.0-only OR MIT",
                        _ => return None,
                    }
                    .into(),
                );
            }
        }
    }
    None
}

/// Writes `path` through a temporary file in the same directory, so a
/// failure leaves either the old file or none, never half of one.
pub fn write_atomically(path: &Path, contents: &str) -> Result {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, contents).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })?;
    Ok(())
}
