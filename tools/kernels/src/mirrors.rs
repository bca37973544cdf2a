//! Which URL serves a distro's suite. Mirrors are configuration: given on
//! the command line (`--mirror [SCOPE=]URL`), or read from the host's apt
//! sources, which already say where this machine gets Debian from (and, by
//! [`AptSources::for_distro`], where it gets the other Debian releases).

use std::path::PathBuf;
use std::str::FromStr;

use kmodfarm_model::{Distro, DistroSet, PackageFamily};

use crate::apt_sources::{AptSource, AptSources};
use crate::error::{KernelsError, Result};

/// One `--mirror` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// A distro id or a suite name this mirror is for; `None`: any.
    pub scope: Option<String>,
    /// Archive root, without a trailing slash.
    pub url: String,
    /// Keyring the suite's InRelease must verify with (apt's Signed-By).
    pub keyring: Option<PathBuf>,
}

impl FromStr for Mirror {
    type Err = KernelsError;
    /// `URL`, or `SCOPE=URL` where SCOPE is a distro id or a suite.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || KernelsError::BadMirror {
            mirror: s.to_string(),
        };
        let (scope, url) = match s.split_once('=') {
            Some((scope, url)) if !scope.contains('/') && !scope.contains(':') => {
                (Some(scope.to_string()), url)
            }
            _ => (None, s),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(bad)?;
        if rest.is_empty() || rest.starts_with('/') || scope.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(Mirror {
            scope,
            url: url.trim_end_matches('/').to_string(),
            keyring: None,
        })
    }
}

/// Everything that says where suites are served.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    pub explicit: Vec<Mirror>,
    pub apt_sources: Vec<AptSource>,
}

impl Mirrors {
    /// Every scoped `--mirror` must name a known distro or one of their
    /// suites: a typo would otherwise be silently ignored.
    pub fn check_scopes(&self, distros: &DistroSet) -> Result<()> {
        for mirror in &self.explicit {
            let Some(scope) = &mirror.scope else { continue };
            let known = distros.get(scope).is_some()
                || distros.iter().any(|d| d.archive.suites.contains(scope));
            if !known {
                return Err(KernelsError::UnknownMirrorScope {
                    scope: scope.clone(),
                    url: mirror.url.clone(),
                    known: distros.ids().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// Mirrors that may serve `suite` of `distro`, best first: `--mirror`
    /// for that suite, for that distro, unscoped; then the host's apt
    /// sources that serve the suite (apt distros only), by the rule
    /// `kmodfarm build` makes its roots with: [`AptSources::for_distro`].
    pub fn candidates(&self, distro: &Distro, suite: &str) -> Vec<Mirror> {
        let mut found: Vec<Mirror> = Vec::new();
        for want in [Some(suite), Some(distro.id.as_str()), None] {
            let scoped = self.explicit.iter().filter(|m| m.scope.as_deref() == want);
            found.extend(scoped.cloned());
        }
        if distro.family == PackageFamily::Deb {
            let host = AptSources {
                entries: self.apt_sources.clone(),
                files: Vec::new(),
            };
            for source in host.for_distro(distro).entries {
                if source.suites.iter().any(|s| s == suite) {
                    found.extend(source.uris.iter().map(|uri| Mirror {
                        scope: Some(suite.to_string()),
                        url: uri.trim_end_matches('/').to_string(),
                        keyring: source.keyring(),
                    }));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        found.retain(|m| seen.insert(m.url.clone()));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt_sources::parse_deb822;
    use std::path::Path;

    fn host_sources() -> Vec<AptSource> {
        parse_deb822(Path::new("debian.sources"), HOST_SOURCES).unwrap()
    }

    const HOST_SOURCES: &str = "\
Types: deb
# a comment
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: trixie
Components: main
";

    fn debian_12() -> Distro {
        DistroSet::builtin().get("debian-12").unwrap().clone()
    }

    #[test]
    fn each_suite_maps_to_the_uri_that_serves_it_on_the_host() {
        let mirrors = Mirrors {
            explicit: vec![],
            apt_sources: host_sources(),
        };
        let d = debian_12();
        let security = mirrors.candidates(&d, "bookworm-security");
        assert_eq!(security.len(), 1);
        assert_eq!(security[0].url, "http://mirror.invalid/debian-security");
        assert_eq!(
            security[0].keyring.as_deref(),
            Some(Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"))
        );
        assert_eq!(
            mirrors.candidates(&d, "bookworm")[0].url,
            "http://mirror.invalid/debian"
        );
        // Another Debian release is served by the same archives (the rule
        // `kmodfarm build` makes roots with); disabled stanzas serve nothing.
        let d13 = DistroSet::builtin().get("debian-13").unwrap().clone();
        let trixie: Vec<String> = mirrors
            .candidates(&d13, "trixie")
            .into_iter()
            .map(|m| m.url)
            .collect();
        assert_eq!(trixie, ["http://mirror.invalid/debian"]);
        let security = mirrors.candidates(&d13, "trixie-security");
        assert_eq!(security[0].url, "http://mirror.invalid/debian-security");
        assert!(mirrors.candidates(&d13, "bookworm").is_empty());
    }

    #[test]
    fn command_line_mirrors_come_first_by_scope() {
        let mirrors = Mirrors {
            explicit: vec![
                "http://any.invalid/debian/".parse().unwrap(),
                "debian-12=http://distro.invalid/d".parse().unwrap(),
                "bookworm-security=http://suite.invalid/s".parse().unwrap(),
            ],
            apt_sources: host_sources(),
        };
        let urls: Vec<String> = mirrors
            .candidates(&debian_12(), "bookworm-security")
            .into_iter()
            .map(|m| m.url)
            .collect();
        assert_eq!(
            urls,
            [
                "http://suite.invalid/s",
                "http://distro.invalid/d",
                "http://any.invalid/debian",
                "http://mirror.invalid/debian-security"
            ]
        );
    }

    #[test]
    fn bad_mirrors_are_rejected() {
        for bad in ["ftp://x/debian", "debian-12=", "=http://x", "http://"] {
            assert!(bad.parse::<Mirror>().is_err(), "{bad}");
        }
        let set = DistroSet::builtin();
        let typo = Mirrors {
            explicit: vec!["debain-12=http://x.invalid/d".parse().unwrap()],
            apt_sources: vec![],
        };
        let err = typo.check_scopes(&set).unwrap_err().to_string();
        assert!(
            err.starts_with("--mirror debain-12=http://x.invalid/d: no distro or suite is called 'debain-12' (distros: debian-12, "),
            "{err}"
        );
    }
}
