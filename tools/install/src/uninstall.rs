//! `uninstall`: removes what kmodfarm-host and install.sh put on the host
//! (placed modules, the packages it installed, the DKMS registration, the
//! load-at-boot entry, the boot unit, the kernel hook, staged files, its
//! state and settings, the repository definition and key), planned as data
//! first like install.

use std::collections::BTreeSet;

use kmodfarm_model::host::{
    apt_source_path, config_path, kernel_hook_path, modules_load_path, state_dir, unit_name,
    unit_path, yum_repo_path, zypper_repo_path, HOST_PACKAGE,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::plan::PackageManager;
use crate::state::Route;
use crate::Session;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Undo {
    DisableUnit { unit: String },
    RemovePackages { argv: Vec<String> },
    RemoveFile { path: String },
    RemoveDir { path: String },
    Depmod { kernel: String },
    Initramfs { argv: Vec<String> },
}

/// Whether the package manager has `package` installed.
fn package_installed(host: &dyn Host, manager: PackageManager, package: &str) -> bool {
    let argv: Vec<&str> = match manager {
        PackageManager::Apt => vec!["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package],
        _ => vec!["rpm", "-q", package],
    };
    host.run(&argv)
        .is_ok_and(|r| r.success && (manager != PackageManager::Apt || r.stdout.starts_with("ii")))
}

pub fn plan(session: &Session<'_>, remove_program: bool) -> Result<Vec<Undo>> {
    let host = session.host;
    let name = &session.config.name;
    let manager = PackageManager::of(&session.distro);
    let mut undo = Vec::new();
    if host.path(&unit_path(name)).is_file() && host.has_command("systemctl") {
        undo.push(Undo::DisableUnit {
            unit: unit_name(name),
        });
    }
    let records = session.state.records()?;
    let mut packages: BTreeSet<String> = BTreeSet::new();
    let mut kernels: BTreeSet<String> = BTreeSet::new();
    for record in &records {
        kernels.insert(record.kernel.clone());
        match record.route {
            Route::PrebuiltFile => {
                for file in &record.files {
                    undo.push(Undo::RemoveFile { path: file.clone() });
                }
            }
            Route::PrebuiltPackage | Route::Dkms => {
                packages.extend(record.packages.iter().cloned())
            }
        }
    }
    packages.insert(format!("{name}-dkms"));
    let mut installed: Vec<String> = packages
        .into_iter()
        .filter(|p| package_installed(host, manager, p))
        .collect();
    if remove_program && package_installed(host, manager, HOST_PACKAGE) {
        installed.push(HOST_PACKAGE.to_string());
    }
    if !installed.is_empty() {
        undo.push(Undo::RemovePackages {
            argv: manager.remove_argv(&installed),
        });
    }
    for path in [
        modules_load_path(name),
        format!("/usr/share/initramfs-tools/modules.d/{name}.conf"),
        format!("/etc/dracut.conf.d/{name}.conf"),
        unit_path(name),
        kernel_hook_path(name),
        config_path(name),
        session.config.key.clone(),
        apt_source_path(name),
        yum_repo_path(name),
        zypper_repo_path(name),
    ] {
        if host.path(&path).exists() {
            undo.push(Undo::RemoveFile { path });
        }
    }
    undo.push(Undo::RemoveDir {
        path: state_dir(name),
    });
    for kernel in kernels {
        if host.path(&format!("/lib/modules/{kernel}")).is_dir() {
            undo.push(Undo::Depmod {
                kernel: kernel.clone(),
            });
            if !session.config.initramfs.is_empty() {
                undo.push(Undo::Initramfs {
                    argv: match session.distro.kernel.initramfs {
                        kmodfarm_model::distro::InitramfsTool::InitramfsTools => {
                            vec!["update-initramfs".into(), "-u".into(), "-k".into(), kernel]
                        }
                        kmodfarm_model::distro::InitramfsTool::Dracut => {
                            vec!["dracut".into(), "-f".into(), "--kver".into(), kernel]
                        }
                    },
                });
            }
        }
    }
    Ok(undo)
}

pub fn execute(host: &dyn Host, undo: &[Undo]) -> Result<Vec<String>> {
    let mut report = Vec::new();
    for step in undo {
        match step {
            Undo::DisableUnit { unit } => {
                // Not fatal: systemd may not be running (containers, chroots).
                let _ = host.run(&["systemctl", "disable", unit]);
                report.push(format!("disabled {unit}"));
            }
            Undo::RemovePackages { argv } => {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                host.run_ok(&argv)?;
                report.push(format!("removed packages: {}", argv.join(" ")));
            }
            Undo::RemoveFile { path } => {
                let file = host.path(path);
                crate::state::remove_if_present(&file)?;
                report.push(format!("removed {path}"));
                // Directories kmodfarm-host or install.sh created for their
                // files go too, when nothing else is in them.
                let owned = [
                    "/etc/kmodfarm-host/",
                    "/etc/modules-load.d/",
                    "/lib/modules/",
                ];
                if owned.iter().any(|d| path.starts_with(d)) {
                    let mut dir = file.parent();
                    for _ in 0..2 {
                        match dir {
                            Some(d)
                                if d != host.path("/lib/modules")
                                    && std::fs::remove_dir(d).is_ok() =>
                            {
                                dir = d.parent()
                            }
                            _ => break,
                        }
                    }
                }
            }
            Undo::RemoveDir { path } => {
                let dir = host.path(path);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(Error::write(&dir))?;
                    report.push(format!("removed {path}"));
                }
            }
            Undo::Depmod { kernel } => {
                // The kernel may be gone already (its image purged, and with
                // our module removed nothing is left in its directory):
                // then there is no index to bring up to date.
                if host.path(&format!("/lib/modules/{kernel}")).is_dir() {
                    host.run_ok(&["depmod", "-a", kernel])?;
                }
            }
            Undo::Initramfs { argv } => {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                host.run_ok(&argv)?;
            }
        }
    }
    Ok(report)
}
