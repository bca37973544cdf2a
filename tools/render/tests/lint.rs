//! `kmodfarm lint`'s checks, on clean input and on each kind of mistake.

mod common;

use std::fs;
use std::path::Path;

use kmodfarm_render::{lint, lint_dkms_conf, Finding, RenderOptions, Severity};

fn errors(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_clean_manifest_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::second_manifest(dir.path());
    let findings = lint(&manifest, &RenderOptions::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn the_rendered_dkms_confs_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    for manifest in [
        common::example_manifest(),
        common::second_manifest(dir.path()),
    ] {
        let files = common::render(&manifest);
        let conf = common::file(&files, "dkms.conf");
        let findings = lint_dkms_conf(Path::new("dkms.conf"), &conf.contents, None);
        assert!(
            findings.is_empty(),
            "{}: {findings:#?}",
            manifest.package.name
        );
    }
}

#[test]
fn deprecated_unknown_and_inconsistent_arrays_are_errors_with_lines() {
    let conf = "\
PACKAGE_NAME=\"legacy\"
PACKAGE_VERSION=\"0.9\"
AUTOINSTALL=\"yes\"
REMAKE_INITRD=\"yes\"
BUILT_MODULE_NAME[0]=\"legacy\"
DEST_MODULE_LOCATION[0]=\"/updates\"
BUILT_MODULE_NAME[1]=\"legacy_helper\"
BUILD_EXLUSIVE_KERNEL=\"^6\\.\"
";
    let findings = lint_dkms_conf(Path::new("old/dkms.conf"), conf, None);
    assert_eq!(
        errors(&findings),
        [
            "old/dkms.conf:4: error: deprecated directive REMAKE_INITRD: DKMS 3 ignores it; initramfs updates belong in the package scripts",
            "old/dkms.conf:8: error: unknown directive BUILD_EXLUSIVE_KERNEL: DKMS does not read it",
            "old/dkms.conf:7: error: BUILT_MODULE_NAME[1] has no DEST_MODULE_LOCATION[1]: every module needs both",
        ]
    );
    assert_eq!(findings.len(), 3, "{findings:#?}");
}

#[test]
fn gaps_and_orphans_in_arrays_are_errors() {
    let conf = "\
PACKAGE_NAME=\"g\"
PACKAGE_VERSION=\"1\"
AUTOINSTALL=\"yes\"
BUILT_MODULE_NAME[0]=\"a\"
DEST_MODULE_LOCATION[0]=\"/updates\"
BUILT_MODULE_NAME[2]=\"c\"
DEST_MODULE_LOCATION[2]=\"/extra\"
BUILT_MODULE_LOCATION[3]=\"d\"
";
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), conf, None));
    assert!(e.contains(&"dkms.conf:6: error: BUILT_MODULE_NAME[2] leaves a gap: indices must run 0, 1, 2… (found 0, 2)".to_string()), "{e:#?}");
    assert!(e.contains(&"dkms.conf:7: error: DEST_MODULE_LOCATION[2] leaves a gap: indices must run 0, 1, 2… (found 0, 2)".to_string()), "{e:#?}");
    assert!(e.contains(&"dkms.conf:8: error: BUILT_MODULE_LOCATION[3] belongs to no module: there is no BUILT_MODULE_NAME[3]".to_string()), "{e:#?}");
}

#[test]
fn only_kmodfarms_own_block_may_be_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::render(&common::second_manifest(dir.path()));
    let ours = &common::file(&files, "dkms.conf").contents;
    // The same block for another package's marker directory is not ours.
    let foreign = ours.replace("/var/lib/kmodfarm/kmfsym/", "/var/lib/kmodfarm/other/");
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &foreign, None));
    assert_eq!(e.len(), 2, "the if and the fi: {e:#?}");
    assert!(e[0].contains("is not an assignment"), "{e:#?}");
    // Code DKMS would run is flagged with its line.
    let extra = format!("{ours}rm -rf /tmp/x\n");
    let line = extra.lines().count();
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &extra, None));
    assert_eq!(e, [format!("dkms.conf:{line}: error: 'rm -rf /tmp/x' is not an assignment; DKMS sources dkms.conf with bash, and only assignments (and kmodfarm's own blocks) belong there")]);
    // The block may only switch the build off.
    let widened = ours.replace(
        "    BUILD_EXCLUSIVE_KERNEL=\"^$\"",
        "    BUILD_EXCLUSIVE_KERNEL=\".*\"",
    );
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &widened, None));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("only BUILD_EXCLUSIVE_KERNEL=\"^$\" belongs in the prebuilt block"));
}

#[test]
fn the_autoinstall_block_is_accepted_only_as_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::render(&common::second_manifest(dir.path()));
    let ours = &common::file(&files, "dkms.conf").contents;
    let helper = "/usr/lib/kmfsym-dkms/kmodfarm-dkms";
    let open = format!("if [ ! -x \"{helper}\" ] || ! \"{helper}\" autoinstall-wants \"$$\"; then");
    let line_of = |text: &str, wanted: &str| text.lines().position(|l| l == wanted).unwrap() + 1;
    assert!(
        ours.contains(&format!("{open}\n    unset AUTOINSTALL\nfi\n")),
        "{ours}"
    );
    let findings = lint_dkms_conf(Path::new("dkms.conf"), ours, None);
    assert!(findings.is_empty(), "{findings:#?}");

    // Another program in the same place is code DKMS would run.
    let foreign = ours.replace(helper, "/usr/local/bin/other");
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &foreign, None));
    let if_line = line_of(&foreign, &open.replace(helper, "/usr/local/bin/other"));
    assert_eq!(e.len(), 3, "the if, the unset and the fi: {e:#?}");
    assert!(
        e[0].starts_with(&format!("dkms.conf:{if_line}: error: 'if [ ! -x")),
        "{e:#?}"
    );

    // The block may only unset AUTOINSTALL...
    let other = ours.replace("    unset AUTOINSTALL", "    rm -rf /var/lib/dkms");
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &other, None));
    assert!(
        e[0].starts_with(&format!(
            "dkms.conf:{}: error: the autoinstall block must hold exactly 'unset AUTOINSTALL'",
            line_of(&other, &open)
        )),
        "{e:#?}"
    );
    // ...and nothing may be assigned in it besides.
    let extra = ours.replace(
        "    unset AUTOINSTALL",
        "    unset AUTOINSTALL\n    MAKE[0]=\"make evil\"",
    );
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &extra, None));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains("only unset AUTOINSTALL belongs in the autoinstall block"),
        "{e:#?}"
    );

    // Without the file's own AUTOINSTALL="yes", the block does not hide
    // that autoinstall is off.
    let off = ours.replace("AUTOINSTALL=\"yes\"\n", "");
    let findings = lint_dkms_conf(Path::new("dkms.conf"), &off, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0]
            .message
            .starts_with("AUTOINSTALL is not \"yes\""),
        "{findings:#?}"
    );

    // Each block is accepted once: a second copy is code.
    let twice = format!("{ours}{open}\n    unset AUTOINSTALL\nfi\n");
    let e = errors(&lint_dkms_conf(Path::new("dkms.conf"), &twice, None));
    assert_eq!(e.len(), 3, "{e:#?}");
}

#[test]
fn source_tree_problems_name_the_manifest_line() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::second_manifest(dir.path());
    fs::remove_file(dir.path().join("src/scripts/configure")).unwrap();
    fs::remove_file(dir.path().join("src/Makefile")).unwrap();
    let manifest_path = manifest.path.display().to_string();
    let e = errors(&lint(&manifest, &RenderOptions::default()));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with(&format!("{manifest_path}:11: error: the source tree"))
            && e[0].contains("no Makefile or Kbuild"),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with(&format!(
            "{manifest_path}:24: error: pre_build = \"scripts/configure --with-symbols\": the script"
        )) && e[1].ends_with("src/scripts/configure does not exist"),
        "{e:#?}"
    );
}

#[test]
fn every_broken_template_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::second_manifest(dir.path());
    let templates = dir.path().join("t");
    fs::create_dir(&templates).unwrap();
    fs::write(templates.join("rpm-post.sh.tera"), "{% if %}\n").unwrap();
    // An unclosed tag: pest reports where the file ends without the `}}`.
    fs::write(templates.join("rpm-preun.sh.tera"), "ok\n{{ name\n").unwrap();
    let opts = RenderOptions {
        templates_dir: Some(templates.clone()),
    };
    let e = errors(&lint(&manifest, &opts));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with(&format!(
            "{}:1:7:",
            templates.join("rpm-post.sh.tera").display()
        )),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with(&format!(
            "{}:3:1:",
            templates.join("rpm-preun.sh.tera").display()
        )),
        "{e:#?}"
    );
}

#[test]
fn a_range_disagreement_between_regex_and_min_max_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::render(&common::second_manifest(dir.path()));
    let conf = common::file(&files, "dkms.conf")
        .contents
        .replace("6.8.999999", "6.9.999999");
    let findings = lint_dkms_conf(Path::new("dkms.conf"), &conf, None);
    let e = errors(&findings);
    assert_eq!(e.len(), 1, "{findings:#?}");
    assert!(
        e[0].contains("BUILD_EXCLUSIVE_KERNEL rejects kernels inside 5.15 to 6.9: 6.9"),
        "{e:#?}"
    );
}

#[test]
fn the_boot_test_section_is_linted_for_what_it_will_not_check() {
    let example = common::example_manifest();
    assert!(lint(&example, &RenderOptions::default()).is_empty());
    let warnings = |m: &kmodfarm_model::Manifest| -> Vec<String> {
        lint(m, &RenderOptions::default())
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(ToString::to_string)
            .collect()
    };
    let mut no_expect = example.clone();
    no_expect.test.expect = None;
    let found = warnings(&no_expect);
    assert!(
        found.len() == 1 && found[0].contains("only its exit status is checked"),
        "{found:#?}"
    );
    // An address check without a System.map can never hold.
    let mut address = example.clone();
    address.test.expect = Some("symbol=0x{kallsyms:linux_banner} ".into());
    let found = warnings(&address);
    assert!(
        found.len() == 1 && found[0].contains("needs has no \"system-map\""),
        "{found:#?}"
    );
    address
        .build
        .needs
        .push(kmodfarm_model::KernelInput::SystemMap);
    assert!(warnings(&address).is_empty());
}
