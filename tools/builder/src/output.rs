//! The output directory of `kmodfarm build` (`--out`): one directory per
//! kernel (`<distro>/<arch>/<kernel>/`: the products, `record.json`, and a
//! `<module>.build.log` per module, built or failed), and `records.json`
//! at the top, which accumulates: a run replaces the records of the
//! kernels and modules it built and keeps every other.
//!
//! Everything is staged with [`kmodfarm_staging`] in the directory it goes
//! to, under that directory's lock: several runs may share one output, a
//! killed run leaves only temporary entries that the next run sweeps, and
//! no reader ever sees half a kernel directory or half a records.json.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use kmodfarm_model::record::BuildRecord;
use kmodfarm_staging::Staging;

use crate::error::{BuildError, Result};

/// `records.json` at the top of an output directory.
pub const RECORDS: &str = "records.json";

/// A kernel directory's own records.
pub const KERNEL_RECORD: &str = "record.json";

/// What earlier versions staged kernel directories as, swept too.
const LEGACY_INCOMING: &str = ".incoming-";

/// `<distro>/<arch>/<kernel>/<module>.build.log`, relative to the output:
/// where a record's whole build log is.
pub fn log_path(record: &BuildRecord) -> String {
    format!(
        "{}/{}/{}/{}.build.log",
        record.distro, record.arch, record.kernel_release, record.module
    )
}

/// Replaces the kernel directory `out/<key>` with `files` (name, source
/// path), one `<module>.build.log` per record holding `log`, and
/// `record.json` with `records` (whose `log` is set here). The old
/// directory, if any, stays whole until the new one is complete.
pub fn install_kernel(
    out: &Path,
    key: &str,
    files: &[(String, PathBuf)],
    log: &str,
    records: &mut [BuildRecord],
) -> Result<()> {
    let dest = out.join(key);
    let parent = dest.parent().expect("kernel dirs have parents");
    let name = dest
        .file_name()
        .expect("kernel dirs have names")
        .to_string_lossy()
        .into_owned();
    let (staging, _) = Staging::open(parent)?;
    sweep_legacy(parent)?;
    let incoming = staging.temp_dir(&name).map_err(BuildError::io(parent))?;
    for (file, from) in files {
        let to = incoming.path().join(file);
        std::fs::copy(from, &to).map_err(BuildError::io(&to))?;
    }
    for r in records.iter_mut() {
        let rel = log_path(r);
        let file = Path::new(&rel).file_name().expect("logs have names");
        let to = incoming.path().join(file);
        std::fs::write(&to, log).map_err(BuildError::io(&to))?;
        r.log = Some(rel);
    }
    let json = serde_json::to_string_pretty(&records).expect("records serialize");
    let to = incoming.path().join(KERNEL_RECORD);
    std::fs::write(&to, json).map_err(BuildError::io(&to))?;
    let kept = incoming.keep();
    if dest.exists() {
        // One atomic swap: readers see the old directory or the new one,
        // and the old one, now under the temporary name, goes (or is
        // swept, if this run dies first).
        match exchange(&kept, &dest) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&kept);
                staging.commit();
                return Ok(());
            }
            // A file system without RENAME_EXCHANGE: the old directory
            // moves aside under a temporary name first.
            Err(_) => {
                let aside = staging.temp_dir(&name).map_err(BuildError::io(parent))?;
                let aside = aside.keep();
                std::fs::rename(&dest, aside.join("old")).map_err(BuildError::io(&dest))?;
                let moved = std::fs::rename(&kept, &dest).map_err(BuildError::io(&dest));
                let _ = std::fs::remove_dir_all(aside);
                moved?;
            }
        }
    } else {
        std::fs::rename(&kept, &dest).map_err(BuildError::io(&dest))?;
    }
    staging.commit();
    Ok(())
}

/// Swaps two directories with renameat2(RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let done = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes `<parent>/.incoming-*`, what earlier versions left when killed
/// (the caller holds the directory's lock).
fn sweep_legacy(parent: &Path) -> Result<()> {
    for entry in std::fs::read_dir(parent)
        .map_err(BuildError::io(parent))?
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(LEGACY_INCOMING)
        {
            crate::cache_dir::remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

/// The records of `out/records.json`; none when there is no such file.
pub fn read_records(out: &Path) -> Result<Vec<BuildRecord>> {
    let path = out.join(RECORDS);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BuildError::io(&path)(e)),
    };
    serde_json::from_str(&text).map_err(|e| BuildError::BadInput {
        path: path.clone(),
        message: format!(
            "not the records.json of a kmodfarm build ({e}); move it away or choose another --out"
        ),
    })
}

/// The identity of a record in records.json: one per kernel and module.
fn cell(r: &BuildRecord) -> (String, String, String, String) {
    (
        r.distro.clone(),
        r.arch.clone(),
        r.kernel_release.to_string(),
        r.module.clone(),
    )
}

/// Writes `records` into `out/records.json`, keeping the records already
/// there for other kernels and modules (`merge`), or replacing the file
/// (`!merge`). Read, merged and written under the directory's lock, so
/// runs sharing an output never lose each other's records. Returns what
/// the file now holds.
pub fn store_records(out: &Path, records: &[BuildRecord], merge: bool) -> Result<Vec<BuildRecord>> {
    let (staging, _) = Staging::open(out)?;
    let mut all = if merge {
        let replaced: BTreeSet<_> = records.iter().map(cell).collect();
        let mut kept = read_records(out)?;
        kept.retain(|r| !replaced.contains(&cell(r)));
        kept
    } else {
        Vec::new()
    };
    all.extend(records.iter().cloned());
    crate::schedule::sort_records(&mut all);
    let json = serde_json::to_string_pretty(&all).expect("records serialize");
    let mut tmp = staging.temp_file(RECORDS).map_err(BuildError::io(out))?;
    tmp.write_all(json.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(BuildError::io(tmp.path()))?;
    let path = out.join(RECORDS);
    tmp.persist(&path)
        .map_err(|e| BuildError::io(&path)(e.error))?;
    staging.commit();
    Ok(all)
}
