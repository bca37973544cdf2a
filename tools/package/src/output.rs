//! Writing a package file into the output directory, all or nothing: the
//! bytes go to a temporary file beside the destination, which is renamed
//! over it only once complete. On any error the temporary file is deleted,
//! so no partial package is ever left where a publisher or apt could pick
//! it up.

use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::deb::write_deb;
use crate::error::{PackageError, Result};
use crate::rpm::{write_rpm, SigningKey};
use crate::spec::{Format, PackageSpec};

/// Writes `spec` to `out_dir/<its file name>` and returns that path.
/// `key` signs .rpm files; .deb files are never signed individually (the
/// apt repository is).
pub fn write_package(
    spec: &PackageSpec,
    out_dir: &Path,
    key: Option<&SigningKey>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir).map_err(|source| PackageError::OutDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let dest = out_dir.join(spec.file_name());
    let write_err = |source| PackageError::Write {
        path: dest.clone(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", spec.file_name()))
        .suffix(".part")
        .tempfile_in(out_dir)
        .map_err(|source| PackageError::OutDir {
            path: out_dir.to_path_buf(),
            source,
        })?;
    {
        let sink = BufWriter::new(tmp.as_file_mut());
        let written = match spec.format {
            Format::Deb => write_deb(spec, sink),
            Format::Rpm => write_rpm(spec, key, sink),
        };
        written.map_err(|e| match e {
            PackageError::Output(source) => write_err(source),
            other => other,
        })?;
    }
    let file = tmp.as_file();
    // tempfile creates 0600; a package is for everyone to read.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    tmp.persist(&dest).map_err(|e| write_err(e.error))?;
    Ok(dest)
}
