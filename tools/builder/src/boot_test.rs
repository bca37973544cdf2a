//! The boot test: a kernel's image booted under QEMU with a minimal
//! initramfs (static busybox, the built modules and their dependencies),
//! the modules loaded, the manifest's smoke check run, the console scanned
//! for oopses, WARNs, BUGs, lockdep splats and taints, then power off.
//!
//! Modules go into the initramfs decompressed: busybox's insmod reads only
//! plain .ko files, so the .ko.zst products and the kernel's own .ko.xz
//! dependencies are decompressed here first (this module decompresses; it
//! brings no modprobe). Dependencies are the `depends=` of each module's
//! .modinfo, found in the image's /lib/modules tree, loaded before it.
//!
//! The smoke check's `expect` text may name kernel symbols as
//! `{kallsyms:NAME}`: each is replaced by NAME's address in the booted
//! kernel's /proc/kallsyms (booted with nokaslr), so a module that recorded
//! an address from a System.map at build time proves the map was right.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kmodfarm_model::record::{BootTest, SymbolCheck};
use kmodfarm_model::TestSpec;

use crate::error::{BuildError, Result};
use crate::initramfs::Initramfs;
use crate::kernel_image::KernelImage;
use crate::qemu::{self, Accel, BootSpec, GUEST_MEMORY_MB};

/// Seconds a boot may take when neither the manifest nor the caller says.
pub const DEFAULT_TIMEOUT: u64 = 120;

/// Console lines kept in a failed result.
const CONSOLE_TAIL: usize = 40;

/// Taints a module from outside the kernel tree always causes and that are
/// fine: O (out-of-tree, bit 12) and E (unsigned, bit 13).
const ALLOWED_TAINTS: u64 = (1 << 12) | (1 << 13);

/// The kernel's taint letters by bit (kernel/panic.c's taint_flags).
const TAINT_LETTERS: &[char] = &[
    'P', 'F', 'S', 'R', 'M', 'B', 'U', 'D', 'A', 'W', 'C', 'I', 'O', 'E', 'L', 'K', 'X', 'T', 'N',
];

/// Console lines that mean the kernel is unwell, whatever the module.
const ALARMS: &[&str] = &[
    "Oops:",
    "BUG:",
    "WARNING:",
    "Kernel panic",
    "general protection fault",
    "possible circular locking dependency",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "UBSAN:",
    "KASAN:",
    "kernel BUG at",
    "watchdog: BUG: soft lockup",
];

/// A module to load: its name and its built file (.ko, .ko.zst or .ko.xz).
#[derive(Debug, Clone)]
pub struct ModuleFile {
    pub name: String,
    pub path: PathBuf,
}

/// One boot test to run.
pub struct BootTestSpec<'a> {
    pub image: &'a KernelImage,
    pub busybox: &'a Path,
    /// Loaded in this order, after their dependencies.
    pub modules: Vec<ModuleFile>,
    pub test: &'a TestSpec,
    pub timeout: Duration,
    pub accel: Accel,
}

/// Reads a (possibly compressed) module into plain .ko bytes.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let bytes = std::fs::read(path).map_err(BuildError::io(path))?;
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    if name.ends_with(".zst") {
        out = zstd::decode_all(bytes.as_slice()).map_err(BuildError::io(path))?;
    } else if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(BuildError::io(path))?;
    } else {
        out = bytes;
    }
    Ok(out)
}

/// A .ko's `.modinfo` value `key` (`depends`, `vermagic`…).
pub fn modinfo(ko: &[u8], key: &str) -> Option<String> {
    let needle = format!("{key}=");
    ko.split(|b| *b == 0).find_map(|field| {
        let text = std::str::from_utf8(field).ok()?;
        text.strip_prefix(&needle).map(str::to_string)
    })
}

/// Module names compare with '-' and '_' the same.
fn same_module(a: &str, b: &str) -> bool {
    a.replace('-', "_") == b.replace('-', "_")
}

/// The file of the kernel's own module `name` below `modules` (lib/modules/<k>).
fn find_kernel_module(modules: &Path, name: &str) -> Option<PathBuf> {
    walkdir::WalkDir::new(modules.join("kernel"))
        .into_iter()
        .flatten()
        .find(|e| {
            let file = e.file_name().to_string_lossy();
            let stem = file.split(".ko").next().unwrap_or("");
            file.contains(".ko") && same_module(stem, name)
        })
        .map(|e| e.path().to_path_buf())
}

/// `modules` with their dependencies before them, each once, as plain .ko.
fn with_dependencies(
    image: &KernelImage,
    modules: &[ModuleFile],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    fn add(
        image: &KernelImage,
        name: &str,
        bytes: Vec<u8>,
        out: &mut Vec<(String, Vec<u8>)>,
        depth: usize,
    ) -> Result<()> {
        if out.iter().any(|(n, _)| same_module(n, name)) || depth > 32 {
            return Ok(());
        }
        let depends = modinfo(&bytes, "depends").unwrap_or_default();
        for dep in depends.split(',').filter(|d| !d.is_empty()) {
            let path = find_kernel_module(&image.modules, dep).ok_or_else(|| {
                BuildError::Other(format!(
                    "{name} depends on {dep}, which {} does not have",
                    image.package
                ))
            })?;
            add(image, dep, read_module(&path)?, out, depth + 1)?;
        }
        out.push((name.to_string(), bytes));
        Ok(())
    }
    for m in modules {
        add(image, &m.name, read_module(&m.path)?, &mut out, 0)?;
    }
    Ok(out)
}

/// `{kallsyms:NAME}` placeholders of `expect`.
fn placeholders(expect: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expect;
    while let Some(at) = rest.find("{kallsyms:") {
        let after = &rest[at + "{kallsyms:".len()..];
        let Some(end) = after.find('}') else { break };
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    names
}

/// The /init script: load, look up symbols, smoke check, taint, power off.
/// Markers (`kmodfarm-boot: ...`) go to the console for people and to
/// ttyS2 for [`judge`], where no kernel message can break a line; the smoke
/// output goes to ttyS1.
fn init_script(order: &[String], symbols: &[String], smoke: bool) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 0 > /proc/sys/kernel/kptr_restrict
stty -F /dev/ttyS2 raw -echo 2>/dev/null
say() { echo \"kmodfarm-boot: $*\"; echo \"kmodfarm-boot: $*\" > /dev/ttyS2; }
say start
",
    );
    for m in order {
        s.push_str(&format!(
            "out=$(insmod /modules/{m}.ko 2>&1); rc=$?; say \"insmod {m} rc=$rc $out\"\n\
             [ $rc = 0 ] || {{ say tainted $(cat /proc/sys/kernel/tainted); say done; poweroff -f; }}\n"
        ));
    }
    for name in symbols {
        s.push_str(&format!(
            "say \"kallsyms {name} $(grep -m1 ' {name}$' /proc/kallsyms | cut -d' ' -f1)\"\n"
        ));
    }
    if smoke {
        s.push_str(
            "stty -F /dev/ttyS1 raw -echo 2>/dev/null\n\
             sh /smoke > /tmp/smoke.out 2>&1; rc=$?\n\
             cat /tmp/smoke.out > /dev/ttyS1\n\
             say \"smoke rc=$rc\"\n",
        );
    }
    s.push_str("sleep 1\nsay tainted $(cat /proc/sys/kernel/tainted)\nsay done\npoweroff -f\n");
    s
}

/// The value after `kmodfarm-boot: <what> ` in the markers.
fn marker<'a>(console: &'a str, what: &str) -> Option<&'a str> {
    let prefix = format!("kmodfarm-boot: {what}");
    console
        .lines()
        .find_map(|l| l.find(&prefix).map(|at| l[at + prefix.len()..].trim()))
}

/// Taint letters outside the allowed ones.
pub fn bad_taints(tainted: u64) -> String {
    let bad = tainted & !ALLOWED_TAINTS;
    TAINT_LETTERS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bad & (1 << bit) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The first console line that says the kernel is unwell.
pub fn first_alarm(console: &str) -> Option<&str> {
    console
        .lines()
        .find(|l| ALARMS.iter().any(|a| l.contains(a)))
        .map(str::trim)
}

/// Why insmod of `module` failed, from what the kernel and insmod said.
/// `vermagic` is the module's own, `kernel` the booted release.
fn load_failure(console: &str, module: &str, insmod: &str, vermagic: &str, kernel: &str) -> String {
    let line = |needle: &str| {
        console
            .lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_string())
    };
    let built_for = vermagic.split_whitespace().next().unwrap_or("");
    if !built_for.is_empty() && built_for != kernel {
        // 6.x kernels may refuse it for its struct module size before
        // they look at vermagic; the vermagic says why either way.
        let said = line("version magic")
            .or_else(|| line("disagrees about version of symbol"))
            .or_else(|| line("section size must match"))
            .unwrap_or_else(|| format!("insmod: {insmod}"));
        return format!(
            "{module} is built for another kernel (vermagic mismatch): its vermagic is '{}', the booted kernel is {kernel}; {said}",
            vermagic.trim()
        );
    }
    if let Some(l) = line("version magic").or_else(|| line("disagrees about version of symbol")) {
        return format!("{module} is built for another kernel (vermagic mismatch): {l}");
    }
    if let Some(l) = line("Unknown symbol") {
        return format!("{module} needs a symbol the kernel does not export: {l}");
    }
    if insmod
        .to_ascii_lowercase()
        .contains("invalid module format")
        || insmod.contains("Exec format error")
    {
        return format!("{module} is built for another kernel: insmod: {insmod}");
    }
    format!("{module}'s init failed: insmod {insmod}")
}

fn tail(console: &str) -> Vec<String> {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(CONSOLE_TAIL)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Boots `spec` and judges it.
pub fn run(spec: &BootTestSpec) -> Result<BootTest> {
    let loaded = with_dependencies(spec.image, &spec.modules)?;
    let busybox = std::fs::read(spec.busybox).map_err(BuildError::io(spec.busybox))?;
    let expect = spec.test.expect.clone().unwrap_or_default();
    let symbols = placeholders(&expect);
    let order: Vec<String> = loaded.iter().map(|(n, _)| n.clone()).collect();
    let mut ramfs = Initramfs::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "modules"] {
        ramfs.dir(d);
    }
    ramfs.file("bin/busybox", 0o755, &busybox);
    for (name, bytes) in &loaded {
        ramfs.file(&format!("modules/{name}.ko"), 0o644, bytes);
    }
    if let Some(smoke) = &spec.test.smoke {
        ramfs.file("smoke", 0o644, format!("{smoke}\n").as_bytes());
    }
    ramfs.file(
        "init",
        0o755,
        init_script(&order, &symbols, spec.test.smoke.is_some()).as_bytes(),
    );
    let work = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let initrd = work.path().join("initramfs.cpio");
    std::fs::write(&initrd, ramfs.finish()).map_err(BuildError::io(&initrd))?;
    let boot_once = || {
        qemu::boot(&BootSpec {
            kernel: &spec.image.vmlinuz,
            initramfs: &initrd,
            cmdline: "",
            memory_mb: GUEST_MEMORY_MB,
            timeout: spec.timeout,
            accel: spec.accel,
        })
    };
    let mut boot = boot_once()?;
    // A kernel that stops before the initramfs runs says nothing about
    // the module (an emulator hiccup on a loaded host): once more.
    if !boot.timed_out && !boot.control.contains("kmodfarm-boot: start") {
        boot = boot_once()?;
    }
    let console = boot.console.as_str();
    let smoke_out = String::from_utf8_lossy(&boot.data).replace('\r', "");
    let mut result = BootTest {
        passed: false,
        reason: String::new(),
        duration_ms: boot.duration.as_millis() as u64,
        accel: spec.accel.as_str().to_string(),
        symbol: None,
        console_tail: Vec::new(),
    };
    let vermagics: Vec<(String, String)> = loaded
        .iter()
        .map(|(n, b)| (n.clone(), modinfo(b, "vermagic").unwrap_or_default()))
        .collect();
    let reason = judge(
        spec,
        &vermagics,
        &symbols,
        &expect,
        console,
        &boot.control,
        &smoke_out,
        boot.timed_out,
        &mut result,
    );
    match reason {
        None => result.passed = true,
        Some(reason) => {
            result.reason = reason;
            let mut lines = tail(console);
            if !smoke_out.is_empty() {
                lines.push("--- smoke output:".into());
                lines.extend(smoke_out.lines().map(str::to_string));
            }
            result.console_tail = lines;
        }
    }
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
fn judge(
    spec: &BootTestSpec,
    vermagics: &[(String, String)],
    symbols: &[String],
    expect: &str,
    console: &str,
    control: &str,
    smoke_out: &str,
    timed_out: bool,
    result: &mut BootTest,
) -> Option<String> {
    let order: Vec<String> = vermagics.iter().map(|(n, _)| n.clone()).collect();
    if timed_out {
        return Some(format!(
            "the boot did not finish within {} s: QEMU killed{}",
            spec.timeout.as_secs(),
            match order
                .iter()
                .rev()
                .find(|m| marker(control, &format!("insmod {m} rc=")).is_none())
            {
                Some(m) if control.contains("kmodfarm-boot: start") =>
                    format!(" (insmod {m} never returned)"),
                _ => String::new(),
            }
        ));
    }
    if !control.contains("kmodfarm-boot: start") {
        return Some(match first_alarm(console) {
            Some(l) => format!("the kernel did not reach the initramfs: {l}"),
            None => "the kernel did not reach the initramfs".into(),
        });
    }
    for m in &order {
        let Some(said) = marker(control, &format!("insmod {m} rc=")) else {
            return Some(format!("the init stopped before insmod {m} returned"));
        };
        let (rc, insmod) = said.split_once(' ').unwrap_or((said, ""));
        if rc != "0" {
            let vermagic = vermagics
                .iter()
                .find(|(n, _)| n == m)
                .map_or("", |(_, v)| v.as_str());
            return Some(load_failure(
                console,
                m,
                insmod.trim(),
                vermagic,
                &spec.image.kernel,
            ));
        }
    }
    if let Some(alarm) = first_alarm(console) {
        return Some(format!("the kernel reported a problem: {alarm}"));
    }
    let tainted: u64 = marker(control, "tainted ")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let bad = bad_taints(tainted);
    if !bad.is_empty() {
        return Some(format!(
            "the kernel is tainted {bad} (flags {tainted}; only O and E are expected)"
        ));
    }
    if spec.test.smoke.is_some() {
        let rc = marker(control, "smoke rc=").unwrap_or("?");
        if rc != "0" {
            return Some(format!(
                "the smoke check `{}` exited {rc}",
                spec.test.smoke.as_deref().unwrap_or("")
            ));
        }
    }
    let mut want = expect.to_string();
    for name in symbols {
        let booted = marker(control, &format!("kallsyms {name} "))
            .unwrap_or("")
            .to_string();
        if booted.is_empty() || booted.trim_start_matches('0').is_empty() {
            return Some(format!(
                "/proc/kallsyms of the booted kernel lists no {name}"
            ));
        }
        let reported = reported_address(expect, name, smoke_out);
        result.symbol = Some(SymbolCheck {
            name: name.clone(),
            map_address: reported.clone().unwrap_or_default(),
            booted_address: booted.clone(),
        });
        if let Some(r) = &reported {
            if r.trim_start_matches('0') != booted.trim_start_matches('0') {
                return Some(format!(
                    "the module reports {name} at 0x{r}, the booted kernel's /proc/kallsyms has 0x{booted}: the System.map it was built with is not this kernel's"
                ));
            }
        }
        want = want.replace(&format!("{{kallsyms:{name}}}"), &booted);
    }
    if !want.is_empty() && !want.lines().all(|l| smoke_out.contains(l)) {
        return Some(format!(
            "the smoke check's output lacks {want:?}: it printed {:?}",
            smoke_out.trim()
        ));
    }
    None
}

/// What stands in `output` where `expect` has `{kallsyms:NAME}`: the text
/// before the placeholder anchors it, hex digits follow.
fn reported_address(expect: &str, name: &str, output: &str) -> Option<String> {
    let placeholder = format!("{{kallsyms:{name}}}");
    let line = expect.lines().find(|l| l.contains(&placeholder))?;
    let before = line.split(&placeholder).next().unwrap_or("");
    let anchor = before
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("");
    let at = output.find(anchor)? + anchor.len();
    let digits: String = output[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (!digits.is_empty()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_out_of_tree_and_unsigned_taints_are_fine() {
        assert_eq!(bad_taints(4096 + 8192), "");
        assert_eq!(bad_taints(4096 + 512), "W");
        assert_eq!(bad_taints(1 + 128), "PD");
    }

    #[test]
    fn alarms_are_found_in_the_console() {
        let console = "[    1.0] kmfdemo: loaded\n[    1.1] ------------[ cut here ]------------\n[    1.1] WARNING: CPU: 0 PID: 1 at kmfdemo.c:10 kmfdemo_init+0x10/0x20 [kmfdemo]\n";
        assert!(first_alarm(console)
            .unwrap()
            .starts_with("[    1.1] WARNING: CPU: 0"));
        assert_eq!(first_alarm("[ 0.1] all fine\n"), None);
    }

    #[test]
    fn placeholders_and_reported_addresses() {
        let expect = "kmfdemo 1.0.0\nsymbol=0x{kallsyms:linux_banner} kernel=";
        assert_eq!(placeholders(expect), ["linux_banner"]);
        let out = "kmfdemo 1.0.0 api=new-class-create symbol=0xffffffff82000100 kernel=6.12\n";
        assert_eq!(
            reported_address(expect, "linux_banner", out).as_deref(),
            Some("ffffffff82000100")
        );
        assert_eq!(
            reported_address(expect, "linux_banner", "symbol=none"),
            None
        );
    }

    #[test]
    fn load_failures_say_why() {
        let k = "6.12.57+deb12-amd64";
        let own = "6.12.57+deb12-amd64 SMP preempt mod_unload modversions ";
        let vermagic = "[ 2.0] kmfdemo: version magic '6.1.0-41-amd64 SMP preempt mod_unload modversions ' should be '6.12.57+deb12-amd64 SMP preempt mod_unload modversions '\n";
        assert!(load_failure(vermagic, "kmfdemo", "", own, k).contains("built for another kernel"));
        let other = load_failure(
            "",
            "kmfdemo",
            "can't insert 'x': invalid module format",
            "6.1.0-41-amd64 SMP preempt mod_unload modversions ",
            k,
        );
        assert!(
            other.contains("built for another kernel") && other.contains("'6.1.0-41-amd64 SMP"),
            "{other}"
        );
        let unknown = "[ 2.0] kmfdemo: Unknown symbol kmfdemo_missing (err -2)\n";
        assert!(load_failure(unknown, "kmfdemo", "", own, k).contains("does not export"));
        let init = load_failure(
            "",
            "kmfdemo",
            "insmod: can't insert 'x': No such device",
            own,
            k,
        );
        assert!(init.contains("init failed") && init.contains("No such device"));
    }

    #[test]
    fn modinfo_fields_are_read_from_the_module_bytes() {
        let ko = b"\x7fELF....\0license=GPL\0depends=crc32c,libcrc32c\0vermagic=6.1.0 SMP\0";
        assert_eq!(modinfo(ko, "depends").as_deref(), Some("crc32c,libcrc32c"));
        assert_eq!(modinfo(ko, "vermagic").as_deref(), Some("6.1.0 SMP"));
        assert_eq!(modinfo(ko, "signer"), None);
    }
}
