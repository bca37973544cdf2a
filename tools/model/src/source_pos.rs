use std::fmt;
use std::path::{Path, PathBuf};

/// A TOML file of kmodfarm's (a manifest, a distro definition) that cannot
/// be read, or that says something invalid at a place in it.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{pos}: {message}")]
    Invalid { pos: SourcePos, message: String },
}

/// A place in a file a person can jump to: `path:line:column` (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl SourcePos {
    /// Position of byte `offset` in `text`.
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SourcePos {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}
