//! This machine's Debian apt sources, rewritten for the suite a test wants.
//!
//! Mirrors are configuration: the roots the tests make fetch from wherever
//! this machine's apt does (including a local mirror or snapshot), and the
//! repository names no host itself.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Debian's release names and aliases; a source whose suites are not among
/// these (plus `-updates`, `-security`, …) is somebody else's repository.
const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];

/// Suites with no `-updates` or `-security` companions.
const ROLLING_SUITES: &[&str] = &["sid", "unstable"];

/// One apt source: what a deb822 stanza or a one-line `deb` entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// A keyring path, or an inline key block (deb822 only).
    pub signed_by: Option<String>,
}

/// A set of apt sources, all for one Debian release's suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSources {
    pub entries: Vec<AptSource>,
}

/// This machine's Debian sources, rewritten for `suite` (see
/// [`AptSources::for_suite`]).
pub fn apt_sources(suite: &str) -> Result<AptSources> {
    AptSources::from_etc_apt(Path::new("/etc/apt"))?.for_suite(suite)
}

impl AptSources {
    /// Reads `sources.list`, `sources.list.d/*.list` and
    /// `sources.list.d/*.sources` below `etc_apt`, keeping the enabled
    /// binary (`deb`) entries whose suites are Debian's.
    pub fn from_etc_apt(etc_apt: &Path) -> Result<AptSources> {
        let mut files = vec![etc_apt.join("sources.list")];
        let parts = etc_apt.join("sources.list.d");
        if let Ok(dir) = fs::read_dir(&parts) {
            let mut more: Vec<PathBuf> = dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("list" | "sources")
                    )
                })
                .collect();
            more.sort();
            files.extend(more);
        }
        let mut entries = Vec::new();
        for file in &files {
            let text = match fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(file)(e)),
            };
            let parsed = if file.extension().is_some_and(|e| e == "sources") {
                parse_deb822(file, &text)?
            } else {
                parse_one_line(file, &text)?
            };
            entries.extend(
                parsed
                    .into_iter()
                    .filter(|s| s.suites.iter().any(|x| is_debian_suite(x))),
            );
        }
        if entries.is_empty() {
            return Err(Error::NoDebianSources {
                searched: files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(AptSources { entries })
    }

    /// The same mirrors for another release: `bookworm` becomes `trixie`,
    /// `bookworm-updates` becomes `trixie-updates` and so on. For a rolling
    /// suite (sid) the `-updates`/`-security` suites are dropped, and so is a
    /// source left with no suite.
    pub fn for_suite(&self, suite: &str) -> Result<AptSources> {
        let rolling = ROLLING_SUITES.contains(&suite);
        let mut entries = Vec::new();
        for entry in &self.entries {
            let mut suites: Vec<String> = Vec::new();
            for old in entry.suites.iter().filter(|s| is_debian_suite(s)) {
                let suffix = suite_suffix(old);
                if rolling && !suffix.is_empty() {
                    continue;
                }
                let new = format!("{suite}{suffix}");
                if !suites.contains(&new) {
                    suites.push(new);
                }
            }
            if !suites.is_empty() {
                entries.push(AptSource {
                    suites,
                    ..entry.clone()
                });
            }
        }
        if entries.is_empty() {
            return Err(Error::NoSourcesForSuite {
                suite: suite.to_string(),
            });
        }
        Ok(AptSources { entries })
    }

    /// The sources as one deb822 `.sources` file.
    pub fn to_deb822(&self) -> String {
        let mut out = String::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("Types: deb\n");
            out.push_str(&format!("URIs: {}\n", entry.uris.join(" ")));
            out.push_str(&format!("Suites: {}\n", entry.suites.join(" ")));
            out.push_str(&format!("Components: {}\n", entry.components.join(" ")));
            if let Some(key) = &entry.signed_by {
                // An inline key keeps its continuation lines (" ..." / " .").
                out.push_str(&format!("Signed-By: {key}\n"));
            }
        }
        out
    }
}

/// `bookworm-security` → `-security`; `bookworm` → ``.
fn suite_suffix(suite: &str) -> &str {
    suite.find('-').map_or("", |i| &suite[i..])
}

fn is_debian_suite(suite: &str) -> bool {
    let base = &suite[..suite.len() - suite_suffix(suite).len()];
    DEBIAN_SUITES.contains(&base)
}

/// deb822 stanzas (blank-line separated `Field: value` paragraphs whose
/// continuation lines start with white space).
fn parse_deb822(path: &Path, text: &str) -> Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut start = 1;
    let flush = |fields: &mut Vec<(String, String)>,
                 start: usize,
                 sources: &mut Vec<AptSource>|
     -> Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let words = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let enabled = get("Enabled").is_none_or(|v| v.trim() != "no");
        if enabled && words("Types").iter().any(|t| t == "deb") {
            let source = AptSource {
                uris: words("URIs"),
                suites: words("Suites"),
                components: words("Components"),
                signed_by: get("Signed-By"),
            };
            if source.uris.is_empty() || source.suites.is_empty() {
                return Err(Error::BadSources {
                    path: path.to_path_buf(),
                    line: start,
                    why: "a deb822 stanza without URIs or Suites".into(),
                });
            }
            sources.push(source);
        }
        fields.clear();
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields, start, &mut sources)?;
            continue;
        }
        if fields.is_empty() {
            start = number;
        }
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line);
                }
                None => {
                    return Err(Error::BadSources {
                        path: path.to_path_buf(),
                        line: number,
                        why: "a continuation line with no field before it".into(),
                    })
                }
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::BadSources {
                path: path.to_path_buf(),
                line: number,
                why: format!("expected 'Field: value', found '{line}'"),
            });
        };
        fields.push((name.trim().to_string(), value.trim().to_string()));
    }
    flush(&mut fields, start, &mut sources)?;
    Ok(sources)
}

/// One-line entries: `deb [opt=value ...] URI SUITE COMPONENT...`.
fn parse_one_line(path: &Path, text: &str) -> Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue; // blank, comment or deb-src
        };
        let bad = |why: &str| Error::BadSources {
            path: path.to_path_buf(),
            line: i + 1,
            why: why.to_string(),
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let (options, after) = options
                .split_once(']')
                .ok_or_else(|| bad("an option list without ']'"))?;
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_string);
            rest = after;
        }
        let mut words = rest.split_whitespace().map(str::to_string);
        let uri = words
            .next()
            .ok_or_else(|| bad("a deb line without a URI"))?;
        let suite = words
            .next()
            .ok_or_else(|| bad("a deb line without a suite"))?;
        sources.push(AptSource {
            uris: vec![uri],
            suites: vec![suite],
            components: words.collect(),
            signed_by,
        });
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The hosts below are placeholders of the reserved example.org domain.
    const DEB822: &str = "\
Types: deb
# a comment
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://other.example.org/repo
Suites: nodistro
Components: main

Enabled: no
Types: deb
URIs: http://mirror.example.org/debian
Suites: bookworm-backports
Components: main
";

    fn host(dir: &Path) -> AptSources {
        fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        fs::write(dir.join("sources.list.d/debian.sources"), DEB822).unwrap();
        fs::write(
            dir.join("sources.list"),
            "# old style\ndeb [arch=amd64 signed-by=/k.gpg] http://old.example.org/debian bookworm main non-free\ndeb-src http://old.example.org/debian bookworm main\n",
        )
        .unwrap();
        AptSources::from_etc_apt(dir).unwrap()
    }

    #[test]
    fn reads_both_formats_and_keeps_only_enabled_debian_binary_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = host(tmp.path());
        let uris: Vec<&str> = sources.entries.iter().map(|e| e.uris[0].as_str()).collect();
        assert_eq!(
            uris,
            [
                "http://old.example.org/debian",
                "http://mirror.example.org/debian",
                "http://mirror.example.org/debian-security"
            ]
        );
        assert_eq!(sources.entries[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(sources.entries[0].components, ["main", "non-free"]);
    }

    #[test]
    fn rewrites_every_debian_suite_for_the_target_release() {
        let tmp = tempfile::tempdir().unwrap();
        let trixie = host(tmp.path()).for_suite("trixie").unwrap();
        let suites: Vec<Vec<String>> = trixie.entries.iter().map(|e| e.suites.clone()).collect();
        assert_eq!(
            suites,
            [
                vec!["trixie".to_string()],
                vec!["trixie".into(), "trixie-updates".into()],
                vec!["trixie-security".into()],
            ]
        );
        let text = trixie.to_deb822();
        assert!(text.contains("Suites: trixie trixie-updates\n"), "{text}");
        assert!(!text.contains("bookworm"), "{text}");
    }

    #[test]
    fn sid_drops_updates_and_security() {
        let tmp = tempfile::tempdir().unwrap();
        let sid = host(tmp.path()).for_suite("sid").unwrap();
        assert_eq!(
            sid.entries.len(),
            2,
            "the security source has no sid suite: {sid:?}"
        );
        assert!(sid.entries.iter().all(|e| e.suites == ["sid"]));
    }

    #[test]
    fn a_file_without_debian_sources_is_an_error_naming_what_was_read() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("sources.list"),
            "deb http://x.example.org/ubuntu jammy main\n",
        )
        .unwrap();
        let err = AptSources::from_etc_apt(tmp.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sources.list"), "{err}");
    }

    #[test]
    fn a_malformed_stanza_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sources.list.d")).unwrap();
        fs::write(
            tmp.path().join("sources.list.d/x.sources"),
            "Types: deb\nthis is not a field\n",
        )
        .unwrap();
        let err = AptSources::from_etc_apt(tmp.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("x.sources:2: expected 'Field: value', found 'this is not a field'"),
            "{err}"
        );
    }
}
