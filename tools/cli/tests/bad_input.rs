//! Bad input through the real binary: a clear message naming the file and
//! line, a non-zero exit, and nothing written.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::SENSOR_MANIFEST as MANIFEST;

fn project(dir: &Path, manifest: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/Kbuild"), "obj-m := sensor.o\n").unwrap();
    std::fs::write(dir.join("kmodfarm.toml"), manifest).unwrap();
}

fn render(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmodfarm"))
        .arg("render")
        .args(["--out", "out"])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Renders `manifest`; it must fail mentioning every needle, writing nothing.
fn refused(manifest: &str, templates: Option<(&str, &str)>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), manifest);
    let mut extra = vec![];
    if let Some((name, text)) = templates {
        std::fs::create_dir(dir.path().join("tpl")).unwrap();
        std::fs::write(dir.path().join("tpl").join(name), text).unwrap();
        extra = vec!["--templates", "tpl"];
    }
    let out = render(dir.path(), &extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks '{needle}':\n{stderr}"
        );
    }
    assert!(
        !dir.path().join("out").exists(),
        "nothing may be written on error"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        if templates.is_some() { 3 } else { 2 },
        "no temp dir left: {leftovers:?}"
    );
}

#[test]
fn the_good_manifest_renders() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), MANIFEST);
    let out = render(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("out/dkms.conf").is_file());
}

#[test]
fn malformed_manifest() {
    refused(
        &MANIFEST.replace("max = \"6.8\"", "max = 6.8.1"),
        None,
        &["kmodfarm.toml:14:"],
    );
}

#[test]
fn unknown_key() {
    refused(
        &MANIFEST.replace(
            "name = \"sensor\"\n\n",
            "name = \"sensor\"\nsrc = \"x\"\n\n",
        ),
        None,
        &["kmodfarm.toml:11:1", "unknown field `src`"],
    );
}

#[test]
fn version_dkms_rejects() {
    refused(
        &MANIFEST.replace("\"1.4.0\"", "\"1.4.0 final\""),
        None,
        &["kmodfarm.toml:3:11", "version '1.4.0 final'"],
    );
}

#[test]
fn module_name_with_a_path_separator() {
    refused(
        &MANIFEST.replace(
            "name = \"sensor\"\n\n[kernels]",
            "name = \"drivers/sensor\"\n\n[kernels]",
        ),
        None,
        &["kmodfarm.toml:10:8", "path separator"],
    );
}

#[test]
fn min_above_max() {
    refused(
        &MANIFEST.replace("min = \"5.15\"", "min = \"6.10\""),
        None,
        &["kmodfarm.toml:13:7", "min 6.10 is above max 6.8"],
    );
}

#[test]
fn template_syntax_error() {
    refused(
        MANIFEST,
        Some(("dkms.conf.tera", "{{ package.name }}\n{% if %}\n")),
        &["dkms.conf.tera:2:"],
    );
}

#[test]
fn template_undefined_variable() {
    refused(
        MANIFEST,
        Some((
            "dkms.conf.tera",
            "# ok\n# ok\nPACKAGE_NAME={{ package.nmae }}\n",
        )),
        &["dkms.conf.tera:3", "package.nmae"],
    );
}
