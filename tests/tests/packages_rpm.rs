//! Issue 3, "Must show": the .rpm packages' scriptlets, run in the Debian 12
//! test root against real DKMS, do what the .deb scripts do. The payload is
//! unpacked by the real rpm (`rpm --root DIR -i --nodeps --noscripts` on
//! the host, modes as declared), copied into the sandbox, and each
//! scriptlet run with its recorded interpreter and the argument rpm gives
//! it ($1: instances left), in rpm's order: %post on install; %preun, file
//! removal, %postun on erase.
//!
//! Needs root, mmdebstrap, bwrap, rpm and the Debian 12 test root.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_tests::fixtures::{self, bookworm_sandbox};
use kmodfarm_tests::{
    assert_dkms_installed, assert_handed_back_to_dkms, assert_taken_from_dkms, kmodfarm_package,
    module_dir, run_ok, Sandbox,
};

/// The .rpm of module/ whose file name starts with `prefix`, written by
/// `kmodfarm package --format rpm --out OUT EXTRA...`.
fn package_rpm(out: &Path, extra: &[&str], prefix: &str) -> PathBuf {
    let rpms = kmodfarm_package(&module_dir().join("kmodfarm.toml"), "rpm", out, extra);
    rpms.iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* among {rpms:?}"))
        .clone()
}

/// An .rpm unpacked by rpm itself, its file list and its scriptlets.
struct Unpacked {
    root: tempfile::TempDir,
    files: Vec<String>,
    rpm: PathBuf,
}

impl Unpacked {
    fn new(rpm: &Path) -> Unpacked {
        let root = tempfile::tempdir().unwrap();
        run_ok(
            Command::new("rpm")
                .arg("--root")
                .arg(root.path())
                .arg("--initdb"),
        );
        run_ok(
            Command::new("rpm")
                .arg("--root")
                .arg(root.path())
                .args(["-i", "--nodeps", "--noscripts"])
                .arg(rpm),
        );
        let files = run_ok(Command::new("rpm").arg("-qpl").arg(rpm))
            .lines()
            .map(str::to_string)
            .collect();
        Unpacked {
            root,
            files,
            rpm: rpm.to_path_buf(),
        }
    }

    /// Copies every regular file of the package into the sandbox.
    fn install_files(&self, sandbox: &Sandbox) {
        for file in &self.files {
            let on_host = self.root.path().join(file.trim_start_matches('/'));
            if on_host.is_file() {
                sandbox.copy_in(&on_host, file).expect("file copied in");
            }
        }
    }

    /// What rpm -e does to the files: they go, deepest first.
    fn remove_files(&self, sandbox: &Sandbox) {
        let mut paths = self.files.clone();
        paths.sort_by(|a, b| b.cmp(a));
        for path in paths {
            sandbox.sh_ok(&format!("if [ -d '{path}' ]; then rmdir '{path}' 2>/dev/null || true; else rm -f '{path}'; fi"));
        }
    }

    /// Runs the scriptlet `tag` (POSTIN, PREUN, POSTUN) with argument `arg`.
    fn scriptlet(&self, sandbox: &Sandbox, tag: &str, arg: &str) -> String {
        let body = run_ok(
            Command::new("rpm")
                .args(["-qp", "--qf", &format!("%{{{tag}}}")])
                .arg(&self.rpm),
        );
        let prog = run_ok(
            Command::new("rpm")
                .args(["-qp", "--qf", &format!("%{{{tag}PROG}}")])
                .arg(&self.rpm),
        );
        assert_eq!(prog.trim(), "/bin/sh", "{tag} interpreter");
        let guest = format!("/root/scriptlet-{tag}");
        sandbox.write_file(&guest, body.as_bytes(), 0o755).unwrap();
        sandbox.run_ok(&[prog.trim(), &guest, arg]).combined()
    }
}

#[test]
fn rpm_scriptlets_register_build_hand_over_and_remove_like_the_debs() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let out = tempfile::tempdir().unwrap();
    let dkms_rpm = package_rpm(&out.path().join("dkms"), &[], "kmfdemo-dkms-");
    let dkms = Unpacked::new(&dkms_rpm);
    let sandbox = bookworm_sandbox();

    // Install: files, then %post 1 — DKMS builds for both kernels.
    dkms.install_files(&sandbox);
    let said = dkms.scriptlet(&sandbox, "POSTIN", "1");
    for k in [&root.k61, &root.k612] {
        let context = format!("%post did not build for {k}:\n{said}");
        assert_dkms_installed(&sandbox, "kmfdemo/1.0.0", k, &context);
    }

    // A prebuilt kmod rpm for the 6.12 kernel: its %post takes the kernel
    // from DKMS; erasing it (%postun 0) hands the kernel back.
    let ko_zst = out.path().join("kmfdemo.ko.zst");
    std::fs::write(&ko_zst, zstd_frame()).unwrap();
    let ko_arg = ko_zst.display().to_string();
    let kmod_rpm = package_rpm(
        &out.path().join("prebuilt"),
        &["--ko", &ko_arg, "--kernel", kernel.as_str()],
        "kmod-kmfdemo-",
    );
    let kmod = Unpacked::new(&kmod_rpm);
    kmod.install_files(&sandbox);
    let said = kmod.scriptlet(&sandbox, "POSTIN", "1");
    assert_taken_from_dkms(&sandbox, &said, "kmfdemo/1.0.0", kernel);
    kmod.remove_files(&sandbox);
    let said = kmod.scriptlet(&sandbox, "POSTUN", "0");
    assert_handed_back_to_dkms(&sandbox, &said, "kmfdemo/1.0.0", kernel);

    // Erase the -dkms rpm: %preun 0, files go, %postun 0 — nothing left.
    let said = dkms.scriptlet(&sandbox, "PREUN", "0");
    dkms.remove_files(&sandbox);
    let said = said + &dkms.scriptlet(&sandbox, "POSTUN", "0");
    let left = sandbox.sh_ok(
        "ls -d /var/lib/dkms/kmfdemo /usr/src/kmfdemo-* 2>/dev/null || true; find /lib/modules -name 'kmfdemo*'",
    );
    assert_eq!(left.stdout.trim(), "", "left after erase:\n{left}\n{said}");
}

/// A valid, tiny zstd frame: the kmod rpm's payload is not loaded here,
/// only installed and removed, so its contents do not matter.
fn zstd_frame() -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"payload")?;
            c.wait_with_output()
        })
        .expect("zstd on the host");
    out.stdout
}
