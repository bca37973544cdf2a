//! Installing a kernel or its headers never fails because of kmfdemo.
//!
//! Debian 12's DKMS (3.0.10) counts a module that skips a kernel in
//! `dkms autoinstall` as a failure (exit 11), and Debian's own dkms kernel
//! hooks pass that on to `run-parts --exit-on-error`, which fails the
//! linux-image or linux-headers package. These tests run the real hooks the
//! kernel packages run (Debian's `dkms` hook and ours, with `run-parts` as
//! the packages call it) for kernels kmfdemo skips: outside the manifest's
//! range, served by a prebuilt package, and without the real System.map the
//! module needs. Every run must succeed, say why kmfdemo was skipped, and
//! leave DKMS without a build for that kernel; supported kernels must still
//! be built by the hooks.
//!
//! Needs root, mmdebstrap, bwrap and this machine's apt sources reachable;
//! the first run makes the cached Debian 12 root (a few minutes).

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::{self, bookworm_with};
use kmodfarm_tests::{
    assert_dkms_has_nothing_for, assert_dkms_installed, assert_dkms_not_installed, sandbox_modinfo,
    ModuleCopy, Output, Rendered, Sandbox,
};

/// Where the kernel packages' hooks live, and what each package passes.
const HEADER_HOOKS: &str = "/etc/kernel/header_postinst.d";
const IMAGE_HOOKS: &str = "/etc/kernel/postinst.d";

/// A sandbox over the Debian 12 root with `rendered` installed as its -dkms
/// package would: the source in /usr/src, the helper, our two kernel hooks
/// next to Debian's `dkms` hooks, and the module added to DKMS.
fn installed(rendered: &Rendered) -> Sandbox {
    let sandbox = bookworm_with(rendered);
    let hook = hook_name(rendered);
    for dir in [HEADER_HOOKS, IMAGE_HOOKS] {
        let rendered_hook = rendered.file(&format!("kernel/{}/{hook}", dir_name(dir)));
        sandbox
            .copy_in(&rendered_hook, &format!("{dir}/{hook}"))
            .expect("kernel hook copied in");
    }
    sandbox.run_ok(&["dkms", "add", &rendered.dkms_id()]);
    sandbox
}

fn hook_name(rendered: &Rendered) -> String {
    format!("{}-dkms", rendered.manifest.package.name)
}

fn dir_name(dir: &str) -> &str {
    dir.rsplit('/').next().expect("a directory path")
}

/// Runs the hooks in `dir` for `kernel` exactly as Debian's linux-headers
/// (header_postinst.d) and linux-image (postinst.d, which also gets the
/// image's path) maintainer scripts do.
fn run_hooks(sandbox: &Sandbox, dir: &str, kernel: &KernelRelease) -> Output {
    let mut argv = vec![
        "run-parts".to_string(),
        "--report".to_string(),
        "--exit-on-error".to_string(),
        format!("--arg={kernel}"),
    ];
    if dir == IMAGE_HOOKS {
        argv.push(format!("--arg=/boot/vmlinuz-{kernel}"));
    }
    argv.push(dir.to_string());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    sandbox.run(&argv).expect("run-parts started")
}

/// The hooks succeeded (a kernel package would install) and Debian's dkms
/// hook ran: run-parts --report names each hook that prints something, and
/// Debian's always does. Whether ours ran shows in what it said.
#[track_caller]
fn assert_hooks_pass(out: &Output, dir: &str) {
    assert!(
        out.success(),
        "the kernel package's hooks failed, so installing it would fail:\n{out}"
    );
    assert!(
        out.stdout.contains(&format!("{dir}/dkms:")),
        "run-parts did not run Debian's {dir}/dkms:\n{out}"
    );
}

#[track_caller]
fn assert_not_built(sandbox: &Sandbox, kernel: &KernelRelease) {
    assert_dkms_has_nothing_for(sandbox, "kmfdemo", kernel, "after the hooks ran");
}

#[track_caller]
fn assert_installed(sandbox: &Sandbox, rendered: &Rendered, kernel: &KernelRelease) {
    assert_dkms_installed(sandbox, &rendered.dkms_id(), kernel, "after the hooks ran");
}

#[test]
fn kernel_outside_the_range_installs_and_is_skipped() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example_with(&[("max = \"6.14\"", "max = \"6.11\"")]);
    let sandbox = installed(&rendered);
    let skipped = format!(
        "kmfdemo: skipping {}: outside the supported kernel range 5.15 to 6.11",
        root.k612
    );

    // Only added: DKMS reads dkms.conf for status lines without a kernel.
    for dir in [HEADER_HOOKS, IMAGE_HOOKS] {
        let out = run_hooks(&sandbox, dir, &root.k612);
        assert_hooks_pass(&out, dir);
        assert!(out.stdout.contains(&skipped), "no {skipped:?} in:\n{out}");
        assert_not_built(&sandbox, &root.k612);
    }

    // A supported kernel: DKMS's own autoinstall (what Debian's hook runs)
    // still builds it, and the headers' hooks do too.
    sandbox.run_ok(&["dkms", "autoinstall", "-k", root.k61.as_str()]);
    assert_installed(&sandbox, &rendered, &root.k61);
    let out = run_hooks(&sandbox, HEADER_HOOKS, &root.k61);
    assert_hooks_pass(&out, HEADER_HOOKS);
    assert!(
        out.stdout
            .contains(&format!("kmfdemo: {}: already installed", root.k61)),
        "{out}"
    );

    // Installed for 6.1: DKMS now reads dkms.conf with 6.1 as $kernelver
    // while autoinstalling 6.12; still skipped, still no failure.
    let out = run_hooks(&sandbox, IMAGE_HOOKS, &root.k612);
    assert_hooks_pass(&out, IMAGE_HOOKS);
    assert!(out.stdout.contains(&skipped), "{out}");
    assert_not_built(&sandbox, &root.k612);

    // A direct build for the excluded kernel is still refused by DKMS.
    let refused = sandbox
        .run(&[
            "dkms",
            "build",
            "-k",
            root.k612.as_str(),
            &rendered.dkms_id(),
        ])
        .unwrap();
    assert_eq!(refused.status.code(), Some(77), "{refused}");
}

#[test]
fn kernel_served_by_a_prebuilt_package_installs_and_is_left_alone() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example();
    let sandbox = installed(&rendered);
    let kernel = &root.k612;
    // What the kmfdemo-modules-<kernel> package's files would leave.
    let package = format!("kmfdemo-modules-{kernel}");
    sandbox
        .write_file(
            &format!("/var/lib/kmodfarm/kmfdemo/prebuilt/{kernel}"),
            format!("{package}\n").as_bytes(),
            0o644,
        )
        .expect("prebuilt marker written");

    for dir in [HEADER_HOOKS, IMAGE_HOOKS] {
        let out = run_hooks(&sandbox, dir, kernel);
        assert_hooks_pass(&out, dir);
        let said = format!("kmfdemo: skipping {kernel}: served by prebuilt package {package}");
        assert!(out.stdout.contains(&said), "no {said:?} in:\n{out}");
        assert_not_built(&sandbox, kernel);
    }
    // Direct DKMS calls still skip it (exit 77: BUILD_EXCLUSIVE).
    let refused = sandbox
        .run(&["dkms", "build", "-k", kernel.as_str(), &rendered.dkms_id()])
        .unwrap();
    assert_eq!(refused.status.code(), Some(77), "{refused}");

    // Without the marker (prebuilt package removed) the same hooks build it.
    sandbox.run_ok(&[
        "rm",
        &format!("/var/lib/kmodfarm/kmfdemo/prebuilt/{kernel}"),
    ]);
    let out = run_hooks(&sandbox, HEADER_HOOKS, kernel);
    assert_hooks_pass(&out, HEADER_HOOKS);
    assert_installed(&sandbox, &rendered, kernel);
}

#[test]
fn kernel_without_a_real_system_map_installs_and_builds_once_it_has_one() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let rendered = Rendered::example_needing_system_map();
    let sandbox = installed(&rendered);
    fixtures::placeholder_system_map(&sandbox, kernel);

    // Headers first, or an image with only the placeholder.
    for dir in [HEADER_HOOKS, IMAGE_HOOKS] {
        let out = run_hooks(&sandbox, dir, kernel);
        assert_hooks_pass(&out, dir);
        let said =
            format!("kmfdemo: not building for {kernel}: its real System.map is not installed yet");
        assert!(out.stdout.contains(&said), "no {said:?} in:\n{out}");
        assert_not_built(&sandbox, kernel);
    }

    // Once a real System.map is there, the image's hooks build the module.
    fixtures::install_stand_in_system_map(&sandbox, kernel, fixtures::STAND_IN_BANNER);
    let out = run_hooks(&sandbox, IMAGE_HOOKS, kernel);
    assert_hooks_pass(&out, IMAGE_HOOKS);
    assert_installed(&sandbox, &rendered, kernel);
    assert_eq!(
        sandbox_modinfo(&sandbox, kernel, "kmfdemo", "kmfdemo_symbol"),
        "linux_banner=0xffffffff82a001c0"
    );
}

#[test]
fn a_half_removed_package_never_fails_a_kernel() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example();
    let sandbox = installed(&rendered);
    // The helper is gone but DKMS still has the module and our hooks are
    // still in /etc (a removal that stopped half-way, or removed-not-purged).
    sandbox.run_ok(&["rm", &rendered.helper_path()]);

    // 6.12 is in the range, but nothing can say whether kmfdemo wants it:
    // autoinstall leaves it alone, and the kernel still installs.
    let out = run_hooks(&sandbox, HEADER_HOOKS, &root.k612);
    assert_hooks_pass(&out, HEADER_HOOKS);
    assert_not_built(&sandbox, &root.k612);
    let out = sandbox
        .run(&["dkms", "autoinstall", "-k", root.k61.as_str()])
        .unwrap();
    assert!(out.success(), "{out}");
    assert_not_built(&sandbox, &root.k61);
}

/// Issue 8, "Must show": installing a kernel (`apt-get install
/// linux-image-<k>` in the Debian 12 root, the image's real postinst and
/// its run-parts --exit-on-error over /etc/kernel/postinst.d, Debian's dkms
/// hook included) with a -dkms package whose module does not compile for
/// that kernel: apt succeeds, our hook says the build failed and where the
/// log is, `kmodfarm-dkms status` names the kernel and the log, the log has
/// the compiler's error, and DKMS has nothing installed for that kernel.
/// The kernel is the 6.1 one (its headers are in the root, its image is
/// not); the module is the example with class_create() always called the
/// 6.4+ way, which 6.1 refuses.
#[test]
fn a_module_that_fails_to_build_never_fails_the_kernel_installation() {
    let root = fixtures::bookworm();
    let kernel = &root.k61;
    let copy = ModuleCopy::example_with(&[]).expect("a copy of module/");
    copy.edit_source(
        "kmfdemo.c",
        "#if KMFDEMO_CLASS_CREATE_TAKES_OWNER",
        "#if 0 /* broken on purpose: 6.1 needs the owner argument */",
    )
    .expect("kmfdemo.c edited");
    let rendered = Rendered::of_copy(copy);
    let sandbox = installed(&rendered);
    let archives = fixtures::AptArchives::for_suite("bookworm");

    let image = format!("linux-image-{kernel}");
    let install = sandbox
        .run_with(
            &[
                "env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "-o",
                "Dpkg::Use-Pty=0",
                &image,
            ],
            &[archives.bind()],
        )
        .expect("apt-get started");
    assert!(
        install.success(),
        "apt-get install {image} failed because of kmfdemo:\n{install}"
    );
    let said = install.combined();
    assert!(
        said.contains(&format!("Setting up {image} ")),
        "the image was not configured:\n{said}"
    );
    // Debian's dkms hook ran for the kernel and passed over kmfdemo; ours
    // tried, failed, and said where the log is.
    assert!(
        said.contains(&format!(
            "running auto installation service for kernel {kernel}"
        )),
        "Debian's dkms hook did not run:\n{said}"
    );
    let log = format!("/var/lib/kmodfarm/kmfdemo/log/{kernel}/make.log");
    let failed = format!("kmfdemo: build FAILED for {kernel} (dkms build exit 10); see {log}");
    assert!(said.contains(&failed), "no {failed:?} in:\n{said}");

    let status = sandbox.run_ok(&[&rendered.helper_path(), "status"]);
    let line = format!("kernel {kernel}: build FAILED for kmfdemo 1.0.0; log: {log}");
    assert!(status.stdout.contains(&line), "no {line:?} in:\n{status}");
    let make_log = sandbox.read_file(&log).expect("the kept make.log");
    assert!(
        make_log.contains("class_create") && make_log.contains("error"),
        "the log does not show the compiler's error:\n{make_log}"
    );
    assert_dkms_not_installed(&sandbox, "kmfdemo", kernel, "after the failed build");

    // DKMS's own autoinstall (what dkms.service runs at boot) passes over
    // the known failure instead of failing again.
    let again = sandbox
        .run(&["dkms", "autoinstall", "-k", kernel.as_str()])
        .unwrap();
    assert!(again.success(), "{again}");
}
