//! No isolation: the host's compiler and the host's installed headers
//! (/lib/modules/K/build). For machines without podman or bwrap; the
//! result is only right when the host's compiler matches the kernel's.

use std::process::Command;

use super::{Bind, RunSpec, Runtime, RuntimeKind};
use crate::error::Result;
use crate::image::RootInfo;
use crate::process::{run, Finished};

pub struct Host;

impl Runtime for Host {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Host
    }

    fn prepare_root(&self, _root: &RootInfo) -> Result<()> {
        Ok(())
    }

    fn run(&self, _root: &RootInfo, spec: &RunSpec) -> Result<Finished> {
        let mut cmd = Command::new("sh");
        cmd.args(["-ec", spec.script]).current_dir("/");
        for (name, value) in &spec.env {
            cmd.env(name, value);
        }
        run(&mut cmd, "a POSIX shell")
    }

    fn guest_path(&self, bind: &Bind) -> String {
        bind.host.display().to_string()
    }

    fn uses_header_layer(&self) -> bool {
        false
    }
}
