//! The rendered kmodfarm-prebuild, run for real the way DKMS runs PRE_BUILD:
//! in a copy of the source tree, with the kernel release as $1.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const KERNEL: &str = "6.1.0-26-amd64";

/// A build directory holding the rendered script and the module's configure.
fn build_dir(dir: &Path, configure_body: &str) -> std::path::PathBuf {
    let files = common::render(&common::second_manifest(&dir.join("project")));
    let build = dir.join("build");
    fs::create_dir_all(build.join("scripts")).unwrap();
    let script = build.join("kmodfarm-prebuild");
    fs::write(&script, &common::file(&files, "kmodfarm-prebuild").contents).unwrap();
    let configure = build.join("scripts/configure");
    fs::write(&configure, format!("#!/bin/sh\n{configure_body}\n")).unwrap();
    for p in [&script, &configure] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    build
}

fn run(build: &Path, system_map: &Path) -> Output {
    Command::new("./kmodfarm-prebuild")
        .arg(KERNEL)
        .current_dir(build)
        .env("KMODFARM_SYSTEM_MAP", system_map)
        .env_remove("kernelver")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const RECORD_ARGS: &str = "echo \"$* kernelver=$kernelver map=$KMODFARM_SYSTEM_MAP\" > configured";

#[test]
fn refuses_debians_placeholder_and_names_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(tmp.path(), RECORD_ARGS);
    let placeholder = tmp.path().join("System.map-6.1.0-26-amd64");
    fs::write(
        &placeholder,
        // Debian 12's placeholder, byte for byte: "<version>" is literal.
        "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n",
    )
    .unwrap();
    let out = run(&build, &placeholder);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(msg.contains(&format!("kernel {KERNEL}")), "{msg}");
    assert!(msg.contains(&placeholder.display().to_string()), "{msg}");
    assert!(
        msg.contains("is only a placeholder")
            && msg.contains("install it: apt-get install linux-image-6.1.0-26-amd64-dbg"),
        "{msg}"
    );
    assert!(!build.join("configured").exists(), "configure must not run");
}

#[test]
fn refuses_a_missing_system_map() {
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(tmp.path(), RECORD_ARGS);
    let missing = tmp.path().join("nothing-here");
    let out = run(&build, &missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("there is no {}; install it: ", missing.display())),
        "{}",
        stderr(&out)
    );
    assert!(!build.join("configured").exists());
}

#[test]
fn accepts_a_real_system_map_and_runs_configure_with_its_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(tmp.path(), RECORD_ARGS);
    let real = tmp.path().join("System.map-real");
    let symbols: String = (0..5000u64)
        .map(|i| {
            format!(
                "ffffffff8{i:015x} {} sym_{i}\n",
                if i % 3 == 0 { 'T' } else { 'D' }
            )
        })
        .collect::<String>()
        + "ffffffff82a001c0 R linux_banner\n";
    fs::write(&real, symbols).unwrap();
    let out = run(&build, &real);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(build.join("configured")).unwrap(),
        format!("--with-symbols kernelver={KERNEL} map={}\n", real.display())
    );
}

#[test]
fn a_map_without_a_linux_banner_address_is_not_real() {
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(tmp.path(), RECORD_ARGS);
    let fake = tmp.path().join("System.map-no-banner");
    fs::write(&fake, "ffffffff81000000 T text\n".repeat(500)).unwrap();
    assert_eq!(run(&build, &fake).status.code(), Some(1));
    // /proc/kallsyms read without privileges: the symbol, at address zero.
    let zeros = tmp.path().join("System.map-zeros");
    fs::write(&zeros, "0000000000000000 R linux_banner\n").unwrap();
    assert_eq!(run(&build, &zeros).status.code(), Some(1));
}

#[test]
fn a_failing_configure_fails_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(tmp.path(), "echo 'probe failed' >&2; exit 3");
    let real = tmp.path().join("System.map-real");
    fs::write(
        &real,
        "ffffffff81000000 T _text\nffffffff82a001c0 R linux_banner\n",
    )
    .unwrap();
    let out = run(&build, &real);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("probe failed"));
}
