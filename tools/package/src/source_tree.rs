//! Listing the module's source tree: what goes to /usr/src/<name>-<version>.
//! Only the listing happens here (names, modes, sizes); contents are read
//! when a package is written.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use kmodfarm_model::Manifest;

use crate::error::{PackageError, Result};

/// Version-control metadata: never shipped.
const VCS: &[&str] = &[
    ".git",
    ".gitignore",
    ".gitattributes",
    ".gitmodules",
    ".hg",
    ".hgignore",
    ".svn",
    ".bzr",
    "CVS",
    "_darcs",
];

/// Top-level files kmodfarm generates or reads itself: a dkms.conf already in
/// the tree would be replaced by the rendered one, the manifest is not
/// source, and kmodfarm-out/ holds our own output.
const OURS: &[&str] = &[
    "dkms.conf",
    "kmodfarm.toml",
    "kmodfarm-prebuild",
    "kmodfarm-out",
];

/// Markers kmodfarm writes into its output directories (`package --out`,
/// `render --out`): a directory holding one is our output, wherever the
/// user put it, and never source.
const OUTPUT_MARKERS: &[&str] = &[crate::output::OUTPUT_MARKER, ".kmodfarm-render"];

fn is_our_output(dir: &Path) -> bool {
    OUTPUT_MARKERS.iter().any(|m| dir.join(m).exists())
}

/// kbuild products of an earlier in-tree build. They are host- and
/// kernel-specific and would turn an Architecture: all package into one
/// carrying binaries.
fn is_build_product(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".o", ".ko", ".ko.zst", ".ko.xz", ".ko.gz", ".mod", ".mod.c", ".a", ".cmd",
    ];
    const NAMES: &[&str] = &[
        "Module.symvers",
        "modules.order",
        ".tmp_versions",
        ".cache.mk",
    ];
    NAMES.contains(&name) || SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the tree, `/`-separated.
    pub rel: String,
    /// Where it is read from (for a symlink: the link, which is followed).
    pub abs: PathBuf,
    /// 0o755 when any execute bit is set, else 0o644.
    pub mode: u32,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    pub root: PathBuf,
    pub files: Vec<SourceFile>,
    /// Every directory below the root, relative, including empty ones.
    pub dirs: Vec<String>,
}

impl SourceTree {
    /// Lists `manifest.source_path()` in sorted order and checks that the
    /// build scripts the manifest names are in it.
    pub fn of_manifest(manifest: &Manifest) -> Result<Self> {
        let tree = Self::walk(&manifest.source_path())?;
        let b = &manifest.build;
        for script in [&b.pre_build, &b.post_build, &b.post_install]
            .into_iter()
            .flatten()
        {
            let first = script.split_whitespace().next().unwrap_or_default();
            let rel = first.trim_start_matches("./");
            if !tree.files.iter().any(|f| f.rel == rel) {
                return Err(PackageError::MissingScript {
                    manifest: manifest.path.clone(),
                    script: script.clone(),
                    missing: tree.root.join(rel),
                });
            }
        }
        Ok(tree)
    }

    pub fn walk(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(PackageError::NoSourceTree {
                path: root.to_path_buf(),
            });
        }
        let mut tree = SourceTree {
            root: root.to_path_buf(),
            files: Vec::new(),
            dirs: Vec::new(),
        };
        let mut walker = walkdir::WalkDir::new(root)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walker.next() {
            let entry = entry.map_err(|e| PackageError::Read {
                path: e.path().unwrap_or(root).to_path_buf(),
                source: e.into(),
            })?;
            let name = entry.file_name().to_string_lossy();
            let top = entry.depth() == 1;
            if VCS.contains(&name.as_ref())
                || (top && OURS.contains(&name.as_ref()))
                || is_build_product(&name)
                || (entry.file_type().is_dir() && is_our_output(entry.path()))
            {
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .expect("walkdir stays below its root")
                .to_string_lossy()
                .into_owned();
            let path = entry.path();
            if entry.file_type().is_dir() {
                tree.dirs.push(rel);
                continue;
            }
            let meta = regular_target(path, entry.file_type())?;
            // Opening proves the file is readable now, so a package is not
            // abandoned half-way through writing because of it.
            fs::File::open(path).map_err(|source| PackageError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            tree.files.push(SourceFile {
                rel,
                abs: path.to_path_buf(),
                mode: if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                },
                size: meta.len(),
            });
        }
        Ok(tree)
    }
}

/// The metadata of the regular file `path` is or points to; anything else
/// (a FIFO, socket, device, dangling link, link to a directory) is an error
/// naming the path.
fn regular_target(path: &Path, kind: fs::FileType) -> Result<fs::Metadata> {
    let unpackable = |kind| PackageError::Unpackable {
        path: path.to_path_buf(),
        kind,
    };
    if kind.is_fifo() {
        return Err(unpackable("a FIFO"));
    }
    if kind.is_socket() {
        return Err(unpackable("a socket"));
    }
    if kind.is_block_device() || kind.is_char_device() {
        return Err(unpackable("a device node"));
    }
    let meta = fs::metadata(path).map_err(|source| {
        if kind.is_symlink() && source.kind() == std::io::ErrorKind::NotFound {
            PackageError::DanglingSymlink {
                path: path.to_path_buf(),
                target: fs::read_link(path).unwrap_or_default(),
            }
        } else {
            PackageError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if meta.is_dir() {
        return Err(unpackable("a symlink to a directory"));
    }
    if !meta.is_file() {
        return Err(unpackable("a symlink to a special file"));
    }
    Ok(meta)
}
