//! Writing a rendering to disk, all or nothing: the files go into a fresh
//! directory beside the destination, which then takes the destination's
//! place. A failure leaves the destination as it was.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime};

use kmodfarm_staging::{Staging, StagingError};

use crate::{RenderError, RenderedFile};

/// Written into every render directory, so a later run knows it may replace
/// it (and never replaces a directory the user keeps other things in).
pub const MARKER: &str = ".kmodfarm-render";

pub fn write_all(files: &[RenderedFile], out: &Path) -> Result<(), RenderError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Write { path, source }
    };
    if out.exists() && !is_replaceable(out) {
        return Err(RenderError::NotARenderDir {
            path: out.to_path_buf(),
            marker: MARKER,
        });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    // The lock on the parent serialises renders into it and lets this run
    // sweep what a killed one left there; every temporary directory below
    // is removed when dropped, on every error path.
    let (area, _swept) = Staging::open(&parent).map_err(|e| match e {
        StagingError::Create { path, source }
        | StagingError::Lock { path, source }
        | StagingError::Sweep { path, source } => RenderError::Write { path, source },
    })?;
    let staging = area.temp_dir("render").map_err(werr(&parent))?;

    let mtime = source_date_epoch();
    for file in files {
        let relative = Path::new(&file.name);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(RenderError::BadName {
                name: file.name.clone(),
            });
        }
        let path = staging.path().join(relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(werr(dir))?;
        }
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|_| RenderError::BadName {
                name: file.name.clone(),
            })?;
        f.write_all(file.contents.as_bytes()).map_err(werr(&path))?;
        f.set_permissions(fs::Permissions::from_mode(file.mode))
            .map_err(werr(&path))?;
        if let Some(t) = mtime {
            f.set_modified(t).map_err(werr(&path))?;
        }
    }
    let marker = staging.path().join(MARKER);
    fs::write(
        &marker,
        "kmodfarm render output; `kmodfarm render` replaces this directory\n",
    )
    .map_err(werr(&marker))?;
    // The staging directory is private (0700); the output is for people.
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(werr(staging.path()))?;

    // Swap: move the old rendering aside, move the new one in, then delete
    // the old one. rename(2) cannot replace a non-empty directory. Until
    // the new one is in place, dropping `staging` removes it.
    if out.exists() {
        let old = area.temp_dir("render-old").map_err(werr(&parent))?;
        let old_path = old.path().join("render");
        fs::rename(out, &old_path).map_err(werr(out))?;
        if let Err(source) = fs::rename(staging.path(), out) {
            let _ = fs::rename(&old_path, out);
            return Err(RenderError::Write {
                path: out.to_path_buf(),
                source,
            });
        }
        drop(old); // removes the previous rendering
    } else {
        fs::rename(staging.path(), out).map_err(werr(out))?;
    }
    // Its path is now `out`'s old name for it: nothing left to remove.
    let _ = staging.keep();
    area.commit();
    Ok(())
}

fn is_replaceable(dir: &Path) -> bool {
    dir.is_dir()
        && (dir.join(MARKER).is_file()
            || fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none()))
}

/// File times from SOURCE_DATE_EPOCH, so two renderings are identical.
fn source_date_epoch() -> Option<SystemTime> {
    let secs: u64 = std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, mode: u32) -> RenderedFile {
        RenderedFile {
            name: name.into(),
            install_path: None,
            mode,
            contents: format!("{name}\n"),
            template: "t".into(),
        }
    }

    #[test]
    fn replaces_a_previous_rendering_and_sets_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/render");
        write_all(&[file("old", 0o644)], &out).unwrap();
        write_all(&[file("debian/postinst", 0o755)], &out).unwrap();
        assert!(!out.join("old").exists(), "the old rendering is gone");
        let mode = fs::metadata(out.join("debian/postinst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // Nothing left beside it.
        let siblings: Vec<_> = fs::read_dir(tmp.path().join("a")).unwrap().collect();
        assert_eq!(siblings.len(), 1);
    }

    #[test]
    fn refuses_to_replace_a_directory_it_did_not_write() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("precious"), "x").unwrap();
        let err = write_all(&[file("dkms.conf", 0o644)], tmp.path()).unwrap_err();
        assert!(matches!(err, RenderError::NotARenderDir { .. }), "{err}");
        assert!(tmp.path().join("precious").exists());
        assert!(!tmp.path().join("dkms.conf").exists());
    }

    #[test]
    fn a_bad_name_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("render");
        let err = write_all(&[file("ok", 0o644), file("../escape", 0o644)], &out).unwrap_err();
        assert!(matches!(err, RenderError::BadName { .. }), "{err}");
        assert!(!out.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
