//! A stand-in for `kmodfarm build`'s output directory (`records.json` and
//! the module files beside it), for tests that publish modules built some
//! other way: RHEL kernels cannot be built here, and the host tests build
//! theirs with DKMS in the shared root. The records are the model's own
//! types, so `kmodfarm publish` reads them as it reads a real build's.

use std::path::Path;

use kmodfarm_model::manifest::Compression;
use kmodfarm_model::record::{Artifact, BuildOutcome, BuildRecord, SymbolSource, SCHEMA_VERSION};
use kmodfarm_model::KernelRelease;
use sha2::{Digest, Sha256};

/// What the stand-in build did for one kernel.
pub enum StandInBuild<'a> {
    /// Built: this .ko.zst is the product (copied into place unless it is
    /// already there).
    Built(&'a Path),
    /// Failed, with this reason.
    Failed(&'a str),
}

/// Writes `out/records.json` for `module` at `version`, and each built
/// module as `out/<distro>/<arch>/<kernel>/<module>.ko.zst`.
pub fn write_build_output(
    out: &Path,
    module: &str,
    version: &str,
    distro: &str,
    arch: &str,
    kernels: &[(&KernelRelease, StandInBuild<'_>)],
) {
    let records: Vec<BuildRecord> = kernels
        .iter()
        .map(|(kernel, build)| {
            let outcome = match build {
                StandInBuild::Built(file) => {
                    let path = format!("{distro}/{arch}/{kernel}/{module}.ko.zst");
                    let to = out.join(&path);
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    if to.canonicalize().ok() != file.canonicalize().ok() {
                        std::fs::copy(file, &to).unwrap();
                    }
                    let bytes = std::fs::read(&to).unwrap();
                    BuildOutcome::Built {
                        artifact: Artifact {
                            path,
                            module: module.into(),
                            sha256: hex::encode(Sha256::digest(&bytes)),
                            size: bytes.len() as u64,
                            compression: Compression::Zst,
                            signed: false,
                            vermagic: format!("{kernel} SMP preempt mod_unload modversions"),
                            module_version: version.to_string(),
                        },
                    }
                }
                StandInBuild::Failed(reason) => BuildOutcome::Failed {
                    reason: reason.to_string(),
                    log_tail: Vec::new(),
                },
            };
            BuildRecord {
                schema_version: SCHEMA_VERSION,
                module: module.into(),
                version: version.into(),
                distro: distro.into(),
                arch: arch.into(),
                kernel_release: (*kernel).clone(),
                outcome,
                inputs: Vec::new(),
                symbol_source: SymbolSource::NotNeeded,
                compiler: None,
                toolchain_image: None,
                cache_key: "stand-in".into(),
                duration_ms: 0,
                log: None,
                boot_test: None,
            }
        })
        .collect();
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("records.json"),
        serde_json::to_vec_pretty(&records).unwrap(),
    )
    .unwrap();
}
