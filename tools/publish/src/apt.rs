//! apt repository metadata (the Debian repository format,
//! wiki.debian.org/DebianRepository/Format): for each codename,
//! `dists/<codename>/main/binary-<arch>/Packages{,.gz,.xz}`, their
//! `by-hash/SHA256/<digest>` copies, and `Release`, which the caller signs
//! as `InRelease` (clear-signed) and `Release.gpg` (detached, armored).
//!
//! Architecture-independent packages (the -dkms package) go into every
//! `binary-<arch>` list, as dak and apt-ftparchive do, and `Release` lists
//! only real architectures: listing `all` would make apt fetch a
//! `binary-all` list as well.
//!
//! Pure: bytes in, bytes out. The publish writes them.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::chunks::Codec;
use crate::debfile::Control;

/// One package as the repository holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolPackage {
    /// The control paragraph's fields, in the package's order.
    pub control: Vec<(String, String)>,
    /// Relative to `deb/`: `pool/main/k/kmfdemo/kmfdemo-dkms_1.0.0-1_all.deb`.
    pub filename: String,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

impl PoolPackage {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.control
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn name(&self) -> &str {
        self.field("Package").unwrap_or("")
    }

    pub fn version(&self) -> &str {
        self.field("Version").unwrap_or("")
    }

    pub fn arch(&self) -> &str {
        self.field("Architecture").unwrap_or("")
    }

    /// Describes the .deb whose bytes are `bytes`, to be stored at its
    /// pool path: `pool/main/<letter>/<source>/`, the source being the
    /// control's `Source`, else `group` (the module a package without a
    /// source package belongs to), else its own name.
    pub fn new(
        control: &Control,
        bytes: &[u8],
        group: Option<&str>,
    ) -> Result<PoolPackage, String> {
        for field in ["Package", "Version", "Architecture"] {
            if control.get(field).is_none_or(str::is_empty) {
                return Err(format!("its control file has no {field} field"));
            }
        }
        let name = control.get("Package").unwrap_or_default();
        let source = control
            .get("Source")
            .map(|s| s.split_whitespace().next().unwrap_or(s))
            .or(group)
            .unwrap_or(name);
        let version = control.get("Version").unwrap_or_default();
        let arch = control.get("Architecture").unwrap_or_default();
        // Debian drops the epoch from file names.
        let file_version = version.split_once(':').map_or(version, |(_, v)| v);
        Ok(PoolPackage {
            control: control.fields.clone(),
            filename: format!(
                "pool/main/{}/{source}/{name}_{file_version}_{arch}.deb",
                pool_letter(source)
            ),
            size: bytes.len() as u64,
            md5: hex::encode(Md5::digest(bytes)),
            sha256: hex::encode(Sha256::digest(bytes)),
        })
    }

    /// The package's paragraph in a Packages file: its control fields, then
    /// where it is and its digests (before the Description, as
    /// apt-ftparchive writes them).
    pub fn stanza(&self) -> String {
        let mut out = String::new();
        let mut field = |k: &str, v: &str| {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        };
        for (k, v) in &self.control {
            if !k.eq_ignore_ascii_case("Description") {
                field(k, v);
            }
        }
        field("Filename", &self.filename);
        field("Size", &self.size.to_string());
        field("MD5sum", &self.md5);
        field("SHA256", &self.sha256);
        if let Some(d) = self.field("Description") {
            field("Description", d);
        }
        out
    }
}

/// `pool/main/<letter>/`: the source's first letter, or `libx` for `lib*`.
fn pool_letter(source: &str) -> String {
    if let Some(rest) = source.strip_prefix("lib").filter(|r| !r.is_empty()) {
        format!("lib{}", &rest[..1])
    } else {
        source[..1].to_string()
    }
}

/// Packages text: the stanzas sorted by name, version and architecture,
/// each followed by a blank line (so texts of buckets join into one list).
pub fn packages_text(packages: &[&PoolPackage]) -> String {
    let mut sorted: Vec<&&PoolPackage> = packages.iter().collect();
    sorted.sort_by(|a, b| {
        a.name()
            .cmp(b.name())
            .then_with(|| crate::debversion::compare(a.version(), b.version()))
            .then_with(|| a.arch().cmp(b.arch()))
    });
    let mut out = String::new();
    for p in sorted {
        out.push_str(&p.stanza());
        out.push('\n');
    }
    out
}

/// One architecture's list in its three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesList {
    pub arch: String,
    pub plain: Vec<u8>,
    pub gz: Vec<u8>,
    pub xz: Vec<u8>,
}

impl PackagesList {
    /// The list of `packages`, made in one piece.
    pub fn of(arch: &str, packages: &[&PoolPackage]) -> PackagesList {
        let plain = packages_text(packages).into_bytes();
        PackagesList {
            arch: arch.to_string(),
            gz: GZIP.join(&[&GZIP.compress(&plain)]),
            xz: Codec::Xz.join(&[&Codec::Xz.compress(&plain)]),
            plain,
        }
    }
}

/// Packages.gz: gzip -9, no name, mtime 0, so the same text gives the
/// same bytes.
pub const GZIP: Codec = Codec::Gzip(9);

/// A file under `dists/<codename>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    /// Relative to `dists/<codename>/`: `main/binary-amd64/Packages.xz`.
    pub path: String,
    pub bytes: Vec<u8>,
    /// Of `bytes`, in hex (computed once: lists are megabytes).
    pub sha256: String,
    /// Of `bytes`, in hex, for Release's MD5Sum field.
    pub md5: String,
}

impl DistFile {
    pub fn new(path: String, bytes: Vec<u8>) -> DistFile {
        // Both digests of a large list at once, one per core: they are
        // most of what an incremental publish computes.
        let (sha256, md5) = if bytes.len() > 1 << 20 {
            std::thread::scope(|s| {
                let sha256 = s.spawn(|| hex::encode(Sha256::digest(&bytes)));
                let md5 = hex::encode(Md5::digest(&bytes));
                (sha256.join().expect("hashing does not panic"), md5)
            })
        } else {
            (
                hex::encode(Sha256::digest(&bytes)),
                hex::encode(Md5::digest(&bytes)),
            )
        };
        DistFile {
            sha256,
            md5,
            path,
            bytes,
        }
    }

    /// Where apt fetches it by hash (`Acquire-By-Hash: yes`).
    pub fn by_hash_path(&self) -> String {
        let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/by-hash/SHA256/{}", self.sha256)
    }
}

/// What one codename's `dists/<codename>/` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    pub codename: String,
    /// Packages, Packages.gz and Packages.xz of every architecture.
    pub indexes: Vec<DistFile>,
    /// The `Release` text; sign it for InRelease and Release.gpg.
    pub release: String,
}

/// Release fields that are the same for every codename of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub origin: String,
    pub label: String,
    pub description: String,
    /// Seconds since the epoch.
    pub date: u64,
    pub valid_until: Option<u64>,
}

/// Builds `dists/<codename>/` from each architecture's list (an
/// `Architecture: all` package is in every one of them).
pub fn dist(codename: &str, lists: Vec<PackagesList>, info: &ReleaseInfo) -> Dist {
    let archs: Vec<String> = lists.iter().map(|l| l.arch.clone()).collect();
    let mut indexes = Vec::new();
    for list in lists {
        let dir = format!("main/binary-{}", list.arch);
        indexes.push(DistFile::new(format!("{dir}/Packages.gz"), list.gz));
        indexes.push(DistFile::new(format!("{dir}/Packages.xz"), list.xz));
        indexes.push(DistFile::new(format!("{dir}/Packages"), list.plain));
    }
    indexes.sort_by(|a, b| a.path.cmp(&b.path));
    let release = release_text(codename, &archs, &indexes, info);
    Dist {
        codename: codename.to_string(),
        indexes,
        release,
    }
}

fn release_text(
    codename: &str,
    archs: &[String],
    files: &[DistFile],
    info: &ReleaseInfo,
) -> String {
    let mut r = String::new();
    r += &format!("Origin: {}\n", info.origin);
    r += &format!("Label: {}\n", info.label);
    r += &format!("Suite: {codename}\n");
    r += &format!("Codename: {codename}\n");
    r += &format!("Date: {}\n", rfc2822(info.date));
    if let Some(until) = info.valid_until {
        r += &format!("Valid-Until: {}\n", rfc2822(until));
    }
    r += &format!("Architectures: {}\n", archs.join(" "));
    r += "Components: main\n";
    r += &format!("Description: {}\n", info.description);
    r += "Acquire-By-Hash: yes\n";
    r += "MD5Sum:\n";
    for f in files {
        r += &format!(" {} {:>8} {}\n", f.md5, f.bytes.len(), f.path);
    }
    r += "SHA256:\n";
    for f in files {
        r += &format!(" {} {:>8} {}\n", f.sha256, f.bytes.len(), f.path);
    }
    r
}

/// A whole gzip file of `bytes`, as Packages.gz is made.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    Ok(GZIP.compress(bytes))
}

/// A whole xz file of `bytes`, as Packages.xz is made (xz preset 1: a
/// Packages list is repetitive text, and preset 1 keeps most of preset 6's
/// ratio at a quarter of the time).
pub fn xz(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    Ok(Codec::Xz.join(&[&Codec::Xz.compress(bytes)]))
}

/// `Sat, 02 Dec 2026 12:00:00 UTC`: the date form Release files use.
pub fn rfc2822(secs: u64) -> String {
    kmodfarm_model::text::rfc2822(secs, "UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc2822_in_utc() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        // `date -u -d @1764676800 -R`
        assert_eq!(rfc2822(1_764_676_800), "Tue, 02 Dec 2025 12:00:00 UTC");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 UTC");
    }

    #[test]
    fn pool_letters_follow_debian() {
        assert_eq!(pool_letter("kmfdemo"), "k");
        assert_eq!(pool_letter("libfoo"), "libf");
        assert_eq!(pool_letter("lib"), "l");
    }
}
