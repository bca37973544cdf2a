//! Manifests the tests render: the example module's, and a second one that
//! uses every feature (two modules in subdirectories, System.map, boot files).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kmodfarm_model::Manifest;
use kmodfarm_render::{RenderOptions, RenderedFile};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// module/kmodfarm.toml, our example module.
pub fn example_manifest() -> Manifest {
    let path = repo_root().join("module/kmodfarm.toml");
    Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub const SECOND_MANIFEST: &str = r#"
[package]
name = "kmfsym"
version = "2.3.1"
license = "GPL-2.0-only"
summary = "Two modules that read kernel symbols at configure time"
description = "A test manifest exercising System.map, subdirectories and boot files."
maintainer = "kmodfarm tests <tests@example.org>"

[source]
dir = "src"

[[module]]
name = "kmfsym_core"
location = "core"
dest = "/updates/dkms"

[[module]]
name = "kmfsym_extra"
location = "extra"
dest = "/kernel/drivers/misc"

[build]
pre_build = "scripts/configure --with-symbols"
needs = ["system-map"]

[kernels]
min = "5.15"
max = "6.8"

[boot]
load = ["kmfsym_core"]
initramfs = ["kmfsym_core"]
options = { kmfsym_extra = "debug=1 verbose=0" }
"#;

/// Writes the second manifest and a source tree it lints clean against.
pub fn second_manifest(dir: &Path) -> Manifest {
    let src = dir.join("src");
    for sub in ["core", "extra", "scripts"] {
        fs::create_dir_all(src.join(sub)).unwrap();
    }
    fs::write(src.join("Makefile"), "obj-y += core/ extra/\n").unwrap();
    let configure = src.join("scripts/configure");
    fs::write(
        &configure,
        "#!/bin/sh\necho configured \"$@\" > configured\n",
    )
    .unwrap();
    fs::set_permissions(&configure, fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("kmodfarm.toml");
    fs::write(&path, SECOND_MANIFEST).unwrap();
    Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn render(manifest: &Manifest) -> Vec<RenderedFile> {
    kmodfarm_render::render(manifest, &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn file<'a>(files: &'a [RenderedFile], name: &str) -> &'a RenderedFile {
    files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is rendered"))
}

/// Runs Debian's shellcheck (the real binary) on `script` with `options`;
/// the error names `name` and carries shellcheck's findings.
pub fn shellcheck(name: &str, script: &str, options: &[&str]) -> Result<(), String> {
    let mut child = std::process::Command::new("shellcheck")
        .args(options)
        .args(["--severity=style", "--format=gcc", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run shellcheck ({e}); it is required: apt-get install shellcheck")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}:\n{}{}",
            name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
