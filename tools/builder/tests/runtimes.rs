//! The same build in podman (an image imported from the bwrap root) and in
//! bwrap: both compile without network, both products load-check with
//! kmod, and they share the cache (the runtime is not a build input: the
//! root, compiler and headers are the same files).

mod common;

use std::path::Path;
use std::process::Command;

use common::FreshModule;
use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::newest_headers;

/// One kernel built with `runtime`: its record, the build having succeeded.
fn build(manifest: &Path, runtime: &str, kernel: &KernelRelease, out: &Path) -> BuildRecord {
    let kernel = format!("debian-12:{kernel}");
    let run = common::build(manifest, out, &["--runtime", runtime, "--kernel", &kernel]);
    assert!(run.ok, "{runtime}: {}\n{:#?}", run.stderr, run.records);
    run.records.into_iter().next().unwrap()
}

#[test]
fn podman_and_bwrap_build_without_network_and_share_the_cache() {
    let kernel = newest_headers("6.1", "bookworm").expect("bookworm has 6.1 kernels");
    // The compile refuses to run when it sees any interface besides lo.
    let module = FreshModule::new(
        "runtimes test",
        &[(
            "[build]\n",
            "[build]\ncommand = \"test $(grep -c : /proc/net/dev) -eq 1 || { echo network is reachable; exit 9; }; make -C $kernel_source_dir M=$PWD modules\"\n",
        )],
    );
    let manifest = module.manifest();
    let work = tempfile::tempdir().unwrap();

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
    // installed: a clear failure naming the package, in the record and
    // in the log beside it.
    module.write_source("/* host */\n");
    let out = work.path().join("out-host");
    let kernel_arg = format!("debian-12:{kernel}");
    let run = common::build(
        &manifest,
        &out,
        &["--runtime", "host", "--kernel", &kernel_arg],
    );
    assert!(!run.ok);
    let records = run.records;
    match &records[0].outcome {
        BuildOutcome::Failed { reason, .. } => assert!(
            reason.contains(&format!("install linux-headers-{kernel}")),
            "{reason}"
        ),
        other => panic!("host: {other:?}"),
    }
    // No product: the failed kernel's directory holds its record and log.
    let dir = out.join(format!("debian-12/amd64/{kernel}"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["kmfdemo.build.log", "record.json"]);
    let log = std::fs::read_to_string(dir.join("kmfdemo.build.log")).unwrap();
    assert!(
        log.contains(&format!("install linux-headers-{kernel}")),
        "{log}"
    );
}
