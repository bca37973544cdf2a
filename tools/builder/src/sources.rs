//! apt sources for a build root. Mirrors are configuration: `--mirror URL`,
//! or this host's own apt sources rewritten from its Debian release to the
//! root's (a bookworm host's `bookworm-security` entry becomes
//! `trixie-security` for a Debian 13 root). No host name is written here.

use std::path::{Path, PathBuf};

use kmodfarm_model::Distro;

use crate::error::{BuildError, Result};

/// Used when neither a source nor --keyring says which key signs the archive.
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// The `deb` stanzas of the deb822 `*.sources` files in `dir`
/// (`/etc/apt/sources.list.d`), in file-name order.
pub fn read_host_sources(dir: &Path) -> Result<Vec<Stanza>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sources"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(BuildError::io(dir)(e)),
    };
    files.sort();
    let mut stanzas = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(BuildError::io(&file))?;
        stanzas.extend(parse_deb822(&text));
    }
    Ok(stanzas)
}

fn parse_deb822(text: &str) -> Vec<Stanza> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |name: &str| -> Option<String> {
            block.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (!line.starts_with('#') && key.trim().eq_ignore_ascii_case(name))
                    .then(|| value.trim().to_string())
            })
        };
        let words = |name: &str| -> Vec<String> {
            field(name)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if enabled && words("Types").iter().any(|t| t == "deb") {
            out.push(Stanza {
                uris: words("URIs"),
                suites: words("Suites"),
                components: words("Components"),
                signed_by: field("Signed-By").filter(|v| !v.is_empty()),
            });
        }
    }
    out
}

/// The host's stanzas rewritten for `distro`'s suites: a host suite
/// `<codename><suffix>` becomes `<release><suffix>` and is kept when the
/// distro lists it. Stanzas naming no Debian-looking suite are dropped.
pub fn rewrite_for(host: &[Stanza], distro: &Distro) -> Vec<Stanza> {
    let mut out = Vec::new();
    // A Debian host's archive serves Debian suites only: Ubuntu's come
    // from --mirror.
    if !distro.id.starts_with("debian-") {
        return out;
    }
    for stanza in host {
        let suites: Vec<String> = stanza
            .suites
            .iter()
            .filter_map(|suite| {
                let (_, suffix) = suite.split_at(suite.find('-').unwrap_or(suite.len()));
                let target = format!("{}{suffix}", distro.release);
                distro.archive.suites.contains(&target).then_some(target)
            })
            .collect();
        if !suites.is_empty() {
            out.push(Stanza {
                suites,
                components: distro.archive.components.clone(),
                ..stanza.clone()
            });
        }
    }
    out
}

/// One stanza for every suite of `distro` at `mirror`.
pub fn from_mirror(mirror: &str, distro: &Distro) -> Vec<Stanza> {
    vec![Stanza {
        uris: vec![mirror.trim_end_matches('/').to_string()],
        suites: distro.archive.suites.clone(),
        components: distro.archive.components.clone(),
        signed_by: None,
    }]
}

/// deb822 text for the root's `/etc/apt/sources.list.d`.
pub fn to_deb822(stanzas: &[Stanza]) -> String {
    stanzas
        .iter()
        .map(|s| {
            format!(
                "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\nSigned-By: {}\n",
                s.uris.join(" "),
                s.suites.join(" "),
                s.components.join(" "),
                s.signed_by.as_deref().unwrap_or(DEFAULT_KEYRING)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sources a root of `distro` uses: `mirror` when given, else the host's.
pub fn sources_for(distro: &Distro, mirror: Option<&str>, host_dir: &Path) -> Result<String> {
    let stanzas = match mirror {
        Some(url) => from_mirror(url, distro),
        None => rewrite_for(&read_host_sources(host_dir)?, distro),
    };
    if stanzas.is_empty() {
        return Err(BuildError::NoSources {
            suite: distro.release.clone(),
            files: host_dir.join("*.sources"),
        });
    }
    Ok(to_deb822(&stanzas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::DistroSet;

    const HOST: &str = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb-src\nURIs: http://src.invalid\nSuites: bookworm\nComponents: main\n";

    #[test]
    fn host_sources_are_rewritten_to_the_roots_release_with_every_suite() {
        let set = DistroSet::builtin();
        let trixie = set.get("debian-13").unwrap();
        let out = rewrite_for(&parse_deb822(HOST), trixie);
        assert_eq!(out.len(), 2, "deb-src is not for a build root: {out:?}");
        assert_eq!(out[0].suites, ["trixie", "trixie-updates"]);
        assert_eq!(out[0].uris, ["http://mirror.invalid/debian"]);
        assert_eq!(out[1].suites, ["trixie-security"]);
        let text = to_deb822(&out);
        assert!(text.contains("Signed-By: /k.gpg"), "{text}");
        assert!(
            text.contains(&format!("Signed-By: {DEFAULT_KEYRING}")),
            "{text}"
        );
    }

    #[test]
    fn no_debian_source_is_an_error_that_suggests_a_mirror() {
        let set = DistroSet::builtin();
        let dir = tempfile::tempdir().unwrap();
        let err = sources_for(set.get("debian-12").unwrap(), None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("--mirror"), "{err}");
    }
}
