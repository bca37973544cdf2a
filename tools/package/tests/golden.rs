//! Golden files for what this crate generates itself: the control files
//! and the prebuilt packages' scripts (the -dkms scripts are the render
//! stage's and have their own snapshots there).

mod common;

use std::io::Write;

use common::*;
use kmodfarm_package::{write_package, Format, ScriptKind};

/// The control file; Installed-Size masked, as it follows the rendered
/// templates' sizes (the deb tests check it separately).
fn control(deb: &std::path::Path) -> String {
    run(tool("dpkg-deb").arg("--info").arg(deb).arg("control"))
        .lines()
        .map(|l| match l.strip_prefix("Installed-Size: ") {
            Some(n) if n.parse::<u64>().is_ok() => "Installed-Size: [KiB]".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn dkms_deb_control() {
    let p = project();
    let deb = dkms_package(&p, Format::Deb);
    insta::assert_snapshot!(control(&deb));
}

#[test]
fn prebuilt_deb_control() {
    let p = project();
    let deb = write_package(&prebuilt_spec(&p, Format::Deb, KERNEL), &p.out(), None).unwrap();
    insta::assert_snapshot!(control(&deb));
}

#[test]
fn prebuilt_scripts_are_golden_and_pass_shellcheck() {
    let p = project();
    for (format, kernel) in [
        (Format::Deb, KERNEL),
        (Format::Rpm, "5.14.0-503.40.1.el9_5.x86_64"),
    ] {
        let spec = prebuilt_spec(&p, format, kernel);
        for kind in [ScriptKind::PostInstall, ScriptKind::PostRemove] {
            let script = spec.script(kind).unwrap();
            assert_eq!(script.interpreter, "/bin/sh");
            let text = format!("#!{}\n{}", script.interpreter, script.body);
            insta::assert_snapshot!(format!("prebuilt_{format:?}_{kind:?}"), text);
            let mut file = tempfile::NamedTempFile::new().unwrap();
            file.write_all(text.as_bytes()).unwrap();
            run(tool("shellcheck").arg(file.path()));
        }
    }
}

/// The plan of a -dkms .deb, on fixed stand-ins for the rendered files so
/// the snapshot records this crate's decisions, not the templates' text.
#[test]
fn the_plan_prints_as_json() {
    use kmodfarm_package::dkms::{plan_dkms, DkmsInputs};
    use kmodfarm_package::{GeneratedFile, SourceTree};
    let p = project();
    let file = |name: &str, path: Option<&str>, mode| GeneratedFile {
        name: name.into(),
        install_path: path.map(String::from),
        mode,
        contents: format!("# {name}\n").into_bytes(),
    };
    let rendered = [
        file("dkms.conf", Some("/usr/src/kmftest-2.1.0/dkms.conf"), 0o644),
        file(
            "kmodfarm-dkms",
            Some("/usr/lib/kmftest-dkms/kmodfarm-dkms"),
            0o755,
        ),
        file(
            "kernel/postinst.d/kmftest-dkms",
            Some("/etc/kernel/postinst.d/kmftest-dkms"),
            0o755,
        ),
        file("debian/postinst", None, 0o755),
        file("debian/prerm", None, 0o755),
        file("rpm/post", None, 0o644),
    ];
    let distros = kmodfarm_model::DistroSet::builtin();
    let spec = plan_dkms(&DkmsInputs {
        manifest: &p.manifest,
        distro: distros.get("debian-12").unwrap(),
        format: Format::Deb,
        rendered: &rendered,
        tree: &SourceTree::of_manifest(&p.manifest).unwrap(),
        source_date: EPOCH,
    })
    .unwrap();
    let json = serde_json::to_string_pretty(&spec)
        .unwrap()
        .replace(&p.root().display().to_string(), "[project]");
    insta::assert_snapshot!(json);
}
