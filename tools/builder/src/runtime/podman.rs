//! podman (and docker, which takes the same arguments): the build root
//! imported as an image (`podman import`), so containers run exactly the
//! files bwrap would. The header layer is bound in piece by piece where
//! the root lacks it (see [`layer_mounts`]). On this kind of host podman
//! needs runc (crun refuses the cgroup layout) and explicit ulimits.
//!
//! A container is not a child of kmodfarm (conmon runs it), so killing
//! kmodfarm, even with SIGKILL, would leave it running on. Each container
//! is named `kmodfarm-build-<pid>-<n>` and has a watchdog: a process of its
//! own group that waits for kmodfarm's end of a pipe to close, and then
//! kills and removes the container. A run that ends normally stops its
//! watchdog instead. The next run also removes containers whose named
//! kmodfarm process is gone ([`sweep_containers`]), in case a watchdog was
//! killed as well.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{RunSpec, Runtime, RuntimeKind};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::process::{describe, on_path, run, run_ok, Finished};

pub struct Podman {
    program: &'static str,
}

/// `localhost/kmodfarm-root:<root id>`.
pub fn image_name(root: &RootInfo) -> String {
    format!("localhost/kmodfarm-root:{}", root.id)
}

impl Podman {
    pub fn detect() -> Result<Podman> {
        let unusable = |why: String| BuildError::RuntimeUnavailable {
            runtime: "podman".into(),
            why,
        };
        if !on_path("podman") {
            return Err(unusable(
                "podman not found on PATH (install podman and runc)".into(),
            ));
        }
        let probe = run(
            Command::new("podman").args(["info", "--format", "{{.Host.OCIRuntime.Name}}"]),
            "podman",
        )?;
        if !probe.success {
            return Err(unusable(format!(
                "`podman info` failed: {}",
                probe.output.trim()
            )));
        }
        Ok(Podman { program: "podman" })
    }

    pub(super) fn with_program(program: &'static str) -> Podman {
        Podman { program }
    }

    fn base_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        if self.program == "podman" {
            args.extend(["--runtime", "runc"].map(String::from));
        }
        args.extend(
            [
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1000:1000",
            ]
            .map(String::from),
        );
        args
    }
}

/// Imports `root` into podman unless the image exists; returns its name.
pub fn ensure_image(root: &RootInfo) -> Result<String> {
    ensure_image_with("podman", root)
}

fn ensure_image_with(program: &str, root: &RootInfo) -> Result<String> {
    let name = image_name(root);
    let exists = run(
        Command::new(program).args(["image", "exists", &name]),
        program,
    )?;
    if exists.success {
        return Ok(name);
    }
    // tar streams the root into `import` (no 400 MB temporary tarball).
    let script = "tar -C \"$1\" --numeric-owner -cf - . | \"$2\" import - \"$3\"";
    run_ok(
        Command::new("sh")
            .args(["-ec", script, "sh"])
            .arg(&root.path)
            .args([program, &name]),
        program,
    )?;
    Ok(name)
}

/// (host, guest) binds that lay `layer` over `root`: an entry the root
/// lacks is bound whole; a directory both have is descended into. The
/// result is the header tree's own top directories (/usr/src/linux-…,
/// /usr/lib/linux-kbuild-…, /usr/lib/modules/K), not one bind per file.
pub fn layer_mounts(layer: &Path, root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    walk(layer, root, Path::new("/"), &mut out);
    out
}

fn walk(layer: &Path, root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(layer.join(rel.strip_prefix("/").unwrap_or(rel))) else {
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let guest = rel.join(&name);
        let inside = guest.strip_prefix("/").unwrap_or(&guest);
        let host = layer.join(inside);
        let in_root = root.join(inside);
        let both_dirs = host.is_dir() && !host.is_symlink() && in_root.is_dir();
        if both_dirs {
            walk(layer, root, &guest, out);
        } else {
            out.push((host, guest.display().to_string()));
        }
    }
}

impl Runtime for Podman {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Podman
    }

    fn prepare_root(&self, root: &RootInfo) -> Result<()> {
        ensure_image_with(self.program, root).map(drop)
    }

    fn run(&self, root: &RootInfo, spec: &RunSpec) -> Result<Finished> {
        let mut args = self.base_args();
        if !spec.network {
            args.extend(["--network", "none"].map(String::from));
        }
        args.extend(
            [
                "-e",
                "HOME=/tmp",
                "-e",
                "LANG=C.UTF-8",
                "-e",
                "DEBIAN_FRONTEND=noninteractive",
            ]
            .map(String::from),
        );
        for (name, value) in &spec.env {
            args.extend(["-e".into(), format!("{name}={value}")]);
        }
        for bind in &spec.binds {
            let mode = if bind.writable { "rw" } else { "ro" };
            args.extend([
                "-v".into(),
                format!("{}:{}:{mode}", bind.host.display(), bind.guest),
            ]);
        }
        if let Some(headers) = spec.headers {
            for (host, guest) in layer_mounts(headers, &root.path) {
                args.extend(["-v".into(), format!("{}:{guest}:ro", host.display())]);
            }
        }
        let name = container_name();
        args.extend(["--name".into(), name.clone()]);
        args.extend([
            image_name(root),
            "sh".into(),
            "-ec".into(),
            spec.script.into(),
        ]);
        let mut cmd = Command::new(self.program);
        cmd.args(&args);
        let watchdog = Watchdog::start(self.program, &name)?;
        let done = run(&mut cmd, self.program);
        watchdog.stop();
        let done = done?;
        if !done.success && done.output.contains("Error: ") && done.status.contains("125") {
            return Err(BuildError::Command {
                command: describe(&cmd),
                status: done.status,
                output: done.output,
            });
        }
        Ok(done)
    }

    fn sweep(&self) -> Result<Vec<String>> {
        sweep_containers(self.program)
    }
}

/// What every container name of this process starts with.
const NAME_PREFIX: &str = "kmodfarm-build-";

fn container_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills and removes one container when kmodfarm ends without stopping it.
struct Watchdog {
    child: Child,
}

impl Watchdog {
    fn start(program: &str, name: &str) -> Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        // `cat` returns when the pipe's last writer, kmodfarm, is gone.
        // Its own process group: a Ctrl-C to kmodfarm's does not stop it
        // before it has done its work.
        let child = Command::new("sh")
            .args([
                "-c",
                "cat >/dev/null; \"$0\" kill \"$1\"; \"$0\" rm -f \"$1\"",
                program,
                name,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| BuildError::Spawn {
                program: "sh".into(),
                package: "a POSIX shell".into(),
                source,
            })?;
        Ok(Watchdog { child })
    }

    /// The container ended (or never started): the watchdog goes, quietly.
    fn stop(mut self) {
        let _ = self.child.kill();
        // Its `cat` sees the pipe close and ends too.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Removes containers named by [`container_name`] whose kmodfarm process
/// is gone (killed with its watchdog); returns their names.
pub fn sweep_containers(program: &str) -> Result<Vec<String>> {
    let listed = run(
        Command::new(program).args([
            "ps",
            "-a",
            "--filter",
            &format!("name={NAME_PREFIX}"),
            "--format",
            "{{.Names}}",
        ]),
        program,
    )?;
    if !listed.success {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for name in listed.output.lines().map(str::trim) {
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || kmodfarm_alive(pid) {
            continue;
        }
        let _ = run(Command::new(program).args(["rm", "-f", name]), program)?;
        removed.push(name.to_string());
    }
    Ok(removed)
}

/// Whether `pid` is a running kmodfarm.
fn kmodfarm_alive(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe.to_string_lossy().contains("kmodfarm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_is_bound_at_the_first_directories_the_root_lacks() {
        let root = tempfile::tempdir().unwrap();
        let layer = tempfile::tempdir().unwrap();
        for dir in ["usr/src", "usr/lib/x86_64-linux-gnu"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        for dir in [
            "usr/src/linux-headers-6.1.0-41-amd64/include",
            "usr/src/linux-headers-6.1.0-41-common",
            "usr/lib/linux-kbuild-6.1/scripts",
            "usr/lib/modules/6.1.0-41-amd64",
        ] {
            std::fs::create_dir_all(layer.path().join(dir)).unwrap();
        }
        let mounts: Vec<String> = layer_mounts(layer.path(), root.path())
            .into_iter()
            .map(|(_, g)| g)
            .collect();
        assert_eq!(
            mounts,
            [
                "/usr/lib/linux-kbuild-6.1",
                "/usr/lib/modules",
                "/usr/src/linux-headers-6.1.0-41-amd64",
                "/usr/src/linux-headers-6.1.0-41-common"
            ]
        );
    }
}
