//! Trusting what the repository serves: its files are checked against the
//! repository's OpenPGP key (detached armored signatures, as `gpg
//! --detach-sign --armor` writes them), then a lookup file is accepted only
//! if it is the one asked for, not expired, and not older than the last one
//! this host accepted. Pure functions: no network, no files.

use std::path::{Path, PathBuf};

use kmodfarm_model::record::KernelLookup;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;

use crate::error::{Error, Result};

/// The repository's public key, with its subkeys.
#[derive(Debug)]
pub struct RepoKey {
    key: SignedPublicKey,
    path: PathBuf,
}

impl RepoKey {
    /// Reads an armored or binary public key. Its self-signatures must hold.
    pub fn load(path: &Path) -> Result<RepoKey> {
        let bytes = std::fs::read(path).map_err(Error::read(path))?;
        RepoKey::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RepoKey> {
        let bad = |message: String| Error::Key {
            path: path.to_path_buf(),
            message,
        };
        let key = if bytes.starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_single(bytes).map(|(k, _)| k)
        } else {
            SignedPublicKey::from_bytes(bytes)
        }
        .map_err(|e| bad(format!("not an OpenPGP public key: {e}")))?;
        key.verify_bindings()
            .map_err(|e| bad(format!("its self-signatures do not verify: {e}")))?;
        Ok(RepoKey {
            key,
            path: path.to_path_buf(),
        })
    }

    /// The primary key's fingerprint, for messages.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.key.primary_key.fingerprint())
    }

    /// Checks `signature` (armored, detached) over `data`, fetched from `url`.
    pub fn verify(&self, url: &str, data: &[u8], signature: &[u8]) -> Result<()> {
        let bad = |message: String| Error::BadSignature {
            url: url.to_string(),
            message,
        };
        let (sig, _) = DetachedSignature::from_armor_single(signature).map_err(|e| {
            bad(format!(
                "the .asc file is not an armored OpenPGP signature: {e}"
            ))
        })?;
        let issuers: Vec<String> = sig
            .signature
            .issuer_fingerprint()
            .iter()
            .map(|f| format!("{f:X}"))
            .chain(
                sig.signature
                    .issuer_key_id()
                    .iter()
                    .map(|id| hex::encode_upper(id.as_ref())),
            )
            .collect();
        // The signing key: the primary or one of its (bound) subkeys.
        let primary_ids = ids(&self.key.primary_key);
        if primary_ids.iter().any(|id| issuers.iter().any(|i| i == id)) {
            return sig
                .verify(&self.key, data)
                .map_err(|e| bad(format!("it does not verify: {e}")));
        }
        for sub in &self.key.public_subkeys {
            if ids(&sub.key)
                .iter()
                .any(|id| issuers.iter().any(|i| i == id))
            {
                return sig
                    .verify(sub, data)
                    .map_err(|e| bad(format!("it does not verify: {e}")));
            }
        }
        Err(Error::OtherKey {
            url: url.to_string(),
            issuer: issuers
                .first()
                .cloned()
                .unwrap_or_else(|| "no issuer".into()),
            expected: self.fingerprint(),
            key: self.path.clone(),
        })
    }
}

/// A key's fingerprint and key id in upper-case hex.
fn ids(key: &impl KeyDetails) -> [String; 2] {
    [
        format!("{:X}", key.fingerprint()),
        hex::encode_upper(key.legacy_key_id().as_ref()),
    ]
}

/// What the host asked the repository about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub module: &'a str,
    pub distro: &'a str,
    pub arch: &'a str,
    pub kernel: &'a str,
}

/// Parses a verified lookup file and accepts it only if it answers `wanted`
/// (a correctly signed file for another kernel or module is refused), has
/// not expired at `now`, and its serial is not below `last_serial`.
pub fn accept_lookup(
    url: &str,
    bytes: &[u8],
    wanted: &Wanted<'_>,
    now: u64,
    last_serial: Option<u64>,
    state: &Path,
) -> Result<KernelLookup> {
    let lookup: KernelLookup = serde_json::from_slice(bytes).map_err(|e| Error::Lookup {
        url: url.to_string(),
        message: format!("not a kernel lookup file: {e}"),
    })?;
    if lookup.schema_version > kmodfarm_model::record::SCHEMA_VERSION {
        return Err(Error::Lookup {
            url: url.to_string(),
            message: format!(
                "schema version {} is newer than this kmodfarm-host understands ({}); update kmodfarm-host",
                lookup.schema_version,
                kmodfarm_model::record::SCHEMA_VERSION
            ),
        });
    }
    let fields = [
        ("module", lookup.module.as_str(), wanted.module),
        ("distro", lookup.distro.as_str(), wanted.distro),
        ("arch", lookup.arch.as_str(), wanted.arch),
        (
            "kernel_release",
            lookup.kernel_release.as_str(),
            wanted.kernel,
        ),
    ];
    for (field, found, want) in fields {
        if found != want {
            return Err(Error::Lookup {
                url: url.to_string(),
                message: format!("answers {field} {found:?}, not {want:?}: refusing a file meant for another host"),
            });
        }
    }
    if let Some(expires) = lookup.freshness.expires {
        if expires <= now {
            return Err(Error::Expired {
                url: url.to_string(),
                expires,
                now,
            });
        }
    }
    if let Some(last) = last_serial {
        if lookup.freshness.serial < last {
            return Err(Error::RolledBack {
                url: url.to_string(),
                serial: lookup.freshness.serial,
                last,
                state: state.to_path_buf(),
            });
        }
    }
    Ok(lookup)
}

/// The sha256 of `data`, lower-case hex.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Checks a downloaded file against the size and digest its signed lookup
/// file gives.
pub fn check_download(url: &str, data: &[u8], size: u64, expected: &str) -> Result<()> {
    if (data.len() as u64) < size {
        return Err(Error::Truncated {
            url: url.to_string(),
            got: data.len() as u64,
            expected: size,
        });
    }
    let got = sha256(data);
    if !got.eq_ignore_ascii_case(expected) {
        return Err(Error::Checksum {
            url: url.to_string(),
            expected: expected.to_string(),
            got,
        });
    }
    Ok(())
}
