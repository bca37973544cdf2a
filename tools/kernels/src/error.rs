//! Everything discovery can fail on, each with the URL, file or distro a
//! user has to look at.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KernelsError {
    #[error("unknown distro '{id}': the known distros are {known}")]
    UnknownDistro { id: String, known: String },

    #[error(
        "no mirror configured for {distro} (suite '{suite}'): pass --mirror URL \
         (or --mirror {distro}=URL){hint}{tried}"
    )]
    NoMirror {
        distro: String,
        suite: String,
        /// Where else a mirror may come from for this distro family.
        hint: &'static str,
        /// Mirrors that were asked and do not serve the suite, as ": tried …".
        tried: String,
    },

    #[error("cannot fetch {url}: {reason} (gave up after {attempts} attempt(s))")]
    Fetch {
        url: String,
        attempts: u32,
        reason: String,
    },

    #[error("{url}: not found (HTTP 404)")]
    NotFound { url: String },

    #[error("offline, and {url} is not in the cache {}", cache.display())]
    NotCached { url: String, cache: PathBuf },

    #[error(
        "{url} is corrupt: its sha256 is {actual} ({actual_size} bytes) but {listed_in} lists \
         {expected} ({expected_size} bytes); nothing was cached"
    )]
    HashMismatch {
        url: String,
        listed_in: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },

    #[error("{listed_in} lists none of {wanted} (so the mirror does not carry this index)")]
    NotListed { listed_in: String, wanted: String },

    #[error("the signature of {url} does not verify with {}: {stderr}", keyring.display())]
    BadSignature {
        url: String,
        keyring: PathBuf,
        stderr: String,
    },

    #[error(
        "{url} expired {ago} s ago (its Valid-Until has passed): the mirror serves an old \
         copy of the suite; use another mirror or wait for it to sync"
    )]
    Expired { url: String, ago: u64 },

    #[error("cannot run gpgv to check {url}")]
    Gpgv { url: String, source: std::io::Error },

    #[error("cannot decompress {what}: {message}")]
    Decompress { what: String, message: String },

    #[error("{what}: {message}")]
    Parse { what: String, message: String },

    #[error("cannot use the cache {}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    Sources(#[from] SourcesError),

    #[error("'{mirror}' is not a mirror URL: write http(s)://HOST/PATH, optionally prefixed by DISTRO= or SUITE=")]
    BadMirror { mirror: String },

    #[error("--mirror {scope}={url}: no distro or suite is called '{scope}' (distros: {known})")]
    UnknownMirrorScope {
        scope: String,
        url: String,
        known: String,
    },

    #[error("cannot start the HTTP client: {0}")]
    Client(String),
}

/// Reading apt sources ([`crate::apt_sources`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot read apt sources {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}:{line}: {why}", path.display())]
    Bad {
        path: PathBuf,
        line: usize,
        why: String,
    },

    #[error("no Debian apt source in {searched}")]
    NoDebian { searched: String },

    #[error("no apt source in {searched} can be rewritten for suite '{suite}'")]
    NoneForSuite { suite: String, searched: String },
}

impl KernelsError {
    pub(crate) fn parse(what: impl Into<String>, message: impl Into<String>) -> Self {
        KernelsError::Parse {
            what: what.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = KernelsError> = std::result::Result<T, E>;
