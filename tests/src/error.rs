use std::io;
use std::path::PathBuf;

use kmodfarm_model::error_text::with_causes;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a harness step failed. Every variant names the file, command or
/// thing involved, so a failing test says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },

    #[error("`{tool}` is not installed; the tests need it (apt-get install {package}; see scripts/test-deps.txt)")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },

    #[error("{what} needs root (the test suite runs as root, as CI does)")]
    NotRoot { what: &'static str },

    #[error("cannot start `{command}`: {source}")]
    Spawn { command: String, source: io::Error },

    #[error("`{command}` failed ({status})\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}")]
    Failed {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },

    /// This machine's apt sources could not be read or serve no such suite.
    #[error("{}", with_causes(.0))]
    AptSources(kmodfarm_kernels::SourcesError),

    /// A step shared with the builder (its cache lock, for instance).
    #[error("{}", with_causes(.0))]
    Builder(kmodfarm_builder::BuildError),

    #[error("no linux-headers-<release>-amd64 package of series {series} in {suite}'s package lists ({lists})")]
    NoHeaders {
        series: String,
        suite: String,
        lists: PathBuf,
    },
}

// The harness's errors are read as panic messages (their Display alone),
// so a wrapped library error is shown with its causes and is not also
// offered as source().
impl From<kmodfarm_kernels::SourcesError> for Error {
    fn from(e: kmodfarm_kernels::SourcesError) -> Error {
        Error::AptSources(e)
    }
}

impl From<kmodfarm_builder::BuildError> for Error {
    fn from(e: kmodfarm_builder::BuildError) -> Error {
        Error::Builder(e)
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
