//! All-or-nothing outputs. Every stage that writes into a user's directory
//! (render, package, build, publish) stages its work inside that very
//! directory, under names starting with [`TEMP_PREFIX`], and renames it into
//! place only when complete. While it does, it holds an exclusive lock on
//! the directory, so that the next run may sweep every temporary entry it
//! finds: an entry it can see under the lock belongs to a run that was
//! killed before it could clean up.
//!
//! The lock is `flock(2)` on the directory itself, so no lock file is left
//! in the user's directory; it is released when the process dies, however
//! it dies.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

/// The one prefix of every temporary file or directory kmodfarm makes.
pub const TEMP_PREFIX: &str = ".kmodfarm-tmp-";

/// Names earlier versions used for the same purpose, swept too.
const LEGACY_PREFIXES: &[&str] = &[".kmodfarm-render-"];

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("cannot create the output directory {}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot lock the output directory {}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot remove {}, left by an interrupted run", path.display())]
    Sweep { path: PathBuf, source: io::Error },
}

/// A destination directory, locked for this run, swept of dead runs'
/// leftovers. Dropping it without [`Staging::commit`] removes the
/// directories it created (when they are still empty), so a failed run
/// does not leave an empty output directory behind either.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    created: Vec<PathBuf>,
    committed: bool,
    _lock: File,
}

/// What [`Staging::open`] found and removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub entries: Vec<PathBuf>,
}

impl Staging {
    /// Creates `dir` (and its missing parents) if needed, takes its lock
    /// (waiting for a concurrent run to finish), and sweeps temporary
    /// entries left by killed runs.
    pub fn open(dir: &Path) -> Result<(Staging, Swept), StagingError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let created = create_dirs(dir)?;
        let lock = File::open(dir).and_then(|f| f.lock().map(|()| f));
        let lock = match lock {
            Ok(lock) => lock,
            Err(source) => {
                remove_empty(&created);
                return Err(StagingError::Lock {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let staging = Staging {
            dir: dir.to_path_buf(),
            created,
            committed: false,
            _lock: lock,
        };
        let swept = staging.sweep()?;
        Ok((staging, swept))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A temporary file in the directory, for content that will be renamed
    /// to `name`; it is deleted when dropped unless persisted.
    pub fn temp_file(&self, name: &str) -> io::Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}.", short(name)))
            .tempfile_in(&self.dir)
    }

    /// A temporary directory in the directory; deleted when dropped unless
    /// kept.
    pub fn temp_dir(&self, name: &str) -> io::Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}.", short(name)))
            .tempdir_in(&self.dir)
    }

    /// The run succeeded: keep the directories it created.
    pub fn commit(mut self) {
        self.committed = true;
    }

    fn sweep(&self) -> Result<Swept, StagingError> {
        let mut swept = Swept::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // Listing needs read permission; writing does not. Without it
            // there is nothing we could sweep anyway.
            Err(_) => return Ok(swept),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with(TEMP_PREFIX)
                || LEGACY_PREFIXES.iter().any(|p| name.starts_with(p))
                || is_legacy_package_part(&name);
            if !ours {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
            removed.map_err(|source| StagingError::Sweep {
                path: path.clone(),
                source,
            })?;
            swept.entries.push(path);
        }
        swept.entries.sort();
        Ok(swept)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            remove_empty(&self.created);
        }
    }
}

/// `.<package file>.XXXXXX.part`, what `kmodfarm package` wrote before
/// this crate existed.
fn is_legacy_package_part(name: &str) -> bool {
    name.starts_with('.')
        && name.ends_with(".part")
        && (name.contains(".deb.") || name.contains(".rpm."))
}

/// Keeps temporary names well under NAME_MAX whatever the final name is.
fn short(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Creates `dir` and its missing parents; returns those it created,
/// deepest first.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, StagingError> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path.to_path_buf());
        at = path.parent();
    }
    let mut created = Vec::new();
    for path in missing.iter().rev() {
        if let Err(source) = fs::create_dir(path) {
            if source.kind() == io::ErrorKind::AlreadyExists && path.is_dir() {
                continue;
            }
            created.reverse();
            remove_empty(&created);
            return Err(StagingError::Create {
                path: path.clone(),
                source,
            });
        }
        created.push(path.clone());
    }
    created.reverse();
    Ok(created)
}

fn remove_empty(created: &[PathBuf]) {
    for dir in created {
        // Fails, as it should, once something is in it.
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_what_a_killed_run_left_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join(format!("{TEMP_PREFIX}x.deb.abc")), "half").unwrap();
        fs::create_dir(dir.join(".kmodfarm-render-Zq3")).unwrap();
        fs::write(dir.join(".kmfdemo-dkms_1.0.0-1_all.deb.Ab12Cd.part"), "x").unwrap();
        fs::write(dir.join("kmfdemo-dkms_1.0.0-1_all.deb"), "keep").unwrap();
        fs::write(dir.join(".hidden-of-the-user"), "keep").unwrap();
        let (staging, swept) = Staging::open(dir).unwrap();
        assert_eq!(swept.entries.len(), 3, "{swept:?}");
        let left: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        staging.commit();
    }

    #[test]
    fn a_failed_run_removes_the_directories_it_created() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b/c");
        let (staging, _) = Staging::open(&out).unwrap();
        assert!(out.is_dir());
        drop(staging);
        assert!(!tmp.path().join("a").exists());

        let (staging, _) = Staging::open(&out).unwrap();
        staging.commit();
        assert!(out.is_dir());
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("file"), "").unwrap();
        let err = Staging::open(&tmp.path().join("file/out")).unwrap_err();
        assert!(err.to_string().contains("file/out"), "{err}");
    }

    #[test]
    fn a_second_run_waits_for_the_lock_and_never_sweeps_a_live_runs_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (first, _) = Staging::open(&dir).unwrap();
        let live = first.temp_file("pkg.deb").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let (second, swept) = Staging::open(&dir).unwrap();
            tx.send(()).unwrap();
            second.commit();
            swept
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "the second run did not wait");
        assert!(live.path().exists());
        let persisted = tmp.path().join("pkg.deb");
        live.persist(&persisted).unwrap();
        first.commit();
        let swept = waiter.join().unwrap();
        assert!(swept.entries.is_empty(), "{swept:?}");
        assert!(persisted.exists());
    }
}
