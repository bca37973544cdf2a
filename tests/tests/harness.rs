//! The harness itself, on the real root: what other tests rely on.

use kmodfarm_tests::{apt_sources, fixtures, Sandbox, SandboxBackend};

#[test]
fn bookworm_root_has_dkms_and_both_kernels_headers() {
    let root = fixtures::bookworm();
    assert_eq!(root.k61.series(), "6.1");
    assert_eq!(root.k612.series(), "6.12");
    let sandbox = Sandbox::new(&root.root).expect("a sandbox");
    let dkms = sandbox.run_ok(&["dkms", "--version"]);
    assert!(dkms.stdout.starts_with("dkms-3."), "{dkms}");
    for kernel in [&root.k61, &root.k612] {
        sandbox.run_ok(&[
            "test",
            "-f",
            &format!("/lib/modules/{kernel}/build/Makefile"),
        ]);
    }
    // Sources for the root come from this machine's, for the root's suite.
    let sources = sandbox.run_ok(&["sh", "-c", "cat /etc/apt/sources.list.d/*.sources"]);
    assert_eq!(sources.stdout, apt_sources("bookworm").unwrap().to_deb822());
}

/// Changes made in one sandbox are seen by its later commands and by no
/// other sandbox, and never reach the cached root.
fn changes_stay_in_the_sandbox(backend: Option<SandboxBackend>) {
    let root = fixtures::bookworm();
    let first = match backend {
        Some(backend) => Sandbox::with_backend(&root.root, backend),
        None => Sandbox::new(&root.root),
    }
    .expect("a sandbox");
    first.run_ok(&[
        "sh",
        "-c",
        "echo mine > /etc/kmodfarm-scratch && rm /etc/debian_version",
    ]);
    assert_eq!(first.read_file("/etc/kmodfarm-scratch").unwrap(), "mine\n");
    // A later command of the same sandbox sees its changes.
    first
        .run(&["test", "-e", "/etc/debian_version"])
        .unwrap()
        .expect_failure();

    let second = Sandbox::new(&root.root).expect("another sandbox");
    second
        .run(&["test", "-e", "/etc/kmodfarm-scratch"])
        .unwrap()
        .expect_failure();
    second.run_ok(&["test", "-e", "/etc/debian_version"]);
    assert!(!root.root.path.join("etc/kmodfarm-scratch").exists());
    assert!(root.root.path.join("etc/debian_version").exists());
}

#[test]
fn sandbox_changes_stay_in_that_sandbox() {
    changes_stay_in_the_sandbox(None);
}

/// The fallback for machines where no overlay works: a full copy.
#[test]
fn copy_backend_sandbox_changes_stay_in_that_sandbox() {
    changes_stay_in_the_sandbox(Some(SandboxBackend::Copy));
}

#[test]
fn apt_inside_the_sandbox_has_a_writable_tmp_and_its_lists() {
    let root = fixtures::bookworm();
    let sandbox = Sandbox::new(&root.root).expect("a sandbox");
    let tmp = sandbox.run_ok(&["stat", "-c", "%a", "/tmp"]);
    assert_eq!(tmp.stdout.trim(), "1777");
    let policy = sandbox.run_ok(&["apt-cache", "policy", "dkms"]);
    assert!(policy.stdout.contains("Installed: 3."), "{policy}");
}
