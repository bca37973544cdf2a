//! Writing packages into the output directory, all or nothing: every
//! package is written to a temporary file inside the directory (under
//! kmodfarm-staging's one recognisable name, with the directory locked), and
//! only when all of them are complete are they renamed into place. On any
//! error the temporary files are deleted, and a directory this run created
//! is removed again, so no partial package is ever left where a publisher
//! or apt could pick it up; what a killed run left is swept by the next.

use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kmodfarm_staging::{Staging, StagingError};

use crate::deb::write_deb;
use crate::error::{PackageError, Result};
use crate::rpm::{write_rpm, SigningKey};
use crate::spec::{Format, PackageSpec};

/// Written into every directory packages are written to, so that a source
/// tree that contains one (`--out` inside the module's source) never ships
/// earlier packages inside the next one.
pub const OUTPUT_MARKER: &str = ".kmodfarm-output";

/// Writes `spec` to `out_dir/<its file name>` and returns that path.
pub fn write_package(
    spec: &PackageSpec,
    out_dir: &Path,
    key: Option<&SigningKey>,
) -> Result<PathBuf> {
    let mut paths = write_packages(std::slice::from_ref(spec), out_dir, key)?;
    Ok(paths.remove(0))
}

/// Writes every spec to `out_dir/<its file name>`, all or none, and
/// returns their paths in order. `key` signs .rpm files; .deb files are
/// never signed individually (the apt repository is).
pub fn write_packages(
    specs: &[PackageSpec],
    out_dir: &Path,
    key: Option<&SigningKey>,
) -> Result<Vec<PathBuf>> {
    let (staging, _swept) = Staging::open(out_dir).map_err(|e| match e {
        StagingError::Create { path, source }
        | StagingError::Lock { path, source }
        | StagingError::Sweep { path, source } => PackageError::OutDir { path, source },
    })?;
    let out_err = |source| PackageError::OutDir {
        path: out_dir.to_path_buf(),
        source,
    };
    let marker = out_dir.join(OUTPUT_MARKER);
    if !marker.exists() {
        std::fs::write(
            &marker,
            "kmodfarm package output; source trees that contain it leave it out\n",
        )
        .map_err(out_err)?;
    }
    let mut written = Vec::with_capacity(specs.len());
    for spec in specs {
        let dest = out_dir.join(spec.file_name());
        let tmp = staging.temp_file(&spec.file_name()).map_err(out_err)?;
        write_one(spec, key, tmp.as_file(), &dest)?;
        written.push((tmp, dest));
    }
    let mut paths = Vec::with_capacity(written.len());
    for (tmp, dest) in written {
        tmp.persist(&dest).map_err(|e| PackageError::Write {
            path: dest.clone(),
            source: e.error,
        })?;
        paths.push(dest);
    }
    staging.commit();
    Ok(paths)
}

fn write_one(
    spec: &PackageSpec,
    key: Option<&SigningKey>,
    mut file: &std::fs::File,
    dest: &Path,
) -> Result<()> {
    let write_err = |source| PackageError::Write {
        path: dest.to_path_buf(),
        source,
    };
    {
        let sink = BufWriter::new(&mut file);
        let written = match spec.format {
            Format::Deb => write_deb(spec, sink),
            Format::Rpm => write_rpm(spec, key, sink),
        };
        written.map_err(|e| match e {
            PackageError::Output(source) => write_err(source),
            other => other,
        })?;
    }
    // tempfile creates 0600; a package is for everyone to read.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(write_err)?;
    file.sync_all().map_err(write_err)
}
