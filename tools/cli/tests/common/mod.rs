//! What the cli tests share: the real binary run in a project directory,
//! its output as one text, and a small valid manifest.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

macro_rules! sensor_package {
    () => {
        r#"[package]
name = "sensor"
version = "1.4.0"
license = "GPL-2.0-only"
summary = "Security sensor"
description = "Watches what processes do."
maintainer = "Sec Co <dev@sec.example>"

[[module]]
name = "sensor"
"#
    };
}

/// A small valid manifest: one module, no kernel range.
pub const SENSOR_PACKAGE: &str = sensor_package!();

/// The same with a kernel range.
pub const SENSOR_MANIFEST: &str = concat!(
    sensor_package!(),
    "\n[kernels]\nmin = \"5.15\"\nmax = \"6.8\"\n"
);

/// `kmodfarm ARGS` in `dir`, after `setup` adjusts the command (its
/// environment, mostly).
pub fn kmodfarm_in(dir: &Path, args: &[&str], setup: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmodfarm"));
    cmd.args(args).current_dir(dir);
    setup(&mut cmd);
    cmd.output().expect("kmodfarm runs")
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
