//! A job's scratch directory under the cache's `work/`, and the sweep of
//! what killed runs left there.
//!
//! Each directory is named with [`kmodfarm_staging::TEMP_PREFIX`] and
//! locked (`flock(2)` on the directory itself) for as long as its job
//! lives; the lock dies with the process, however it dies. A sweep takes
//! every such directory it can lock: nobody holds it, so its run is gone.
//! Creation and sweep both hold `work.lock`, so a sweep never sees a
//! directory made but not yet locked.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kmodfarm_staging::TEMP_PREFIX;
use tempfile::TempDir;

use crate::cache_dir::{remove_if_present, Lock};
use crate::error::{BuildError, Result};

/// Directories earlier versions made here, unlocked: swept once they are
/// older than any build.
const LEGACY_AGE: Duration = Duration::from_secs(24 * 3600);

/// A locked scratch directory, removed (then unlocked) when dropped.
pub struct WorkDir {
    // Field order is drop order: remove the tree, then release the lock.
    dir: TempDir,
    _lock: File,
}

fn work_parent(cache: &Path) -> PathBuf {
    cache.join("work")
}

impl WorkDir {
    /// `<cache>/work/.kmodfarm-tmp-<name>.XXXXXX`, locked.
    pub fn create(cache: &Path, name: &str) -> Result<WorkDir> {
        let parent = work_parent(cache);
        std::fs::create_dir_all(&parent).map_err(BuildError::io(&parent))?;
        let _guard = Lock::acquire(&parent)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{name}."))
            .tempdir_in(&parent)
            .map_err(BuildError::io(&parent))?;
        let lock = File::open(dir.path())
            .and_then(|f| f.lock().map(|()| f))
            .map_err(BuildError::io(dir.path()))?;
        Ok(WorkDir { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the work directories of runs that are gone; returns them.
pub fn sweep(cache: &Path) -> Result<Vec<PathBuf>> {
    let parent = work_parent(cache);
    let entries = match std::fs::read_dir(&parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BuildError::io(&parent)(e)),
    };
    let _guard = Lock::acquire(&parent)?;
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with(TEMP_PREFIX) {
            match File::open(&path) {
                // Locked: a live run's. Released when this returns.
                Ok(file) => file.try_lock().is_ok(),
                Err(_) => false,
            }
        } else {
            // `<kernel>-XXXXXX` and `.entry-XXXXXX` of earlier versions.
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > LEGACY_AGE)
        };
        if stale {
            remove_if_present(&path)?;
            swept.push(path);
        }
    }
    swept.sort();
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_removes_dead_runs_directories_and_never_a_live_ones() {
        let cache = tempfile::tempdir().unwrap();
        let live = WorkDir::create(cache.path(), "6.1.0-57-amd64").unwrap();
        std::fs::write(live.path().join("file"), "in use").unwrap();
        // What a killed run leaves: its directory, nobody holding it.
        let dead = WorkDir::create(cache.path(), "6.12.57+deb12-amd64").unwrap();
        let dead_path = dead.path().to_path_buf();
        let _kept_on_disk = dead.dir.keep();
        drop(dead._lock);
        // Another tool's directory, and an earlier version's fresh one.
        let other = work_parent(cache.path()).join("6.1.0-41-amd64-Ab12Cd");
        std::fs::create_dir(&other).unwrap();

        let swept = sweep(cache.path()).unwrap();
        assert_eq!(swept, std::slice::from_ref(&dead_path));
        assert!(!dead_path.exists());
        assert!(live.path().join("file").exists());
        assert!(
            other.exists(),
            "a fresh unlocked directory may be a live older run's"
        );
        let kept = live.path().to_path_buf();
        drop(live);
        assert!(!kept.exists(), "a finished job removes its own");
    }
}
