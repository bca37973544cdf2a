//! Which URL serves a distro's suite. Mirrors are configuration: given on
//! the command line (`--mirror [SCOPE=]URL`), or read from the host's apt
//! sources, which already say where this machine gets Debian from.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use kmodfarm_model::{Distro, DistroSet, PackageFamily};

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

/// A `deb` entry of the host's apt sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<PathBuf>,
}

/// Read `<etc_apt>/sources.list` and `<etc_apt>/sources.list.d/*.{list,sources}`
/// (apt's own locations with `etc_apt` = `/etc/apt`). Missing files are fine.
pub fn read_apt_sources(etc_apt: &Path) -> Result<Vec<AptSource>> {
    let mut files = vec![etc_apt.join("sources.list")];
    if let Ok(entries) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut sources = Vec::new();
    for path in files {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let parse: fn(&str) -> Vec<AptSource> = match (ext, path.file_name()) {
            ("sources", _) => parse_deb822_sources,
            ("list", _) => parse_one_line_sources,
            _ => continue,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.extend(parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(KernelsError::Sources { path, source }),
        }
    }
    Ok(sources)
}

/// deb822 `.sources` files: stanzas with Types, URIs, Suites, Components,
/// Signed-By, Enabled.
pub fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let words = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let enabled = get("enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if !enabled || !words("types").iter().any(|t| t == "deb") {
            continue;
        }
        sources.push(AptSource {
            uris: words("uris"),
            suites: words("suites"),
            components: words("components"),
            signed_by: keyring_path(get("signed-by")),
        });
    }
    sources
}

/// One-line `sources.list`: `deb [options] URI SUITE COMPONENT...`.
pub fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .and_then(|v| keyring_path(Some(v)));
            rest = after;
        }
        let mut words = rest.split_whitespace().map(str::to_string);
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            uris: vec![uri],
            suites: vec![suite],
            components: words.collect(),
            signed_by,
        });
    }
    sources
}

/// Signed-By names a keyring file, or embeds an armored key: only a file
/// can be handed to gpgv.
fn keyring_path(value: Option<&str>) -> Option<PathBuf> {
    let value = value?.trim();
    (value.starts_with('/') && !value.contains('\n')).then(|| PathBuf::from(value))
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
    /// sources that list the suite (apt distros only).
    pub fn candidates(&self, distro: &Distro, suite: &str) -> Vec<Mirror> {
        let mut found: Vec<Mirror> = Vec::new();
        for want in [Some(suite), Some(distro.id.as_str()), None] {
            let scoped = self.explicit.iter().filter(|m| m.scope.as_deref() == want);
            found.extend(scoped.cloned());
        }
        if distro.family == PackageFamily::Deb {
            for source in &self.apt_sources {
                let serves = source.suites.iter().any(|s| s == suite)
                    && distro
                        .archive
                        .components
                        .iter()
                        .all(|c| source.components.contains(c));
                if serves {
                    found.extend(source.uris.iter().map(|uri| Mirror {
                        scope: Some(suite.to_string()),
                        url: uri.trim_end_matches('/').to_string(),
                        keyring: source.signed_by.clone(),
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
            apt_sources: parse_deb822_sources(HOST_SOURCES),
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
        // Disabled stanzas serve nothing.
        let d13 = DistroSet::builtin().get("debian-13").unwrap().clone();
        assert!(mirrors.candidates(&d13, "trixie").is_empty());
    }

    #[test]
    fn command_line_mirrors_come_first_by_scope() {
        let mirrors = Mirrors {
            explicit: vec![
                "http://any.invalid/debian/".parse().unwrap(),
                "debian-12=http://distro.invalid/d".parse().unwrap(),
                "bookworm-security=http://suite.invalid/s".parse().unwrap(),
            ],
            apt_sources: parse_deb822_sources(HOST_SOURCES),
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
    fn one_line_sources_with_options() {
        let got = parse_one_line_sources(
            "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.invalid/ubuntu noble main universe\ndeb-src http://m.invalid/ubuntu noble main\n",
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].suites, ["noble"]);
        assert_eq!(got[0].components, ["main", "universe"]);
        assert_eq!(got[0].signed_by.as_deref(), Some(Path::new("/k.gpg")));
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
