//! One test's private, writable view of a [`PreparedRoot`], entered with
//! bwrap through the builder's runtime ([`BwrapCommand`]). Changes
//! (installed packages, DKMS state) persist across commands of the same
//! sandbox and vanish with it; the cached root is never written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kmodfarm_builder::runtime::bwrap::{BwrapCommand, Overlay, RootFs};
/// A host path mounted into the sandbox for one or more commands (the
/// builder runtime's own bind).
pub use kmodfarm_builder::runtime::Bind;
use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::process::{capture, require_tool, Output};
use crate::root::PreparedRoot;

/// How a sandbox gets its writable root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxBackend {
    /// bwrap's own overlay (`--overlay-src ROOT --overlay UPPER WORK /`),
    /// bubblewrap 0.9 and later.
    BwrapOverlay,
    /// An overlayfs mounted in a private mount namespace (`unshare -m`) that
    /// bwrap then binds as `/`; the mount dies with the command, so nothing
    /// is left mounted. Needs root; used where bwrap has no overlay (0.8).
    KernelOverlay,
    /// A full copy (`cp -a --reflink=auto`): slow, works everywhere.
    Copy,
}

/// Where [`Sandbox::copy_in`] mounts what it copies: inside the per-command
/// /tmp, so the mount point never lands in the sandbox's own file system.
const INBOX: &str = "/tmp/kmodfarm-inbox";

/// A writable sandbox over a root. Dropping it deletes its changes.
pub struct Sandbox {
    lower: PathBuf,
    backend: SandboxBackend,
    scratch: TempDir,
    /// Host paths bound into every command.
    binds: Vec<Bind>,
}

impl Sandbox {
    /// A fresh sandbox over `root`, using the cheapest backend that works on
    /// this machine (probed once per process).
    pub fn new(root: &PreparedRoot) -> Result<Sandbox> {
        require_tool("bwrap", "bubblewrap")?;
        let backend = backend_for(&root.path)?;
        Sandbox::with_backend(root, backend)
    }

    /// A fresh sandbox over `root` using `backend` (to test one that this
    /// machine would not choose by itself).
    pub fn with_backend(root: &PreparedRoot, backend: SandboxBackend) -> Result<Sandbox> {
        require_tool("bwrap", "bubblewrap")?;
        let scratch = scratch_dir(&root.path)?;
        let sandbox = Sandbox {
            lower: root.path.clone(),
            backend,
            scratch,
            binds: Vec::new(),
        };
        sandbox.prepare()?;
        Ok(sandbox)
    }

    pub fn backend(&self) -> SandboxBackend {
        self.backend
    }

    /// Binds host `host` read-only at `guest` in every later command.
    pub fn ro_bind(&mut self, host: impl Into<PathBuf>, guest: &str) -> &mut Sandbox {
        self.binds.push(Bind {
            host: host.into(),
            guest: guest.to_string(),
            writable: false,
        });
        self
    }

    /// Binds host `host` read-write at `guest` in every later command: a
    /// way to get results out of the sandbox.
    pub fn bind(&mut self, host: impl Into<PathBuf>, guest: &str) -> &mut Sandbox {
        self.binds.push(Bind {
            host: host.into(),
            guest: guest.to_string(),
            writable: true,
        });
        self
    }

    fn prepare(&self) -> Result<()> {
        let s = self.scratch.path();
        match self.backend {
            SandboxBackend::BwrapOverlay | SandboxBackend::KernelOverlay => {
                for dir in ["upper", "work", "merged"] {
                    let path = s.join(dir);
                    fs::create_dir(&path).map_err(Error::io(&path))?;
                }
                Ok(())
            }
            SandboxBackend::Copy => capture(
                Command::new("cp")
                    .args(["-a", "--reflink=auto"])
                    .arg(&self.lower)
                    .arg(s.join("root")),
            )?
            .ok()
            .map(drop),
        }
    }

    /// The full command line that runs `argv` inside the sandbox: the
    /// builder's bwrap command (one place starts bwrap over a root) over
    /// this sandbox's writable view, with the host's network.
    fn command(&self, argv: &[&str], extra: &[Bind]) -> Command {
        let s = self.scratch.path();
        let (upper, work, merged, copy) = (
            s.join("upper"),
            s.join("work"),
            s.join("merged"),
            s.join("root"),
        );
        let root = match self.backend {
            SandboxBackend::BwrapOverlay => RootFs::BwrapOverlay {
                lower: &self.lower,
                upper: &upper,
                work: &work,
            },
            SandboxBackend::KernelOverlay => RootFs::Overlay(Overlay {
                lower: vec![&self.lower],
                upper: Some((&upper, &work)),
                mount_point: &merged,
                bind_over: Vec::new(),
            }),
            SandboxBackend::Copy => RootFs::Writable(&copy),
        };
        BwrapCommand {
            root,
            binds: self.binds.iter().chain(extra).cloned().collect(),
            // apt inside fetches from the mirrors the host's sources name.
            network: true,
            home: "/root",
            env: Vec::new(),
        }
        .command(argv)
    }

    /// Runs `argv` inside the sandbox; the result says how it went.
    pub fn run(&self, argv: &[&str]) -> Result<Output> {
        self.run_with(argv, &[])
    }

    /// [`Sandbox::run`] with `binds` added for this command only.
    pub fn run_with(&self, argv: &[&str], binds: &[Bind]) -> Result<Output> {
        let mut out = capture(&mut self.command(argv, binds))?;
        out.command = argv.join(" "); // messages show what the test ran
        Ok(out)
    }

    /// Runs a POSIX shell script inside the sandbox.
    pub fn sh(&self, script: &str) -> Result<Output> {
        let mut out = capture(&mut self.command(&["sh", "-ec", script], &[]))?;
        out.command = format!("sh -ec '{script}'");
        Ok(out)
    }

    /// [`Sandbox::run`], panicking with the whole output unless it succeeds.
    #[track_caller]
    pub fn run_ok(&self, argv: &[&str]) -> Output {
        self.run(argv).unwrap_or_else(|e| panic!("{e}")).expect_ok()
    }

    /// [`Sandbox::sh`], panicking with the whole output unless it succeeds.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> Output {
        self.sh(script)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect_ok()
    }

    /// Copies host file or directory `host` to `guest` (created, or merged
    /// into an existing directory), keeping modes.
    pub fn copy_in(&self, host: &Path, guest: &str) -> Result<()> {
        let script = "mkdir -p \"$(dirname \"$1\")\" && cp -aT \"$2\" \"$1\"";
        let argv = ["sh", "-ec", script, "sh", guest, INBOX];
        let inbox = Bind {
            host: host.to_path_buf(),
            guest: INBOX.to_string(),
            writable: false,
        };
        capture(&mut self.command(&argv, &[inbox]))?.ok().map(drop)
    }

    /// Writes `contents` to `guest` with permission bits `mode`.
    pub fn write_file(&self, guest: &str, contents: &[u8], mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let staging = self.scratch.path().join("inbox-file");
        fs::write(&staging, contents).map_err(Error::io(&staging))?;
        fs::set_permissions(&staging, fs::Permissions::from_mode(mode))
            .map_err(Error::io(&staging))?;
        let result = self.copy_in(&staging, guest);
        let _ = fs::remove_file(&staging);
        result
    }

    /// The contents of `guest`, read inside the sandbox.
    pub fn read_file(&self, guest: &str) -> Result<String> {
        Ok(self.run(&["cat", guest])?.ok()?.stdout)
    }
}

/// A temp dir beside the root (same file system: reflinks and overlay
/// work dirs need that), removed when the sandbox is dropped.
fn scratch_dir(root: &Path) -> Result<TempDir> {
    let parent = root.parent().unwrap_or(Path::new("/tmp"));
    tempfile::Builder::new()
        .prefix("sandbox-")
        .tempdir_in(parent)
        .map_err(Error::io(parent))
}

/// The first backend that can run `true` over `root`; probed once.
fn backend_for(root: &Path) -> Result<SandboxBackend> {
    static CHOICE: OnceLock<SandboxBackend> = OnceLock::new();
    if let Some(choice) = CHOICE.get() {
        return Ok(*choice);
    }
    for backend in [SandboxBackend::BwrapOverlay, SandboxBackend::KernelOverlay] {
        let probe = Sandbox {
            lower: root.to_path_buf(),
            backend,
            scratch: scratch_dir(root)?,
            binds: Vec::new(),
        };
        probe.prepare()?;
        if probe.run(&["true"]).is_ok_and(|out| out.success()) {
            return Ok(*CHOICE.get_or_init(|| backend));
        }
    }
    Ok(*CHOICE.get_or_init(|| SandboxBackend::Copy))
}
