//! `kmodfarm kernels` for a Debian release the host does not run: its
//! suites come from the host's apt sources rewritten for that release (the
//! rule `kmodfarm build` makes its roots with), so no `--mirror` is needed.
//! Runs the real binary against the real archive the host's sources name.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn debian_13_kernels_are_found_from_a_debian_12_hosts_sources_without_a_mirror() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml");
    // A fresh index cache: every suite is fetched now, nothing is reused.
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kmodfarm"))
        .arg("--manifest")
        .arg(&manifest)
        .args(["kernels", "--distro", "debian-13", "--json", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("--mirror"), "{stderr}");
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let releases: Vec<&str> = entries
        .iter()
        .map(|e| {
            assert_eq!(e["distro"], "debian-13", "{e}");
            e["kernel_release"].as_str().unwrap()
        })
        .collect();
    // Trixie's own kernels (6.12.N+deb13-amd64), not bookworm's 6.12.N+deb12.
    let trixie_amd64 = regex::Regex::new(r"^6\.12\.\d+\+deb13-amd64$").unwrap();
    assert!(
        releases.iter().any(|r| trixie_amd64.is_match(r)),
        "{releases:?}"
    );
    assert!(
        releases.iter().all(|r| r.contains("+deb13")),
        "{releases:?}"
    );
    // Every suite was read from the archive, security included.
    for suite in ["trixie/", "trixie-updates/", "trixie-security/"] {
        assert!(
            stderr.contains(&format!("/dists/{suite}main/binary-amd64/Packages")),
            "{suite}: {stderr}"
        );
    }
}
