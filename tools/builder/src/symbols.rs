//! A kernel's real System.map, for modules whose configure step resolves
//! symbols from it (`needs = ["system-map"]`).
//!
//! Where it comes from (recorded as the build record's `symbol_source`):
//! - Debian, whose `/boot/System.map-<k>` is a one-line placeholder: the
//!   kernel's own image booted under QEMU with `nokaslr`, kptr_restrict set
//!   to 0, and /proc/kallsyms read back over the second serial port
//!   ([`SymbolStore::from_boot`], `booted-kallsyms`); or, opted into, the
//!   map in the `-dbg` package (about 1 GB, [`map_in_tree`]).
//! - Ubuntu, RHEL and SUSE ship the real map in a kernel package (`/boot`
//!   or `/lib/modules/<k>/System.map`): [`map_in_tree`] finds it in the
//!   unpacked package.
//! - A map the user gives (`--system-map`), `supplied`.
//!
//! Whatever the source, a map is checked against the image before any build
//! uses it ([`check_against_image`]): its `linux_banner` address must hold
//! `Linux version <k> ` in the vmlinux inside the image's bzImage. Maps are
//! cached by kernel release and image checksum under `<cache>/symbols`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use kmodfarm_model::record::SymbolSource;

use crate::cache_dir::{remove_if_present, Lock};
use crate::error::{BuildError, Result};
use crate::initramfs::Initramfs;
use crate::kernel_image::{file_sha256, KernelImage};
use crate::qemu::{self, Accel, BootSpec, GUEST_MEMORY_MB};

/// The symbol every check uses: the kernel's version string.
pub const BANNER: &str = "linux_banner";

/// A checked System.map in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSymbols {
    pub kernel: String,
    pub source: SymbolSource,
    /// Where it came from, in words (package, file, QEMU boot).
    pub origin: String,
    /// `linux_banner`'s address, hex without 0x.
    pub banner: String,
    /// sha256 of the map.
    pub sha256: String,
    #[serde(skip)]
    pub path: PathBuf,
}

/// The address of `symbol` in System.map / kallsyms text (`ADDR TYPE NAME`),
/// when it is listed with a non-zero address.
pub fn address_of(map: &str, symbol: &str) -> Option<u64> {
    map.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let addr = words.next()?;
        let _kind = words.next()?;
        let name = words.next()?;
        if name != symbol || words.next().is_some() {
            return None;
        }
        u64::from_str_radix(addr, 16).ok().filter(|a| *a != 0)
    })
}

/// Why a map is not usable at all: Debian's placeholder line, kallsyms read
/// without privileges (all zeros), or not a symbol table.
pub fn unusable_reason(map: &str) -> Option<String> {
    if map.contains("The real System.map is in") {
        return Some("it is Debian's placeholder (the real map ships in the -dbg package)".into());
    }
    if address_of(map, BANNER).is_none() {
        return Some(format!(
            "it lists no {BANNER} with an address (all zeros: read without privileges?)"
        ));
    }
    None
}

/// The vmlinux ELF inside a bzImage: the setup header gives the compressed
/// payload's place; xz, zstd and gzip payloads (what distros use) are read.
pub fn vmlinux_of(bzimage: &[u8]) -> Result<Vec<u8>> {
    let bad = |why: &str| BuildError::Other(format!("not a bzImage kernel: {why}"));
    if bzimage.len() < 0x250 || &bzimage[0x202..0x206] != b"HdrS" {
        return Err(bad("no HdrS setup header"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(bzimage[o..o + 4].try_into().expect("4 bytes"));
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248) as usize;
    let len = u32_at(0x24c) as usize;
    let payload = bzimage
        .get(start..start + len)
        .ok_or_else(|| bad("payload outside the file"))?;
    use std::io::Read;
    let mut out = Vec::new();
    let read = if payload.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        liblzma::read::XzDecoder::new(payload).read_to_end(&mut out)
    } else if payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(payload)
            .map_err(BuildError::io("zstd payload"))?
            .single_frame()
            .read_to_end(&mut out)
    } else if payload.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(payload).read_to_end(&mut out)
    } else {
        return Err(bad(
            "payload compressed with a format other than xz, zstd or gzip",
        ));
    };
    read.map_err(|e| bad(&format!("payload does not decompress: {e}")))?;
    if !out.starts_with(b"\x7fELF") {
        return Err(bad("payload is not an ELF vmlinux"));
    }
    Ok(out)
}

/// The NUL-terminated text at virtual address `addr` of an ELF64 vmlinux.
pub fn text_at(vmlinux: &[u8], addr: u64) -> Option<String> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(vmlinux.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(vmlinux.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(vmlinux.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? != 1 {
            continue; // not PT_LOAD
        }
        let offset = u64_at(ph + 0x08)?;
        let vaddr = u64_at(ph + 0x10)?;
        let filesz = u64_at(ph + 0x20)?;
        if addr >= vaddr && addr < vaddr + filesz {
            let at = (offset + (addr - vaddr)) as usize;
            let rest = vmlinux.get(at..)?;
            let end = rest.iter().take(512).position(|b| *b == 0)?;
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
    }
    None
}

/// Refuses `map` unless its `linux_banner` address holds this kernel's
/// banner in `image`. `map_name` names the map in the error; `other` says
/// which kernel the map belongs to, when that is known.
pub fn check_against_image(
    map: &str,
    map_name: &Path,
    image: &KernelImage,
    other: Option<&str>,
) -> Result<u64> {
    let refuse = |why: String| BuildError::SystemMapMismatch {
        map: map_name.to_path_buf(),
        kernel: image.kernel.clone(),
        why,
    };
    if let Some(why) = unusable_reason(map) {
        return Err(refuse(why));
    }
    let banner = address_of(map, BANNER).expect("checked above");
    let bytes = std::fs::read(&image.vmlinuz).map_err(BuildError::io(&image.vmlinuz))?;
    let vmlinux = vmlinux_of(&bytes)
        .map_err(|e| BuildError::Other(format!("{}: {e}", image.vmlinuz.display())))?;
    let want = format!("Linux version {} ", image.kernel);
    match text_at(&vmlinux, banner) {
        Some(text) if text.starts_with(&want) => Ok(banner),
        found => {
            let belongs = match other {
                Some(k) if k != image.kernel => format!("it is the System.map of {k}; "),
                _ => String::new(),
            };
            let what = match found {
                Some(t) if t.starts_with("Linux version ") => format!("the banner of {t:?}"),
                Some(_) => "other data".to_string(),
                None => "nothing (outside the image)".to_string(),
            };
            Err(refuse(format!(
                "{belongs}its {BANNER} address 0x{banner:x} holds {what} in the image of {} ({}), not \"{want}…\"",
                image.kernel, image.package
            )))
        }
    }
}

/// The real System.map in an unpacked kernel package, where the distros
/// put it: `/boot/System.map-<k>` (Ubuntu's image/modules package, SUSE),
/// `/lib/modules/<k>/System.map` (RHEL's kernel-core), and the -dbg
/// package's `/usr/lib/debug/boot/System.map-<k>` (Debian).
pub fn map_in_tree(tree: &Path, kernel: &str) -> Option<PathBuf> {
    let candidates = [
        format!("boot/System.map-{kernel}"),
        format!("lib/modules/{kernel}/System.map"),
        format!("usr/lib/modules/{kernel}/System.map"),
        format!("usr/lib/debug/boot/System.map-{kernel}"),
    ];
    candidates.iter().map(|c| tree.join(c)).find(|p| {
        std::fs::read_to_string(p)
            .map(|t| unusable_reason(&t).is_none())
            .unwrap_or(false)
    })
}

/// The kernel a map file names: `System.map-<k>` (how every distro names it).
pub fn kernel_named_by(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("System.map-").map(str::to_string)
}

/// Checked maps, cached by kernel release and image checksum.
pub struct SymbolStore {
    cache: PathBuf,
}

/// The /init of the kallsyms boot: symbols out on ttyS1, the end marker on
/// ttyS2 (where no kernel message can break it), then power off.
const KALLSYMS_INIT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo 0 > /proc/sys/kernel/kptr_restrict
stty -F /dev/ttyS1 raw -echo 2>/dev/null
cat /proc/kallsyms > /dev/ttyS1
echo kmodfarm-kallsyms: done > /dev/ttyS2
poweroff -f
";

impl SymbolStore {
    pub fn new(cache: &Path) -> SymbolStore {
        SymbolStore {
            cache: cache.to_path_buf(),
        }
    }

    fn dir(&self, image: &KernelImage) -> PathBuf {
        self.cache
            .join("symbols")
            .join(format!("{}-{}", image.kernel, &image.sha256[..16]))
    }

    /// The cached map of `image`, whatever made it.
    pub fn cached(&self, image: &KernelImage) -> Option<KernelSymbols> {
        let dir = self.dir(image);
        let text = std::fs::read_to_string(dir.join("symbols.json")).ok()?;
        let mut symbols: KernelSymbols = serde_json::from_str(&text).ok()?;
        symbols.path = dir.join(format!("System.map-{}", image.kernel));
        symbols.path.is_file().then_some(symbols)
    }

    /// Checks `map` (text) against `image` and stores it as its map.
    pub fn store(
        &self,
        image: &KernelImage,
        map: &str,
        map_name: &Path,
        source: SymbolSource,
        origin: String,
    ) -> Result<KernelSymbols> {
        let other = kernel_named_by(map_name).or_else(|| self.kernel_of(map));
        let banner = check_against_image(map, map_name, image, other.as_deref())?;
        let dir = self.dir(image);
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        std::fs::create_dir_all(&partial).map_err(BuildError::io(&partial))?;
        let file = partial.join(format!("System.map-{}", image.kernel));
        std::fs::write(&file, map).map_err(BuildError::io(&file))?;
        let symbols = KernelSymbols {
            kernel: image.kernel.clone(),
            source,
            origin,
            banner: format!("{banner:x}"),
            sha256: file_sha256(&file)?,
            path: PathBuf::new(),
        };
        let json = partial.join("symbols.json");
        std::fs::write(
            &json,
            serde_json::to_string_pretty(&symbols).expect("serializes"),
        )
        .map_err(BuildError::io(&json))?;
        remove_if_present(&dir)?;
        std::fs::rename(&partial, &dir).map_err(BuildError::io(&dir))?;
        self.cached(image).ok_or_else(|| {
            BuildError::Other(format!("{}: unreadable after writing", dir.display()))
        })
    }

    /// A map the user gave for `image`'s kernel: checked first, so another
    /// kernel's map is refused before any build, naming both kernels.
    pub fn supplied(&self, image: &KernelImage, path: &Path) -> Result<KernelSymbols> {
        let text = std::fs::read_to_string(path).map_err(BuildError::io(path))?;
        self.store(
            image,
            &text,
            path,
            SymbolSource::Supplied,
            format!("{} (given with --system-map)", path.display()),
        )
    }

    /// Which cached kernel `map` is the map of, when it is one of them.
    fn kernel_of(&self, map: &str) -> Option<String> {
        let banner = address_of(map, BANNER)?;
        let dirs = std::fs::read_dir(self.cache.join("symbols")).ok()?;
        dirs.flatten().find_map(|d| {
            let text = std::fs::read_to_string(d.path().join("symbols.json")).ok()?;
            let s: KernelSymbols = serde_json::from_str(&text).ok()?;
            let theirs =
                std::fs::read_to_string(d.path().join(format!("System.map-{}", s.kernel))).ok()?;
            (u64::from_str_radix(&s.banner, 16).ok() == Some(banner) && theirs == map)
                .then_some(s.kernel)
        })
    }

    /// The map read from /proc/kallsyms of `image` booted under QEMU.
    pub fn from_boot(
        &self,
        image: &KernelImage,
        busybox: &Path,
        accel: Accel,
        timeout: Duration,
    ) -> Result<KernelSymbols> {
        if let Some(s) = self.cached(image) {
            return Ok(s);
        }
        let dir = self.dir(image);
        let _lock = Lock::acquire(&dir)?;
        if let Some(s) = self.cached(image) {
            return Ok(s);
        }
        let busybox_bytes = std::fs::read(busybox).map_err(BuildError::io(busybox))?;
        let mut ramfs = Initramfs::new();
        for d in ["bin", "dev", "proc", "sys", "tmp"] {
            ramfs.dir(d);
        }
        ramfs.file("bin/busybox", 0o755, &busybox_bytes).file(
            "init",
            0o755,
            KALLSYMS_INIT.as_bytes(),
        );
        let work = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
        let initrd = work.path().join("initramfs.cpio");
        std::fs::write(&initrd, ramfs.finish()).map_err(BuildError::io(&initrd))?;
        let run = qemu::boot(&BootSpec {
            kernel: &image.vmlinuz,
            initramfs: &initrd,
            cmdline: "quiet",
            memory_mb: GUEST_MEMORY_MB,
            timeout,
            accel,
        })?;
        if run.timed_out || !run.control.contains("kmodfarm-kallsyms: done") {
            return Err(BuildError::Other(format!(
                "{}: booting it for /proc/kallsyms {}:\n{}",
                image.kernel,
                if run.timed_out {
                    format!(
                        "did not finish within {} s (QEMU killed)",
                        timeout.as_secs()
                    )
                } else {
                    "stopped before its init finished".to_string()
                },
                crate::headers::tail(&run.console, 15)
            )));
        }
        // kallsyms lines as System.map has them: module symbols (none are
        // loaded in this initramfs) and the tty's carriage returns left out.
        let text = String::from_utf8_lossy(&run.data).replace('\r', "");
        let map: String = text
            .lines()
            .filter(|l| l.split_whitespace().count() == 3)
            .flat_map(|l| [l, "\n"])
            .collect();
        self.store(
            image,
            &map,
            &PathBuf::from(format!("/proc/kallsyms of {}", image.kernel)),
            SymbolSource::BootedKallsyms,
            format!(
                "/proc/kallsyms of {} booted under QEMU ({}, nokaslr) in {:.1} s",
                image.package,
                accel.as_str(),
                run.duration.as_secs_f64()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_and_placeholders_refused() {
        let map = "ffffffff81000000 T _text\nffffffff82000100 D linux_banner\nffffffffc0000000 t x [mod]\n";
        assert_eq!(address_of(map, BANNER), Some(0xffffffff82000100));
        assert_eq!(unusable_reason(map), None);
        let placeholder =
            "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        assert!(unusable_reason(placeholder)
            .unwrap()
            .contains("placeholder"));
        let unprivileged = "0000000000000000 D linux_banner\n";
        assert!(unusable_reason(unprivileged).unwrap().contains("all zeros"));
    }

    /// A distro package tree as each ships its map (excerpts made here:
    /// Ubuntu's, RHEL's and SUSE's archives cannot be reached from this
    /// machine, so these are their documented paths, not live packages).
    #[test]
    fn the_real_map_is_found_where_each_distro_puts_it() {
        let real = "ffffffff82000100 D linux_banner\n";
        for (kernel, path) in [
            ("6.8.0-45-generic", "boot/System.map-6.8.0-45-generic"),
            (
                "5.14.0-427.13.1.el9_4.x86_64",
                "lib/modules/5.14.0-427.13.1.el9_4.x86_64/System.map",
            ),
            (
                "6.4.0-150600.23.25-default",
                "boot/System.map-6.4.0-150600.23.25-default",
            ),
            (
                "6.1.0-41-amd64",
                "usr/lib/debug/boot/System.map-6.1.0-41-amd64",
            ),
        ] {
            let tree = tempfile::tempdir().unwrap();
            let file = tree.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, real).unwrap();
            assert_eq!(map_in_tree(tree.path(), kernel), Some(file), "{kernel}");
        }
        // Debian's image: only the placeholder, which is not a map.
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("boot")).unwrap();
        std::fs::write(
            tree.path().join("boot/System.map-6.1.0-41-amd64"),
            "ffffffffffffffff B The real System.map is in the linux-image-6.1.0-41-amd64-dbg package\n",
        )
        .unwrap();
        assert_eq!(map_in_tree(tree.path(), "6.1.0-41-amd64"), None);
    }

    /// A minimal ELF64 with one PT_LOAD whose bytes hold a banner.
    fn tiny_vmlinux(vaddr: u64, banner: &str) -> Vec<u8> {
        let mut elf = vec![0u8; 0x200];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let ph = 0x40;
        elf[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&0x100u64.to_le_bytes());
        elf[ph + 16..ph + 24].copy_from_slice(&vaddr.to_le_bytes());
        elf[ph + 32..ph + 40].copy_from_slice(&0x100u64.to_le_bytes());
        elf[0x110..0x110 + banner.len()].copy_from_slice(banner.as_bytes());
        elf
    }

    #[test]
    fn text_is_read_at_a_virtual_address() {
        let elf = tiny_vmlinux(0xffffffff82000000, "Linux version 6.1.0-41-amd64 (x)");
        assert_eq!(
            text_at(&elf, 0xffffffff82000010).as_deref(),
            Some("Linux version 6.1.0-41-amd64 (x)")
        );
        assert_eq!(text_at(&elf, 0xffffffff83000000), None);
    }
}
