//! What one package contains, as plain data: the plan the writers execute.
//! A `PackageSpec` is complete — metadata, dependencies, every file with its
//! mode and contents, maintainer scripts — so `--dry-run --json` shows
//! exactly what `write_deb`/`write_rpm` would write.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

/// Which package format a spec is for. Dependencies differ per format
/// (Debian alternatives and package names vs RPM capabilities), so a spec
/// is planned for one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Deb,
    Rpm,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deb" => Ok(Format::Deb),
            "rpm" => Ok(Format::Rpm),
            other => Err(format!("unknown package format '{other}': use deb or rpm")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageSpec {
    pub format: Format,
    pub name: String,
    /// Upstream version (the manifest's).
    pub version: String,
    /// Debian revision / RPM Release.
    pub release: String,
    /// `all`/`amd64` for .deb, `noarch`/`x86_64` for .rpm.
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub maintainer: String,
    pub homepage: Option<String>,
    pub license: String,
    /// Debian section (`kernel`); RPM has no equivalent in use any more.
    pub section: String,
    pub depends: Vec<Dependency>,
    pub provides: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    /// Regular files, in any order: writers sort them.
    pub files: Vec<FileEntry>,
    /// Directories this package owns beyond the parents of its files
    /// (RPM records ownership; a .deb carries every parent anyway).
    pub directories: BTreeSet<String>,
    pub scripts: Vec<Script>,
    /// Seconds since the epoch for every timestamp written (mtimes, build time).
    pub source_date: u64,
}

impl PackageSpec {
    /// `V-R`, the Debian version.
    pub fn full_version(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }

    /// The file name a package of this spec gets, in each format's convention.
    pub fn file_name(&self) -> String {
        match self.format {
            Format::Deb => format!("{}_{}_{}.deb", self.name, self.full_version(), self.arch),
            Format::Rpm => format!(
                "{}-{}-{}.{}.rpm",
                self.name, self.version, self.release, self.arch
            ),
        }
    }

    pub fn script(&self, kind: ScriptKind) -> Option<&Script> {
        self.scripts.iter().find(|s| s.kind == kind)
    }
}

/// One dependency: a list of alternatives (Debian `a | b`; RPM `(a or b)`).
/// Printed in the plan in Debian syntax, the shortest readable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub alternatives: Vec<Relation>,
}

impl Dependency {
    pub fn on(name: impl Into<String>) -> Self {
        Dependency {
            alternatives: vec![Relation::any(name)],
        }
    }

    pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Dependency {
            alternatives: names.into_iter().map(Relation::any).collect(),
        }
    }

    pub fn exactly(name: impl Into<String>, version: impl Into<String>) -> Self {
        Dependency {
            alternatives: vec![Relation {
                name: name.into(),
                version: Some(version.into()),
            }],
        }
    }

    /// Debian syntax: `a | b (= 1.0)`.
    pub fn to_debian(&self) -> String {
        self.alternatives
            .iter()
            .map(|r| match &r.version {
                Some(v) => format!("{} (= {v})", r.name),
                None => r.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Serialize for Dependency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_debian())
    }
}

/// A package (or capability) name, optionally pinned to one exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub version: Option<String>,
}

impl Relation {
    pub fn any(name: impl Into<String>) -> Self {
        Relation {
            name: name.into(),
            version: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Absolute path on the target system.
    pub path: String,
    /// Permission bits (0o644, 0o755).
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub data: FileData,
    /// Debian conffile / RPM %config(noreplace): kept when the admin changed it.
    pub conffile: bool,
}

/// A file's contents: generated in memory, or read from disk when written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileData {
    /// Generated contents (rendered templates, metadata files).
    Inline {
        #[serde(serialize_with = "byte_count", rename = "size")]
        bytes: Vec<u8>,
    },
    /// A file of the module's source tree or a build's output; `size` is
    /// what the planner saw and is used for Installed-Size only.
    Source { path: PathBuf, size: u64 },
}

impl FileData {
    pub fn inline(bytes: impl Into<Vec<u8>>) -> Self {
        FileData::Inline {
            bytes: bytes.into(),
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            FileData::Inline { bytes } => bytes.len() as u64,
            FileData::Source { size, .. } => *size,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScriptKind {
    /// Debian postinst / RPM %post.
    PostInstall,
    /// Debian prerm / RPM %preun.
    PreRemove,
    /// Debian postrm / RPM %postun.
    PostRemove,
}

impl ScriptKind {
    pub fn debian_name(self) -> &'static str {
        match self {
            ScriptKind::PostInstall => "postinst",
            ScriptKind::PreRemove => "prerm",
            ScriptKind::PostRemove => "postrm",
        }
    }
}

/// A maintainer script / scriptlet. `body` carries no `#!` line: the .deb
/// writer puts `#!<interpreter>` on top, the .rpm writer records the
/// interpreter in the header (as rpmbuild does for a spec's scriptlets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    pub kind: ScriptKind,
    pub interpreter: String,
    pub body: String,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

fn byte_count<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(bytes.len() as u64)
}
