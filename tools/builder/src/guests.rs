//! What a run does with QEMU guests, for the scheduler: a kernel's System.map
//! before its build, and the boot test after it. Guests share a budget of
//! slots (bounded by cores and by memory, [`GUEST_MEMORY_MB`] each), one
//! accelerator choice per run, and the image and busybox caches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use kmodfarm_model::record::{BuildOutcome, BuildRecord, MatrixEntry, SymbolSource};
use kmodfarm_model::{Distro, Manifest};

use crate::boot_test::{self, BootTestSpec, ModuleFile, DEFAULT_TIMEOUT};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::initramfs::Initramfs;
use crate::kernel_image::{ImageStore, KernelImage};
use crate::qemu::{self, Accel, AccelChoice, BootSpec, GUEST_MEMORY_MB};
use crate::runtime::Runtime;
use crate::symbols::{map_in_tree, KernelSymbols, SymbolStore};

/// How long the kallsyms boot may take (about 13 s under TCG here).
const KALLSYMS_TIMEOUT: Duration = Duration::from_secs(180);

/// How a Debian kernel's map is made when its image has only a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlaceholderMaps {
    /// Boot the image and read /proc/kallsyms (seconds).
    #[default]
    Boot,
    /// Download the -dbg package (about 1 GB) and take its map.
    DebugPackage,
}

/// Boot-test settings of a run.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// Overrides the manifest's `[test] timeout`.
    pub timeout: Option<Duration>,
    /// A failed boot test leaves the kernel's product and record as built.
    pub keep_going: bool,
}

/// Guest settings of a run.
#[derive(Debug, Clone, Default)]
pub struct GuestOptions {
    pub accel: AccelChoice,
    /// `Some`: boot-test every built kernel.
    pub boot: Option<BootOptions>,
    pub placeholder_maps: PlaceholderMaps,
    /// Maps given by the user, by matrix key (`distro/arch/kernel`).
    pub supplied_maps: BTreeMap<String, PathBuf>,
}

/// Slots for guests running at once.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("not poisoned") += 1;
        self.0.freed.notify_one();
    }
}

impl Slots {
    fn take(&self) -> Slot<'_> {
        let mut free = self.free.lock().expect("not poisoned");
        while *free == 0 {
            free = self.freed.wait(free).expect("not poisoned");
        }
        *free -= 1;
        Slot(self)
    }
}

/// Guests at once: no more than the cores, and what memory holds.
pub fn guest_budget() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let available_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<usize>().ok())
        })
        .map_or(usize::MAX, |kb| kb / 1024);
    // QEMU itself takes about 128 MiB beside the guest's memory.
    let by_memory = available_mb / (GUEST_MEMORY_MB as usize + 128);
    cores.min(by_memory).max(1)
}

pub struct Guests<'a> {
    pub options: &'a GuestOptions,
    /// Kernel images and busybox, fetched once per kernel and cached.
    pub(crate) images: ImageStore,
    symbols: SymbolStore,
    cache: PathBuf,
    slots: Slots,
    accel: OnceLock<Result<Accel, String>>,
}

impl<'a> Guests<'a> {
    pub fn new(cache: &Path, options: &'a GuestOptions) -> Guests<'a> {
        Guests {
            options,
            images: ImageStore::new(cache),
            symbols: SymbolStore::new(cache),
            cache: cache.to_path_buf(),
            slots: Slots {
                free: Mutex::new(guest_budget()),
                freed: Condvar::new(),
            },
            accel: OnceLock::new(),
        }
    }

    /// Whether `manifest`'s jobs need a kernel image at all.
    pub fn needed(&self, manifest: &Manifest) -> bool {
        self.options.boot.is_some() || manifest.build.needs(kmodfarm_model::KernelInput::SystemMap)
    }

    /// The accelerator of this run: chosen once (a KVM probe boot with
    /// `image` when `auto` and /dev/kvm exists).
    fn accel(&self, image: &KernelImage, busybox: &Path) -> Result<Accel> {
        self.accel
            .get_or_init(|| {
                qemu::choose(self.options.accel, &self.cache, &|accel| {
                    probe(image, busybox, accel)
                })
                .map_err(|e| kmodfarm_model::error_text::with_causes(&e))
            })
            .clone()
            .map_err(BuildError::Other)
    }

    /// The checked System.map of `entry`'s kernel, made if needed.
    pub fn system_map(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        distro: &Distro,
        entry: &MatrixEntry,
        image: &KernelImage,
    ) -> Result<KernelSymbols> {
        if let Some(path) = self.options.supplied_maps.get(&entry.key()) {
            return self.symbols.supplied(image, path);
        }
        if let Some(found) = self.symbols.cached(image) {
            return Ok(found);
        }
        let from_package = |package: &str| -> Result<KernelSymbols> {
            let tree = self.images.package_tree(runtime, root, entry, package)?;
            let map = map_in_tree(tree.path(), image.kernel.as_str()).ok_or_else(|| {
                BuildError::Other(format!(
                    "{}: {package} has no real System.map for {}",
                    entry.key(),
                    image.kernel
                ))
            })?;
            let text = std::fs::read_to_string(&map).map_err(BuildError::io(&map))?;
            self.symbols.store(
                image,
                &text,
                &map,
                SymbolSource::SystemMap,
                format!(
                    "{package}: {}",
                    map.strip_prefix(tree.path()).unwrap_or(&map).display()
                ),
            )
        };
        let package = distro.system_map_package(&entry.kernel_release);
        if !distro.kernel.boot_system_map_is_placeholder {
            return from_package(&package);
        }
        match self.options.placeholder_maps {
            PlaceholderMaps::DebugPackage => from_package(&package),
            PlaceholderMaps::Boot => {
                let busybox = self.images.busybox(runtime, root)?;
                let accel = self.accel(image, &busybox)?;
                let _slot = self.slots.take();
                self.symbols
                    .from_boot(image, &busybox, accel, KALLSYMS_TIMEOUT)
            }
        }
    }

    /// Boot-tests the built products among `records` (one kernel's) and
    /// writes the result into them; a failure fails the kernel (its
    /// product leaves `out`) unless `keep_going`.
    #[allow(clippy::too_many_arguments)]
    pub fn boot_test(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        image: &KernelImage,
        manifest: &Manifest,
        out: &Path,
        records: &mut [BuildRecord],
    ) {
        let Some(options) = &self.options.boot else {
            return;
        };
        let modules: Vec<ModuleFile> = records
            .iter()
            .filter_map(|r| match &r.outcome {
                BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
                    Some(ModuleFile {
                        name: r.module.clone(),
                        path: out.join(&artifact.path),
                    })
                }
                _ => None,
            })
            .collect();
        if modules.is_empty() {
            return;
        }
        let timeout = options.timeout.unwrap_or(Duration::from_secs(
            manifest.test.timeout.unwrap_or(DEFAULT_TIMEOUT),
        ));
        let result = self.images.busybox(runtime, root).and_then(|busybox| {
            let accel = self.accel(image, &busybox)?;
            let _slot = self.slots.take();
            boot_test::run(&BootTestSpec {
                image,
                busybox: &busybox,
                modules: modules.clone(),
                test: &manifest.test,
                timeout,
                accel,
            })
        });
        let result = result.unwrap_or_else(|e| kmodfarm_model::record::BootTest::could_not_run(&e));
        let failed = !result.passed && !options.keep_going;
        for r in records.iter_mut() {
            if !matches!(
                r.outcome,
                BuildOutcome::Built { .. } | BuildOutcome::Cached { .. }
            ) {
                continue;
            }
            if failed {
                if let BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } =
                    &r.outcome
                {
                    // A module that fails in its kernel is not shipped;
                    // its log and records stay.
                    let _ = crate::cache_dir::remove_if_present(&out.join(&artifact.path));
                }
                r.outcome = BuildOutcome::Failed {
                    reason: format!("boot test failed: {}", result.reason),
                    log_tail: result.console_tail.clone(),
                };
            }
            r.duration_ms += result.duration_ms;
            r.boot_test = Some(result.clone());
        }
        if failed {
            if let Some(first) = records.first() {
                let dir = out.join(format!(
                    "{}/{}/{}",
                    first.distro, first.arch, first.kernel_release
                ));
                let json = serde_json::to_string_pretty(&records).expect("records serialize");
                let _ = std::fs::write(dir.join(crate::output::KERNEL_RECORD), json);
            }
        }
    }
}

/// Whether `image` boots to its init under `accel` within 20 s.
fn probe(image: &KernelImage, busybox: &Path, accel: Accel) -> Result<bool> {
    let busybox = std::fs::read(busybox).map_err(BuildError::io(busybox))?;
    let mut ramfs = Initramfs::new();
    ramfs.dir("bin").file("bin/busybox", 0o755, &busybox).file(
        "init",
        0o755,
        b"#!/bin/busybox sh\n/bin/busybox echo kmodfarm-probe: ok\n/bin/busybox poweroff -f\n",
    );
    let work = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
    let initrd = work.path().join("probe.cpio");
    std::fs::write(&initrd, ramfs.finish()).map_err(BuildError::io(&initrd))?;
    let run = qemu::boot(&BootSpec {
        kernel: &image.vmlinuz,
        initramfs: &initrd,
        cmdline: "quiet",
        memory_mb: 256,
        timeout: Duration::from_secs(20),
        accel,
    });
    Ok(run.is_ok_and(|r| r.console.contains("kmodfarm-probe: ok")))
}
