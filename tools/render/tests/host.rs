//! The target side's files: install.sh (with the boot unit and the kernel
//! hook inside it), snapshotted, checked by the real shellcheck and
//! systemd-analyze.

mod common;

use std::path::Path;
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

/// The example manifest with `[host] before = [..]` naming `units`.
fn manifest_before(units: &[&str]) -> kmodfarm_model::Manifest {
    let path = common::repo_root().join("module/kmodfarm.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let list: Vec<String> = units.iter().map(|u| format!("{u:?}")).collect();
    text.push_str(&format!("\n[host]\nbefore = [{}]\n", list.join(", ")));
    kmodfarm_model::Manifest::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

/// An alternative root holding `unit` as kmfdemo-modules.service, the
/// program it runs, `extra` units, and this machine's systemd units
/// (verify loads the units it orders against).
fn unit_root(unit: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
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
    std::fs::write(r.join("etc/systemd/system/kmfdemo-modules.service"), unit).unwrap();
    for (name, text) in extra {
        std::fs::write(r.join("etc/systemd/system").join(name), text).unwrap();
    }
    root
}

/// `systemd-analyze verify` of `units` in `root`: silent and successful.
fn verify(root: &Path, units: &[&str]) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(units.iter().map(|u| format!("/etc/systemd/system/{u}")))
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

#[test]
fn the_boot_unit_passes_systemd_analyze_verify() {
    let manifest = common::example_manifest();
    let unit = render_host_unit(&manifest, REPO).unwrap();
    insta::assert_snapshot!("kmfdemo__modules.service", unit);
    let root = unit_root(&unit, &[]);
    verify(root.path(), &["kmfdemo-modules.service"]);
}

/// `[host] before` orders the boot unit before the agent's service and
/// makes enabling it hook it into that service's start, so the agent never
/// starts without its module.
#[test]
fn the_boot_unit_starts_before_the_agent_named_in_the_manifest() {
    let manifest = manifest_before(&["kmfagent.service"]);
    let unit = render_host_unit(&manifest, REPO).unwrap();
    insta::assert_snapshot!("kmfdemo__modules.service.before", unit);
    assert!(unit.contains("\nBefore=multi-user.target kmfagent.service\n"));
    assert!(unit.contains("\nWantedBy=multi-user.target kmfagent.service"));
    // The same unit is what install.sh writes.
    let script = render_install_sh(&manifest, REPO, KEY).unwrap();
    assert!(script.contains(unit.trim()));
    let agent = "[Unit]\nDescription=the agent\n\n[Service]\nExecStart=/usr/bin/kmodfarm-host\n\n[Install]\nWantedBy=multi-user.target\n";
    let root = unit_root(&unit, &[("kmfagent.service", agent)]);
    verify(
        root.path(),
        &["kmfdemo-modules.service", "kmfagent.service"],
    );
    // What install.sh's `systemctl enable` does: the agent now wants it.
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.path().display()))
        .args(["enable", "kmfdemo-modules.service"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wants = root
        .path()
        .join("etc/systemd/system/kmfagent.service.wants/kmfdemo-modules.service");
    assert!(
        wants.is_symlink(),
        "systemctl enable made no {}",
        wants.display()
    );
}

#[test]
fn a_bad_unit_name_in_host_before_is_refused_with_its_line() {
    let path = common::repo_root().join("module/kmodfarm.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    let lines = good.lines().count();
    for (bad, needle) in [
        ("myagent", "not a systemd unit name"),
        ("my agent.service", "not a systemd unit name"),
        ("a.service\nExecStart=/bin/sh", "not a systemd unit name"),
        ("myagent.servce", "not a systemd unit name"),
        ("kmfdemo-modules.service", "own boot unit"),
    ] {
        let text = format!("{good}\n[host]\nbefore = [\"ok.service\", {bad:?}]\n");
        let err = kmodfarm_model::Manifest::parse(&path, &text)
            .unwrap_err()
            .to_string();
        let at = format!("kmodfarm.toml:{}:", lines + 3);
        assert!(err.contains(&at) && err.contains(needle), "{bad:?}: {err}");
    }
    let text = format!("{good}\n[host]\nbefore = [\"a.service\", \"a.service\"]\n");
    let err = kmodfarm_model::Manifest::parse(&path, &text).unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    let text = format!("{good}\n[host]\nafter = [\"a.service\"]\n");
    let err = kmodfarm_model::Manifest::parse(&path, &text).unwrap_err();
    assert!(err.to_string().contains("after"), "{err}");
}
