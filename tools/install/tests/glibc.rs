//! kmodfarm-host runs on glibc 2.28 and newer (RHEL 8, Ubuntu 22.04/24.04,
//! Debian 12/13): built with cargo-zigbuild against glibc 2.28, the ELF's
//! highest GLIBC_ symbol version need is at most 2.28. The test installs
//! its tools itself (Zig from PyPI's `ziglang`, cargo-zigbuild from
//! crates.io) on a fresh machine, and builds into its own target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_tests::run_ok as run;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn ensure_tools() {
    if !succeeds(Command::new("python3").args(["-m", "ziglang", "version"])) {
        run(Command::new("python3").args(["-m", "pip", "install", "ziglang"]));
    }
    if !succeeds(Command::new("cargo").args(["zigbuild", "--version"])) {
        run(Command::new("cargo").args(["install", "--locked", "cargo-zigbuild"]));
    }
}

/// The highest `GLIBC_x.y[.z]` in the ELF's version needs (readelf -V).
fn highest_glibc(binary: &Path) -> Option<Vec<u32>> {
    let out = Command::new("readelf")
        .args(["-V", "-W"])
        .arg(binary)
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            v.split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()
        })
        .max()
}

#[test]
fn the_highest_glibc_version_kmodfarm_host_needs_is_2_28() {
    ensure_tools();
    let target_dir = workspace().join("target/glibc-2.28");
    run(Command::new("cargo")
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "zigbuild",
            "--release",
            "--target",
            "x86_64-unknown-linux-gnu.2.28",
            "-p",
            "kmodfarm-install",
            "--bin",
            "kmodfarm-host",
        ]));
    let binary = target_dir.join("x86_64-unknown-linux-gnu/release/kmodfarm-host");
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
