//! Joining the outputs of sharded builds into one output, as one full
//! build would have written it. Shards never overlap; if two inputs hold
//! the same kernel and module anyway, they must agree (same result, same
//! artifact bytes), else the merge refuses and names both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kmodfarm_model::record::{BuildOutcome, BuildRecord};

use crate::cache_dir::remove_if_present;
use crate::error::{BuildError, Result};
use crate::schedule::{sort_records, write_records};

fn record_key(r: &BuildRecord) -> String {
    format!("{}/{}/{}/{}", r.distro, r.arch, r.kernel_release, r.module)
}

/// What must match for two records of the same kernel to be the same result.
fn identity(r: &BuildRecord) -> (String, String) {
    match &r.outcome {
        BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
            ("ok".into(), artifact.sha256.clone())
        }
        BuildOutcome::Failed { reason, .. } => ("failed".into(), reason.clone()),
        BuildOutcome::Skipped { reason } => ("skipped".into(), reason.clone()),
    }
}

fn read_records(dir: &Path) -> Result<Vec<BuildRecord>> {
    let path = dir.join("records.json");
    let text = std::fs::read_to_string(&path).map_err(|e| BuildError::BadInput {
        path: path.clone(),
        message: format!("not a kmodfarm build output ({e})"),
    })?;
    serde_json::from_str(&text).map_err(|e| BuildError::BadInput {
        path,
        message: format!("unreadable records: {e}"),
    })
}

/// Merges `inputs` into `out`, which must not exist yet (or be empty).
/// Written beside it and renamed into place: a refused merge leaves nothing.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<Vec<BuildRecord>> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(BuildError::io(out))?
            .next()
            .is_some()
    {
        return Err(BuildError::BadInput {
            path: out.to_path_buf(),
            message: "the merge output exists and is not empty".into(),
        });
    }
    // Plan: every record once, with the input its files come from.
    let mut chosen: BTreeMap<String, (BuildRecord, PathBuf)> = BTreeMap::new();
    for input in inputs {
        for r in read_records(input)? {
            let key = record_key(&r);
            match chosen.get(&key) {
                Some((seen, from)) if identity(seen) != identity(&r) => {
                    return Err(BuildError::MergeConflict {
                        key,
                        first: from.clone(),
                        second: input.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    chosen.insert(key, (r, input.clone()));
                }
            }
        }
    }
    // Act.
    let partial = out.with_extension("merging");
    remove_if_present(&partial)?;
    let result = write(&chosen, &partial);
    if result.is_err() {
        let _ = remove_if_present(&partial);
    }
    result?;
    if out.exists() {
        std::fs::remove_dir(out).map_err(BuildError::io(out))?;
    }
    std::fs::rename(&partial, out).map_err(BuildError::io(out))?;
    let mut records: Vec<BuildRecord> = chosen.into_values().map(|(r, _)| r).collect();
    sort_records(&mut records);
    Ok(records)
}

fn write(chosen: &BTreeMap<String, (BuildRecord, PathBuf)>, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(BuildError::io(dest))?;
    for (record, from) in chosen.values() {
        let kernel_dir = format!(
            "{}/{}/{}",
            record.distro, record.arch, record.kernel_release
        );
        let target = dest.join(&kernel_dir);
        if target.exists() {
            continue; // another module of the same kernel brought it
        }
        // Built, cached and failed kernels have a directory (products,
        // records, logs); skipped ones none.
        let source = from.join(&kernel_dir);
        if !source.is_dir() {
            if matches!(
                record.outcome,
                BuildOutcome::Built { .. } | BuildOutcome::Cached { .. }
            ) {
                return Err(BuildError::io(&source)(std::io::ErrorKind::NotFound.into()));
            }
            continue;
        }
        std::fs::create_dir_all(&target).map_err(BuildError::io(&target))?;
        for entry in std::fs::read_dir(&source).map_err(BuildError::io(&source))? {
            let entry = entry.map_err(BuildError::io(&source))?;
            let to = target.join(entry.file_name());
            std::fs::copy(entry.path(), &to).map_err(BuildError::io(&to))?;
        }
    }
    let mut records: Vec<BuildRecord> = chosen.values().map(|(r, _)| r.clone()).collect();
    sort_records(&mut records);
    write_records(dest, &records)
}
