//! `.kmodfarm/state.json`: what the repository holds, so a publish reads
//! only what changed. Its presence is also what makes a directory a
//! kmodfarm repository, and `.kmodfarm/lock` serialises publishes.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
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
pub const RECORDS_DIR: &str = ".kmodfarm/records";
pub const CHUNKS_DIR: &str = ".kmodfarm/chunks";
/// Marks a publish under way: a publish that finds it sweeps what a killed
/// one left.
pub const PUBLISHING_MARK: &str = ".kmodfarm/publishing";
/// 2: the package records moved out of the state into record files, and
/// the pool's files are derived rather than listed.
const FORMAT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RepoState {
    pub format: u32,
    pub module: String,
    /// The serial of the published generation.
    pub serial: u64,
    /// The .deb files: what a publish decides with. Their whole control
    /// paragraphs are in the record files ([`RepoState::records`]).
    pub debs: Vec<StoredDeb>,
    /// The .rpm files; their header metadata, read once, is in the record
    /// files, so an incremental publish makes `repodata/` without opening
    /// the packages again.
    pub rpms: Vec<StoredRpm>,
    pub kernels: Vec<StoredKernel>,
    /// The files the publish wrote (lists, signatures, index, page, keys),
    /// relative to the repository root, with size and SHA-256. The
    /// packages' and prebuilt modules' own files are not listed: they are
    /// most of a repository, and [`RepoState::package_files`] derives them
    /// from the records above.
    pub files: BTreeMap<String, FileFact>,
    /// The yum directories (`rpm/<distro>/<arch>`) → their distro: where
    /// each .rpm of [`RepoState::rpms`] lies.
    #[serde(default)]
    pub yum_dirs: BTreeMap<String, String>,
    /// The previous generation's by-hash files: kept one more generation,
    /// so an apt that read the previous InRelease still finds its lists.
    #[serde(default)]
    pub retained: BTreeMap<String, FileFact>,
    /// The packages' full records, one file per bucket
    /// (`.kmodfarm/records/<key>.json`): bucket name (`deb-07`) → key.
    #[serde(default)]
    pub records: BTreeMap<String, String>,
    /// The list buckets kept for the next publish (`.kmodfarm/chunks/<key>`).
    #[serde(default)]
    pub chunks: BTreeSet<String>,
    /// The .rpm files this repository signed: file name → size and SHA-256
    /// of the unsigned input its pool file was signed from ([`RepoState::rpms`]
    /// has the pool file's). A later publish of the same input finds it
    /// here and neither signs nor copies it again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signed_rpms: BTreeMap<String, FileFact>,
    /// The records of a format-1 state, read from it: not yet in record
    /// files.
    #[serde(skip)]
    pub migrated: Migrated,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Migrated {
    pub debs: Vec<PoolPackage>,
    pub rpms: Vec<RpmPackage>,
}

/// A .deb the repository holds, as far as a publish decides with it.
/// Stored as an array, `[name, version, arch, filename, size, sha256,
/// codenames]`: a state holds thousands, and reading it is most of what
/// an incremental publish spends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "DebRow")]
pub struct StoredDeb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Relative to `deb/`, as in [`PoolPackage::filename`].
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub codenames: Vec<String>,
}

impl StoredDeb {
    pub fn of(package: &PoolPackage, codenames: Vec<String>) -> StoredDeb {
        StoredDeb {
            name: package.name().to_string(),
            version: package.version().to_string(),
            arch: package.arch().to_string(),
            filename: package.filename.clone(),
            size: package.size,
            sha256: package.sha256.clone(),
            codenames,
        }
    }
}

/// An .rpm the repository holds, as far as a publish decides with it.
/// Stored as an array, as [`StoredDeb`]: `[name, epoch, version, release,
/// arch, href, size, sha256, file_time, distros]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RpmRow")]
pub struct StoredRpm {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// As in [`RpmPackage::href`]: `Packages/<file name>`.
    pub href: String,
    pub size: u64,
    pub sha256: String,
    /// The file time primary.xml gives (before clamping).
    pub file_time: u64,
    /// Target distros whose `rpm/<distro>/<arch>/` holds it.
    pub distros: Vec<String>,
}

impl StoredRpm {
    pub fn of(package: &RpmPackage, distros: Vec<String>) -> StoredRpm {
        StoredRpm {
            name: package.name.clone(),
            epoch: package.epoch,
            version: package.version.clone(),
            release: package.release.clone(),
            arch: package.arch.clone(),
            href: package.href.clone(),
            size: package.size,
            sha256: package.sha256.clone(),
            file_time: package.file_time,
            distros,
        }
    }

    /// The file name, as in `Packages/<file name>`.
    pub fn file_name(&self) -> &str {
        self.href
            .rsplit_once('/')
            .map_or(self.href.as_str(), |(_, name)| name)
    }
}

type DebRow = (String, String, String, String, u64, String, Vec<String>);

impl From<DebRow> for StoredDeb {
    fn from(row: DebRow) -> StoredDeb {
        let (name, version, arch, filename, size, sha256, codenames) = row;
        StoredDeb {
            name,
            version,
            arch,
            filename,
            size,
            sha256,
            codenames,
        }
    }
}

impl Serialize for StoredDeb {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let d = self;
        (
            &d.name,
            &d.version,
            &d.arch,
            &d.filename,
            d.size,
            &d.sha256,
            &d.codenames,
        )
            .serialize(s)
    }
}

type RpmRow = (
    String,
    u32,
    String,
    String,
    String,
    String,
    u64,
    String,
    u64,
    Vec<String>,
);

impl From<RpmRow> for StoredRpm {
    fn from(row: RpmRow) -> StoredRpm {
        let (name, epoch, version, release, arch, href, size, sha256, file_time, distros) = row;
        StoredRpm {
            name,
            epoch,
            version,
            release,
            arch,
            href,
            size,
            sha256,
            file_time,
            distros,
        }
    }
}

impl Serialize for StoredRpm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = self;
        (
            &r.name,
            r.epoch,
            &r.version,
            &r.release,
            &r.arch,
            &r.href,
            r.size,
            &r.sha256,
            r.file_time,
            &r.distros,
        )
            .serialize(s)
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

    /// The pool's files: every .deb, every .rpm in each of its yum
    /// directories, every prebuilt module.
    pub fn package_files(&self) -> impl Iterator<Item = (String, FileFact)> + '_ {
        let fact = |size: u64, sha256: &str| FileFact {
            size,
            sha256: digest_bytes(sha256),
        };
        let debs = self
            .debs
            .iter()
            .map(move |d| (format!("deb/{}", d.filename), fact(d.size, &d.sha256)));
        let rpms = self.rpms.iter().flat_map(move |r| {
            self.yum_dirs
                .iter()
                .filter(|(_, distro)| r.distros.contains(distro))
                .map(move |(dir, _)| {
                    (
                        format!("{dir}/Packages/{}", r.file_name()),
                        fact(r.size, &r.sha256),
                    )
                })
        });
        let prebuilt = self.kernels.iter().filter_map(move |k| match &k.status {
            KernelStatus::Prebuilt { entry } => {
                Some((entry.path.clone(), fact(entry.size, &entry.sha256)))
            }
            _ => None,
        });
        debs.chain(rpms).chain(prebuilt)
    }

    /// Every file of the generation: the written ones and the pool's.
    pub fn all_files(&self) -> FxHashMap<String, FileFact> {
        let mut all: FxHashMap<String, FileFact> =
            self.files.iter().map(|(p, f)| (p.clone(), *f)).collect();
        all.extend(self.package_files());
        all
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
            .map(|d| upstream(&d.version).to_string())
            .chain(self.rpms.iter().map(|r| r.version.clone()))
            .chain(self.kernels.iter().map(|k| k.version.clone()))
            .collect();
        v.sort_by(|a, b| crate::debversion::compare(b, a));
        v.dedup();
        v
    }
}

/// The 32 bytes of a hex SHA-256 (zeros for a malformed one, which then
/// matches no file).
pub(crate) fn digest_bytes(hex_digest: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let _ = hex::decode_to_slice(hex_digest, &mut out);
    out
}

/// Whether a state holds a file, asked of every file of the previous
/// generation without listing the new one's tens of thousands of paths.
pub struct Holds<'a> {
    state: &'a RepoState,
    debs: FxHashSet<&'a str>,
    rpms: FxHashMap<&'a str, &'a StoredRpm>,
    prebuilt: FxHashSet<&'a str>,
}

impl<'a> Holds<'a> {
    pub fn of(state: &'a RepoState) -> Holds<'a> {
        Holds {
            state,
            debs: state.debs.iter().map(|d| d.filename.as_str()).collect(),
            rpms: state.rpms.iter().map(|r| (r.file_name(), r)).collect(),
            prebuilt: state
                .kernels
                .iter()
                .filter_map(|k| match &k.status {
                    KernelStatus::Prebuilt { entry } => Some(entry.path.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// As `state.all_files().contains_key(path)`.
    pub fn file(&self, path: &str) -> bool {
        if self.state.files.contains_key(path) || self.prebuilt.contains(path) {
            return true;
        }
        if let Some(filename) = path.strip_prefix("deb/") {
            return self.debs.contains(filename);
        }
        let Some((dir, file)) = path.split_once("/Packages/") else {
            return false;
        };
        let (Some(distro), Some(rpm)) = (self.state.yum_dirs.get(dir), self.rpms.get(file)) else {
            return false;
        };
        rpm.distros.contains(distro)
    }
}

/// `1.0.0` of the Debian version `1.0.0-1` (epoch and revision dropped).
pub fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

/// Whether `repo` is nothing yet (false), an empty directory (false) or a
/// kmodfarm repository (true), without reading its state; anything else is
/// refused.
pub fn probe(repo: &Path) -> Result<bool> {
    if !repo.exists() {
        return Ok(false);
    }
    if !repo.join(STATE_FILE).is_file() {
        let mut entries = std::fs::read_dir(repo).map_err(PublishError::io("read", repo))?;
        // An empty directory, or one a killed first publish left with only
        // its lock, is a new repository.
        let only_lock = |e: &std::fs::DirEntry| e.file_name() == STATE_DIR;
        return match entries.next() {
            None => Ok(false),
            Some(Ok(e)) if only_lock(&e) && entries.next().is_none() => Ok(false),
            _ => Err(PublishError::NotARepo {
                path: repo.to_path_buf(),
            }),
        };
    }
    Ok(true)
}

/// What is at the repository path: nothing yet, an empty directory, or a
/// kmodfarm repository with its state. Anything else is refused.
pub fn open(repo: &Path, module: &str) -> Result<Option<RepoState>> {
    if !probe(repo)? {
        return Ok(None);
    }
    let state_path = repo.join(STATE_FILE);
    let bad = |message: String| PublishError::BadState {
        path: state_path.clone(),
        message,
    };
    let text =
        std::fs::read_to_string(&state_path).map_err(PublishError::io("read", &state_path))?;
    let state = match serde_json::from_str::<RepoState>(&text) {
        Ok(state) => state,
        Err(e) => match serde_json::from_str::<FormatOnly>(&text) {
            Ok(FormatOnly { format: 1 }) => serde_json::from_str::<StateV1>(&text)
                .map_err(|e| bad(e.to_string()))?
                .migrate(),
            Ok(FormatOnly { format }) if format != FORMAT => RepoState {
                format,
                ..RepoState::default()
            },
            _ => return Err(bad(e.to_string())),
        },
    };
    if state.format != FORMAT {
        return Err(bad(format!(
            "format {} (this kmodfarm reads {FORMAT}); publish into a new repository folder, or with the kmodfarm that made this one",
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

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// Format 1 (kmodfarm 0.1's first publishes) kept every package's whole
/// record in the state and listed the pool's files. Read, it becomes a
/// format-2 state whose records are [`RepoState::migrated`]: the next
/// publish writes them out (and makes every list afresh, once).
#[derive(Deserialize)]
struct StateV1 {
    module: String,
    serial: u64,
    debs: Vec<DebV1>,
    rpms: Vec<RpmV1>,
    kernels: Vec<StoredKernel>,
    files: BTreeMap<String, FileFact>,
    #[serde(default)]
    retained: BTreeMap<String, FileFact>,
}

#[derive(Deserialize)]
struct DebV1 {
    package: PoolPackage,
    codenames: Vec<String>,
}

#[derive(Deserialize)]
struct RpmV1 {
    package: RpmPackage,
    distros: Vec<String>,
}

impl StateV1 {
    fn migrate(self) -> RepoState {
        // Where the .rpm files lay: `rpm/<distro>/<arch>/Packages/<file>`.
        let yum_dirs = self
            .files
            .keys()
            .filter_map(|path| {
                let (dir, _) = path.split_once("/Packages/")?;
                let mut parts = dir.split('/');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("rpm"), Some(distro), Some(_arch), None) => {
                        Some((dir.to_string(), distro.to_string()))
                    }
                    _ => None,
                }
            })
            .collect();
        let mut state = RepoState {
            format: FORMAT,
            module: self.module,
            serial: self.serial,
            debs: self
                .debs
                .iter()
                .map(|d| StoredDeb::of(&d.package, d.codenames.clone()))
                .collect(),
            rpms: self
                .rpms
                .iter()
                .map(|r| StoredRpm::of(&r.package, r.distros.clone()))
                .collect(),
            kernels: self.kernels,
            yum_dirs,
            retained: self.retained,
            migrated: Migrated {
                debs: self.debs.into_iter().map(|d| d.package).collect(),
                rpms: self.rpms.into_iter().map(|r| r.package).collect(),
            },
            ..RepoState::default()
        };
        let pool: BTreeSet<String> = state.package_files().map(|(path, _)| path).collect();
        state.files = self
            .files
            .into_iter()
            .filter(|(path, _)| !pool.contains(path))
            .collect();
        state
    }
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
