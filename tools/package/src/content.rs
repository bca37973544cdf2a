//! Reading every file's contents once, right before a writer needs them.

use crate::error::{PackageError, Result};
use crate::spec::{FileData, PackageSpec};

/// A file of a spec with its bytes in memory.
pub struct LoadedFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
    pub conffile: bool,
}

/// The spec's files, read, in path order.
pub fn load_files(spec: &PackageSpec) -> Result<Vec<LoadedFile>> {
    let mut files = spec
        .files
        .iter()
        .map(|f| {
            let bytes = match &f.data {
                FileData::Inline { bytes } => bytes.clone(),
                FileData::Source { path, .. } => {
                    std::fs::read(path).map_err(|source| PackageError::Read {
                        path: path.clone(),
                        source,
                    })?
                }
            };
            Ok(LoadedFile {
                path: f.path.clone(),
                mode: f.mode,
                bytes,
                conffile: f.conffile,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
