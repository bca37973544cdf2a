//! `.kmodfarm/state.json`: what the repository holds, so a publish reads
//! only what changed. Its presence is also what makes a directory a
//! kmodfarm repository, and `.kmodfarm/lock` serialises publishes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use kmodfarm_model::record::KernelStatus;
use kmodfarm_model::KernelRelease;
use serde::{Deserialize, Serialize};

use crate::apt::PoolPackage;
use crate::error::{PublishError, Result};
use crate::rpm_md::RpmPackage;

pub const STATE_DIR: &str = ".kmodfarm";
pub const STATE_FILE: &str = ".kmodfarm/state.json";
pub const LOCK_FILE: &str = ".kmodfarm/lock";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RepoState {
    pub format: u32,
    pub module: String,
    /// The serial of the published generation.
    pub serial: u64,
    pub debs: Vec<StoredDeb>,
    /// The .rpm files, with the metadata read from them once: an
    /// incremental publish makes `repodata/` from these records without
    /// opening the packages again.
    #[serde(default)]
    pub rpms: Vec<StoredRpm>,
    pub kernels: Vec<StoredKernel>,
    /// Every file the published generation consists of, relative to the
    /// repository root, with its size and SHA-256.
    pub files: BTreeMap<String, FileFact>,
    /// The previous generation's by-hash files: kept one more generation,
    /// so an apt that read the previous InRelease still finds its lists.
    #[serde(default)]
    pub retained: BTreeMap<String, FileFact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDeb {
    pub package: PoolPackage,
    pub codenames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRpm {
    pub package: RpmPackage,
    /// Target distros whose `rpm/<distro>/<arch>/` holds it.
    pub distros: Vec<String>,
}

impl StoredRpm {
    /// The file name, as in `Packages/<file name>`.
    pub fn file_name(&self) -> &str {
        self.package
            .href
            .rsplit_once('/')
            .map_or(self.package.href.as_str(), |(_, name)| name)
    }
}

/// What the repository says about one (distro, arch, kernel, module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKernel {
    pub distro: String,
    pub arch: String,
    pub kernel_release: KernelRelease,
    pub module: String,
    pub version: String,
    pub status: KernelStatus,
}

impl StoredKernel {
    pub fn key(&self) -> (String, String, KernelRelease) {
        (
            self.distro.clone(),
            self.arch.clone(),
            self.kernel_release.clone(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub size: u64,
    #[serde(with = "hex_digest")]
    pub sha256: [u8; 32],
}

mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

impl RepoState {
    pub fn empty(module: &str) -> RepoState {
        RepoState {
            format: FORMAT,
            module: module.to_string(),
            ..RepoState::default()
        }
    }

    /// The newest upstream version among the packages and prebuilt modules.
    pub fn newest_version(&self) -> Option<String> {
        self.versions().into_iter().next()
    }

    /// Every upstream version held, newest first.
    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .debs
            .iter()
            .map(|d| upstream(d.package.version()).to_string())
            .chain(self.rpms.iter().map(|r| r.package.version.clone()))
            .chain(self.kernels.iter().map(|k| k.version.clone()))
            .collect();
        v.sort_by(|a, b| crate::debversion::compare(b, a));
        v.dedup();
        v
    }
}

/// `1.0.0` of the Debian version `1.0.0-1` (epoch and revision dropped).
pub fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

/// What is at the repository path: nothing yet, an empty directory, or a
/// kmodfarm repository with its state. Anything else is refused.
pub fn open(repo: &Path, module: &str) -> Result<Option<RepoState>> {
    if !repo.exists() {
        return Ok(None);
    }
    let state_path = repo.join(STATE_FILE);
    if !state_path.is_file() {
        let mut entries = std::fs::read_dir(repo).map_err(PublishError::io("read", repo))?;
        // An empty directory, or one a killed first publish left with only
        // its lock, is a new repository.
        let only_lock = |e: &std::fs::DirEntry| e.file_name() == STATE_DIR;
        return match entries.next() {
            None => Ok(None),
            Some(Ok(e)) if only_lock(&e) && entries.next().is_none() => Ok(None),
            _ => Err(PublishError::NotARepo {
                path: repo.to_path_buf(),
            }),
        };
    }
    let bad = |message: String| PublishError::BadState {
        path: state_path.clone(),
        message,
    };
    let text =
        std::fs::read_to_string(&state_path).map_err(PublishError::io("read", &state_path))?;
    let state: RepoState = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if state.format != FORMAT {
        return Err(bad(format!(
            "format {} (this kmodfarm reads {FORMAT})",
            state.format
        )));
    }
    if state.module != module {
        return Err(bad(format!(
            "the repository holds module '{}', the manifest names '{module}'",
            state.module
        )));
    }
    Ok(Some(state))
}

/// An exclusive hold on `.kmodfarm/lock`, released when dropped (or when
/// the process dies, however it dies: the kernel drops flock locks).
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
    pub path: PathBuf,
}

impl RepoLock {
    /// Takes the lock, waiting for another publish when `wait`, else
    /// failing at once with [`PublishError::Locked`].
    pub fn acquire(repo: &Path, wait: bool) -> Result<RepoLock> {
        let path = repo.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(PublishError::io("open the lock", &path))?;
        if wait {
            file.lock().map_err(PublishError::io("lock", &path))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(PublishError::Locked { lock: path })
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(PublishError::io("lock", &path)(e))
                }
            }
        }
        Ok(RepoLock { _file: file, path })
    }
}
