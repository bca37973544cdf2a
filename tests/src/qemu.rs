//! Booting a Debian kernel under QEMU with a tiny busybox initramfs, to load
//! a module that was built in a sandbox and see what it does.
//!
//! The kernel image and busybox come from the sandbox's apt sources, so the
//! boot uses the very kernel DKMS built against; QEMU runs on the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::process::{capture, require_tool, Output};
use crate::sandbox::{Bind, Sandbox};

/// Where the sandbox script writes the kernel image and the initramfs.
const OUT: &str = "/tmp/kmodfarm-boot-out";

/// Runs inside the sandbox: $1 kernel release, then module names. Puts
/// busybox, the modules (decompressed: busybox's insmod reads plain .ko)
/// and $OUT/init into an initramfs, and copies the kernel image out: the
/// installed /boot/vmlinuz-<k>, else the one in linux-image-<k>.
const MAKE_INITRAMFS: &str = r#"
kernel=$1
shift
work=/tmp/initramfs
mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc" "$work/root/sys" "$work/root/modules"
chmod 1777 "$work" # apt downloads as its _apt user
cd "$work"
apt-get download -q busybox-static
dpkg-deb -x busybox-static_*.deb busybox
cp busybox/bin/busybox root/bin/busybox
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
    esac >"root/modules/$module.ko"
done
cp "$OUT/init" root/init
chmod 755 root/init
(cd root && find . | cpio -o -H newc --quiet) >"$OUT/initramfs.cpio"
"#;

/// Runs first in /init: a shell with /proc, /sys and /dev (devtmpfs).
const INIT_PRELUDE: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
";

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
        Ok(BootImage { dir })
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.path().join("vmlinuz")
    }

    pub fn initramfs(&self) -> PathBuf {
        self.dir.path().join("initramfs.cpio")
    }

    /// Boots it and returns the serial console's output. The accelerator
    /// is TCG unless `$KMODFARM_QEMU_ACCEL` says otherwise: KVM may exist
    /// and still fail (nested virtualisation), and then hangs the guest.
    pub fn boot(&self, timeout: Duration) -> Result<Output> {
        require_tool("qemu-system-x86_64", "qemu-system-x86")?;
        require_tool("timeout", "coreutils")?;
        let accel = std::env::var("KMODFARM_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=5", &timeout.as_secs().to_string()])
            .args([
                "qemu-system-x86_64",
                "-accel",
                &accel,
                "-m",
                "512",
                "-smp",
                "1",
            ])
            .args(["-nographic", "-no-reboot", "-kernel"])
            .arg(self.kernel())
            .arg("-initrd")
            .arg(self.initramfs())
            .args(["-append", "console=ttyS0 panic=-1 loglevel=4"]);
        capture(&mut cmd)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
