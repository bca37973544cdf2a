//! Signatures made by `sign` checked by the real verifiers apt uses:
//! gpgv (Debian 12's apt) and sqv (Debian 13's apt), plus gpg itself.

use std::path::Path;
use std::process::Command;

use kmodfarm_publish::sign::{generate, Passphrase, SignError, SigningKey};

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new(passphrase: Option<&str>) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let key = generate("kmodfarm test <test@example.org>", passphrase).unwrap();
        std::fs::write(dir.path().join("secret.asc"), &key.secret_armored).unwrap();
        std::fs::write(dir.path().join("public.gpg"), &key.public_binary).unwrap();
        std::fs::write(dir.path().join("public.asc"), &key.public_armored).unwrap();
        Keys { dir }
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
    fn load(&self) -> SigningKey {
        SigningKey::load(&self.path("secret.asc"), &Passphrase::None).unwrap()
    }
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn gpgv(keyring: &Path, sig: &Path, data: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("gpgv");
    cmd.arg("--keyring").arg(keyring).arg(sig);
    if let Some(d) = data {
        cmd.arg(d);
    }
    run(&mut cmd)
}

fn sqv(keyring: &Path, sig: &Path, data: &Path) -> (bool, String) {
    run(Command::new("sqv")
        .arg("--keyring")
        .arg(keyring)
        .arg(sig)
        .arg(data))
}

const RELEASE: &str = "Origin: kmodfarm\nLabel: kmodfarm\nSuite: bookworm\nCodename: bookworm\nDate: Thu, 01 Jan 1970 00:00:00 UTC\n-dash line\nSHA256:\n 00 1 main/binary-amd64/Packages\n";

#[test]
fn gpgv_accepts_a_clear_signed_release_and_refuses_an_edited_one() {
    let keys = Keys::new(None);
    let key = keys.load();
    let signed = key.clearsign(RELEASE, 1_700_000_000).unwrap();
    assert!(
        signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"),
        "{signed}"
    );
    let file = keys.path("InRelease");
    std::fs::write(&file, &signed).unwrap();
    let (ok, said) = gpgv(&keys.path("public.gpg"), &file, None);
    assert!(ok, "gpgv refused InRelease:\n{said}\n{signed}");
    // gpg recovers exactly the signed text, the dash-escaped line included.
    let (ok, text) = run(Command::new("gpg")
        .args(["--homedir"])
        .arg(keys.path(""))
        .args(["--batch", "--quiet", "--no-default-keyring", "--keyring"])
        .arg(keys.path("public.gpg"))
        .args(["--trust-model", "always", "--decrypt"])
        .arg(&file));
    assert!(ok, "{text}");
    assert!(text.starts_with(RELEASE), "gpg recovered:\n{text}");

    std::fs::write(&file, signed.replace("Suite: bookworm", "Suite: trixie")).unwrap();
    let (ok, said) = gpgv(&keys.path("public.gpg"), &file, None);
    assert!(!ok, "gpgv accepted an edited InRelease:\n{said}");
}

#[test]
fn gpgv_and_sqv_accept_detached_signatures_and_refuse_other_keys() {
    let keys = Keys::new(None);
    let other = Keys::new(None);
    let key = keys.load();
    let data = keys.path("Release");
    std::fs::write(&data, RELEASE).unwrap();
    let sig = keys.path("Release.gpg");
    std::fs::write(
        &sig,
        key.detached_armored(RELEASE.as_bytes(), 1_700_000_000)
            .unwrap(),
    )
    .unwrap();
    let binary = keys.path("Release.sig");
    std::fs::write(
        &binary,
        key.detached(RELEASE.as_bytes(), 1_700_000_000).unwrap(),
    )
    .unwrap();

    for s in [&sig, &binary] {
        let (ok, said) = gpgv(&keys.path("public.gpg"), s, Some(&data));
        assert!(ok, "gpgv refused {}:\n{said}", s.display());
        let (ok, said) = sqv(&keys.path("public.gpg"), s, &data);
        assert!(ok, "sqv refused {}:\n{said}", s.display());
        let (ok, _) = gpgv(&other.path("public.gpg"), s, Some(&data));
        assert!(!ok, "gpgv accepted a signature under another key");
        let (ok, _) = sqv(&other.path("public.gpg"), s, &data);
        assert!(!ok, "sqv accepted a signature under another key");
    }
    // The armored public key works as a keyring too (apt's signed-by .asc).
    let (ok, said) = sqv(&keys.path("public.asc"), &sig, &data);
    assert!(ok, "sqv refused the armored key:\n{said}");
    key.verify_detached(RELEASE.as_bytes(), &std::fs::read_to_string(&sig).unwrap())
        .unwrap();
}

#[test]
fn same_key_text_and_time_give_the_same_signature() {
    let keys = Keys::new(None);
    let a = keys.load().clearsign(RELEASE, 1_700_000_000).unwrap();
    let b = keys.load().clearsign(RELEASE, 1_700_000_000).unwrap();
    let c = keys.load().clearsign(RELEASE, 1_700_000_001).unwrap();
    assert_eq!(a, b);
    // Both times predate the key: each signature carries the key's
    // creation time instead, or gpgv and sqv would refuse it.
    assert_eq!(a, c);
    let later = |t| keys.load().clearsign(RELEASE, t).unwrap();
    assert_ne!(
        later(4_000_000_000),
        later(4_000_000_001),
        "the time is part of the signature"
    );
}

#[test]
fn a_protected_key_needs_its_passphrase_and_refuses_a_wrong_one() {
    let keys = Keys::new(Some("correct horse"));
    let path = keys.path("secret.asc");
    match SigningKey::load(&path, &Passphrase::None) {
        Err(SignError::PassphraseNeeded { path: p, env }) => {
            assert_eq!(p, path);
            assert_eq!(env, "KMODFARM_KEY_PASSPHRASE");
        }
        other => panic!("expected PassphraseNeeded, got {other:?}"),
    }
    let wrong = Passphrase::Value {
        source: "test".into(),
        value: "battery staple".into(),
    };
    let err = SigningKey::load(&path, &wrong).unwrap_err();
    assert!(matches!(err, SignError::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));

    let file = keys.path("pass");
    std::fs::write(&file, "correct horse\n").unwrap();
    let key = SigningKey::load(&path, &Passphrase::File(file)).unwrap();
    let sig = keys.path("Release.gpg");
    let data = keys.path("Release");
    std::fs::write(&data, RELEASE).unwrap();
    std::fs::write(&sig, key.detached_armored(RELEASE.as_bytes(), 1).unwrap()).unwrap();
    let (ok, said) = sqv(&keys.path("public.gpg"), &sig, &data);
    assert!(ok, "{said}");
}

#[test]
fn a_file_that_is_not_a_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.asc");
    std::fs::write(&path, "hello\n").unwrap();
    let err = SigningKey::load(&path, &Passphrase::None).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let missing = dir.path().join("absent.asc");
    let err = SigningKey::load(&missing, &Passphrase::None).unwrap_err();
    assert!(err.to_string().contains("absent.asc"), "{err}");
}
