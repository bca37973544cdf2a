//! Issue 3, "Must show": the packages `kmodfarm package` writes, installed
//! with the real apt/dpkg into the Debian 12 test root (real dkms 3.0.10,
//! real linux-headers for a 6.1 and a 6.12 kernel, the 6.12 image).
//!
//! - the -dkms .deb builds and installs the module for both kernels, puts
//!   its files and the kernel hook in place; upgrading A→B replaces A in
//!   DKMS; reinstalling is harmless; purge leaves nothing;
//! - headers before image: with System.map required and only Debian's
//!   placeholder present, the postinst skips the kernel and says why; a
//!   real-looking System.map plus the kernel hook then builds it;
//! - a prebuilt package beside the -dkms package: DKMS leaves that kernel
//!   alone; removing the prebuilt package hands the kernel back to DKMS.
//!
//! Needs root, mmdebstrap, bwrap and this machine's apt sources (apt may
//! fetch the small linux-headers-amd64 meta package the -dkms package
//! depends on).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kmodfarm_builder::kernel_image::KernelImage;
use kmodfarm_builder::qemu::Accel;
use kmodfarm_builder::symbols::{KernelSymbols, SymbolStore};
use kmodfarm_model::record::SymbolSource;
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::{self, bookworm_sandbox};
use kmodfarm_tests::{
    assert_dkms_installed, assert_dkms_not_installed, assert_handed_back_to_dkms,
    assert_taken_from_dkms, kmodfarm_package, module_dir, sandbox_modinfo, BootImage, ModuleCopy,
    Sandbox,
};

/// `kmodfarm -m MANIFEST package --format deb --out DIR [EXTRA...]`; the
/// .deb files it wrote, by package name prefix.
fn package_debs(manifest: &Path, out: &Path, extra: &[&str]) -> Vec<PathBuf> {
    kmodfarm_package(manifest, "deb", out, extra)
}

fn find<'a>(debs: &'a [PathBuf], prefix: &str) -> &'a Path {
    debs.iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* among {debs:?}"))
}

/// Copies `deb` into the sandbox (outside its per-command /tmp) and
/// returns the path apt is given.
fn copy_deb(sandbox: &Sandbox, deb: &Path) -> String {
    let guest = format!("/root/debs/{}", deb.file_name().unwrap().to_string_lossy());
    sandbox
        .copy_in(deb, &guest)
        .expect("package copied into the sandbox");
    guest
}

fn apt(sandbox: &Sandbox, args: &str) -> String {
    sandbox
        .sh_ok(&format!("apt-get -y -o Dpkg::Use-Pty=0 {args}"))
        .combined()
}

fn exists(sandbox: &Sandbox, path: &str) -> bool {
    sandbox.run(&["test", "-e", path]).unwrap().success()
}

#[test]
fn dkms_deb_installs_upgrades_reinstalls_and_purges() {
    let root = fixtures::bookworm();
    let out = tempfile::tempdir().unwrap();
    let a = package_debs(
        &module_dir().join("kmodfarm.toml"),
        &out.path().join("a"),
        &[],
    );
    let b_module = ModuleCopy::example_with(&[("version = \"1.0.0\"", "version = \"1.0.1\"")])
        .expect("a copy of module/ at 1.0.1");
    let b = package_debs(&b_module.manifest(), &out.path().join("b"), &[]);
    let sandbox = bookworm_sandbox();

    // Install A: DKMS builds and installs for both kernels.
    let a_deb = copy_deb(&sandbox, find(&a, "kmfdemo-dkms_1.0.0"));
    let said = apt(&sandbox, &format!("install {a_deb}"));
    for kernel in [&root.k61, &root.k612] {
        assert_dkms_installed(
            &sandbox,
            "kmfdemo/1.0.0",
            kernel,
            &format!("after installing A:\n{said}"),
        );
        assert_eq!(
            sandbox_modinfo(&sandbox, kernel, "kmfdemo", "version"),
            "1.0.0"
        );
    }
    for path in [
        "/usr/src/kmfdemo-1.0.0/dkms.conf",
        "/usr/src/kmfdemo-1.0.0/kmfdemo.c",
        "/usr/lib/kmfdemo-dkms/kmodfarm-dkms",
        "/usr/lib/modules-load.d/kmfdemo.conf",
    ] {
        assert!(exists(&sandbox, path), "{path} not installed");
    }
    sandbox.run_ok(&["test", "-x", "/etc/kernel/postinst.d/kmfdemo-dkms"]);
    let conffiles = sandbox.run_ok(&["dpkg-query", "-W", "-f", "${Conffiles}", "kmfdemo-dkms"]);
    assert!(
        conffiles
            .stdout
            .contains("/etc/kernel/postinst.d/kmfdemo-dkms"),
        "{conffiles}"
    );

    // Upgrade to B: DKMS has B for both kernels, and no trace of A.
    let b_deb = copy_deb(&sandbox, find(&b, "kmfdemo-dkms_1.0.1"));
    let said = apt(&sandbox, &format!("install {b_deb}"));
    for kernel in [&root.k61, &root.k612] {
        assert_dkms_installed(
            &sandbox,
            "kmfdemo/1.0.1",
            kernel,
            &format!("after upgrading to B:\n{said}"),
        );
    }
    assert!(
        !exists(&sandbox, "/usr/src/kmfdemo-1.0.0"),
        "A's source is left"
    );
    assert!(
        !exists(&sandbox, "/var/lib/dkms/kmfdemo/1.0.0"),
        "A is left in DKMS"
    );

    // Reinstalling B is harmless.
    apt(&sandbox, &format!("install --reinstall {b_deb}"));
    for kernel in [&root.k61, &root.k612] {
        assert_dkms_installed(&sandbox, "kmfdemo/1.0.1", kernel, "after reinstalling B");
    }

    // Purge: nothing of the module in /var/lib/dkms, /usr/src, /lib/modules.
    apt(&sandbox, "purge kmfdemo-dkms");
    let left = sandbox.sh_ok(
        "ls -d /var/lib/dkms/kmfdemo /usr/src/kmfdemo-* /etc/kernel/postinst.d/kmfdemo-dkms 2>/dev/null || true; \
         find /lib/modules -name 'kmfdemo*'",
    );
    assert_eq!(left.stdout.trim(), "", "left after purge:\n{left}");
}

#[test]
fn headers_before_image_waits_for_the_real_system_map() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let module =
        ModuleCopy::example_needing_system_map().expect("a copy of module/ needing System.map");
    let out = tempfile::tempdir().unwrap();
    let debs = package_debs(&module.manifest(), out.path(), &[]);
    let sandbox = bookworm_sandbox();
    let deb = copy_deb(&sandbox, find(&debs, "kmfdemo-dkms_"));

    // Only Debian's one-line placeholder is in /boot: the postinst skips
    // the kernel, says why, and the install still succeeds.
    let said = apt(&sandbox, &format!("install {deb}"));
    assert!(
        said.contains(&format!(
            "not building for {kernel}: its real System.map is not installed yet"
        )),
        "the postinst did not say why it skipped {kernel}:\n{said}"
    );
    assert_dkms_not_installed(
        &sandbox,
        "kmfdemo",
        kernel,
        "built against the placeholder System.map",
    );

    // The image's real System.map arrives, then the kernel hook runs.
    fixtures::install_stand_in_system_map(&sandbox, kernel, fixtures::STAND_IN_BANNER);
    let hook = sandbox.run_ok(&[
        "/etc/kernel/postinst.d/kmfdemo-dkms",
        kernel.as_str(),
        &format!("/boot/vmlinuz-{kernel}"),
    ]);
    assert_dkms_installed(
        &sandbox,
        "kmfdemo/1.0.0",
        kernel,
        &format!("the kernel hook did not build it:\n{hook}"),
    );
    assert_eq!(
        sandbox_modinfo(&sandbox, kernel, "kmfdemo", "kmfdemo_symbol"),
        "linux_banner=0xffffffff82a001c0"
    );
}

/// The real map of `kernel`: /proc/kallsyms of its image (the one in the
/// root's /boot) booted under QEMU, as `kmodfarm build` makes it for a
/// Debian kernel whose image has only the placeholder. The builder's store
/// checks it against the image (linux_banner's address holds the banner
/// text), and caches it in the harness's cache: one boot per machine.
fn booted_kallsyms_map(sandbox: &Sandbox, kernel: &KernelRelease) -> KernelSymbols {
    use sha2::{Digest, Sha256};
    let boot = BootImage::busybox(sandbox, kernel.as_str(), &[], "").expect("kernel and busybox");
    let vmlinuz = boot.kernel();
    let image = KernelImage {
        kernel: kernel.to_string(),
        package: format!("linux-image-{kernel}"),
        sha256: hex::encode(Sha256::digest(std::fs::read(&vmlinuz).unwrap())),
        vmlinuz,
        modules: PathBuf::new(),
    };
    let accel = match std::env::var("KMODFARM_QEMU_ACCEL").as_deref() {
        Ok("kvm") => Accel::Kvm,
        _ => Accel::Tcg,
    };
    SymbolStore::new(&kmodfarm_tests::cache_dir())
        .from_boot(
            &image,
            &boot.dir().join("root/bin/busybox"),
            accel,
            Duration::from_secs(240),
        )
        .unwrap_or_else(|e| panic!("the kallsyms map of {kernel}: {e}"))
}

/// Issue 8, "Must show": with the real map of the 6.12 kernel where
/// Debian's linux-image-<k>-dbg puts it (/usr/lib/debug/boot, while /boot
/// keeps the image's placeholder), installing the -dkms .deb of a module
/// that needs System.map builds it for that kernel, and the module records
/// the address the booted kernel has. The 6.1 kernel (headers only, no
/// image, no map) is passed over with the reason, and apt still succeeds.
#[test]
fn a_system_map_module_builds_with_the_real_map_where_the_dbg_package_puts_it() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let sandbox = bookworm_sandbox();
    let map = booted_kallsyms_map(&sandbox, kernel);
    assert_eq!(map.source, SymbolSource::BootedKallsyms);
    fixtures::placeholder_system_map(&sandbox, kernel);
    let debug = format!("/usr/lib/debug/boot/System.map-{kernel}");
    sandbox.copy_in(&map.path, &debug).expect("map copied in");

    let module =
        ModuleCopy::example_needing_system_map().expect("a copy of module/ needing System.map");
    let out = tempfile::tempdir().unwrap();
    let debs = package_debs(&module.manifest(), out.path(), &[]);
    let deb = copy_deb(&sandbox, find(&debs, "kmfdemo-dkms_"));
    let said = apt(&sandbox, &format!("install {deb}"));
    assert_dkms_installed(
        &sandbox,
        "kmfdemo/1.0.0",
        kernel,
        &format!("the postinst did not build it with {debug}:\n{said}"),
    );
    assert_eq!(
        sandbox_modinfo(&sandbox, kernel, "kmfdemo", "kmfdemo_symbol"),
        format!("linux_banner=0x{}", map.banner),
        "the module did not record the booted kernel's address"
    );
    let k61 = &root.k61;
    assert!(
        said.contains(&format!(
            "not building for {k61}: its real System.map is not installed yet"
        )),
        "the postinst did not say why it skipped {k61}:\n{said}"
    );
    assert_dkms_not_installed(&sandbox, "kmfdemo", k61, "built without any map");
}

/// The module DKMS built for `kernel` in the sandbox, recompressed with
/// zstd on the host: what `kmodfarm build` would produce for that kernel.
fn dkms_built_module_as_zst(sandbox: &Sandbox, kernel: &KernelRelease, dir: &Path) -> PathBuf {
    let found = sandbox.sh_ok(&format!(
        "ls /lib/modules/{kernel}/updates/dkms/kmfdemo.ko*"
    ));
    let path = found.stdout.trim().to_string();
    let b64 = sandbox.run_ok(&["base64", "-w0", &path]);
    let packed = dir.join(Path::new(&path).file_name().unwrap());
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b64.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 -d on the host");
    std::fs::write(&packed, decoded.stdout).unwrap();
    let ko = dir.join("kmfdemo.ko");
    let plain = match packed.extension().and_then(|e| e.to_str()) {
        Some("xz") => {
            Command::new("xz")
                .arg("-dc")
                .arg(&packed)
                .output()
                .unwrap()
                .stdout
        }
        Some("zst") => {
            Command::new("zstd")
                .arg("-dc")
                .arg(&packed)
                .output()
                .unwrap()
                .stdout
        }
        _ => std::fs::read(&packed).unwrap(),
    };
    assert!(
        plain.starts_with(b"\x7fELF"),
        "{path} is not a kernel module"
    );
    std::fs::write(&ko, plain).unwrap();
    let zst = dir.join("kmfdemo.ko.zst");
    let status = Command::new("zstd")
        .args(["-q", "-19", "-f"])
        .arg(&ko)
        .arg("-o")
        .arg(&zst)
        .status()
        .unwrap();
    assert!(status.success());
    zst
}

#[test]
fn prebuilt_package_takes_a_kernel_from_dkms_and_gives_it_back() {
    let root = fixtures::bookworm();
    // The 6.12 kernel: the root has its image, which the prebuilt package
    // depends on.
    let kernel = &root.k612;
    let out = tempfile::tempdir().unwrap();
    let dkms_debs = package_debs(
        &module_dir().join("kmodfarm.toml"),
        &out.path().join("dkms"),
        &[],
    );
    let sandbox = bookworm_sandbox();
    let dkms_deb = copy_deb(&sandbox, find(&dkms_debs, "kmfdemo-dkms_"));
    apt(&sandbox, &format!("install {dkms_deb}"));
    assert_dkms_installed(
        &sandbox,
        "kmfdemo/1.0.0",
        kernel,
        "after installing the -dkms deb",
    );

    let zst = dkms_built_module_as_zst(&sandbox, kernel, out.path());
    let debs = package_debs(
        &module_dir().join("kmodfarm.toml"),
        &out.path().join("prebuilt"),
        &[
            "--ko",
            &zst.display().to_string(),
            "--kernel",
            kernel.as_str(),
        ],
    );
    let prebuilt = copy_deb(&sandbox, find(&debs, &format!("kmfdemo-modules-{kernel}_")));

    // Installing the prebuilt package removes DKMS's copy for that kernel
    // only, and modprobe's index finds the prebuilt module.
    let said = apt(&sandbox, &format!("install {prebuilt}"));
    assert_taken_from_dkms(&sandbox, &said, "kmfdemo/1.0.0", kernel);
    assert_dkms_installed(
        &sandbox,
        "kmfdemo/1.0.0",
        &root.k61,
        "the other kernel was touched",
    );
    let file = sandbox.run_ok(&["modinfo", "-k", kernel.as_str(), "-n", "kmfdemo"]);
    assert_eq!(
        file.stdout.trim(),
        format!("/lib/modules/{kernel}/updates/kmfdemo.ko.zst")
    );

    // Every DKMS entry point leaves the kernel alone while the marker is there.
    let hook = sandbox.run_ok(&["/etc/kernel/postinst.d/kmfdemo-dkms", kernel.as_str()]);
    let auto = sandbox
        .run(&["dkms", "autoinstall", "-k", kernel.as_str()])
        .unwrap();
    assert_dkms_not_installed(
        &sandbox,
        "kmfdemo",
        kernel,
        &format!("DKMS built over the prebuilt module:\n{hook}\n{auto}"),
    );
    let file = sandbox.run_ok(&["modinfo", "-k", kernel.as_str(), "-n", "kmfdemo"]);
    assert_eq!(
        file.stdout.trim(),
        format!("/lib/modules/{kernel}/updates/kmfdemo.ko.zst")
    );

    // Removing the prebuilt package hands the kernel back to DKMS.
    let said = apt(&sandbox, &format!("remove kmfdemo-modules-{kernel}"));
    assert_handed_back_to_dkms(&sandbox, &said, "kmfdemo/1.0.0", kernel);
    assert!(!exists(
        &sandbox,
        &format!("/var/lib/kmodfarm/kmfdemo/prebuilt/{kernel}")
    ));
    let file = sandbox.run_ok(&["modinfo", "-k", kernel.as_str(), "-n", "kmfdemo"]);
    assert!(
        file.stdout
            .trim()
            .starts_with(&format!("/lib/modules/{kernel}/updates/dkms/kmfdemo.ko")),
        "{file}"
    );
}
