//! Shared fixtures: a small module project written to a temp dir, its real
//! rendered files, planned specs, and real tools run with clear failures.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kmodfarm_model::{DistroSet, KernelRelease, Manifest};
use kmodfarm_package::dkms::{plan_dkms, DkmsInputs};
use kmodfarm_package::prebuilt::{plan_prebuilt, PrebuiltKernel, PrebuiltModule};
use kmodfarm_package::{Format, GeneratedFile, PackageSpec, SourceTree};

pub const EPOCH: u64 = 1_700_000_000;
pub const KERNEL: &str = "6.1.0-56-amd64";

pub const MANIFEST: &str = r#"
[package]
name = "kmftest"
version = "2.1.0"
license = "GPL-2.0-only"
summary = "kmodfarm test module"
description = """
A module the package tests build packages of.
It has two paragraphs.

This is the second one."""
maintainer = "kmodfarm tests <tests@example.org>"
homepage = "https://example.org/kmftest"

[source]
dir = "src"

[[module]]
name = "kmftest"

[build]
pre_build = "configure --quiet"

[kernels]
min = "5.15"
max = "6.14"

[boot]
load = ["kmftest"]
"#;

pub struct Project {
    pub dir: tempfile::TempDir,
    pub manifest: Manifest,
}

impl Project {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A module project: manifest, a source tree with a subdirectory, an
/// executable configure script, and things that must not be packaged (VCS
/// metadata, an old dkms.conf, a stale object file).
pub fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("kmodfarm.toml"), MANIFEST, 0o644);
    let src = root.join("src");
    write(&src.join("Makefile"), "obj-m += kmftest.o\n", 0o644);
    write(
        &src.join("kmftest.c"),
        "// SPDX-License-Identifier: GPL-2.0-only\n#include \"include/kmftest.h\"\n",
        0o644,
    );
    write(&src.join("include/kmftest.h"), "#define KMFTEST 1\n", 0o644);
    write(
        &src.join("configure"),
        "#!/bin/sh\necho configured\n",
        0o755,
    );
    write(&src.join(".git/HEAD"), "ref: refs/heads/main\n", 0o644);
    write(&src.join("dkms.conf"), "PACKAGE_NAME=old\n", 0o644);
    write(&src.join("kmftest.o"), "\x7fELF", 0o644);
    let manifest = Manifest::load(&root.join("kmodfarm.toml")).unwrap();
    Project { dir, manifest }
}

/// The render stage's real output for the manifest.
pub fn rendered(manifest: &Manifest) -> Vec<GeneratedFile> {
    kmodfarm_render::render(manifest, &Default::default())
        .expect("the test manifest renders")
        .into_iter()
        .map(GeneratedFile::from)
        .collect()
}

pub fn default_distro(format: Format) -> &'static str {
    match format {
        Format::Deb => "debian-12",
        Format::Rpm => "rhel-9",
    }
}

pub fn dkms_spec(p: &Project, format: Format) -> PackageSpec {
    let distros = DistroSet::builtin();
    let distro = distros.get(default_distro(format)).unwrap();
    let tree = SourceTree::of_manifest(&p.manifest).unwrap();
    let rendered = rendered(&p.manifest);
    plan_dkms(&DkmsInputs {
        manifest: &p.manifest,
        distro,
        format,
        rendered: &rendered,
        tree: &tree,
        source_date: EPOCH,
    })
    .unwrap()
}

/// A zstd-compressed stand-in for a built module, and the prebuilt spec.
pub fn prebuilt_spec(p: &Project, format: Format, kernel: &str) -> PackageSpec {
    let distros = DistroSet::builtin();
    let distro = distros.get(default_distro(format)).unwrap();
    let ko = p.root().join("build").join(kernel).join("kmftest.ko.zst");
    std::fs::create_dir_all(ko.parent().unwrap()).unwrap();
    let bytes = zstd::encode_all(&b"not really a module, but compressed like one"[..], 19).unwrap();
    std::fs::write(&ko, &bytes).unwrap();
    let built = PrebuiltKernel {
        kernel: KernelRelease::parse(kernel).unwrap(),
        modules: vec![PrebuiltModule {
            module: "kmftest".into(),
            size: bytes.len() as u64,
            path: ko,
        }],
    };
    plan_prebuilt(&p.manifest, distro, format, &built, EPOCH).unwrap()
}

/// A command for a tool the tests need; fails the test, naming the Debian
/// package to install, when the tool is missing (tests never skip).
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    let package = match name {
        "dpkg-deb" => "dpkg",
        "rpm" | "rpmbuild" | "rpmkeys" => "rpm",
        "gpg" => "gnupg",
        other => other,
    };
    assert!(
        found,
        "{name} is not installed: run `apt-get install -y --no-install-recommends {package}`"
    );
    Command::new(name)
}

/// Runs `cmd` and returns stdout; fails the test with the command's output
/// when it exits non-zero.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Names of the entries in `dir` (sorted), but for the marker every
/// package directory carries.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != kmodfarm_package::OUTPUT_MARKER)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs the linter `cmd` (already given its arguments) on `file`, prints
/// all it said for whoever reads the test log, fails the test listing the
/// lines `is_error` picks, and returns the whole output.
#[track_caller]
pub fn assert_no_lint_errors(cmd: &mut Command, file: &Path, is_error: fn(&str) -> bool) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let linter = cmd.get_program().to_string_lossy().into_owned();
    eprintln!("{linter} {}:\n{text}", file.display());
    let errors: Vec<&str> = text.lines().filter(|l| is_error(l)).collect();
    assert!(
        errors.is_empty(),
        "{linter} errors on {}:\n{}",
        file.display(),
        errors.join("\n")
    );
    text
}

/// The project's -dkms package in `format`, written into `p.out()`.
pub fn dkms_package(p: &Project, format: Format) -> PathBuf {
    kmodfarm_package::write_package(&dkms_spec(p, format), &p.out(), None)
        .expect("the -dkms package is written")
}
