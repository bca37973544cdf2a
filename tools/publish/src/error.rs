use std::path::PathBuf;

/// Why a publish stopped. Each names the file or directory to look at; a
/// publish that returns one of these before its commit step has left the
/// repository as it was.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{path}: not a package: {message}")]
    NotAPackage { path: PathBuf, message: String },
    #[error("{path}: package '{package}' is not one of module {module}'s ({module}-dkms, {module}-modules-<kernel>, kmod-{module}-<kernel>, or kmodfarm-host); check --packages and the manifest")]
    WrongModule {
        path: PathBuf,
        package: String,
        module: String,
    },
    #[error("{path}: which distro is the prebuilt package for kernel {kernel} for? {message}")]
    UnknownDistro {
        path: PathBuf,
        kernel: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Conflict { path: PathBuf, message: String },
    #[error("{path} is not a kmodfarm repository (it is not empty and has no .kmodfarm/state.json); publish into an empty or new directory")]
    NotARepo { path: PathBuf },
    #[error("{path}: the repository's state file is unreadable: {message}")]
    BadState { path: PathBuf, message: String },
    #[error("another publish is running on this repository (it holds {lock}); wait for it, or pass --wait")]
    Locked { lock: PathBuf },
    #[error("{path}: not a kmodfarm build output: {message}")]
    BadBuilds { path: PathBuf, message: String },
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// An .rpm that cannot be read, or yum metadata that cannot be made.
    #[error(transparent)]
    Rpm(#[from] crate::rpm_md::Error),
    /// An .rpm signed by another key, or one that cannot be signed.
    #[error(transparent)]
    RpmSign(#[from] crate::rpm_sign::RpmSignError),
    #[error(transparent)]
    Page(#[from] crate::page::PageError),
}

impl PublishError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PublishError::Io { op, path, source }
    }
}

pub type Result<T, E = PublishError> = std::result::Result<T, E>;
