//! Booting a Debian kernel under QEMU with a tiny busybox initramfs, to load
//! a module that was built in a sandbox and see what it does.
//!
//! The kernel image and busybox come from the sandbox's apt sources, so the
//! boot uses the very kernel DKMS built against; QEMU runs on the host. The
//! initramfs is written and booted by the product's own code
//! (`kmodfarm_builder::initramfs` and `::qemu`), not a second copy here.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kmodfarm_builder::initramfs::Initramfs;
use kmodfarm_builder::qemu::{self, Accel, BootSpec};
use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::process::require_tool;
use crate::sandbox::{Bind, Sandbox};

/// Where the sandbox script writes the kernel image and the initramfs.
const OUT: &str = "/tmp/kmodfarm-boot-out";

/// Runs inside the sandbox: $1 kernel release, then module names. Lays out
/// the initramfs's files in $OUT/root: busybox and the modules
/// (decompressed: busybox's insmod reads plain .ko), and copies the kernel
/// image out: the installed /boot/vmlinuz-<k>, else the one in
/// linux-image-<k>.
const MAKE_INITRAMFS: &str = r#"
kernel=$1
shift
work=/tmp/initramfs
root=$OUT/root
mkdir -p "$work" "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/modules"
chmod 1777 "$work" # apt downloads as its _apt user
cd "$work"
apt-get download -q busybox-static
dpkg-deb -x busybox-static_*.deb busybox
cp busybox/bin/busybox "$root/bin/busybox"
if [ -f "/boot/vmlinuz-$kernel" ]; then
    cp "/boot/vmlinuz-$kernel" "$OUT/vmlinuz"
else
    apt-get download -q "linux-image-$kernel"
    dpkg-deb -x linux-image-"$kernel"_*.deb image
    cp "image/boot/vmlinuz-$kernel" "$OUT/vmlinuz"
fi
for module in "$@"; do
    path=$(modinfo -k "$kernel" -n "$module")
    case "$path" in
        *.xz) xz -dc "$path" ;;
        *.zst) zstd -dc "$path" ;;
        *) cat "$path" ;;
    esac >"$root/modules/$module.ko"
done
"#;

/// Runs first in /init: a shell with /proc, /sys and /dev (devtmpfs).
const INIT_PRELUDE: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
";

/// Adds the files below `dir` to `ramfs` as `prefix/...`, directories
/// before what they hold, in name order.
fn add_tree(ramfs: &mut Initramfs, dir: &Path, prefix: &str) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            ramfs.dir(&name);
            add_tree(ramfs, &path, &format!("{name}/"))?;
        } else {
            let mode = fs::metadata(&path)
                .map_err(Error::io(&path))?
                .permissions()
                .mode()
                & 0o777;
            ramfs.file(&name, mode, &fs::read(&path).map_err(Error::io(&path))?);
        }
    }
    Ok(())
}

/// A kernel image and a busybox initramfs ready to boot.
pub struct BootImage {
    dir: TempDir,
}

impl BootImage {
    /// Kernel `kernel` of `sandbox` with an initramfs whose /init runs
    /// `script` (busybox sh, /proc /sys /dev mounted) and then powers off;
    /// `modules` (as `modinfo -k <kernel>` finds them in the sandbox) are
    /// at `/modules/<name>.ko`.
    pub fn busybox(
        sandbox: &Sandbox,
        kernel: &str,
        modules: &[&str],
        script: &str,
    ) -> Result<BootImage> {
        let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
        let init = dir.path().join("init");
        fs::write(&init, format!("{INIT_PRELUDE}{script}\npoweroff -f\n"))
            .map_err(Error::io(&init))?;
        let out = Bind {
            host: dir.path().to_path_buf(),
            guest: OUT.to_string(),
            writable: true,
        };
        let script = format!("OUT={OUT}\n{MAKE_INITRAMFS}");
        let mut argv = vec!["sh", "-euc", &script, "sh", kernel];
        argv.extend(modules);
        let mut made = sandbox.run_with(&argv, &[out])?;
        made.command = format!("make a busybox initramfs for {kernel} with {modules:?}");
        made.ok()?;
        let mut ramfs = Initramfs::new();
        add_tree(&mut ramfs, &dir.path().join("root"), "")?;
        ramfs.file(
            "init",
            0o755,
            fs::read(&init).map_err(Error::io(&init))?.as_slice(),
        );
        let cpio = dir.path().join("initramfs.cpio");
        fs::write(&cpio, ramfs.finish()).map_err(Error::io(&cpio))?;
        Ok(BootImage { dir })
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.path().join("vmlinuz")
    }

    pub fn initramfs(&self) -> PathBuf {
        self.dir.path().join("initramfs.cpio")
    }

    /// Boots it with the product's QEMU runner and returns the serial
    /// console's output (carriage returns removed); a boot still running at
    /// `timeout` is killed. The accelerator is TCG unless
    /// `$KMODFARM_QEMU_ACCEL` says otherwise: KVM may exist and still fail
    /// (nested virtualisation), and then hangs the guest.
    pub fn boot(&self, timeout: Duration) -> Result<String> {
        require_tool("qemu-system-x86_64", "qemu-system-x86")?;
        let accel = match std::env::var("KMODFARM_QEMU_ACCEL").as_deref() {
            Ok("kvm") => Accel::Kvm,
            _ => Accel::Tcg,
        };
        let run = qemu::boot(&BootSpec {
            kernel: &self.kernel(),
            initramfs: &self.initramfs(),
            // Quiet: kernel lines would interleave with the script's output.
            cmdline: "loglevel=4",
            memory_mb: qemu::GUEST_MEMORY_MB,
            timeout,
            accel,
        })
        .map_err(|e| Error::Failed {
            command: format!("qemu-system-x86_64 -kernel {}", self.kernel().display()),
            status: "could not run".into(),
            stdout: String::new(),
            stderr: e.to_string(),
        })?;
        Ok(run.console)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
