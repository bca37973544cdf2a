//! The roots the publish tests install into, made (and cached) on their
//! own so a first run shows their cost apart from the publish tests.

use kmodfarm_tests::{fixtures, Sandbox};

#[test]
fn trixie_root_verifies_with_sqv_and_has_dkms_and_headers() {
    let root = fixtures::trixie();
    let sandbox = Sandbox::new(&root.root).expect("a sandbox over the Debian 13 root");
    sandbox.run_ok(&["sqv", "--version"]);
    let dkms = sandbox.run_ok(&["dkms", "--version"]);
    assert!(dkms.stdout.contains("3."), "{dkms}");
    sandbox.run_ok(&[
        "test",
        "-f",
        &format!("/lib/modules/{}/build/Makefile", root.k612),
    ]);
}
