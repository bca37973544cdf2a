//! `kmodfarm init`: scaffold a manifest, or import an existing DKMS tree.

use std::path::{Path, PathBuf};

use kmodfarm_model::dkms_conf::eval;
use kmodfarm_model::import::{self, Carried, ImportDefaults};
use kmodfarm_model::manifest::PLACEHOLDER_MAINTAINER;
use kmodfarm_model::{tree, Manifest};

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
    let (text, notes, commands) = match &args.from {
        Some(dir) => {
            let conf_path = dir.join("dkms.conf");
            let conf = std::fs::read_to_string(&conf_path)
                .map_err(|e| format!("cannot read {}: {e}", conf_path.display()))?;
            let source_dir = relative_source_dir(&out, dir)?;
            let mut notes = Vec::new();
            let files = tree::read_sources(dir);
            let license = match tree::license(&files) {
                Some(found) => {
                    notes.push(format!("license {}: from {}", found.value, found.from));
                    found.value
                }
                None => {
                    notes.push(format!("license: no MODULE_LICENSE or SPDX line in {}; set to {DEFAULT_LICENSE}, check it", dir.display()));
                    DEFAULT_LICENSE.into()
                }
            };
            let maintainer = match tree_maintainer(dir) {
                Some(found) => {
                    notes.push(format!("maintainer {}: from {}", found.value, found.from));
                    found.value
                }
                None => {
                    notes.push(format!("maintainer: none found in the tree (debian/control, a .spec, git log); set to the placeholder {PLACEHOLDER_MAINTAINER}, which lint flags: write yours"));
                    PLACEHOLDER_MAINTAINER.into()
                }
            };
            let defaults = ImportDefaults {
                maintainer,
                license,
                tree: files,
            };
            let shell = |text: &str| bash_in_sandbox(dir, text);
            let imported = import::from_dkms_conf(
                &conf_path.display().to_string(),
                &conf,
                &source_dir,
                &defaults,
                &out,
                Some(&shell),
            )?;
            notes.extend(imported.notes);
            (imported.toml, notes, imported.commands)
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
            let defaults = ImportDefaults {
                maintainer: maintainer(),
                license: DEFAULT_LICENSE.into(),
                tree: Vec::new(),
            };
            (
                scaffold(&name, &defaults),
                vec![
                    "edit summary, description and maintainer, then run `kmodfarm lint`"
                        .to_string(),
                ],
                Vec::new(),
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
    print_commands(&args, &commands);
    Ok(())
}

const DEFAULT_LICENSE: &str = "GPL-2.0-only";

/// The summary of every shell command carried over: DKMS runs them as
/// root on every host that installs the package, so the user reads them.
fn print_commands(args: &Args, commands: &[Carried]) {
    let Some(dir) = &args.from else {
        return;
    };
    if commands.is_empty() {
        eprintln!(
            "commands carried over from {}: none (kbuild's default build)",
            dir.join("dkms.conf").display()
        );
        return;
    }
    eprintln!(
        "commands carried over from {} (DKMS runs them as root on every host that installs the package; read them):",
        dir.join("dkms.conf").display()
    );
    for c in commands {
        eprintln!("  line {}: {}: {}", c.line, c.directive, c.command);
        if let Some(why) = kmodfarm_model::shell_risk::describe(&c.risks) {
            eprintln!("    warning: {why}");
        }
    }
}

/// The maintainer the tree names: its packaging, else the git log's
/// latest author of the tree.
fn tree_maintainer(dir: &Path) -> Option<tree::Found<String>> {
    if let Some(found) = tree::maintainer(dir) {
        return Some(found);
    }
    let out = std::process::Command::new("git")
        .args(["log", "-1", "--format=%an <%ae>", "--", "."])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let author = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (author.contains('<') && author.ends_with('>') && !author.contains("<>")).then(|| tree::Found {
        value: author,
        from: format!("the git log of {}", dir.display()),
    })
}

/// Seconds bash may take to read a dkms.conf.
const EVAL_TIMEOUT: &str = "20";

/// Runs `eval::eval_script` over dkms.conf `text` with bash, in a bwrap
/// sandbox: no network, the host's /usr (and /bin, /lib…) read-only, no
/// /etc or /home, the tree read-only, a private /tmp, a timeout. A
/// dkms.conf's code never runs outside it.
fn bash_in_sandbox(tree: &Path, text: &str) -> std::result::Result<Vec<u8>, String> {
    use kmodfarm_builder::runtime::bwrap::{BwrapCommand, RootFs};
    use kmodfarm_builder::runtime::Bind;
    if !kmodfarm_builder::process::on_path("bwrap") {
        return Err("bwrap is not installed (install bubblewrap)".into());
    }
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let root = scratch.path().join("root");
    let mut binds = Vec::new();
    for d in [
        "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "tmp", "dev", "proc",
    ] {
        let host = Path::new("/").join(d);
        let inside = root.join(d);
        let made = match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&host)
                .and_then(|target| std::os::unix::fs::symlink(target, &inside)),
            Ok(_) => std::fs::create_dir_all(&inside).map(|()| {
                if !["tmp", "dev", "proc"].contains(&d) {
                    binds.push(Bind {
                        host: host.clone(),
                        guest: format!("/{d}"),
                        writable: false,
                    });
                }
            }),
            Err(_) => Ok(()),
        };
        made.map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
    }
    let conf = scratch.path().join("dkms.conf");
    std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    let tree = tree
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", tree.display()))?;
    binds.push(Bind {
        host: conf,
        guest: "/tmp/kmodfarm/dkms.conf".into(),
        writable: false,
    });
    binds.push(Bind {
        host: tree,
        guest: "/tmp/kmodfarm/src".into(),
        writable: false,
    });
    let sandbox = BwrapCommand {
        root: RootFs::ReadOnly(&root),
        binds,
        network: false,
        home: "/tmp",
        env: Vec::new(),
    };
    let script = eval::eval_script("/tmp/kmodfarm/dkms.conf", "/tmp/kmodfarm/src");
    let inner = sandbox.command(&["bash", "--noprofile", "--norc", "-c", &script]);
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["--kill-after=2", EVAL_TIMEOUT])
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| format!("cannot run bwrap: {e}"))?;
    if out.status.code() == Some(124) || out.status.code() == Some(137) {
        return Err(format!("bash did not finish within {EVAL_TIMEOUT} s"));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Err(why) = eval::read_evaluation(&out.stdout) {
        return Err(match stderr.trim() {
            "" => why,
            said => format!("{why}; bash said: {said}"),
        });
    }
    Ok(out.stdout)
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
        .unwrap_or_default();
    let email = env("DEBEMAIL")
        .or_else(|| git("user.email"))
        .unwrap_or_default();
    if name.is_empty() || email.is_empty() {
        return PLACEHOLDER_MAINTAINER.into();
    }
    format!("{name} <{email}>")
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
