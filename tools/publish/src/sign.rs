//! OpenPGP keys and signatures, made in Rust with the `pgp` crate (the one
//! the `rpm` crate signs packages with, so the graph holds one OpenPGP
//! implementation).
//!
//! Keys are v4 Ed25519 ("EdDSA legacy", algorithm 22): the form Debian 12's
//! gpgv, Debian 13's sqv, rpm and dnf all verify. Signatures hash with
//! SHA-512 (sqv refuses SHA-1). A signature's creation time is the
//! publish's time (SOURCE_DATE_EPOCH when set) and Ed25519 is
//! deterministic, so the same key, input and time give the same bytes.
//!
//! A passphrase comes from an environment variable or a file, never argv
//! (argv is readable by every user through /proc).

use std::path::{Path, PathBuf};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};

/// The digest every signature uses.
const HASH: HashAlgorithm = HashAlgorithm::Sha512;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read the signing key {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an OpenPGP secret key: {message}")]
    NotASecretKey { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    UnusableKey { path: PathBuf, message: String },
    #[error(
        "the signing key {path} is protected by a passphrase: set {env} or pass a passphrase file"
    )]
    PassphraseNeeded { path: PathBuf, env: String },
    #[error("wrong passphrase for the signing key {path}")]
    WrongPassphrase { path: PathBuf },
    #[error("cannot read the passphrase file {path}: {source}")]
    ReadPassphrase {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot sign with {path}: {message}")]
    Sign { path: PathBuf, message: String },
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

pub type Result<T, E = SignError> = std::result::Result<T, E>;

/// Where a key's passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passphrase {
    /// The key is not protected.
    None,
    /// The value of this environment variable (already read by the caller).
    Value { source: String, value: String },
    /// The first line of this file.
    File(PathBuf),
}

impl Passphrase {
    fn resolve(&self) -> Result<Option<String>> {
        match self {
            Passphrase::None => Ok(None),
            Passphrase::Value { value, .. } => Ok(Some(value.clone())),
            Passphrase::File(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SignError::ReadPassphrase {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Some(text.lines().next().unwrap_or("").to_string()))
            }
        }
    }
}

/// The environment variable `kmodfarm` reads a key's passphrase from.
pub const PASSPHRASE_ENV: &str = "KMODFARM_KEY_PASSPHRASE";

/// A secret key ready to sign: loaded, and unlocked once to prove the
/// passphrase right before anything is written.
pub struct SigningKey {
    path: PathBuf,
    key: SignedSecretKey,
    password: Password,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl SigningKey {
    /// Reads an armored or binary secret key from `path`.
    pub fn load(path: &Path, passphrase: &Passphrase) -> Result<SigningKey> {
        let bytes = std::fs::read(path).map_err(|source| SignError::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
        let not_a_key = |e: pgp::errors::Error| SignError::NotASecretKey {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let key = if bytes.starts_with(b"-----BEGIN PGP") {
            SignedSecretKey::from_armor_single(&bytes[..])
                .map_err(not_a_key)?
                .0
        } else {
            SignedSecretKey::from_bytes(&bytes[..]).map_err(not_a_key)?
        };
        let pass = passphrase.resolve()?;
        let encrypted = matches!(
            key.primary_key.secret_params(),
            pgp::types::SecretParams::Encrypted(_)
        );
        if encrypted && pass.is_none() {
            return Err(SignError::PassphraseNeeded {
                path: path.to_path_buf(),
                env: PASSPHRASE_ENV.into(),
            });
        }
        let password = pass.map(Password::from).unwrap_or_else(Password::empty);
        // Prove the passphrase now: a publish that fails must fail before
        // it writes anything.
        key.primary_key
            .unlock(&password, |_, _| Ok(()))
            .map_err(|_| SignError::WrongPassphrase {
                path: path.to_path_buf(),
            })?
            .map_err(|_| SignError::WrongPassphrase {
                path: path.to_path_buf(),
            })?;
        let signing_key = SigningKey {
            path: path.to_path_buf(),
            key,
            password,
        };
        signing_key.check_strength()?;
        Ok(signing_key)
    }

    /// Refuses keys Debian 13's sqv would refuse, so the failure shows at
    /// publish time rather than on every host's `apt update`.
    fn check_strength(&self) -> Result<()> {
        use pgp::crypto::public_key::PublicKeyAlgorithm as A;
        let ok = match self.key.algorithm() {
            A::EdDSALegacy | A::Ed25519 | A::Ed448 => true,
            A::RSA | A::RSASign => {
                // The public parameters start with the modulus as an
                // OpenPGP MPI, whose first two bytes are its length in bits.
                let params = self.key.public_params().to_bytes().unwrap_or_default();
                let bits = params
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                bits >= 3072
            }
            A::ECDSA => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(SignError::UnusableKey {
                path: self.path.clone(),
                message: format!(
                    "{:?} keys are refused by Debian 13's sqv: use an Ed25519 or RSA-3072+ key (`kmodfarm keygen`)",
                    self.key.algorithm()
                ),
            })
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The primary key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.key.fingerprint().as_bytes())
    }

    /// The primary key's id (the last 8 bytes of its fingerprint), 16
    /// upper-case hex digits, as gpg and `rpm -K` name it.
    pub fn key_id(&self) -> String {
        hex::encode_upper(self.key.legacy_key_id().as_ref())
    }

    /// The public key, ASCII-armored (`keys/<name>.asc`).
    pub fn public_key_armored(&self) -> Result<String> {
        self.public()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| self.sign_err(e))
    }

    /// The public key, binary (`keys/<name>.gpg`, for apt's `signed-by`).
    pub fn public_key_binary(&self) -> Result<Vec<u8>> {
        self.public().to_bytes().map_err(|e| self.sign_err(e))
    }

    fn public(&self) -> SignedPublicKey {
        self.key.to_public_key()
    }

    fn sign_err(&self, e: pgp::errors::Error) -> SignError {
        SignError::Sign {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The time a signature made at `when` carries: `when`, or the time
    /// the key became valid (created and self-signed) if that is later.
    /// gpgv and sqv refuse a signature older than its key ("time
    /// conflict", "no binding signature at time"), and SOURCE_DATE_EPOCH
    /// is often the time of a commit made before the key; the result is
    /// still the same for the same inputs.
    pub fn signature_time(&self, when: u64) -> u64 {
        let self_signed = self
            .key
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .chain(&self.key.details.direct_signatures)
            .filter_map(|s| s.created())
            .map(|t| t.as_secs())
            .max()
            .unwrap_or(0);
        let valid_from = self_signed.max(self.key.created_at().as_secs());
        when.max(u64::from(valid_from))
    }

    /// A v4 signature configuration made at `when` (seconds since the epoch).
    fn config(&self, typ: SignatureType, when: u64) -> Result<SignatureConfig> {
        let mut config = SignatureConfig::v4(typ, self.key.algorithm(), HASH);
        let when = self.signature_time(when);
        let when = Timestamp::from_secs(u32::try_from(when).unwrap_or(u32::MAX));
        let packet = |data| Subpacket::regular(data).map_err(|e| self.sign_err(e));
        config.hashed_subpackets = vec![
            packet(SubpacketData::SignatureCreationTime(when))?,
            packet(SubpacketData::IssuerFingerprint(self.key.fingerprint()))?,
        ];
        config.unhashed_subpackets = vec![packet(SubpacketData::IssuerKeyId(
            self.key.legacy_key_id(),
        ))?];
        Ok(config)
    }

    /// A clear-signed message (apt's `InRelease`).
    pub fn clearsign(&self, text: &str, when: u64) -> Result<String> {
        let config = self.config(SignatureType::Text, when)?;
        let message = CleartextSignedMessage::new(text, config, &*self.key, &self.password)
            .map_err(|e| self.sign_err(e))?;
        message
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| self.sign_err(e))
    }

    /// A detached signature over `data`, binary.
    pub fn detached(&self, data: &[u8], when: u64) -> Result<Vec<u8>> {
        self.detached_signature(data, when)?
            .to_bytes()
            .map_err(|e| self.sign_err(e))
    }

    /// A detached signature over `data`, ASCII-armored (apt's `Release.gpg`,
    /// `repomd.xml.asc`, `index.json.asc`).
    pub fn detached_armored(&self, data: &[u8], when: u64) -> Result<String> {
        self.detached_signature(data, when)?
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| self.sign_err(e))
    }

    fn detached_signature(&self, data: &[u8], when: u64) -> Result<DetachedSignature> {
        let config = self.config(SignatureType::Binary, when)?;
        let signature = config
            .sign(&*self.key, &self.password, data)
            .map_err(|e| self.sign_err(e))?;
        Ok(DetachedSignature::new(signature))
    }

    /// Checks a detached signature made by this key (tests, and the
    /// publish's own read-back of what it wrote).
    pub fn verify_detached(&self, data: &[u8], armored: &str) -> Result<()> {
        let (sig, _) = DetachedSignature::from_string(armored).map_err(|e| self.sign_err(e))?;
        sig.verify(&self.public(), data)
            .map_err(|e| self.sign_err(e))
    }
}

/// A new key pair from [`generate`].
pub struct GeneratedKey {
    /// The secret key, ASCII-armored (passphrase-protected when one was given).
    pub secret_armored: String,
    pub public_armored: String,
    pub public_binary: Vec<u8>,
    pub fingerprint: String,
}

/// Makes a v4 Ed25519 key that can certify and sign, with user id `name`,
/// its secret part protected by `passphrase` when given.
pub fn generate(name: &str, passphrase: Option<&str>) -> Result<GeneratedKey> {
    let err = |e: &dyn std::fmt::Display| SignError::Generate(e.to_string());
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(name.to_string())
        .preferred_hash_algorithms(
            [HashAlgorithm::Sha512, HashAlgorithm::Sha256]
                .into_iter()
                .collect(),
        );
    if let Some(pass) = passphrase {
        params.passphrase(Some(pass.to_string()));
    }
    let params = params.build().map_err(|e| err(&e))?;
    let key = params.generate(rand::thread_rng()).map_err(|e| err(&e))?;
    let public = key.to_public_key();
    Ok(GeneratedKey {
        secret_armored: key
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| err(&e))?,
        public_armored: public
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| err(&e))?,
        public_binary: public.to_bytes().map_err(|e| err(&e))?,
        fingerprint: hex::encode_upper(key.fingerprint().as_bytes()),
    })
}
