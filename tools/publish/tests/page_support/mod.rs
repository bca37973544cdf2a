//! A published index and build records covering every status the page
//! shows, and the page options for kmodfarm's built-in distros.

#![allow(dead_code)]

use kmodfarm_model::record::*;
use kmodfarm_model::{Compression, DistroSet, KernelRelease};
use kmodfarm_publish::page::{PageDistro, PageOptions};

pub fn k(release: &str) -> KernelRelease {
    KernelRelease::parse(release).unwrap()
}

fn entry(distro: &str, arch: &str, kernel: &str, deb: bool) -> IndexEntry {
    let (package, path) = if deb {
        let p = format!("kmfdemo-modules-{kernel}");
        let f = format!("deb/pool/main/k/kmfdemo/{p}_1.0.0-1_{arch}.deb");
        (p, f)
    } else {
        let p = format!("kmod-kmfdemo-{kernel}");
        let f = format!("rpm/{distro}/{arch}/Packages/{p}-1.0.0-1.{arch}.rpm");
        (p, f)
    };
    IndexEntry {
        module: "kmfdemo".into(),
        version: "1.0.0".into(),
        distro: distro.into(),
        arch: arch.into(),
        kernel_release: k(kernel),
        path: format!("prebuilt/{distro}/{arch}/{kernel}/kmfdemo.ko.zst"),
        sha256: "ab".repeat(32),
        size: 18_432,
        compression: Compression::Zst,
        signed: true,
        vermagic: format!("{kernel} SMP preempt mod_unload modversions"),
        prebuilt_package: package,
        package_path: path,
        package_sha256: "cd".repeat(32),
        dkms_package: "kmfdemo-dkms".into(),
    }
}

fn dkms(distro: &str, deb: bool) -> DkmsRoute {
    DkmsRoute {
        distro: distro.into(),
        package: "kmfdemo-dkms".into(),
        version: "1.0.0-1".into(),
        package_path: if deb {
            "deb/pool/main/k/kmfdemo/kmfdemo-dkms_1.0.0-1_all.deb".into()
        } else {
            format!("rpm/{distro}/x86_64/Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm")
        },
        sha256: "ef".repeat(32),
    }
}

const FRESHNESS: Freshness = Freshness {
    generated: 1_700_000_000,
    expires: Some(1_702_592_000),
    serial: 7,
};

fn lookup(distro: &str, arch: &str, kernel: &str, status: KernelStatus, deb: bool) -> KernelLookup {
    KernelLookup {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        distro: distro.into(),
        arch: arch.into(),
        kernel_release: k(kernel),
        freshness: FRESHNESS,
        status,
        dkms: Some(dkms(distro, deb)),
    }
}

pub fn index() -> Index {
    Index {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        version: "1.0.0".into(),
        freshness: FRESHNESS,
        entries: vec![
            entry("debian-12", "amd64", "6.1.0-57-amd64", true),
            entry("debian-12", "amd64", "6.1.0-56-amd64", true),
            entry("debian-13", "amd64", "6.12.57+deb13-amd64", true),
            entry("rhel-9", "x86_64", "5.14.0-503.40.1.el9_5.x86_64", false),
            entry("rhel-9", "x86_64", "5.14.0-570.12.1.el9_6.x86_64", false),
        ],
        without_prebuilt: vec![
            lookup(
                "debian-12",
                "amd64",
                "6.12.48+deb12-amd64",
                KernelStatus::Failed {
                    reason: "modpost: \"blk_alloc_disk\" [kmfdemo.ko] undefined! <see log>".into(),
                },
                true,
            ),
            lookup(
                "rhel-8",
                "x86_64",
                "4.18.0-553.el8_10.x86_64",
                KernelStatus::OutOfRange {
                    reason: "4.18 is below the manifest's minimum 5.15".into(),
                },
                false,
            ),
        ],
        dkms: vec![
            dkms("debian-12", true),
            dkms("debian-13", true),
            dkms("rhel-8", false),
            dkms("rhel-9", false),
            dkms("ubuntu-24.04", true),
        ],
    }
}

fn record(distro: &str, arch: &str, kernel: &str, outcome: BuildOutcome) -> BuildRecord {
    BuildRecord {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        version: "1.0.0".into(),
        distro: distro.into(),
        arch: arch.into(),
        kernel_release: k(kernel),
        outcome,
        inputs: vec![],
        symbol_source: SymbolSource::NotNeeded,
        compiler: Some("gcc-12".into()),
        toolchain_image: None,
        cache_key: "0".repeat(16),
        duration_ms: 4_200,
        log: None,
        boot_test: None,
    }
}

/// What the builds said: the failure's log tail, and an Ubuntu kernel the
/// build skipped (its headers are not reachable here), left to DKMS.
pub fn records() -> Vec<BuildRecord> {
    vec![
        record(
            "debian-12",
            "amd64",
            "6.12.48+deb12-amd64",
            BuildOutcome::Failed {
                reason: "make exited with status 2".into(),
                log_tail: vec![
                    "ERROR: modpost: \"blk_alloc_disk\" [kmfdemo.ko] undefined!".into(),
                    "make[2]: *** [scripts/Makefile.modpost:145: Module.symvers] Error 1".into(),
                ],
            },
        ),
        record(
            "ubuntu-24.04",
            "amd64",
            "6.8.0-62-generic",
            BuildOutcome::Skipped {
                reason: "no headers package for this kernel in the reachable archives".into(),
            },
        ),
    ]
}

pub fn options() -> PageOptions {
    PageOptions {
        distros: DistroSet::builtin()
            .iter()
            .map(PageDistro::from_distro)
            .collect(),
        repo_url: None,
        key_name: "kmfdemo".into(),
    }
}

/// (distro, arch, kernel, status) of every kernel row of a page.
pub fn rows(html: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for tr in html.split("<tr ").skip(1) {
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tr.split_once(&key)
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(v, _)| v.to_string())
        };
        if let (Some(d), Some(a), Some(kernel), Some(s)) = (
            attr("data-distro"),
            attr("data-arch"),
            attr("data-kernel"),
            attr("data-status"),
        ) {
            out.push((d, a, kernel, s));
        }
    }
    out
}

/// The rows index.json says the page must have.
pub fn rows_of_index(index: &Index) -> Vec<(String, String, String, String)> {
    let mut want: Vec<_> = index
        .entries
        .iter()
        .map(|e| {
            (
                e.distro.clone(),
                e.arch.clone(),
                e.kernel_release.to_string(),
                "prebuilt".to_string(),
            )
        })
        .chain(index.without_prebuilt.iter().map(|l| {
            let status = match l.status {
                KernelStatus::Prebuilt { .. } => "prebuilt",
                KernelStatus::Failed { .. } => "failed",
                KernelStatus::OutOfRange { .. } => "out-of-range",
            };
            (
                l.distro.clone(),
                l.arch.clone(),
                l.kernel_release.to_string(),
                status.to_string(),
            )
        }))
        .collect();
    want.sort();
    want
}
