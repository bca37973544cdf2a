//! The prebuilt index the installer reads: `index.json` (every prebuilt
//! module, the kernels without one, the DKMS package per distro) and one
//! `prebuilt/<distro>/<arch>/<kernel>.json` per kernel, each signed beside
//! it as `.asc`. The types are the contract in `kmodfarm_model::record`.

use kmodfarm_model::record::{
    kernel_lookup_path, DkmsRoute, Freshness, Index, IndexEntry, KernelLookup, KernelStatus,
    SCHEMA_VERSION,
};
use kmodfarm_model::KernelRelease;

use crate::state::{RepoState, StoredKernel};

/// The DKMS route of each target distro that has a -dkms package in the
/// repository: the newest one in the distro's apt codename or yum
/// repository.
pub fn dkms_routes(state: &RepoState, targets: &crate::inputs::Targets) -> Vec<DkmsRoute> {
    let name = kmodfarm_model::record::dkms_package_name(&targets.module);
    let mut routes = Vec::new();
    for t in &targets.deb {
        let newest = state
            .debs
            .iter()
            .filter(|d| d.name == name && d.codenames.contains(&t.codename))
            .max_by(|a, b| crate::debversion::compare(&a.version, &b.version));
        if let Some(d) = newest {
            routes.push(DkmsRoute {
                distro: t.distro.clone(),
                package: name.clone(),
                version: crate::state::upstream(&d.version).to_string(),
                package_path: format!("deb/{}", d.filename),
                sha256: d.sha256.clone(),
            });
        }
    }
    for t in &targets.rpm {
        let evr = |r: &crate::state::StoredRpm| format!("{}:{}-{}", r.epoch, r.version, r.release);
        // Debian's ordering is close enough to rpm's for the versions
        // kmodfarm writes (digits, dots, one release number).
        let newest = state
            .rpms
            .iter()
            .filter(|r| r.name == name && r.distros.contains(&t.distro))
            .max_by(|a, b| crate::debversion::compare(&evr(a), &evr(b)));
        if let Some(r) = newest {
            routes.push(DkmsRoute {
                distro: t.distro.clone(),
                package: name.clone(),
                version: r.version.clone(),
                package_path: format!("{}/{}", t.dir(), r.href),
                sha256: r.sha256.clone(),
            });
        }
    }
    routes
}

/// One lookup file per (distro, arch, kernel). A package may carry several
/// modules: the kernel is prebuilt only when every one of them is, and a
/// failure of any one is the kernel's answer (a host must never be told
/// "prebuilt" and get part of the product).
pub fn lookups(
    state: &RepoState,
    routes: &[DkmsRoute],
    freshness: &Freshness,
) -> Vec<(String, KernelLookup)> {
    let mut kernels: Vec<&StoredKernel> = state.kernels.iter().collect();
    kernels.sort_by(|a, b| a.key().cmp(&b.key()).then(a.module.cmp(&b.module)));
    let mut out: Vec<(String, KernelLookup)> = Vec::new();
    for group in kernels.chunk_by(|a, b| a.key() == b.key()) {
        let k = group[0];
        out.push((
            kernel_lookup_path(&k.distro, &k.arch, &k.kernel_release),
            KernelLookup {
                schema_version: SCHEMA_VERSION,
                module: state.module.clone(),
                distro: k.distro.clone(),
                arch: k.arch.clone(),
                kernel_release: k.kernel_release.clone(),
                freshness: freshness.clone(),
                status: kernel_status(group),
                dkms: routes.iter().find(|r| r.distro == k.distro).cloned(),
            },
        ));
    }
    out
}

/// The answer for one kernel from its modules' statuses: a failure first,
/// then out of range, else prebuilt (the first module's entry; the package
/// route installs them all).
fn kernel_status(modules: &[&StoredKernel]) -> KernelStatus {
    let named = |k: &StoredKernel, reason: &str| {
        if modules.len() > 1 {
            format!("{}: {reason}", k.module)
        } else {
            reason.to_string()
        }
    };
    let failed: Vec<String> = modules
        .iter()
        .filter_map(|k| match &k.status {
            KernelStatus::Failed { reason } => Some(named(k, reason)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return KernelStatus::Failed {
            reason: failed.join("; "),
        };
    }
    if let Some(k) = modules
        .iter()
        .find(|k| matches!(k.status, KernelStatus::OutOfRange { .. }))
    {
        return k.status.clone();
    }
    modules[0].status.clone()
}

/// `index.json`: every prebuilt entry, the kernels without one, and the
/// DKMS routes.
pub fn index(
    state: &RepoState,
    routes: Vec<DkmsRoute>,
    lookups: &[(String, KernelLookup)],
    freshness: &Freshness,
) -> Index {
    let mut entries: Vec<IndexEntry> = state
        .kernels
        .iter()
        .filter_map(|k| match &k.status {
            KernelStatus::Prebuilt { entry } => Some(entry.clone()),
            _ => None,
        })
        .collect();
    entries.sort_by(|a, b| {
        (&a.distro, &a.arch, &a.kernel_release, &a.module).cmp(&(
            &b.distro,
            &b.arch,
            &b.kernel_release,
            &b.module,
        ))
    });
    let without_prebuilt = lookups
        .iter()
        .filter(|(_, l)| !matches!(l.status, KernelStatus::Prebuilt { .. }))
        .map(|(_, l)| l.clone())
        .collect();
    Index {
        schema_version: SCHEMA_VERSION,
        module: state.module.clone(),
        version: state.newest_version().unwrap_or_default(),
        freshness: freshness.clone(),
        entries,
        without_prebuilt,
        dkms: routes,
    }
}

/// Where a prebuilt module file is stored. The version is part of the
/// name so a file, once published, never changes under a reader who is
/// holding an older index.
pub fn prebuilt_file_path(
    distro: &str,
    arch: &str,
    kernel: &KernelRelease,
    module: &str,
    version: &str,
    extension: &str,
) -> String {
    format!("prebuilt/{distro}/{arch}/{kernel}/{module}-{version}.{extension}")
}
