//! Issue 10 on this machine, for real: the example module built for three
//! real Debian kernels (the newest 6.1 and 6.12+deb12 of bookworm, the
//! newest 6.12+deb13 of trixie: the kernels tools/builder/tests/matrix.rs
//! builds too, so their headers are shared), each product booted in its own
//! kernel under QEMU (TCG here: nested KVM stops in the BIOS) by the real
//! `kmodfarm`.
//!
//! - with `needs = ["system-map"]`: the map comes from a QEMU boot of the
//!   kernel's image, the module records linux_banner's address from it, and
//!   the boot test finds that address in the booted kernel's /proc/kallsyms;
//!   another kernel's map is refused before the build, naming both kernels;
//! - without: the boot test passes; a module built for another kernel
//!   fails it (vermagic);
//! - variants made here fail with their reason: init returns an error, a
//!   WARN on load, a symbol the kernel does not export; a hanging init is
//!   killed at the timeout while the other kernels pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_model::record::{BuildOutcome, BuildRecord, SymbolSource};
use kmodfarm_tests::{kmodfarm_bin, newest_headers, ModuleCopy};

/// `distro:release` of the three kernels.
fn kernels() -> Vec<(String, String)> {
    [
        ("debian-12", "6.1", "bookworm"),
        ("debian-12", "6.12", "bookworm"),
        ("debian-13", "6.12", "trixie"),
    ]
    .iter()
    .map(|(distro, series, suite)| {
        let k = newest_headers(series, suite).expect("the archive lists the kernel");
        (distro.to_string(), k.to_string())
    })
    .collect()
}

struct Run {
    ok: bool,
    stderr: String,
    records: Vec<BuildRecord>,
}

impl std::fmt::Display for Run {
    /// What kmodfarm said and every record, for assertion messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{:#?}", self.stderr, self.records)
    }
}

fn kmodfarm(manifest: &Path, args: &[String], out: &Path) -> Run {
    let output = Command::new(kmodfarm_bin())
        .arg("--manifest")
        .arg(manifest)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("kmodfarm runs");
    let records = std::fs::read_to_string(out.join("records.json"))
        .map(|t| serde_json::from_str(&t).expect("records.json parses"))
        .unwrap_or_default();
    Run {
        ok: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        records,
    }
}

/// `kmodfarm build --boot-test` for `kernels`, plus `extra` arguments.
fn build(manifest: &Path, kernels: &[(String, String)], extra: &[&str], out: &Path) -> Run {
    let mut args: Vec<String> = ["build", "--runtime", "bwrap", "--jobs", "2", "--boot-test"]
        .map(String::from)
        .to_vec();
    for (distro, k) in kernels {
        args.extend(["--kernel".into(), format!("{distro}:{k}")]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    kmodfarm(manifest, &args, out)
}

fn record<'a>(run: &'a Run, kernel: &str) -> &'a BuildRecord {
    run.records
        .iter()
        .find(|r| r.kernel_release.as_str() == kernel)
        .unwrap_or_else(|| panic!("no record for {kernel}:\n{}", run.stderr))
}

fn artifact(out: &Path, r: &BuildRecord) -> PathBuf {
    match &r.outcome {
        BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
            out.join(&artifact.path)
        }
        other => panic!("{}: {other:?}", r.kernel_release),
    }
}

/// What the host's own kmod reads in a module file.
fn host_modinfo(field: &str, file: &Path) -> String {
    let out = Command::new("modinfo")
        .args(["-F", field])
        .arg(file)
        .output()
        .expect("modinfo runs");
    assert!(out.status.success(), "modinfo {}", file.display());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn boot_reason(r: &BuildRecord) -> String {
    let boot = r
        .boot_test
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no boot test in {r:#?}", r.kernel_release));
    assert!(
        !boot.passed,
        "{}: boot test passed: {boot:#?}",
        r.kernel_release
    );
    assert!(
        !boot.console_tail.is_empty(),
        "{}: a failure keeps the console's tail",
        r.kernel_release
    );
    boot.reason.clone()
}

#[test]
fn with_a_system_map_from_a_qemu_boot_the_recorded_address_is_the_booted_kernels() {
    let kernels = kernels();
    let module = ModuleCopy::example_with(&[
        (
            "pre_build = \"configure\"\n",
            "pre_build = \"configure\"\nneeds = [\"system-map\"]\n",
        ),
        (
            "expect = \"kmfdemo 1.0.0 api=\"",
            "expect = \"symbol=0x{kallsyms:linux_banner} \"",
        ),
    ])
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let junit = work.path().join("junit.xml");
    let run = build(
        &module.manifest(),
        &kernels,
        &["--junit", junit.to_str().unwrap()],
        &out,
    );
    assert!(run.ok, "{run}");
    assert_eq!(run.records.len(), 3, "{:#?}", run.records);
    for (_, kernel) in &kernels {
        let r = record(&run, kernel);
        assert_eq!(r.symbol_source, SymbolSource::BootedKallsyms, "{kernel}");
        let boot = r.boot_test.as_ref().expect("boot tested");
        assert!(boot.passed, "{kernel}: {boot:#?}");
        let symbol = boot.symbol.as_ref().expect("the symbol was checked");
        assert_eq!(symbol.name, "linux_banner");
        assert!(
            symbol.booted_address.starts_with("ffffffff8"),
            "{kernel}: {symbol:?}"
        );
        assert_eq!(symbol.map_address, symbol.booted_address, "{kernel}");
        // The map went through the same check as on a DKMS host: the
        // rendered kmodfarm-prebuild ran as the build's PRE_BUILD.
        let log = std::fs::read_to_string(out.join(r.log.as_ref().unwrap())).unwrap();
        assert!(
            log.contains("kmodfarm: PRE_BUILD: kmodfarm-prebuild ")
                && log.contains("linux_banner at 0x"),
            "{log}"
        );
        // Independently of kmodfarm: what the built file itself says.
        assert_eq!(
            host_modinfo("kmfdemo_symbol", &artifact(&out, r)),
            format!("linux_banner=0x{}", symbol.booted_address),
            "{kernel}"
        );
    }
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit_text.contains("tests=\"6\" failures=\"0\""),
        "{junit_text}"
    );
    assert!(junit_text.contains(" boot-test\""), "{junit_text}");

    // Another kernel's map for the 6.12 kernel: refused before any build.
    let (distro612, k612) = &kernels[1];
    let (_, k61) = &kernels[0];
    let cached =
        std::fs::read_dir(kmodfarm_builder::cache_dir::default_cache_dir().join("symbols"))
            .unwrap()
            .flatten()
            .map(|e| e.path().join(format!("System.map-{k61}")))
            .find(|p| p.is_file())
            .expect("the 6.1 kernel's map is cached");
    let wrong = work.path().join(format!("System.map-{k61}"));
    std::fs::copy(&cached, &wrong).unwrap();
    let out2 = work.path().join("out2");
    let run = kmodfarm(
        &module.manifest(),
        &[
            "build".into(),
            "--runtime".into(),
            "bwrap".into(),
            "--kernel".into(),
            format!("{distro612}:{k612}"),
            "--system-map".into(),
            format!("{distro612}:{k612}={}", wrong.display()),
        ],
        &out2,
    );
    assert!(!run.ok, "{run}");
    let r = record(&run, k612);
    let BuildOutcome::Failed { reason, .. } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(
        reason.contains(&format!("refused for {k612}"))
            && reason.contains(&format!("System.map of {k61}")),
        "{reason}"
    );
    // Nothing was compiled: the log beside the record is the refusal.
    let log = std::fs::read_to_string(out2.join(r.log.as_ref().unwrap())).unwrap();
    assert_eq!(&log, reason, "nothing was compiled");
}

#[test]
fn the_example_passes_its_boot_test_and_a_module_for_another_kernel_fails_it() {
    let kernels = kernels();
    let module = ModuleCopy::example_with(&[]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = build(&module.manifest(), &kernels, &[], &out);
    assert!(run.ok, "{run}");
    for (_, kernel) in &kernels {
        let r = record(&run, kernel);
        assert_eq!(r.symbol_source, SymbolSource::NotNeeded);
        let boot = r.boot_test.as_ref().expect("boot tested");
        assert!(boot.passed, "{kernel}: {boot:#?}");
        assert!(boot.symbol.is_none());
    }

    // The 6.1 kernel's module put where the 6.12+deb12 one belongs.
    let wrong = artifact(&out, record(&run, &kernels[1].1));
    std::fs::copy(artifact(&out, record(&run, &kernels[0].1)), &wrong).unwrap();
    let report = work.path().join("boot.json");
    let run = kmodfarm(
        &module.manifest(),
        &[
            "boot-test".into(),
            "--runtime".into(),
            "bwrap".into(),
            "--report-json".into(),
            report.display().to_string(),
        ],
        &out,
    );
    assert!(!run.ok, "{run}");
    let reason = boot_reason(record(&run, &kernels[1].1));
    assert!(
        reason.contains("built for another kernel") && reason.contains(kernels[0].1.as_str()),
        "{reason}"
    );
    assert!(
        !wrong.exists(),
        "a module that fails its boot test is not shipped"
    );
    for k in [&kernels[0].1, &kernels[2].1] {
        assert!(record(&run, k).boot_test.as_ref().unwrap().passed, "{k}");
    }
    let reported: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(reported, run.records);
}

/// The example with a fault chosen per kernel by its configure step:
/// `faults` maps a kernel release to 1 (init returns -ENODEV), 2 (WARN),
/// 3 (calls a symbol no kernel exports) or 4 (init never returns).
fn faulty_example(faults: &[(&str, u32)]) -> ModuleCopy {
    let module = ModuleCopy::example_with(&[(
        "pre_build = \"configure\"\n",
        // modpost would refuse the unresolved symbol; some vendors' builds
        // do pass KBUILD_MODPOST_WARN, and then only loading tells.
        "pre_build = \"configure\"\ncommand = \"make -C \\\"$kernel_source_dir\\\" M=\\\"$PWD\\\" KBUILD_MODPOST_WARN=1 modules\"\n",
    )])
    .unwrap();
    let src = module.dir().join("src");
    let mut configure = std::fs::read_to_string(src.join("configure")).unwrap();
    configure.push_str("\ncase \"$kver\" in\n");
    for (kernel, fault) in faults {
        configure.push_str(&format!(
            "{kernel}) echo '#define KMFDEMO_FAULT {fault}' >>\"$srcdir/config.h\" ;;\n"
        ));
    }
    configure.push_str("esac\n");
    std::fs::write(src.join("configure"), configure).unwrap();
    let c = std::fs::read_to_string(src.join("kmfdemo.c")).unwrap();
    let anchor = "#include \"config.h\" /* written by ./configure for one kernel */\n";
    let init = "\tint err;\n\n\terr = alloc_chrdev_region";
    assert!(c.contains(anchor) && c.contains(init), "kmfdemo.c changed");
    let faults_c = r#"
#include <linux/delay.h>
#ifndef KMFDEMO_FAULT
#define KMFDEMO_FAULT 0
#endif
#if KMFDEMO_FAULT == 3
extern void kmfdemo_no_kernel_exports_this(void);
#endif
static int kmfdemo_fault(void)
{
#if KMFDEMO_FAULT == 1
	return -ENODEV;
#elif KMFDEMO_FAULT == 2
	WARN(1, "kmfdemo: a warning on purpose (boot test variant)\n");
#elif KMFDEMO_FAULT == 3
	kmfdemo_no_kernel_exports_this();
#elif KMFDEMO_FAULT == 4
	for (;;)
		msleep(1000);
#endif
	return 0;
}
"#;
    let c = c.replacen(anchor, &format!("{anchor}{faults_c}"), 1).replacen(
        init,
        "\tint err;\n\n\terr = kmfdemo_fault();\n\tif (err)\n\t\treturn err;\n\terr = alloc_chrdev_region",
        1,
    );
    std::fs::write(src.join("kmfdemo.c"), c).unwrap();
    module
}

#[test]
fn faulty_variants_fail_their_boot_tests_with_the_reason_and_a_hang_is_killed() {
    let kernels = kernels();
    let [(_, a), (_, b), (_, c)] = [&kernels[0], &kernels[1], &kernels[2]];
    let work = tempfile::tempdir().unwrap();

    let module = faulty_example(&[(a, 1), (b, 2), (c, 3)]);
    let out = work.path().join("out");
    let junit = work.path().join("junit.xml");
    let run = build(
        &module.manifest(),
        &kernels,
        &["--junit", junit.to_str().unwrap()],
        &out,
    );
    assert!(!run.ok, "failed boot tests fail the run:\n{run}");
    let reason_a = boot_reason(record(&run, a));
    assert!(reason_a.contains("init failed"), "{reason_a}");
    let reason_b = boot_reason(record(&run, b));
    assert!(
        reason_b.contains("WARNING") && reason_b.contains("kmfdemo"),
        "{reason_b}"
    );
    let reason_c = boot_reason(record(&run, c));
    assert!(
        reason_c.contains("does not export") && reason_c.contains("kmfdemo_no_kernel_exports_this"),
        "{reason_c}"
    );
    for k in [a, b, c] {
        let r = record(&run, k);
        assert!(
            matches!(&r.outcome, BuildOutcome::Failed { reason, .. } if reason.starts_with("boot test failed")),
            "{k}: {:?}",
            r.outcome
        );
    }
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    assert!(junit_text.contains("type=\"boot-test\""), "{junit_text}");
    assert!(
        junit_text.contains("kmfdemo_no_kernel_exports_this"),
        "{junit_text}"
    );

    // With --keep-going the product stays and the run passes.
    let kept = work.path().join("kept");
    let run = build(&module.manifest(), &kernels[..1], &["--keep-going"], &kept);
    assert!(run.ok, "{run}");
    let r = record(&run, a);
    assert!(boot_reason(r).contains("init failed"));
    assert!(artifact(&kept, r).is_file());

    // A hanging init on one kernel: killed at the timeout; the others pass.
    let module = faulty_example(&[(a, 4)]);
    let out = work.path().join("hang");
    let run = build(
        &module.manifest(),
        &kernels,
        &["--boot-timeout", "100"],
        &out,
    );
    assert!(!run.ok, "{run}");
    let reason = boot_reason(record(&run, a));
    assert!(
        reason.contains("did not finish within 100 s: QEMU killed")
            && reason.contains("insmod kmfdemo never returned"),
        "{reason}"
    );
    for k in [b, c] {
        let boot = record(&run, k).boot_test.as_ref().unwrap();
        assert!(boot.passed, "{k}: {boot:#?}");
    }
}
