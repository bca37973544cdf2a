//! The build stage on this machine, for real: the example module for a
//! matrix of Debian 12 and 13 kernels chosen from the archive's metadata
//! today, compiled in bwrap over mmdebstrap roots (Debian 12's gcc-12 for
//! Debian 12 kernels, Debian 13's gcc-14 for Debian 13's), two at once.
//!
//! One test drives the sequence, because each step builds on the last and
//! full builds take minutes: a broken variant (one kernel fails, the rest
//! build, an out-of-range kernel is skipped, a kernel without headers in
//! the archive fails), the fix (a touched source file rebuilds every
//! kernel), a rerun (nothing builds), three shards and their merge.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{newest, newest_series, FreshModule, Run};
use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::kmodfarm;

/// `kmodfarm build` in bwrap, two kernels at once.
fn build(manifest: &Path, args: &[&str], out: &Path) -> Run {
    let mut all = vec!["--runtime", "bwrap", "--jobs", "2"];
    all.extend(args);
    common::build(manifest, out, &all)
}

fn find<'a>(records: &'a [BuildRecord], kernel: &KernelRelease) -> &'a BuildRecord {
    records
        .iter()
        .find(|r| &r.kernel_release == kernel)
        .unwrap_or_else(|| panic!("no record for {kernel} in {records:#?}"))
}

/// Every file below `dir`, relative, with its bytes (logs and records
/// aside: they hold times).
fn artifacts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zst"))
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What a record says, without times and cache hits: (key, status, sha256).
fn summary(records: &[BuildRecord]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            let (status, sha) = match &r.outcome {
                BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
                    ("ok", artifact.sha256.clone())
                }
                BuildOutcome::Failed { .. } => ("failed", String::new()),
                BuildOutcome::Skipped { reason } => ("skipped", reason.clone()),
            };
            (
                format!("{}/{}/{}", r.distro, r.kernel_release, r.module),
                status.to_string(),
                sha,
            )
        })
        .collect()
}

/// The compiler a module was built with, from its .comment section.
fn compiler_of(ko_zst: &Path) -> String {
    let bytes = zstd::decode_all(std::fs::File::open(ko_zst).unwrap()).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let at = text
        .find("GCC: (Debian ")
        .unwrap_or_else(|| panic!("{}: no GCC comment", ko_zst.display()));
    text[at..].split('\0').next().unwrap().to_string()
}

#[test]
fn a_debian_kernel_matrix_builds_in_parallel_roots_caches_shards_and_merges() {
    let k61 = newest("bookworm", "6.1", 2);
    let k612 = newest("bookworm", "6.12", 2);
    let k13 = newest("trixie", "6.12", 2);
    // Newer than the example module's range (max 6.14): sid's newest kernel.
    let too_new = newest("sid", &newest_series("sid"), 1).remove(0);
    let good: Vec<String> = k61
        .iter()
        .chain(&k612)
        .map(|k| format!("debian-12:{k}"))
        .chain(k13.iter().map(|k| format!("debian-13:{k}")))
        .collect();
    // A kernel the archive has no headers for: one ABI past the newest 6.1.
    let abi: u64 = k61[1]
        .abi
        .parse()
        .expect("Debian 6.1 ABI numbers are numbers");
    let missing = format!("6.1.0-{}-amd64", abi + 1);

    // A stamp of this run, so the cache has never seen this source, and a
    // break that only Debian 13's compiler on the newest trixie kernel hits.
    let module = FreshModule::new("kmodfarm build test", &[]);
    let manifest = module.manifest();
    let work = tempfile::tempdir().unwrap();
    let bad = &k13[1];
    module.write_source(&format!(
        "#include <linux/version.h>\n#if __GNUC__ >= 14 && LINUX_VERSION_CODE == KERNEL_VERSION({}, {}, {})\n#error broken on purpose by the kmodfarm build test\n#endif\n",
        bad.version[0], bad.version[1], bad.version[2]
    ));

    let kernel_args = |extra: &[String]| -> Vec<String> {
        good.iter()
            .chain(extra)
            .flat_map(|k| ["--kernel".to_string(), k.clone()])
            .collect()
    };
    // The too-new kernel comes in a matrix file, as `kmodfarm kernels
    // --json` would list it: a kernel a matrix turns up outside the range
    // is skipped (one named with --kernel is an error, see bad_input.rs).
    let matrix_file = work.path().join("matrix.json");
    let too_new_entries = kmodfarm_builder::plan::entries_from_kernels(
        &kmodfarm_model::DistroSet::builtin(),
        None,
        &[format!("debian-13:{too_new}")],
    )
    .unwrap();
    std::fs::write(
        &matrix_file,
        serde_json::to_string(&too_new_entries).unwrap(),
    )
    .unwrap();
    let mut with_skip = kernel_args(&[]);
    with_skip.extend(["--matrix".into(), matrix_file.display().to_string()]);
    let as_refs = |v: &[String]| -> Vec<String> { v.to_vec() };

    // 1. The broken variant: the newest trixie kernel fails, so does the
    //    kernel without headers; the rest build; the too-new one is skipped.
    let out1 = work.path().join("out1");
    let junit = work.path().join("junit.xml");
    let mut args1 = as_refs(&with_skip);
    let report = work.path().join("report.json");
    args1.extend([
        "--kernel".into(),
        format!("debian-12:{missing}"),
        "--junit".into(),
        junit.display().to_string(),
        "--report-json".into(),
        report.display().to_string(),
    ]);
    let run1 = build(
        &manifest,
        &args1.iter().map(String::as_str).collect::<Vec<_>>(),
        &out1,
    );
    assert!(
        !run1.ok,
        "a failed kernel must fail the run:\n{}",
        run1.stderr
    );
    assert!(
        run1.stderr.contains("2 kernel build(s) failed"),
        "{}",
        run1.stderr
    );
    assert_eq!(run1.records.len(), 8, "{:#?}", run1.records);
    match &find(&run1.records, bad).outcome {
        BuildOutcome::Failed { reason, log_tail } => {
            assert!(reason.contains("build failed"), "{reason}");
            assert!(
                log_tail.iter().any(|l| l.contains("broken on purpose")),
                "{log_tail:#?}"
            );
        }
        other => panic!("{bad}: {other:?}"),
    }
    let missing_k = KernelRelease::parse(&missing).unwrap();
    match &find(&run1.records, &missing_k).outcome {
        BuildOutcome::Failed { reason, .. } => assert!(
            reason.contains(&format!("linux-headers-{missing}")),
            "{reason}"
        ),
        other => panic!("{missing}: {other:?}"),
    }
    match &find(&run1.records, &too_new).outcome {
        BuildOutcome::Skipped { reason } => assert!(
            reason.contains("outside the supported range 5.15 to 6.14"),
            "{reason}"
        ),
        other => panic!("{too_new}: {other:?}"),
    }
    for k in k61.iter().chain(&k612).chain(&k13[..1]) {
        assert!(
            matches!(find(&run1.records, k).outcome, BuildOutcome::Built { .. }),
            "{k}: {:?}",
            find(&run1.records, k).outcome
        );
    }
    // A failed kernel leaves no product in the output: its records and
    // its whole log, where its record points.
    for (k, said) in [
        (bad, "broken on purpose".to_string()),
        (&missing_k, format!("linux-headers-{missing}")),
    ] {
        let r = find(&run1.records, k);
        let mut files: Vec<String> = walk(&out1)
            .into_iter()
            .filter(|p| p.display().to_string().contains(k.as_str()))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["kmfdemo.build.log", "record.json"], "{k}");
        let log = std::fs::read_to_string(out1.join(r.log.as_deref().unwrap())).unwrap();
        assert!(log.contains(&said), "{k}: {log}");
    }
    assert!(!walk(&out1)
        .iter()
        .any(|p| p.file_name().unwrap().to_string_lossy().starts_with('.')));
    let reported: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(reported, run1.records, "--report-json holds every record");
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit_text.contains("tests=\"8\" failures=\"2\" errors=\"0\" skipped=\"1\""),
        "{junit_text}"
    );
    assert!(junit_text.contains("broken on purpose"), "{junit_text}");

    // 2. The fix touches kmfdemo.c: every kernel builds again, in parallel.
    module.write_source("");
    let out2 = work.path().join("out2");
    let run2 = build(
        &manifest,
        &with_skip.iter().map(String::as_str).collect::<Vec<_>>(),
        &out2,
    );
    assert!(run2.ok, "{}\n{}", run2.stdout, run2.stderr);
    let built: Vec<&BuildRecord> = run2
        .records
        .iter()
        .filter(|r| matches!(r.outcome, BuildOutcome::Built { .. }))
        .collect();
    assert_eq!(
        built.len(),
        6,
        "a touched source rebuilds every kernel:\n{}",
        run2.stdout
    );
    let busy: f64 = built.iter().map(|r| r.duration_ms as f64 / 1000.0).sum();
    assert!(
        run2.seconds < busy * 0.8,
        "two at once: {:.0}s of builds took {:.0}s",
        busy,
        run2.seconds
    );
    for r in &built {
        let BuildOutcome::Built { artifact } = &r.outcome else {
            unreachable!()
        };
        let file = out2.join(&artifact.path);
        // Checked independently of kmodfarm: the host's kmod reads the .ko.zst.
        let vermagic = common::modinfo("vermagic", &file);
        assert_eq!(
            vermagic.split_whitespace().next(),
            Some(r.kernel_release.as_str()),
            "{}",
            file.display()
        );
        assert_eq!(common::modinfo("version", &file), "1.0.0");
        let gcc = compiler_of(&file);
        let want = if r.distro == "debian-13" {
            "GCC: (Debian 14."
        } else {
            "GCC: (Debian 12."
        };
        assert!(
            gcc.starts_with(want),
            "{}: built with {gcc}",
            file.display()
        );
        assert!(r
            .compiler
            .as_deref()
            .unwrap_or("")
            .starts_with(if r.distro == "debian-13" {
                "gcc-14"
            } else {
                "gcc-12"
            }));
    }
    for column in ["kernel", "result", "time", "size"] {
        assert!(
            run2.stdout.lines().next().unwrap().contains(column),
            "{}",
            run2.stdout
        );
    }

    // 3. Nothing changed: nothing builds, the artifacts are the same bytes.
    let before = artifacts(&out2);
    let run3 = build(
        &manifest,
        &with_skip.iter().map(String::as_str).collect::<Vec<_>>(),
        &out2,
    );
    assert!(run3.ok, "{}", run3.stderr);
    assert!(
        run3.records.iter().all(|r| matches!(
            r.outcome,
            BuildOutcome::Cached { .. } | BuildOutcome::Skipped { .. }
        )),
        "{}",
        run3.stdout
    );
    assert_eq!(artifacts(&out2), before);

    // 4. Three shards cover the matrix once; merged, they equal the full build.
    let mut seen: Vec<String> = Vec::new();
    let mut shard_dirs = Vec::new();
    for i in 1..=3 {
        let dir = work.path().join(format!("shard{i}"));
        let mut args = as_refs(&with_skip);
        args.extend(["--shard".into(), format!("{i}/3")]);
        let run = build(
            &manifest,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &dir,
        );
        assert!(run.ok, "{}", run.stderr);
        seen.extend(
            run.records
                .iter()
                .map(|r| format!("{}/{}", r.distro, r.kernel_release)),
        );
        shard_dirs.push(dir);
    }
    let all: BTreeSet<String> = run2
        .records
        .iter()
        .map(|r| format!("{}/{}", r.distro, r.kernel_release))
        .collect();
    assert_eq!(seen.len(), all.len(), "a kernel in two shards: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);
    let merged = work.path().join("merged");
    let mut merge_args: Vec<&Path> = vec![Path::new("merge")];
    merge_args.extend(shard_dirs.iter().map(PathBuf::as_path));
    merge_args.extend([Path::new("--out"), &merged]);
    kmodfarm(&merge_args).expect("kmodfarm runs").expect_ok();
    assert_eq!(artifacts(&merged), artifacts(&out2));
    let merged_records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(merged.join("records.json")).unwrap())
            .unwrap();
    assert_eq!(summary(&merged_records), summary(&run2.records));

    // A merge that would mix two different builds of one kernel is refused.
    let conflicting = work.path().join("merged-again");
    let out = kmodfarm([
        Path::new("merge"),
        &out1,
        &out2,
        Path::new("--out"),
        &conflicting,
    ])
    .expect("kmodfarm runs")
    .expect_failure();
    assert!(out.stderr.contains("merge conflict"), "{}", out.stderr);
    assert!(!conflicting.exists());
}
