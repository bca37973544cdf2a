//! The world a plan acts on: this machine's files (below a root, `/` on a
//! real host) and its commands (package manager, kmod, dkms, initramfs
//! tools, systemctl). [`SystemHost`] is the real one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// What a finished command said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

pub trait Host {
    /// Where the host's file system starts (`/`).
    fn root(&self) -> &Path;
    /// Runs `argv`, capturing its output; a non-zero exit is not an error
    /// here (callers decide).
    fn run(&self, argv: &[&str]) -> Result<Ran>;
    /// Whether `name` is on PATH.
    fn has_command(&self, name: &str) -> bool;

    /// `path` (absolute on the host) below the root.
    fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// Runs `argv` and fails with its stderr unless it succeeds.
    fn run_ok(&self, argv: &[&str]) -> Result<Ran> {
        let ran = self.run(argv)?;
        if ran.success {
            Ok(ran)
        } else {
            Err(Error::Command {
                command: argv.join(" "),
                status: ran.status,
                stderr: if ran.stderr.trim().is_empty() {
                    ran.stdout
                } else {
                    ran.stderr
                },
            })
        }
    }
}

/// This machine.
pub struct SystemHost {
    root: PathBuf,
}

impl SystemHost {
    pub fn new() -> SystemHost {
        SystemHost {
            root: PathBuf::from("/"),
        }
    }
}

impl Default for SystemHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Host for SystemHost {
    fn root(&self) -> &Path {
        &self.root
    }

    fn run(&self, argv: &[&str]) -> Result<Ran> {
        let (program, args) = argv.split_first().expect("a command has a program");
        let out = Command::new(program)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                command: argv.join(" "),
                source,
            })?;
        Ok(Ran {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn has_command(&self, name: &str) -> bool {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
    }
}
