//! Target distributions (`distros/*.toml`): how each names its kernel
//! packages, where its modules go, which toolchain builds for it. Mirrors are
//! configuration: a distro file names suites and components, never a host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kernel::KernelRelease;
use crate::manifest::Compression;
use crate::source_pos::TomlFileError;
use crate::SourcePos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PackageFamily {
    Deb,
    Rpm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexFormat {
    /// Debian `dists/<suite>/<component>/binary-<arch>/Packages.{xz,gz}`.
    Apt,
    /// `repodata/repomd.xml` → primary.xml.{gz,zst,xz}.
    RpmMd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitramfsTool {
    InitramfsTools,
    Dracut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distro {
    pub id: String,
    pub name: String,
    pub family: PackageFamily,
    /// apt, dnf or zypper.
    pub package_manager: String,
    /// Debian/Ubuntu codename, or the RHEL/SLES major release.
    pub release: String,
    /// Architecture names in this distro's package metadata (amd64 / x86_64).
    pub arch: String,
    pub kernel: KernelNaming,
    pub toolchain: Toolchain,
    pub archive: Archive,
}

/// Package and file names for one kernel. Patterns take `{release}` (the
/// full uname -r), `{base}` (release without flavour or arch), `{flavour}`
/// and `{arch}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelNaming {
    /// Flavours built for by default, in the distro's own words.
    pub flavours: Vec<String>,
    pub headers_package: String,
    pub image_package: String,
    /// Other packages that install the same kernel image: Debian publishes
    /// `linux-image-<k>-unsigned` first and the signed `linux-image-<k>`
    /// only later, and a host may run either; Ubuntu has
    /// `linux-image-unsigned-<k>`. A prebuilt module depends on any of them.
    #[serde(default)]
    pub image_package_alternatives: Vec<String>,
    /// The meta-package that always pulls the current headers.
    pub headers_meta_package: String,
    /// The package that carries a real System.map, when the image's is not.
    pub system_map_package: String,
    /// Whether /boot/System.map-<release> from the image is a placeholder
    /// (Debian's is a single line; Ubuntu's and RHEL's are real).
    pub boot_system_map_is_placeholder: bool,
    pub module_compression: Compression,
    pub initramfs: InitramfsTool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    /// OCI image reference for podman/docker builds.
    pub image: String,
    /// The compiler its kernels are built with (a kernel wants the same one).
    pub compiler: String,
    /// Packages a build root needs beside the compiler.
    pub build_packages: Vec<String>,
    /// The DKMS version this release ships: which dkms.conf features work.
    pub dkms_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    pub index_format: IndexFormat,
    /// apt suites, or rpm-md repository ids.
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// Repository path below the mirror, for rpm-md ({suite} and {arch} expand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_path: Option<String>,
    /// Whether this machine's network reaches the archive, so tests may use it live.
    #[serde(default)]
    pub reachable_here: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DistroError {
    #[error(transparent)]
    File(#[from] TomlFileError),
    #[error("{}: the file defines id '{id}' but is named for '{stem}'", path.display())]
    Misnamed {
        path: PathBuf,
        id: String,
        stem: String,
    },
}

impl Distro {
    pub fn parse(path: &Path, text: &str) -> Result<Self, DistroError> {
        let distro = toml::from_str(text).map_err(|e| TomlFileError::Invalid {
            pos: SourcePos::at_offset(path, text, e.span().map_or(0, |s| s.start)),
            message: e.message().trim_end().to_string(),
        })?;
        Ok(distro)
    }

    fn expand(&self, pattern: &str, k: &KernelRelease) -> String {
        pattern
            .replace("{release}", k.as_str())
            .replace("{base}", k.base())
            .replace("{flavour}", k.flavour.as_deref().unwrap_or(""))
            .replace("{arch}", &self.arch)
    }

    pub fn headers_package(&self, k: &KernelRelease) -> String {
        self.expand(&self.kernel.headers_package, k)
    }

    pub fn image_package(&self, k: &KernelRelease) -> String {
        self.expand(&self.kernel.image_package, k)
    }

    /// The image package and its alternatives, preferred first.
    pub fn image_packages(&self, k: &KernelRelease) -> Vec<String> {
        std::iter::once(&self.kernel.image_package)
            .chain(&self.kernel.image_package_alternatives)
            .map(|template| self.expand(template, k))
            .collect()
    }

    pub fn system_map_package(&self, k: &KernelRelease) -> String {
        self.expand(&self.kernel.system_map_package, k)
    }

    /// Compression for prebuilt modules, resolving `distro` to this distro's.
    pub fn compression(&self, wanted: Compression) -> Compression {
        match wanted {
            Compression::Distro => self.kernel.module_compression,
            other => other,
        }
    }
}

const BUILTIN: &[(&str, &str)] = &[
    ("debian-12", include_str!("../../../distros/debian-12.toml")),
    ("debian-13", include_str!("../../../distros/debian-13.toml")),
    (
        "ubuntu-22.04",
        include_str!("../../../distros/ubuntu-22.04.toml"),
    ),
    (
        "ubuntu-24.04",
        include_str!("../../../distros/ubuntu-24.04.toml"),
    ),
    ("rhel-8", include_str!("../../../distros/rhel-8.toml")),
    ("rhel-9", include_str!("../../../distros/rhel-9.toml")),
    ("sles-15", include_str!("../../../distros/sles-15.toml")),
];

/// The known distros, by id.
#[derive(Debug, Clone, Default)]
pub struct DistroSet {
    distros: BTreeMap<String, Distro>,
}

impl DistroSet {
    /// The definitions shipped with kmodfarm (the repository's distros/).
    pub fn builtin() -> Self {
        let mut set = DistroSet::default();
        for (id, text) in BUILTIN {
            let distro = Distro::parse(Path::new(&format!("distros/{id}.toml")), text)
                .expect("built-in distro files are valid (tested)");
            set.distros.insert(distro.id.clone(), distro);
        }
        set
    }

    /// The built-in set plus every `*.toml` in `dir` (a user's own or
    /// changed definitions win over the built-in ones).
    pub fn with_dir(dir: &Path) -> Result<Self, DistroError> {
        let mut set = Self::builtin();
        let entries = std::fs::read_dir(dir).map_err(|source| TomlFileError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| TomlFileError::Read {
                path: path.clone(),
                source,
            })?;
            let distro = Distro::parse(&path, &text)?;
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if stem != distro.id {
                return Err(DistroError::Misnamed {
                    path,
                    id: distro.id,
                    stem,
                });
            }
            set.distros.insert(distro.id.clone(), distro);
        }
        Ok(set)
    }

    pub fn get(&self, id: &str) -> Option<&Distro> {
        self.distros.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.distros.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Distro> {
        self.distros.values()
    }
}
