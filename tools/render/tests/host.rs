//! The target side's files: install.sh (with the boot unit and the kernel
//! hook inside it), snapshotted, checked by the real shellcheck and
//! systemd-analyze.

mod common;

use std::process::Command;

use kmodfarm_render::{render_host_kernel_hook, render_host_unit, render_install_sh};

const REPO: &str = "https://repo.example.org/kmfdemo/";

/// Stands in for the repository's armored public key (the text is embedded
/// verbatim; its content does not matter here).
const KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZtest\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";

fn shellcheck(name: &str, script: &str) {
    common::shellcheck(name, script, &["--shell=sh"]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn install_sh_is_the_snapshot_and_is_reproducible() {
    let manifest = common::example_manifest();
    let script = render_install_sh(&manifest, REPO, KEY).unwrap();
    assert_eq!(script, render_install_sh(&manifest, REPO, KEY).unwrap());
    insta::assert_snapshot!("kmfdemo__install.sh", script);
}

#[test]
fn install_sh_carries_the_key_the_settings_the_unit_and_the_hook() {
    let manifest = common::example_manifest();
    let script = render_install_sh(&manifest, REPO, KEY).unwrap();
    assert!(script.contains(KEY.trim()), "the key is embedded");
    assert!(script.contains("Signed-By: $key"));
    assert!(script.contains("repo_gpgcheck=1") && script.contains("gpgkey=file://$key"));
    assert!(!script.contains("curl -k") && !script.contains("--insecure"));
    let unit = render_host_unit(&manifest, REPO).unwrap();
    let hook = render_host_kernel_hook(&manifest, REPO).unwrap();
    assert!(script.contains(unit.trim()));
    assert!(script.contains(hook.trim()));
    // The settings kmodfarm-host reads, exactly as the model writes them.
    let config = kmodfarm_model::host::HostConfig::from_manifest(&manifest, REPO);
    assert!(script.contains(config.to_toml().trim()));
    assert_eq!(config.repo, "https://repo.example.org/kmfdemo");
}

#[test]
fn install_sh_and_the_hook_pass_shellcheck() {
    let manifest = common::example_manifest();
    shellcheck(
        "install.sh",
        &render_install_sh(&manifest, REPO, KEY).unwrap(),
    );
    shellcheck(
        "kernel hook",
        &render_host_kernel_hook(&manifest, REPO).unwrap(),
    );
}

#[test]
fn the_boot_unit_passes_systemd_analyze_verify() {
    let manifest = common::example_manifest();
    let unit = render_host_unit(&manifest, REPO).unwrap();
    insta::assert_snapshot!("kmfdemo__modules.service", unit);
    // An alternative root with the unit, the program it runs and this
    // machine's systemd units (verify loads the units it orders against).
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    let bin = r.join("usr/bin/kmodfarm-host");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(r.join("etc/systemd/system/kmfdemo-modules.service"), &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .arg("/etc/systemd/system/kmfdemo-modules.service")
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}
