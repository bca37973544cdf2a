//! Carry out a [`Plan`] so that readers only ever see the old repository
//! or the new one:
//!
//! 1. Prepare: copy pool and prebuilt files in and write by-hash lists
//!    (names nothing published refers to yet), and write every index and
//!    signed file beside its final name (`<name>.kmodfarm-new`). All the
//!    disk space the publish needs is taken here; a failure (full disk,
//!    read-only file system) removes what this step made, leaving the
//!    repository byte-identical.
//! 2. Commit: rename the indexes into place, then the signed top-level
//!    files (InRelease last of each codename), then the state file. apt
//!    fetches lists by hash, so an apt that read either InRelease finds
//!    matching lists throughout.
//! 3. Prune: remove what the new generation no longer names.
//!
//! A publish killed in step 1 leaves unreferenced files that the next
//! publish removes ([`sweep_leftovers`]; `.kmodfarm/publishing` says a
//! publish was under way, so an unkilled repository is not walked); killed
//! in step 2, each codename is old or new, and a rerun completes it.

use std::io;
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use crate::error::{PublishError, Result};
use crate::plan::{Plan, Stage};
use crate::state::{Holds, RepoState, CHUNKS_DIR, PUBLISHING_MARK, RECORDS_DIR};

/// Suffix of files being written: never a name a reader asks for.
pub const NEW_SUFFIX: &str = ".kmodfarm-new";

/// The file operations a publish needs. [`Disk`] is the real one.
pub trait RepoFs {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    fn copy(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// `to` as a second name of `from`; fails where `to` exists or the
    /// file system refuses links (the caller then copies).
    fn link(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    fn write(&mut self, to: &Path, bytes: &[u8]) -> io::Result<()>;
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    fn remove_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The local file system.
pub struct Disk;

impl RepoFs for Disk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn copy(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::copy(from, to).map(|_| ())
    }
    fn link(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }
    fn write(&mut self, to: &Path, bytes: &[u8]) -> io::Result<()> {
        std::fs::write(to, bytes)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn remove_dir(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }
}

/// Progress, for the binary's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An unsigned input .rpm went into the repository as a copy signed by
    /// the repository's key `key_id` (the input is left as it was).
    SignedRpm {
        from: PathBuf,
        to: String,
        key_id: String,
    },
    Prepared {
        copied: usize,
        written: usize,
    },
    Committed {
        serial: u64,
    },
    Pruned {
        removed: usize,
    },
}

pub fn execute(plan: &Plan, fs: &mut dyn RepoFs, events: &mut dyn FnMut(Event)) -> Result<()> {
    let repo = &plan.repo;
    let mark = repo.join(PUBLISHING_MARK);
    if let Some(dir) = mark.parent().filter(|d| !d.is_dir()) {
        fs.create_dir_all(dir)
            .map_err(PublishError::io("make the directory", dir))?;
    }
    fs.write(&mark, b"")
        .map_err(PublishError::io("write", &mark))?;
    let mut made = Made::default();
    if let Err(e) = prepare(plan, fs, &mut made) {
        // Undo step 1, newest first, so the repository is as it was.
        for path in made.files.iter().rev() {
            let _ = fs.remove(path);
        }
        for dir in made.dirs.iter().rev() {
            let _ = fs.remove_dir(dir);
        }
        let _ = fs.remove(&mark);
        return Err(e);
    }
    for c in &plan.copy {
        if let Some(signed) = &c.signed {
            events(Event::SignedRpm {
                from: c.from.clone(),
                to: c.to.clone(),
                key_id: signed.key_id.clone(),
            });
        }
    }
    events(Event::Prepared {
        copied: plan.copy.len(),
        written: plan.write.len(),
    });

    for w in plan.write.iter().filter(|w| w.stage != Stage::New) {
        let to = repo.join(&w.path);
        fs.rename(&new_name(&to), &to)
            .map_err(PublishError::io("rename into place", &to))?;
    }
    events(Event::Committed {
        serial: plan.serial,
    });

    for path in &plan.remove {
        let p = repo.join(path);
        fs.remove(&p).map_err(PublishError::io("remove", &p))?;
    }
    fs.remove(&mark)
        .map_err(PublishError::io("remove", &mark))?;
    events(Event::Pruned {
        removed: plan.remove.len(),
    });
    Ok(())
}

/// What step 1 made, to undo it on failure.
#[derive(Default)]
struct Made {
    files: Vec<PathBuf>,
    /// Directories that did not exist, parents first.
    dirs: Vec<PathBuf>,
}

fn prepare(plan: &Plan, fs: &mut dyn RepoFs, made: &mut Made) -> Result<()> {
    let repo = &plan.repo;
    let mut dirs: Vec<PathBuf> = plan
        .copy
        .iter()
        .map(|c| c.to.as_str())
        .chain(plan.write.iter().map(|w| w.path.as_str()))
        .filter_map(|p| repo.join(p).parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for d in missing {
            fs.create_dir_all(&d)
                .map_err(PublishError::io("make the directory", &d))?;
            made.dirs.push(d);
        }
    }
    for c in &plan.copy {
        // A copy, never a hard link to the input: a tool that later
        // rewrites the input in place (a signer, a rebuild into the same
        // folder) would change the published file under its checksums.
        // A new file is copied straight to its name: no index names it
        // until the indexes are renamed in, and a killed publish leaves it
        // unlisted, so the next one copies it again. One already there (a
        // damaged file that indexes do name) is replaced by rename.
        // An unsigned .rpm's copy is its signed bytes, made by the plan.
        let put = |fs: &mut dyn RepoFs, to: &Path| match &c.signed {
            Some(signed) => fs.write(to, &signed.bytes),
            None => fs.copy(&c.from, to),
        };
        let to = repo.join(&c.to);
        if !to.exists() {
            made.files.push(to.clone());
            put(fs, &to).map_err(PublishError::io("copy into the repository", &to))?;
            continue;
        }
        let tmp = new_name(&to);
        made.files.push(tmp.clone());
        put(fs, &tmp).map_err(PublishError::io("copy into the repository", &to))?;
        made.files.push(to.clone());
        fs.rename(&tmp, &to)
            .map_err(PublishError::io("rename into place", &to))?;
    }
    for w in &plan.write {
        let to = repo.join(&w.path);
        if w.stage == Stage::New {
            let tmp = new_name(&to);
            made.files.push(tmp.clone());
            fs.write(&tmp, &w.bytes)
                .map_err(PublishError::io("write", &to))?;
            made.files.push(to.clone());
            fs.rename(&tmp, &to)
                .map_err(PublishError::io("rename into place", &to))?;
        } else if let Some(from) = &w.link_from {
            let (from, tmp) = (repo.join(from), new_name(&to));
            made.files.push(tmp.clone());
            if fs.link(&from, &tmp).is_err() {
                fs.copy(&from, &tmp)
                    .map_err(PublishError::io("write", &tmp))?;
            }
        } else {
            let tmp = new_name(&to);
            made.files.push(tmp.clone());
            fs.write(&tmp, &w.bytes)
                .map_err(PublishError::io("write", &tmp))?;
        }
    }
    Ok(())
}

fn new_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(NEW_SUFFIX);
    PathBuf::from(name)
}

/// Removes what a killed publish left (called under the lock, before
/// planning): when the mark says one was under way, every
/// `*.kmodfarm-new` file; always, the records and chunks `old` (the state
/// in place) does not name. Returns how many files went.
pub fn sweep_leftovers(repo: &Path, old: &RepoState) -> Result<usize> {
    let mut removed = 0;
    let named_records: BTreeSet<String> =
        old.records.values().map(|k| format!("{k}.json")).collect();
    for (dir, named) in [(RECORDS_DIR, &named_records), (CHUNKS_DIR, &old.chunks)] {
        let Ok(entries) = std::fs::read_dir(repo.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !named.contains(&name) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(PublishError::io("remove", &path))?;
                removed += 1;
            }
        }
    }
    if !repo.join(PUBLISHING_MARK).exists() {
        return Ok(removed);
    }
    // Pool files are copied straight to their names: one the old state does
    // not hold is a killed publish's (perhaps partial) copy.
    let holds = Holds::of(old);
    let unlisted_pool_file = |path: &Path| {
        let Some(rel) = path.strip_prefix(repo).ok().and_then(Path::to_str) else {
            return false;
        };
        let pool = rel.starts_with("deb/pool/")
            || rel.starts_with("prebuilt/")
            || (rel.starts_with("rpm/") && rel.contains("/Packages/"));
        pool && !holds.file(rel)
    };
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().ends_with(NEW_SUFFIX)
                || unlisted_pool_file(&path)
            {
                std::fs::remove_file(&path).map_err(PublishError::io("remove", &path))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
