//! Bad input: a clear error naming the thing to fix, and no package file
//! (complete, partial or temporary) left in the output directory.
//!
//! "An unreadable file": these tests run as root, which reads any file
//! whatever its mode, so `chmod 000` proves nothing here. The source-tree
//! entries a packager really cannot read are used instead: a FIFO (reading
//! it would block forever) and a symlink whose target does not exist.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use kmodfarm_model::Manifest;
use kmodfarm_package::{write_package, Format, PackageError, SourceTree};

fn reload(p: &Project) -> Manifest {
    Manifest::load(&p.root().join("kmodfarm.toml")).unwrap()
}

fn assert_no_package_files(out: &Path) {
    let left = entries(out);
    assert!(left.is_empty(), "files left in {}: {left:?}", out.display());
}

#[test]
fn a_build_script_missing_from_the_tree_is_named() {
    let p = project();
    std::fs::remove_file(p.src().join("configure")).unwrap();
    let err = SourceTree::of_manifest(&reload(&p)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PackageError::MissingScript { .. }), "{msg}");
    assert!(msg.contains("kmodfarm.toml"), "{msg}");
    assert!(
        msg.contains(&p.src().join("configure").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("configure --quiet"), "{msg}");
}

#[test]
fn a_fifo_in_the_tree_is_named() {
    let p = project();
    let fifo = p.src().join("include/pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = SourceTree::of_manifest(&reload(&p)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&fifo.display().to_string()) && msg.contains("FIFO"),
        "{msg}"
    );
}

#[test]
fn a_dangling_symlink_in_the_tree_is_named() {
    let p = project();
    let link = p.src().join("gone.h");
    symlink("does-not-exist.h", &link).unwrap();
    let err = SourceTree::of_manifest(&reload(&p)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PackageError::DanglingSymlink { .. }), "{msg}");
    assert!(
        msg.contains(&link.display().to_string()) && msg.contains("does-not-exist.h"),
        "{msg}"
    );
}

#[test]
fn a_symlink_to_a_regular_file_is_packaged_as_its_contents() {
    let p = project();
    symlink("kmftest.c", p.src().join("alias.c")).unwrap();
    let tree = SourceTree::of_manifest(&reload(&p)).unwrap();
    let alias = tree.files.iter().find(|f| f.rel == "alias.c").unwrap();
    assert_eq!(
        alias.size,
        std::fs::metadata(p.src().join("kmftest.c")).unwrap().len()
    );
}

#[test]
fn an_output_directory_under_a_regular_file_is_named() {
    let p = project();
    let file = p.root().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = file.join("packages");
    for format in [Format::Deb, Format::Rpm] {
        let err = write_package(&dkms_spec(&p, format), &out, None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PackageError::OutDir { .. }), "{msg}");
        assert!(msg.contains(&out.display().to_string()), "{msg}");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"",
        "the file in the way was changed"
    );
}

/// A file that disappears between planning and writing fails the write
/// half-way: the error names it, and the output directory stays empty —
/// no package, no temporary file.
#[test]
fn a_failed_write_leaves_nothing_behind() {
    for format in [Format::Deb, Format::Rpm] {
        let p = project();
        let spec = dkms_spec(&p, format);
        let vanished = p.src().join("include/kmftest.h");
        std::fs::remove_file(&vanished).unwrap();
        std::fs::create_dir_all(p.out()).unwrap();
        let err = write_package(&spec, &p.out(), None).unwrap_err();
        assert!(
            err.to_string().contains(&vanished.display().to_string()),
            "{err}"
        );
        assert_no_package_files(&p.out());
    }
}

/// Writing over an existing package of the same name replaces it whole, or
/// leaves it untouched when the write fails.
#[test]
fn a_failed_write_keeps_the_previous_package_intact() {
    let p = project();
    let spec = dkms_spec(&p, Format::Deb);
    let first = write_package(&spec, &p.out(), None).unwrap();
    let before = std::fs::read(&first).unwrap();
    std::fs::remove_file(p.src().join("Makefile")).unwrap();
    write_package(&spec, &p.out(), None).unwrap_err();
    assert_eq!(std::fs::read(&first).unwrap(), before);
    assert_eq!(
        entries(&p.out()),
        [first.file_name().unwrap().to_string_lossy()]
    );
}
