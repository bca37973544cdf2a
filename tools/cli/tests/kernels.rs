//! `kmodfarm kernels` on bad input: each a clear error on stderr, a
//! non-zero exit, and nothing on stdout.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn kernels(args: &[&str]) -> Output {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml");
    let cache = tempfile::tempdir().unwrap();
    let no_apt_sources = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_kmodfarm"))
        .arg("--manifest")
        .arg(&manifest)
        .arg("kernels")
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("--apt-dir")
        .arg(no_apt_sources.path())
        .args(args)
        .output()
        .unwrap()
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_distro_lists_the_known_ones() {
    let err = refused(&kernels(&["--distro", "debian-99"]));
    assert!(
        err.contains(
            "error: unknown distro 'debian-99': the known distros are debian-12, debian-13, "
        ),
        "{err}"
    );
}

#[test]
fn an_unreachable_mirror_is_named_after_bounded_retries() {
    let started = Instant::now();
    let out = kernels(&[
        "--distro",
        "debian-12",
        "--mirror",
        "http://127.0.0.1:9/debian",
    ]);
    let err = refused(&out);
    assert!(
        err.contains(
            "debian-12: cannot fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease: "
        ) && err.contains("Connection refused")
            && err.contains("(gave up after 3 attempt(s))"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_distro_without_a_mirror_says_how_to_configure_one() {
    let err = refused(&kernels(&["--distro", "ubuntu-24.04"]));
    assert!(
        err.contains("ubuntu-24.04: no mirror configured for ubuntu-24.04 (suite 'noble'): pass --mirror URL"),
        "{err}"
    );
}

#[test]
fn a_mirror_scoped_to_an_unknown_name_is_refused() {
    let err = refused(&kernels(&[
        "--mirror",
        "debain-12=http://127.0.0.1:9/debian",
    ]));
    assert!(
        err.contains("no distro or suite is called 'debain-12'"),
        "{err}"
    );
}

/// `kmodfarm build` given no matrix discovers one, exactly as `kmodfarm
/// kernels` lists it (live: Debian's archive through the host's apt sources).
#[test]
fn build_without_a_matrix_plans_the_discovered_kernels() {
    let module =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmodfarm"))
            .arg("-m")
            .arg(&module)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let listed = run(&["kernels", "--distro", "debian-12", "--json"]);
    let mut listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kernel_release"].as_str().unwrap().to_string())
        .collect();
    let plan = run(&["build", "--distro", "debian-12", "--dry-run", "--json"]);
    let text = plan.to_string();
    listed.sort();
    assert!(listed.len() >= 6, "{listed:?}");
    for kernel in &listed {
        assert!(
            text.contains(&format!("\"{kernel}\"")),
            "{kernel} missing from the plan: {text}"
        );
    }
}
