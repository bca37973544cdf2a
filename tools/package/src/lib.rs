//! kmodfarm's package stage: plan, then write.
//!
//! - Plan ([`dkms::plan_dkms`], [`prebuilt::plan_prebuilt`]): compute a
//!   [`PackageSpec`] — metadata, dependencies, every file with its mode,
//!   maintainer scripts — from the manifest, the distro, the rendered files
//!   and the listed source tree or build output. Pure data, printable as
//!   JSON (`kmodfarm package --dry-run --json`).
//! - Write ([`write_deb`], [`write_rpm`]) to any `impl Write`, or
//!   [`write_package`] into a directory, all or nothing.
//!
//! Reproducible: every timestamp written is `PackageSpec::source_date`,
//! every owner root:root, every list sorted, nothing host-specific, so two
//! runs with the same inputs and SOURCE_DATE_EPOCH give identical bytes.

mod content;
pub mod deb;
mod debian_docs;
pub mod dkms;
pub mod error;
mod output;
pub mod prebuilt;
pub mod rpm;
pub mod source_tree;
pub mod spec;
mod tarball;

use std::path::Path;

pub use deb::write_deb;
pub use error::{PackageError, Result};
pub use output::{write_package, write_packages, OUTPUT_MARKER};
pub use rpm::{write_rpm, SigningKey};
pub use source_tree::SourceTree;
pub use spec::{Dependency, FileData, FileEntry, Format, PackageSpec, Script, ScriptKind};

/// A file the render stage produced, as this stage needs it: bytes, not
/// text, and without the template it came from. Made from a
/// [`kmodfarm_render::RenderedFile`] with `From`; tests build them by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// `dkms.conf`, `debian/postinst`, `rpm/post`, … .
    pub name: String,
    /// Absolute path on the target; `None` for files that go with the
    /// module source and for maintainer scripts.
    pub install_path: Option<String>,
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl From<kmodfarm_render::RenderedFile> for GeneratedFile {
    fn from(rendered: kmodfarm_render::RenderedFile) -> Self {
        GeneratedFile {
            name: rendered.name,
            install_path: rendered.install_path,
            mode: rendered.mode,
            contents: rendered.contents.into_bytes(),
        }
    }
}

/// The timestamp packages carry. With SOURCE_DATE_EPOCH set (its value is
/// passed in `env`), that. Without it, the newest modification time among
/// `inputs` (the manifest and every source file): the time the package's
/// content last changed, which, unlike the current time, gives the same
/// bytes again when nothing changed, and moves forward when anything did.
pub fn resolve_source_date<'a>(
    env: Option<&str>,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<u64> {
    if let Some(value) = env {
        return value
            .trim()
            .parse::<u32>()
            .map(u64::from)
            .map_err(|_| PackageError::SourceDate {
                value: value.to_string(),
            });
    }
    let mut newest = 0;
    for path in inputs {
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|source| PackageError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let secs = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        newest = newest.max(secs.min(u64::from(u32::MAX)));
    }
    Ok(newest)
}
