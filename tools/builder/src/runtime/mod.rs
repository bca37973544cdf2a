//! Where a command runs: inside a distro's build root (bwrap over the root
//! directory, or podman/docker over an image imported from it), or on the
//! host without isolation.
//!
//! Every runtime offers the same view: the root's files, a kernel's header
//! layer on top (see [`crate::headers`]), directories bound at fixed paths
//! below `/kmodfarm`, and the network only when asked for (header
//! downloads); compiles run without it.

use std::path::{Path, PathBuf};

use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::process::Finished;

pub mod bwrap;
pub mod docker;
pub mod host;
pub mod podman;

/// Guest mount points, made in every root by `kmodfarm image build`.
pub const GUEST_SRC: &str = "/kmodfarm/src";
pub const GUEST_OUT: &str = "/kmodfarm/out";
pub const GUEST_KEYS: &str = "/kmodfarm/keys";
pub const GUEST_DEBS: &str = "/kmodfarm/debs";
pub const GUEST_HEADERS: &str = "/kmodfarm/headers";
pub const MOUNT_POINTS: &[&str] = &[GUEST_SRC, GUEST_OUT, GUEST_KEYS, GUEST_DEBS, GUEST_HEADERS];

pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A host directory seen inside at `guest`.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    /// A POSIX shell script (`sh -ec`).
    pub script: &'a str,
    pub binds: Vec<Bind>,
    /// A kernel's unpacked header tree, laid over the root.
    pub headers: Option<&'a Path>,
    pub network: bool,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    Podman,
    Docker,
    Bwrap,
    Host,
}

impl std::str::FromStr for RuntimeKind {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "podman" => RuntimeKind::Podman,
            "docker" => RuntimeKind::Docker,
            "bwrap" => RuntimeKind::Bwrap,
            "host" => RuntimeKind::Host,
            _ => {
                return Err(BuildError::Other(format!(
                    "unknown runtime '{s}': use podman, docker, bwrap or host"
                )))
            }
        })
    }
}

pub trait Runtime: Send + Sync {
    fn kind(&self) -> RuntimeKind;

    /// Makes `root` usable (imports it as an image, for instance).
    fn prepare_root(&self, root: &RootInfo) -> Result<()>;

    /// Runs `spec` in `root`; fails only when it cannot run at all.
    fn run(&self, root: &RootInfo, spec: &RunSpec) -> Result<Finished>;

    /// Where a path bound at `guest` is, as the command sees it (the host
    /// runtime sees host paths).
    fn guest_path(&self, bind: &Bind) -> String {
        bind.guest.clone()
    }

    /// Whether kernel headers come from a layer over the root (all but host).
    fn uses_header_layer(&self) -> bool {
        true
    }

    /// Removes what runs of kmodfarm that were killed left running in
    /// this runtime (containers); returns their names.
    fn sweep(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The runtime asked for, or the first that works: podman, then bwrap, then
/// the host (with `warn` told why there is no isolation).
pub fn select(kind: Option<RuntimeKind>, warn: &dyn Fn(String)) -> Result<Box<dyn Runtime>> {
    match kind {
        Some(RuntimeKind::Podman) => Ok(Box::new(podman::Podman::detect()?)),
        Some(RuntimeKind::Docker) => Ok(Box::new(docker::Docker::detect()?)),
        Some(RuntimeKind::Bwrap) => Ok(Box::new(bwrap::Bwrap::detect()?)),
        Some(RuntimeKind::Host) => Ok(Box::new(host::Host)),
        None => {
            let podman_err = match podman::Podman::detect() {
                Ok(p) => return Ok(Box::new(p)),
                Err(e) => e,
            };
            let bwrap_err = match bwrap::Bwrap::detect() {
                Ok(b) => return Ok(Box::new(b)),
                Err(e) => e,
            };
            warn(format!(
                "building on the host without isolation ({podman_err}; {bwrap_err})"
            ));
            Ok(Box::new(host::Host))
        }
    }
}
