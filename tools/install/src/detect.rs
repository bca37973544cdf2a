//! What host this is: its distribution (as the ids of kmodfarm's distro
//! files: debian-12, ubuntu-24.04, rhel-9, sles-15…), architecture in that
//! distribution's own words, and running kernel.

use std::collections::BTreeMap;
use std::path::Path;

use kmodfarm_model::{Distro, DistroSet, PackageFamily};

use crate::error::{Error, Result};

/// The fields of /etc/os-release (shell-style `KEY=value`, maybe quoted).
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(k, _)| !k.starts_with('#'))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The distro file id for an os-release: `ID` (or a parent in `ID_LIKE`)
/// and the major `VERSION_ID` (Ubuntu keeps YY.MM).
pub fn distro_id(fields: &BTreeMap<String, String>) -> Option<String> {
    let version = fields.get("VERSION_ID")?;
    let major = version.split('.').next().unwrap_or(version);
    let mut ids = vec![fields.get("ID")?.as_str()];
    if let Some(like) = fields.get("ID_LIKE") {
        ids.extend(like.split_whitespace());
    }
    ids.iter().find_map(|id| match *id {
        "debian" => Some(format!("debian-{major}")),
        "ubuntu" => Some(format!("ubuntu-{version}")),
        "rhel" | "centos" | "rocky" | "almalinux" | "ol" => Some(format!("rhel-{major}")),
        "sles" | "sled" | "opensuse-leap" | "suse" => Some(format!("sles-{major}")),
        _ => None,
    })
}

/// The host's distribution, read from `<root>/etc/os-release`.
pub fn distro(root: &Path, distros: &DistroSet) -> Result<Distro> {
    let path = root.join("etc/os-release");
    let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
    let fields = parse_os_release(&text);
    let described = format!(
        "ID={} VERSION_ID={}",
        fields.get("ID").map_or("(none)", String::as_str),
        fields.get("VERSION_ID").map_or("(none)", String::as_str)
    );
    let id = distro_id(&fields).ok_or_else(|| Error::OsRelease {
        path: path.clone(),
        message: format!("{described} is not a distribution kmodfarm knows"),
    })?;
    distros.get(&id).cloned().ok_or_else(|| Error::OsRelease {
        path,
        message: format!(
            "{described} is {id}, which has no distro definition (known: {})",
            distros.ids().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The architecture in the distribution's package names: amd64 on
/// Debian/Ubuntu, x86_64 on RPM distributions.
pub fn arch(distro: &Distro, machine: &str) -> String {
    match (distro.family, machine) {
        (PackageFamily::Deb, "x86_64") => "amd64".into(),
        (PackageFamily::Deb, "aarch64") => "arm64".into(),
        (_, machine) => machine.into(),
    }
}

/// `uname -r` of the running kernel.
pub fn running_kernel() -> Result<String> {
    let path = Path::new("/proc/sys/kernel/osrelease");
    Ok(std::fs::read_to_string(path)
        .map_err(Error::read(path))?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Option<String> {
        distro_id(&parse_os_release(text))
    }

    #[test]
    fn os_release_maps_to_the_distro_files_ids() {
        assert_eq!(
            id("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
            Some("debian-12".into())
        );
        assert_eq!(
            id("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n"),
            Some("ubuntu-24.04".into())
        );
        assert_eq!(
            id("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n"),
            Some("rhel-9".into())
        );
        assert_eq!(
            id("ID=\"almalinux\"\nVERSION_ID=\"8.10\"\n"),
            Some("rhel-8".into())
        );
        assert_eq!(
            id("ID=\"sles\"\nVERSION_ID=\"15.6\"\n"),
            Some("sles-15".into())
        );
        assert_eq!(id("ID=gentoo\nVERSION_ID=2.15\n"), None);
    }

    #[test]
    fn an_unknown_distribution_is_refused_naming_the_file_and_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/os-release"),
            "ID=debian\nVERSION_ID=9\n",
        )
        .unwrap();
        let err = distro(dir.path(), &DistroSet::builtin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("etc/os-release"), "{err}");
        assert!(
            err.contains("debian-9, which has no distro definition"),
            "{err}"
        );
        std::fs::write(
            dir.path().join("etc/os-release"),
            "ID=debian\nVERSION_ID=12\n",
        )
        .unwrap();
        let d = distro(dir.path(), &DistroSet::builtin()).unwrap();
        assert_eq!(arch(&d, "x86_64"), "amd64");
    }
}
