//! Every rendered shell script passes Debian's shellcheck (the real binary).
//! RPM scriptlets are bodies; rpm runs them with /bin/sh, so they are checked
//! with that interpreter line added.

mod common;

use kmodfarm_render::RenderedFile;

fn is_shell(f: &RenderedFile) -> bool {
    f.contents.starts_with("#!/bin/sh") || f.name.starts_with("rpm/")
}

fn shellcheck(f: &RenderedFile) -> Result<(), String> {
    let script = if f.contents.starts_with("#!") {
        f.contents.clone()
    } else {
        format!("#!/bin/sh\n{}", f.contents)
    };
    common::shellcheck(&f.name, &script, &["--shell=sh"])
}

fn check_all(files: &[RenderedFile]) -> usize {
    let scripts: Vec<&RenderedFile> = files.iter().filter(|f| is_shell(f)).collect();
    let failures: Vec<String> = scripts.iter().filter_map(|f| shellcheck(f).err()).collect();
    assert!(
        failures.is_empty(),
        "shellcheck findings:\n{}",
        failures.join("\n")
    );
    scripts.len()
}

#[test]
fn rendered_scripts_pass_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    let checked = check_all(&common::render(&common::example_manifest()))
        + check_all(&common::render(&common::second_manifest(dir.path())));
    // postinst, prerm, postrm, 3 scriptlets, kmodfarm-dkms, kmodfarm-prebuild,
    // 3 kernel hooks, for each manifest.
    assert_eq!(checked, 2 * 11);
}

#[test]
fn rendered_dkms_confs_pass_shellcheck_as_bash() {
    // DKMS sources dkms.conf with bash. Its assignments are read by DKMS
    // (SC2034: "appears unused") and it uses variables DKMS sets (SC2154:
    // "referenced but not assigned"); everything else must be clean, the
    // code blocks included.
    let dir = tempfile::tempdir().unwrap();
    for files in [
        common::render(&common::example_manifest()),
        common::render(&common::second_manifest(dir.path())),
    ] {
        let conf = common::file(&files, "dkms.conf");
        let options = ["--shell=bash", "--exclude=SC2034,SC2154"];
        common::shellcheck(&conf.name, &conf.contents, &options).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn shellcheck_finds_problems_in_a_bad_script() {
    // The check above could pass by never looking; this one must fail.
    let bad = RenderedFile {
        name: "bad".into(),
        install_path: None,
        mode: 0o755,
        contents: "#!/bin/sh\nrm -rf $1/*\n".into(),
        template: "none".into(),
    };
    assert!(shellcheck(&bad).is_err());
}
