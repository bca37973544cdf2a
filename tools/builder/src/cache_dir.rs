//! Where kmodfarm keeps roots, headers and built artifacts between runs,
//! and the file lock that lets several processes share them.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{BuildError, Result};

/// `$KMODFARM_CACHE`, else `$XDG_CACHE_HOME/kmodfarm`, else `~/.cache/kmodfarm`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KMODFARM_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("kmodfarm");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kmodfarm")
}

/// An exclusive lock on `<entry>.lock`, released when dropped. Whoever
/// makes a cache entry holds it; others wait and then find the entry made.
pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn acquire(entry: &Path) -> Result<Lock> {
        let mut name = entry.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(BuildError::io(dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(BuildError::io(&path))?;
        file.lock().map_err(BuildError::io(&path))?;
        Ok(Lock { _file: file })
    }
}

/// Removes a file or directory tree if it exists.
pub fn remove_if_present(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(BuildError::io(path))
}
