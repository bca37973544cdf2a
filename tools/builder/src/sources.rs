//! apt sources for a build root: `--mirror URL`, or this host's own apt
//! sources rewritten from its Debian release to the root's (a bookworm
//! host's `bookworm-security` entry becomes `trixie-security` for a Debian
//! 13 root). Reading and rewriting is [`kmodfarm_kernels::apt_sources`]'s,
//! the same rule `kmodfarm kernels` finds a suite's indexes with.

use std::path::Path;

use kmodfarm_kernels::AptSources;
use kmodfarm_model::Distro;

use crate::error::{BuildError, Result};

/// Used when neither a source nor --keyring says which key signs the archive.
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The deb822 sources a root of `distro` is made from: `mirror` when
/// given, else the sources in `apt_dir` (`/etc/apt` or a directory of
/// source files such as `/etc/apt/sources.list.d`) that serve the distro.
pub fn sources_for(distro: &Distro, mirror: Option<&str>, apt_dir: &Path) -> Result<String> {
    let sources = match mirror {
        Some(url) => AptSources::from_mirror(url, distro),
        None => AptSources::read(apt_dir)?.for_distro(distro),
    };
    if sources.entries.is_empty() {
        return Err(BuildError::NoSources {
            suite: distro.release.clone(),
            files: sources.files_text(),
        });
    }
    Ok(sources.with_default_keyring(DEFAULT_KEYRING).to_deb822())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::DistroSet;

    // The rewriting itself is tested in kmodfarm_kernels::apt_sources
    // (moved there from here with the reader).
    #[test]
    fn no_debian_source_is_an_error_that_suggests_a_mirror() {
        let set = DistroSet::builtin();
        let dir = tempfile::tempdir().unwrap();
        let err = sources_for(set.get("debian-12").unwrap(), None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("--mirror"), "{err}");
    }

    #[test]
    fn a_mirror_serves_every_suite_with_the_debian_keyring() {
        let set = DistroSet::builtin();
        let text = sources_for(
            set.get("debian-13").unwrap(),
            Some("http://mirror.invalid/debian/"),
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(
            text,
            format!(
                "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie trixie-updates trixie-security\nComponents: main\nSigned-By: {DEFAULT_KEYRING}\n"
            )
        );
    }
}
