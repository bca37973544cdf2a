//! The .deb packages, read back by the real dpkg-deb and lintian.

mod common;

use common::*;
use kmodfarm_package::{write_package, Format};

fn field(deb: &std::path::Path, name: &str) -> String {
    run(tool("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim_end()
        .to_string()
}

#[test]
fn dkms_deb_control_fields_are_what_dpkg_reads() {
    let p = project();
    let deb = write_package(&dkms_spec(&p, Format::Deb), &p.out(), None).unwrap();
    assert_eq!(deb.file_name().unwrap(), "kmftest-dkms_2.1.0-1_all.deb");

    assert_eq!(field(&deb, "Package"), "kmftest-dkms");
    assert_eq!(field(&deb, "Version"), "2.1.0-1");
    assert_eq!(field(&deb, "Architecture"), "all");
    assert_eq!(
        field(&deb, "Maintainer"),
        "kmodfarm tests <tests@example.org>"
    );
    assert_eq!(
        field(&deb, "Depends"),
        "dkms, gcc | c-compiler, make, linux-headers-amd64 | linux-headers-generic | linux-headers, kmod"
    );
    assert_eq!(field(&deb, "Section"), "kernel");
    assert_eq!(field(&deb, "Priority"), "optional");
    assert_eq!(field(&deb, "Homepage"), "https://example.org/kmftest");
    assert_eq!(
        field(&deb, "Description"),
        "kmodfarm test module\n A module the package tests build packages of.\n It has two paragraphs.\n .\n This is the second one."
    );
    let size: u64 = field(&deb, "Installed-Size").parse().unwrap();
    assert!(
        size >= 10,
        "Installed-Size {size} KiB is too small for the tree"
    );

    let info = run(tool("dpkg-deb").arg("--info").arg(&deb));
    for member in [
        "control",
        "md5sums",
        "conffiles",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(
            info.lines()
                .any(|l| l.split_whitespace().last() == Some(member)
                    || l.split_whitespace().any(|w| w == member)),
            "dpkg-deb --info lists no {member}:\n{info}"
        );
    }
}

#[test]
fn dkms_deb_contents_have_the_source_rendered_files_and_modes() {
    let p = project();
    let deb = write_package(&dkms_spec(&p, Format::Deb), &p.out(), None).unwrap();
    let listing = run(tool("dpkg-deb")
        .env("TZ", "UTC")
        .arg("--contents")
        .arg(&deb));
    let line = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
            .to_string()
    };
    let src = "/usr/src/kmftest-2.1.0";
    for (path, perms) in [
        (format!("{src}/"), "drwxr-xr-x"),
        (format!("{src}/Makefile"), "-rw-r--r--"),
        (format!("{src}/kmftest.c"), "-rw-r--r--"),
        (format!("{src}/include/kmftest.h"), "-rw-r--r--"),
        (format!("{src}/configure"), "-rwxr-xr-x"),
        (format!("{src}/dkms.conf"), "-rw-r--r--"),
        (format!("{src}/kmodfarm-prebuild"), "-rwxr-xr-x"),
        ("/usr/lib/kmftest-dkms/kmodfarm-dkms".into(), "-rwxr-xr-x"),
        ("/etc/kernel/postinst.d/kmftest-dkms".into(), "-rwxr-xr-x"),
        (
            "/etc/kernel/header_postinst.d/kmftest-dkms".into(),
            "-rwxr-xr-x",
        ),
        (
            "/usr/lib/kernel/install.d/40-kmftest-dkms.install".into(),
            "-rwxr-xr-x",
        ),
        ("/usr/lib/modules-load.d/kmftest.conf".into(), "-rw-r--r--"),
        ("/usr/share/doc/kmftest-dkms/copyright".into(), "-rw-r--r--"),
        (
            "/usr/share/doc/kmftest-dkms/changelog.Debian.gz".into(),
            "-rw-r--r--",
        ),
    ] {
        let l = line(&path);
        assert!(l.starts_with(perms), "{path}: expected {perms}, got: {l}");
    }
    // Every entry: root/root and SOURCE_DATE_EPOCH (2023-11-14 22:13 UTC).
    for l in listing.lines() {
        assert!(l.contains(" root/root "), "not owned by root: {l}");
        assert!(
            l.contains(" 2023-11-14 22:13 "),
            "not at the source date: {l}"
        );
    }
    for unwanted in [".git", "kmftest.o", "kmodfarm.toml"] {
        assert!(
            !listing.contains(unwanted),
            "{unwanted} was packaged:\n{listing}"
        );
    }

    // The dkms.conf shipped is the rendered one, not the tree's old one.
    let root = tempfile::tempdir().unwrap();
    run(tool("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
    let conf =
        std::fs::read_to_string(root.path().join("usr/src/kmftest-2.1.0/dkms.conf")).unwrap();
    assert!(
        conf.contains("PACKAGE_NAME=\"kmftest\"")
            || conf.contains("PACKAGE_NAME='kmftest'")
            || conf.contains("PACKAGE_NAME=kmftest"),
        "{conf}"
    );
    assert!(
        !conf.contains("old"),
        "the tree's stale dkms.conf was shipped:\n{conf}"
    );
}

#[test]
fn dkms_deb_md5sums_conffiles_and_scripts_are_right() {
    let p = project();
    let deb = write_package(&dkms_spec(&p, Format::Deb), &p.out(), None).unwrap();
    let work = tempfile::tempdir().unwrap();
    let control = work.path().join("DEBIAN");
    run(tool("dpkg-deb").arg("-x").arg(&deb).arg(work.path()));
    run(tool("dpkg-deb").arg("-e").arg(&deb).arg(&control));

    // md5sums verify against the unpacked files.
    let check = run(tool("md5sum")
        .arg("-c")
        .arg(control.join("md5sums"))
        .current_dir(work.path()));
    assert!(
        check.contains("usr/src/kmftest-2.1.0/kmftest.c: OK"),
        "{check}"
    );
    assert!(!check.contains("FAILED"), "{check}");

    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(
        conffiles,
        "/etc/kernel/header_postinst.d/kmftest-dkms\n/etc/kernel/postinst.d/kmftest-dkms\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(control.join(script)).unwrap();
        assert!(
            text.starts_with("#!/bin/sh\n"),
            "{script} lacks its interpreter:\n{text}"
        );
        if script != "postrm" {
            // postrm runs after the helper is gone; the others call it.
            assert!(
                text.contains("/usr/lib/kmftest-dkms/kmodfarm-dkms"),
                "{script}:\n{text}"
            );
        }
        assert_eq!(
            text.matches("#!").count(),
            1,
            "{script} has two #! lines:\n{text}"
        );
    }
}

#[test]
fn prebuilt_deb_installs_the_module_and_the_dkms_marker() {
    let p = project();
    let deb = write_package(&prebuilt_spec(&p, Format::Deb, KERNEL), &p.out(), None).unwrap();
    assert_eq!(
        deb.file_name().unwrap(),
        "kmftest-modules-6.1.0-56-amd64_2.1.0-1_amd64.deb"
    );
    assert_eq!(field(&deb, "Package"), "kmftest-modules-6.1.0-56-amd64");
    assert_eq!(field(&deb, "Architecture"), "amd64");
    assert_eq!(field(&deb, "Depends"), "linux-image-6.1.0-56-amd64");
    assert_eq!(field(&deb, "Provides"), "kmftest-modules");

    let listing = run(tool("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./lib/modules/6.1.0-56-amd64/updates/kmftest.ko.zst",
        "./var/lib/kmodfarm/kmftest/prebuilt/6.1.0-56-amd64",
    ] {
        let l = listing
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} missing:\n{listing}"));
        assert!(l.starts_with("-rw-r--r-- root/root"), "{l}");
    }

    let control = tempfile::tempdir().unwrap();
    run(tool("dpkg-deb").arg("-e").arg(&deb).arg(control.path()));
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("depmod -a \"$kernel\""), "{postinst}");
    assert!(
        postinst.contains("dkms remove \"$module/$version\" -k \"$kernel\""),
        "{postinst}"
    );
    let postrm = std::fs::read_to_string(control.path().join("postrm")).unwrap();
    assert!(postrm.contains("remove|purge)"), "{postrm}");
    assert!(
        postrm.contains("\"$helper\" kernel-installed \"$kernel\""),
        "{postrm}"
    );
    run(tool("shellcheck")
        .arg(control.path().join("postinst"))
        .arg(control.path().join("postrm")));
}

/// lintian on both kinds of .deb: no `E:` line. Warnings are printed for
/// whoever reads the test log.
#[test]
fn lintian_finds_no_errors() {
    let p = project();
    let debs = [
        write_package(&dkms_spec(&p, Format::Deb), &p.out(), None).unwrap(),
        write_package(&prebuilt_spec(&p, Format::Deb, KERNEL), &p.out(), None).unwrap(),
    ];
    for deb in debs {
        let out = output(tool("lintian").arg("--no-tag-display-limit").arg(&deb));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("lintian {}:\n{text}", deb.display());
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(
            errors.is_empty(),
            "lintian errors on {}:\n{}",
            deb.display(),
            errors.join("\n")
        );
        assert!(
            !text.contains("internal error") && !text.contains("Cannot"),
            "lintian could not check {}:\n{text}",
            deb.display()
        );
    }
}
