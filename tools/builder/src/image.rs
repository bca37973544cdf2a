//! Build roots: one Debian root file system per distro, made by mmdebstrap
//! with the distro's own compiler (a kernel's modules must be built with
//! the compiler that built the kernel) and cached under
//! `<cache>/roots/<distro>-<hash>`. Podman and docker import the same
//! directory as an image, so every runtime builds in the same root.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use kmodfarm_model::{Distro, PackageFamily};

use crate::cache_dir::{remove_if_present, Lock};
use crate::error::{BuildError, Result};
use crate::process::run_ok;

/// Beside the distro's compiler and build packages: libelf for objtool and
/// kbuild, zstd for compressed modules, openssl's libcrypto for sign-file,
/// and pahole (dwarves): 6.12 kernels with CONFIG_DEBUG_INFO_BTF_MODULES
/// run it on every module they link; patch, which DKMS depends on, for a
/// dkms.conf's PATCH.
const EXTRA_PACKAGES: &[&str] = &["libelf-dev", "zstd", "openssl", "dwarves", "patch"];

/// Written into every root as `etc/kmodfarm-root.json`.
pub const ROOT_INFO: &str = "etc/kmodfarm-root.json";

/// What a root contains; its digest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRecipe {
    pub distro: String,
    pub suite: String,
    pub packages: Vec<String>,
    /// The deb822 apt sources the root is made from (and keeps).
    pub sources: String,
}

/// A root that exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootInfo {
    /// `<distro>-<hash>`: part of every cache key built in it.
    pub id: String,
    pub distro: String,
    pub packages: Vec<String>,
    /// First line of `<compiler> --version` in the root.
    pub compiler: String,
    #[serde(skip)]
    pub path: PathBuf,
}

impl RootRecipe {
    /// Whether kmodfarm can make a root for `distro` (apt distros only).
    pub fn check_supported(distro: &Distro) -> Result<()> {
        if distro.family != PackageFamily::Deb || distro.package_manager != "apt" {
            return Err(BuildError::NoRecipe {
                id: distro.id.clone(),
            });
        }
        Ok(())
    }

    pub fn for_distro(distro: &Distro, sources: String) -> Result<RootRecipe> {
        Self::check_supported(distro)?;
        let mut packages: Vec<String> = std::iter::once(distro.toolchain.compiler.clone())
            .chain(distro.toolchain.build_packages.iter().cloned())
            .chain(EXTRA_PACKAGES.iter().map(|p| p.to_string()))
            .collect();
        packages.sort();
        packages.dedup();
        Ok(RootRecipe {
            distro: distro.id.clone(),
            suite: distro.release.clone(),
            packages,
            sources,
        })
    }

    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).expect("a recipe serializes");
        let digest = hex::encode(Sha256::digest(json));
        format!("{}-{}", self.distro, &digest[..16])
    }

    pub fn path(&self, cache: &Path) -> PathBuf {
        cache.join("roots").join(self.id())
    }

    /// The root if it is cached.
    pub fn find(&self, cache: &Path) -> Option<RootInfo> {
        let path = self.path(cache);
        let text = std::fs::read_to_string(path.join(ROOT_INFO)).ok()?;
        let mut info: RootInfo = serde_json::from_str(&text).ok()?;
        info.path = path;
        Some(info)
    }

    /// The cached root, made first when missing (as root: mmdebstrap
    /// --mode=root). It is made beside its final place and renamed in only
    /// when complete, so a failed or interrupted run leaves nothing usable.
    pub fn ensure(&self, cache: &Path, compiler: &str) -> Result<RootInfo> {
        if let Some(info) = self.find(cache) {
            return Ok(info);
        }
        let path = self.path(cache);
        let _lock = Lock::acquire(&path)?;
        if let Some(info) = self.find(cache) {
            return Ok(info); // another process made it while we waited
        }
        let partial = path.with_extension("partial");
        remove_if_present(&partial)?;
        let result = self.create(&partial, compiler);
        if result.is_err() {
            let _ = remove_if_present(&partial);
        }
        let mut info = result?;
        std::fs::rename(&partial, &path).map_err(BuildError::io(&path))?;
        info.path = path;
        Ok(info)
    }

    fn create(&self, partial: &Path, compiler: &str) -> Result<RootInfo> {
        let parent = partial.parent().expect("roots live in a directory");
        std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        let sources_file = partial.with_extension("sources");
        std::fs::write(&sources_file, &self.sources).map_err(BuildError::io(&sources_file))?;
        run_ok(
            Command::new("mmdebstrap")
                .args(["--variant=apt", "--mode=root", "--quiet"])
                .arg("--aptopt=Acquire::Retries \"3\"")
                .arg(format!("--include={}", self.packages.join(",")))
                .arg(&self.suite)
                .arg(partial)
                .arg(&sources_file),
            "mmdebstrap",
        )?;
        let _ = std::fs::remove_file(&sources_file);
        // Mount points for the runtimes: bwrap cannot make them in a
        // read-only root.
        for guest in crate::runtime::MOUNT_POINTS {
            let dir = partial.join(guest.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        }
        // The version line as the kernel's own build would record it.
        let version = run_ok(
            Command::new("chroot")
                .arg(partial)
                .args([compiler, "--version"]),
            "coreutils",
        )?;
        let info = RootInfo {
            id: self.id(),
            distro: self.distro.clone(),
            packages: self.packages.clone(),
            compiler: version.lines().next().unwrap_or("").to_string(),
            path: PathBuf::new(),
        };
        let info_path = partial.join(ROOT_INFO);
        let json = serde_json::to_string_pretty(&info).expect("root info serializes");
        std::fs::write(&info_path, json).map_err(BuildError::io(&info_path))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::DistroSet;

    #[test]
    fn each_debian_root_carries_its_own_compiler_and_its_id_follows_the_sources() {
        let set = DistroSet::builtin();
        let d12 = RootRecipe::for_distro(set.get("debian-12").unwrap(), "a".into()).unwrap();
        let d13 = RootRecipe::for_distro(set.get("debian-13").unwrap(), "a".into()).unwrap();
        assert!(d12.packages.contains(&"gcc-12".to_string()));
        assert!(d13.packages.contains(&"gcc-14".to_string()));
        assert!(d12.id().starts_with("debian-12-"));
        let other = RootRecipe::for_distro(set.get("debian-12").unwrap(), "b".into()).unwrap();
        assert_ne!(d12.id(), other.id());
    }

    #[test]
    fn rpm_distros_have_no_recipe() {
        let set = DistroSet::builtin();
        let err = RootRecipe::for_distro(set.get("rhel-9").unwrap(), String::new()).unwrap_err();
        assert!(err.to_string().contains("rhel-9"), "{err}");
    }
}
