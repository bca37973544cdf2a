//! The manifest: the example parses, and each kind of bad input is refused
//! with the file, line and column of the mistake.

use std::path::{Path, PathBuf};

use kmodfarm_model::manifest::ManifestError;
use kmodfarm_model::{Compression, DistroSet, KernelInput, Manifest};

const GOOD: &str = r#"[package]
name = "snapper"
version = "2.4.1"
license = "GPL-2.0-only"
summary = "Block snapshot driver"
description = "Takes copy-on-write snapshots of block devices."
maintainer = "Backup Co <kernel@backup.example>"

[source]
dir = "driver"

[[module]]
name = "snapper"
dest = "/kernel/drivers/block"

[[module]]
name = "snapper_cow"
location = "cow"

[build]
pre_build = "configure --fast"
needs = ["system-map", "config"]
compression = "xz"

[kernels]
min = "5.15"
max = "6.8"

[targets]
distros = ["ubuntu-22.04", "rhel-9"]

[boot]
load = ["snapper"]
initramfs = ["snapper"]
options = { snapper = "cow_size=64" }
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("proj/kmodfarm.toml"), text)
}

/// The error for `text`, which must point at `line` and mention `needle`.
fn refused(text: &str, line: usize, needle: &str) {
    match parse(text) {
        Ok(_) => panic!("accepted a manifest that should fail ({needle})"),
        Err(ManifestError::Invalid { pos, message }) => {
            assert_eq!(pos.path, PathBuf::from("proj/kmodfarm.toml"));
            assert_eq!(pos.line, line, "wrong line for: {message}");
            assert!(
                message.contains(needle),
                "message '{message}' lacks '{needle}'"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_full_manifest_reads_as_written() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.package.name, "snapper");
    assert_eq!(m.package.release, 1);
    assert_eq!(m.source_path(), PathBuf::from("proj/driver"));
    assert_eq!(m.modules.len(), 2);
    assert_eq!(m.modules[0].dest, "/kernel/drivers/block");
    assert_eq!(m.modules[1].location, "cow");
    assert_eq!(
        m.modules[1].dest, "/updates/dkms",
        "DKMS's usual destination is the default"
    );
    assert!(m.build.needs(KernelInput::SystemMap));
    assert_eq!(m.build.compression, Compression::Xz);
    assert_eq!(m.kernels.min.as_ref().unwrap().to_string(), "5.15");
    assert_eq!(m.boot.options["snapper"], "cow_size=64");
    m.check_distros(&DistroSet::builtin()).unwrap();
}

#[test]
fn to_toml_reads_back_the_same_manifest() {
    let m = parse(GOOD).unwrap();
    let again = parse(&m.to_toml()).unwrap();
    assert_eq!(again.package, m.package);
    assert_eq!(again.modules, m.modules);
    assert_eq!(again.build, m.build);
    assert_eq!(again.kernels, m.kernels);
    assert_eq!(again.boot, m.boot);
    assert_eq!(again.distros, m.distros);
}

#[test]
fn the_example_module_manifest_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml");
    let m = Manifest::load(&path).unwrap();
    m.check_distros(&DistroSet::builtin()).unwrap();
    assert_eq!(m.package.name, "kmfdemo");
}

#[test]
fn malformed_toml_names_the_line() {
    refused(
        &GOOD.replace(
            "summary = \"Block snapshot driver\"",
            "summary = \"Block snapshot driver",
        ),
        5,
        "",
    );
}

#[test]
fn unknown_keys_are_errors() {
    refused(
        &GOOD.replace("[source]\n", "[source]\nexclude = [\"x\"]\n"),
        10,
        "unknown field `exclude`",
    );
    refused(
        &GOOD.replace("compression = \"xz\"", "compresion = \"xz\""),
        23,
        "unknown field `compresion`",
    );
    refused(
        &format!("{GOOD}\n[extra]\nx = 1\n"),
        37,
        "unknown field `extra`",
    );
}

#[test]
fn a_version_dkms_rejects_is_refused() {
    for bad in ["2.4-1", "v2.4", "2.4 beta", "2.4/1", "2_4"] {
        refused(
            &GOOD.replace("\"2.4.1\"", &format!("\"{bad}\"")),
            3,
            "version",
        );
    }
}

#[test]
fn a_module_name_with_a_path_separator_is_refused() {
    refused(
        &GOOD.replace("name = \"snapper_cow\"", "name = \"cow/snapper_cow\""),
        17,
        "path separator",
    );
    refused(
        &GOOD.replace("name = \"snapper_cow\"", "name = \"snapper.cow\""),
        17,
        "not a kernel module name",
    );
}

#[test]
fn min_above_max_is_refused() {
    refused(
        &GOOD.replace("min = \"5.15\"", "min = \"6.9\""),
        26,
        "min 6.9 is above max 6.8",
    );
    assert!(
        parse(&GOOD.replace("min = \"5.15\"", "min = \"6.8.3\"")).is_ok(),
        "6.8.3 lies inside series 6.8"
    );
}

#[test]
fn other_mistakes_are_refused_where_they_are() {
    refused(
        &GOOD.replace("max = \"6.8\"", "max = \"6.x\""),
        27,
        "MAJOR.MINOR",
    );
    refused(
        &GOOD.replace(
            "name = \"snapper\"\nversion",
            "name = \"Snapper_Driver\"\nversion",
        ),
        2,
        "package name",
    );
    refused(
        &GOOD.replace("dest = \"/kernel/drivers/block\"", "dest = \"/usr/lib\""),
        14,
        "/kernel, /updates or /extra",
    );
    refused(
        &GOOD.replace("dir = \"driver\"", "dir = \"../elsewhere\""),
        10,
        "relative path inside",
    );
    refused(
        &GOOD.replace("load = [\"snapper\"]", "load = [\"ghost\"]"),
        32,
        "'ghost'",
    );
    refused(
        &GOOD.replace("Backup Co <kernel@backup.example>", "Backup Co"),
        7,
        "Name <email>",
    );
    refused(
        &GOOD.replace("\"system-map\", \"config\"", "\"vmlinux\""),
        22,
        "unknown variant `vmlinux`",
    );
}

#[test]
fn unknown_distro_names_its_position() {
    let m = parse(&GOOD.replace("\"rhel-9\"", "\"rhel-10\"")).unwrap();
    let err = m
        .check_distros(&DistroSet::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("proj/kmodfarm.toml:30:"), "{err}");
    assert!(
        err.contains("unknown distro 'rhel-10'") && err.contains("rhel-9"),
        "{err}"
    );
}

#[test]
fn every_builtin_distro_names_kernel_packages() {
    let set = DistroSet::builtin();
    assert_eq!(
        set.ids().collect::<Vec<_>>(),
        [
            "debian-12",
            "debian-13",
            "rhel-8",
            "rhel-9",
            "sles-15",
            "ubuntu-22.04",
            "ubuntu-24.04"
        ]
    );
    let cases = [
        (
            "debian-12",
            "6.1.0-56-amd64",
            "linux-headers-6.1.0-56-amd64",
            "linux-image-6.1.0-56-amd64",
        ),
        (
            "debian-13",
            "6.12.57+deb13-cloud-amd64",
            "linux-headers-6.12.57+deb13-cloud-amd64",
            "linux-image-6.12.57+deb13-cloud-amd64",
        ),
        (
            "ubuntu-24.04",
            "6.8.0-62-generic",
            "linux-headers-6.8.0-62-generic",
            "linux-image-6.8.0-62-generic",
        ),
        (
            "rhel-9",
            "5.14.0-503.40.1.el9_5.x86_64",
            "kernel-devel-5.14.0-503.40.1.el9_5.x86_64",
            "kernel-core-5.14.0-503.40.1.el9_5.x86_64",
        ),
        (
            "sles-15",
            "6.4.0-150600.23.53-default",
            "kernel-default-devel-6.4.0-150600.23.53",
            "kernel-default-6.4.0-150600.23.53",
        ),
    ];
    for (id, release, headers, image) in cases {
        let d = set.get(id).unwrap();
        let k = release.parse().unwrap();
        assert_eq!(d.headers_package(&k), headers);
        assert_eq!(d.image_package(&k), image);
    }
    assert_eq!(
        set.get("debian-12")
            .unwrap()
            .system_map_package(&"6.1.0-56-amd64".parse().unwrap()),
        "linux-image-6.1.0-56-amd64-dbg"
    );
    assert!(
        set.get("debian-12")
            .unwrap()
            .kernel
            .boot_system_map_is_placeholder
    );
}

#[test]
fn a_user_distro_dir_adds_and_checks_names() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../../distros/debian-12.toml")
        .replace("id = \"debian-12\"", "id = \"mydeb\"");
    std::fs::write(dir.path().join("mydeb.toml"), &text).unwrap();
    let set = DistroSet::with_dir(dir.path()).unwrap();
    assert!(set.get("mydeb").is_some() && set.get("rhel-9").is_some());

    std::fs::write(dir.path().join("other.toml"), &text).unwrap();
    let err = DistroSet::with_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("other.toml") && err.contains("'mydeb'"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("other.toml")).unwrap();

    std::fs::write(
        dir.path().join("broken.toml"),
        text.replace("family = \"deb\"", "family = \"tgz\""),
    )
    .unwrap();
    let err = DistroSet::with_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("broken.toml:4:"), "{err}");
}

#[test]
fn the_boot_test_section_reads_and_refuses_what_checks_nothing() {
    let with = |test: &str| format!("{GOOD}\n[test]\n{test}\n");
    let m = parse(&with(
        "smoke = \"cat /dev/snapper\"\nexpect = \"snapper 2.4.1\"\ntimeout = 60",
    ))
    .unwrap();
    assert_eq!(m.test.smoke.as_deref(), Some("cat /dev/snapper"));
    assert_eq!(m.test.expect.as_deref(), Some("snapper 2.4.1"));
    assert_eq!(m.test.timeout, Some(60));
    // It survives `init`'s rendering back to TOML.
    assert_eq!(parse(&m.to_toml()).unwrap().test, m.test);
    let test_line = GOOD.lines().count() + 2;
    refused(&with("expect = \"x\""), test_line, "needs a smoke command");
    refused(&with("smoke = \"  \""), test_line, "smoke is empty");
    refused(
        &with("smoke = \"true\"\nexpect = \"\""),
        test_line,
        "expect is empty",
    );
    refused(
        &with("smoke = \"true\"\ntimeout = 0"),
        test_line,
        "timeout = 0",
    );
    refused(
        &with("smoke = \"true\"\nretries = 3"),
        test_line + 2,
        "unknown field `retries`",
    );
}
