//! Planning the prebuilt packages: `<name>-modules-<kernel>` (.deb) and
//! `kmod-<name>-<kernel>` (.rpm), one per kernel, installing the modules a
//! build produced at /lib/modules/<kernel>/updates/<module>.ko.zst.
//!
//! # Coexistence with `<name>-dkms`
//!
//! Both routes may be installed at once; for a kernel with a prebuilt
//! package, the prebuilt module must win and DKMS must stay away:
//!
//! 1. The prebuilt package ships a marker file,
//!    `/var/lib/kmodfarm/<name>/prebuilt/<kernel>`. The rendered dkms.conf
//!    (templates/dkms.conf.tera) admits no kernel at all when the marker for
//!    `$kernelver` exists, so a direct `dkms build/install -k <kernel>`
//!    treats that kernel as unsupported (BUILD_EXCLUSIVE) and skips it, and
//!    `dkms autoinstall` (the distribution's kernel hooks) passes over the
//!    module for that kernel: dkms.conf leaves AUTOINSTALL unset when the
//!    DKMS helper declines the kernel, because DKMS 3.0.10 would count a
//!    BUILD_EXCLUSIVE skip during autoinstall as a failure. A marker
//!    file (not a script check) is used because DKMS sources dkms.conf
//!    itself; nothing of ours has to run for the exclusion to hold, and the
//!    package manager creates and removes the marker atomically with the
//!    module.
//! 2. The postinst (%post) removes a DKMS-built copy for that kernel, if
//!    DKMS built one before the prebuilt package arrived, so depmod sees
//!    one module, ours.
//! 3. When the prebuilt package is removed, the package manager deletes
//!    the marker first; the postrm (%postun on erase) then runs the DKMS
//!    package's helper `kernel-installed <kernel>` if that package is
//!    installed, so DKMS builds the module for that kernel again.
//!
//! The scripts are generated here rather than from templates/: they take
//! the kernel release, which the render stage's per-manifest context has
//! no notion of, and they are short enough to read in one place.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kmodfarm_model::record::{prebuilt_package_name, BuildOutcome, BuildRecord};
use kmodfarm_model::{Distro, KernelRelease, Manifest, PackageFamily};

use crate::debian_docs;
use crate::dkms::{check_unique, SHELL};
use crate::error::{PackageError, Result};
use crate::spec::{Dependency, FileData, FileEntry, Format, PackageSpec, Script, ScriptKind};

/// One built module file for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrebuiltModule {
    /// The kernel module's name (without .ko).
    pub module: String,
    /// The built file, e.g. `<out>/debian-12/amd64/6.1.0-56-amd64/kmfdemo.ko.zst`.
    pub path: PathBuf,
    pub size: u64,
}

impl PrebuiltModule {
    /// The installed file name: the module name with the file's extension.
    fn file_name(&self) -> String {
        let name = self
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let ext = name.find(".ko").map_or(".ko", |i| &name[i..]).to_string();
        format!("{}{ext}", self.module)
    }
}

/// Everything built for one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrebuiltKernel {
    pub kernel: KernelRelease,
    pub modules: Vec<PrebuiltModule>,
}

/// The marker that makes DKMS skip `kernel` (see the module docs).
pub fn marker_path(name: &str, kernel: &str) -> String {
    format!("/var/lib/kmodfarm/{name}/prebuilt/{kernel}")
}

/// The DKMS package's helper, which the postrm hands the kernel back to.
pub fn dkms_helper(name: &str) -> String {
    format!("/usr/lib/{name}-dkms/kmodfarm-dkms")
}

pub fn plan_prebuilt(
    manifest: &Manifest,
    distro: &Distro,
    format: Format,
    built: &PrebuiltKernel,
    source_date: u64,
) -> Result<PackageSpec> {
    let meta = &manifest.package;
    let k = built.kernel.as_str();
    let family = match format {
        Format::Deb => PackageFamily::Deb,
        Format::Rpm => PackageFamily::Rpm,
    };
    let name = prebuilt_package_name(&meta.name, family, &built.kernel);

    let mut files: Vec<FileEntry> = built
        .modules
        .iter()
        .map(|m| FileEntry {
            path: format!("/lib/modules/{k}/updates/{}", m.file_name()),
            mode: 0o644,
            data: FileData::Source {
                path: m.path.clone(),
                size: m.size,
            },
            conffile: false,
        })
        .collect();
    let module_files: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    files.push(FileEntry {
        path: marker_path(&meta.name, k),
        mode: 0o644,
        data: FileData::inline(format!(
            "{name} {}-{}\n# DKMS skips kernel {k} while this file exists; see {name}'s scripts.\n",
            meta.version, meta.release
        )),
        conffile: false,
    });
    if format == Format::Deb {
        files.extend(debian_docs::files(&name, meta, source_date));
    }
    check_unique(&files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let directories: BTreeSet<String> = match format {
        // Shared by every prebuilt package of this module; RPM allows
        // several packages to own one directory.
        Format::Rpm => [
            "/var/lib/kmodfarm".to_string(),
            format!("/var/lib/kmodfarm/{}", meta.name),
            format!("/var/lib/kmodfarm/{}/prebuilt", meta.name),
        ]
        .into(),
        Format::Deb => BTreeSet::new(),
    };

    let description = format!(
        "{}\n\nThis package carries the module prebuilt for the kernel release\n{k}.\nWhile it is installed, {}-dkms leaves that kernel alone.",
        meta.description.trim(),
        meta.name
    );
    Ok(PackageSpec {
        format,
        name: name.clone(),
        version: meta.version.clone(),
        release: meta.release.to_string(),
        arch: distro.arch.clone(),
        summary: format!("{} (prebuilt for Linux {k})", meta.summary),
        description,
        maintainer: meta.maintainer.clone(),
        homepage: meta.homepage.clone(),
        license: meta.license.clone(),
        section: "kernel".into(),
        depends: vec![image_dependency(format, distro, &built.kernel)],
        provides: vec![match format {
            Format::Deb => Dependency::on(format!("{}-modules", meta.name)),
            Format::Rpm => Dependency::exactly(
                format!("{}-kmod", meta.name),
                format!("{}-{}", meta.version, meta.release),
            ),
        }],
        conflicts: Vec::new(),
        files,
        directories,
        scripts: scripts(format, &meta.name, k, &module_files),
        source_date,
    })
}

/// The exact kernel the module was built for. Debian and Ubuntu name one
/// package per kernel release (`linux-image-<k>`), signed or unsigned: any
/// of them will do. RPM distros name the
/// package `kernel-core`/`kernel-default` with the release as its version,
/// so a package name like `kernel-core-<k>` is not a capability rpm can
/// resolve; their kernels provide `kernel-uname-r = <k>` for this purpose
/// (what SUSE KMPs and Fedora kmods require).
fn image_dependency(format: Format, distro: &Distro, kernel: &KernelRelease) -> Dependency {
    match format {
        Format::Deb => Dependency::one_of(distro.image_packages(kernel)),
        Format::Rpm => Dependency::exactly("kernel-uname-r", kernel.as_str()),
    }
}

/// `module_files`: where the package puts its modules. With kmodfarm-host
/// on the host (install.sh installs it first), the postinst has it append
/// them to kmod's index, which takes milliseconds where `depmod -a` reads
/// every module of the kernel (seconds for xz-compressed ones); it runs
/// depmod itself whenever appending cannot be shown to be exact.
fn scripts(format: Format, name: &str, kernel: &str, module_files: &[String]) -> Vec<Script> {
    let vars = format!("kernel='{kernel}'\nmodule='{name}'\n");
    let quoted_files = module_files
        .iter()
        .map(|f| format!("'{f}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let helper = format!("helper='{}'\n", dkms_helper(name));
    // A DKMS-built copy for this kernel would duplicate ours: remove it.
    let take_over = format!(
        r#"
    if command -v dkms >/dev/null 2>&1; then
        for built in /var/lib/dkms/"$module"/*/"$kernel"; do
            [ -d "$built" ] || continue
            version=$(basename "$(dirname "$built")")
            echo "$module: removing the DKMS build of $version for $kernel; the prebuilt module serves it"
            dkms remove "$module/$version" -k "$kernel" || echo "$module: dkms remove failed for $kernel; the prebuilt module may be shadowed" >&2
        done
    fi
    if [ -d "/lib/modules/$kernel" ]; then
        if command -v kmodfarm-host >/dev/null 2>&1; then
            kmodfarm-host reindex "$kernel" {quoted_files} || depmod -a "$kernel"
        else
            depmod -a "$kernel"
        fi
    fi
"#
    );
    let take_over = take_over.trim_start_matches('\n');
    // The marker is already gone with the package's files: DKMS may build
    // for this kernel again, and the DKMS package's helper does so.
    let hand_back = r#"
    if [ -d "/lib/modules/$kernel" ]; then
        depmod -a "$kernel" || true
        if [ -x "$helper" ]; then
            echo "$module: handing kernel $kernel back to DKMS"
            "$helper" kernel-installed "$kernel" || echo "$module: DKMS could not build for $kernel; see the message above" >&2
        fi
    fi
"#
    .trim_start_matches('\n');
    let (post, postrm) = match format {
        Format::Deb => (
            format!("set -e\n{vars}\ncase \"$1\" in\nconfigure)\n{take_over}    ;;\nesac\n\nexit 0\n"),
            format!(
                "set -e\n{vars}{helper}\ncase \"$1\" in\nremove|purge)\n{hand_back}    ;;\nesac\n\nexit 0\n"
            ),
        ),
        // %post gets the number of installed instances; %postun 0 on erase.
        Format::Rpm => (
            format!("{vars}\n{take_over}"),
            format!(
                "{vars}{helper}\nif [ \"$1\" -eq 0 ]; then\n{hand_back}elif [ -d \"/lib/modules/$kernel\" ]; then\n    depmod -a \"$kernel\" || true\nfi\n"
            ),
        ),
    };
    vec![
        Script {
            kind: ScriptKind::PostInstall,
            interpreter: SHELL.into(),
            body: post,
        },
        Script {
            kind: ScriptKind::PostRemove,
            interpreter: SHELL.into(),
            body: postrm,
        },
    ]
}

/// Reads a build's output tree, `<dir>/<distro>/<arch>/<kernel>/<module>.ko.*`,
/// for one distro and the manifest's modules. A kernel directory holding a
/// build record (`*.json`) that says the build failed or was skipped is
/// left out; any other kernel directory must hold every module.
pub fn scan_prebuilt(
    dir: &Path,
    manifest: &Manifest,
    distro: &Distro,
) -> Result<Vec<PrebuiltKernel>> {
    let arch_dir = dir.join(&distro.id).join(&distro.arch);
    let read = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| PackageError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut kernel_dirs: Vec<PathBuf> = read(&arch_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    kernel_dirs.sort();

    let mut kernels = Vec::new();
    for kdir in kernel_dirs {
        let raw = kdir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let kernel = KernelRelease::parse(&raw).map_err(|e| PackageError::Prebuilt {
            path: kdir.clone(),
            message: e.to_string(),
        })?;
        if record_says_not_built(&kdir)? {
            continue;
        }
        let mut modules = Vec::new();
        for m in &manifest.modules {
            let found = read(&kdir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let f = p.file_name().unwrap_or_default().to_string_lossy();
                    f.strip_prefix(m.name.as_str())
                        .is_some_and(|rest| [".ko", ".ko.zst", ".ko.xz"].contains(&rest))
                })
                .min();
            let Some(path) = found else {
                return Err(PackageError::Prebuilt {
                    path: kdir.clone(),
                    message: format!(
                        "no {}.ko.zst (or .ko.xz/.ko) for module '{}'",
                        m.name, m.name
                    ),
                });
            };
            let size = std::fs::metadata(&path)
                .map_err(|source| PackageError::Read {
                    path: path.clone(),
                    source,
                })?
                .len();
            modules.push(PrebuiltModule {
                module: m.name.clone(),
                path,
                size,
            });
        }
        kernels.push(PrebuiltKernel { kernel, modules });
    }
    if kernels.is_empty() {
        return Err(PackageError::Prebuilt {
            path: arch_dir,
            message: "no built kernels here".into(),
        });
    }
    Ok(kernels)
}

fn record_says_not_built(kdir: &Path) -> Result<bool> {
    let entries = std::fs::read_dir(kdir).map_err(|source| PackageError::Read {
        path: kdir.to_path_buf(),
        source,
    })?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).map_err(|source| PackageError::Read {
                path: path.clone(),
                source,
            })?;
            // `kmodfarm build` writes its kernel's records as a list
            // (record.json); a single record is read too.
            let records = serde_json::from_str::<Vec<BuildRecord>>(&text)
                .or_else(|_| serde_json::from_str::<BuildRecord>(&text).map(|r| vec![r]))
                .unwrap_or_default();
            if records.iter().any(|record| {
                matches!(
                    record.outcome,
                    BuildOutcome::Failed { .. } | BuildOutcome::Skipped { .. }
                )
            }) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
