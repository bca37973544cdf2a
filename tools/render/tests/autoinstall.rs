//! The rendered kmodfarm-dkms's `autoinstall-wants PID`, which dkms.conf
//! asks while DKMS reads it: run for real against live processes whose
//! command lines look like the dkms calls kernel hooks make. Kernels outside
//! the example's range (5.15 to 6.14) are skipped whatever this host has
//! installed; the kernel hooks test (tests/tests/kernel_hooks.rs) covers
//! supported kernels with real DKMS and headers.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn helper(dir: &Path) -> PathBuf {
    let files = common::render(&common::example_manifest());
    let path = dir.join("kmodfarm-dkms");
    fs::write(&path, &common::file(&files, "kmodfarm-dkms").contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A live process whose command line is `sh -c 'read _' ARGS...`: it waits
/// on its stdin until dropped.
struct Process(Child);

impl Process {
    fn with_args(args: &[&str]) -> Process {
        let child = Command::new("sh")
            .args(["-c", "read _"])
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        Process(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.0.wait();
    }
}

/// Runs the helper through sh: executing a file this multi-threaded test
/// process has just written can fail with ETXTBSY while another thread forks.
fn run(helper: &Path, args: &[&str]) -> Output {
    Command::new("sh").arg(helper).args(args).output().unwrap()
}

/// `autoinstall-wants` for a process started with `args`: its exit code.
fn wants_for(helper: &Path, args: &[&str]) -> Option<i32> {
    let process = Process::with_args(args);
    let out = run(helper, &["autoinstall-wants", &process.pid()]);
    // dkms.conf calls it while DKMS prints: it must say nothing.
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{args:?}: {out:?}"
    );
    out.status.code()
}

const OUTSIDE: &str = "7.0.0-1-amd64";

#[test]
fn autoinstall_of_an_unsupported_kernel_is_declined() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    for args in [
        vec!["/usr/sbin/dkms", "autoinstall", "--kernelver", OUTSIDE],
        vec!["/usr/sbin/dkms", "autoinstall", "-k", OUTSIDE],
        vec![
            "/usr/sbin/dkms",
            "autoinstall",
            "--kernelver=7.0.0-1-amd64/x86_64",
        ],
        vec!["/usr/sbin/dkms", "-k", OUTSIDE, "autoinstall"],
        // DKMS 3.1's kernel hooks call this wrapper of autoinstall.
        vec!["/usr/sbin/dkms", "kernel_postinst", "--kernelver", OUTSIDE],
    ] {
        assert_eq!(wants_for(&helper, &args), Some(1), "{args:?}");
    }
}

/// `autoinstall-kernel` for a process started with `args`: what it printed.
fn kernel_for(helper: &Path, args: &[&str]) -> String {
    let process = Process::with_args(args);
    let out = run(helper, &["autoinstall-kernel", &process.pid()]);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_kernel_is_read_from_the_command_line_as_dkms_parses_it() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    let dkms = "/usr/sbin/dkms";
    let running =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    for (args, kernel) in [
        // How Debian's dkms_autoinstaller calls it.
        (
            vec![dkms, "autoinstall", "--kernelver", "6.1.0-26-amd64"],
            "6.1.0-26-amd64\n",
        ),
        (
            vec![dkms, "autoinstall", "-k", "6.12.9+deb12-amd64"],
            "6.12.9+deb12-amd64\n",
        ),
        (
            vec![dkms, "autoinstall", "--kernelver=5.15.0-143-generic/x86_64"],
            "5.15.0-143-generic\n",
        ),
        // DKMS takes the first of several.
        (
            vec![
                dkms,
                "-k",
                "6.1.0-1-amd64",
                "-k",
                "6.1.0-2-amd64",
                "autoinstall",
            ],
            "6.1.0-1-amd64\n",
        ),
        (
            vec![dkms, "kernel_postinst", "-k", "6.8.0-40-generic"],
            "6.8.0-40-generic\n",
        ),
        // No kernel given: DKMS works on the running one.
        (vec![dkms, "autoinstall"], running.as_str()),
        // Not an autoinstall: nothing.
        (
            vec![dkms, "build", "-k", "6.1.0-26-amd64", "kmfdemo/1.0.0"],
            "",
        ),
    ] {
        assert_eq!(kernel_for(&helper, &args), kernel, "{args:?}");
    }
}

#[test]
fn other_dkms_commands_keep_autoinstall() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    for args in [
        vec!["/usr/sbin/dkms", "build", "-k", OUTSIDE, "kmfdemo/1.0.0"],
        vec!["/usr/sbin/dkms", "install", "--kernelver", OUTSIDE],
        vec!["/usr/lib/dkms/common.postinst", "kmfdemo", "1.0.0"],
    ] {
        assert_eq!(wants_for(&helper, &args), Some(0), "{args:?}");
    }
}

#[test]
fn an_unreadable_command_line_declines() {
    // No such process (as when /proc is not mounted): the helper cannot tell
    // which kernel DKMS works on, so autoinstall leaves the module to the
    // kernel hooks rather than risk failing the kernel's installation.
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    let gone = {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id().to_string();
        child.wait().unwrap();
        pid
    };
    let out = run(&helper, &["autoinstall-wants", &gone]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn wants_says_why_a_kernel_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let helper = helper(dir.path());
    let out = run(&helper, &["wants", OUTSIDE]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("kmfdemo: not building for {OUTSIDE}: outside the supported kernel range 5.15 to 6.14\n")
    );
    // A wrong call is a usage error, not a yes or a no.
    assert_eq!(run(&helper, &["wants"]).status.code(), Some(2));
    assert_eq!(run(&helper, &["autoinstall-wants"]).status.code(), Some(2));
}
