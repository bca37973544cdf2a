//! kmodfarm-host runs on glibc 2.28 and newer (RHEL 8, Ubuntu 22.04/24.04,
//! Debian 12/13): built with cargo-zigbuild against glibc 2.28, the ELF's
//! highest GLIBC_ symbol version need is at most 2.28. The build
//! (common/build.rs, shared with the packages and the host tests) installs
//! its tools itself (Zig from PyPI's `ziglang`, cargo-zigbuild from
//! crates.io) on a fresh machine, and builds into its own target directory.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::build::{glibc_build, highest_glibc};

#[test]
fn the_highest_glibc_version_kmodfarm_host_needs_is_2_28() {
    let binary = glibc_build();
    let highest = highest_glibc(&binary).expect("the binary links glibc dynamically");
    assert!(
        highest <= vec![2, 28],
        "{} needs GLIBC_{highest:?}",
        binary.display()
    );
    // And the check itself sees versions: this machine's own build of the
    // same program needs a newer glibc (Debian 12 has 2.36).
    let native = PathBuf::from(env!("CARGO_BIN_EXE_kmodfarm-host"));
    assert!(highest_glibc(&native).is_some_and(|v| v > vec![2, 28]));
    let out = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kmodfarm-host "));
}
