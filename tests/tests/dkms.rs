//! Issue 2, "Must show": the rendered dkms.conf of module/ is accepted by
//! real DKMS (Debian 12's dkms 3.0.10) against real linux-headers of one 6.1
//! and one 6.12 kernel from Debian's archive, and a manifest range that
//! excludes 6.12 makes DKMS and the package scripts skip it as expected. Also
//! the System.map requirement: no build against Debian's placeholder.
//!
//! Needs root, mmdebstrap, bwrap and this machine's apt sources reachable;
//! the first run makes the cached Debian 12 root (a few minutes).

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::{self, bookworm_with};
use kmodfarm_tests::{
    assert_dkms_has_nothing_for, assert_dkms_installed, sandbox_modinfo, Rendered, Sandbox,
};

/// `modinfo -k K -F FIELD kmfdemo` (through modules.dep: depmod registered it).
fn modinfo(sandbox: &Sandbox, kernel: &KernelRelease, field: &str) -> String {
    sandbox_modinfo(sandbox, kernel, "kmfdemo", field)
}

#[test]
fn dkms_accepts_rendered_conf() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example();
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();

    let mut said = String::new();
    said += &sandbox.run_ok(&["dkms", "add", &id]).combined();
    for kernel in [&root.k61, &root.k612] {
        let build = sandbox.run_ok(&["dkms", "build", "-k", kernel.as_str(), &id]);
        // The PRE_BUILD step (kmodfarm-prebuild, then ./configure) ran for
        // this kernel and probed the API it has.
        let expected = if kernel == &root.k61 {
            "class_create(owner, name)"
        } else {
            "class_create(name)"
        };
        assert!(
            build
                .stdout
                .contains(&format!("kmfdemo configure: {kernel}: {expected}")),
            "configure did not report {expected} for {kernel}:\n{build}"
        );
        said += &build.combined();
        said += &sandbox
            .run_ok(&["dkms", "install", "-k", kernel.as_str(), &id])
            .combined();
    }

    let status = sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo"]);
    for kernel in [&root.k61, &root.k612] {
        assert_dkms_installed(&sandbox, &id, kernel, "after dkms install");
        let vermagic = modinfo(&sandbox, kernel, "vermagic");
        assert!(
            vermagic.starts_with(&format!("{kernel} ")),
            "module installed for {kernel} has vermagic {vermagic:?}"
        );
        let path = modinfo(&sandbox, kernel, "filename");
        assert!(
            path.starts_with(&format!("/lib/modules/{kernel}/updates/dkms/kmfdemo.ko")),
            "installed at {path}, not the manifest's /updates/dkms"
        );
        // No real System.map in the root: built without a symbol address.
        assert_eq!(modinfo(&sandbox, kernel, "kmfdemo_symbol"), "none");
    }
    assert_eq!(
        modinfo(&sandbox, &root.k61, "kmfdemo_api"),
        "old-class-create"
    );
    assert_eq!(
        modinfo(&sandbox, &root.k612, "kmfdemo_api"),
        "new-class-create"
    );
    said += &status.combined();
    assert!(
        !said.contains("Deprecated feature"),
        "DKMS warned about a deprecated feature:\n{said}"
    );
}

#[test]
fn build_exclusive_skips() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example_with(&[("max = \"6.14\"", "max = \"6.11\"")]);
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();

    // DKMS itself refuses the kernel outside the range (exit 77 = skipped)...
    sandbox.run_ok(&["dkms", "add", &id]);
    let refused = sandbox
        .run(&["dkms", "build", "-k", root.k612.as_str(), &id])
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(77),
        "dkms build for {} outside the range:\n{refused}",
        root.k612
    );
    assert!(
        refused
            .combined()
            .contains("BUILD_EXCLUSIVE directive which does not match this kernel"),
        "{refused}"
    );

    // ...and the package scripts' helper treats that as expected: it skips
    // 6.12 saying why, installs 6.1, and succeeds.
    let configure = sandbox.run_ok(&[&rendered.helper_path(), "configure"]);
    let skipped = format!(
        "kmfdemo: skipping {}: outside the supported kernel range",
        root.k612
    );
    assert!(
        configure.stdout.contains(&skipped),
        "no {skipped:?} in:\n{configure}"
    );
    assert!(
        configure
            .stdout
            .contains(&format!("kmfdemo: built and installed for {}", root.k61)),
        "{configure}"
    );
    assert!(!configure.combined().contains("FAILED"), "{configure}");

    assert_dkms_installed(&sandbox, &id, &root.k61, "after configure");
    assert_dkms_has_nothing_for(&sandbox, "kmfdemo", &root.k612, "the excluded kernel");

    // Running it again (a reinstall) is harmless and still succeeds.
    let again = sandbox.run_ok(&[&rendered.helper_path(), "configure"]);
    assert!(again.stdout.contains(&skipped), "{again}");
    assert!(
        again
            .stdout
            .contains(&format!("{}: already installed", root.k61)),
        "{again}"
    );
}

#[test]
fn system_map_required() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let rendered = Rendered::example_needing_system_map();
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();
    // The root has the 6.12 image installed, so /boot holds Debian's
    // one-line placeholder: it must not count.
    let system_map = fixtures::placeholder_system_map(&sandbox, kernel);

    sandbox.run_ok(&["dkms", "add", &id]);
    let refused = sandbox
        .run(&["dkms", "build", "-k", kernel.as_str(), &id])
        .unwrap();
    assert!(
        !refused.success(),
        "dkms built against the placeholder System.map:\n{refused}"
    );
    assert!(
        refused.stderr.contains(&format!(
            "needs the real System.map of kernel {kernel}, and {system_map} is only a placeholder"
        )),
        "the refusal does not name System.map:\n{refused}"
    );
    // DKMS 3.0.10 ignores PRE_BUILD's exit status: the refusal must stop
    // make itself, with the reason in make.log (not merely fail later for
    // want of the configure step's output).
    let make_log = sandbox
        .read_file("/var/lib/dkms/kmfdemo/1.0.0/build/make.log")
        .expect("DKMS keeps make.log of the failed build");
    assert!(
        make_log.contains("kmodfarm-prebuild: kmfdemo needs the real System.map")
            && !make_log.contains("CC [M]"),
        "make did not stop on the refusal before compiling:\n{make_log}"
    );
    // The package scripts' helper does not even try, and says why.
    let hook = sandbox.run_ok(&[&rendered.helper_path(), "kernel-installed", kernel.as_str()]);
    assert!(
        hook.stdout.contains(&format!(
            "not building for {kernel}: its real System.map is not installed yet"
        )),
        "{hook}"
    );
    let status = sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo", "-k", kernel.as_str()]);
    assert!(!status.stdout.contains("installed"), "{status}");

    // With a real-looking System.map where the image puts it, it builds and
    // the configure step records the symbol's address.
    let banner = 0xffff_ffff_82a0_01c0u64;
    fixtures::install_stand_in_system_map(&sandbox, kernel, banner);
    sandbox
        .run(&["dkms", "remove", &id, "-k", kernel.as_str()])
        .unwrap(); // a failed build may leave state
    let build = sandbox.run_ok(&["dkms", "build", "-k", kernel.as_str(), &id]);
    assert!(
        build.stdout.contains(&format!(
            "kmfdemo configure: {kernel}: linux_banner at 0x{banner:x} (from {system_map})"
        )),
        "{build}"
    );
    sandbox.run_ok(&["dkms", "install", "-k", kernel.as_str(), &id]);
    assert_eq!(
        modinfo(&sandbox, kernel, "kmfdemo_symbol"),
        format!("linux_banner=0x{banner:x}")
    );
}
