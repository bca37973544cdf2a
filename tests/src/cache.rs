//! The harness's cache directory and the lock that serialises its writers.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where roots and package lists are kept between runs:
/// `$KMODFARM_TEST_CACHE`, else `~/.cache/kmodfarm-tests`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KMODFARM_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kmodfarm-tests")
}

/// An exclusive lock on `<path>.lock`, held until dropped. Test binaries
/// run in parallel (and cargo runs several at once), so whoever builds a
/// cache entry holds this; the others wait and then find it made.
pub(crate) struct CacheLock {
    _file: File,
}

impl CacheLock {
    pub(crate) fn acquire(entry: &Path) -> Result<CacheLock> {
        let mut name = entry.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        if let Some(dir) = lock_path.parent() {
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(&lock_path))?;
        file.lock().map_err(Error::io(&lock_path))?;
        Ok(CacheLock { _file: file })
    }
}

/// Removes `path` (file or directory) if it exists.
pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.map_err(Error::io(path))
}
