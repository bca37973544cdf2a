//! The module's source tree as one digest, for cache keys: every file's
//! relative path, executable bit and contents, in path order.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{BuildError, Result};

pub fn digest(tree: &Path) -> Result<String> {
    if !tree.is_dir() {
        return Err(BuildError::Other(format!(
            "source tree {} is not a directory",
            tree.display()
        )));
    }
    let mut hash = Sha256::new();
    let walk = walkdir::WalkDir::new(tree)
        .sort_by_file_name()
        .follow_links(false);
    for entry in walk {
        let entry =
            entry.map_err(|e| BuildError::Other(format!("reading {}: {e}", tree.display())))?;
        let rel = entry.path().strip_prefix(tree).expect("below the tree");
        let meta = entry
            .metadata()
            .map_err(|e| BuildError::Other(format!("{}: {e}", entry.path().display())))?;
        hash.update(rel.as_os_str().as_encoded_bytes());
        hash.update(b"\0");
        if entry.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(BuildError::io(entry.path()))?;
            hash.update(b"l");
            hash.update(target.as_os_str().as_encoded_bytes());
        } else if entry.file_type().is_file() {
            hash.update(if meta.permissions().mode() & 0o111 != 0 {
                b"x"
            } else {
                b"f"
            });
            let mut file =
                std::fs::File::open(entry.path()).map_err(BuildError::io(entry.path()))?;
            let mut buf = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut buf)
                .map_err(BuildError::io(entry.path()))?;
            hash.update((buf.len() as u64).to_le_bytes());
            hash.update(&buf);
        } else {
            hash.update(b"d");
        }
        hash.update(b"\0");
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_contents_names_and_modes_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), "int x;").unwrap();
        std::fs::write(dir.path().join("configure"), "#!/bin/sh").unwrap();
        let first = digest(dir.path()).unwrap();
        assert_eq!(first, digest(dir.path()).unwrap());
        std::fs::write(dir.path().join("a.c"), "int y;").unwrap();
        let changed = digest(dir.path()).unwrap();
        assert_ne!(first, changed);
        std::fs::set_permissions(
            dir.path().join("configure"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(changed, digest(dir.path()).unwrap());
    }
}
