//! apt sources: this host's (`/etc/apt`) or a given directory's, deb822
//! `.sources` stanzas and one-line `.list` entries, and the one rule that
//! turns them into the sources of another Debian release.
//!
//! Every stage that needs a mirror without being given one asks this
//! module: `kmodfarm kernels` (which URL serves a suite's indexes),
//! `kmodfarm build` and `image build` (the apt sources of a build root),
//! and the test harness (its roots and package lists). Mirrors are
//! configuration: this module names no host, the sources do.

use std::fs;
use std::path::{Path, PathBuf};

use kmodfarm_model::Distro;

use crate::error::SourcesError;

type Result<T, E = SourcesError> = std::result::Result<T, E>;

/// apt's configuration directory.
pub const HOST_APT_DIR: &str = "/etc/apt";

/// Debian's release names and aliases: a source whose suites are not among
/// these (plus `-updates`, `-security`, …) is somebody else's repository,
/// and is never rewritten for another release.
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

/// One enabled binary (`deb`) source: a deb822 stanza or a one-line entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// A keyring path, or an inline key block (deb822 only, continuation
    /// lines kept as written).
    pub signed_by: Option<String>,
    /// The architectures the source is restricted to (empty: all).
    pub architectures: Vec<String>,
    /// Every other option, as deb822 fields in the order written
    /// (`Trusted: yes`, `Check-Valid-Until: no`, …): one-line `[opt=value]`
    /// options are given their deb822 names.
    pub options: Vec<(String, String)>,
}

impl AptSource {
    /// The keyring file InRelease must verify with, when Signed-By names
    /// one (an inline key cannot be handed to gpgv).
    pub fn keyring(&self) -> Option<PathBuf> {
        let value = self.signed_by.as_deref()?.trim();
        (value.starts_with('/') && !value.contains('\n')).then(|| PathBuf::from(value))
    }

    /// Whether the source may serve `arch` (apt's `Architectures`).
    fn serves_arch(&self, arch: &str) -> bool {
        self.architectures.is_empty() || self.architectures.iter().any(|a| a == arch)
    }
}

/// The sources apt reads, in apt's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptSources {
    pub entries: Vec<AptSource>,
    /// The files that were read, for messages.
    pub files: Vec<PathBuf>,
}

/// [`AptSources::read`]'s entries, for callers that only want the list.
pub fn read_apt_sources(dir: &Path) -> Result<Vec<AptSource>> {
    Ok(AptSources::read(dir)?.entries)
}

impl AptSources {
    /// This host's sources (`/etc/apt`).
    pub fn host() -> Result<AptSources> {
        AptSources::read(Path::new(HOST_APT_DIR))
    }

    /// The enabled `deb` sources of `dir`, which is either apt's
    /// configuration directory (`/etc/apt`: its `sources.list`, then
    /// `sources.list.d/*.list` and `*.sources` in name order) or a directory
    /// of source files itself (`/etc/apt/sources.list.d`). Missing files are
    /// fine; a malformed one is an error naming its line.
    pub fn read(dir: &Path) -> Result<AptSources> {
        let files = if dir.join("sources.list.d").is_dir() {
            let mut files = vec![dir.join("sources.list")];
            files.extend(source_files(&dir.join("sources.list.d"))?);
            files
        } else {
            source_files(dir)?
        };
        let mut entries = Vec::new();
        for file in &files {
            let text = match fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(SourcesError::Read {
                        path: file.clone(),
                        source,
                    })
                }
            };
            entries.extend(parse_file(file, &text)?);
        }
        Ok(AptSources { entries, files })
    }

    /// The files read, as one line for messages.
    pub fn files_text(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        match names.is_empty() {
            true => "(no source files)".to_string(),
            false => names.join(", "),
        }
    }

    /// The same Debian mirrors for another release: `bookworm` becomes
    /// `trixie`, `bookworm-updates` becomes `trixie-updates` and so on, the
    /// components kept. Sources naming no Debian suite are dropped; for a
    /// rolling suite (sid) so are the `-updates`/`-security` suites, and a
    /// source left with none.
    pub fn for_suite(&self, suite: &str) -> Result<AptSources> {
        if !self
            .entries
            .iter()
            .any(|e| e.suites.iter().any(|s| is_debian_suite(s)))
        {
            return Err(SourcesError::NoDebian {
                searched: self.files_text(),
            });
        }
        let rolling = ROLLING_SUITES.contains(&suite);
        let entries = self.rewritten(|entry| {
            let suites = entry
                .suites
                .iter()
                .filter(|old| !rolling || suite_suffix(old).is_empty())
                .filter_map(|old| debian_suite_for(old, suite))
                .collect();
            Some((suites, entry.components.clone()))
        });
        if entries.is_empty() {
            return Err(SourcesError::NoneForSuite {
                suite: suite.to_string(),
                searched: self.files_text(),
            });
        }
        Ok(AptSources {
            entries,
            files: self.files.clone(),
        })
    }

    /// The sources that serve `distro`'s suites, with the distro's
    /// components: the one rule by which `kmodfarm kernels` and `kmodfarm
    /// build` find a distro's archive when no `--mirror` is given.
    ///
    /// A source serves a suite the distro lists when it names that suite,
    /// or when both are Debian's and only the release differs (a bookworm
    /// host's `bookworm-security` source serves Debian 13's
    /// `trixie-security`: the archive carries every release). It must carry
    /// every component the distro needs and, when it is restricted to some
    /// architectures, the distro's (a third-party repository using the
    /// codename as its suite has other components, so it is passed over).
    pub fn for_distro(&self, distro: &Distro) -> AptSources {
        let entries = self.rewritten(|entry| {
            let serves = entry.serves_arch(&distro.arch)
                && distro
                    .archive
                    .components
                    .iter()
                    .all(|c| entry.components.contains(c));
            if !serves {
                return None;
            }
            let suites = entry
                .suites
                .iter()
                .map(|old| debian_suite_for(old, &distro.release).unwrap_or_else(|| old.clone()))
                .filter(|new| distro.archive.suites.contains(new))
                .collect();
            Some((suites, distro.archive.components.clone()))
        });
        AptSources {
            entries,
            files: self.files.clone(),
        }
    }

    /// One source for every suite of `distro` at `mirror` (`--mirror URL`),
    /// with no Signed-By.
    pub fn from_mirror(mirror: &str, distro: &Distro) -> AptSources {
        AptSources {
            entries: vec![AptSource {
                uris: vec![mirror.trim_end_matches('/').to_string()],
                suites: distro.archive.suites.clone(),
                components: distro.archive.components.clone(),
                signed_by: None,
                architectures: Vec::new(),
                options: Vec::new(),
            }],
            files: Vec::new(),
        }
    }

    /// Each entry with the suites and components `change` gives it (`None`
    /// or no suite: dropped), suites deduplicated.
    fn rewritten(
        &self,
        change: impl Fn(&AptSource) -> Option<(Vec<String>, Vec<String>)>,
    ) -> Vec<AptSource> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let Some((new_suites, components)) = change(entry) else {
                continue;
            };
            let mut suites: Vec<String> = Vec::new();
            for suite in new_suites {
                if !suites.contains(&suite) {
                    suites.push(suite);
                }
            }
            if !suites.is_empty() {
                out.push(AptSource {
                    suites,
                    components,
                    ..entry.clone()
                });
            }
        }
        out
    }

    /// Every source without a Signed-By gets `keyring` (a build root has no
    /// other trust anchor than the one it is told about).
    pub fn with_default_keyring(mut self, keyring: &str) -> AptSources {
        for entry in &mut self.entries {
            entry.signed_by.get_or_insert_with(|| keyring.to_string());
        }
        self
    }

    /// The sources as one deb822 `.sources` file (mmdebstrap copies it into
    /// the root it makes).
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
            if !entry.architectures.is_empty() {
                out.push_str(&format!(
                    "Architectures: {}\n",
                    entry.architectures.join(" ")
                ));
            }
            for (name, value) in &entry.options {
                out.push_str(&format!("{name}: {value}\n"));
            }
            if let Some(key) = &entry.signed_by {
                // An inline key keeps its continuation lines (" ..." / " .").
                out.push_str(&format!("Signed-By: {key}\n"));
            }
        }
        out
    }
}

/// `*.list` and `*.sources` in `dir`, by name; none when it does not exist.
fn source_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SourcesError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("list" | "sources")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A file's sources, by its extension: `.sources` is deb822, anything
/// else one-line.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<AptSource>> {
    if path.extension().is_some_and(|e| e == "sources") {
        parse_deb822(path, text)
    } else {
        parse_one_line(path, text)
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

/// Debian suite `old` for `release` (`bookworm-updates`, `trixie` →
/// `trixie-updates`), when both are Debian's.
fn debian_suite_for(old: &str, release: &str) -> Option<String> {
    (is_debian_suite(old) && is_debian_suite(release))
        .then(|| format!("{release}{}", suite_suffix(old)))
}

/// deb822 stanzas: blank-line separated `Field: value` paragraphs whose
/// continuation lines start with white space; `#` lines are comments.
pub fn parse_deb822(path: &Path, text: &str) -> Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut start = 1;
    let bad = |line: usize, why: String| SourcesError::Bad {
        path: path.to_path_buf(),
        line,
        why,
    };
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            sources.extend(stanza_source(&fields).map_err(|why| bad(start, why))?);
            fields.clear();
            continue;
        }
        if fields.is_empty() {
            start = number;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return Err(bad(
                    number,
                    "a continuation line with no field before it".into(),
                ));
            };
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(
                number,
                format!("expected 'Field: value', found '{line}'"),
            ));
        };
        fields.push((name.trim().to_string(), value.trim().to_string()));
    }
    sources.extend(stanza_source(&fields).map_err(|why| bad(start, why))?);
    Ok(sources)
}

/// The source one stanza describes: `None` for no stanza, a disabled one
/// or one without `deb` among its Types.
fn stanza_source(fields: &[(String, String)]) -> Result<Option<AptSource>, String> {
    if fields.is_empty() {
        return Ok(None);
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
    let enabled = get("Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
    if !enabled || !words("Types").iter().any(|t| t == "deb") {
        return Ok(None);
    }
    const KNOWN: &[&str] = &[
        "Types",
        "URIs",
        "Suites",
        "Components",
        "Signed-By",
        "Architectures",
        "Enabled",
    ];
    let source = AptSource {
        uris: words("URIs"),
        suites: words("Suites"),
        components: words("Components"),
        signed_by: get("Signed-By").filter(|v| !v.trim().is_empty()),
        architectures: words("Architectures"),
        options: fields
            .iter()
            .filter(|(k, _)| !KNOWN.iter().any(|known| k.eq_ignore_ascii_case(known)))
            .cloned()
            .collect(),
    };
    if source.uris.is_empty() || source.suites.is_empty() {
        return Err("a deb822 stanza without URIs or Suites".into());
    }
    Ok(Some(source))
}

/// One-line entries: `deb [opt=value ...] URI SUITE COMPONENT...`;
/// `deb-src`, blank and comment lines are skipped.
pub fn parse_one_line(path: &Path, text: &str) -> Result<Vec<AptSource>> {
    let mut sources = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let bad = |why: &str| SourcesError::Bad {
            path: path.to_path_buf(),
            line: i + 1,
            why: why.to_string(),
        };
        let mut rest = rest.trim_start();
        let mut source = AptSource {
            uris: Vec::new(),
            suites: Vec::new(),
            components: Vec::new(),
            signed_by: None,
            architectures: Vec::new(),
            options: Vec::new(),
        };
        if let Some(options) = rest.strip_prefix('[') {
            let (options, after) = options
                .split_once(']')
                .ok_or_else(|| bad("an option list without ']'"))?;
            for option in options.split_whitespace() {
                let (name, value) = option
                    .split_once('=')
                    .ok_or_else(|| bad(&format!("option '{option}' is not name=value")))?;
                match name {
                    "signed-by" => source.signed_by = Some(value.to_string()),
                    "arch" => source.architectures = value.split(',').map(Into::into).collect(),
                    _ => source.options.push(deb822_option(name, value)),
                }
            }
            rest = after;
        }
        let mut words = rest.split_whitespace().map(str::to_string);
        let uri = words
            .next()
            .ok_or_else(|| bad("a deb line without a URI"))?;
        let suite = words
            .next()
            .ok_or_else(|| bad("a deb line without a suite"))?;
        source.uris.push(uri);
        source.suites.push(suite);
        source.components = words.collect();
        sources.push(source);
    }
    Ok(sources)
}

/// A one-line option as its deb822 field (sources.list(5)): `lang=de,en` →
/// `Languages: de en`, `trusted=yes` → `Trusted: yes`, `arch+=i386` →
/// `Architectures-Add: i386`.
fn deb822_option(name: &str, value: &str) -> (String, String) {
    let (base, suffix) = match name.strip_suffix('+') {
        Some(base) => (base, "-Add"),
        None => match name.strip_suffix('-') {
            Some(base) => (base, "-Remove"),
            None => (name, ""),
        },
    };
    let (field, list) = match base {
        "arch" => ("Architectures".to_string(), true),
        "lang" => ("Languages".to_string(), true),
        "target" => ("Targets".to_string(), true),
        "pdiffs" => ("PDiffs".to_string(), false),
        "inrelease-path" => ("InRelease-Path".to_string(), false),
        other => (
            other
                .split('-')
                .map(|word| {
                    let mut chars = word.chars();
                    chars.next().map_or(String::new(), |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect::<Vec<_>>()
                .join("-"),
            false,
        ),
    };
    let value = if list {
        value.replace(',', " ")
    } else {
        value.to_string()
    };
    (format!("{field}{suffix}"), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::DistroSet;

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

    /// An /etc/apt with both kinds of file.
    fn host(dir: &Path) -> AptSources {
        fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        fs::write(dir.join("sources.list.d/debian.sources"), DEB822).unwrap();
        fs::write(
            dir.join("sources.list"),
            "# old style\ndeb [arch=amd64 signed-by=/k.gpg] http://old.example.org/debian bookworm main non-free\ndeb-src http://old.example.org/debian bookworm main\n",
        )
        .unwrap();
        AptSources::read(dir).unwrap()
    }

    fn distro(id: &str) -> Distro {
        DistroSet::builtin().get(id).unwrap().clone()
    }

    // From the harness's reader (tests/src/apt_sources.rs).
    #[test]
    fn reads_both_formats_and_keeps_only_enabled_binary_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = host(tmp.path());
        let uris: Vec<&str> = sources.entries.iter().map(|e| e.uris[0].as_str()).collect();
        assert_eq!(
            uris,
            [
                "http://old.example.org/debian",
                "http://mirror.example.org/debian",
                "http://mirror.example.org/debian-security",
                "http://other.example.org/repo",
            ]
        );
        assert_eq!(sources.entries[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(sources.entries[0].architectures, ["amd64"]);
        assert_eq!(sources.entries[0].components, ["main", "non-free"]);
    }

    // From the harness's reader.
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
        assert!(text.contains("Components: main contrib\n"), "{text}");
        assert!(!text.contains("bookworm"), "{text}");
        assert!(!text.contains("nodistro"), "{text}");
    }

    // From the harness's reader.
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

    // From the harness's reader.
    #[test]
    fn sources_without_debian_suites_are_an_error_naming_what_was_read() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("sources.list"),
            "deb http://x.example.org/ubuntu jammy main\n",
        )
        .unwrap();
        let err = AptSources::read(tmp.path())
            .unwrap()
            .for_suite("bookworm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sources.list"), "{err}");
    }

    // From the harness's reader.
    #[test]
    fn a_malformed_stanza_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sources.list.d")).unwrap();
        fs::write(
            tmp.path().join("sources.list.d/x.sources"),
            "Types: deb\nthis is not a field\n",
        )
        .unwrap();
        let err = AptSources::read(tmp.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("x.sources:2: expected 'Field: value', found 'this is not a field'"),
            "{err}"
        );
    }

    // From the build stage's reader (tools/builder/src/sources.rs).
    #[test]
    fn a_directory_of_source_files_is_read_like_sources_list_d() {
        let tmp = tempfile::tempdir().unwrap();
        host(tmp.path());
        let parts = AptSources::read(&tmp.path().join("sources.list.d")).unwrap();
        assert_eq!(parts.entries.len(), 3, "{parts:?}");
        assert_eq!(parts.entries[0].uris, ["http://mirror.example.org/debian"]);
    }

    // From the build stage's reader.
    #[test]
    fn host_sources_serve_another_debian_release_with_its_suites_and_components() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = host(tmp.path()).for_distro(&distro("debian-13"));
        let got: Vec<(&str, Vec<String>)> = sources
            .entries
            .iter()
            .map(|e| (e.uris[0].as_str(), e.suites.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("http://old.example.org/debian", vec!["trixie".to_string()]),
                (
                    "http://mirror.example.org/debian",
                    vec!["trixie".into(), "trixie-updates".into()]
                ),
                (
                    "http://mirror.example.org/debian-security",
                    vec!["trixie-security".into()]
                ),
            ]
        );
        // The distro's components, not the host's (main non-free, main contrib).
        assert!(sources.entries.iter().all(|e| e.components == ["main"]));
        // Keys are kept, and a missing one can be given.
        let text = sources.with_default_keyring("/default.gpg").to_deb822();
        assert!(
            text.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"),
            "{text}"
        );
        assert!(text.contains("Signed-By: /default.gpg\n"), "{text}");
        assert!(text.contains("Architectures: amd64\n"), "{text}");
    }

    #[test]
    fn the_hosts_own_release_is_served_as_listed_and_no_debian_source_serves_ubuntu() {
        let tmp = tempfile::tempdir().unwrap();
        let sources = host(tmp.path());
        let bookworm = sources.for_distro(&distro("debian-12"));
        assert_eq!(bookworm.entries[1].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(bookworm.entries[2].suites, ["bookworm-security"]);
        assert!(sources
            .for_distro(&distro("ubuntu-24.04"))
            .entries
            .is_empty());
        // An Ubuntu host's source serves its own suites.
        let ubuntu = AptSources {
            entries: parse_one_line(
                Path::new("sources.list"),
                "deb http://m.example.org/ubuntu noble main universe\n",
            )
            .unwrap(),
            files: vec![],
        };
        let noble = ubuntu.for_distro(&distro("ubuntu-24.04"));
        assert_eq!(noble.entries[0].suites, ["noble"]);
    }

    #[test]
    fn a_third_party_repository_named_after_the_codename_serves_nothing() {
        let text = "Types: deb\nURIs: http://vendor.example.org/debian\nSuites: bookworm\nComponents: stable\n\n\
                    Types: deb\nURIs: http://ports.example.org/debian\nSuites: bookworm\nComponents: main\nArchitectures: arm64\n";
        let sources = AptSources {
            entries: parse_deb822(Path::new("x.sources"), text).unwrap(),
            files: vec![],
        };
        assert!(sources.for_distro(&distro("debian-13")).entries.is_empty());
    }

    // From the kernels stage's reader (tools/kernels/src/mirrors.rs).
    #[test]
    fn one_line_options_become_deb822_fields() {
        let got = parse_one_line(
            Path::new("sources.list"),
            "# x\ndeb [ arch=amd64,i386 lang=de,en trusted=yes check-valid-until=no signed-by=/k.gpg ] http://m.example.org/ubuntu noble main universe\ndeb-src http://m.example.org/ubuntu noble main\n",
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].suites, ["noble"]);
        assert_eq!(got[0].components, ["main", "universe"]);
        assert_eq!(got[0].keyring().as_deref(), Some(Path::new("/k.gpg")));
        assert_eq!(got[0].architectures, ["amd64", "i386"]);
        let text = AptSources {
            entries: got,
            files: vec![],
        }
        .to_deb822();
        assert_eq!(
            text,
            "Types: deb\nURIs: http://m.example.org/ubuntu\nSuites: noble\nComponents: main universe\n\
             Architectures: amd64 i386\nLanguages: de en\nTrusted: yes\nCheck-Valid-Until: no\nSigned-By: /k.gpg\n"
        );
    }

    #[test]
    fn an_inline_key_is_kept_for_the_root_but_is_no_keyring_file() {
        let text = "Types: deb\nURIs: http://m.example.org/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let got = parse_deb822(Path::new("x.sources"), text).unwrap();
        assert_eq!(got[0].keyring(), None);
        let rendered = AptSources {
            entries: got,
            files: vec![],
        }
        .to_deb822();
        assert!(
            rendered.ends_with("Signed-By: \n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n"),
            "{rendered}"
        );
    }

    #[test]
    fn malformed_one_line_entries_name_file_and_line() {
        for (line, why) in [
            ("deb [arch=amd64 http://x bookworm main", "without ']'"),
            ("deb http://x", "without a suite"),
            ("deb [trusted] http://x bookworm main", "not name=value"),
        ] {
            let err = parse_one_line(Path::new("/a/b.list"), &format!("# c\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("/a/b.list:2: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }
}
