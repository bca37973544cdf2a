//! Everything that can go wrong on a host, each with its own message: what
//! failed, where, and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}; rerun the module's install.sh to rewrite it", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    OsRelease { path: PathBuf, message: String },
    #[error("kernel {kernel}: {reason}; {name} supports it on neither route (prebuilt nor DKMS)")]
    OutOfRange {
        name: String,
        kernel: String,
        reason: String,
    },
    #[error("cannot reach the repository at {url} after {attempts} attempts: {reason}")]
    Unreachable {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("{url}: the server answered {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("{url}: not found on the repository")]
    Missing { url: String },
    #[error("{url}: download truncated: got {got} of {expected} bytes; nothing was installed, try again")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("{url}: checksum mismatch: sha256 is {got}, the signed lookup file says {expected}; nothing was installed")]
    Checksum {
        url: String,
        expected: String,
        got: String,
    },
    #[error("{}: cannot read the repository key: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("{url}: bad signature: {message}; the file was changed after signing or is not from this repository; nothing was installed")]
    BadSignature { url: String, message: String },
    #[error("{url}: signed by another key ({issuer}), not the repository key {expected} in {}; nothing was installed", key.display())]
    OtherKey {
        url: String,
        issuer: String,
        expected: String,
        key: PathBuf,
    },
    #[error("{url}: the index expired at {expires} (now {now}, seconds since the epoch); the repository has not been republished, or this host's clock is wrong")]
    Expired { url: String, expires: u64, now: u64 },
    #[error("{url}: rolled-back index: serial {serial} is lower than {last}, the last one this host accepted ({}); refusing an older copy of the repository", state.display())]
    RolledBack {
        url: String,
        serial: u64,
        last: u64,
        state: PathBuf,
    },
    #[error("{url}: {message}")]
    Lookup { url: String, message: String },
    #[error("`{command}` failed ({status}){}", if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) })]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Read { path, source }
    }

    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Write { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
