//! What to do for one kernel, as data: computed from what the host is like
//! ([`Facts`]) and what the repository answered ([`Answer`]), printable with
//! `--dry-run --json`, carried out by [`crate::execute`]. Pure: no files, no
//! commands, no network.

use kmodfarm_model::distro::InitramfsTool;
use kmodfarm_model::host::{modules_load_path, HostConfig};
use kmodfarm_model::record::{DkmsRoute, IndexEntry, KernelLookup, KernelStatus};
use kmodfarm_model::Distro;
use serde::Serialize;

use crate::fetch::join_url;
use crate::state::{file_name, Route};

/// The package manager of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageManager {
    Apt,
    Dnf,
    Zypper,
}

impl PackageManager {
    pub fn of(distro: &Distro) -> PackageManager {
        match distro.package_manager.as_str() {
            "dnf" | "yum" => PackageManager::Dnf,
            "zypper" => PackageManager::Zypper,
            _ => PackageManager::Apt,
        }
    }

    /// The command that installs `packages` (names or local files) without
    /// asking.
    pub fn install_argv(self, packages: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            PackageManager::Apt => vec![
                "apt-get".into(),
                "install".into(),
                "-y".into(),
                "--no-install-recommends".into(),
            ],
            PackageManager::Dnf => vec!["dnf".into(), "install".into(), "-y".into()],
            PackageManager::Zypper => vec![
                "zypper".into(),
                "--non-interactive".into(),
                "install".into(),
            ],
        };
        argv.extend(packages.iter().cloned());
        argv
    }

    /// The command that removes `packages`.
    pub fn remove_argv(self, packages: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            PackageManager::Apt => vec!["apt-get".into(), "purge".into(), "-y".into()],
            PackageManager::Dnf => vec!["dnf".into(), "remove".into(), "-y".into()],
            PackageManager::Zypper => {
                vec!["zypper".into(), "--non-interactive".into(), "remove".into()]
            }
        };
        argv.extend(packages.iter().cloned());
        argv
    }

    /// Refreshes the package lists (`source`: only that repository file,
    /// where the manager can be told so).
    pub fn update_argv(self, source: Option<&str>) -> Vec<String> {
        match (self, source) {
            (PackageManager::Apt, Some(file)) => vec![
                "apt-get".into(),
                "update".into(),
                "-o".into(),
                format!("Dir::Etc::sourcelist={file}"),
                "-o".into(),
                "Dir::Etc::sourceparts=-".into(),
                "-o".into(),
                "APT::Get::List-Cleanup=0".into(),
            ],
            (PackageManager::Apt, None) => vec!["apt-get".into(), "update".into()],
            (PackageManager::Dnf, _) => vec!["dnf".into(), "makecache".into()],
            (PackageManager::Zypper, _) => vec![
                "zypper".into(),
                "--non-interactive".into(),
                "refresh".into(),
            ],
        }
    }
}

/// What the repository said about a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A verified, fresh lookup file.
    Found(Box<KernelLookup>),
    /// No lookup file: the matrix does not know the kernel.
    Unknown,
}

/// What the host is like, gathered before planning.
#[derive(Debug, Clone)]
pub struct Facts {
    pub config: HostConfig,
    pub distro: Distro,
    pub arch: String,
    pub kernel: String,
    /// The kernel is the one running now (only then can the module load).
    pub running: bool,
    /// The module's repository is configured in the package manager
    /// (install.sh did that), so prebuilt and -dkms packages come by name.
    pub repo_source: Option<String>,
    /// `--no-load`.
    pub no_load: bool,
    /// The module is already in place for this kernel, and how.
    pub present: Option<Route>,
    /// What the kernel hook staged for this kernel: every module of the
    /// product (host path of each file), or nothing.
    pub staged: Vec<(IndexEntry, String)>,
    /// The DKMS route from the repository's index, when the kernel's lookup
    /// file has none (or there is no lookup file).
    pub index_dkms: Option<DkmsRoute>,
    /// The prebuilt entries of the product's other modules for this kernel,
    /// from index.json (a lookup file names one module's entry), so that
    /// every module is placed when the host has no repository source.
    pub sibling_entries: Vec<IndexEntry>,
    /// Where downloads wait until they are verified.
    pub download_dir: String,
}

/// Whether to take the DKMS route when there is no prebuilt module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkmsChoice {
    /// `--enable-dkms`, a "y" at the prompt, or the host opted in earlier.
    Build,
    /// Ask (install on a terminal).
    Ask,
    /// Never (the prompt was answered No; `ensure` on a host not opted in).
    No,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// The module is already in place; only loading is left.
    AlreadyInstalled {
        route: Route,
    },
    Prebuilt {
        version: String,
        route: Route,
        /// "repository" or "staged by the kernel hook".
        from: String,
    },
    Dkms {
        package: String,
        why: String,
    },
    /// No prebuilt module; the person must be asked about DKMS.
    AskDkms {
        why: String,
    },
    /// Nothing will be installed for this kernel.
    NoModule {
        why: String,
    },
    /// Neither route applies to this kernel.
    Refuse {
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    /// Fetch a file, check its size and sha256 against the signed lookup.
    Download {
        url: String,
        sha256: String,
        size: Option<u64>,
        to: String,
    },
    /// Check a staged file again before using it.
    Verify {
        path: String,
        sha256: String,
    },
    RefreshPackages {
        argv: Vec<String>,
    },
    InstallPackages {
        argv: Vec<String>,
        why: String,
    },
    /// Refuse unless the kernel's image (and, when needed, its real
    /// System.map) is installed.
    CheckImage {
        kernel: String,
        system_map: bool,
    },
    /// Refuse unless the installed headers are this kernel's.
    CheckHeaders {
        kernel: String,
    },
    /// Make sure DKMS built and installed the module for the kernel.
    DkmsInstall {
        module: String,
        version: String,
        kernel: String,
    },
    Place {
        from: String,
        to: String,
    },
    Depmod {
        kernel: String,
    },
    BootEntry {
        path: String,
        contents: String,
    },
    Initramfs {
        argv: Vec<String>,
        config: Option<(String, String)>,
    },
    Load {
        module: String,
    },
    OptInDkms,
    Record {
        kernel: String,
        route: Route,
        version: String,
        files: Vec<String>,
        packages: Vec<String>,
        sha256: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub module: String,
    pub kernel: String,
    pub distro: String,
    pub arch: String,
    #[serde(flatten)]
    pub decision: Decision,
    pub steps: Vec<Step>,
    /// Things a person should know (not loading a kernel that is not running).
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether the plan installs or loads anything.
    pub fn acts(&self) -> bool {
        !self.steps.is_empty()
    }
}

/// The plan for `facts.kernel`. `Answer::Unknown` and a failed build both
/// lead to the DKMS question; a kernel the lookup file calls out of range
/// is refused.
pub fn plan(facts: &Facts, answer: &Answer, dkms: DkmsChoice) -> Plan {
    let mut plan = Plan {
        module: facts.config.name.clone(),
        kernel: facts.kernel.clone(),
        distro: facts.distro.id.clone(),
        arch: facts.arch.clone(),
        decision: Decision::NoModule { why: String::new() },
        steps: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(route) = facts.present {
        plan.decision = Decision::AlreadyInstalled { route };
        boot_steps(facts, &mut plan);
        return plan;
    }
    if let Some((first, _)) = facts.staged.first() {
        plan.decision = Decision::Prebuilt {
            version: first.version.clone(),
            route: Route::PrebuiltFile,
            from: "staged by the kernel hook".into(),
        };
        for (entry, path) in &facts.staged {
            plan.steps.push(Step::Verify {
                path: path.clone(),
                sha256: entry.sha256.clone(),
            });
        }
        place_steps(facts, &facts.staged, &mut plan);
        return plan;
    }
    let (why, dkms_route) = match answer {
        Answer::Found(lookup) => match &lookup.status {
            KernelStatus::Prebuilt { entry } => match prebuilt_set(facts, entry) {
                Ok(entries) => {
                    prebuilt_steps(facts, &entries, &mut plan);
                    return plan;
                }
                Err(missing) => (
                    format!(
                        "the repository has no prebuilt {} {} for {} (only {})",
                        missing.join(", "),
                        entry.version,
                        facts.kernel,
                        entry.module
                    ),
                    lookup.dkms.clone().or_else(|| facts.index_dkms.clone()),
                ),
            },
            KernelStatus::OutOfRange { reason } => {
                plan.decision = Decision::Refuse {
                    why: reason.clone(),
                };
                return plan;
            }
            KernelStatus::Failed { reason } => (
                format!("the prebuilt build for {} failed ({reason})", facts.kernel),
                lookup.dkms.clone().or_else(|| facts.index_dkms.clone()),
            ),
        },
        Answer::Unknown => (
            format!(
                "the repository has no prebuilt module for {} on {}/{}",
                facts.kernel, facts.distro.id, facts.arch
            ),
            facts.index_dkms.clone(),
        ),
    };
    match dkms {
        DkmsChoice::Ask => plan.decision = Decision::AskDkms { why },
        DkmsChoice::No => plan.decision = Decision::NoModule { why },
        DkmsChoice::Build => dkms_steps(facts, why, dkms_route.as_ref(), &mut plan),
    }
    plan
}

/// Every module of the product for this kernel, in the manifest's order:
/// the lookup's entry and, for the others, the index's entries of the same
/// version. The package route needs only the one (the package carries them
/// all). `Err`: the modules the repository has no file of.
fn prebuilt_set<'a>(
    facts: &'a Facts,
    entry: &'a IndexEntry,
) -> Result<Vec<&'a IndexEntry>, Vec<String>> {
    if facts.repo_source.is_some() {
        // The package of `entry` carries every module of the product.
        return Ok(vec![entry]);
    }
    every_module(&facts.config.modules, entry, &facts.sibling_entries)
}

/// One prebuilt entry for each of `modules`: `entry` (what a lookup file
/// names) and the entries of the same version and kernel among `others`
/// (from index.json); or the modules that have none.
pub fn every_module<'a>(
    modules: &[String],
    entry: &'a IndexEntry,
    others: &'a [IndexEntry],
) -> Result<Vec<&'a IndexEntry>, Vec<String>> {
    if modules.len() <= 1 {
        return Ok(vec![entry]);
    }
    let candidates = std::iter::once(entry).chain(others.iter().filter(|e| {
        e.version == entry.version
            && e.distro == entry.distro
            && e.arch == entry.arch
            && e.kernel_release == entry.kernel_release
    }));
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for module in modules {
        match candidates.clone().find(|e| e.module == *module) {
            Some(e) => found.push(e),
            None => missing.push(module.clone()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

fn prebuilt_steps(facts: &Facts, entries: &[&IndexEntry], plan: &mut Plan) {
    let manager = PackageManager::of(&facts.distro);
    let entry = entries[0];
    if let Some(source) = &facts.repo_source {
        plan.decision = Decision::Prebuilt {
            version: entry.version.clone(),
            route: Route::PrebuiltPackage,
            from: "repository".into(),
        };
        plan.steps.push(Step::RefreshPackages {
            argv: manager.update_argv(Some(source)),
        });
        plan.steps.push(Step::InstallPackages {
            argv: manager.install_argv(std::slice::from_ref(&entry.prebuilt_package)),
            why: format!("the prebuilt module for {}", facts.kernel),
        });
        plan.steps.push(Step::Depmod {
            kernel: facts.kernel.clone(),
        });
        plan.steps.push(record(
            facts,
            Route::PrebuiltPackage,
            &entry.version,
            vec![],
            vec![entry.prebuilt_package.clone()],
            Some(&entry.sha256),
        ));
        boot_steps(facts, plan);
        return;
    }
    plan.decision = Decision::Prebuilt {
        version: entry.version.clone(),
        route: Route::PrebuiltFile,
        from: "repository".into(),
    };
    let mut files = Vec::new();
    for entry in entries {
        let to = format!("{}/{}", facts.download_dir, file_name(&entry.path));
        plan.steps.push(Step::Download {
            url: join_url(&facts.config.repo, &entry.path),
            sha256: entry.sha256.clone(),
            size: Some(entry.size),
            to: to.clone(),
        });
        files.push(((*entry).clone(), to));
    }
    place_steps(facts, &files, plan);
}

/// Placing verified files under updates/ and everything after it.
fn place_steps(facts: &Facts, files: &[(IndexEntry, String)], plan: &mut Plan) {
    let mut placed = Vec::new();
    for (entry, from) in files {
        let to = format!(
            "/lib/modules/{}/updates/{}",
            facts.kernel,
            entry.module_file_name()
        );
        plan.steps.push(Step::Place {
            from: from.clone(),
            to: to.clone(),
        });
        placed.push(to);
    }
    plan.steps.push(Step::Depmod {
        kernel: facts.kernel.clone(),
    });
    let first = &files[0].0;
    plan.steps.push(record(
        facts,
        Route::PrebuiltFile,
        &first.version,
        placed,
        vec![],
        Some(&first.sha256),
    ));
    boot_steps(facts, plan);
}

fn dkms_steps(facts: &Facts, why: String, route: Option<&DkmsRoute>, plan: &mut Plan) {
    let manager = PackageManager::of(&facts.distro);
    let name = &facts.config.name;
    let package = route.map_or_else(|| format!("{name}-dkms"), |r| r.package.clone());
    let version = route.map_or_else(|| facts.config.version.clone(), |r| r.version.clone());
    plan.decision = Decision::Dkms {
        package: package.clone(),
        why,
    };
    let kernel = kmodfarm_model::KernelRelease::parse(&facts.kernel);
    let headers = match &kernel {
        Ok(k) => facts.distro.headers_package(k),
        Err(_) => format!("linux-headers-{}", facts.kernel),
    };
    // Before anything is installed: a module built from headers whose
    // kernel image is not there yet can crash the host later.
    plan.steps.push(Step::CheckImage {
        kernel: facts.kernel.clone(),
        system_map: facts.config.needs_system_map,
    });
    plan.steps.push(Step::RefreshPackages {
        argv: manager.update_argv(None),
    });
    let tools: Vec<String> = match manager {
        PackageManager::Apt => vec!["gcc".into(), "make".into(), "dkms".into(), headers],
        _ => vec!["gcc".into(), "make".into(), "dkms".into(), headers],
    };
    plan.steps.push(Step::InstallPackages {
        argv: manager.install_argv(&tools),
        why: format!("the build tools and the headers of {}", facts.kernel),
    });
    plan.steps.push(Step::CheckHeaders {
        kernel: facts.kernel.clone(),
    });
    let installed_package = match route {
        Some(route) if facts.repo_source.is_none() => {
            let to = format!("{}/{}", facts.download_dir, file_name(&route.package_path));
            plan.steps.push(Step::Download {
                url: join_url(&facts.config.repo, &route.package_path),
                sha256: route.sha256.clone(),
                size: None,
                to: to.clone(),
            });
            to
        }
        _ => package.clone(),
    };
    plan.steps.push(Step::InstallPackages {
        argv: manager.install_argv(&[installed_package]),
        why: format!("{package}, which registers the module with DKMS"),
    });
    plan.steps.push(Step::DkmsInstall {
        module: name.clone(),
        version: version.clone(),
        kernel: facts.kernel.clone(),
    });
    plan.steps.push(Step::OptInDkms);
    plan.steps.push(record(
        facts,
        Route::Dkms,
        &version,
        vec![],
        vec![package],
        None,
    ));
    boot_steps(facts, plan);
}

fn record(
    facts: &Facts,
    route: Route,
    version: &str,
    files: Vec<String>,
    packages: Vec<String>,
    sha256: Option<&str>,
) -> Step {
    Step::Record {
        kernel: facts.kernel.clone(),
        route,
        version: version.to_string(),
        files,
        packages,
        sha256: sha256.map(str::to_string),
    }
}

/// Load-at-boot entry, initramfs, and loading now.
fn boot_steps(facts: &Facts, plan: &mut Plan) {
    let config = &facts.config;
    if !config.load.is_empty() && !matches!(plan.decision, Decision::AlreadyInstalled { .. }) {
        plan.steps.push(Step::BootEntry {
            path: modules_load_path(&config.name),
            contents: format!(
                "# Written by kmodfarm-host for {}: load at every boot.\n{}\n",
                config.name,
                config.load.join("\n")
            ),
        });
    }
    if !config.initramfs.is_empty() && !matches!(plan.decision, Decision::AlreadyInstalled { .. }) {
        let modules = config.initramfs.join(" ");
        plan.steps.push(match facts.distro.kernel.initramfs {
            InitramfsTool::InitramfsTools => Step::Initramfs {
                argv: vec![
                    "update-initramfs".into(),
                    "-u".into(),
                    "-k".into(),
                    facts.kernel.clone(),
                ],
                config: Some((
                    format!("/usr/share/initramfs-tools/modules.d/{}.conf", config.name),
                    format!("{}\n", config.initramfs.join("\n")),
                )),
            },
            InitramfsTool::Dracut => Step::Initramfs {
                argv: vec![
                    "dracut".into(),
                    "-f".into(),
                    "--kver".into(),
                    facts.kernel.clone(),
                ],
                config: Some((
                    format!("/etc/dracut.conf.d/{}.conf", config.name),
                    format!("add_drivers+=\" {modules} \"\n"),
                )),
            },
        });
    }
    if facts.no_load {
        plan.notes.push("not loading the module (--no-load)".into());
    } else if !facts.running {
        plan.notes.push(format!(
            "kernel {} is not running: the module loads when it boots",
            facts.kernel
        ));
    } else {
        for module in &config.modules {
            plan.steps.push(Step::Load {
                module: module.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use kmodfarm_model::record::{Freshness, SCHEMA_VERSION};
    use kmodfarm_model::{Compression, DistroSet, KernelRelease};

    use super::*;

    const KERNEL: &str = "6.1.0-57-amd64";

    fn entry(module: &str) -> IndexEntry {
        IndexEntry {
            module: module.into(),
            version: "2.3.1".into(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: KernelRelease::parse(KERNEL).unwrap(),
            path: format!("prebuilt/debian-12/amd64/{KERNEL}/{module}-2.3.1.ko.zst"),
            sha256: format!("{module:0>64}"),
            size: 1234,
            compression: Compression::Zst,
            signed: false,
            vermagic: format!("{KERNEL} SMP preempt mod_unload modversions "),
            prebuilt_package: format!("kmfsym-modules-{KERNEL}"),
            package_path: String::new(),
            package_sha256: String::new(),
            dkms_package: "kmfsym-dkms".into(),
        }
    }

    /// A product of two modules, both loaded at boot, on a host without
    /// the repository configured; the lookup names the first module only
    /// (as `kmodfarm publish` writes it) and the index has both.
    fn facts() -> Facts {
        Facts {
            config: HostConfig {
                name: "kmfsym".into(),
                version: "2.3.1".into(),
                repo: "https://repo.example.org/kmfsym".into(),
                key: "/usr/share/keyrings/kmfsym-archive-keyring.asc".into(),
                ca: None,
                kernels_min: None,
                kernels_max: None,
                modules: vec!["kmfsym_core".into(), "kmfsym_extra".into()],
                load: vec!["kmfsym_core".into(), "kmfsym_extra".into()],
                initramfs: vec![],
                needs_system_map: false,
            },
            distro: DistroSet::builtin().get("debian-12").unwrap().clone(),
            arch: "amd64".into(),
            kernel: KERNEL.into(),
            running: false,
            repo_source: None,
            no_load: true,
            present: None,
            staged: Vec::new(),
            index_dkms: None,
            sibling_entries: vec![entry("kmfsym_core"), entry("kmfsym_extra")],
            download_dir: format!("/var/lib/kmfsym/download/{KERNEL}"),
        }
    }

    fn found(entry: IndexEntry) -> Answer {
        Answer::Found(Box::new(KernelLookup {
            schema_version: SCHEMA_VERSION,
            module: "kmfsym".into(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: KernelRelease::parse(KERNEL).unwrap(),
            freshness: Freshness {
                generated: 1,
                expires: None,
                serial: 1,
            },
            status: KernelStatus::Prebuilt { entry },
            dkms: None,
        }))
    }

    #[test]
    fn every_module_of_the_product_is_downloaded_placed_recorded_and_loaded_at_boot() {
        let plan = plan(&facts(), &found(entry("kmfsym_core")), DkmsChoice::No);
        assert!(
            matches!(
                plan.decision,
                Decision::Prebuilt {
                    route: Route::PrebuiltFile,
                    ..
                }
            ),
            "{plan:?}"
        );
        let downloads: Vec<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Download { url, .. } => Some(url.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            downloads,
            [
                format!("https://repo.example.org/kmfsym/prebuilt/debian-12/amd64/{KERNEL}/kmfsym_core-2.3.1.ko.zst"),
                format!("https://repo.example.org/kmfsym/prebuilt/debian-12/amd64/{KERNEL}/kmfsym_extra-2.3.1.ko.zst"),
            ]
        );
        let placed: Vec<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Place { to, .. } => Some(to.as_str()),
                _ => None,
            })
            .collect();
        let expected = [
            format!("/lib/modules/{KERNEL}/updates/kmfsym_core.ko.zst"),
            format!("/lib/modules/{KERNEL}/updates/kmfsym_extra.ko.zst"),
        ];
        assert_eq!(placed, expected);
        // One depmod, after both are in place.
        let depmod = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::Depmod { .. }))
            .unwrap();
        let last_place = plan
            .steps
            .iter()
            .rposition(|s| matches!(s, Step::Place { .. }))
            .unwrap();
        assert!(depmod > last_place);
        assert_eq!(
            plan.steps
                .iter()
                .filter(|s| matches!(s, Step::Depmod { .. }))
                .count(),
            1
        );
        // The record names both files, so uninstall removes both.
        let files = plan.steps.iter().find_map(|s| match s {
            Step::Record { files, .. } => Some(files.clone()),
            _ => None,
        });
        assert_eq!(files.unwrap(), expected);
        let boot = plan.steps.iter().find_map(|s| match s {
            Step::BootEntry { contents, .. } => Some(contents.clone()),
            _ => None,
        });
        let boot = boot.unwrap();
        assert!(
            boot.lines().any(|l| l == "kmfsym_core") && boot.lines().any(|l| l == "kmfsym_extra"),
            "{boot}"
        );
    }

    #[test]
    fn a_module_the_repository_has_no_file_of_means_no_prebuilt_route() {
        let mut facts = facts();
        // Only the first module's file, and an older version of the other.
        let mut old = entry("kmfsym_extra");
        old.version = "2.3.0".into();
        facts.sibling_entries = vec![entry("kmfsym_core"), old];
        let plan = plan(&facts, &found(entry("kmfsym_core")), DkmsChoice::No);
        match &plan.decision {
            Decision::NoModule { why } => {
                assert!(why.contains("no prebuilt kmfsym_extra 2.3.1"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!plan.acts(), "{plan:?}");
    }

    #[test]
    fn with_the_repository_configured_the_one_package_brings_every_module() {
        let mut facts = facts();
        facts.repo_source = Some("/etc/apt/sources.list.d/kmfsym.sources".into());
        facts.sibling_entries.clear();
        let plan = plan(&facts, &found(entry("kmfsym_core")), DkmsChoice::No);
        assert!(
            matches!(
                plan.decision,
                Decision::Prebuilt {
                    route: Route::PrebuiltPackage,
                    ..
                }
            ),
            "{plan:?}"
        );
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::Place { .. })));
    }

    #[test]
    fn what_the_kernel_hook_staged_is_checked_again_and_placed_without_the_network() {
        let mut facts = facts();
        facts.sibling_entries.clear();
        facts.staged = ["kmfsym_core", "kmfsym_extra"]
            .iter()
            .map(|m| {
                (
                    entry(m),
                    format!("/var/lib/kmfsym/staged/{KERNEL}/{m}.ko.zst"),
                )
            })
            .collect();
        let plan = plan(&facts, &Answer::Unknown, DkmsChoice::No);
        assert!(
            matches!(&plan.decision, Decision::Prebuilt { route: Route::PrebuiltFile, from, .. } if from == "staged by the kernel hook"),
            "{plan:?}"
        );
        assert!(!plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::Download { .. })));
        let verified: Vec<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Verify { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            verified,
            [
                format!("/var/lib/kmfsym/staged/{KERNEL}/kmfsym_core.ko.zst"),
                format!("/var/lib/kmfsym/staged/{KERNEL}/kmfsym_extra.ko.zst"),
            ]
        );
        let placed = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Place { .. }))
            .count();
        assert_eq!(placed, 2, "{plan:?}");
    }

    #[test]
    fn every_module_names_the_modules_without_an_entry_of_the_same_version() {
        let modules = vec!["kmfsym_core".to_string(), "kmfsym_extra".to_string()];
        let core = entry("kmfsym_core");
        let both = [entry("kmfsym_core"), entry("kmfsym_extra")];
        let found = every_module(&modules, &core, &both).unwrap();
        assert_eq!(
            found.iter().map(|e| e.module.as_str()).collect::<Vec<_>>(),
            ["kmfsym_core", "kmfsym_extra"]
        );
        let mut older = entry("kmfsym_extra");
        older.version = "2.3.0".into();
        assert_eq!(
            every_module(&modules, &core, &[older]).unwrap_err(),
            ["kmfsym_extra"]
        );
    }
}
