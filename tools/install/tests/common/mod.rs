//! What the host tests share: kmodfarm-host configured in a sandbox the way
//! install.sh configures a host, and a listing of the sandbox's files.
#![allow(dead_code)]

pub mod build;
pub mod world;

use std::path::PathBuf;

use kmodfarm_model::host::{config_path, HostConfig};
use kmodfarm_model::Manifest;
use kmodfarm_tests::{module_dir, Output, Sandbox};

/// The kmodfarm-host binary cargo built for these tests.
pub fn host_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kmodfarm-host"))
}

pub fn manifest() -> Manifest {
    Manifest::load(&module_dir().join("kmodfarm.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Puts kmodfarm-host, the repository key (armored) and the module's
/// settings into the sandbox, as install.sh does (without adding the apt
/// source, so the prebuilt route places the file itself).
pub fn configure(sandbox: &mut Sandbox, repo: &str, key: &str) -> HostConfig {
    let config = HostConfig::from_manifest(&manifest(), repo);
    sandbox.ro_bind(host_bin(), "/usr/bin/kmodfarm-host");
    sandbox
        .write_file(&config.key, key.as_bytes(), 0o644)
        .unwrap();
    write_config(sandbox, &config);
    config
}

/// Writes `config` where install.sh puts the host's settings.
pub fn write_config(sandbox: &Sandbox, config: &HostConfig) {
    sandbox
        .write_file(
            &config_path(&config.name),
            config.to_toml().as_bytes(),
            0o644,
        )
        .unwrap();
}

/// `kmodfarm-host ARGS...` inside the sandbox.
pub fn kmodfarm_host(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut argv = vec!["kmodfarm-host"];
    argv.extend_from_slice(args);
    sandbox.run(&argv).unwrap_or_else(|e| panic!("{e}"))
}

/// Every file of the sandbox with its size and mode (not /proc, /sys,
/// /dev, /tmp, /run), except those below the `except` paths.
pub fn listing(sandbox: &Sandbox, except: &[&str]) -> Vec<String> {
    let out = sandbox.sh_ok(
        "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run \\) -prune -o -printf '%p %s %m\\n' | sort",
    );
    out.stdout
        .lines()
        .filter(|l| {
            let path = l.split(' ').next().unwrap_or("");
            !except
                .iter()
                .any(|e| path == *e || path.starts_with(&format!("{e}/")))
        })
        .map(str::to_string)
        .collect()
}

/// The lines of `after` not in `before` and the other way round.
pub fn difference(before: &[String], after: &[String]) -> Vec<String> {
    let b: std::collections::BTreeSet<_> = before.iter().collect();
    let a: std::collections::BTreeSet<_> = after.iter().collect();
    a.symmetric_difference(&b).map(|s| s.to_string()).collect()
}

pub fn exists(sandbox: &Sandbox, path: &str) -> bool {
    sandbox.run(&["test", "-e", path]).unwrap().success()
}
