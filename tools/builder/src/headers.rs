//! A kernel's headers as a layer laid over the build root.
//!
//! Why a layer and not `apt-get install` in each build: the root stays
//! read-only and shared by every parallel build, each kernel's headers are
//! fetched and unpacked once and then reused by every later run (and by
//! every module), and the compile itself needs no network. apt still does
//! the resolving and downloading, inside the root with the root's sources
//! (so it picks the headers' exact dependencies: the -common headers and
//! linux-kbuild), into a per-distro cache; `dpkg-deb -x` then unpacks the
//! linux-* packages into `<cache>/headers/<distro>/<kernel>/tree`, with
//! /lib moved under /usr so the layer matches a merged-/usr root.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use kmodfarm_model::record::MatrixEntry;

use crate::cache_dir::{remove_if_present, Lock};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::runtime::{Bind, RunSpec, Runtime, GUEST_DEBS, GUEST_HEADERS};

/// A kernel's unpacked headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderLayer {
    pub kernel: String,
    /// `name=version` of every package unpacked, for the cache key.
    pub packages: Vec<String>,
    /// The tree to lay over the root; `None` for the host runtime, which
    /// uses the host's installed headers.
    #[serde(skip)]
    pub tree: Option<PathBuf>,
}

/// Finds or makes header layers; one per process.
pub struct HeaderStore {
    cache: PathBuf,
    /// Distros whose apt lists were refreshed by this process.
    updated: Mutex<HashSet<String>>,
}

/// A package apt would install: from a `Inst NAME (VERSION … [ARCH])` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
}

impl AptPackage {
    /// The file name apt gives the downloaded package.
    pub fn deb_file(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// The packages an `apt-get install -s` transcript would install.
pub fn parse_simulation(output: &str) -> Vec<AptPackage> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let name = rest.split_whitespace().next()?.to_string();
            let open = rest.find('(')?;
            let inside = rest[open + 1..].trim_end_matches(')');
            let version = inside.split_whitespace().next()?.to_string();
            let arch = inside
                .rsplit_once('[')
                .map(|(_, a)| a.trim_end_matches(']').to_string())?;
            Some(AptPackage {
                name,
                version,
                arch,
            })
        })
        .collect()
}

impl HeaderStore {
    pub fn new(cache: &Path) -> HeaderStore {
        HeaderStore {
            cache: cache.to_path_buf(),
            updated: Mutex::new(HashSet::new()),
        }
    }

    fn dir(&self, entry: &MatrixEntry) -> PathBuf {
        self.cache
            .join("headers")
            .join(&entry.distro)
            .join(entry.kernel_release.as_str())
    }

    /// Whether `entry`'s layer is already unpacked (no download needed).
    pub fn is_ready(&self, entry: &MatrixEntry) -> bool {
        self.dir(entry).join("layer.json").is_file()
    }

    /// The layer for `entry`, made when missing (network allowed).
    pub fn layer(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        entry: &MatrixEntry,
    ) -> Result<HeaderLayer> {
        if !runtime.uses_header_layer() {
            return host_headers(entry);
        }
        let dir = self.dir(entry);
        if let Some(layer) = read_layer(&dir) {
            return Ok(layer);
        }
        // One apt at a time per distro: they share its lists and archives.
        let apt_dir = self.cache.join("apt").join(&entry.distro);
        let _lock = Lock::acquire(&apt_dir)?;
        if let Some(layer) = read_layer(&dir) {
            return Ok(layer);
        }
        let packages = self.download(runtime, root, entry, &apt_dir)?;
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let result = unpack(
            runtime,
            root,
            entry,
            &apt_dir.join("cache/archives"),
            &packages,
            &partial,
        );
        if result.is_err() {
            let _ = remove_if_present(&partial);
        }
        // The unpacked tree is what later runs use; the .debs (tens of MB
        // per kernel) can be fetched again if ever needed.
        for p in &packages {
            let _ = std::fs::remove_file(apt_dir.join("cache/archives").join(p.deb_file()));
        }
        result?;
        remove_if_present(&dir)?;
        std::fs::rename(&partial, &dir).map_err(BuildError::io(&dir))?;
        read_layer(&dir).ok_or_else(|| {
            BuildError::Other(format!(
                "{}: header layer unreadable after unpacking",
                dir.display()
            ))
        })
    }

    pub(crate) fn apt_binds(apt_dir: &Path) -> Result<Vec<Bind>> {
        let lists = apt_dir.join("lists");
        let cache = apt_dir.join("cache");
        for dir in [lists.join("partial"), cache.join("archives/partial")] {
            std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        }
        Ok(vec![
            Bind {
                host: lists,
                guest: "/var/lib/apt/lists".into(),
                writable: true,
            },
            Bind {
                host: cache,
                guest: "/var/cache/apt".into(),
                writable: true,
            },
        ])
    }

    /// Resolves and downloads the entry's packages; returns the linux-* ones.
    fn download(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        entry: &MatrixEntry,
        apt_dir: &Path,
    ) -> Result<Vec<AptPackage>> {
        let fresh = self
            .updated
            .lock()
            .expect("not poisoned")
            .contains(&entry.distro);
        let wanted = entry.packages.join(" ");
        let update = if fresh { "" } else { "apt-get -q update\n" };
        let script = format!(
            "{update}apt-get -q install -s --no-install-recommends {wanted}\napt-get -q install -y --download-only --no-install-recommends {wanted}\n"
        );
        let spec = RunSpec {
            script: &script,
            binds: Self::apt_binds(apt_dir)?,
            headers: None,
            network: true,
            env: vec![],
        };
        let done = runtime.run(root, &spec)?;
        if !done.success {
            return Err(BuildError::Other(format!(
                "{}: apt cannot get {wanted}:\n{}",
                entry.key(),
                tail(&done.output, 12)
            )));
        }
        self.updated
            .lock()
            .expect("not poisoned")
            .insert(entry.distro.clone());
        let packages: Vec<AptPackage> = parse_simulation(&done.output)
            .into_iter()
            .filter(|p| p.name.starts_with("linux-"))
            .collect();
        if packages.is_empty() {
            return Err(BuildError::Other(format!(
                "{}: apt resolved no linux-* package for {wanted}",
                entry.key()
            )));
        }
        Ok(packages)
    }
}

/// Unpacks `packages` (files in `debs`) into `<dest>/tree` and records
/// them in `<dest>/layer.json`; a package dpkg-deb cannot read is an error
/// that names it.
pub fn unpack(
    runtime: &dyn Runtime,
    root: &RootInfo,
    entry: &MatrixEntry,
    debs: &Path,
    packages: &[AptPackage],
    dest: &Path,
) -> Result<()> {
    let partial = dest;
    let tree = partial.join("tree");
    std::fs::create_dir_all(&tree).map_err(BuildError::io(&tree))?;
    let mut script = String::new();
    for p in packages {
        script.push_str(&format!(
            "echo 'unpacking {name}'; dpkg-deb -x {GUEST_DEBS}/{file} {GUEST_HEADERS}\n",
            name = p.name,
            file = p.deb_file()
        ));
    }
    let spec = RunSpec {
        script: &script,
        binds: vec![
            Bind {
                host: debs.to_path_buf(),
                guest: GUEST_DEBS.into(),
                writable: false,
            },
            Bind {
                host: tree.clone(),
                guest: GUEST_HEADERS.into(),
                writable: true,
            },
        ],
        headers: None,
        network: false,
        env: vec![],
    };
    let done = runtime.run(root, &spec)?;
    if !done.success {
        let failing = done
            .output
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("unpacking "))
            .unwrap_or("a header package");
        return Err(BuildError::Other(format!(
            "{}: header package {failing} is corrupt or unreadable (delete it from {} to fetch it again):\n{}",
            entry.key(),
            debs.display(),
            tail(&done.output, 8)
        )));
    }
    merge_usr(&tree)?;
    let doc = tree.join("usr/share/doc");
    remove_if_present(&doc)?;
    let build = tree
        .join("usr/lib/modules")
        .join(entry.kernel_release.as_str())
        .join("build");
    if std::fs::symlink_metadata(&build).is_err() {
        return Err(BuildError::Other(format!(
            "{}: the packages {} do not provide /lib/modules/{}/build",
            entry.key(),
            packages
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            entry.kernel_release
        )));
    }
    let layer = HeaderLayer {
        kernel: entry.kernel_release.to_string(),
        packages: packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect(),
        tree: None,
    };
    let path = partial.join("layer.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&layer).expect("serializes"),
    )
    .map_err(BuildError::io(&path))
}

fn read_layer(dir: &Path) -> Option<HeaderLayer> {
    let text = std::fs::read_to_string(dir.join("layer.json")).ok()?;
    let mut layer: HeaderLayer = serde_json::from_str(&text).ok()?;
    layer.tree = Some(dir.join("tree"));
    Some(layer)
}

/// The host runtime's headers: what the host has installed.
fn host_headers(entry: &MatrixEntry) -> Result<HeaderLayer> {
    let build = Path::new("/lib/modules")
        .join(entry.kernel_release.as_str())
        .join("build");
    if !build.join("Makefile").exists() {
        return Err(BuildError::Other(format!(
            "{}: the host runtime uses the host's headers, and {} is missing: install {}",
            entry.key(),
            build.display(),
            entry.packages.join(" ")
        )));
    }
    let version = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}"])
        .args(&entry.packages)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    Ok(HeaderLayer {
        kernel: entry.kernel_release.to_string(),
        packages: vec![format!("host:{}={version}", entry.packages.join(","))],
        tree: None,
    })
}

/// Moves `lib`, `bin`, `sbin` of an unpacked tree below `usr`, as a
/// merged-/usr root has them (its /lib is a symlink an overlay would hide).
fn merge_usr(tree: &Path) -> Result<()> {
    for top in ["lib", "bin", "sbin", "lib64"] {
        let from = tree.join(top);
        if from.is_dir() && !from.is_symlink() {
            move_into(&from, &tree.join("usr").join(top))?;
        }
    }
    Ok(())
}

fn move_into(from: &Path, to: &Path) -> Result<()> {
    if std::fs::symlink_metadata(to).is_err() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        return std::fs::rename(from, to).map_err(BuildError::io(to));
    }
    for entry in std::fs::read_dir(from).map_err(BuildError::io(from))? {
        let entry = entry.map_err(BuildError::io(from))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() && !entry.path().is_symlink() && target.is_dir() {
            move_into(&entry.path(), &target)?;
        } else {
            std::fs::rename(entry.path(), &target).map_err(BuildError::io(&target))?;
        }
    }
    std::fs::remove_dir_all(from).map_err(BuildError::io(from))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_simulations_give_the_exact_packages_and_their_files() {
        let out = "Reading package lists...\nInst linux-kbuild-6.1 (6.1.158-1 Debian-Security:12/stable-security [amd64])\nInst linux-headers-6.1.0-41-common (6.1.158-1 Debian-Security:12/stable-security [all])\nInst foo [1.0] (1:2.0-1 Debian:12 [amd64])\nConf foo (1:2.0-1 Debian:12 [amd64])\n";
        let pkgs = parse_simulation(out);
        assert_eq!(pkgs.len(), 3);
        assert_eq!(
            pkgs[1].deb_file(),
            "linux-headers-6.1.0-41-common_6.1.158-1_all.deb"
        );
        assert_eq!(pkgs[2].deb_file(), "foo_1%3a2.0-1_amd64.deb");
    }

    #[test]
    fn lib_moves_under_usr_and_merges_with_what_is_there() {
        let tree = tempfile::tempdir().unwrap();
        let t = tree.path();
        std::fs::create_dir_all(t.join("lib/modules/6.1.0-41-amd64")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/src/linux-headers-6.1.0-41-amd64",
            t.join("lib/modules/6.1.0-41-amd64/build"),
        )
        .unwrap();
        std::fs::create_dir_all(t.join("usr/lib/linux-kbuild-6.1")).unwrap();
        merge_usr(t).unwrap();
        assert!(!t.join("lib").exists());
        assert!(t.join("usr/lib/linux-kbuild-6.1").is_dir());
        assert!(t.join("usr/lib/modules/6.1.0-41-amd64/build").is_symlink());
    }
}
