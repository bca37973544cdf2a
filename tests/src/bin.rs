//! Where the repository and the built `kmodfarm` binary are.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::process::{capture, Output};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    // This crate lives at <repo>/tests.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the repository")
        .to_path_buf()
}

/// The example module: `<repo>/module` (its kmodfarm.toml and src/).
pub fn module_dir() -> PathBuf {
    repo_root().join("module")
}

/// The `kmodfarm` binary under test: `$KMODFARM_BIN`, else the one next to
/// this test executable's `deps/` directory (`target/debug/kmodfarm`).
///
/// Panics when it does not exist: integration tests do not build it
/// themselves, because cargo builds a test crate's dependencies, not the
/// binaries of other packages.
pub fn kmodfarm_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("KMODFARM_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "KMODFARM_BIN={} does not exist; run `cargo build -p kmodfarm` first",
            bin.display()
        );
        return bin;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash>: the binary is in target/<profile>.
    let profile_dir = exe
        .parent()
        .filter(|dir| dir.ends_with("deps"))
        .and_then(Path::parent)
        .unwrap_or_else(|| {
            panic!(
                "{} is not in a cargo target/<profile>/deps directory; set KMODFARM_BIN",
                exe.display()
            )
        });
    let bin = profile_dir.join("kmodfarm");
    assert!(
        bin.is_file(),
        "{} does not exist; run `cargo build -p kmodfarm` first",
        bin.display()
    );
    bin
}

/// Runs `kmodfarm ARGS...` on the host and returns what it said (whether it
/// succeeded or not).
pub fn kmodfarm<I, S>(args: I) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    capture(Command::new(kmodfarm_bin()).args(args))
}

/// `kmodfarm -m MANIFEST package --format FORMAT --out DIR [EXTRA...]`,
/// which must succeed: the package files (`*.FORMAT`) in `out`, sorted.
pub fn kmodfarm_package(manifest: &Path, format: &str, out: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let mut args: Vec<String> = vec![
        "-m".into(),
        manifest.display().to_string(),
        "package".into(),
        "--format".into(),
        format.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    kmodfarm(&args).expect("kmodfarm runs").expect_ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == format))
        .collect();
    files.sort();
    files
}
