//! OpenPGP signing of .rpm files with a key made by the real gpg, checked
//! by the real rpm against a temporary rpmdb.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kmodfarm_package::{write_package, Format, SigningKey};

fn gpg(home: &Path) -> Command {
    let mut cmd = tool("gpg");
    cmd.env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
    cmd
}

#[test]
fn signed_rpm_verifies_with_the_public_key_and_only_with_it() {
    let p = project();
    let home = tempfile::tempdir().unwrap();
    run(gpg(home.path()).args([
        "--quick-gen-key",
        "kmodfarm test signer <signer@example.org>",
        "rsa3072",
        "sign",
        "never",
    ]));
    let secret = run(gpg(home.path()).args(["--armor", "--export-secret-keys"]));
    let public = run(gpg(home.path()).args(["--armor", "--export"]));
    let secret_path = home.path().join("secret.asc");
    let public_path = home.path().join("public.asc");
    std::fs::write(&secret_path, secret).unwrap();
    std::fs::write(&public_path, public).unwrap();

    let key = SigningKey::load(&secret_path).unwrap();
    let rpm = write_package(&dkms_spec(&p, Format::Rpm), &p.out(), Some(&key)).unwrap();

    // Without the public key rpm cannot vouch for the signature...
    let db = tempfile::tempdir().unwrap();
    let rpm_db = || {
        let mut cmd = tool("rpm");
        cmd.arg("--dbpath").arg(db.path());
        cmd
    };
    let unknown = output(rpm_db().arg("-K").arg(&rpm));
    let text = String::from_utf8_lossy(&unknown.stdout);
    assert!(
        !unknown.status.success() && text.contains("NOT OK"),
        "rpm -K passed without the key: {text}"
    );

    // ...with it imported, digests and signature check out.
    run(rpm_db().arg("--import").arg(&public_path));
    let checked = run(rpm_db().arg("-K").arg(&rpm));
    assert!(
        checked.trim_end().ends_with("digests signatures OK"),
        "{checked}"
    );
    let info = run(rpm_db().args(["-qpi"]).arg(&rpm));
    assert!(
        info.lines()
            .any(|l| l.starts_with("Signature") && l.contains("RSA/SHA")),
        "{info}"
    );

    // rpmlint no longer reports the missing signature.
    let lint = output(tool("rpmlint").arg(&rpm));
    assert!(!String::from_utf8_lossy(&lint.stdout).contains("no-signature"));
}

#[test]
fn a_key_that_is_not_a_secret_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-key.asc");
    std::fs::write(
        &path,
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n",
    )
    .unwrap();
    let err = SigningKey::load(&path)
        .err()
        .expect("a public-key block cannot sign");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}
