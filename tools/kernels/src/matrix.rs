//! From a distro's kernel packages to its build matrix: every kernel that
//! has a headers package, in the module's range and the distro's flavours,
//! with the exact packages a build root needs. Pure: the indexes are given.

use std::collections::{BTreeMap, BTreeSet};

use kmodfarm_model::kernel::vercmp;
use kmodfarm_model::record::MatrixEntry;
use kmodfarm_model::{Distro, KernelRange, KernelRelease};

use crate::apt_packages::DebPackage;
use crate::rpm_md::RpmPackage;

/// A kernel the distro has but the module does not build for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Excluded {
    pub distro: String,
    pub kernel_release: KernelRelease,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Discovered {
    /// Sorted by kernel release.
    pub entries: Vec<MatrixEntry>,
    pub excluded: Vec<Excluded>,
}

/// What the module asks of every kernel.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub range: &'a KernelRange,
    pub system_map: bool,
}

impl Discovered {
    /// `release` when `wanted`'s range holds it; otherwise it is recorded
    /// as excluded, with the range's reason, and the answer is `None`.
    fn in_range(
        &mut self,
        distro: &Distro,
        wanted: &Wanted,
        release: KernelRelease,
    ) -> Option<KernelRelease> {
        let Some(reason) = wanted.range.exclusion_reason(&release) else {
            return Some(release);
        };
        self.excluded.push(Excluded {
            distro: distro.id.clone(),
            kernel_release: release,
            reason,
        });
        None
    }

    /// Adds `release` of `distro` to the matrix.
    fn add(
        &mut self,
        distro: &Distro,
        release: KernelRelease,
        packages: Vec<String>,
        system_map_package: Option<String>,
    ) {
        self.entries.push(MatrixEntry {
            distro: distro.id.clone(),
            arch: distro.arch.clone(),
            flavour: release.flavour.clone(),
            kernel_release: release,
            packages,
            system_map_package,
        });
    }

    fn finish(mut self) -> Self {
        self.entries
            .sort_by(|a, b| a.kernel_release.cmp(&b.kernel_release));
        self.excluded
            .sort_by(|a, b| a.kernel_release.cmp(&b.kernel_release));
        self
    }
}

fn flavour_wanted(distro: &Distro, release: &KernelRelease) -> bool {
    let flavour = release.flavour.as_deref().unwrap_or("");
    distro.kernel.flavours.iter().any(|f| f == flavour)
}

/// Packages a kernel build needs beside its headers: the shared headers
/// (Debian's `-common`, Ubuntu's `linux-headers-<abi>` or
/// `linux-hwe-…-headers-…`), kbuild tools, and the compiler package.
fn is_build_dependency(name: &str) -> bool {
    name.starts_with("linux-")
        && (name.contains("-headers-")
            || name.starts_with("linux-kbuild-")
            || name.starts_with("linux-compiler-"))
}

/// The Debian/Ubuntu matrix from the kernel packages of all the distro's
/// suites (in suite order; a later suite's newer version of a package wins).
pub fn apt_matrix(distro: &Distro, wanted: &Wanted, packages: &[DebPackage]) -> Discovered {
    let mut by_name: BTreeMap<&str, &DebPackage> = BTreeMap::new();
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in packages {
        let newer = by_name
            .get(p.name.as_str())
            .is_none_or(|old| vercmp(&p.version, &old.version).is_gt());
        if newer {
            by_name.insert(&p.name, p);
        }
        for virtual_name in &p.provides {
            providers.entry(virtual_name).or_default().push(&p.name);
        }
    }
    let (prefix, suffix) = distro
        .kernel
        .headers_package
        .split_once("{release}")
        .unwrap_or((&distro.kernel.headers_package, ""));
    let mut found = Discovered::default();
    for (&name, package) in &by_name {
        let Some(release) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
        else {
            continue;
        };
        // Meta packages (`linux-headers-amd64`) are not releases.
        let Ok(release) = KernelRelease::parse(release) else {
            continue;
        };
        if !flavour_wanted(distro, &release) || distro.headers_package(&release) != name {
            continue;
        }
        let Some(release) = found.in_range(distro, wanted, release) else {
            continue;
        };
        let resolve = |dep: &str| -> Option<&DebPackage> {
            by_name.get(dep).copied().or_else(|| {
                providers
                    .get(dep)
                    .and_then(|names| names.first())
                    .and_then(|n| by_name.get(n).copied())
            })
        };
        match deb_closure(package, &resolve) {
            Ok(packages) => {
                let system_map = distro.system_map_package(&release);
                let system_map_package = (wanted.system_map
                    && by_name.contains_key(system_map.as_str()))
                .then_some(system_map);
                found.add(distro, release, packages, system_map_package);
            }
            Err(missing) => found.excluded.push(Excluded {
                distro: distro.id.clone(),
                reason: format!(
                    "{name} depends on {missing}, which none of the suites {} carries",
                    distro.archive.suites.join(", ")
                ),
                kernel_release: release,
            }),
        }
    }
    found.finish()
}

/// The headers package and, transitively, its build dependencies; the
/// name of the first one missing from the indexes otherwise.
fn deb_closure<'a>(
    headers: &'a DebPackage,
    resolve: &dyn Fn(&str) -> Option<&'a DebPackage>,
) -> Result<Vec<String>, String> {
    let mut names = vec![headers.name.clone()];
    let mut seen: BTreeSet<String> = names.iter().cloned().collect();
    let mut todo = vec![headers];
    while let Some(package) = todo.pop() {
        for group in &package.depends {
            // apt takes the first alternative it can install.
            let Some(first) = group.first() else { continue };
            if !group.iter().any(|d| is_build_dependency(d)) {
                continue;
            }
            let chosen = group
                .iter()
                .find_map(|d| resolve(d))
                .ok_or_else(|| first.clone())?;
            if is_build_dependency(&chosen.name) && seen.insert(chosen.name.clone()) {
                names.push(chosen.name.clone());
                todo.push(chosen);
            }
        }
    }
    Ok(names)
}

/// How an RPM distro's headers package pattern names a kernel.
enum RpmNaming<'a> {
    /// `kernel-devel-{release}`: uname is `version-release.arch` (RHEL family).
    Release(&'a str),
    /// `kernel-{flavour}-devel-{base}`: uname is `version-release-flavour`
    /// without the rebuild counter SUSE appends to the RPM release.
    Base(&'a str),
}

fn rpm_naming(pattern: &str) -> Option<RpmNaming<'_>> {
    if let Some(name) = pattern.strip_suffix("-{release}") {
        Some(RpmNaming::Release(name))
    } else {
        pattern.strip_suffix("-{base}").map(RpmNaming::Base)
    }
}

/// The kernel release (`uname -r`) a package of this naming installs.
fn rpm_uname(naming: &RpmNaming, p: &RpmPackage, flavour: &str) -> Option<String> {
    match naming {
        RpmNaming::Release(_) => Some(format!("{}-{}.{}", p.version, p.release, p.arch)),
        RpmNaming::Base(_) => {
            let (build, _rebuild) = p.release.rsplit_once('.')?;
            Some(format!("{}-{build}-{flavour}", p.version))
        }
    }
}

/// The RHEL-family / SUSE matrix from the kernel packages of all the
/// distro's repositories.
pub fn rpm_matrix(distro: &Distro, wanted: &Wanted, packages: &[RpmPackage]) -> Discovered {
    let mut found = Discovered::default();
    let (Some(headers), Some(image)) = (
        rpm_naming(&distro.kernel.headers_package),
        rpm_naming(&distro.kernel.system_map_package),
    ) else {
        return found;
    };
    let template = |n: &RpmNaming<'_>, flavour: &str| match n {
        RpmNaming::Release(t) | RpmNaming::Base(t) => t.replace("{flavour}", flavour),
    };
    let same_build = |name: &str, of: &RpmPackage| {
        packages
            .iter()
            .find(|p| p.name == name && p.version == of.version && p.release == of.release)
    };
    let mut seen = BTreeSet::new();
    for flavour in &distro.kernel.flavours {
        let headers_name = template(&headers, flavour);
        for package in packages
            .iter()
            .filter(|p| p.name == headers_name && p.arch == distro.arch)
        {
            let Some(uname) = rpm_uname(&headers, package, flavour) else {
                continue;
            };
            let Ok(release) = KernelRelease::parse(&uname) else {
                continue;
            };
            if !seen.insert(release.clone()) {
                continue; // the same build in BaseOS and AppStream
            }
            let Some(release) = found.in_range(distro, wanted, release) else {
                continue;
            };
            let mut names = vec![package.nevra()];
            // SUSE's kernel-default-devel pins kernel-devel (the shared tree).
            for (required, pinned) in &package.requires {
                let exact = format!("{}-{}", package.version, package.release);
                if required.starts_with("kernel") && pinned.as_deref() == Some(exact.as_str()) {
                    if let Some(dep) = same_build(required, package) {
                        names.push(dep.nevra());
                    }
                }
            }
            let system_map_package = wanted
                .system_map
                .then(|| same_build(&template(&image, flavour), package))
                .flatten()
                .map(RpmPackage::nevra);
            found.add(distro, release, names, system_map_package);
        }
    }
    found.finish()
}
