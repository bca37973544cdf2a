//! The build stage's errors. Each carries what a person needs to fix it:
//! the path, the command and its output, the distro or kernel.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot use {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", tail_suffix(.output))]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("cannot run `{program}` (is {package} installed?)")]
    Spawn {
        program: String,
        package: String,
        source: std::io::Error,
    },
    #[error("unknown distro '{id}'; known: {known}")]
    UnknownDistro { id: String, known: String },
    #[error("distro '{id}' has no root file system recipe here: only Debian-family distros with apt can be made with mmdebstrap")]
    NoRecipe { id: String },
    #[error("no apt source for {suite}: none of {files} serves it; pass --mirror URL")]
    NoSources { suite: String, files: String },
    #[error(transparent)]
    AptSources(#[from] kmodfarm_kernels::SourcesError),
    #[error("container runtime '{runtime}' is not usable: {why}")]
    RuntimeUnavailable { runtime: String, why: String },
    #[error("docker engine not reachable: {why}")]
    DockerUnreachable { why: String },
    #[error("invalid shard '{text}': write I/N with 1 <= I <= N (e.g. 2/3)")]
    BadShard { text: String },
    #[error("{}: {message}", path.display())]
    BadInput { path: PathBuf, message: String },
    #[error("merge conflict: {key} differs between {} and {}", first.display(), second.display())]
    MergeConflict {
        key: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("System.map {} refused for {kernel}: {why}", map.display())]
    SystemMapMismatch {
        map: PathBuf,
        kernel: String,
        why: String,
    },
    #[error(transparent)]
    Staging(#[from] kmodfarm_staging::StagingError),
    #[error("{0}")]
    Other(String),
}

fn tail_suffix(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(15);
    if lines.is_empty() {
        String::new()
    } else {
        format!(":\n{}", lines[start..].join("\n"))
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

impl BuildError {
    /// `map_err(BuildError::io(path))`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
