//! The same build in podman (an image imported from the bwrap root) and in
//! bwrap: both compile without network, both products load-check with
//! kmod, and they share the cache (the runtime is not a build input: the
//! root, compiler and headers are the same files).

use std::path::Path;
use std::process::Command;

use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::{kmodfarm_bin, module_dir, AptIndex};

fn newest_61() -> KernelRelease {
    let index = AptIndex::updated("bookworm").expect("the archive's package lists");
    index
        .package_names("linux-headers-")
        .unwrap()
        .iter()
        .filter_map(|n| KernelRelease::parse(n.strip_prefix("linux-headers-")?).ok())
        .filter(|k| k.flavour.as_deref() == Some("amd64") && k.series() == "6.1")
        .max()
        .expect("bookworm has 6.1 kernels")
}

fn build(manifest: &Path, runtime: &str, kernel: &KernelRelease, out: &Path) -> BuildRecord {
    let output = Command::new(kmodfarm_bin())
        .arg("--manifest")
        .arg(manifest)
        .args([
            "build",
            "--runtime",
            runtime,
            "--kernel",
            &format!("debian-12:{kernel}"),
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    let records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("records.json")).unwrap()).unwrap();
    assert!(
        output.status.success(),
        "{runtime}: {}\n{records:#?}",
        String::from_utf8_lossy(&output.stderr)
    );
    records.into_iter().next().unwrap()
}

#[test]
fn podman_and_bwrap_build_without_network_and_share_the_cache() {
    let kernel = newest_61();
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("module");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(module_dir())
        .arg(&module)
        .status()
        .unwrap()
        .success());
    let manifest = module.join("kmodfarm.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // The compile refuses to run when it sees any interface besides lo.
    let guarded = text.replace(
        "[build]\n",
        "[build]\ncommand = \"test $(grep -c : /proc/net/dev) -eq 1 || { echo network is reachable; exit 9; }; make -C $kernel_source_dir M=$PWD modules\"\n",
    );
    assert_ne!(guarded, text);
    std::fs::write(&manifest, guarded).unwrap();
    let stamp = format!("/* runtimes test {:?} */\n", std::time::SystemTime::now());
    let source = module.join("src/kmfdemo.c");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, format!("{stamp}{original}")).unwrap();

    let podman = build(
        &manifest,
        "podman",
        &kernel,
        &work.path().join("out-podman"),
    );
    let BuildOutcome::Built { artifact } = &podman.outcome else {
        panic!("podman: {:?}", podman.outcome)
    };
    assert!(
        artifact.vermagic.starts_with(&format!("{kernel} ")),
        "{}",
        artifact.vermagic
    );
    // Built means the guard passed inside; on this host it would not.
    let host = Command::new("sh")
        .args(["-c", "test $(grep -c : /proc/net/dev) -eq 1"])
        .status()
        .unwrap();
    assert!(
        !host.success(),
        "the guard proves nothing on a host with only lo"
    );

    let bwrap = build(&manifest, "bwrap", &kernel, &work.path().join("out-bwrap"));
    match &bwrap.outcome {
        BuildOutcome::Cached { artifact: same } => assert_eq!(same.sha256, artifact.sha256),
        other => panic!("bwrap should reuse podman's build: {other:?}"),
    }

    // The host runtime builds only for kernels whose headers the host has
    // installed: a clear failure naming the package, nothing in the output.
    std::fs::write(&source, format!("{stamp}/* host */\n{original}")).unwrap();
    let out = work.path().join("out-host");
    let output = Command::new(kmodfarm_bin())
        .arg("--manifest")
        .arg(&manifest)
        .args([
            "build",
            "--runtime",
            "host",
            "--kernel",
            &format!("debian-12:{kernel}"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("records.json")).unwrap()).unwrap();
    match &records[0].outcome {
        BuildOutcome::Failed { reason, .. } => assert!(
            reason.contains(&format!("install linux-headers-{kernel}")),
            "{reason}"
        ),
        other => panic!("host: {other:?}"),
    }
    assert!(!out.join("debian-12").exists());
}
