//! Debian root file systems made by mmdebstrap, cached between runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use kmodfarm_kernels::apt_sources::AptSources;

use crate::cache::{cache_dir, remove_if_present, CacheLock};
use crate::error::{Error, Result};
use crate::process::{capture, require_root, require_tool};

/// This machine's apt sources (`/etc/apt`), rewritten for `suite` (see
/// [`AptSources::for_suite`]): what the harness's roots and package lists
/// are fetched with.
pub fn apt_sources(suite: &str) -> Result<AptSources> {
    Ok(AptSources::host()?.for_suite(suite)?)
}

/// What a root should contain: a suite and the packages to add to
/// mmdebstrap's `apt` variant (Essential packages plus apt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianRoot {
    suite: String,
    packages: Vec<String>,
}

/// A root that exists in the cache. Treat it as read-only: tests work on a
/// [`Sandbox`](crate::Sandbox) over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRoot {
    pub path: PathBuf,
    pub suite: String,
    pub packages: Vec<String>,
}

impl DebianRoot {
    pub fn new(suite: &str) -> DebianRoot {
        DebianRoot {
            suite: suite.to_string(),
            packages: Vec::new(),
        }
    }

    /// Adds packages to install (apt resolves their dependencies, without
    /// recommends).
    pub fn packages<I, S>(mut self, packages: I) -> DebianRoot
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.packages.extend(packages.into_iter().map(Into::into));
        self.packages.sort();
        self.packages.dedup();
        self
    }

    /// The cache entry's name: the suite and a digest of everything that
    /// shapes the root (packages and apt sources), so a different list or
    /// mirror gets its own root.
    fn cache_key(&self, sources: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(self.suite.as_bytes());
        for package in &self.packages {
            hash.update(b"\0");
            hash.update(package.as_bytes());
        }
        hash.update(b"\0sources\0");
        hash.update(sources.as_bytes());
        format!(
            "root-{}-{}",
            self.suite,
            &hex::encode(hash.finalize())[..16]
        )
    }

    /// Returns the cached root, making it first if needed. One process makes
    /// it while others wait on the lock; it is built beside the cache entry
    /// and renamed into place only when complete, so an interrupted run
    /// never leaves a half-made root behind to be used.
    pub fn ensure(&self) -> Result<PreparedRoot> {
        require_tool("mmdebstrap", "mmdebstrap")?;
        require_root("making a Debian root file system with mmdebstrap")?;
        let sources = apt_sources(&self.suite)?.to_deb822();
        let path = cache_dir().join(self.cache_key(&sources));
        let _lock = CacheLock::acquire(&path)?;
        if !path.is_dir() {
            self.create(&path, &sources)?;
        }
        Ok(PreparedRoot {
            path,
            suite: self.suite.clone(),
            packages: self.packages.clone(),
        })
    }

    fn create(&self, path: &Path, sources: &str) -> Result<()> {
        let partial = path.with_extension("partial");
        remove_if_present(&partial)?;
        let sources_file = path.with_extension("sources");
        fs::write(&sources_file, sources).map_err(Error::io(&sources_file))?;

        let mut cmd = Command::new("mmdebstrap");
        cmd.args(["--variant=apt", "--mode=root", "--quiet"])
            // Keep the package lists: tests install local .debs with apt,
            // which resolves their dependencies from them.
            .arg("--skip=cleanup/apt/lists")
            .arg("--aptopt=Acquire::Retries \"3\"");
        if !self.packages.is_empty() {
            cmd.arg(format!("--include={}", self.packages.join(",")));
        }
        // mmdebstrap copies a sources file given as a mirror into the root
        // (as etc/apt/sources.list.d/0000<name>.sources).
        cmd.arg(&self.suite).arg(&partial).arg(&sources_file);
        let result = capture(&mut cmd).and_then(|out| out.ok());
        if let Err(e) = result {
            // Do not leave gigabytes of a failed attempt behind.
            let _ = remove_if_present(&partial);
            return Err(e);
        }
        let record = partial.join("etc/kmodfarm-test-root");
        let what = format!(
            "suite: {}\npackages: {}\n",
            self.suite,
            self.packages.join(" ")
        );
        fs::write(&record, what).map_err(Error::io(&record))?;
        fs::rename(&partial, path).map_err(Error::io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_suite_packages_and_sources_but_not_their_order() {
        let a = DebianRoot::new("bookworm").packages(["dkms", "kmod"]);
        let b = DebianRoot::new("bookworm").packages(["kmod", "dkms", "kmod"]);
        assert_eq!(a.cache_key("s"), b.cache_key("s"));
        assert_ne!(a.cache_key("s"), a.cache_key("t"));
        assert_ne!(
            a.cache_key("s"),
            DebianRoot::new("trixie")
                .packages(["dkms", "kmod"])
                .cache_key("s")
        );
        assert_ne!(
            a.cache_key("s"),
            a.clone().packages(["make"]).cache_key("s")
        );
        assert!(a.cache_key("s").starts_with("root-bookworm-"));
    }
}
