//! Booting a kernel image with an initramfs in `qemu-system-x86_64`, with
//! a hard timeout (QEMU is killed when it passes), the console on the first
//! serial port, a data channel on the second and a control channel (the
//! init's markers) on the third.
//!
//! KVM when it works, TCG otherwise: /dev/kvm can exist and still not run a
//! guest (nested virtualisation on this kind of host stops in the BIOS), so
//! `auto` boots a probe under KVM once and remembers the answer in the
//! cache, keyed by the host kernel and the QEMU version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// `--accel auto|kvm|tcg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    #[default]
    Auto,
    Fixed(Accel),
}

impl std::str::FromStr for AccelChoice {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Fixed(Accel::Kvm)),
            "tcg" => Ok(AccelChoice::Fixed(Accel::Tcg)),
            _ => Err(BuildError::Other(format!(
                "unknown accelerator '{s}': use auto, kvm or tcg"
            ))),
        }
    }
}

/// One boot to run.
#[derive(Debug, Clone)]
pub struct BootSpec<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// Appended to `console=ttyS0 panic=-1 nokaslr no_timer_check loglevel=7`.
    pub cmdline: &'a str,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub accel: Accel,
}

/// What a boot left.
#[derive(Debug, Clone)]
pub struct BootRun {
    /// The serial console (ttyS0), carriage returns removed.
    pub console: String,
    /// What the guest wrote to ttyS1.
    pub data: Vec<u8>,
    /// What the guest wrote to ttyS2 (carriage returns removed).
    pub control: String,
    /// QEMU was killed at the timeout.
    pub timed_out: bool,
    pub duration: Duration,
}

/// Memory given to each guest, in MiB; the scheduler budgets with it.
pub const GUEST_MEMORY_MB: u32 = 512;

/// Boots `spec`; an error only when QEMU cannot run at all.
pub fn boot(spec: &BootSpec) -> Result<BootRun> {
    let dir = tempfile::Builder::new()
        .prefix("kmodfarm-qemu-")
        .tempdir()
        .map_err(BuildError::io(std::env::temp_dir()))?;
    let console = dir.path().join("console");
    let data = dir.path().join("data");
    let control = dir.path().join("control");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", spec.accel.as_str()])
        .args(["-m", &spec.memory_mb.to_string(), "-smp", "1"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", data.display()))
        .arg("-serial")
        .arg(format!("file:{}", control.display()))
        .arg("-kernel")
        .arg(spec.kernel)
        .arg("-initrd")
        .arg(spec.initramfs)
        .arg("-append")
        .arg(format!(
            // no_timer_check: a slow (emulated, loaded) host otherwise
            // fails the kernel's IO-APIC timer check and it panics.
            "console=ttyS0 panic=-1 nokaslr no_timer_check loglevel=7 {}",
            spec.cmdline
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    // A killed kmodfarm leaves no guest running.
    crate::process::die_with_us(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        program: "qemu-system-x86_64".into(),
        package: "qemu-system-x86".into(),
        source,
    })?;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(BuildError::io("qemu-system-x86_64"))?
        {
            break status;
        }
        if started.elapsed() >= spec.timeout {
            let _ = child.kill();
            timed_out = true;
            break child.wait().map_err(BuildError::io("qemu-system-x86_64"))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let duration = started.elapsed();
    let output = child.wait_with_output().ok();
    let console_text =
        String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).replace('\r', "");
    if !timed_out && !status.success() && console_text.is_empty() {
        let stderr = output
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        return Err(BuildError::Command {
            command: format!(
                "qemu-system-x86_64 -accel {} -kernel {}",
                spec.accel.as_str(),
                spec.kernel.display()
            ),
            status: status.to_string(),
            output: stderr,
        });
    }
    Ok(BootRun {
        console: console_text,
        data: std::fs::read(&data).unwrap_or_default(),
        control: String::from_utf8_lossy(&std::fs::read(&control).unwrap_or_default())
            .replace('\r', ""),
        timed_out,
        duration,
    })
}

/// What the probe found, cached per host kernel and QEMU version.
#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    host: String,
    accel: Accel,
}

/// The accelerator to use: a fixed choice, `$KMODFARM_QEMU_ACCEL`, or the
/// probe's answer. `probe` boots a kernel under KVM with a short timeout and
/// says whether it reached its init.
pub fn choose(
    choice: AccelChoice,
    cache: &Path,
    probe: &dyn Fn(Accel) -> Result<bool>,
) -> Result<Accel> {
    if let AccelChoice::Fixed(a) = choice {
        return Ok(a);
    }
    if let Ok(text) = std::env::var("KMODFARM_QEMU_ACCEL") {
        if let Ok(AccelChoice::Fixed(a)) = text.parse() {
            return Ok(a);
        }
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Accel::Tcg);
    }
    let host = host_id();
    let path = probe_path(cache);
    if let Some(p) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Probe>(&t).ok())
    {
        if p.host == host {
            return Ok(p.accel);
        }
    }
    let accel = if probe(Accel::Kvm)? {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(
        &path,
        serde_json::to_string(&Probe { host, accel }).expect("serializes"),
    );
    Ok(accel)
}

fn probe_path(cache: &Path) -> PathBuf {
    cache.join("qemu-accel.json")
}

/// The host kernel and the QEMU version: what decides whether KVM works.
fn host_id() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!("{} / {qemu}", kernel.trim())
}
