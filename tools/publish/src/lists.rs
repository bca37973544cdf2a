//! The package lists of a publish (apt's Packages, yum's primary,
//! filelists and other) made from buckets ([`crate::chunks`]), and the
//! package records they are made from.
//!
//! The state names each package by what a publish decides with (name,
//! version, file, digest); its whole record (the control paragraph, the
//! rpm header's metadata) is in `.kmodfarm/records/<key>.json`, one file
//! per bucket of [`RECORD_BUCKETS`]. A bucket of a list is made again only
//! when its packages changed, and only then are their records read.
//! Both kinds of file are named by a digest of their content's source, so
//! a publish writes new ones beside the old, and the old go only after
//! the new state is in place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::apt::{self, PackagesList, PoolPackage};
use crate::chunks::{bucket_count, bucket_of, key_of, Chunk, Codec};
use crate::error::{PublishError, Result};
use crate::rpm_md::{self, Document, RepodataOptions, RpmPackage, DOCUMENTS};
use crate::state::{StoredDeb, StoredRpm, CHUNKS_DIR, RECORDS_DIR};

/// Record files are this many buckets of package file names, whatever the
/// repository's size.
pub const RECORD_BUCKETS: usize = 64;

/// Bumped whenever the text a bucket makes changes, so older chunks are
/// not reused.
const APT_CHUNK: &str = "apt-packages 1";
const YUM_CHUNK: &str = "yum-repodata 1";

/// One record file: the packages of one bucket.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordFile {
    #[serde(default)]
    debs: Vec<PoolPackage>,
    #[serde(default)]
    rpms: Vec<RpmPackage>,
}

/// Files a publish adds under `.kmodfarm/` (content-addressed, written
/// straight to their names).
pub type NewFiles = Vec<(String, Vec<u8>)>;

/// The records of every package the new state holds: the ones given to
/// this publish, and the ones earlier publishes stored.
pub struct Records<'a> {
    repo: &'a Path,
    stored: &'a BTreeMap<String, String>,
    fresh_debs: HashMap<String, PoolPackage>,
    fresh_rpms: HashMap<String, RpmPackage>,
    loaded: HashMap<String, RecordFile>,
}

fn record_bucket(kind: &str, name: &str) -> String {
    format!("{kind}-{:02}", bucket_of(name, RECORD_BUCKETS))
}

impl<'a> Records<'a> {
    pub fn new(repo: &'a Path, stored: &'a BTreeMap<String, String>) -> Records<'a> {
        Records {
            repo,
            stored,
            fresh_debs: HashMap::new(),
            fresh_rpms: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    pub fn add_deb(&mut self, package: PoolPackage) {
        self.fresh_debs.insert(package.filename.clone(), package);
    }

    pub fn add_rpm(&mut self, package: RpmPackage) {
        self.fresh_rpms.insert(package.href.clone(), package);
    }

    fn file(&mut self, bucket: &str) -> Result<&RecordFile> {
        if !self.loaded.contains_key(bucket) {
            let file = match self.stored.get(bucket) {
                Some(key) => {
                    let path = self.repo.join(RECORDS_DIR).join(format!("{key}.json"));
                    let text = std::fs::read(&path)
                        .map_err(PublishError::io("read the records", &path))?;
                    serde_json::from_slice(&text).map_err(|e| PublishError::BadState {
                        path: path.clone(),
                        message: e.to_string(),
                    })?
                }
                None => RecordFile::default(),
            };
            self.loaded.insert(bucket.to_string(), file);
        }
        Ok(&self.loaded[bucket])
    }

    fn missing(&self, bucket: &str, name: &str) -> PublishError {
        let key = self.stored.get(bucket).map_or("(none)", String::as_str);
        PublishError::BadState {
            path: self.repo.join(RECORDS_DIR).join(format!("{key}.json")),
            message: format!(
                "no record of {name}, which the state lists: publish into a new repository folder"
            ),
        }
    }

    pub fn deb(&mut self, filename: &str) -> Result<PoolPackage> {
        if let Some(p) = self.fresh_debs.get(filename) {
            return Ok(p.clone());
        }
        let bucket = record_bucket("deb", filename);
        let found = self
            .file(&bucket)?
            .debs
            .iter()
            .find(|p| p.filename == filename)
            .cloned();
        found.ok_or_else(|| self.missing(&bucket, filename))
    }

    pub fn rpm(&mut self, href: &str) -> Result<RpmPackage> {
        if let Some(p) = self.fresh_rpms.get(href) {
            return Ok(p.clone());
        }
        let bucket = record_bucket("rpm", href);
        let found = self
            .file(&bucket)?
            .rpms
            .iter()
            .find(|p| p.href == href)
            .cloned();
        found.ok_or_else(|| self.missing(&bucket, href))
    }

    /// The record files of a state holding `debs` and `rpms`: the bucket →
    /// key map, and the files to add (buckets whose packages changed).
    pub fn store(
        &mut self,
        debs: &[StoredDeb],
        rpms: &[StoredRpm],
    ) -> Result<(BTreeMap<String, String>, NewFiles)> {
        let mut members: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
        for d in debs {
            members
                .entry(record_bucket("deb", &d.filename))
                .or_default()
                .push((&d.filename, &d.sha256));
        }
        for r in rpms {
            members
                .entry(record_bucket("rpm", &r.href))
                .or_default()
                .push((&r.href, &r.sha256));
        }
        let mut map = BTreeMap::new();
        let mut new = Vec::new();
        for (bucket, mut list) in members {
            list.sort();
            let key = key_of(&bucket, list.iter().flat_map(|(name, sha)| [*name, *sha]));
            if self.stored.get(&bucket) != Some(&key) {
                let mut file = RecordFile::default();
                for (name, _) in &list {
                    if bucket.starts_with("deb") {
                        file.debs.push(self.deb(name)?);
                    } else {
                        file.rpms.push(self.rpm(name)?);
                    }
                }
                let json = serde_json::to_vec(&file).expect("records serialize");
                new.push((format!("{RECORDS_DIR}/{key}.json"), json));
            }
            map.insert(bucket, key);
        }
        Ok((map, new))
    }
}

/// Makes lists from buckets, reusing the chunks of the last publish.
pub struct Lists<'a> {
    repo: &'a Path,
    kept: &'a BTreeSet<String>,
    pub records: Records<'a>,
    made: HashMap<String, Chunk>,
    /// The chunks the new generation uses.
    pub used: BTreeSet<String>,
    /// Chunks made by this publish.
    pub new: NewFiles,
}

impl<'a> Lists<'a> {
    pub fn new(repo: &'a Path, kept: &'a BTreeSet<String>, records: Records<'a>) -> Lists<'a> {
        Lists {
            repo,
            kept,
            records,
            made: HashMap::new(),
            used: BTreeSet::new(),
            new: Vec::new(),
        }
    }

    /// The chunk `key`: the kept one when it is whole (it has every one of
    /// `sections`), else made by `make`.
    fn chunk(
        &mut self,
        key: String,
        sections: &[&str],
        make: impl FnOnce(&mut Records<'a>) -> Result<Chunk>,
    ) -> Result<Chunk> {
        self.used.insert(key.clone());
        if let Some(c) = self.made.get(&key) {
            return Ok(c.clone());
        }
        if self.kept.contains(&key) {
            let path = self.repo.join(CHUNKS_DIR).join(&key);
            let kept = std::fs::read(&path).ok().and_then(|b| Chunk::decode(&b));
            if let Some(c) = kept.filter(|c| sections.iter().all(|s| c.get(s).is_some())) {
                return Ok(c);
            }
        }
        let chunk = make(&mut self.records)?;
        self.new
            .push((format!("{CHUNKS_DIR}/{key}"), chunk.encode()));
        self.made.insert(key, chunk.clone());
        Ok(chunk)
    }

    /// One architecture's Packages list of `members`.
    pub fn packages(&mut self, arch: &str, members: &[&StoredDeb]) -> Result<PackagesList> {
        let count = bucket_count(members.len());
        let mut buckets: BTreeMap<usize, Vec<&StoredDeb>> = BTreeMap::new();
        for m in members {
            buckets
                .entry(bucket_of(&m.filename, count))
                .or_default()
                .push(m);
        }
        let (mut plain, mut gz, mut xz) = (Vec::new(), Vec::new(), Vec::new());
        for (_, mut bucket) in buckets {
            bucket.sort_by(|a, b| a.filename.cmp(&b.filename));
            let key = key_of(
                APT_CHUNK,
                bucket.iter().flat_map(|d| [d.filename.as_str(), &d.sha256]),
            );
            let mut chunk = self.chunk(key, &["text", "gz", "xz"], |records| {
                let packages = bucket
                    .iter()
                    .map(|d| records.deb(&d.filename))
                    .collect::<Result<Vec<_>>>()?;
                let text = apt::packages_text(&packages.iter().collect::<Vec<_>>()).into_bytes();
                let mut c = Chunk::default();
                c.put("gz", apt::GZIP.compress(&text));
                c.put("xz", Codec::Xz.compress(&text));
                c.put("text", text);
                Ok(c)
            })?;
            plain.push(section(&mut chunk, "text")?);
            gz.push(section(&mut chunk, "gz")?);
            xz.push(section(&mut chunk, "xz")?);
        }
        if plain.is_empty() {
            return Ok(PackagesList::of(arch, &[]));
        }
        let join = |codec: Codec, pieces: &[Vec<u8>]| {
            codec.join(&pieces.iter().map(Vec::as_slice).collect::<Vec<_>>())
        };
        Ok(PackagesList {
            arch: arch.to_string(),
            gz: join(apt::GZIP, &gz),
            xz: join(Codec::Xz, &xz),
            plain: plain.concat(),
        })
    }

    /// primary, filelists and other of `members`.
    pub fn repodata(
        &mut self,
        members: &[&StoredRpm],
        options: &RepodataOptions,
    ) -> Result<[Document; 3]> {
        let codec = options.compression.codec();
        let count = bucket_count(members.len());
        let mut buckets: BTreeMap<usize, Vec<&StoredRpm>> = BTreeMap::new();
        for m in members {
            buckets
                .entry(bucket_of(&m.href, count))
                .or_default()
                .push(m);
        }
        let clamp = |t: u64| options.clamp_file_times_to.map_or(t, |limit| t.min(limit));
        let mut texts: [Vec<Vec<u8>>; 3] = Default::default();
        let mut pieces: [Vec<Vec<u8>>; 3] = Default::default();
        for (i, kind) in DOCUMENTS.iter().enumerate() {
            let head = rpm_md::head(kind, members.len()).into_bytes();
            pieces[i].push(codec.compress(&head));
            texts[i].push(head);
        }
        for (_, mut bucket) in buckets {
            bucket.sort_by(|a, b| a.href.cmp(&b.href));
            let times: Vec<String> = bucket
                .iter()
                .map(|r| clamp(r.file_time).to_string())
                .collect();
            let key = key_of(
                &format!("{YUM_CHUNK} {}", options.compression.suffix()),
                bucket
                    .iter()
                    .zip(&times)
                    .flat_map(|(r, t)| [r.href.as_str(), &r.sha256, t]),
            );
            let sections = DOCUMENTS.map(|k| k.to_string());
            let compressed = DOCUMENTS.map(|k| format!("{k}.z"));
            let names: Vec<&str> = sections
                .iter()
                .chain(&compressed)
                .map(String::as_str)
                .collect();
            let mut chunk = self.chunk(key, &names, |records| {
                let packages = bucket
                    .iter()
                    .map(|r| records.rpm(&r.href))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&RpmPackage> = packages.iter().collect();
                rpm_md::check_locations(&refs).map_err(PublishError::Rpm)?;
                let mut c = Chunk::default();
                for kind in DOCUMENTS {
                    let text = rpm_md::entries(kind, &refs, options).into_bytes();
                    c.put(&format!("{kind}.z"), codec.compress(&text));
                    c.put(kind, text);
                }
                Ok(c)
            })?;
            for (i, kind) in DOCUMENTS.iter().enumerate() {
                texts[i].push(section(&mut chunk, kind)?);
                pieces[i].push(section(&mut chunk, &format!("{kind}.z"))?);
            }
        }
        Ok(DOCUMENTS.map(|kind| {
            let i = DOCUMENTS
                .iter()
                .position(|k| *k == kind)
                .expect("a document");
            let tail = rpm_md::tail(kind).into_bytes();
            pieces[i].push(codec.compress(&tail));
            texts[i].push(tail);
            let plain: Vec<&[u8]> = texts[i].iter().map(Vec::as_slice).collect();
            let refs: Vec<&[u8]> = pieces[i].iter().map(Vec::as_slice).collect();
            Document::of(kind, &plain, codec.join(&refs))
        }))
    }
}

fn section(chunk: &mut Chunk, name: &str) -> Result<Vec<u8>> {
    chunk.take(name).ok_or_else(|| PublishError::BadState {
        path: CHUNKS_DIR.into(),
        message: format!("a chunk has no '{name}' section"),
    })
}
