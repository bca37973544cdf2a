//! Errors print their cause once: messages name what failed, the report
//! prints the chain of causes below ("caused by: …"). Runs the real binary
//! on errors that have an operating-system cause.

use std::path::Path;
use std::process::{Command, Output};

fn kmodfarm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmodfarm"))
        .args(args)
        .output()
        .unwrap()
}

/// The failure's stderr, after checking it failed and named `what`.
fn refused(out: &Output, what: &Path) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot read {}\n", what.display())),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_manifest_path_that_is_a_directory_names_it_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("kmodfarm.toml");
    std::fs::create_dir(&manifest).unwrap();
    let out = kmodfarm(&["--manifest", manifest.to_str().unwrap(), "lint"]);
    let stderr = refused(&out, &manifest);
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
    assert!(stderr.contains("\n  caused by: Is a directory"), "{stderr}");
}

#[test]
fn an_unreadable_distro_file_names_it_and_its_cause_once() {
    let distros = tempfile::tempdir().unwrap();
    // A directory where a distro file is expected: unreadable as a file
    // even for root (who reads any file whatever its mode).
    let file = distros.path().join("debian-99.toml");
    std::fs::create_dir(&file).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml");
    let out = kmodfarm(&[
        "--manifest",
        manifest.to_str().unwrap(),
        "--distros",
        distros.path().to_str().unwrap(),
        "kernels",
        "--offline",
    ]);
    let stderr = refused(&out, &file);
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}
