//! `kmodfarm package` as a user runs it: exit codes, messages naming what
//! to fix, what lands in the output directory, reproducibility through
//! SOURCE_DATE_EPOCH, the plan as JSON, prebuilt packages from a build tree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MANIFEST: &str = r#"
[package]
name = "clitest"
version = "0.3.0"
license = "GPL-2.0-only"
summary = "kmodfarm CLI test module"
description = "A module for the package command's tests."
maintainer = "kmodfarm tests <tests@example.org>"

[[module]]
name = "clitest"

[build]
pre_build = "configure"
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kmodfarm.toml"), MANIFEST).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Makefile"), "obj-m += clitest.o\n").unwrap();
    std::fs::write(src.join("clitest.c"), "// test\n").unwrap();
    std::fs::write(src.join("configure"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        src.join("configure"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    dir
}

fn kmodfarm(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmodfarm"));
    cmd.arg("-m")
        .arg(dir.join("kmodfarm.toml"))
        .arg("package")
        .args(args);
    cmd.env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The files in `dir`, but for the marker every package directory gets
/// (kmodfarm_package::OUTPUT_MARKER).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name != ".kmodfarm-output")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn writes_both_packages_into_kmodfarm_out_by_default() {
    let p = project();
    let out = kmodfarm(p.path(), &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = p.path().join("kmodfarm-out/packages");
    assert_eq!(
        listing(&dir),
        [
            "clitest-dkms-0.3.0-1.noarch.rpm",
            "clitest-dkms_0.3.0-1_all.deb"
        ]
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wrote ") && text.contains("clitest-dkms_0.3.0-1_all.deb"),
        "{text}"
    );
}

#[test]
fn source_date_epoch_makes_reruns_identical_and_sets_the_dates() {
    let p = project();
    let read = |name: &str| std::fs::read(p.path().join("out").join(name)).unwrap();
    let names = [
        "clitest-dkms_0.3.0-1_all.deb",
        "clitest-dkms-0.3.0-1.noarch.rpm",
    ];
    let env = [("SOURCE_DATE_EPOCH", "1234567890")];
    let out_dir = p.path().join("out");
    let out_arg = out_dir.display().to_string();
    let first = kmodfarm(p.path(), &["--out", &out_arg], &env);
    assert!(first.status.success(), "{}", stderr(&first));
    let before: Vec<Vec<u8>> = names.iter().map(|n| read(n)).collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = kmodfarm(p.path(), &["--out", &out_arg], &env);
    assert!(second.status.success(), "{}", stderr(&second));
    let after: Vec<Vec<u8>> = names.iter().map(|n| read(n)).collect();
    assert!(
        before == after,
        "a rerun with SOURCE_DATE_EPOCH changed the bytes"
    );

    let rpm = Command::new("rpm")
        .args(["-qp", "--qf", "%{BUILDTIME}"])
        .arg(out_dir.join(names[1]))
        .output()
        .expect("rpm is installed");
    assert_eq!(String::from_utf8_lossy(&rpm.stdout), "1234567890");
}

#[test]
fn without_source_date_epoch_the_newest_input_dates_the_package() {
    let p = project();
    let newest = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    for entry in [
        "kmodfarm.toml",
        "src/Makefile",
        "src/clitest.c",
        "src/configure",
    ] {
        let f = std::fs::File::options()
            .append(true)
            .open(p.path().join(entry))
            .unwrap();
        let when = if entry == "src/clitest.c" {
            newest
        } else {
            newest - std::time::Duration::from_secs(86_400)
        };
        f.set_modified(when).unwrap();
    }
    let out_arg = p.path().join("out").display().to_string();
    let out = kmodfarm(p.path(), &["--format", "rpm", "--out", &out_arg], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rpm = Command::new("rpm")
        .args(["-qp", "--qf", "%{BUILDTIME}"])
        .arg(p.path().join("out/clitest-dkms-0.3.0-1.noarch.rpm"))
        .output()
        .expect("rpm is installed");
    assert_eq!(String::from_utf8_lossy(&rpm.stdout), "1500000000");
}

#[test]
fn dry_run_prints_the_plan_as_json_and_writes_nothing() {
    let p = project();
    let out = kmodfarm(p.path(), &["--dry-run", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clitest-dkms", "clitest-dkms"]);
    assert_eq!(plan[0]["format"], "deb");
    assert_eq!(plan[1]["format"], "rpm");
    assert_eq!(plan[1]["depends"][3], "kernel-devel");
    let paths: Vec<&str> = plan[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/usr/src/clitest-0.3.0/dkms.conf"),
        "{paths:?}"
    );
    assert!(
        !p.path().join("kmodfarm-out/packages").exists(),
        "a dry run wrote packages"
    );
}

#[test]
fn distro_chooses_the_headers_dependency() {
    let p = project();
    let out = kmodfarm(
        p.path(),
        &[
            "--dry-run",
            "--json",
            "--format",
            "rpm",
            "--distro",
            "sles-15",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan[0]["depends"][3], "kernel-default-devel");
    let bad = kmodfarm(p.path(), &["--dry-run", "--distro", "plan9"], &[]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown distro 'plan9'"),
        "{}",
        stderr(&bad)
    );
}

fn assert_nothing_written(dir: &Path) {
    let left = listing(dir);
    assert!(
        left.iter()
            .all(|n| !n.ends_with(".deb") && !n.ends_with(".rpm") && !n.ends_with(".part")),
        "left in {}: {left:?}",
        dir.display()
    );
}

#[test]
fn a_missing_build_script_fails_naming_it() {
    let p = project();
    std::fs::remove_file(p.path().join("src/configure")).unwrap();
    let out = kmodfarm(p.path(), &[], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    // The same check and words as `kmodfarm lint`, with the manifest line.
    assert!(
        err.contains("pre_build = \"configure\": the script")
            && err.contains("kmodfarm.toml:")
            && err.contains(&p.path().join("src/configure").display().to_string()),
        "{err}"
    );
    assert_nothing_written(&p.path().join("kmodfarm-out/packages"));
}

/// Root reads any file whatever its mode, so "unreadable" is a FIFO here
/// (reading one blocks) and a dangling symlink.
#[test]
fn unreadable_source_entries_fail_naming_them() {
    let p = project();
    let fifo = p.path().join("src/fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = kmodfarm(p.path(), &[], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&fifo.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_nothing_written(&p.path().join("kmodfarm-out/packages"));

    std::fs::remove_file(&fifo).unwrap();
    let link = p.path().join("src/broken.h");
    std::os::unix::fs::symlink("nowhere.h", &link).unwrap();
    let out = kmodfarm(p.path(), &[], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&link.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_nothing_written(&p.path().join("kmodfarm-out/packages"));
}

#[test]
fn an_unwritable_output_directory_fails_naming_it() {
    let p = project();
    let blocker = p.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out_dir = blocker.join("packages");
    let out = kmodfarm(p.path(), &["--out", &out_dir.display().to_string()], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&out_dir.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_signing_key_fails_before_anything_is_written() {
    let p = project();
    let key = p.path().join("key.asc");
    std::fs::write(&key, "not a key\n").unwrap();
    let out_dir: PathBuf = p.path().join("out");
    let out = kmodfarm(
        p.path(),
        &[
            "--out",
            &out_dir.display().to_string(),
            "--sign-key",
            &key.display().to_string(),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&key.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_nothing_written(&out_dir);
}

#[test]
fn prebuilt_tree_gives_one_package_per_built_kernel() {
    let p = project();
    let build = p.path().join("build");
    for (distro, arch, kernel) in [
        ("debian-12", "amd64", "6.1.0-56-amd64"),
        ("debian-12", "amd64", "6.12.117+deb12-amd64"),
        ("rhel-9", "x86_64", "5.14.0-503.40.1.el9_5.x86_64"),
    ] {
        let dir = build.join(distro).join(arch).join(kernel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("clitest.ko.zst"), b"(\xb5/\xfd").unwrap();
    }
    let out_dir = p.path().join("out");
    let out = kmodfarm(
        p.path(),
        &[
            "--prebuilt",
            &build.display().to_string(),
            "--out",
            &out_dir.display().to_string(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        listing(&out_dir),
        [
            "clitest-dkms-0.3.0-1.noarch.rpm",
            "clitest-dkms_0.3.0-1_all.deb",
            "clitest-modules-6.1.0-56-amd64_0.3.0-1_amd64.deb",
            "clitest-modules-6.12.117+deb12-amd64_0.3.0-1_amd64.deb",
            "kmod-clitest-5.14.0-503.40.1.el9_5.x86_64-0.3.0-1.x86_64.rpm",
        ]
    );

    // A kernel directory without the module is an error naming it.
    let empty = build.join("debian-12/amd64/6.1.0-99-amd64");
    std::fs::create_dir_all(&empty).unwrap();
    let out = kmodfarm(
        p.path(),
        &["--dry-run", "--prebuilt", &build.display().to_string()],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&empty.display().to_string())
            && stderr(&out).contains("clitest.ko.zst"),
        "{}",
        stderr(&out)
    );
}
