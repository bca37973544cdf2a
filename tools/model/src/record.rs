//! What a build produces and what the repository publishes. These types are
//! the contract between `build`, `publish` and the target-side installer
//! (DESIGN.md, "Contracts"), so they are versioned and have a JSON Schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::KernelRelease;
use crate::manifest::{Compression, KernelInput};

/// Bumped on any incompatible change to the index or records.
pub const SCHEMA_VERSION: u32 = 1;

/// One (distro, kernel) cell of the build matrix, with what a build needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MatrixEntry {
    pub distro: String,
    pub arch: String,
    pub kernel_release: KernelRelease,
    pub flavour: Option<String>,
    /// Packages to install in the build root: headers and what they depend on.
    pub packages: Vec<String>,
    /// Package carrying the real System.map, when the manifest needs one.
    pub system_map_package: Option<String>,
}

impl MatrixEntry {
    /// Stable identifier, used for sharding, cache keys and file names.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.distro, self.arch, self.kernel_release)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum BuildOutcome {
    Built {
        artifact: Artifact,
    },
    /// Served from the cache: same inputs as an earlier build.
    Cached {
        artifact: Artifact,
    },
    Failed {
        reason: String,
        log_tail: Vec<String>,
    },
    Skipped {
        reason: String,
    },
}

/// Where the build found a kernel's symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SymbolSource {
    /// /boot/System.map from the distro's image or debug package.
    SystemMap,
    /// /proc/kallsyms of the kernel booted in QEMU (nokaslr, kptr_restrict=0).
    BootedKallsyms,
    /// A map the user supplied (`--system-map`), checked against the image.
    Supplied,
    /// The manifest does not need symbols.
    NotNeeded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    /// Relative to the build output directory: `<distro>/<arch>/<kernel>/<module>.ko.zst`.
    pub path: String,
    pub module: String,
    pub sha256: String,
    pub size: u64,
    pub compression: Compression,
    pub signed: bool,
    /// `vermagic` as modinfo reads it; its first word equals the kernel release.
    pub vermagic: String,
    /// The module's own MODULE_VERSION as modinfo reads it: empty when the
    /// module declares none, and free to differ from the package version
    /// (DKMS and kmod do not compare them either). Records written before
    /// this field read as empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub module_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BuildRecord {
    pub schema_version: u32,
    pub module: String,
    pub version: String,
    pub distro: String,
    pub arch: String,
    pub kernel_release: KernelRelease,
    #[serde(flatten)]
    pub outcome: BuildOutcome,
    pub inputs: Vec<KernelInput>,
    pub symbol_source: SymbolSource,
    pub compiler: Option<String>,
    pub toolchain_image: Option<String>,
    pub cache_key: String,
    pub duration_ms: u64,
    /// Relative path of the full build log.
    pub log: Option<String>,
    /// The boot test of this module in its own kernel, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_test: Option<BootTest>,
}

/// One boot of a kernel under QEMU with the built module loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BootTest {
    pub passed: bool,
    /// Why it failed, in one line (empty when it passed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub duration_ms: u64,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// What the symbol check found, for a module built with a System.map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<SymbolCheck>,
    /// The last lines of the serial console, on failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_tail: Vec<String>,
}

impl BootTest {
    /// The boot test never got to boot: no image, no QEMU, no initramfs.
    pub fn could_not_run(why: impl std::fmt::Display) -> BootTest {
        BootTest {
            passed: false,
            reason: format!("the boot test could not run: {why}"),
            duration_ms: 0,
            accel: String::new(),
            symbol: None,
            console_tail: Vec::new(),
        }
    }
}

/// A symbol address the module recorded at build time, against the booted
/// kernel's /proc/kallsyms (booted with nokaslr, so they must be equal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SymbolCheck {
    pub name: String,
    /// From the System.map the build used.
    pub map_address: String,
    /// From /proc/kallsyms in the booted kernel.
    pub booted_address: String,
}

/// One published prebuilt module: what the installer looks up by
/// (distro, arch, kernel_release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IndexEntry {
    pub module: String,
    pub version: String,
    pub distro: String,
    pub arch: String,
    pub kernel_release: KernelRelease,
    /// The compressed module file, relative to the repository root:
    /// `prebuilt/<distro>/<arch>/<kernel_release>/<module>.ko.zst`. The
    /// installer places it directly when the host has no repository
    /// configured.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub compression: Compression,
    pub signed: bool,
    pub vermagic: String,
    /// The package that installs this prebuilt module (`<name>-modules-<k>` / `kmod-<name>-<k>`).
    pub prebuilt_package: String,
    /// The package file, relative to the repository root (in the apt pool or
    /// the yum directory), with its digest.
    pub package_path: String,
    pub package_sha256: String,
    /// The DKMS route for the same module (`<name>-dkms`).
    pub dkms_package: String,
}

impl IndexEntry {
    /// The name the module file has on a host, under
    /// `/lib/modules/<k>/updates/`: `<module>.ko` with the compression's
    /// suffix. The repository's file name carries the version too, so that
    /// a published file never changes; modprobe finds a module by its own
    /// name only.
    pub fn module_file_name(&self) -> String {
        let suffix = self.path.rsplit_once(".ko").map_or("", |(_, rest)| rest);
        format!("{}.ko{suffix}", self.module)
    }
}

/// What the matrix says about one kernel: the page's cell and the
/// installer's answer when there is no prebuilt module.
// One value per lookup file, read once: the size of the prebuilt variant does
// not matter, and boxing it would only make the JSON types harder to build.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum KernelStatus {
    /// A prebuilt module is published for this kernel.
    Prebuilt { entry: IndexEntry },
    /// The build failed; the DKMS route may still work on the host.
    Failed { reason: String },
    /// The kernel is outside the manifest's range: neither route applies.
    OutOfRange { reason: String },
}

/// The DKMS route of one distro: which package registers the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DkmsRoute {
    pub distro: String,
    pub package: String,
    /// The module version DKMS registers (`PACKAGE_VERSION`, what `dkms
    /// install <module>/<version>` takes): the package's upstream version,
    /// without its revision or release.
    pub version: String,
    /// Relative to the repository root.
    pub package_path: String,
    pub sha256: String,
}

/// Freshness of a signed index file. An installer refuses a file whose
/// `expires` has passed, or whose `serial` is lower than the last one it
/// accepted (a rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Freshness {
    /// Seconds since the epoch (SOURCE_DATE_EPOCH when set).
    pub generated: u64,
    /// Seconds since the epoch; `None` when published without `--valid-for`.
    pub expires: Option<u64>,
    /// Grows by at least one with every publish to the repository.
    pub serial: u64,
}

/// `index.json` at the repository root, signed beside it as `index.json.asc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Index {
    pub schema_version: u32,
    pub module: String,
    /// The newest published version of the module.
    pub version: String,
    #[serde(flatten)]
    pub freshness: Freshness,
    /// Every published prebuilt module.
    pub entries: Vec<IndexEntry>,
    /// Kernels of the matrix that have no prebuilt module, with why.
    #[serde(default)]
    pub without_prebuilt: Vec<KernelLookup>,
    /// The DKMS package per distro.
    pub dkms: Vec<DkmsRoute>,
}

/// `prebuilt/<distro>/<arch>/<kernel_release>.json`, signed beside it as
/// `<kernel_release>.json.asc`: the whole answer for one host, a few hundred
/// bytes whatever the size of the matrix. A kernel without such a file is
/// one the matrix does not know: the installer offers the DKMS route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelLookup {
    pub schema_version: u32,
    pub module: String,
    pub distro: String,
    pub arch: String,
    pub kernel_release: KernelRelease,
    #[serde(flatten)]
    pub freshness: Freshness,
    #[serde(flatten)]
    pub status: KernelStatus,
    /// The DKMS route on this distro, when it has one.
    pub dkms: Option<DkmsRoute>,
}

/// Where a kernel's lookup file lives, relative to the repository root.
pub fn kernel_lookup_path(distro: &str, arch: &str, kernel: &KernelRelease) -> String {
    format!("prebuilt/{distro}/{arch}/{kernel}.json")
}

/// Deb and RPM package names of the two routes (DESIGN.md contracts).
pub fn dkms_package_name(module: &str) -> String {
    format!("{module}-dkms")
}

pub fn prebuilt_package_name(
    module: &str,
    family: crate::PackageFamily,
    kernel: &KernelRelease,
) -> String {
    match family {
        crate::PackageFamily::Deb => {
            format!("{module}-modules-{}", kernel.as_str().to_ascii_lowercase())
        }
        crate::PackageFamily::Rpm => format!("kmod-{module}-{kernel}"),
    }
}

/// The JSON Schema of the index, published beside it for installers.
pub fn index_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Index)).expect("schema serializes")
}

/// The JSON Schema of a per-kernel lookup file.
pub fn kernel_lookup_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(KernelLookup)).expect("schema serializes")
}

pub fn build_record_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(BuildRecord)).expect("schema serializes")
}

#[cfg(test)]
mod index_tests {
    use super::*;

    fn entry() -> IndexEntry {
        IndexEntry {
            module: "kmfdemo".into(),
            version: "1.0.0".into(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: KernelRelease::parse("6.1.0-57-amd64").unwrap(),
            path: "prebuilt/debian-12/amd64/6.1.0-57-amd64/kmfdemo.ko.zst".into(),
            sha256: "00".repeat(32),
            size: 1234,
            compression: Compression::Zst,
            signed: false,
            vermagic: "6.1.0-57-amd64 SMP preempt mod_unload modversions".into(),
            prebuilt_package: "kmfdemo-modules-6.1.0-57-amd64".into(),
            package_path: "deb/pool/main/k/kmfdemo/x.deb".into(),
            package_sha256: "11".repeat(32),
            dkms_package: "kmfdemo-dkms".into(),
        }
    }

    #[test]
    fn a_kernel_lookup_round_trips_through_json_and_an_older_reader_ignores_new_fields() {
        let lookup = KernelLookup {
            schema_version: SCHEMA_VERSION,
            module: "kmfdemo".into(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: KernelRelease::parse("6.1.0-57-amd64").unwrap(),
            freshness: Freshness {
                generated: 1,
                expires: Some(2),
                serial: 3,
            },
            status: KernelStatus::Prebuilt { entry: entry() },
            dkms: None,
        };
        let json = serde_json::to_value(&lookup).unwrap();
        assert_eq!(json["status"], "prebuilt");
        assert_eq!(json["serial"], 3);
        let back: KernelLookup = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, lookup);
        // A newer publish may add fields; installers already on hosts must
        // still read the file (schema_version says when they cannot).
        let mut extra = json;
        extra["entry"]["added_later"] = serde_json::json!(1);
        assert_eq!(
            serde_json::from_value::<KernelLookup>(extra).unwrap(),
            lookup
        );
    }
}
