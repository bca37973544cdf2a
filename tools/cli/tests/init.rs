//! `kmodfarm init`, run as a user would: the real binary in a temp dir.

use std::path::Path;
use std::process::Output;

mod common;
use common::{kmodfarm_in, text};

fn kmodfarm(dir: &Path, args: &[&str]) -> Output {
    kmodfarm_in(dir, args, |cmd| {
        cmd.env("DEBFULLNAME", "Ada Admin")
            .env("DEBEMAIL", "ada@fleet.example");
    })
}

/// A DKMS source tree as vendors ship them: two modules, one in a subdirectory.
pub const MULTI_MODULE_CONF: &str = r#"# dkms.conf for the snapper driver
PACKAGE_NAME="snapper"
PACKAGE_VERSION="3.1.4"
BUILT_MODULE_NAME[0]="snapper"
BUILT_MODULE_LOCATION[0]="src/"
DEST_MODULE_LOCATION[0]="/kernel/drivers/block"
BUILT_MODULE_NAME[1]="snapper_cow"
BUILT_MODULE_LOCATION[1]="cow"
DEST_MODULE_LOCATION[1]="/updates/dkms"
MAKE[0]="make -C src KVER=${kernelver} KDIR=${kernel_source_dir} && make -C cow KDIR=${kernel_source_dir}"
PRE_BUILD="configure ${kernelver}"
BUILD_EXCLUSIVE_KERNEL_MIN="5.15"
BUILD_EXCLUSIVE_KERNEL_MAX="6.8.999999"
REMAKE_INITRD=yes
CLEAN="make clean"
AUTOINSTALL="yes"
"#;

fn dkms_tree(root: &Path) -> std::path::PathBuf {
    let tree = root.join("snapper-3.1.4");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::create_dir_all(tree.join("cow")).unwrap();
    std::fs::write(tree.join("dkms.conf"), MULTI_MODULE_CONF).unwrap();
    std::fs::write(tree.join("src/snapper.c"), "MODULE_LICENSE(\"GPL v2\");\n").unwrap();
    std::fs::write(tree.join("configure"), "#!/bin/sh\n").unwrap();
    tree
}

#[test]
fn init_scaffolds_a_manifest_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("my_sensor");
    std::fs::create_dir(&proj).unwrap();
    let out = kmodfarm(&proj, &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = kmodfarm_model::Manifest::load(&proj.join("kmodfarm.toml")).unwrap();
    assert_eq!(
        manifest.package.name, "my-sensor",
        "package names cannot hold '_'"
    );
    assert_eq!(manifest.modules[0].name, "my_sensor");
    assert_eq!(manifest.package.maintainer, "Ada Admin <ada@fleet.example>");

    let again = kmodfarm(&proj, &["init"]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already exists; pass --force"),
        "{}",
        text(&again)
    );
}

#[test]
fn init_from_imports_a_multi_module_dkms_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dkms_tree(dir.path());
    let out = kmodfarm(dir.path(), &["init", "--from", "snapper-3.1.4"]);
    assert!(out.status.success(), "{}", text(&out));
    let notes = text(&out);
    assert!(
        notes.contains("REMAKE_INITRD=yes became [boot] initramfs"),
        "{notes}"
    );
    assert!(
        notes.contains("line 15: CLEAN=\"make clean\" was dropped: deprecated in DKMS 3"),
        "{notes}"
    );

    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.name, "snapper");
    assert_eq!(m.package.version, "3.1.4");
    assert_eq!(
        m.package.license, "GPL-2.0-only",
        "read from MODULE_LICENSE"
    );
    assert_eq!(m.source_dir, Path::new("."));
    let modules: Vec<(&str, &str, &str)> = m
        .modules
        .iter()
        .map(|x| (x.name.as_str(), x.location.as_str(), x.dest.as_str()))
        .collect();
    assert_eq!(
        modules,
        [
            ("snapper", "src", "/kernel/drivers/block"),
            ("snapper_cow", "cow", "/updates/dkms")
        ]
    );
    assert_eq!(m.build.command.as_deref(), Some("make -C src KVER=${kernelver} KDIR=${kernel_source_dir} && make -C cow KDIR=${kernel_source_dir}"));
    assert_eq!(m.build.pre_build.as_deref(), Some("configure ${kernelver}"));
    assert_eq!(m.kernels.min.as_ref().unwrap().to_string(), "5.15");
    assert_eq!(m.kernels.max.as_ref().unwrap().to_string(), "6.8");
    assert_eq!(m.boot.initramfs, ["snapper", "snapper_cow"]);
}

#[test]
fn init_from_a_broken_dkms_conf_names_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dkms_tree(dir.path());
    std::fs::write(
        tree.join("dkms.conf"),
        MULTI_MODULE_CONF.replace("PACKAGE_VERSION=\"3.1.4\"", "PACKAGE_VERSION=\"3.1.4"),
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "snapper-3.1.4"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("dkms.conf:3: `PACKAGE_VERSION=\"3.1.4`: unterminated quote"),
        "{}",
        text(&out)
    );
    assert!(!tree.join("kmodfarm.toml").exists());

    std::fs::write(
        tree.join("dkms.conf"),
        MULTI_MODULE_CONF.replace("PACKAGE_VERSION=\"3.1.4\"", "PACKAGE_VERSION=\"v3.1\""),
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "snapper-3.1.4"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("version 'v3.1'"), "{}", text(&out));
    assert!(!tree.join("kmodfarm.toml").exists());
    assert_eq!(
        std::fs::read_dir(&tree).unwrap().count(),
        4,
        "no temp file left behind"
    );
}

/// A version DKMS takes and rpm does not (lime-forensics' "1.9.1-5"):
/// '-' becomes '.', said with the line.
#[test]
fn init_from_maps_a_version_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dkms_tree(dir.path());
    std::fs::write(
        tree.join("dkms.conf"),
        MULTI_MODULE_CONF.replace("PACKAGE_VERSION=\"3.1.4\"", "PACKAGE_VERSION=\"3.1-4\""),
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "snapper-3.1.4"]);
    assert!(out.status.success(), "{}", text(&out));
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.version, "3.1.4");
    assert!(
        text(&out).contains("line 3: PACKAGE_VERSION '3.1-4' became version '3.1.4'"),
        "{}",
        text(&out)
    );
}

/// init --from, then render: the rendered dkms.conf says what the imported
/// one said, except for what kmodfarm changes on purpose (and says so).
#[test]
fn init_from_then_render_gives_back_an_equivalent_dkms_conf() {
    use kmodfarm_model::dkms_conf::DkmsConf;
    let dir = tempfile::tempdir().unwrap();
    let tree = dkms_tree(dir.path());
    let out = kmodfarm(dir.path(), &["init", "--from", "snapper-3.1.4"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = kmodfarm(
        dir.path(),
        &[
            "-m",
            "snapper-3.1.4/kmodfarm.toml",
            "render",
            "--out",
            "rendered",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let original = DkmsConf::parse(MULTI_MODULE_CONF).unwrap().semantics();
    let rendered_text = std::fs::read_to_string(dir.path().join("rendered/dkms.conf")).unwrap();
    let rendered = DkmsConf::parse(&rendered_text).unwrap().semantics();
    for (key, value) in &original {
        match key.as_str() {
            // Deprecated in DKMS 3: dropped, with a note (REMAKE_INITRD became [boot] initramfs).
            "CLEAN" | "REMAKE_INITRD" => {
                assert!(!rendered.contains_key(key), "{key} must not be rendered")
            }
            // The original step still runs, behind kmodfarm's input checks.
            "PRE_BUILD" => {
                assert_eq!(rendered[key], "kmodfarm-prebuild ${kernelver}");
                let prebuild =
                    std::fs::read_to_string(dir.path().join("rendered/kmodfarm-prebuild")).unwrap();
                assert!(
                    prebuild.contains("\n\"./configure\" \"${kernelver}\" || refuse "),
                    "{prebuild}"
                );
            }
            "BUILT_MODULE_LOCATION[0]" => {
                assert_eq!(rendered[key], "src", "trailing slash normalised")
            }
            _ => assert_eq!(
                rendered.get(key),
                Some(value),
                "{key} differs in\n{rendered_text}"
            ),
        }
    }
    assert!(
        rendered.contains_key("BUILD_EXCLUSIVE_KERNEL"),
        "the regex is added for DKMS < 3.0.11"
    );
    assert!(tree.join("kmodfarm.toml").exists());
}

/// A dkms.conf whose PACKAGE_NAME is no Debian package name (tp_smapi's):
/// the commands that name DKMS's build directory follow the new name, or
/// make would look in a directory DKMS never makes.
#[test]
fn init_from_a_renamed_package_keeps_make_in_dkmss_build_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tp_smapi-0.43");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("dkms.conf"),
        r#"PACKAGE_NAME="tp_smapi"
PACKAGE_VERSION="0.43"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build HDAPS=1"
BUILT_MODULE_NAME[0]="tp_smapi"
DEST_MODULE_LOCATION[0]="/extra"
"#,
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "tp_smapi-0.43"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.name, "tp-smapi");
    assert_eq!(
        m.build.command.as_deref(),
        Some("make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build HDAPS=1")
    );
    assert!(
        all.contains("line 3: MAKE[0]'s path tp_smapi/0.43/build became"),
        "{all}"
    );
    // Nothing here decides per kernel: the translation serves the builds.
    assert_eq!(m.build.dkms_conf, None);
}

/// MAKE_MATCH and PATCH choose per kernel: the builds read the module's
/// own dkms.conf, and the notes say so instead of "dropped".
#[test]
fn init_from_a_dkms_conf_with_make_match_and_patches_builds_from_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("acme-1.0");
    std::fs::create_dir_all(tree.join("patches")).unwrap();
    std::fs::write(
        tree.join("dkms.conf"),
        r#"PACKAGE_NAME="acme"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="acme"
DEST_MODULE_LOCATION[0]="/updates"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/acme/1.0/build"
MAKE[1]="make -C ${kernel_source_dir} M=${dkms_tree}/acme/1.0/build NEW=1"
MAKE_MATCH[1]="^6\.12"
PATCH[0]="old-api.patch"
PATCH_MATCH[0]="^6\.1\."
"#,
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "acme-1.0"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.build.dkms_conf.as_deref(), Some("dkms.conf"));
    assert!(
        all.contains("dkms_conf = \"dkms.conf\": the file decides per kernel (MAKE_MATCH is set, PATCH is set)"),
        "{all}"
    );
    assert!(
        all.contains(r#"line 9: PATCH_MATCH[0]="^6\\.1\\." was dropped: kmodfarm's prebuilt builds read it from the module's dkms.conf"#),
        "{all}"
    );
}
