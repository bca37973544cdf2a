//! What a customer's host knows about one module: the settings install.sh
//! writes (rendered from the manifest at publish time) and the target-side
//! program `kmodfarm-host` reads, and where every file it owns lives. Both
//! sides use these definitions, so the script and the program cannot
//! disagree about a path.

use serde::{Deserialize, Serialize};

use crate::kernel::{KernelRange, VersionBound};
use crate::manifest::{KernelInput, Manifest};

/// `/etc/kmodfarm-host/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The module package's name (`[package] name`).
    pub name: String,
    /// The version install.sh was rendered for (the repository may hold newer).
    pub version: String,
    /// The repository's base URL (http or https; everything fetched from it
    /// is checked against the OpenPGP key either way).
    pub repo: String,
    /// The repository's armored public key on this host.
    pub key: String,
    /// A CA bundle for the repository's TLS certificate, when it is not
    /// signed by a CA the system trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The supported kernel range (`[kernels]`), inclusive at its precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels_max: Option<String>,
    /// The kernel modules the package ships (`[[module]] name`).
    pub modules: Vec<String>,
    /// Loaded at every boot (modules-load.d).
    #[serde(default)]
    pub load: Vec<String>,
    /// Loaded early: added to the initramfs.
    #[serde(default)]
    pub initramfs: Vec<String>,
    /// The module's build reads the kernel's real System.map, so the DKMS
    /// route must wait for the kernel image.
    #[serde(default)]
    pub needs_system_map: bool,
}

impl HostConfig {
    /// The settings for `manifest`, served from `repo`.
    pub fn from_manifest(manifest: &Manifest, repo: &str) -> HostConfig {
        let name = &manifest.package.name;
        HostConfig {
            name: name.clone(),
            version: manifest.package.version.clone(),
            repo: repo.trim_end_matches('/').to_string(),
            key: key_path(name),
            ca: None,
            kernels_min: manifest.kernels.min.as_ref().map(ToString::to_string),
            kernels_max: manifest.kernels.max.as_ref().map(ToString::to_string),
            modules: manifest.modules.iter().map(|m| m.name.clone()).collect(),
            load: manifest.boot.load.clone(),
            initramfs: manifest.boot.initramfs.clone(),
            needs_system_map: manifest.build.needs(KernelInput::SystemMap),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("host settings serialize")
    }

    /// Parses the settings file; the error names what is wrong.
    pub fn parse(text: &str) -> Result<HostConfig, String> {
        let config: HostConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.range()?;
        Ok(config)
    }

    /// The supported range, parsed.
    pub fn range(&self) -> Result<KernelRange, String> {
        let bound = |b: &Option<String>| -> Result<Option<VersionBound>, String> {
            b.as_deref()
                .map(|s| {
                    s.parse()
                        .map_err(|e: crate::kernel::BoundParseError| e.to_string())
                })
                .transpose()
        };
        Ok(KernelRange {
            min: bound(&self.kernels_min)?,
            max: bound(&self.kernels_max)?,
        })
    }
}

/// The settings file of module `name`.
pub fn config_path(name: &str) -> String {
    format!("/etc/kmodfarm-host/{name}.toml")
}

/// The repository key (armored), used by apt's `signed-by`, dnf's `gpgkey`
/// and kmodfarm-host alike.
pub fn key_path(name: &str) -> String {
    format!("/usr/share/keyrings/{name}-archive-keyring.asc")
}

/// State kmodfarm-host keeps: the last accepted serial, what it installed,
/// what the kernel hook staged, whether the host opted into DKMS.
pub fn state_dir(name: &str) -> String {
    format!("/var/lib/{name}")
}

/// The boot unit that makes sure the running kernel has the module.
pub fn unit_name(name: &str) -> String {
    format!("{name}-modules.service")
}

pub fn unit_path(name: &str) -> String {
    format!("/etc/systemd/system/{}", unit_name(name))
}

/// The kernel postinst hook that stages the prebuilt module of a new kernel.
/// `zz-` so it runs after the distribution's own hooks (dkms, initramfs).
pub fn kernel_hook_path(name: &str) -> String {
    format!("/etc/kernel/postinst.d/zz-{name}-modules")
}

/// The load-at-boot entry kmodfarm-host writes when no package ships one.
pub fn modules_load_path(name: &str) -> String {
    format!("/etc/modules-load.d/{name}.conf")
}

/// Repository definitions install.sh writes, per package manager.
pub fn apt_source_path(name: &str) -> String {
    format!("/etc/apt/sources.list.d/{name}.sources")
}

pub fn yum_repo_path(name: &str) -> String {
    format!("/etc/yum.repos.d/{name}.repo")
}

pub fn zypper_repo_path(name: &str) -> String {
    format!("/etc/zypp/repos.d/{name}.repo")
}

/// The Debian package that carries kmodfarm-host in the repository.
pub const HOST_PACKAGE: &str = "kmodfarm-host";

/// Where that package installs the program.
pub const HOST_BIN: &str = "/usr/bin/kmodfarm-host";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_a_bad_bound_is_refused_with_its_value() {
        let manifest = Manifest::parse(
            std::path::Path::new("kmodfarm.toml"),
            r#"
[package]
name = "kmfdemo"
version = "1.0.0"
license = "GPL-2.0-only"
summary = "s"
description = "d"
maintainer = "m <m@example.org>"
[[module]]
name = "kmfdemo"
[kernels]
min = "5.15"
max = "6.14"
[targets]
distros = ["debian-12"]
[boot]
load = ["kmfdemo"]
"#,
        )
        .unwrap();
        let config = HostConfig::from_manifest(&manifest, "https://repo.example.org/x/");
        assert_eq!(config.repo, "https://repo.example.org/x");
        assert_eq!(
            config.key,
            "/usr/share/keyrings/kmfdemo-archive-keyring.asc"
        );
        let back = HostConfig::parse(&config.to_toml()).unwrap();
        assert_eq!(back, config);
        let range = back.range().unwrap();
        assert!(range.contains(&crate::KernelRelease::parse("6.12.118+deb12-amd64").unwrap()));
        assert!(!range.contains(&crate::KernelRelease::parse("6.15.1-amd64").unwrap()));

        let bad = config.to_toml().replace("6.14", "six");
        assert!(HostConfig::parse(&bad).unwrap_err().contains("six"));
    }
}
