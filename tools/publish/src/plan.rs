//! Plan a publish: from the repository's state and the inputs, every file
//! to copy in, every file to write (with its bytes, signatures made), and
//! every file to remove afterwards. Nothing is written here; the plan is
//! data, printable with `--dry-run --json`.

use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kmodfarm_model::record::{
    dkms_package_name, prebuilt_package_name, BuildOutcome, Freshness, IndexEntry, KernelStatus,
};
use kmodfarm_model::PackageFamily;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::apt::{self, ReleaseInfo};
use crate::error::{PublishError, Result};
use crate::index;
use crate::inputs::{Builds, DebInput, RpmInput, Targets};
use crate::lists::{Lists, Records};
use crate::page::{self, PageOptions};
use crate::rpm_md::{self, MetadataCompression, Repodata, RepodataOptions, RpmPackage};
use crate::rpm_sign::{self, RpmSignature};
use crate::sign::SigningKey;
use crate::state::{
    digest_bytes, upstream, FileFact, Holds, Migrated, RepoState, StoredDeb, StoredKernel,
    StoredRpm, CHUNKS_DIR, RECORDS_DIR, STATE_FILE,
};

/// The installer script at the repository root, when `--url` says where
/// the repository is served (the script pins the key and that address).
pub const INSTALL_SCRIPT: &str = "install.sh";

/// Options that shape the published repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishOptions {
    /// Keep the newest N versions of the module; older ones are pruned.
    pub keep: Option<usize>,
    /// Seconds the signed metadata stays valid (Release's Valid-Until,
    /// the index's `expires`).
    pub valid_for: Option<u64>,
    /// The publish's time: SOURCE_DATE_EPOCH when set, else now.
    pub now: u64,
    /// Compression of the yum metadata (primary, filelists, other).
    pub rpm_compression: MetadataCompression,
    /// Where the repository is served, for the page's install lines.
    pub repo_url: Option<String>,
    /// `install.sh`, rendered for `repo_url` and the key; without one an
    /// earlier publish's script stays.
    #[serde(skip)]
    pub install_script: Option<String>,
}

impl PublishOptions {
    /// Options for a publish at `now` with nothing else asked for.
    pub fn at(now: u64) -> PublishOptions {
        PublishOptions {
            keep: None,
            valid_for: None,
            now,
            rpm_compression: MetadataCompression::default(),
            repo_url: None,
            install_script: None,
        }
    }
}

/// When a planned write becomes visible: content-addressed and new files
/// first, then indexes, then the signed top-level files, then the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// A name nothing published refers to yet (pool, prebuilt, by-hash):
    /// written straight to its final name.
    New,
    /// An index read by name (Packages, lookups, keys): replaced by rename.
    Index,
    /// index.json, Release, Release.gpg and InRelease: renamed last.
    Signed,
    /// `.kmodfarm/state.json`, after everything it describes.
    State,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyIn {
    pub from: PathBuf,
    /// Relative to the repository root.
    pub to: String,
    /// Of the file written at `to`.
    pub size: u64,
    pub sha256: String,
    /// An unsigned .rpm: what is written is `from` signed by the
    /// repository's key, not `from` itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedCopy>,
}

/// The signed copy of an unsigned input .rpm, made by the plan.
#[derive(Clone, Serialize)]
pub struct SignedCopy {
    /// The repository key's id, which signs it.
    pub key_id: String,
    /// The input's size and SHA-256 (the copy's are the [`CopyIn`]'s).
    pub input_size: u64,
    pub input_sha256: String,
    #[serde(skip)]
    pub bytes: Arc<Vec<u8>>,
}

impl std::fmt::Debug for SignedCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedCopy")
            .field("key_id", &self.key_id)
            .field("input_size", &self.input_size)
            .field("input_sha256", &self.input_sha256)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteFile {
    pub path: String,
    pub stage: Stage,
    pub size: u64,
    pub sha256: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Made as a hard link to this file (relative to the repository root,
    /// written earlier in the plan or already there) instead of from
    /// `bytes`, which are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_from: Option<String>,
}

/// The files a plan writes, as they are planned.
#[derive(Default)]
struct Writes(Vec<WriteFile>);

impl Writes {
    fn put(&mut self, path: String, stage: Stage, bytes: Vec<u8>) {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.digested(path, stage, bytes, sha256);
    }

    /// [`Writes::put`] of bytes whose digest is known.
    fn digested(&mut self, path: String, stage: Stage, bytes: Vec<u8>, sha256: String) {
        self.0.push(WriteFile {
            size: bytes.len() as u64,
            sha256,
            path,
            stage,
            bytes,
            link_from: None,
        });
    }

    fn link(&mut self, path: String, stage: Stage, from: &str, size: u64, sha256: &str) {
        self.0.push(WriteFile {
            size,
            sha256: sha256.to_string(),
            path,
            stage,
            bytes: Vec::new(),
            link_from: Some(from.to_string()),
        });
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub repo: PathBuf,
    pub serial: u64,
    pub generated: u64,
    pub expires: Option<u64>,
    /// Whether the repository exists yet.
    pub existing: bool,
    pub copy: Vec<CopyIn>,
    pub write: Vec<WriteFile>,
    /// Removed after the new generation is in place.
    pub remove: Vec<String>,
    /// Input packages and modules the repository already holds, unread
    /// beyond their size and digest.
    pub unchanged: usize,
    #[serde(skip)]
    pub state: RepoState,
}

pub struct PlanInputs<'a> {
    pub repo: &'a Path,
    pub targets: &'a Targets,
    pub old: Option<RepoState>,
    pub debs: Vec<DebInput>,
    pub rpms: Vec<RpmInput>,
    pub builds: Option<&'a Builds>,
    pub key: &'a SigningKey,
    pub options: &'a PublishOptions,
}

pub fn plan(inputs: PlanInputs<'_>) -> Result<Plan> {
    let PlanInputs {
        repo,
        targets,
        old,
        debs,
        rpms,
        builds,
        key,
        options,
    } = inputs;
    let existing = old.is_some();
    let mut old = old.unwrap_or_else(|| RepoState::empty(&targets.module));
    // What the previous generation consists of, pool included.
    let old_files = old.all_files();
    // The new state starts as the old one; the package lists move rather
    // than copy (they are most of it).
    let mut state = RepoState {
        debs: std::mem::take(&mut old.debs),
        rpms: std::mem::take(&mut old.rpms),
        kernels: std::mem::take(&mut old.kernels),
        migrated: Migrated::default(),
        ..old.clone()
    };
    let mut copy = Vec::new();
    let mut unchanged = 0;

    // Packages: new ones are copied in (.deb into the pool, .rpm into each
    // of its yum repositories); one already there with the same name must
    // be the same bytes.
    let mut records = Records::new(repo, &old.records);
    // A format-1 state's records, written out by this publish.
    for package in std::mem::take(&mut old.migrated.debs) {
        records.add_deb(package);
    }
    for package in std::mem::take(&mut old.migrated.rpms) {
        records.add_rpm(package);
    }
    let mut intake = Intake {
        repo,
        old_files: &old_files,
        copy: &mut copy,
    };
    let mut held = Held::of(&state.debs);
    for input in debs {
        let stored = StoredDeb::of(&input.package, input.codenames);
        records.add_deb(input.package);
        let pool = |d: &StoredDeb| vec![format!("deb/{}", d.filename)];
        if intake.take(
            &mut state.debs,
            &mut held,
            stored,
            &input.source,
            None,
            pool,
        )? {
            unchanged += 1;
        }
    }
    let mut held = Held::of(&state.rpms);
    for input in rpms {
        let yum = |r: &StoredRpm| rpm_pool_paths(targets, &r.distros, r.file_name()).collect();
        if input.signature == RpmSignature::Repository {
            let stored = StoredRpm::of(&input.package, input.distros);
            records.add_rpm(input.package);
            if intake.take(&mut state.rpms, &mut held, stored, &input.source, None, yum)? {
                unchanged += 1;
            }
            continue;
        }
        // Unsigned: the pool gets a copy signed by the repository's key.
        let name = file_name_of(&input.package.href).to_string();
        let input_fact = FileFact {
            size: input.package.size,
            sha256: digest_bytes(&input.package.sha256),
        };
        let held_at = held.0.get(&name).copied();
        let signed_before = state.signed_rpms.get(&name) == Some(&input_fact);
        if let Some(i) = held_at.filter(|_| signed_before) {
            // This input's signed copy is in the repository: unless a copy
            // is missing or damaged, nothing is signed or copied again.
            let mut distros = state.rpms[i].distros.clone();
            for d in &input.distros {
                if !distros.contains(d) {
                    distros.push(d.clone());
                }
            }
            let all_intact = rpm_pool_paths(targets, &distros, &name)
                .all(|p| pool_file_intact(repo, &p, &old_files));
            if all_intact {
                let stored = StoredRpm {
                    distros: input.distros,
                    ..state.rpms[i].clone()
                };
                intake.take(&mut state.rpms, &mut held, stored, &input.source, None, yum)?;
                unchanged += 1;
                continue;
            }
        }
        let (package, signed) = sign_rpm(&input.package, &input.source, key, options.now)?;
        let stored = StoredRpm::of(&package, input.distros.clone());
        records.add_rpm(package);
        state.signed_rpms.insert(name, input_fact);
        let replaces =
            held_at.filter(|&i| signed_before || state.rpms[i].sha256 == input.package.sha256);
        match replaces {
            // The same input, signed again (a copy went missing), or as an
            // older kmodfarm published it, unsigned: the signed copy takes
            // its place in every yum repository that holds it.
            Some(i) => {
                let mut distros = std::mem::take(&mut state.rpms[i].distros);
                for d in stored.distros.iter() {
                    if !distros.contains(d) {
                        distros.push(d.clone());
                    }
                }
                distros.sort();
                state.rpms[i] = StoredRpm { distros, ..stored };
                let r = &state.rpms[i];
                for to in rpm_pool_paths(targets, &r.distros, r.file_name()) {
                    let mut c = copy_in(&input.source, &to, r.size, &r.sha256);
                    c.signed = Some(signed.clone());
                    intake.copy.push(c);
                }
            }
            None => {
                intake.take(
                    &mut state.rpms,
                    &mut held,
                    stored,
                    &input.source,
                    Some(&signed),
                    yum,
                )?;
            }
        }
    }
    state.debs.sort_by(|a, b| a.filename.cmp(&b.filename));
    state.rpms.sort_by(|a, b| a.href.cmp(&b.href));

    // Build records: prebuilt modules, failures and out-of-range kernels.
    if let Some(builds) = builds {
        for record in &builds.records {
            if !targets.distros.contains(&record.distro) || record.module.is_empty() {
                continue;
            }
            let (status, file) = match &record.outcome {
                BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
                    let source = builds.dir.join(&artifact.path);
                    check_artifact(&source, artifact.size, &artifact.sha256)?;
                    let extension = artifact
                        .path
                        .rsplit_once(".ko")
                        .map_or("ko".to_string(), |(_, rest)| format!("ko{rest}"));
                    let path = index::prebuilt_file_path(
                        &record.distro,
                        &record.arch,
                        &record.kernel_release,
                        &artifact.module,
                        &record.version,
                        &extension,
                    );
                    let entry = IndexEntry {
                        module: artifact.module.clone(),
                        version: record.version.clone(),
                        distro: record.distro.clone(),
                        arch: record.arch.clone(),
                        kernel_release: record.kernel_release.clone(),
                        path: path.clone(),
                        sha256: artifact.sha256.clone(),
                        size: artifact.size,
                        compression: artifact.compression,
                        signed: artifact.signed,
                        vermagic: artifact.vermagic.clone(),
                        prebuilt_package: String::new(),
                        package_path: String::new(),
                        package_sha256: String::new(),
                        dkms_package: dkms_package_name(&targets.module),
                    };
                    (
                        KernelStatus::Prebuilt { entry },
                        Some((source, path, artifact.clone())),
                    )
                }
                BuildOutcome::Failed { reason, .. } => (
                    KernelStatus::Failed {
                        reason: reason.clone(),
                    },
                    None,
                ),
                BuildOutcome::Skipped { reason } => (
                    KernelStatus::OutOfRange {
                        reason: reason.clone(),
                    },
                    None,
                ),
            };
            if let Some((source, path, artifact)) = file {
                if old_files
                    .get(&path)
                    .is_some_and(|f| f.sha256 == digest_bytes(&artifact.sha256))
                    && pool_file_intact(repo, &path, &old_files)
                {
                    unchanged += 1;
                } else {
                    copy.push(copy_in(&source, &path, artifact.size, &artifact.sha256));
                }
            }
            let kernel = StoredKernel {
                distro: record.distro.clone(),
                arch: record.arch.clone(),
                kernel_release: record.kernel_release.clone(),
                module: record.module.clone(),
                version: record.version.clone(),
                status,
            };
            state
                .kernels
                .retain(|k| !(k.key() == kernel.key() && k.module == kernel.module));
            state.kernels.push(kernel);
        }
    }

    // --keep N: the newest N versions stay, in pool, indexes and page.
    if let Some(keep) = options.keep {
        let kept: BTreeSet<String> = state.versions().into_iter().take(keep.max(1)).collect();
        state.debs.retain(|d| kept.contains(upstream(&d.version)));
        state.rpms.retain(|r| kept.contains(&r.version));
        let held: BTreeSet<&str> = state.rpms.iter().map(|r| r.file_name()).collect();
        state
            .signed_rpms
            .retain(|name, _| held.contains(name.as_str()));
        state.kernels.retain(|k| kept.contains(&k.version));
        copy.retain(|c| {
            !c.to.starts_with("deb/pool/")
                || state
                    .debs
                    .iter()
                    .any(|d| format!("deb/{}", d.filename) == c.to)
        });
        copy.retain(|c| {
            !c.to.starts_with("rpm/")
                || state
                    .rpms
                    .iter()
                    .any(|r| rpm_pool_paths(targets, &r.distros, r.file_name()).any(|p| p == c.to))
        });
        copy.retain(|c| {
            !c.to.starts_with("prebuilt/")
                || state.kernels.iter().any(|k| match &k.status {
                    KernelStatus::Prebuilt { entry } => entry.path == c.to,
                    _ => false,
                })
        });
    }

    link_prebuilt_packages(&mut state, targets);

    let serial = old.serial + 1;
    let freshness = Freshness {
        generated: options.now,
        expires: options.valid_for.map(|v| options.now + v),
        serial,
    };
    state.serial = serial;
    let when = options.now;

    let mut writes = Writes::default();

    // apt: one dists/<codename>/ per Debian-family target.
    let info = ReleaseInfo {
        origin: targets.module.clone(),
        label: targets.module.clone(),
        description: format!("{} packages, published by kmodfarm", targets.module),
        date: when,
        valid_until: freshness.expires,
    };
    let mut codenames: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in &targets.deb {
        let archs = codenames.entry(&t.codename).or_default();
        if !archs.contains(&t.arch) {
            archs.push(t.arch.clone());
        }
    }
    // Files named by their digest (apt's by-hash lists, yum's metadata):
    // kept one generation after they go out of use.
    let mut content_addressed = BTreeMap::new();
    let (record_files, new_records) = records.store(&state.debs, &state.rpms)?;
    let mut lists = Lists::new(repo, &old.chunks, records);
    for (codename, archs) in &codenames {
        let mut per_arch = Vec::new();
        for arch in archs {
            let members: Vec<&StoredDeb> = state
                .debs
                .iter()
                .filter(|d| d.codenames.iter().any(|c| c == codename))
                .filter(|d| &d.arch == arch || d.arch == "all")
                .collect();
            per_arch.push(lists.packages(arch, &members)?);
        }
        let dist = apt::dist(codename, per_arch, &info);
        let base = format!("deb/dists/{codename}");
        for file in dist.indexes {
            let hashed = format!("{base}/{}", file.by_hash_path());
            let named = format!("{base}/{}", file.path);
            content_addressed.insert(
                hashed.clone(),
                FileFact {
                    size: file.bytes.len() as u64,
                    sha256: digest_bytes(&file.sha256),
                },
            );
            // The name apt also reads is a link to the by-hash file.
            writes.link(
                named,
                Stage::Index,
                &hashed,
                file.bytes.len() as u64,
                &file.sha256,
            );
            writes.digested(hashed, Stage::New, file.bytes, file.sha256);
        }
        let release_gpg = key.detached_armored(dist.release.as_bytes(), when)?;
        let in_release = key.clearsign(&dist.release, when)?;
        writes.put(
            format!("{base}/Release"),
            Stage::Signed,
            dist.release.into_bytes(),
        );
        writes.put(
            format!("{base}/Release.gpg"),
            Stage::Signed,
            release_gpg.into_bytes(),
        );
        writes.put(
            format!("{base}/InRelease"),
            Stage::Signed,
            in_release.into_bytes(),
        );
    }

    // yum/dnf/zypper: one rpm/<distro>/<arch>/ per RPM-family target, its
    // repomd.xml signed beside it.
    let repodata_options = RepodataOptions {
        compression: options.rpm_compression,
        timestamp: when,
        clamp_file_times_to: Some(when),
    };
    for t in &targets.rpm {
        let members: Vec<&StoredRpm> = state
            .rpms
            .iter()
            .filter(|r| r.distros.contains(&t.distro))
            .collect();
        let documents = lists.repodata(&members, &repodata_options)?;
        let repodata = rpm_md::repomd(documents, &repodata_options);
        let base = t.dir();
        for (path, bytes) in repodata.files {
            if path == Repodata::REPOMD {
                let signature = key.detached_armored(&bytes, when)?;
                writes.put(format!("{base}/{path}"), Stage::Signed, bytes);
                writes.put(
                    format!("{base}/{}", Repodata::REPOMD_SIGNATURE),
                    Stage::Signed,
                    signature.into_bytes(),
                );
            } else {
                // `repodata/<sha256>-<kind>.xml.gz`: named by its digest.
                let sha256 = path
                    .trim_start_matches("repodata/")
                    .split('-')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let path = format!("{base}/{path}");
                content_addressed.insert(
                    path.clone(),
                    FileFact {
                        size: bytes.len() as u64,
                        sha256: digest_bytes(&sha256),
                    },
                );
                writes.digested(path, Stage::New, bytes, sha256);
            }
        }
    }

    // The index and the per-kernel lookups, each with a detached signature.
    let routes = index::dkms_routes(&state, targets);
    let lookups = index::lookups(&state, &routes, &freshness);
    for (path, lookup) in &lookups {
        let json = to_json(lookup);
        let sig = key.detached_armored(&json, when)?;
        writes.put(path.clone(), Stage::Index, json);
        writes.put(format!("{path}.asc"), Stage::Index, sig.into_bytes());
    }
    let index_value = index::index(&state, routes, &lookups, &freshness);
    let index_json = to_json(&index_value);
    let index_sig = key.detached_armored(&index_json, when)?;
    writes.put("index.json".into(), Stage::Signed, index_json);
    writes.put(
        "index.json.asc".into(),
        Stage::Signed,
        index_sig.into_bytes(),
    );

    // The matrix page, and the installer script when --url gave its address.
    let records = builds.map_or(&[][..], |b| b.records.as_slice());
    let page_options = PageOptions {
        distros: targets.page.clone(),
        repo_url: options.repo_url.clone(),
        key_name: targets.module.clone(),
    };
    let html = page::render_page(&index_value, records, &page_options)?;
    writes.put("index.html".into(), Stage::Index, html.into_bytes());
    if let Some(script) = &options.install_script {
        writes.put(
            INSTALL_SCRIPT.into(),
            Stage::Index,
            script.clone().into_bytes(),
        );
    }

    // The public key, for apt's signed-by and the installer; zypper
    // imports it from repomd.xml.key beside the metadata it signs.
    let public_armored = key.public_key_armored()?;
    for t in &targets.rpm {
        writes.put(
            format!("{}/repodata/repomd.xml.key", t.dir()),
            Stage::Index,
            public_armored.clone().into_bytes(),
        );
    }
    writes.put(
        format!("keys/{}.asc", targets.module),
        Stage::Index,
        public_armored.into_bytes(),
    );
    writes.put(
        format!("keys/{}.gpg", targets.module),
        Stage::Index,
        key.public_key_binary()?,
    );

    // The records and list buckets the next publish starts from.
    for (path, bytes) in new_records
        .into_iter()
        .chain(std::mem::take(&mut lists.new))
    {
        writes.put(path, Stage::New, bytes);
    }
    let stale_chunks = old
        .chunks
        .difference(&lists.used)
        .map(|k| format!("{CHUNKS_DIR}/{k}"));
    let live_records: BTreeSet<&String> = record_files.values().collect();
    let stale_records = old
        .records
        .values()
        .filter(|k| !live_records.contains(k))
        .map(|k| format!("{RECORDS_DIR}/{k}.json"));
    let stale_internal: BTreeSet<String> = stale_chunks.chain(stale_records).collect();
    state.chunks = lists.used;
    state.records = record_files;

    // The new generation's files, and what to remove once it is in place.
    state.yum_dirs = targets
        .rpm
        .iter()
        .map(|t| (t.dir(), t.distro.clone()))
        .collect();
    let mut write = writes.0;
    let mut files: BTreeMap<String, FileFact> = BTreeMap::new();
    for w in &write {
        if w.stage != Stage::New {
            files.insert(
                w.path.clone(),
                FileFact {
                    size: w.size,
                    sha256: digest_bytes(&w.sha256),
                },
            );
        }
    }
    files.extend(content_addressed.iter().map(|(k, v)| (k.clone(), *v)));
    if options.install_script.is_none() {
        if let Some(f) = old.files.get(INSTALL_SCRIPT) {
            files.insert(INSTALL_SCRIPT.into(), *f);
        }
    }
    state.files = files;

    // Drop writes whose bytes are already in place (by-hash files of an
    // unchanged list, the keys, the lists of an unchanged codename), so an
    // incremental publish touches only what changed. Signed files always
    // change (dates, serial). A file read by name must also still be there.
    write.retain(|w| {
        let Some(old) = old_files.get(&w.path).or(old.retained.get(&w.path)) else {
            return true;
        };
        old.sha256 != digest_bytes(&w.sha256)
            || (w.stage != Stage::New && !pool_file_intact(repo, &w.path, &old_files))
    });

    let holds = Holds::of(&state);
    let retained: BTreeMap<String, FileFact> = old
        .files
        .iter()
        .filter(|(p, _)| is_content_addressed(p) && !holds.file(p))
        .map(|(p, f)| (p.clone(), *f))
        .collect();
    let remove: Vec<String> = old_files
        .keys()
        .chain(old.retained.keys())
        .filter(|p| !holds.file(p) && !retained.contains_key(*p))
        .cloned()
        .chain(stale_internal)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    state.retained = retained;

    // Compact: it is read by kmodfarm only, and grows with the repository.
    let state_json = serde_json::to_vec(&state).expect("state serializes");
    write.push(WriteFile {
        path: STATE_FILE.into(),
        stage: Stage::State,
        size: state_json.len() as u64,
        sha256: hex::encode(Sha256::digest(&state_json)),
        bytes: state_json,
        link_from: None,
    });
    write.sort_by(|a, b| a.stage.cmp(&b.stage).then_with(|| a.path.cmp(&b.path)));
    copy.sort_by(|a, b| a.to.cmp(&b.to));
    copy.dedup_by(|a, b| a.to == b.to);

    Ok(Plan {
        repo: repo.to_path_buf(),
        serial,
        generated: freshness.generated,
        expires: freshness.expires,
        existing,
        copy,
        write,
        remove,
        unchanged,
        state,
    })
}

/// Fills each prebuilt entry's package fields from the package in the
/// repository that carries it (same kernel, same version, its distro's
/// apt codename or yum repository).
fn link_prebuilt_packages(state: &mut RepoState, targets: &Targets) {
    let debs = std::mem::take(&mut state.debs);
    let rpms = std::mem::take(&mut state.rpms);
    for k in &mut state.kernels {
        let KernelStatus::Prebuilt { entry } = &mut k.status else {
            continue;
        };
        if let Some(codename) = targets.codename_of(&k.distro) {
            let name =
                prebuilt_package_name(&targets.module, PackageFamily::Deb, &k.kernel_release);
            entry.prebuilt_package = name.clone();
            if let Some(d) = debs.iter().find(|d| {
                d.name == name
                    && upstream(&d.version) == k.version
                    && d.codenames.iter().any(|c| c == codename)
            }) {
                entry.package_path = format!("deb/{}", d.filename);
                entry.package_sha256 = d.sha256.clone();
            }
        } else if let Some(t) = targets.rpm.iter().find(|t| t.distro == k.distro) {
            let name =
                prebuilt_package_name(&targets.module, PackageFamily::Rpm, &k.kernel_release);
            entry.prebuilt_package = name.clone();
            if let Some(r) = rpms
                .iter()
                .find(|r| r.name == name && r.version == k.version && r.distros.contains(&t.distro))
            {
                entry.package_path = format!("{}/{}", t.dir(), r.href);
                entry.package_sha256 = r.sha256.clone();
            }
        }
    }
    state.debs = debs;
    state.rpms = rpms;
}

/// A package file the repository keeps: a .deb in its codenames, an .rpm
/// in its distros' yum repositories.
trait HeldPackage {
    fn file_name(&self) -> &str;
    fn size(&self) -> u64;
    fn sha256(&self) -> &str;
    /// The codenames or distros that hold it.
    fn held_in(&mut self) -> &mut Vec<String>;
}

impl HeldPackage for StoredDeb {
    fn file_name(&self) -> &str {
        &self.filename
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
    fn held_in(&mut self) -> &mut Vec<String> {
        &mut self.codenames
    }
}

impl HeldPackage for StoredRpm {
    fn file_name(&self) -> &str {
        StoredRpm::file_name(self)
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
    fn held_in(&mut self) -> &mut Vec<String> {
        &mut self.distros
    }
}

/// Where each held package is in its list, by file name (a publish of
/// thousands of packages looks each one up).
struct Held(HashMap<String, usize>);

impl Held {
    fn of<P: HeldPackage>(held: &[P]) -> Held {
        Held(
            held.iter()
                .enumerate()
                .map(|(i, p)| (p.file_name().to_string(), i))
                .collect(),
        )
    }
}

/// Takes input packages into the new state, planning the copies they need.
struct Intake<'a> {
    repo: &'a Path,
    old_files: &'a FxHashMap<String, FileFact>,
    copy: &'a mut Vec<CopyIn>,
}

impl Intake<'_> {
    /// Takes `incoming` (read from `source`) into `held`, copied to each of
    /// `paths` whose file is missing or changed. True when the repository
    /// already held it, intact.
    fn take<P: HeldPackage>(
        &mut self,
        held: &mut Vec<P>,
        by_name: &mut Held,
        mut incoming: P,
        source: &Path,
        signed: Option<&SignedCopy>,
        paths: impl Fn(&P) -> Vec<String>,
    ) -> Result<bool> {
        let index = match by_name.0.get(incoming.file_name()).copied() {
            Some(i) if held[i].sha256() != incoming.sha256() => {
                return Err(PublishError::Conflict {
                    path: source.to_path_buf(),
                    message: format!(
                        "the repository already holds a different {} (same name, version and architecture, other bytes): raise the version or the release",
                        incoming.file_name()
                    ),
                })
            }
            Some(i) => {
                let more = std::mem::take(incoming.held_in());
                let targets = held[i].held_in();
                for t in more {
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
                targets.sort();
                i
            }
            None => {
                by_name
                    .0
                    .insert(incoming.file_name().to_string(), held.len());
                held.push(incoming);
                held.len() - 1
            }
        };
        let package = &held[index];
        let mut intact = true;
        for to in paths(package) {
            if !pool_file_intact(self.repo, &to, self.old_files) {
                intact = false;
                let mut c = copy_in(source, &to, package.size(), package.sha256());
                c.signed = signed.cloned();
                self.copy.push(c);
            }
        }
        // Only a file the old state names can be intact: a new package
        // always counts as copied.
        Ok(intact)
    }
}

/// Where an .rpm lives in each of `distros`' yum repositories (distros no
/// longer among the targets are left out).
fn rpm_pool_paths<'a>(
    targets: &'a Targets,
    distros: &'a [String],
    file_name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    targets
        .rpm
        .iter()
        .filter(|t| distros.contains(&t.distro))
        .map(move |t| format!("{}/Packages/{file_name}", t.dir()))
}

/// A file named by its digest: apt's by-hash lists and yum's
/// `<sha256>-primary.xml.gz` and the like (repomd.xml, its signature and
/// its key are read by name).
fn is_content_addressed(path: &str) -> bool {
    let yum_digest_named = path.contains("/repodata/")
        && path.rsplit('/').next().is_some_and(|name| {
            name.split_once('-').is_some_and(|(digest, _)| {
                digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())
            })
        });
    path.contains("/by-hash/") || yum_digest_named
}

fn copy_in(from: &Path, to: &str, size: u64, sha256: &str) -> CopyIn {
    CopyIn {
        from: from.to_path_buf(),
        to: to.to_string(),
        size,
        sha256: sha256.to_string(),
        signed: None,
    }
}

/// `kmfdemo-dkms-1.0.0-1.noarch.rpm` of `Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm`.
fn file_name_of(href: &str) -> &str {
    href.rsplit_once('/').map_or(href, |(_, name)| name)
}

/// The unsigned input `input` (read from `source`) signed by `key` at
/// `when`: the signed copy's metadata and bytes. The input is read again
/// and must still be the file that was checked.
fn sign_rpm(
    input: &RpmPackage,
    source: &Path,
    key: &SigningKey,
    when: u64,
) -> Result<(RpmPackage, SignedCopy)> {
    let bytes = std::fs::read(source).map_err(PublishError::io("read", source))?;
    if hex::encode(Sha256::digest(&bytes)) != input.sha256 {
        return Err(PublishError::Conflict {
            path: source.to_path_buf(),
            message: "the file changed while the publish read it; publish again".into(),
        });
    }
    let signed = rpm_sign::sign(source, &bytes, key, when)?;
    let package = RpmPackage::from_bytes(&signed, source, &input.href, input.file_time)?;
    let copy = SignedCopy {
        key_id: key.key_id(),
        input_size: input.size,
        input_sha256: input.sha256.clone(),
        bytes: Arc::new(signed),
    };
    Ok((package, copy))
}

/// The file the state names is there with the size it recorded (a cheap
/// check: a changed or truncated pool file is copied again).
fn pool_file_intact(repo: &Path, path: &str, old_files: &FxHashMap<String, FileFact>) -> bool {
    let Some(fact) = old_files.get(path) else {
        return false;
    };
    std::fs::metadata(repo.join(path)).is_ok_and(|m| m.len() == fact.size)
}

fn check_artifact(path: &Path, size: u64, sha256: &str) -> Result<()> {
    let bad = |message: String| PublishError::BadBuilds {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hash.update(&buf[..n]);
    }
    let got = hex::encode(hash.finalize());
    if total != size || got != sha256 {
        return Err(bad(format!(
            "the module file does not match its build record (record: {size} bytes, sha256 {sha256}; file: {total} bytes, sha256 {got})"
        )));
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(value).expect("repository types serialize");
    json.push(b'\n');
    json
}
