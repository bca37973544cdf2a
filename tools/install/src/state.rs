//! What kmodfarm-host remembers on a host, under `/var/lib/<name>/`: the
//! last serial it accepted (rollback protection), what it installed per
//! kernel (so uninstall removes exactly that), what the kernel hook staged,
//! and whether the host opted into DKMS builds.

use std::path::{Path, PathBuf};

use kmodfarm_model::record::IndexEntry;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a kernel got its module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// The prebuilt package, through the package manager.
    PrebuiltPackage,
    /// The prebuilt file, placed under /lib/modules/<k>/updates/.
    PrebuiltFile,
    /// Built on this host by DKMS from `<name>-dkms`.
    Dkms,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Route::PrebuiltPackage => "prebuilt (package)",
            Route::PrebuiltFile => "prebuilt (file)",
            Route::Dkms => "DKMS",
        })
    }
}

/// `installed/<kernel>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    pub kernel: String,
    pub route: Route,
    pub version: String,
    /// Files kmodfarm-host placed itself (absolute host paths).
    #[serde(default)]
    pub files: Vec<String>,
    /// Packages it asked the package manager for.
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The state directory of one module, below a host root.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
}

impl State {
    pub fn new(dir: PathBuf) -> State {
        State { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn serial_path(&self) -> PathBuf {
        self.dir.join("last-serial")
    }

    /// The highest serial this host accepted, if any.
    pub fn last_serial(&self) -> Result<Option<u64>> {
        let path = self.serial_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| Error::Config {
                path,
                message: format!("{:?} is not a serial number", text.trim()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Read { path, source: e }),
        }
    }

    /// Remembers `serial` unless a higher one is already remembered.
    pub fn accept_serial(&self, serial: u64) -> Result<()> {
        if self.last_serial()?.is_some_and(|last| last >= serial) {
            return Ok(());
        }
        write_atomic(&self.serial_path(), format!("{serial}\n").as_bytes())
    }

    fn record_path(&self, kernel: &str) -> PathBuf {
        self.dir.join("installed").join(format!("{kernel}.json"))
    }

    pub fn record(&self, kernel: &str) -> Result<Option<InstallRecord>> {
        read_json(&self.record_path(kernel))
    }

    pub fn save_record(&self, record: &InstallRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("records serialize");
        write_atomic(&self.record_path(&record.kernel), &json)
    }

    pub fn remove_record(&self, kernel: &str) -> Result<()> {
        remove_if_present(&self.record_path(kernel))
    }

    /// Every kernel with a record.
    pub fn records(&self) -> Result<Vec<InstallRecord>> {
        let dir = self.dir.join("installed");
        let mut records = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(records),
            Err(e) => {
                return Err(Error::Read {
                    path: dir,
                    source: e,
                })
            }
        };
        for entry in entries {
            let path = entry.map_err(Error::read(&dir))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(record) = read_json(&path)? {
                    records.push(record);
                }
            }
        }
        records.sort_by(|a: &InstallRecord, b| a.kernel.cmp(&b.kernel));
        Ok(records)
    }

    /// Where the kernel hook leaves the verified modules for `kernel`.
    pub fn staged_dir(&self, kernel: &str) -> PathBuf {
        self.dir.join("staged").join(kernel)
    }

    /// What the kernel hook staged for `kernel`: every module's entry and
    /// file, or nothing when one of the files is missing. `entries.json`
    /// is written after the files, so it names only files that were
    /// complete; `entry.json` is what earlier versions staged (one module).
    pub fn staged(&self, kernel: &str) -> Result<Vec<(IndexEntry, PathBuf)>> {
        let dir = self.staged_dir(kernel);
        let entries = match read_json::<Vec<IndexEntry>>(&dir.join(STAGED_ENTRIES))? {
            Some(entries) => entries,
            None => read_json::<IndexEntry>(&dir.join("entry.json"))?
                .into_iter()
                .collect(),
        };
        let files: Vec<(IndexEntry, PathBuf)> = entries
            .into_iter()
            .map(|entry| {
                let file = dir.join(entry.module_file_name());
                (entry, file)
            })
            .collect();
        Ok(if files.iter().all(|(_, f)| f.is_file()) {
            files
        } else {
            Vec::new()
        })
    }

    pub fn dkms_opt_in_path(&self) -> PathBuf {
        self.dir.join("dkms-opt-in")
    }

    pub fn dkms_opted_in(&self) -> bool {
        self.dkms_opt_in_path().is_file()
    }
}

/// The last component of a repository path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "unreadable state file ({e}); delete it and rerun `kmodfarm-host install`"
                ),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Read {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Writes `path` whole or not at all (a temporary file renamed over it).
/// The list of what the kernel hook staged, in [`State::staged_dir`].
pub const STAGED_ENTRIES: &str = "entries.json";

pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().expect("state paths have a parent");
    std::fs::create_dir_all(dir).map_err(Error::write(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, data).map_err(Error::write(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::write(path))
}

pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Write {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_only_grows_and_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(dir.path().join("var/lib/kmfdemo"));
        assert_eq!(state.last_serial().unwrap(), None);
        state.accept_serial(7).unwrap();
        state.accept_serial(5).unwrap();
        assert_eq!(state.last_serial().unwrap(), Some(7));
        let record = InstallRecord {
            kernel: "6.1.0-57-amd64".into(),
            route: Route::PrebuiltFile,
            version: "1.0.0".into(),
            files: vec!["/lib/modules/6.1.0-57-amd64/updates/kmfdemo.ko.zst".into()],
            packages: vec![],
            sha256: Some("ab".into()),
        };
        state.save_record(&record).unwrap();
        assert_eq!(state.records().unwrap(), std::slice::from_ref(&record));
        assert_eq!(state.record("6.1.0-57-amd64").unwrap(), Some(record));
        state.remove_record("6.1.0-57-amd64").unwrap();
        assert!(state.records().unwrap().is_empty());
    }
}
