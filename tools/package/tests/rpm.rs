//! The .rpm packages, read back by the real rpm and rpmlint.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use kmodfarm_package::{write_package, Format};

/// kmodfarm's rpmlint filters, each with its reason (rpmlint reports a
/// filter that matches nothing as an error, hence one file per kind).
const DKMS_RPMLINTRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rpmlint/dkms.rpmlintrc");
const PREBUILT_RPMLINTRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rpmlint/prebuilt.rpmlintrc");

fn query(rpm: &Path, args: &[&str]) -> String {
    run(tool("rpm").arg("-qp").args(args).arg(rpm))
}

#[test]
fn dkms_rpm_header_is_what_rpm_reads() {
    let p = project();
    let rpm = dkms_package(&p, Format::Rpm);
    assert_eq!(rpm.file_name().unwrap(), "kmftest-dkms-2.1.0-1.noarch.rpm");

    let info = query(&rpm, &["-i"]);
    for (tag, value) in [
        ("Name", "kmftest-dkms"),
        ("Version", "2.1.0"),
        ("Release", "1"),
        ("Architecture", "noarch"),
        ("License", "GPL-2.0-only"),
        ("Summary", "kmodfarm test module"),
        ("URL", "https://example.org/kmftest"),
    ] {
        assert!(
            info.lines()
                .any(|l| l.starts_with(tag)
                    && l.split_once(':').map(|(_, v)| v.trim()) == Some(value)),
            "rpm -qpi has no '{tag}: {value}':\n{info}"
        );
    }
    assert!(info.contains("It has two paragraphs."), "{info}");
    // No host-specific data: no build host recorded.
    assert!(
        !info.contains(&hostname()),
        "the build host leaked into the header:\n{info}"
    );

    let requires = query(&rpm, &["--requires"]);
    for dep in ["dkms", "gcc", "make", "kernel-devel"] {
        assert!(
            requires.lines().any(|l| l.trim() == dep),
            "no Requires {dep}:\n{requires}"
        );
    }
    let provides = query(&rpm, &["--provides"]);
    assert!(provides.contains("kmftest-kmod = 2.1.0-1"), "{provides}");

    let scripts = query(&rpm, &["--scripts"]);
    for which in ["postinstall", "preuninstall", "postuninstall"] {
        assert!(
            scripts.contains(&format!("{which} scriptlet (using /bin/sh):")),
            "no {which} scriptlet with /bin/sh:\n{scripts}"
        );
    }
    assert!(
        scripts.contains("/usr/lib/kmftest-dkms/kmodfarm-dkms configure"),
        "{scripts}"
    );
}

#[test]
fn dkms_rpm_files_modes_owners_and_times() {
    let p = project();
    let rpm = dkms_package(&p, Format::Rpm);
    let list = query(&rpm, &["-l"]);
    for path in [
        "/usr/src/kmftest-2.1.0/configure",
        "/usr/src/kmftest-2.1.0/dkms.conf",
        "/usr/src/kmftest-2.1.0/include/kmftest.h",
        "/usr/lib/kmftest-dkms/kmodfarm-dkms",
        "/etc/kernel/postinst.d/kmftest-dkms",
        "/usr/lib/modules-load.d/kmftest.conf",
    ] {
        assert!(
            list.lines().any(|l| l == path),
            "{path} not in rpm -qpl:\n{list}"
        );
    }
    assert!(
        !list.contains("/usr/share/doc"),
        "Debian docs in the rpm:\n{list}"
    );
    assert!(
        !list.contains(".git") && !list.contains("kmftest.o"),
        "{list}"
    );

    let table = query(
        &rpm,
        &["--qf", "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMTIMES} %{FILEFLAGS:fflags}\n]"],
    );
    let row = |path: &str| {
        table
            .lines()
            .find(|l| l.split(' ').next() == Some(path))
            .unwrap_or_else(|| panic!("{path} missing:\n{table}"))
            .to_string()
    };
    assert!(row("/usr/src/kmftest-2.1.0/configure").contains("-rwxr-xr-x root:root 1700000000"));
    assert!(row("/usr/src/kmftest-2.1.0/Makefile").contains("-rw-r--r-- root:root 1700000000"));
    assert!(
        row("/usr/src/kmftest-2.1.0").starts_with("/usr/src/kmftest-2.1.0 drwxr-xr-x root:root")
    );
    assert!(row("/usr/src/kmftest-2.1.0/include").contains("drwxr-xr-x"));
    // Executable hooks are not %config in the rpm (see the writer).
    let hook = row("/etc/kernel/postinst.d/kmftest-dkms");
    assert!(
        hook.contains("-rwxr-xr-x root:root") && !hook.ends_with(" c") && !hook.ends_with(" cn"),
        "{hook}"
    );
    for l in table.lines() {
        assert!(l.contains(" root:root 1700000000 "), "{l}");
    }
}

#[test]
fn rpm_k_accepts_the_digests() {
    let p = project();
    for spec in [
        dkms_spec(&p, Format::Rpm),
        prebuilt_spec(&p, Format::Rpm, "5.14.0-503.40.1.el9_5.x86_64"),
    ] {
        let rpm = write_package(&spec, &p.out(), None).unwrap();
        let db = tempfile::tempdir().unwrap();
        let out = run(tool("rpm")
            .arg("--dbpath")
            .arg(db.path())
            .arg("-K")
            .arg(&rpm));
        assert!(out.contains("digests OK"), "{out}");
    }
}

#[test]
fn prebuilt_rpm_requires_its_exact_kernel_and_runs_depmod() {
    let p = project();
    let k = "5.14.0-503.40.1.el9_5.x86_64";
    let rpm = write_package(&prebuilt_spec(&p, Format::Rpm, k), &p.out(), None).unwrap();
    assert_eq!(
        rpm.file_name().unwrap().to_string_lossy(),
        format!("kmod-kmftest-{k}-2.1.0-1.x86_64.rpm")
    );
    let requires = query(&rpm, &["--requires"]);
    assert!(
        requires
            .lines()
            .any(|l| l.trim() == format!("kernel-uname-r = {k}")),
        "{requires}"
    );
    let list = query(&rpm, &["-l"]);
    assert!(
        list.contains(&format!("/lib/modules/{k}/updates/kmftest.ko.zst")),
        "{list}"
    );
    assert!(
        list.contains(&format!("/var/lib/kmodfarm/kmftest/prebuilt/{k}")),
        "{list}"
    );
    let scripts = query(&rpm, &["--scripts"]);
    assert!(
        scripts.contains("postinstall scriptlet (using /bin/sh):"),
        "{scripts}"
    );
    assert!(scripts.contains("depmod -a \"$kernel\""), "{scripts}");
    assert!(scripts.contains("if [ \"$1\" -eq 0 ]; then"), "{scripts}");
}

#[test]
fn rpmlint_finds_no_errors() {
    let p = project();
    let rpms = [
        (dkms_package(&p, Format::Rpm), DKMS_RPMLINTRC),
        (
            write_package(
                &prebuilt_spec(&p, Format::Rpm, "5.14.0-503.40.1.el9_5.x86_64"),
                &p.out(),
                None,
            )
            .unwrap(),
            PREBUILT_RPMLINTRC,
        ),
    ];
    for (rpm, rc) in rpms {
        let text = assert_no_lint_errors(tool("rpmlint").arg("-r").arg(rc).arg(&rpm), &rpm, |l| {
            l.contains(": E: ")
        });
        assert!(
            text.contains("0 errors"),
            "rpmlint did not report its count:\n{text}"
        );
    }
}

/// `rpm --root DIR -i --nodeps --noscripts`: the files land with the modes
/// the package declares.
#[test]
fn rpm_installs_into_a_root_with_declared_modes() {
    let p = project();
    let rpm = dkms_package(&p, Format::Rpm);
    let root = tempfile::tempdir().unwrap();
    run(tool("rpm").arg("--root").arg(root.path()).arg("--initdb"));
    run(tool("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&rpm));
    let mode = |rel: &str| {
        let meta =
            std::fs::metadata(root.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        meta.permissions().mode() & 0o7777
    };
    assert_eq!(mode("usr/src/kmftest-2.1.0/configure"), 0o755);
    assert_eq!(mode("usr/src/kmftest-2.1.0/kmftest.c"), 0o644);
    assert_eq!(mode("usr/src/kmftest-2.1.0/dkms.conf"), 0o644);
    assert_eq!(mode("usr/src/kmftest-2.1.0/include"), 0o755);
    assert_eq!(mode("usr/lib/kmftest-dkms/kmodfarm-dkms"), 0o755);
    assert_eq!(mode("etc/kernel/postinst.d/kmftest-dkms"), 0o755);
    assert_eq!(
        std::fs::read_to_string(root.path().join("usr/src/kmftest-2.1.0/include/kmftest.h"))
            .unwrap(),
        "#define KMFTEST 1\n"
    );
    let q = run(tool("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["-q", "kmftest-dkms"]));
    assert_eq!(q.trim(), "kmftest-dkms-2.1.0-1.noarch");
    // rpm -V: every file as the package declares it (no output, exit 0).
    let verify =
        run(tool("rpm")
            .arg("--root")
            .arg(root.path())
            .args(["-V", "--nodeps", "kmftest-dkms"]));
    assert_eq!(verify.trim(), "", "rpm -V found differences:\n{verify}");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}
