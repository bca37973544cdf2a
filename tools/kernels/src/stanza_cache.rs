//! The kernel stanzas of an apt index, kept beside the fetch cache and
//! named by the sha256 of the index they came from. Scanning a main index
//! takes milliseconds but decompressing it takes most of a second; a rerun
//! whose indexes did not change (the server answered 304) reads these few
//! hundred stanzas instead.

use std::fs;
use std::path::{Path, PathBuf};

use crate::apt_packages::{parse_packages, DebPackage};
use crate::error::{KernelsError, Result};

fn file(dir: &Path, index_sha256: &str) -> Option<PathBuf> {
    // The digest becomes a file name: accept nothing but hex.
    let valid = index_sha256.len() == 64 && index_sha256.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| dir.join(format!("{index_sha256}.stanzas")))
}

/// The stanzas stored for the index with this digest; `None` when there
/// are none (or they are unreadable: the index is then parsed again).
pub fn load(dir: &Path, index_sha256: &str) -> Option<Vec<DebPackage>> {
    let path = file(dir, index_sha256)?;
    let text = fs::read(&path).ok()?;
    parse_packages(&text, "", &path.display().to_string()).ok()
}

pub fn store(dir: &Path, index_sha256: &str, packages: &[DebPackage]) -> Result<()> {
    let Some(path) = file(dir, index_sha256) else {
        return Ok(());
    };
    let cache_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KernelsError::Cache { path, source }
    };
    fs::create_dir_all(dir).map_err(cache_err(dir))?;
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    fs::write(&tmp, to_deb822(packages)).map_err(cache_err(Path::new(&tmp)))?;
    fs::rename(&tmp, &path).map_err(cache_err(&path))
}

/// Stanzas with the fields discovery reads (version constraints are not
/// kept: discovery does not use them).
pub fn to_deb822(packages: &[DebPackage]) -> String {
    let mut out = String::new();
    for p in packages {
        let depends: Vec<String> = p.depends.iter().map(|group| group.join(" | ")).collect();
        let fields = [
            ("Package", p.name.clone()),
            ("Version", p.version.clone()),
            ("Architecture", p.architecture.clone()),
            ("Depends", depends.join(", ")),
            ("Provides", p.provides.join(", ")),
            ("Filename", p.filename.clone()),
            ("Size", p.size.to_string()),
            ("SHA256", p.sha256.clone()),
        ];
        for (name, value) in fields {
            if !value.is_empty() {
                out.push_str(&format!("{name}: {value}\n"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_stanzas_read_back_equal() {
        let packages = vec![
            DebPackage {
                name: "linux-headers-6.12.117+deb12-rt-amd64".into(),
                version: "6.12.117-1~deb12u1".into(),
                architecture: "amd64".into(),
                depends: vec![
                    vec!["linux-headers-6.12.117+deb12-common-rt".into()],
                    vec![
                        "linux-image-6.12.117+deb12-rt-amd64".into(),
                        "linux-image-6.12.117+deb12-rt-amd64-unsigned".into(),
                    ],
                ],
                provides: vec![],
                filename: "pool/updates/main/l/linux-6.12/x.deb".into(),
                size: 3266644,
                sha256: "d9ad".into(),
            },
            DebPackage {
                name: "linux-kbuild-6.1".into(),
                version: "6.1.170-3".into(),
                provides: vec!["linux-kbuild".into()],
                ..DebPackage::default()
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let digest = "ab".repeat(32);
        assert_eq!(load(dir.path(), &digest), None);
        store(dir.path(), &digest, &packages).unwrap();
        assert_eq!(load(dir.path(), &digest).unwrap(), packages);
        // A digest that is not hex never becomes a path.
        store(dir.path(), "../../etc/passwd", &packages).unwrap();
        assert_eq!(load(dir.path(), "../../etc/passwd"), None);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
