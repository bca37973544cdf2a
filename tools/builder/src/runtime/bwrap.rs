//! bubblewrap over the root directory. The header layer is joined to the
//! root with a read-only overlayfs (lowerdir=HEADERS:ROOT) mounted in a
//! private mount namespace, so headers appear at their real paths
//! (/usr/src, /usr/lib/linux-kbuild-*, /lib/modules/K/build) as if
//! installed, the cached root is never written, and the mount dies with the
//! command. bwrap 0.8 (Debian 12) has no overlay of its own; the overlay
//! mount needs root.

use std::process::Command;

use super::podman::layer_mounts;
use super::{RunSpec, Runtime, RuntimeKind, PATH};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::process::{on_path, run, Finished};

pub struct Bwrap;

impl Bwrap {
    pub fn detect() -> Result<Bwrap> {
        let unusable = |why: &str| BuildError::RuntimeUnavailable {
            runtime: "bwrap".into(),
            why: why.into(),
        };
        if !on_path("bwrap") {
            return Err(unusable("bwrap not found on PATH (install bubblewrap)"));
        }
        if !on_path("unshare") {
            return Err(unusable("unshare not found on PATH (install util-linux)"));
        }
        // The effective uid, from /proc (no libc dependency for one number):
        // the header overlay is mounted with plain mount(8), which needs root.
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
            });
        if uid.as_deref() != Some("0") {
            return Err(unusable(
                "needs root to mount the header overlay; use --runtime podman",
            ));
        }
        Ok(Bwrap)
    }
}

/// `text` as one word for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

impl Runtime for Bwrap {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Bwrap
    }

    fn prepare_root(&self, _root: &RootInfo) -> Result<()> {
        Ok(())
    }

    fn run(&self, root: &RootInfo, spec: &RunSpec) -> Result<Finished> {
        let mut bwrap_args: Vec<String> = Vec::new();
        let merged = tempfile::Builder::new()
            .prefix("kmodfarm-merged-")
            .tempdir()
            .map_err(BuildError::io(std::env::temp_dir()))?;
        let mut cmd = match spec.headers {
            Some(headers) => {
                let mut cmd = Command::new("unshare");
                let mut mount = format!(
                    "mount -t overlay kmodfarm-headers -o ro,lowerdir={}:{} {}",
                    headers.display(),
                    root.path.display(),
                    merged.path().display()
                );
                // The overlay gives the header trees their mount points; the
                // trees themselves are then bound over it, so the compiler's
                // thousands of header lookups hit the plain file system
                // rather than overlayfs's layered lookups.
                for (host, guest) in layer_mounts(headers, &root.path) {
                    if host.is_dir() && !host.is_symlink() {
                        mount.push_str(&format!(
                            " && mount --bind {} {}",
                            quote(&host.display().to_string()),
                            quote(&format!("{}{guest}", merged.path().display()))
                        ));
                    }
                }
                mount.push_str(" && exec bwrap \"$@\"");
                cmd.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    &mount,
                    "sh",
                ]);
                bwrap_args.extend([
                    "--ro-bind".into(),
                    merged.path().display().to_string(),
                    "/".into(),
                ]);
                cmd
            }
            None => {
                bwrap_args.extend([
                    "--ro-bind".into(),
                    root.path.display().to_string(),
                    "/".into(),
                ]);
                Command::new("bwrap")
            }
        };
        bwrap_args.extend(
            [
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--perms",
                "1777",
                "--tmpfs",
                "/tmp",
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--die-with-parent",
                "--clearenv",
                "--setenv",
                "PATH",
                PATH,
                "--setenv",
                "HOME",
                "/tmp",
                "--setenv",
                "LANG",
                "C.UTF-8",
                "--setenv",
                "DEBIAN_FRONTEND",
                "noninteractive",
            ]
            .map(String::from),
        );
        if spec.network {
            if std::path::Path::new("/etc/resolv.conf").exists() {
                bwrap_args.extend(
                    ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"].map(String::from),
                );
            }
        } else {
            bwrap_args.push("--unshare-net".into());
        }
        for (name, value) in &spec.env {
            bwrap_args.extend(["--setenv".into(), name.clone(), value.clone()]);
        }
        for bind in &spec.binds {
            let flag = if bind.writable { "--bind" } else { "--ro-bind" };
            bwrap_args.extend([
                flag.into(),
                bind.host.display().to_string(),
                bind.guest.clone(),
            ]);
        }
        bwrap_args.extend([
            "--chdir".into(),
            "/".into(),
            "--".into(),
            "sh".into(),
            "-ec".into(),
            spec.script.into(),
        ]);
        cmd.args(&bwrap_args);
        run(&mut cmd, "bubblewrap")
    }
}
