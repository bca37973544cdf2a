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
    /// Relative to the repository root.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub signed: bool,
    pub vermagic: String,
    /// The package that installs this prebuilt module (`<name>-modules-<k>` / `kmod-<name>-<k>`).
    pub prebuilt_package: String,
    /// The DKMS route for the same module (`<name>-dkms`).
    pub dkms_package: String,
}

/// `index.json` at the repository root (signed beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Index {
    pub schema_version: u32,
    pub module: String,
    pub version: String,
    /// SOURCE_DATE_EPOCH of the publish, for reproducible output.
    pub generated_at: u64,
    pub entries: Vec<IndexEntry>,
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

pub fn build_record_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(BuildRecord)).expect("schema serializes")
}
