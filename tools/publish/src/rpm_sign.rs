//! The header signature of the .rpm files a publish puts into its yum
//! repositories. Hosts add the repository with `gpgcheck=1` and its key
//! only, so every .rpm in it must be signed by that key:
//!
//! - an unsigned input (cargo-generate-rpm's kmodfarm-host, `kmodfarm
//!   package` without `--key`) is published as a copy signed with the
//!   repository's key, the input left as it is;
//! - an input signed by the repository's key is published as it is;
//! - an input signed by another key is refused: dnf would refuse it on
//!   every host.
//!
//! Signing uses the `rpm` crate's package signing
//! ([`rpm::Package::sign_with_timestamp`]) with the repository's key as
//! its signer, at the publish's time (SOURCE_DATE_EPOCH when set): Ed25519
//! is deterministic, so the same input, key and time give the same bytes.

use std::io::Read;
use std::path::{Path, PathBuf};

use rpm::signature::SignatureInfo;

use crate::sign::SigningKey;

#[derive(Debug, thiserror::Error)]
pub enum RpmSignError {
    #[error("{path} is signed with OpenPGP key {signed_with}, not with the repository's key {repo_key}: hosts check packages against the repository's key only (gpgcheck=1), so dnf and zypper would refuse it. Give publish the package unsigned (publish signs it with {repo_key}; `rpmsign --delsign {path}` removes a signature) or signed with the repository's key")]
    OtherKey {
        path: PathBuf,
        /// Every key id the package is signed with, comma-separated.
        signed_with: String,
        repo_key: String,
    },
    #[error("{path}: its signature by the repository's key {repo_key} does not verify (was the file changed after it was signed?): {message}")]
    BadSignature {
        path: PathBuf,
        repo_key: String,
        message: String,
    },
    #[error("{path}: cannot read the rpm's signature header: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("cannot sign {path} with the repository's key {key}: {message}")]
    Sign {
        path: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// How an input .rpm is signed, as far as a publish is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpmSignature {
    /// No OpenPGP header signature: published as a copy signed by the
    /// repository's key.
    Unsigned,
    /// Signed by the repository's key (checked): published as it is.
    Repository,
}

/// How the package in `bytes` (read from `path`) is signed: refuses one
/// signed by any key but `key`'s, and one whose signature by `key` does
/// not verify.
pub fn check(path: &Path, bytes: &[u8], key: &SigningKey) -> Result<RpmSignature, RpmSignError> {
    let unreadable = |e: rpm::Error| RpmSignError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let meta = rpm::PackageMetadata::parse(&mut &bytes[..]).map_err(unreadable)?;
    let signatures = meta.signatures().map_err(unreadable)?;
    if signatures.is_empty() {
        return Ok(RpmSignature::Unsigned);
    }
    let repo_key = key.key_id();
    let fingerprint = key.fingerprint();
    let ours = |s: &SignatureInfo| {
        s.fingerprint()
            .is_some_and(|f| f.eq_ignore_ascii_case(&fingerprint))
            || s.key_id()
                .is_some_and(|k| k.eq_ignore_ascii_case(&repo_key))
    };
    if !signatures.iter().any(ours) {
        let mut ids: Vec<String> = signatures.iter().map(key_id_of).collect();
        ids.dedup();
        return Err(RpmSignError::OtherKey {
            path: path.to_path_buf(),
            signed_with: ids.join(", "),
            repo_key,
        });
    }
    let bad = |message: String| RpmSignError::BadSignature {
        path: path.to_path_buf(),
        repo_key: repo_key.clone(),
        message,
    };
    let public = key.public_key_armored().map_err(|e| bad(e.to_string()))?;
    let verifier =
        rpm::signature::pgp::Verifier::from_asc(&public).map_err(|e| bad(e.to_string()))?;
    let report = meta
        .check_signatures(verifier)
        .map_err(|e| bad(e.to_string()))?;
    // Ours must verify; another key's beside it is the packager's business.
    let mut ours_checked = report.signatures.iter().filter(|c| ours(&c.info));
    match ours_checked.find(|c| c.error.is_none()) {
        Some(_) => Ok(RpmSignature::Repository),
        None => {
            let message = report
                .signatures
                .iter()
                .filter(|c| ours(&c.info))
                .filter_map(|c| c.error.as_ref().map(|e| e.to_string()))
                .next()
                .unwrap_or_else(|| "no signature by it verifies".into());
            Err(bad(message))
        }
    }
}

/// The key id (16 hex digits, upper case) a signature names.
fn key_id_of(s: &SignatureInfo) -> String {
    if let Some(id) = s.key_id() {
        return id.to_ascii_uppercase();
    }
    match s.fingerprint() {
        // A v4 key id is the last 8 bytes of its fingerprint.
        Some(f) if f.len() >= 16 => f[f.len() - 16..].to_ascii_uppercase(),
        Some(f) => f.to_ascii_uppercase(),
        None => "(a signature naming no key)".into(),
    }
}

/// The package in `bytes` (read from `path`) with a header signature by
/// `key` made at `when` (seconds since the epoch; the key's
/// [`SigningKey::signature_time`] applies), as a file's bytes.
pub fn sign(
    path: &Path,
    bytes: &[u8],
    key: &SigningKey,
    when: u64,
) -> Result<Vec<u8>, RpmSignError> {
    let failed = |e: rpm::Error| RpmSignError::Sign {
        path: path.to_path_buf(),
        key: key.path().to_path_buf(),
        message: e.to_string(),
    };
    let mut package =
        rpm::Package::parse(&mut &bytes[..]).map_err(|e| RpmSignError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let when = rpm::Timestamp(u32::try_from(when).unwrap_or(u32::MAX));
    package
        .sign_with_timestamp(RepoSigner(key), when)
        .map_err(failed)?;
    let mut out = Vec::with_capacity(bytes.len() + 512);
    package.write(&mut out).map_err(failed)?;
    Ok(out)
}

/// The repository's key as the `rpm` crate's signer: a detached binary
/// signature over the header, made by [`SigningKey::detached`] (SHA-512,
/// the same subpackets as every other signature of the repository).
struct RepoSigner<'a>(&'a SigningKey);

impl std::fmt::Debug for RepoSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RepoSigner").field(self.0).finish()
    }
}

impl rpm::signature::Signing for RepoSigner<'_> {
    type Signature = Vec<u8>;

    fn sign(&self, mut data: impl Read, t: rpm::Timestamp) -> Result<Vec<u8>, rpm::Error> {
        let mut header = Vec::new();
        data.read_to_end(&mut header)?;
        self.0
            .detached(&header, u64::from(t.0))
            .map_err(|e| rpm::Error::SignError(Box::new(e)))
    }
}
