//! Bad input to the build stage: each is a clear error naming what to fix,
//! and nothing reaches the output directory.

mod common;

use std::path::Path;
use std::process::Command;

use kmodfarm_builder::headers::{unpack, AptPackage};
use kmodfarm_builder::image::RootRecipe;
use kmodfarm_builder::plan::entries_from_kernels;
use kmodfarm_builder::runtime::bwrap::Bwrap;
use kmodfarm_builder::{cache_dir, sources};
use kmodfarm_model::DistroSet;
use kmodfarm_tests::{kmodfarm_bin, module_dir};

fn kmodfarm(args: &[&str], out: &Path, path: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(kmodfarm_bin());
    cmd.arg("--manifest")
        .arg(module_dir().join("kmodfarm.toml"))
        .arg("build")
        .arg("--out")
        .arg(out)
        .args(args);
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let output = cmd.output().expect("kmodfarm runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_distro_is_named_with_the_known_ones() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let (ok, stderr) = kmodfarm(&["--kernel", "debian-99:6.1.0-41-amd64"], &out, None);
    assert!(!ok);
    assert!(
        stderr.contains("unknown distro 'debian-99'") && stderr.contains("debian-12, debian-13"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_missing_container_runtime_is_named() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let empty_path = work.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    for (runtime, expected) in [
        ("podman", "podman not found on PATH"),
        ("bwrap", "bwrap not found on PATH"),
        ("docker", "docker engine not reachable"),
    ] {
        let (ok, stderr) = kmodfarm(
            &["--runtime", runtime, "--kernel", "debian-12:6.1.0-41-amd64"],
            &out,
            Some(&empty_path),
        );
        assert!(!ok, "{runtime}");
        assert!(stderr.contains(expected), "{runtime}: {stderr}");
        assert!(!out.exists(), "{runtime} left an output");
    }
}

#[test]
fn a_corrupt_header_package_is_named_and_leaves_no_layer() {
    let set = DistroSet::builtin();
    let distro = set.get("debian-12").unwrap();
    let text = sources::sources_for(distro, None, Path::new("/etc/apt/sources.list.d"))
        .expect("host apt sources");
    let root = RootRecipe::for_distro(distro, text)
        .unwrap()
        .ensure(&cache_dir::default_cache_dir(), "gcc-12")
        .expect("the debian-12 root");
    let entry = entries_from_kernels(&set, None, &["debian-12:6.1.0-41-amd64".into()])
        .unwrap()
        .remove(0);
    let work = tempfile::tempdir().unwrap();
    let debs = work.path().join("debs");
    std::fs::create_dir(&debs).unwrap();
    let package = AptPackage {
        name: "linux-headers-6.1.0-41-amd64".into(),
        version: "6.1.158-1".into(),
        arch: "amd64".into(),
    };
    // The first bytes of a real .deb (an ar archive), then nothing.
    std::fs::write(debs.join(package.deb_file()), b"!<arch>\ndebian-binary   ").unwrap();
    let dest = work.path().join("layer");
    let err = unpack(
        &Bwrap::detect().unwrap(),
        &root,
        &entry,
        &debs,
        &[package],
        &dest,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("header package linux-headers-6.1.0-41-amd64 is corrupt"),
        "{err}"
    );
    assert!(
        err.contains("dpkg-deb"),
        "the tool's own words are kept: {err}"
    );
    assert!(!dest.join("layer.json").exists());
}

#[test]
fn a_kernel_named_with_kernel_outside_the_range_is_an_error_not_a_skip() {
    // Newer than the example module's range (5.15 to 6.14): sid's newest.
    let too_new = common::newest("sid", &common::newest_series("sid"), 1).remove(0);
    let in_range = common::newest("bookworm", "6.1", 1).remove(0);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let too_new_arg = format!("debian-13:{too_new}");
    let in_range_arg = format!("debian-12:{in_range}");
    let (ok, stderr) = kmodfarm(
        &["--kernel", &in_range_arg, "--kernel", &too_new_arg],
        &out,
        None,
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--kernel {too_new_arg}: {too_new} is outside the supported range 5.15 to 6.14"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("kmodfarm.toml"),
        "names the manifest: {stderr}"
    );
    assert!(
        !stderr.contains(&format!("--kernel {in_range_arg}")),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing built, nothing written");
}
