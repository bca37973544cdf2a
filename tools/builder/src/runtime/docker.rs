//! docker: the same images and arguments as podman, through a docker
//! engine. Where no engine answers (as on machines with podman only), it
//! says so instead of failing later.

use std::process::Command;

use super::podman::Podman;
use super::{RunSpec, Runtime, RuntimeKind};
use crate::error::{BuildError, Result};
use crate::image::RootInfo;
use crate::process::{on_path, run, Finished};

pub struct Docker {
    inner: Podman,
}

impl Docker {
    pub fn detect() -> Result<Docker> {
        if !on_path("docker") {
            return Err(BuildError::DockerUnreachable {
                why: "no `docker` program on PATH (install docker, or use --runtime podman|bwrap)"
                    .into(),
            });
        }
        let info = run(
            Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
            "docker",
        )?;
        if !info.success {
            return Err(BuildError::DockerUnreachable {
                why: format!("`docker info` failed: {}", info.output.trim()),
            });
        }
        Ok(Docker {
            inner: Podman::with_program("docker"),
        })
    }
}

impl Runtime for Docker {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }
    fn prepare_root(&self, root: &RootInfo) -> Result<()> {
        self.inner.prepare_root(root)
    }
    fn run(&self, root: &RootInfo, spec: &RunSpec) -> Result<Finished> {
        self.inner.run(root, spec)
    }
    fn sweep(&self) -> Result<Vec<String>> {
        self.inner.sweep()
    }
}
