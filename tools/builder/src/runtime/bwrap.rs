//! bubblewrap over a root directory: the [`Bwrap`] runtime builds use, and
//! [`BwrapCommand`], the command line it is made of, which the test
//! harness's sandboxes use too (one place starts bwrap over a root).
//!
//! bwrap 0.8 (Debian 12) has no overlay of its own, so overlays (a
//! kernel's header layer over the root for builds; a writable layer for a
//! test's sandbox) are overlayfs mounts made in a private mount namespace
//! (`unshare --mount --propagation private`) just before bwrap starts: the
//! mount is seen by that command only, dies with it, and the root below is
//! never written. Mounting needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::podman::layer_mounts;
use super::{Bind, RunSpec, Runtime, RuntimeKind, PATH};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::process::{on_path, run, Finished};

/// What a bwrap command sees as `/`.
#[derive(Debug, Clone)]
pub enum RootFs<'a> {
    /// The root directory, read-only.
    ReadOnly(&'a Path),
    /// A directory bound read-write as it is (a private copy of a root).
    Writable(&'a Path),
    /// An overlayfs mounted in a private mount namespace (needs root).
    Overlay(Overlay<'a>),
    /// bwrap's own overlay (`--overlay-src`, bubblewrap 0.9 and later):
    /// `lower` with changes kept in `upper` (and `work`, on the same file
    /// system), without needing root.
    BwrapOverlay {
        lower: &'a Path,
        upper: &'a Path,
        work: &'a Path,
    },
}

/// An overlayfs view made for one command.
#[derive(Debug, Clone)]
pub struct Overlay<'a> {
    /// Read-only layers, the top one first; the last is the root.
    pub lower: Vec<&'a Path>,
    /// Where changes go, `(upper, work)`: two directories on one file
    /// system. The same pair given to several commands makes their changes
    /// persist from one to the next. `None`: a read-only view.
    pub upper: Option<(&'a Path, &'a Path)>,
    /// An empty directory the overlay is mounted on (inside the command's
    /// mount namespace only).
    pub mount_point: &'a Path,
    /// Host directories bound over paths of the overlay before the command
    /// starts, `(host, path inside)`.
    pub bind_over: Vec<(PathBuf, String)>,
}

/// A bwrap command line over a root: `/dev`, `/proc`, a private `/tmp`
/// (mode 1777: apt's sandbox user writes there), new pid/ipc/uts
/// namespaces, a clean environment, and the binds asked for.
#[derive(Debug, Clone)]
pub struct BwrapCommand<'a> {
    pub root: RootFs<'a>,
    pub binds: Vec<Bind>,
    /// The host's network (and its resolv.conf, so names resolve as on the
    /// host); without it the command has only a loopback of its own.
    pub network: bool,
    /// `HOME` inside.
    pub home: &'a str,
    /// Set inside, after PATH, HOME, LANG and DEBIAN_FRONTEND.
    pub env: Vec<(String, String)>,
}

impl BwrapCommand<'_> {
    /// The full command line that runs `argv` inside.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut bwrap_args: Vec<String> = Vec::new();
        let mut cmd = match &self.root {
            RootFs::ReadOnly(root) => {
                bwrap_args.extend(["--ro-bind".into(), path_arg(root), "/".into()]);
                Command::new("bwrap")
            }
            RootFs::Writable(root) => {
                bwrap_args.extend(["--bind".into(), path_arg(root), "/".into()]);
                Command::new("bwrap")
            }
            RootFs::BwrapOverlay { lower, upper, work } => {
                bwrap_args.extend([
                    "--overlay-src".into(),
                    path_arg(lower),
                    "--overlay".into(),
                    path_arg(upper),
                    path_arg(work),
                    "/".into(),
                ]);
                Command::new("bwrap")
            }
            RootFs::Overlay(overlay) => {
                let flag = match overlay.upper {
                    Some(_) => "--bind",
                    None => "--ro-bind",
                };
                bwrap_args.extend([flag.into(), path_arg(overlay.mount_point), "/".into()]);
                overlay.mount_then_bwrap()
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
                self.home,
                "--setenv",
                "LANG",
                "C.UTF-8",
                "--setenv",
                "DEBIAN_FRONTEND",
                "noninteractive",
            ]
            .map(String::from),
        );
        if self.network {
            if Path::new("/etc/resolv.conf").exists() {
                bwrap_args.extend(
                    ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"].map(String::from),
                );
            }
        } else {
            bwrap_args.push("--unshare-net".into());
        }
        for (name, value) in &self.env {
            bwrap_args.extend(["--setenv".into(), name.clone(), value.clone()]);
        }
        for bind in &self.binds {
            let flag = if bind.writable { "--bind" } else { "--ro-bind" };
            bwrap_args.extend([flag.into(), path_arg(&bind.host), bind.guest.clone()]);
        }
        bwrap_args.extend(["--chdir".into(), "/".into(), "--".into()]);
        bwrap_args.extend(argv.iter().map(|a| a.to_string()));
        cmd.args(&bwrap_args);
        cmd
    }
}

impl Overlay<'_> {
    /// `unshare --mount --propagation private sh -c 'mount …; exec bwrap
    /// "$@"' sh`: bwrap's arguments are to be appended.
    fn mount_then_bwrap(&self) -> Command {
        let mut options = vec![];
        if self.upper.is_none() {
            options.push("ro".to_string());
        }
        let lower: Vec<String> = self.lower.iter().map(|p| path_arg(p)).collect();
        options.push(format!("lowerdir={}", lower.join(":")));
        if let Some((upper, work)) = self.upper {
            options.push(format!("upperdir={}", path_arg(upper)));
            options.push(format!("workdir={}", path_arg(work)));
        }
        let mut script = format!(
            "mount -t overlay kmodfarm -o {} {}",
            quote(&options.join(",")),
            quote(&path_arg(self.mount_point))
        );
        for (host, inside) in &self.bind_over {
            script.push_str(&format!(
                " && mount --bind {} {}",
                quote(&path_arg(host)),
                quote(&format!("{}{inside}", path_arg(self.mount_point)))
            ));
        }
        script.push_str(" && exec bwrap \"$@\"");
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ]);
        cmd
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// `text` as one word for sh.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

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

impl Runtime for Bwrap {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Bwrap
    }

    fn prepare_root(&self, _root: &RootInfo) -> Result<()> {
        Ok(())
    }

    fn run(&self, root: &RootInfo, spec: &RunSpec) -> Result<Finished> {
        let root_fs = match spec.headers {
            // The overlay gives the header trees their mount points (they
            // appear at their real paths: /usr/src, /usr/lib/linux-kbuild-*,
            // /lib/modules/K/build, as if installed); the trees themselves
            // are then bound over it, so the compiler's thousands of header
            // lookups hit the plain file system rather than overlayfs's
            // layered lookups. The overlay is mounted over the root
            // directory itself: in the command's private mount namespace
            // only, so nothing is made on the host for it and nothing is
            // left when the command dies.
            Some(headers) => RootFs::Overlay(Overlay {
                lower: vec![headers, &root.path],
                upper: None,
                mount_point: &root.path,
                bind_over: layer_mounts(headers, &root.path)
                    .into_iter()
                    .filter(|(host, _)| host.is_dir() && !host.is_symlink())
                    .collect(),
            }),
            None => RootFs::ReadOnly(&root.path),
        };
        let command = BwrapCommand {
            root: root_fs,
            binds: spec.binds.clone(),
            network: spec.network,
            home: "/tmp",
            env: spec.env.clone(),
        };
        run(
            &mut command.command(&["sh", "-ec", spec.script]),
            "bubblewrap",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_writable_overlay_is_mounted_in_a_private_namespace_and_bound_as_root() {
        let command = BwrapCommand {
            root: RootFs::Overlay(Overlay {
                lower: vec![Path::new("/r o/ot")],
                upper: Some((Path::new("/s/upper"), Path::new("/s/work"))),
                mount_point: Path::new("/s/merged"),
                bind_over: vec![],
            }),
            binds: vec![],
            network: true,
            home: "/root",
            env: vec![],
        };
        let argv = args(&command.command(&["true"]));
        assert_eq!(
            argv[..7],
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t overlay kmodfarm -o 'lowerdir=/r o/ot,upperdir=/s/upper,workdir=/s/work' '/s/merged' && exec bwrap \"$@\""]
        );
        assert_eq!(argv[7..11], ["sh", "--bind", "/s/merged", "/"]);
        assert!(!argv.contains(&"--unshare-net".to_string()), "{argv:?}");
        assert_eq!(argv[argv.len() - 2..], ["--", "true"]);
    }

    #[test]
    fn a_header_layer_is_read_only_and_offline_builds_have_no_network() {
        let command = BwrapCommand {
            root: RootFs::Overlay(Overlay {
                lower: vec![Path::new("/h"), Path::new("/r")],
                upper: None,
                mount_point: Path::new("/m"),
                bind_over: vec![(PathBuf::from("/h/usr/src/x"), "/usr/src/x".into())],
            }),
            binds: vec![],
            network: false,
            home: "/tmp",
            env: vec![("K".into(), "v".into())],
        };
        let argv = args(&command.command(&["sh", "-ec", "make"]));
        assert!(argv[6].starts_with("mount -t overlay kmodfarm -o 'ro,lowerdir=/h:/r' '/m' && mount --bind '/h/usr/src/x' '/m/usr/src/x' && exec"), "{}", argv[6]);
        assert_eq!(argv[8..11], ["--ro-bind", "/m", "/"]);
        assert!(argv.contains(&"--unshare-net".to_string()));
        assert!(argv.windows(3).any(|w| w == ["--setenv", "K", "v"]));
    }
}
