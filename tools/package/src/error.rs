use std::path::PathBuf;

/// Everything that stops a package from being planned or written. Each
/// variant names the file or thing a user has to fix.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {kind} in the source tree; a package carries only regular files, directories and symlinks to regular files", path.display())]
    Unpackable { path: PathBuf, kind: &'static str },
    #[error("{}: symlink to {} which does not exist", path.display(), target.display())]
    DanglingSymlink { path: PathBuf, target: PathBuf },
    #[error("{}: build script '{script}' names {}, which is not in the source tree", manifest.display(), missing.display())]
    MissingScript {
        manifest: PathBuf,
        script: String,
        missing: PathBuf,
    },
    #[error("source tree {} is not a directory", path.display())]
    NoSourceTree { path: PathBuf },
    #[error("the rendered files lack '{name}', which the {package} package needs")]
    MissingRendered { name: String, package: String },
    #[error(
        "rendered file '{name}' has no install path and is not one kmodfarm knows where to put"
    )]
    UnplacedRendered { name: String },
    #[error("two files would be installed at {path}")]
    DuplicatePath { path: String },
    #[error("{}: {message}", path.display())]
    Prebuilt { path: PathBuf, message: String },
    #[error("cannot create output directory {}", path.display())]
    OutDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing to the sink a writer was given failed; the caller knows its name.
    #[error("cannot write the package: {0}")]
    Output(std::io::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the .rpm {package}")]
    Rpm {
        package: String,
        source: Box<rpm::Error>,
    },
    #[error("cannot use signing key {}", path.display())]
    SigningKey {
        path: PathBuf,
        source: Box<rpm::Error>,
    },
    #[error("SOURCE_DATE_EPOCH='{value}' is not a number of seconds since 1970")]
    SourceDate { value: String },
}

pub type Result<T, E = PackageError> = std::result::Result<T, E>;
