//! The kmodfarm-host that ships: built once per test process with
//! cargo-zigbuild against glibc 2.28 into `target/glibc-2.28` (a cargo
//! no-op when nothing changed), and packaged as `kmodfarm-host` by the real
//! cargo-deb and cargo-generate-rpm from that build (their metadata is in
//! tools/install/Cargo.toml). glibc.rs, packages.rs and the shared world
//! all take the program from here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kmodfarm_tests::run_ok as run;

/// The zig build's target: glibc 2.28's symbol versions.
pub const ZIG_TARGET: &str = "x86_64-unknown-linux-gnu.2.28";
/// The directory below the target dir where that build lands.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn target_dir() -> PathBuf {
    workspace().join("target/glibc-2.28")
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Zig (PyPI's `ziglang`) and cargo-zigbuild, installed when missing.
fn ensure_zig() {
    if !succeeds(Command::new("python3").args(["-m", "ziglang", "version"])) {
        run(Command::new("python3").args(["-m", "pip", "install", "ziglang"]));
    }
    if !succeeds(Command::new("cargo").args(["zigbuild", "--version"])) {
        run(Command::new("cargo").args(["install", "--locked", "cargo-zigbuild"]));
    }
}

/// `cargo <tool> --version` works, or the test stops saying how to get it.
fn require_cargo_tool(tool: &str) {
    assert!(
        succeeds(Command::new("cargo").args([tool, "--version"])),
        "cargo {tool} is not installed: run scripts/setup (it installs cargo-deb and cargo-generate-rpm)"
    );
}

/// The glibc 2.28 build of kmodfarm-host (release), made once per process.
pub fn glibc_build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            ensure_zig();
            run(Command::new("cargo")
                .current_dir(workspace())
                .env("CARGO_TARGET_DIR", target_dir())
                .args([
                    "zigbuild",
                    "--release",
                    "--target",
                    ZIG_TARGET,
                    "-p",
                    "kmodfarm-install",
                    "--bin",
                    "kmodfarm-host",
                ]));
            target_dir().join(TRIPLE).join("release/kmodfarm-host")
        })
        .clone()
}

/// The packages of the glibc 2.28 build.
pub struct HostPackages {
    pub deb: PathBuf,
    pub rpm: PathBuf,
}

fn only_file(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

/// kmodfarm-host's .deb (cargo-deb) and .rpm (cargo-generate-rpm) of the
/// glibc 2.28 build, written into `out` (which must be empty of packages).
pub fn host_packages(out: &Path) -> HostPackages {
    glibc_build();
    require_cargo_tool("deb");
    require_cargo_tool("generate-rpm");
    let deb_dir = out.join("cargo-deb");
    let rpm_dir = out.join("cargo-generate-rpm");
    std::fs::create_dir_all(&deb_dir).unwrap();
    std::fs::create_dir_all(&rpm_dir).unwrap();
    run(Command::new("cargo")
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "deb",
            "-p",
            "kmodfarm-install",
            "--no-build",
            "--target",
            TRIPLE,
            "-o",
        ])
        .arg(&deb_dir));
    run(Command::new("cargo")
        .current_dir(workspace())
        .args(["generate-rpm", "-p", "tools/install", "--target", TRIPLE])
        .arg("--target-dir")
        .arg(target_dir())
        .arg("-o")
        .arg(&rpm_dir));
    HostPackages {
        deb: only_file(&deb_dir, ".deb"),
        rpm: only_file(&rpm_dir, ".rpm"),
    }
}

/// The highest `GLIBC_x.y[.z]` in the ELF's version needs (readelf -V).
pub fn highest_glibc(binary: &Path) -> Option<Vec<u32>> {
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
