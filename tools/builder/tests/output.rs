//! What a new user's module gets from `kmodfarm build`, and what its
//! output directory keeps: the products DKMS and kmod accept (no
//! MODULE_VERSION, a version of its own, a file named with '-'), and an
//! `--out` that accumulates over runs, one after the other or at once,
//! with each kernel's records and each module's own log beside them.

mod common;

use std::path::Path;

use common::{bookworm_pair, InitModule, Run, HELLO_C};
use kmodfarm_model::record::{Artifact, BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::kmodfarm_package;

fn build(module: &InitModule, out: &Path, kernels: &[&KernelRelease]) -> Run {
    let mut args = vec!["--runtime".to_string(), "bwrap".into()];
    for k in kernels {
        args.extend(["--kernel".into(), format!("debian-12:{k}")]);
    }
    common::build(
        &module.manifest(),
        out,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

fn record<'a>(records: &'a [BuildRecord], kernel: &KernelRelease) -> &'a BuildRecord {
    records
        .iter()
        .find(|r| &r.kernel_release == kernel)
        .unwrap_or_else(|| panic!("no record for {kernel}: {records:#?}"))
}

/// The product of `kernel`'s build, which must have built.
fn artifact<'a>(records: &'a [BuildRecord], kernel: &KernelRelease) -> &'a Artifact {
    let r = record(records, kernel);
    let BuildOutcome::Built { artifact } = &r.outcome else {
        panic!("{kernel}: {:?}", r.outcome)
    };
    artifact
}

/// The record's log, read from the output, after checking it is where
/// the record says: `<distro>/<arch>/<kernel>/<module>.build.log`.
fn log_of(out: &Path, r: &BuildRecord) -> String {
    let rel = r.log.as_deref().unwrap_or_else(|| panic!("no log: {r:#?}"));
    assert_eq!(
        rel,
        format!(
            "debian-12/amd64/{}/{}.build.log",
            r.kernel_release, r.module
        )
    );
    std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn a_hello_world_without_module_version_builds_for_6_1_and_6_12_and_packages() {
    let (k61, k612) = bookworm_pair();
    let module = InitModule::new("hello", "hello", HELLO_C);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = build(&module, &out, &[&k61, &k612]).expect_ok();
    assert_eq!(run.records.len(), 2, "{:#?}", run.records);
    for k in [&k61, &k612] {
        let r = record(&run.records, k);
        let artifact = artifact(&run.records, k);
        assert_eq!(
            artifact.module_version, "",
            "no MODULE_VERSION: none recorded"
        );
        assert_eq!(
            r.version, "0.1.0",
            "the package's version stays the manifest's"
        );
        let file = out.join(&artifact.path);
        assert_eq!(common::modinfo("name", &file), "hello");
        assert_eq!(common::modinfo("version", &file), "");
        assert!(log_of(&out, r).contains("hello.o"));
    }

    let packages = work.path().join("packages");
    let debs = kmodfarm_package(
        &module.manifest(),
        "deb",
        &packages,
        &[
            "--distro",
            "debian-12",
            "--prebuilt",
            &out.display().to_string(),
        ],
    );
    let names: Vec<String> = debs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for k in [&k61, &k612] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("hello-modules-{k}_"))),
            "no prebuilt package for {k}: {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("hello-dkms_")),
        "{names:?}"
    );

    // The prebuilt package installs in a Debian 12 root, and kmod there
    // finds the module for its kernel.
    let root = kmodfarm_tests::fixtures::bookworm();
    assert_eq!((&root.k61, &root.k612), (&k61, &k612), "the same kernels");
    let sandbox = kmodfarm_tests::fixtures::bookworm_sandbox();
    let mut guest_debs = Vec::new();
    for deb in &debs {
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&format!("hello-modules-{k61}_")) {
            let guest = format!("/root/debs/{name}");
            sandbox.copy_in(deb, &guest).unwrap();
            guest_debs.push(guest);
        }
    }
    sandbox.sh_ok(&format!(
        "apt-get -y -o Dpkg::Use-Pty=0 install {}",
        guest_debs.join(" ")
    ));
    let found = sandbox.run_ok(&["modinfo", "-k", k61.as_str(), "-F", "vermagic", "hello"]);
    assert!(
        found.stdout.starts_with(&format!("{k61} ")),
        "{}",
        found.stdout
    );
    let file = sandbox.run_ok(&["modinfo", "-k", k61.as_str(), "-n", "hello"]);
    assert!(
        file.stdout.trim().ends_with("hello.ko.zst"),
        "{}",
        file.stdout
    );
}

#[test]
fn a_module_file_named_with_a_dash_and_a_version_of_its_own_builds() {
    let (k61, _) = bookworm_pair();
    let body = format!("{HELLO_C}MODULE_VERSION(\"2.1.4-own\");\n");
    let module = InitModule::new("foo-bar", "foo-bar", &body);
    // init names the module foo_bar; the Makefile makes foo-bar.ko.
    module.edit_manifest("name = \"foo_bar\"", "name = \"foo-bar\"");
    module.edit_manifest("load = [\"foo_bar\"]", "load = [\"foo-bar\"]");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = build(&module, &out, &[&k61]).expect_ok();
    let r = record(&run.records, &k61);
    let artifact = artifact(&run.records, &k61);
    assert_eq!(
        artifact.path,
        format!("debian-12/amd64/{k61}/foo-bar.ko.zst")
    );
    assert_eq!(artifact.module_version, "2.1.4-own");
    let file = out.join(&artifact.path);
    assert_eq!(common::modinfo("name", &file), "foo_bar");
    assert!(log_of(&out, r).contains("foo-bar.o"));
}

/// `kmodfarm build` for one kernel, started (not waited for).
fn spawn_build(module: &InitModule, out: &Path, kernel: &KernelRelease) -> std::process::Child {
    std::process::Command::new(kmodfarm_tests::kmodfarm_bin())
        .arg("--manifest")
        .arg(module.manifest())
        .args(["build", "--runtime", "bwrap", "--kernel"])
        .arg(format!("debian-12:{kernel}"))
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kmodfarm starts")
}

#[test]
fn builds_into_one_out_keep_every_kernel_with_its_own_log_in_turn_and_at_once() {
    let (k61, k612) = bookworm_pair();
    // Breaks on 6.12 only: one kernel's log is a failure's.
    let module = InitModule::new("acc", "acc", HELLO_C);
    let breaks_612 = "#include <linux/version.h>\n#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)\n#error acc is broken on 6.12 on purpose\n#endif\n";
    module.restamp(breaks_612);
    let work = tempfile::tempdir().unwrap();

    let check = |out: &Path, records: &[BuildRecord]| {
        assert_eq!(records.len(), 2, "{records:#?}");
        let built = record(records, &k61);
        assert!(
            matches!(
                built.outcome,
                BuildOutcome::Built { .. } | BuildOutcome::Cached { .. }
            ),
            "{:?}",
            built.outcome
        );
        assert!(log_of(out, built).contains("acc.o"));
        let failed = record(records, &k612);
        let BuildOutcome::Failed { log_tail, .. } = &failed.outcome else {
            panic!("{:?}", failed.outcome)
        };
        let log = log_of(out, failed);
        assert!(log.contains("acc is broken on 6.12 on purpose"), "{log}");
        assert!(log_tail.iter().any(|l| l.contains("on purpose")));
        // A failed kernel has its records and log, no product.
        let dir = out.join(format!("debian-12/amd64/{k612}"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["acc.build.log", "record.json"]);
        let leftovers: Vec<_> = common::files_below(out)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };

    // One after the other.
    let out = work.path().join("in-turn");
    let first = build(&module, &out, &[&k61]).expect_ok();
    assert_eq!(first.records.len(), 1);
    let second = build(&module, &out, &[&k612]);
    assert!(!second.ok, "{}", second.stderr);
    check(&out, &second.records);
    // A rerun of one kernel replaces its record and keeps the other's.
    let again = build(&module, &out, &[&k61]).expect_ok();
    check(&out, &again.records);
    assert!(matches!(
        record(&again.records, &k61).outcome,
        BuildOutcome::Cached { .. }
    ));
    // The failed kernel's directory (records and log, no product) is
    // left out of the prebuilt packages, as its record says.
    let debs = kmodfarm_package(
        &module.manifest(),
        "deb",
        &work.path().join("packages"),
        &[
            "--distro",
            "debian-12",
            "--prebuilt",
            &out.display().to_string(),
        ],
    );
    let names: Vec<String> = debs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("acc-modules-{k61}_"))),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains(k612.as_str())),
        "{names:?}"
    );

    // At once, on a source neither has built.
    module.restamp(breaks_612);
    let out = work.path().join("at-once");
    let a = spawn_build(&module, &out, &k61);
    let b = spawn_build(&module, &out, &k612);
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(
        !b.status.success(),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("records.json")).unwrap()).unwrap();
    check(&out, &records);
    assert!(records
        .iter()
        .all(|r| !matches!(r.outcome, BuildOutcome::Cached { .. })));

    // A records.json kmodfarm cannot merge into is refused before building.
    let bad = work.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("records.json"), "{ not records").unwrap();
    let run = spawn_build(&module, &bad, &k61).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(&format!(
            "{}: not the records.json of a kmodfarm build",
            bad.join("records.json").display()
        )),
        "{stderr}"
    );
    assert!(!bad.join("debian-12").exists());
}

/// `s` as a bash regex that matches it only ('+' and '.' taken literally).
fn regex_quote(s: &str) -> String {
    s.replace('.', "\\.").replace('+', "\\+")
}

/// The record's log, found by its kernel.
fn log_for(out: &Path, records: &[BuildRecord], kernel: &KernelRelease) -> String {
    log_of(out, record(records, kernel))
}

#[test]
fn a_make_command_in_dkmss_own_variables_builds_in_dkmss_tree() {
    let (k61, _) = bookworm_pair();
    let module = InitModule::new("dkmsvars", "dkmsvars", HELLO_C);
    // A MAKE[0] as third-party dkms.conf files write it: it only works
    // where DKMS's variables are set and the copy is where DKMS puts it.
    module.edit_manifest(
        "[build]\n",
        "[build]\ncommand = \"make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build modules\"\n",
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = build(&module, &out, &[&k61]).expect_ok();
    let r = record(&run.records, &k61);
    let artifact = artifact(&run.records, &k61);
    assert_eq!(
        common::modinfo("name", &out.join(&artifact.path)),
        "dkmsvars"
    );
    let log = log_for(&out, &run.records, &k61);
    // DKMS's prefix and directory: make -jN KERNELRELEASE=<k>, in
    // <dkms_tree>/dkmsvars/0.1.0/build.
    assert!(
        log.contains(&format!("/dkms/dkmsvars/{}/build): make -j", r.version))
            && log.contains(&format!(
                "KERNELRELEASE={k61} -C /lib/modules/{k61}/build M="
            )),
        "{log}"
    );
}

#[test]
fn a_module_with_its_own_dkms_conf_gets_each_kernels_make_patch_and_exclusion() {
    let (k61, k612) = bookworm_pair();
    let module = InitModule::new("ownconf", "ownconf", HELLO_C);
    let src = module.dir.path().join("src");
    // Kernel-dependent as real dkms.conf files are: a per-kernel MAKE, a
    // patch for one kernel line, an exclusion by regex.
    std::fs::write(
        src.join("dkms.conf"),
        format!(
            r#"PACKAGE_NAME="ownconf"
PACKAGE_VERSION="0.1.0"
BUILT_MODULE_NAME[0]="$PACKAGE_NAME"
DEST_MODULE_LOCATION[0]="/updates/dkms"
MAKE[0]="make -C ${{kernel_source_dir}} M=${{dkms_tree}}/${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build"
MAKE[1]="make -C ${{kernel_source_dir}} M=${{dkms_tree}}/${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build EXTRA_CFLAGS=-DKMF_NEW"
MAKE_MATCH[1]="^6\.12\."
PATCH[0]="old.patch"
PATCH_MATCH[0]="^6\.1\."
BUILD_EXCLUSIVE_KERNEL="^({}|{})$"
"#,
            regex_quote(k61.as_str()),
            regex_quote(k612.as_str())
        ),
    )
    .unwrap();
    std::fs::create_dir(src.join("patches")).unwrap();
    std::fs::write(
        src.join("patches/old.patch"),
        "--- a/Makefile\n+++ b/Makefile\n@@ -1 +1,2 @@\n obj-m := ownconf.o\n+ccflags-y += -DKMF_OLD\n",
    )
    .unwrap();
    module.restamp(
        "#include <linux/module.h>\n#if defined(KMF_NEW)\nMODULE_INFO(kmf, \"new\");\n#elif defined(KMF_OLD)\nMODULE_INFO(kmf, \"old\");\n#endif\n",
    );
    module.edit_manifest("[build]\n", "[build]\ndkms_conf = \"dkms.conf\"\n");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = build(&module, &out, &[&k61, &k612]).expect_ok();
    for (k, want) in [(&k61, "old"), (&k612, "new")] {
        let artifact = artifact(&run.records, k);
        assert_eq!(
            common::modinfo("kmf", &out.join(&artifact.path)),
            want,
            "{k}"
        );
    }
    // A kernel the regex leaves out is skipped, as DKMS skips it.
    let conf = std::fs::read_to_string(src.join("dkms.conf")).unwrap();
    let conf = conf.replace(&format!("^({}|", regex_quote(k61.as_str())), "^(");
    std::fs::write(src.join("dkms.conf"), conf).unwrap();
    let run = build(&module, &out, &[&k61]).expect_ok();
    let r = record(&run.records, &k61);
    let BuildOutcome::Skipped { reason } = &r.outcome else {
        panic!("{k61}: {:?}", r.outcome)
    };
    assert!(
        reason.contains("BUILD_EXCLUSIVE_KERNEL") && reason.contains(k61.as_str()),
        "{reason}"
    );
    assert!(!out
        .join(format!("debian-12/amd64/{k61}/ownconf.ko.zst"))
        .exists());
}
