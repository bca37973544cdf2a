//! `kmodfarm keygen --out DIR [--name N]`: a new OpenPGP signing key for
//! the repository (Ed25519, the kind Debian 13's sqv accepts).
//!
//! Writes `DIR/<name>.secret.asc` (mode 0600; what `publish --key` and
//! `package --sign-key` read), and the public key as `DIR/<name>.asc` and
//! `DIR/<name>.gpg` (binary, for apt's `signed-by`). The passphrase, if
//! any, comes from $KMODFARM_KEY_PASSPHRASE or `--passphrase-file`, never
//! from the command line.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kmodfarm_publish::sign::{generate, PASSPHRASE_ENV};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the key files into (made if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The key's file name stem.
    #[arg(long, default_value = "kmodfarm")]
    name: String,
    /// The key's user id [default: "<name> repository signing key"].
    #[arg(long, value_name = "UID")]
    uid: Option<String>,
    /// Protect the secret key with the first line of this file (or set $KMODFARM_KEY_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

pub fn run(_ctx: &Context, args: Args) -> Result {
    if args.name.is_empty() || args.name.contains('/') || args.name.starts_with('.') {
        return Err(format!("--name '{}' must be a plain file name", args.name).into());
    }
    let passphrase = match &args.passphrase_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the passphrase file {}: {e}", file.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        None => std::env::var(PASSPHRASE_ENV).ok(),
    };
    let uid = args
        .uid
        .clone()
        .unwrap_or_else(|| format!("{} repository signing key", args.name));
    let key = generate(&uid, passphrase.as_deref().filter(|p| !p.is_empty()))?;

    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot make {}: {e}", args.out.display()))?;
    let secret = args.out.join(format!("{}.secret.asc", args.name));
    let armored = args.out.join(format!("{}.asc", args.name));
    let binary = args.out.join(format!("{}.gpg", args.name));
    for path in [&secret, &armored, &binary] {
        if path.exists() {
            return Err(format!(
                "{} exists: keygen never replaces a key (move it away first)",
                path.display()
            )
            .into());
        }
    }
    write_new(&secret, key.secret_armored.as_bytes(), 0o600)?;
    write_new(&armored, key.public_armored.as_bytes(), 0o644)?;
    write_new(&binary, &key.public_binary, 0o644)?;
    println!("key {}", key.fingerprint);
    println!("secret key: {} (keep it private)", secret.display());
    println!("public key: {} and {}", armored.display(), binary.display());
    Ok(())
}

/// Creates `path` (never replacing one) with `mode` from the start, so the
/// secret key is never readable by others, even for a moment.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
