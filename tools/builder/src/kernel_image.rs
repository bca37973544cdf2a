//! A kernel's own image (vmlinuz and its modules), to boot it under QEMU:
//! for its System.map (see [`crate::symbols`]) and for the boot test.
//!
//! It comes the way the headers do (see [`crate::headers`]): apt in the
//! distro's root, with the same lists, archive cache and lock, downloads
//! the distro's image package (`linux-image-<k>`), and `dpkg-deb -x` unpacks
//! it once into `<cache>/images/<distro>/<k>`. When the header layer already
//! holds the image (Debian's 6.12 headers depend on it), that copy is used
//! and nothing is downloaded. Static busybox for the initramfs comes the
//! same way, from the distro's `busybox-static`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use kmodfarm_model::record::MatrixEntry;
use kmodfarm_model::Distro;

use crate::cache_dir::{remove_if_present, Lock};
use crate::error::{BuildError, Result};
use crate::headers::{tail, HeaderLayer, HeaderStore};
use crate::image::RootInfo;
use crate::runtime::{Bind, RunSpec, Runtime, GUEST_DEBS, GUEST_HEADERS};

/// An unpacked kernel image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelImage {
    pub kernel: String,
    /// `name=version` of the package it came from.
    pub package: String,
    /// sha256 of the vmlinuz file: with the release, the System.map cache key.
    pub sha256: String,
    #[serde(skip)]
    pub vmlinuz: PathBuf,
    /// `lib/modules/<k>` of the image: the kernel's own modules.
    #[serde(skip)]
    pub modules: PathBuf,
}

/// Finds or fetches kernel images and busybox.
pub struct ImageStore {
    cache: PathBuf,
}

/// Lines of apt's output kept in an error.
const APT_TAIL: usize = 12;

impl ImageStore {
    pub fn new(cache: &Path) -> ImageStore {
        ImageStore {
            cache: cache.to_path_buf(),
        }
    }

    fn dir(&self, entry: &MatrixEntry) -> PathBuf {
        self.cache
            .join("images")
            .join(&entry.distro)
            .join(entry.kernel_release.as_str())
    }

    /// The image of `entry`'s kernel: from the header layer when it holds
    /// one, else from the cache, else downloaded (network).
    pub fn image(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        distro: &Distro,
        entry: &MatrixEntry,
        headers: Option<&HeaderLayer>,
    ) -> Result<KernelImage> {
        let kernel = entry.kernel_release.as_str();
        if let Some(image) = headers.and_then(|h| from_layer(h, kernel)) {
            return Ok(image);
        }
        let dir = self.dir(entry);
        if let Some(image) = read_image(&dir, kernel) {
            return Ok(image);
        }
        let package = distro.image_package(&entry.kernel_release);
        let apt_dir = self.cache.join("apt").join(&entry.distro);
        let _lock = Lock::acquire(&apt_dir)?;
        if let Some(image) = read_image(&dir, kernel) {
            return Ok(image);
        }
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let fetched = fetch_and_unpack(runtime, root, &apt_dir, &package, &partial.join("tree"));
        let version = match fetched {
            Ok(v) => v,
            Err(e) => {
                let _ = remove_if_present(&partial);
                return Err(BuildError::Other(format!(
                    "{}: cannot get the kernel image {package}: {e}",
                    entry.key()
                )));
            }
        };
        let tree = partial.join("tree");
        let vmlinuz = tree.join("boot").join(format!("vmlinuz-{kernel}"));
        let sha256 = file_sha256(&vmlinuz).map_err(|_| {
            BuildError::Other(format!(
                "{}: {package} has no /boot/vmlinuz-{kernel}",
                entry.key()
            ))
        })?;
        let image = KernelImage {
            kernel: kernel.to_string(),
            package: format!("{package}={version}"),
            sha256,
            vmlinuz: PathBuf::new(),
            modules: PathBuf::new(),
        };
        let json = partial.join("image.json");
        std::fs::write(
            &json,
            serde_json::to_string_pretty(&image).expect("serializes"),
        )
        .map_err(BuildError::io(&json))?;
        remove_if_present(&dir)?;
        std::fs::rename(&partial, &dir).map_err(BuildError::io(&dir))?;
        read_image(&dir, kernel)
            .ok_or_else(|| BuildError::Other(format!("{}: image unreadable", dir.display())))
    }

    /// `package` unpacked into a temporary directory (a -dbg package, or a
    /// distro's package that ships the real System.map).
    pub fn package_tree(
        &self,
        runtime: &dyn Runtime,
        root: &RootInfo,
        entry: &MatrixEntry,
        package: &str,
    ) -> Result<tempfile::TempDir> {
        let apt_dir = self.cache.join("apt").join(&entry.distro);
        let _lock = Lock::acquire(&apt_dir)?;
        let tree = tempfile::Builder::new()
            .prefix("kmodfarm-package-")
            .tempdir_in(&self.cache)
            .map_err(BuildError::io(&self.cache))?;
        fetch_and_unpack(runtime, root, &apt_dir, package, tree.path()).map_err(|e| {
            BuildError::Other(format!("{}: cannot get {package}: {e}", entry.key()))
        })?;
        Ok(tree)
    }

    /// A static busybox from the root's `busybox-static` package.
    pub fn busybox(&self, runtime: &dyn Runtime, root: &RootInfo) -> Result<PathBuf> {
        let dir = self.cache.join("busybox").join(&root.distro);
        let path = dir.join("busybox");
        if path.is_file() {
            return Ok(path);
        }
        let apt_dir = self.cache.join("apt").join(&root.distro);
        let _lock = Lock::acquire(&apt_dir)?;
        if path.is_file() {
            return Ok(path);
        }
        let partial = dir.with_extension("partial");
        remove_if_present(&partial)?;
        let tree = partial.join("tree");
        fetch_and_unpack(runtime, root, &apt_dir, "busybox-static", &tree).map_err(|e| {
            BuildError::Other(format!("{}: cannot get busybox-static: {e}", root.distro))
        })?;
        let found = ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .map(|p| tree.join(p))
            .find(|p| p.is_file())
            .ok_or_else(|| BuildError::Other("busybox-static has no bin/busybox".into()))?;
        std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        std::fs::copy(&found, &path).map_err(BuildError::io(&path))?;
        let _ = remove_if_present(&partial);
        Ok(path)
    }
}

/// The image inside a header layer, when apt pulled it in with the headers.
fn from_layer(layer: &HeaderLayer, kernel: &str) -> Option<KernelImage> {
    let tree = layer.tree.as_ref()?;
    let vmlinuz = tree.join("boot").join(format!("vmlinuz-{kernel}"));
    let modules = tree.join("usr/lib/modules").join(kernel);
    if !vmlinuz.is_file() || !modules.join("kernel").is_dir() {
        return None;
    }
    let package = layer
        .packages
        .iter()
        .find(|p| p.starts_with("linux-image-"))?
        .clone();
    let sha256 = file_sha256(&vmlinuz).ok()?;
    Some(KernelImage {
        kernel: kernel.to_string(),
        package,
        sha256,
        vmlinuz,
        modules,
    })
}

fn read_image(dir: &Path, kernel: &str) -> Option<KernelImage> {
    let text = std::fs::read_to_string(dir.join("image.json")).ok()?;
    let mut image: KernelImage = serde_json::from_str(&text).ok()?;
    let tree = dir.join("tree");
    image.vmlinuz = tree.join("boot").join(format!("vmlinuz-{kernel}"));
    image.modules = ["usr/lib/modules", "lib/modules"]
        .iter()
        .map(|p| tree.join(p).join(kernel))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| tree.join("usr/lib/modules").join(kernel));
    image.vmlinuz.is_file().then_some(image)
}

/// Downloads `package` with apt in `root` (the distro's lists and archive
/// cache, refreshed when the lists are too old to know it) and unpacks it
/// into `tree`; returns its version.
fn fetch_and_unpack(
    runtime: &dyn Runtime,
    root: &RootInfo,
    apt_dir: &Path,
    package: &str,
    tree: &Path,
) -> Result<String> {
    let debs = tempfile::Builder::new()
        .prefix("kmodfarm-debs-")
        .tempdir()
        .map_err(BuildError::io(std::env::temp_dir()))?;
    // apt downloads as its _apt user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(debs.path(), std::fs::Permissions::from_mode(0o1777))
        .map_err(BuildError::io(debs.path()))?;
    std::fs::create_dir_all(tree).map_err(BuildError::io(tree))?;
    let mut binds = HeaderStore::apt_binds(apt_dir)?;
    binds.push(Bind {
        host: debs.path().to_path_buf(),
        guest: GUEST_DEBS.into(),
        writable: true,
    });
    binds.push(Bind {
        host: tree.to_path_buf(),
        guest: GUEST_HEADERS.into(),
        writable: true,
    });
    let script = format!(
        "cd {GUEST_DEBS}\n\
         apt-get -q download \"$PKG\" || {{ apt-get -q update && apt-get -q download \"$PKG\"; }}\n\
         for deb in ./*.deb; do dpkg-deb -x \"$deb\" {GUEST_HEADERS}; dpkg-deb -f \"$deb\" Version > {GUEST_HEADERS}/.version; done\n"
    );
    let spec = RunSpec {
        script: &script,
        binds,
        headers: None,
        network: true,
        env: vec![("PKG".into(), package.to_string())],
    };
    let done = runtime.run(root, &spec)?;
    if !done.success {
        return Err(BuildError::Other(format!(
            "apt in the {} root:\n{}",
            root.distro,
            tail(&done.output, APT_TAIL)
        )));
    }
    let version_file = tree.join(".version");
    let version = std::fs::read_to_string(&version_file)
        .map_err(BuildError::io(&version_file))?
        .trim()
        .to_string();
    let _ = std::fs::remove_file(&version_file);
    Ok(version)
}

pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(BuildError::io(path))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}
