//! Running host commands and keeping everything they said.

use std::ffi::OsStr;
use std::fmt;
use std::process::{Command, ExitStatus, Stdio};

use crate::error::{Error, Result};

/// A finished command: how it ended and what it printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout then stderr, for assertions about anything the command said.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// `Ok(self)` when the command succeeded, else [`Error::Failed`] with
    /// its whole output.
    pub fn ok(self) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::Failed {
                command: self.command,
                status: self.status.to_string(),
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }

    /// Like [`Output::ok`], panicking with the whole output on failure.
    #[track_caller]
    pub fn expect_ok(self) -> Output {
        match self.ok() {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Panics, showing the whole output, when the command succeeded.
    #[track_caller]
    pub fn expect_failure(self) -> Output {
        assert!(
            !self.success(),
            "`{}` was expected to fail but succeeded\n{self}",
            self.command
        );
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// A readable rendering of a command line (not for a shell to parse).
pub(crate) fn describe(cmd: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            format!("'{}'", s.replace('\'', r"'\''"))
        } else {
            s.into_owned()
        }
    };
    std::iter::once(quote(cmd.get_program()))
        .chain(cmd.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion with no stdin, capturing stdout and stderr.
/// Runs a host command that must succeed: its stdout, or a panic showing
/// the command and everything it said.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    capture(cmd)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect_ok()
        .stdout
}

pub(crate) fn capture(cmd: &mut Command) -> Result<Output> {
    let command = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    Ok(Output {
        command,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Fails with [`Error::MissingTool`] unless `tool` is on PATH.
pub(crate) fn require_tool(tool: &'static str, package: &'static str) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
    if found {
        Ok(())
    } else {
        Err(Error::MissingTool { tool, package })
    }
}

/// Fails with [`Error::NotRoot`] unless this process runs as root: making
/// roots (mmdebstrap's root mode) and mounting sandboxes need it.
pub(crate) fn require_root(what: &'static str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if uid == 0 {
        Ok(())
    } else {
        Err(Error::NotRoot { what })
    }
}
