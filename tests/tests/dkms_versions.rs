//! Issue 8, "Must show": the example's -dkms package under three DKMS
//! versions from Debian's own archive, each in its own root — bullseye's
//! 2.8.x (close to Ubuntu 22.04's 2.8.7), bookworm's 3.0.10 and trixie's
//! 3.2.x. In each: `apt-get install ./kmfdemo-dkms_*.deb` builds and
//! installs for a 6.1 and a 6.12 kernel, DKMS's own compression rule is
//! followed, the kernel hooks (`run-parts` over /etc/kernel/postinst.d, the
//! version's own dkms hook and ours) rebuild a kernel, and an upgrade whose
//! range ends at 6.11 skips the 6.12 kernel in the package scripts, in
//! `dkms build` (exit 9 on 2.8, 77 on 3.x) and in the hooks, without a
//! failure anywhere.
//!
//! The roots are the shared ones (tests/src/fixtures.rs), so the file adds
//! no cached root: DKMS 2.8 is bullseye's package installed over Debian 12's
//! (a bullseye root could not build 6.12 kernels: they need gcc-12), and the
//! 6.1 kernel of the Debian 13 root is Debian 12's (Debian 13 has no 6.1),
//! both fetched from the machine's apt sources for that suite in the test's
//! sandbox, with the downloads cached. The kernels of each root are done in
//! sequence.
//!
//! Needs root, mmdebstrap, bwrap and this machine's apt sources reachable
//! (bullseye included).

use std::path::PathBuf;

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::{self, AptArchives};
use kmodfarm_tests::{
    apt_sources, dkms_status, kmodfarm_package, sandbox_modinfo, ModuleCopy, Output, Sandbox,
};

const HELPER: &str = "/usr/lib/kmfdemo-dkms/kmodfarm-dkms";
const IMAGE_HOOKS: &str = "/etc/kernel/postinst.d";

/// One DKMS version's world: its sandbox, its kernels, what it is.
struct World {
    sandbox: Sandbox,
    archives: AptArchives,
    k61: KernelRelease,
    k612: KernelRelease,
    /// What the dkms package's version must start with.
    version: &'static str,
    /// `dkms build`'s exit for a kernel BUILD_EXCLUSIVE excludes.
    excluded_exit: i32,
}

/// Adds `suite`'s sources (the machine's, rewritten for it) to the sandbox
/// and fetches their lists only.
fn add_suite(sandbox: &Sandbox, suite: &str) {
    let sources = apt_sources(suite)
        .unwrap_or_else(|e| panic!("no apt sources for {suite}: {e}"))
        .to_deb822();
    let file = format!("/etc/apt/sources.list.d/kmodfarm-{suite}.sources");
    sandbox
        .write_file(&file, sources.as_bytes(), 0o644)
        .expect("sources written");
    let update = sandbox
        .run(&[
            "apt-get",
            "update",
            "-o",
            &format!("Dir::Etc::SourceList={file}"),
            "-o",
            "Dir::Etc::SourceParts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
        ])
        .unwrap();
    assert!(
        update.success() && !update.combined().contains("Err:"),
        "{suite} is not reachable through this machine's apt sources:\n{update}"
    );
}

fn apt_install(sandbox: &Sandbox, archives: &AptArchives, args: &[&str]) -> Output {
    let mut argv = vec![
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "--allow-downgrades",
        "-o",
        "Dpkg::Use-Pty=0",
    ];
    argv.extend_from_slice(args);
    sandbox
        .run_with(&argv, &[archives.bind()])
        .expect("apt-get started")
}

fn bullseye_dkms() -> World {
    let root = fixtures::bookworm();
    let sandbox = fixtures::bookworm_sandbox();
    let archives = AptArchives::for_suite("bookworm");
    add_suite(&sandbox, "bullseye");
    let out = apt_install(&sandbox, &archives, &["dkms/bullseye"]);
    assert!(out.success(), "bullseye's dkms does not install:\n{out}");
    World {
        sandbox,
        archives,
        k61: root.k61.clone(),
        k612: root.k612.clone(),
        version: "2.8.",
        excluded_exit: 9,
    }
}

fn bookworm_dkms() -> World {
    let root = fixtures::bookworm();
    World {
        sandbox: fixtures::bookworm_sandbox(),
        archives: AptArchives::for_suite("bookworm"),
        k61: root.k61.clone(),
        k612: root.k612.clone(),
        version: "3.0.10-",
        excluded_exit: 77,
    }
}

fn trixie_dkms() -> World {
    let k61 = fixtures::bookworm().k61.clone();
    let root = fixtures::trixie();
    let sandbox = Sandbox::new(&root.root).expect("a sandbox over the Debian 13 root");
    let archives = AptArchives::for_suite("trixie");
    add_suite(&sandbox, "bookworm");
    let headers = format!("linux-headers-{k61}");
    let out = apt_install(&sandbox, &archives, &[&headers]);
    assert!(
        out.success(),
        "{headers} does not install in Debian 13:\n{out}"
    );
    World {
        sandbox,
        archives,
        k61,
        k612: root.k612.clone(),
        version: "3.2.",
        excluded_exit: 77,
    }
}

/// The -dkms .deb of the example with `edits` to its manifest.
fn dkms_deb(edits: &[(&str, &str)], out: &std::path::Path) -> PathBuf {
    let copy = ModuleCopy::example_with(edits).expect("a copy of module/");
    let debs = kmodfarm_package(&copy.manifest(), "deb", out, &[]);
    debs.into_iter()
        .find(|d| d.to_string_lossy().contains("-dkms_"))
        .expect("a -dkms .deb")
}

/// Copies `deb` in and installs it with apt (its dependencies resolved).
fn install_deb(world: &World, deb: &std::path::Path) -> Output {
    let guest = format!("/root/{}", deb.file_name().unwrap().to_string_lossy());
    world.sandbox.copy_in(deb, &guest).expect(".deb copied in");
    let out = apt_install(&world.sandbox, &world.archives, &[&guest]);
    assert!(out.success(), "apt-get install {guest} failed:\n{out}");
    assert!(!out.combined().contains("FAILED"), "{out}");
    out
}

/// DKMS's status line of `kmfdemo` `version` for `kernel`, whatever the
/// version's format ("kmfdemo/1.0.0, K, x86_64: installed" from 3.0 on,
/// "kmfdemo, 1.0.0, K, x86_64: installed" in 2.8).
fn state(world: &World, version: &str, kernel: &KernelRelease) -> Option<String> {
    let (lines, _) = dkms_status(&world.sandbox, "kmfdemo", kernel);
    lines
        .into_iter()
        .find(|l| l.contains(&format!("/{version},")) || l.contains(&format!(", {version},")))
        .map(|l| l.rsplit(": ").next().unwrap_or_default().to_string())
}

#[track_caller]
fn assert_installed(world: &World, version: &str, kernel: &KernelRelease, context: &str) {
    let (_, all) = dkms_status(&world.sandbox, "kmfdemo", kernel);
    assert_eq!(
        state(world, version, kernel).as_deref(),
        Some("installed"),
        "{}: kmfdemo {version} not installed for {kernel} {context}:\n{all}",
        world.version
    );
    let vermagic = sandbox_modinfo(&world.sandbox, kernel, "kmfdemo", "vermagic");
    assert!(
        vermagic.starts_with(&format!("{kernel} ")),
        "{}: vermagic {vermagic:?} for {kernel}",
        world.version
    );
    // DKMS compresses its build the way the kernel's own modules are.
    let file = sandbox_modinfo(&world.sandbox, kernel, "kmfdemo", "filename");
    let kernel_xz = world
        .sandbox
        .sh(&format!(
            "find /lib/modules/{kernel}/kernel -name '*.ko.xz' -print -quit 2>/dev/null | grep -q ."
        ))
        .unwrap()
        .success();
    let want = if kernel_xz {
        "kmfdemo.ko.xz"
    } else {
        "kmfdemo.ko"
    };
    assert!(
        file.ends_with(&format!("/updates/dkms/{want}")),
        "{}: DKMS installed {file} for {kernel}, whose own modules are {}",
        world.version,
        if kernel_xz {
            ".ko.xz"
        } else {
            "not compressed"
        }
    );
}

/// Runs the image hooks for `kernel` as linux-image's postinst does.
fn image_hooks(world: &World, kernel: &KernelRelease) -> Output {
    let out = world
        .sandbox
        .run(&[
            "run-parts",
            "--report",
            "--exit-on-error",
            &format!("--arg={kernel}"),
            &format!("--arg=/boot/vmlinuz-{kernel}"),
            IMAGE_HOOKS,
        ])
        .unwrap();
    assert!(
        out.success(),
        "{}: the kernel hooks failed for {kernel}, so its installation would:\n{out}",
        world.version
    );
    // DKMS's own hook is there (run-parts ran it; DKMS 3.2 says nothing
    // when autoinstall has nothing to do, so --report may not name it).
    world
        .sandbox
        .run_ok(&["test", "-x", &format!("{IMAGE_HOOKS}/dkms")]);
    out
}

fn check(world: World) {
    let started = std::time::Instant::now();
    let version = world
        .sandbox
        .run_ok(&["dpkg-query", "-W", "-f", "${Version}", "dkms"]);
    assert!(
        version.stdout.trim().starts_with(world.version),
        "expected dkms {}, the root has {}",
        world.version,
        version.stdout.trim()
    );
    let (k61, k612) = (&world.k61, &world.k612);
    let (debs, upgrade) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // The package: built and installed for both kernels.
    let first = dkms_deb(&[], debs.path());
    let said = install_deb(&world, &first);
    for kernel in [k61, k612] {
        let built = format!("kmfdemo: built and installed for {kernel}");
        assert!(said.stdout.contains(&built), "no {built:?} in:\n{said}");
        assert_installed(&world, "1.0.0", kernel, "after the package's install");
    }
    assert_eq!(
        sandbox_modinfo(&world.sandbox, k61, "kmfdemo", "kmfdemo_api"),
        "old-class-create"
    );
    assert_eq!(
        sandbox_modinfo(&world.sandbox, k612, "kmfdemo", "kmfdemo_api"),
        "new-class-create"
    );

    // Autoinstall through the kernel hooks: a kernel without the module
    // gets it from the hooks a kernel package runs.
    world
        .sandbox
        .run_ok(&["dkms", "remove", "kmfdemo/1.0.0", "-k", k612.as_str()]);
    assert_eq!(state(&world, "1.0.0", k612), None);
    image_hooks(&world, k612);
    assert_installed(&world, "1.0.0", k612, "after the kernel hooks");

    // An upgrade whose range ends at 6.11: 6.12 is skipped everywhere.
    let second = dkms_deb(
        &[
            ("version = \"1.0.0\"", "version = \"1.0.1\""),
            ("max = \"6.14\"", "max = \"6.11\""),
        ],
        upgrade.path(),
    );
    let said = install_deb(&world, &second);
    let skipped =
        format!("kmfdemo: skipping {k612}: outside the supported kernel range 5.15 to 6.11");
    assert!(said.stdout.contains(&skipped), "no {skipped:?} in:\n{said}");
    assert_installed(&world, "1.0.1", k61, "after the upgrade");
    assert_eq!(
        state(&world, "1.0.1", k612),
        None,
        "built outside the range"
    );
    assert_eq!(state(&world, "1.0.0", k612), None, "the old version stayed");
    let refused = world
        .sandbox
        .run(&["dkms", "build", "kmfdemo/1.0.1", "-k", k612.as_str()])
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(world.excluded_exit),
        "{}: dkms build outside the range:\n{refused}",
        world.version
    );
    let hooks = image_hooks(&world, k612);
    assert!(hooks.stdout.contains(&skipped), "{hooks}");
    assert_eq!(state(&world, "1.0.1", k612), None, "the hooks built it");
    let status = world.sandbox.run_ok(&[HELPER, "status"]);
    assert!(
        status.stdout.contains(&format!(
            "kernel {k612}: skipped: outside the supported kernel range"
        )),
        "{status}"
    );
    eprintln!(
        "{}: package, two kernels, hooks and range skip in {:.0?}",
        world.version,
        started.elapsed()
    );
}

#[test]
fn dkms_2_8_from_bullseye() {
    check(bullseye_dkms());
}

#[test]
fn dkms_3_0_10_from_bookworm() {
    check(bookworm_dkms());
}

#[test]
fn dkms_3_2_from_trixie() {
    check(trixie_dkms());
}
