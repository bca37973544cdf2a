//! What to build: each matrix entry becomes a job or a skip (with the
//! reason), a shard keeps its share, and each job knows its toolchain and
//! where its artifact goes. Pure: no files, no processes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use kmodfarm_model::record::MatrixEntry;
use kmodfarm_model::{Compression, Distro, DistroSet, KernelRelease, Manifest};

use crate::error::{BuildError, Result};

/// Shard `index` of `count` (both from 1): `--shard 2/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = BuildError;
    fn from_str(text: &str) -> Result<Shard> {
        let bad = || BuildError::BadShard {
            text: text.to_string(),
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The entries of this shard: the matrix sorted by key, every
    /// `count`-th from position `index - 1`. Any machine given the same
    /// matrix picks the same entries, shards never overlap, and together
    /// they cover it; sizes differ by at most one.
    pub fn select(&self, entries: &[MatrixEntry]) -> Vec<MatrixEntry> {
        let mut sorted: Vec<&MatrixEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.key());
        sorted.dedup_by_key(|e| e.key());
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// One kernel to build for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub entry: MatrixEntry,
    /// The distro's compiler package (gcc-12 for Debian 12, gcc-14 for 13).
    pub compiler: String,
    /// OCI image reference of the distro's toolchain (for docker/podman users).
    pub toolchain_image: String,
    pub compression: Compression,
    /// Kernel modules to produce, with their artifact paths relative to the output.
    pub products: Vec<Product>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub module: String,
    /// Where kbuild leaves `<module>.ko`, relative to the source tree.
    pub location: String,
    /// `<distro>/<arch>/<kernel>/<module><ext>`.
    pub artifact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub entry: MatrixEntry,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub package: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub jobs: Vec<Job>,
    pub skips: Vec<Skip>,
}

/// The distro named `id`, or an error listing the known ones.
pub fn find_distro<'a>(set: &'a DistroSet, id: &str) -> Result<&'a Distro> {
    set.get(id).ok_or_else(|| BuildError::UnknownDistro {
        id: id.to_string(),
        known: set.ids().collect::<Vec<_>>().join(", "),
    })
}

/// Matrix entries for `--kernel [DISTRO:]RELEASE` arguments; a release
/// without a distro takes `default_distro`. apt resolves what the headers
/// package depends on when the root installs it.
pub fn entries_from_kernels(
    set: &DistroSet,
    default_distro: Option<&str>,
    kernels: &[String],
) -> Result<Vec<MatrixEntry>> {
    kernels
        .iter()
        .map(|arg| {
            let (distro_id, release) = match arg.split_once(':') {
                Some((d, k)) => (d, k),
                None => (
                    default_distro.ok_or_else(|| {
                        BuildError::Other(format!(
                            "--kernel {arg}: say which distro it is for: --kernel DISTRO:{arg}, or one --distro"
                        ))
                    })?,
                    arg.as_str(),
                ),
            };
            let distro = find_distro(set, distro_id)?;
            let kernel_release = KernelRelease::parse(release)
                .map_err(|e| BuildError::Other(format!("--kernel {arg}: {e}")))?;
            Ok(MatrixEntry {
                distro: distro.id.clone(),
                arch: distro.arch.clone(),
                packages: vec![distro.headers_package(&kernel_release)],
                flavour: kernel_release.flavour.clone(),
                kernel_release,
                system_map_package: None,
            })
        })
        .collect()
}

/// Jobs and skips for `entries` (after `shard` picks its part). An entry
/// for an unknown distro is an error: the whole matrix is checked first.
pub fn plan(
    manifest: &Manifest,
    set: &DistroSet,
    entries: &[MatrixEntry],
    shard: Option<Shard>,
) -> Result<BuildPlan> {
    for entry in entries {
        find_distro(set, &entry.distro)?;
    }
    let chosen = match shard {
        Some(shard) => shard.select(entries),
        None => {
            let mut all = entries.to_vec();
            all.sort_by_key(MatrixEntry::key);
            all.dedup_by_key(|e| e.key());
            all
        }
    };
    let mut jobs = Vec::new();
    let mut skips = Vec::new();
    for entry in chosen {
        let distro = find_distro(set, &entry.distro)?;
        if let Some(reason) = manifest.kernels.exclusion_reason(&entry.kernel_release) {
            skips.push(Skip { entry, reason });
            continue;
        }
        let compression = distro.compression(manifest.build.compression);
        let products = manifest
            .modules
            .iter()
            .map(|m| Product {
                module: m.name.clone(),
                location: m.location.clone(),
                artifact: format!("{}/{}{}", entry.key(), m.name, compression.extension()),
            })
            .collect();
        jobs.push(Job {
            compiler: distro.toolchain.compiler.clone(),
            toolchain_image: distro.toolchain.image.clone(),
            compression,
            products,
            entry,
        });
    }
    Ok(BuildPlan {
        package: manifest.package.name.clone(),
        version: manifest.package.version.clone(),
        shard,
        jobs,
        skips,
    })
}

/// Everything that decides what a build produces, hashed: the source tree,
/// the manifest's build section, modules and version, the kernel and the
/// exact versions of its header packages, and the root it compiles in.
#[derive(Debug, Clone, Serialize)]
pub struct CacheInputs<'a> {
    pub source_digest: &'a str,
    pub manifest_build: String,
    pub kernel: &'a str,
    /// `name=version` of every package unpacked for the kernel.
    pub header_packages: &'a [String],
    pub root_id: &'a str,
}

impl CacheInputs<'_> {
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("cache inputs serialize");
        hex::encode(Sha256::digest(json))
    }
}

/// The parts of the manifest a build depends on, as stable text.
pub fn manifest_build_section(manifest: &Manifest) -> String {
    serde_json::json!({
        "version": manifest.package.version,
        "modules": manifest.modules,
        "build": manifest.build,
        "signing": manifest.signing,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest(range: &str) -> Manifest {
        let text = format!(
            r#"
[package]
name = "hello"
version = "1.2"
license = "GPL-2.0-only"
summary = "s"
description = "d"
maintainer = "A <a@b>"
[[module]]
name = "hello"
[kernels]
{range}
"#
        );
        Manifest::parse(Path::new("kmodfarm.toml"), &text).unwrap()
    }

    fn entries(releases: &[(&str, &str)]) -> Vec<MatrixEntry> {
        let set = DistroSet::builtin();
        let args: Vec<String> = releases.iter().map(|(d, k)| format!("{d}:{k}")).collect();
        entries_from_kernels(&set, None, &args).unwrap()
    }

    fn sample() -> Vec<MatrixEntry> {
        entries(&[
            ("debian-12", "6.1.0-40-amd64"),
            ("debian-12", "6.1.0-41-amd64"),
            ("debian-12", "6.12.48+deb12-amd64"),
            ("debian-12", "6.12.57+deb12-cloud-amd64"),
            ("debian-13", "6.12.57+deb13-amd64"),
            ("debian-13", "6.12.48+deb13-amd64"),
            ("debian-12", "5.10.0-35-amd64"),
        ])
    }

    #[test]
    fn kernels_outside_the_range_are_skipped_with_the_reason() {
        let plan = plan(
            &manifest("min = \"6.1\"\nmax = \"6.12\""),
            &DistroSet::builtin(),
            &sample(),
            None,
        )
        .unwrap();
        assert_eq!(plan.jobs.len(), 6);
        assert_eq!(plan.skips.len(), 1);
        assert_eq!(
            plan.skips[0].entry.kernel_release.as_str(),
            "5.10.0-35-amd64"
        );
        assert!(
            plan.skips[0]
                .reason
                .contains("outside the supported range 6.1 to 6.12"),
            "{}",
            plan.skips[0].reason
        );
    }

    #[test]
    fn each_job_uses_its_distros_compiler_and_names_its_artifact() {
        let plan = plan(&manifest(""), &DistroSet::builtin(), &sample(), None).unwrap();
        let job = |k: &str| {
            plan.jobs
                .iter()
                .find(|j| j.entry.kernel_release.as_str() == k)
                .unwrap()
        };
        assert_eq!(job("6.12.57+deb13-amd64").compiler, "gcc-14");
        assert_eq!(job("6.12.57+deb12-cloud-amd64").compiler, "gcc-12");
        assert_eq!(
            job("6.1.0-41-amd64").products[0].artifact,
            "debian-12/amd64/6.1.0-41-amd64/hello.ko.zst"
        );
        assert_eq!(
            job("6.1.0-41-amd64").entry.packages,
            ["linux-headers-6.1.0-41-amd64"]
        );
    }

    #[test]
    fn shards_partition_the_matrix_whatever_its_order() {
        let all = sample();
        let mut reversed = all.clone();
        reversed.reverse();
        for count in 1..=8 {
            let mut seen: Vec<String> = Vec::new();
            for index in 1..=count {
                let shard = Shard { index, count };
                let keys: Vec<String> = shard.select(&all).iter().map(MatrixEntry::key).collect();
                let again: Vec<String> = shard
                    .select(&reversed)
                    .iter()
                    .map(MatrixEntry::key)
                    .collect();
                assert_eq!(keys, again, "shard {shard} depends on input order");
                assert!(keys.len() <= all.len().div_ceil(count));
                seen.extend(keys);
            }
            seen.sort();
            let mut expected: Vec<String> = all.iter().map(MatrixEntry::key).collect();
            expected.sort();
            assert_eq!(
                seen, expected,
                "{count} shards do not cover the matrix exactly once"
            );
        }
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains("I/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_distros_are_named_with_the_known_ones() {
        let set = DistroSet::builtin();
        let err =
            entries_from_kernels(&set, None, &["debian-99:6.1.0-1-amd64".into()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown distro 'debian-99'") && text.contains("debian-12"),
            "{text}"
        );
        let err = entries_from_kernels(&set, None, &["6.1.0-1-amd64".into()]).unwrap_err();
        assert!(
            err.to_string().contains("--kernel DISTRO:6.1.0-1-amd64"),
            "{err}"
        );
    }

    #[test]
    fn the_cache_key_changes_with_every_input() {
        let pkgs = vec!["linux-headers-6.1.0-41-amd64=6.1.158-1".to_string()];
        let base = CacheInputs {
            source_digest: "s",
            manifest_build: "m".into(),
            kernel: "k",
            header_packages: &pkgs,
            root_id: "r",
        };
        let other_pkgs = vec!["linux-headers-6.1.0-41-amd64=6.1.158-2".to_string()];
        let variants = [
            CacheInputs {
                source_digest: "t",
                ..base.clone()
            },
            CacheInputs {
                manifest_build: "n".into(),
                ..base.clone()
            },
            CacheInputs {
                kernel: "l",
                ..base.clone()
            },
            CacheInputs {
                header_packages: &other_pkgs,
                ..base.clone()
            },
            CacheInputs {
                root_id: "q",
                ..base.clone()
            },
        ];
        for v in &variants {
            assert_ne!(v.key(), base.key(), "{v:?}");
        }
        assert_eq!(base.key(), base.clone().key());
    }
}
