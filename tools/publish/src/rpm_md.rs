//! yum/dnf/zypper repository metadata (`repodata/`) for a set of .rpm files,
//! carrying what `createrepo_c` writes for the same packages.
//!
//! Two steps, so an incremental publish re-reads only new packages:
//!
//! 1. [`RpmPackage::read`] reads one .rpm (its whole file for the sha256, its
//!    headers with the `rpm` crate) into a plain, serde-able record: NEVRA,
//!    dependencies with flags, files, changelog, sizes, header range. A
//!    publish may keep these records in its state file and reuse them while
//!    the file's size and digest are unchanged.
//! 2. [`repodata`] is a pure function from those records (and
//!    [`RepodataOptions`]: compression and time) to the files of `repodata/`
//!    as data, `path → bytes`, paths relative to the repository directory
//!    (the one holding the .rpm files, whose `location href`s the records
//!    carry):
//!    - `repodata/<sha256>-primary.xml.gz`, `…-filelists.xml.gz`,
//!      `…-other.xml.gz` (`.xml.zst` with [`MetadataCompression::Zstd`]);
//!      the digest prefix means a new publish never overwrites a file an
//!      old `repomd.xml` names, so a client mid-download sees one consistent
//!      set;
//!    - `repodata/repomd.xml` with each file's checksum, open-checksum,
//!      size, open-size and timestamp.
//!
//!    The caller writes them (metadata first, `repomd.xml` last, each beside
//!    its final name and renamed into place) and signs `repomd.xml` into
//!    `repodata/repomd.xml.asc`. Nothing here touches the file system.
//!
//! Reproducible: with the same records and options the bytes are the same.
//! [`RepodataOptions::from_env`] takes the time from `SOURCE_DATE_EPOCH`
//! and then also clamps each package's file time to it.
//!
//! What createrepo_c does that this copies on purpose, because dnf and
//! zypper read the result the same way: requires drop `rpmlib(…)`, files
//! the package itself holds on a "primary" path, what the package itself
//! provides with the same flags and version, and exact repeats; `pre="1"` marks prerequisites
//! (`Requires(pre)`, `Requires(post)`, legacy PreReq); versions split as
//! `epoch:version-release` at the first `-`, with epoch `0` when absent;
//! primary.xml lists only files under `/etc/`, named `/usr/lib/sendmail`,
//! or containing `bin/`; other.xml carries the newest ten changelog
//! entries, oldest first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rpm::{DependencyFlags, FileFlags, FileType, IndexSignatureTag, IndexTag};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chunks::Codec;

/// What can go wrong reading a package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a readable .rpm package: {source}")]
    NotRpm { path: PathBuf, source: rpm::Error },
    #[error("{path}: the rpm header has a bad {what}: {source}")]
    BadHeader {
        path: PathBuf,
        what: &'static str,
        source: rpm::Error,
    },
    #[error("{path} is a source package; a binary repository holds only binary packages")]
    SourcePackage { path: PathBuf },
    #[error("two packages would be published at the same location '{href}'")]
    DuplicateLocation { href: String },
    #[error("location '{href}' must be a relative path without '..'")]
    BadLocation { href: String },
}

/// A dependency of one kind (provides, requires, …) as primary.xml writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dep {
    pub name: String,
    /// `EQ`, `LT`, `LE`, `GT`, `GE`, or none for an unversioned dependency.
    pub flags: Option<String>,
    pub epoch: Option<String>,
    pub ver: Option<String>,
    pub rel: Option<String>,
    /// Requires only: a prerequisite of the package's scriptlets.
    pub pre: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageFileKind {
    File,
    Dir,
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFile {
    pub path: String,
    pub kind: PackageFileKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changelog {
    pub author: String,
    pub date: u64,
    pub text: String,
}

/// One package as the metadata describes it: everything `repodata` needs,
/// without the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmPackage {
    /// Relative to the repository directory, e.g. `kmfdemo-dkms-1.0.0-1.noarch.rpm`.
    pub href: String,
    /// sha256 of the whole file: the package id dnf and zypper key on.
    pub sha256: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's modification time (seconds since the epoch).
    pub file_time: u64,
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub archive_size: u64,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub sourcerpm: String,
    /// Byte offsets of the main header in the file: dnf reads just this
    /// range to check a package before downloading the rest.
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub enhances: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub supplements: Vec<Dep>,
    /// In header order (rpm keeps them sorted by path).
    pub files: Vec<PackageFile>,
    /// As other.xml lists them: at most ten, oldest first.
    pub changelogs: Vec<Changelog>,
}

/// How many changelog entries other.xml keeps per package (createrepo_c's default).
const CHANGELOG_LIMIT: usize = 10;

impl RpmPackage {
    /// Reads the package at `path`, to be published at `href` (relative to
    /// the repository directory).
    pub fn read(path: &Path, href: &str) -> Result<RpmPackage, Error> {
        RpmPackage::read_with_bytes(path, href).map(|(package, _)| package)
    }

    /// [`RpmPackage::read`], and the file's bytes it read.
    pub fn read_with_bytes(path: &Path, href: &str) -> Result<(RpmPackage, Vec<u8>), Error> {
        check_href(href)?;
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_err)?;
        let file_time = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(read_err)?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let package = RpmPackage::from_bytes(&bytes, path, href, file_time)?;
        Ok((package, bytes))
    }

    /// Like [`RpmPackage::read`], from the file's bytes; `path` only names
    /// it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        href: &str,
        file_time: u64,
    ) -> Result<RpmPackage, Error> {
        check_href(href)?;
        let meta =
            rpm::PackageMetadata::parse(&mut &bytes[..]).map_err(|source| Error::NotRpm {
                path: path.to_path_buf(),
                source,
            })?;
        if meta.is_source_package() {
            return Err(Error::SourcePackage {
                path: path.to_path_buf(),
            });
        }
        let bad = |what: &'static str| {
            move |source| Error::BadHeader {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let header = &meta.header;
        let text = |tag: IndexTag| -> String {
            header
                .get_entry_data_as_string(tag)
                .or_else(|_| header.get_entry_data_as_i18n_string(tag))
                .unwrap_or_default()
                .to_string()
        };
        let number = |tag: IndexTag| -> Option<u64> {
            header
                .get_entry_data_as_u64(tag)
                .ok()
                .or_else(|| header.get_entry_data_as_u32(tag).ok().map(u64::from))
        };
        let archive_size = number(IndexTag::RPMTAG_LONGARCHIVESIZE)
            .or_else(|| number(IndexTag::RPMTAG_ARCHIVESIZE))
            .or_else(|| {
                let sig = &meta.signature;
                sig.get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE)
                    .ok()
                    .or_else(|| {
                        sig.get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE)
                            .ok()
                            .map(u64::from)
                    })
            })
            .unwrap_or(0);

        let files = read_files(&meta).map_err(bad("file list"))?;
        let raw_provides = meta.get_provides().map_err(bad("provides"))?;
        let provided: HashSet<(&str, Option<String>, &str)> = raw_provides
            .iter()
            .map(|d| (d.name.as_str(), flags_name(d.flags), d.version.as_str()))
            .collect();
        let primary_files: HashSet<&str> = files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| is_primary_path(p))
            .collect();
        let requires = requires(
            meta.get_requires().map_err(bad("requires"))?,
            &provided,
            &primary_files,
        );
        let provides = deps(raw_provides);

        let mut changelogs: Vec<Changelog> = meta
            .get_changelog_entries()
            .map_err(bad("changelog"))?
            .into_iter()
            .take(CHANGELOG_LIMIT)
            .map(|c| Changelog {
                author: c.name.trim_end_matches(' ').to_string(),
                date: c.timestamp,
                text: c.description,
            })
            .collect();
        changelogs.reverse();

        let offsets = meta.get_package_segment_offsets();
        Ok(RpmPackage {
            href: href.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            file_time,
            name: meta.get_name().map_err(bad("name"))?.to_string(),
            epoch: meta.get_epoch().unwrap_or(0),
            version: meta.get_version().map_err(bad("version"))?.to_string(),
            release: meta.get_release().map_err(bad("release"))?.to_string(),
            arch: meta.get_arch().map_err(bad("arch"))?.to_string(),
            summary: text(IndexTag::RPMTAG_SUMMARY),
            description: text(IndexTag::RPMTAG_DESCRIPTION),
            packager: text(IndexTag::RPMTAG_PACKAGER),
            url: text(IndexTag::RPMTAG_URL),
            build_time: meta.get_build_time().unwrap_or(0),
            installed_size: meta.get_installed_size().unwrap_or(0),
            archive_size,
            license: text(IndexTag::RPMTAG_LICENSE),
            vendor: text(IndexTag::RPMTAG_VENDOR),
            group: text(IndexTag::RPMTAG_GROUP),
            buildhost: text(IndexTag::RPMTAG_BUILDHOST),
            sourcerpm: text(IndexTag::RPMTAG_SOURCERPM),
            header_start: offsets.header,
            header_end: offsets.payload,
            conflicts: deps(meta.get_conflicts().map_err(bad("conflicts"))?),
            obsoletes: deps(meta.get_obsoletes().map_err(bad("obsoletes"))?),
            suggests: deps(meta.get_suggests().map_err(bad("suggests"))?),
            enhances: deps(meta.get_enhances().map_err(bad("enhances"))?),
            recommends: deps(meta.get_recommends().map_err(bad("recommends"))?),
            supplements: deps(meta.get_supplements().map_err(bad("supplements"))?),
            provides,
            requires,
            files,
            changelogs,
        })
    }
}

fn check_href(href: &str) -> Result<(), Error> {
    let bad = href.is_empty()
        || href.starts_with('/')
        || href.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        return Err(Error::BadLocation {
            href: href.to_string(),
        });
    }
    Ok(())
}

fn read_files(meta: &rpm::PackageMetadata) -> Result<Vec<PackageFile>, rpm::Error> {
    Ok(meta
        .get_file_entries()?
        .into_iter()
        .map(|entry| PackageFile {
            path: entry.path().to_string_lossy().into_owned(),
            kind: if entry.file_type() == FileType::Dir {
                PackageFileKind::Dir
            } else if entry.flags().contains(FileFlags::GHOST) {
                PackageFileKind::Ghost
            } else {
                PackageFileKind::File
            },
        })
        .collect())
}

/// The paths yum's primary.xml has always listed, so that a dependency on
/// a file there resolves without the large filelists.xml.
fn is_primary_path(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

fn flags_name(flags: DependencyFlags) -> Option<String> {
    let sense = flags & (DependencyFlags::LESS | DependencyFlags::GREATER | DependencyFlags::EQUAL);
    let name = match sense {
        s if s == DependencyFlags::LESS => "LT",
        s if s == DependencyFlags::GREATER => "GT",
        s if s == DependencyFlags::EQUAL => "EQ",
        s if s == DependencyFlags::LE => "LE",
        s if s == DependencyFlags::GE => "GE",
        _ => return None,
    };
    Some(name.to_string())
}

/// `[epoch:]version[-release]`, split at the first `-`; epoch `0` when the
/// string has a version but no (numeric) epoch.
fn split_evr(evr: &str) -> (Option<String>, Option<String>, Option<String>) {
    if evr.is_empty() {
        return (None, None, None);
    }
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(e.to_string()), rest)
        }
        Some(("", rest)) => (Some("0".to_string()), rest),
        Some(_) => (None, evr),
        None => (Some("0".to_string()), evr),
    };
    match rest.split_once('-') {
        Some((ver, rel)) => (
            epoch,
            Some(ver.to_string()),
            (!rel.is_empty()).then(|| rel.to_string()),
        ),
        None => (epoch, Some(rest.to_string()), None),
    }
}

fn dep(d: &rpm::Dependency, pre: bool) -> Dep {
    let (epoch, ver, rel) = split_evr(&d.version);
    Dep {
        name: d.name.clone(),
        flags: flags_name(d.flags),
        epoch,
        ver,
        rel,
        pre,
    }
}

fn deps(list: Vec<rpm::Dependency>) -> Vec<Dep> {
    list.iter().map(|d| dep(d, false)).collect()
}

fn requires(
    list: Vec<rpm::Dependency>,
    provided: &HashSet<(&str, Option<String>, &str)>,
    primary_files: &HashSet<&str>,
) -> Vec<Dep> {
    let prereq =
        DependencyFlags::PREREQ | DependencyFlags::SCRIPT_PRE | DependencyFlags::SCRIPT_POST;
    // The last kept entry per name: an exact repeat of it is dropped.
    let mut last: HashMap<String, (Option<String>, String, bool)> = HashMap::new();
    let mut out = Vec::new();
    for d in &list {
        if d.name.starts_with("rpmlib(")
            || primary_files.contains(d.name.as_str())
            || provided.contains(&(d.name.as_str(), flags_name(d.flags), d.version.as_str()))
        {
            continue;
        }
        let pre = d.flags.intersects(prereq);
        let key = (flags_name(d.flags), d.version.clone(), pre);
        if last.get(&d.name) == Some(&key) {
            continue;
        }
        last.insert(d.name.clone(), key);
        out.push(dep(d, pre));
    }
    out
}

/// Compression of primary, filelists and other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataCompression {
    /// `.xml.gz`: every yum, dnf and zypper reads it.
    #[default]
    Gzip,
    /// `.xml.zst`: smaller and faster; needs a client built with zstd.
    Zstd,
}

impl MetadataCompression {
    pub fn suffix(self) -> &'static str {
        match self {
            MetadataCompression::Gzip => "xml.gz",
            MetadataCompression::Zstd => "xml.zst",
        }
    }

    /// How each piece is compressed (gzip at zlib's default level, as
    /// createrepo_c does).
    pub fn codec(self) -> Codec {
        match self {
            MetadataCompression::Gzip => Codec::Gzip(6),
            MetadataCompression::Zstd => Codec::Zstd,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepodataOptions {
    pub compression: MetadataCompression,
    /// repomd.xml's revision and every file's timestamp.
    pub timestamp: u64,
    /// Package file times written are at most this (reproducible builds'
    /// clamping: a package copied later still gets the same metadata).
    pub clamp_file_times_to: Option<u64>,
}

impl RepodataOptions {
    /// Time from `SOURCE_DATE_EPOCH` when it is set (and file times clamped
    /// to it), else now.
    pub fn from_env(compression: MetadataCompression) -> RepodataOptions {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RepodataOptions {
            compression,
            timestamp: epoch.unwrap_or(now),
            clamp_file_times_to: epoch,
        }
    }
}

/// The files of `repodata/`, keyed by their path relative to the repository
/// directory. Write every other file before [`Repodata::REPOMD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repodata {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Repodata {
    /// The index file clients read first; it names all the others.
    pub const REPOMD: &'static str = "repodata/repomd.xml";
    /// Where its detached signature goes.
    pub const REPOMD_SIGNATURE: &'static str = "repodata/repomd.xml.asc";

    pub fn repomd(&self) -> &[u8] {
        &self.files[Self::REPOMD]
    }
}

/// The `repodata/` files for `packages` (in any order; written sorted by
/// location).
pub fn repodata(packages: &[RpmPackage], options: &RepodataOptions) -> Result<Repodata, Error> {
    repodata_of(&packages.iter().collect::<Vec<_>>(), options)
}

/// [`repodata`] of borrowed records: the documents made in one piece each
/// (head, packages, tail), as a publish makes a list of up to
/// [`crate::chunks::SINGLE_BUCKET_LIMIT`] packages.
pub fn repodata_of(packages: &[&RpmPackage], options: &RepodataOptions) -> Result<Repodata, Error> {
    let mut sorted: Vec<&RpmPackage> = packages.to_vec();
    sorted.sort_by(|a, b| a.href.cmp(&b.href));
    check_locations(&sorted)?;
    let codec = options.compression.codec();
    let documents = DOCUMENTS.map(|kind| {
        let body = entries(kind, &sorted, options);
        let texts = [head(kind, sorted.len()), body, tail(kind)];
        let pieces: Vec<Vec<u8>> = texts.iter().map(|t| codec.compress(t.as_bytes())).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let plain: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        Document::of(kind, &plain, codec.join(&refs))
    });
    Ok(repomd(documents, options))
}

/// Refuses two packages at one location (`sorted` by location).
pub fn check_locations(sorted: &[&RpmPackage]) -> Result<(), Error> {
    for pair in sorted.windows(2) {
        if pair[0].href == pair[1].href {
            return Err(Error::DuplicateLocation {
                href: pair[0].href.clone(),
            });
        }
    }
    Ok(())
}

/// The three documents, in the order repomd.xml lists them.
pub const DOCUMENTS: [&str; 3] = ["primary", "filelists", "other"];

/// One compressed document, with what repomd.xml says of its text.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: &'static str,
    pub open_size: u64,
    pub open_sha256: String,
    pub compressed: Vec<u8>,
}

impl Document {
    /// The document `kind` whose text is `plain` (in parts, joined) and
    /// whose compressed file is `compressed`.
    pub fn of(kind: &'static str, plain: &[&[u8]], compressed: Vec<u8>) -> Document {
        let mut hash = Sha256::new();
        let mut open_size = 0;
        for part in plain {
            hash.update(part);
            open_size += part.len() as u64;
        }
        Document {
            kind,
            open_size,
            open_sha256: hex::encode(hash.finalize()),
            compressed,
        }
    }
}

/// `repodata/`: each document at its digest-named path, and repomd.xml
/// naming them.
pub fn repomd(documents: [Document; 3], options: &RepodataOptions) -> Repodata {
    let mut files = BTreeMap::new();
    let mut repomd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n",
    );
    repomd.push_str(&format!("  <revision>{}</revision>\n", options.timestamp));
    for d in documents {
        let sha = hex::encode(Sha256::digest(&d.compressed));
        let path = format!("repodata/{sha}-{}.{}", d.kind, options.compression.suffix());
        repomd.push_str(&format!(
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{sha}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    \
             <location href=\"{path}\"/>\n    <timestamp>{}</timestamp>\n    \
             <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            d.kind,
            d.open_sha256,
            options.timestamp,
            d.compressed.len(),
            d.open_size
        ));
        files.insert(path, d.compressed);
    }
    repomd.push_str("</repomd>\n");
    files.insert(Repodata::REPOMD.to_string(), repomd.into_bytes());
    Repodata { files }
}

/// Where a document's text starts: the XML declaration and the root
/// element, which counts the packages.
pub fn head(kind: &str, packages: usize) -> String {
    let (root, namespace) = root_of(kind);
    let rpm_namespace = if kind == "primary" {
        " xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\""
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <{root} xmlns=\"{namespace}\"{rpm_namespace} packages=\"{packages}\">\n"
    )
}

/// Where a document's text ends.
pub fn tail(kind: &str) -> String {
    format!("</{}>\n", root_of(kind).0)
}

fn root_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "primary" => ("metadata", "http://linux.duke.edu/metadata/common"),
        "filelists" => ("filelists", "http://linux.duke.edu/metadata/filelists"),
        _ => ("otherdata", "http://linux.duke.edu/metadata/other"),
    }
}

/// The `<package>` elements of `packages` in the document `kind`.
pub fn entries(kind: &str, packages: &[&RpmPackage], options: &RepodataOptions) -> String {
    match kind {
        "primary" => primary_entries(packages, options),
        "filelists" => filelists_entries(packages),
        _ => other_entries(packages),
    }
}

/// XML text and attribute escaping (libxml2 writes the same entities).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            // Other control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn version_element(p: &RpmPackage) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        p.epoch,
        esc(&p.version),
        esc(&p.release)
    )
}

fn file_element(f: &PackageFile, indent: &str) -> String {
    let kind = match f.kind {
        PackageFileKind::File => "",
        PackageFileKind::Dir => " type=\"dir\"",
        PackageFileKind::Ghost => " type=\"ghost\"",
    };
    format!("{indent}<file{kind}>{}</file>\n", esc(&f.path))
}

fn dep_list(out: &mut String, element: &str, list: &[Dep]) {
    if list.is_empty() {
        return;
    }
    out.push_str(&format!("    <rpm:{element}>\n"));
    for d in list {
        out.push_str(&format!("      <rpm:entry name=\"{}\"", esc(&d.name)));
        if let Some(flags) = &d.flags {
            out.push_str(&format!(" flags=\"{flags}\""));
            for (attr, value) in [("epoch", &d.epoch), ("ver", &d.ver), ("rel", &d.rel)] {
                if let Some(v) = value {
                    out.push_str(&format!(" {attr}=\"{}\"", esc(v)));
                }
            }
        }
        if d.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    out.push_str(&format!("    </rpm:{element}>\n"));
}

fn primary_entries(packages: &[&RpmPackage], options: &RepodataOptions) -> String {
    let mut out = String::new();
    for p in packages {
        let file_time = match options.clamp_file_times_to {
            Some(limit) => p.file_time.min(limit),
            None => p.file_time,
        };
        out.push_str("<package type=\"rpm\">\n");
        out.push_str(&format!("  <name>{}</name>\n", esc(&p.name)));
        out.push_str(&format!("  <arch>{}</arch>\n", esc(&p.arch)));
        out.push_str(&format!("  {}\n", version_element(p)));
        out.push_str(&format!(
            "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>\n",
            p.sha256
        ));
        out.push_str(&format!("  <summary>{}</summary>\n", esc(&p.summary)));
        out.push_str(&format!(
            "  <description>{}</description>\n",
            esc(&p.description)
        ));
        out.push_str(&format!("  <packager>{}</packager>\n", esc(&p.packager)));
        out.push_str(&format!("  <url>{}</url>\n", esc(&p.url)));
        out.push_str(&format!(
            "  <time file=\"{file_time}\" build=\"{}\"/>\n",
            p.build_time
        ));
        out.push_str(&format!(
            "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>\n",
            p.size, p.installed_size, p.archive_size
        ));
        out.push_str(&format!("  <location href=\"{}\"/>\n", esc(&p.href)));
        out.push_str("  <format>\n");
        for (element, value) in [
            ("license", &p.license),
            ("vendor", &p.vendor),
            ("group", &p.group),
            ("buildhost", &p.buildhost),
            ("sourcerpm", &p.sourcerpm),
        ] {
            out.push_str(&format!(
                "    <rpm:{element}>{}</rpm:{element}>\n",
                esc(value)
            ));
        }
        out.push_str(&format!(
            "    <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
            p.header_start, p.header_end
        ));
        dep_list(&mut out, "provides", &p.provides);
        dep_list(&mut out, "requires", &p.requires);
        dep_list(&mut out, "conflicts", &p.conflicts);
        dep_list(&mut out, "obsoletes", &p.obsoletes);
        dep_list(&mut out, "suggests", &p.suggests);
        dep_list(&mut out, "enhances", &p.enhances);
        dep_list(&mut out, "recommends", &p.recommends);
        dep_list(&mut out, "supplements", &p.supplements);
        for f in p.files.iter().filter(|f| is_primary_path(&f.path)) {
            out.push_str(&file_element(f, "    "));
        }
        out.push_str("  </format>\n</package>\n");
    }
    out
}

fn package_open(p: &RpmPackage) -> String {
    format!(
        "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}\n",
        p.sha256,
        esc(&p.name),
        esc(&p.arch),
        version_element(p)
    )
}

/// filelists.xml's and other.xml's entries: one `<package>` element per
/// package, with what `body` writes inside it.
fn per_package_entries(
    packages: &[&RpmPackage],
    body: impl Fn(&RpmPackage, &mut String),
) -> String {
    let mut out = String::new();
    for p in packages {
        out.push_str(&package_open(p));
        body(p, &mut out);
        out.push_str("</package>\n");
    }
    out
}

fn filelists_entries(packages: &[&RpmPackage]) -> String {
    per_package_entries(packages, |p, out| {
        for f in &p.files {
            out.push_str(&file_element(f, "  "));
        }
    })
}

fn other_entries(packages: &[&RpmPackage]) -> String {
    per_package_entries(packages, |p, out| {
        for c in &p.changelogs {
            out.push_str(&format!(
                "  <changelog author=\"{}\" date=\"{}\">{}</changelog>\n",
                esc(&c.author),
                c.date,
                esc(&c.text)
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split_like_createrepo_c() {
        let s = |v: &str| split_evr(v);
        assert_eq!(s(""), (None, None, None));
        assert_eq!(
            s("5.14.0-503.40.1.el9_5.x86_64"),
            (
                Some("0".into()),
                Some("5.14.0".into()),
                Some("503.40.1.el9_5.x86_64".into())
            )
        );
        assert_eq!(
            s("2:1.0-1-2"),
            (Some("2".into()), Some("1.0".into()), Some("1-2".into()))
        );
        assert_eq!(s("3.0"), (Some("0".into()), Some("3.0".into()), None));
    }

    #[test]
    fn hrefs_that_leave_the_repository_are_refused() {
        for bad in ["", "/abs.rpm", "../x.rpm", "a//b.rpm", "a/../b.rpm"] {
            assert!(check_href(bad).is_err(), "{bad}");
        }
        assert!(check_href("Packages/k/kmod-x.rpm").is_ok());
    }
}
