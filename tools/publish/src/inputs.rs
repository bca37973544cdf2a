//! What a publish is given: the package files of `kmodfarm package`
//! (`--packages DIR`) and the output of `kmodfarm build` (`--builds DIR`,
//! its `records.json` and module files), read and checked before anything
//! is written.

use std::path::{Path, PathBuf};

use kmodfarm_model::host::HOST_PACKAGE;
use kmodfarm_model::record::BuildRecord;
use kmodfarm_model::{Distro, DistroSet, Manifest, PackageFamily};

use crate::apt::PoolPackage;
use crate::debfile::read_control;
use crate::error::{PublishError, Result};
use crate::page::PageDistro;
use crate::rpm_md::RpmPackage;
use crate::rpm_sign::{self, RpmSignature};
use crate::sign::SigningKey;

/// The repository's targets, from the manifest and the distro files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Targets {
    /// The manifest's package name (the module).
    pub module: String,
    pub deb: Vec<DebTarget>,
    pub rpm: Vec<RpmTarget>,
    /// Every target distro id, any family (the index names the DKMS route
    /// of each).
    pub distros: Vec<String>,
    /// What the matrix page says about each distro (names, install lines).
    pub page: Vec<PageDistro>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DebTarget {
    pub distro: String,
    pub codename: String,
    pub arch: String,
}

/// One yum/dnf/zypper repository: `rpm/<distro>/<arch>/`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RpmTarget {
    pub distro: String,
    pub arch: String,
}

impl RpmTarget {
    /// The repository directory, relative to the repository root.
    pub fn dir(&self) -> String {
        format!("rpm/{}/{}", self.distro, self.arch)
    }
}

impl Targets {
    pub fn new(manifest: &Manifest, set: &DistroSet) -> Targets {
        let distros: Vec<&Distro> = manifest
            .distros
            .iter()
            .filter_map(|id| set.get(id))
            .collect();
        Targets {
            module: manifest.package.name.clone(),
            deb: distros
                .iter()
                .filter(|d| d.family == PackageFamily::Deb)
                .map(|d| DebTarget {
                    distro: d.id.clone(),
                    codename: d.release.clone(),
                    arch: d.arch.clone(),
                })
                .collect(),
            rpm: distros
                .iter()
                .filter(|d| d.family == PackageFamily::Rpm)
                .map(|d| RpmTarget {
                    distro: d.id.clone(),
                    arch: d.arch.clone(),
                })
                .collect(),
            distros: distros.iter().map(|d| d.id.clone()).collect(),
            page: distros.iter().map(|d| PageDistro::from_distro(d)).collect(),
        }
    }

    pub fn codename_of(&self, distro: &str) -> Option<&str> {
        self.deb
            .iter()
            .find(|t| t.distro == distro)
            .map(|t| t.codename.as_str())
    }
}

/// One .deb given to the publish.
#[derive(Debug, Clone)]
pub struct DebInput {
    pub source: PathBuf,
    pub package: PoolPackage,
    /// Codenames it goes into.
    pub codenames: Vec<String>,
}

/// One .rpm given to the publish.
#[derive(Debug, Clone)]
pub struct RpmInput {
    pub source: PathBuf,
    /// Its metadata, at `Packages/<file name>` of each repository.
    pub package: RpmPackage,
    /// Target distros whose yum repository it goes into.
    pub distros: Vec<String>,
    /// Unsigned (published signed with the repository's key) or signed by
    /// that key already; one signed by another key is refused on reading.
    pub signature: RpmSignature,
}

/// The build output: its records and where it is.
#[derive(Debug, Clone)]
pub struct Builds {
    pub dir: PathBuf,
    pub records: Vec<BuildRecord>,
}

pub fn read_builds(dir: &Path) -> Result<Builds> {
    let path = dir.join("records.json");
    let text = std::fs::read_to_string(&path).map_err(|e| PublishError::BadBuilds {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let records: Vec<BuildRecord> =
        serde_json::from_str(&text).map_err(|e| PublishError::BadBuilds {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok(Builds {
        dir: dir.to_path_buf(),
        records,
    })
}

/// Every package file under `dir` (sorted), each read and checked against
/// the manifest: its name must be the module's -dkms package or one of its
/// prebuilt packages, and a prebuilt one must belong to one target distro.
/// Anything else is an error: a packages directory holds packages only.
/// An .rpm must be unsigned or signed by `key` (the repository's).
pub fn read_packages(
    dir: &Path,
    targets: &Targets,
    builds: Option<&Builds>,
    key: &SigningKey,
) -> Result<(Vec<DebInput>, Vec<RpmInput>)> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut debs = Vec::new();
    let mut rpms = Vec::new();
    for path in files {
        match path.extension().and_then(|e| e.to_str()) {
            Some("deb") => debs.push(read_deb(&path, targets, builds)?),
            Some("rpm") => rpms.push(read_rpm(&path, targets, builds, key)?),
            _ => {
                return Err(PublishError::NotAPackage {
                    path,
                    message: "neither a .deb nor an .rpm (the packages directory must hold only `kmodfarm package` output)".into(),
                })
            }
        }
    }
    Ok((debs, rpms))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(PublishError::io("read", dir))?;
    for entry in entries {
        let entry = entry.map_err(PublishError::io("read", dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(PublishError::io("read", &path))?;
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            out.push(path);
        }
    }
    Ok(())
}

fn read_deb(path: &Path, targets: &Targets, builds: Option<&Builds>) -> Result<DebInput> {
    let bytes = std::fs::read(path).map_err(PublishError::io("read", path))?;
    let not_a_package = |message: String| PublishError::NotAPackage {
        path: path.to_path_buf(),
        message,
    };
    let control = read_control(path, &bytes).map_err(not_a_package)?;
    let module = &targets.module;
    // The module's own packages (-dkms, -modules-<k>) share one pool
    // directory, as binaries of one source package do.
    let group = control
        .get("Package")
        .filter(|n| n.starts_with(&format!("{module}-")))
        .map(|_| module.as_str());
    let package = PoolPackage::new(&control, &bytes, group).map_err(not_a_package)?;
    let name = package.name().to_string();
    // The -dkms package, and kmodfarm-host (the program install.sh puts on
    // hosts, which its kernel hooks call), go to every codename.
    let codenames = if name == format!("{module}-dkms") || name == HOST_PACKAGE {
        let mut all: Vec<String> = targets.deb.iter().map(|t| t.codename.clone()).collect();
        all.sort();
        all.dedup();
        all
    } else if let Some(kernel) = name.strip_prefix(&format!("{module}-modules-")) {
        let deb_distros: Vec<&str> = targets.deb.iter().map(|t| t.distro.as_str()).collect();
        let distro = prebuilt_distro(path, kernel, &deb_distros, builds)?;
        vec![targets
            .codename_of(&distro)
            .expect("a Debian-family target")
            .to_string()]
    } else {
        return Err(PublishError::WrongModule {
            path: path.to_path_buf(),
            package: name,
            module: module.clone(),
        });
    };
    Ok(DebInput {
        source: path.to_path_buf(),
        package,
        codenames,
    })
}

fn read_rpm(
    path: &Path,
    targets: &Targets,
    builds: Option<&Builds>,
    key: &SigningKey,
) -> Result<RpmInput> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (package, bytes) = RpmPackage::read_with_bytes(path, &format!("Packages/{file_name}"))?;
    let module = &targets.module;
    let rpm_distros: Vec<&str> = targets.rpm.iter().map(|t| t.distro.as_str()).collect();
    let distros = if package.name == format!("{module}-dkms") || package.name == HOST_PACKAGE {
        rpm_distros.iter().map(|d| d.to_string()).collect()
    } else if let Some(kernel) = package.name.strip_prefix(&format!("kmod-{module}-")) {
        vec![prebuilt_distro(path, kernel, &rpm_distros, builds)?]
    } else {
        return Err(PublishError::WrongModule {
            path: path.to_path_buf(),
            package: package.name,
            module: module.clone(),
        });
    };
    // After the name check: another module's package is named as such.
    let signature = rpm_sign::check(path, &bytes, key)?;
    Ok(RpmInput {
        source: path.to_path_buf(),
        package,
        distros,
        signature,
    })
}

/// The target distro (one of `candidates`, the package's family) a
/// prebuilt package for `kernel` belongs to: from the build records that
/// made the module; with no records, the only candidate when there is one.
fn prebuilt_distro(
    path: &Path,
    kernel: &str,
    candidates: &[&str],
    builds: Option<&Builds>,
) -> Result<String> {
    let unknown = |message: String| PublishError::UnknownDistro {
        path: path.to_path_buf(),
        kernel: kernel.to_string(),
        message,
    };
    if let Some(builds) = builds {
        let mut distros: Vec<&str> = builds
            .records
            .iter()
            .filter(|r| r.kernel_release.as_str().eq_ignore_ascii_case(kernel))
            .map(|r| r.distro.as_str())
            .filter(|d| candidates.contains(d))
            .collect();
        distros.sort();
        distros.dedup();
        return match distros.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(unknown(format!(
                "no build record in {} names that kernel for a target distro of this package's family ({})",
                builds.dir.join("records.json").display(),
                candidates.join(", ")
            ))),
            many => Err(unknown(format!(
                "build records name it for several distros: {}",
                many.join(", ")
            ))),
        };
    }
    match candidates {
        [one] => Ok(one.to_string()),
        [] => Err(unknown(
            "the manifest has no target distro of this package's family".into(),
        )),
        _ => Err(unknown(format!(
            "the manifest has several target distros of this package's family ({}): pass --builds with the build output the package was made from",
            candidates.join(", ")
        ))),
    }
}
