//! A manifest with [signing]: the kernel's own sign-file (from the header
//! layer) signs the module before it is compressed, so the signature is
//! inside the .ko that kmod unpacks, and the record says it is signed.

mod common;

use std::process::Command;

use common::FreshModule;
use kmodfarm_model::record::BuildOutcome;
use kmodfarm_tests::newest_headers;

#[test]
fn a_signed_build_carries_the_signature_inside_the_compressed_module() {
    let kernel = newest_headers("6.12", "bookworm").expect("bookworm has 6.12 kernels");
    let module = FreshModule::new("signing test", &[]);
    let keys = module.copy.dir().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=kmodfarm test signing key/",
            "-outform",
            "DER",
        ])
        .arg("-keyout")
        .arg(keys.join("key.pem"))
        .arg("-out")
        .arg(keys.join("cert.der"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let manifest = module.manifest();
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[signing]\nkey = \"keys/key.pem\"\ncert = \"keys/cert.der\"\n"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let kernel_arg = format!("debian-12:{kernel}");
    let run = common::build(
        &manifest,
        &out,
        &["--runtime", "bwrap", "--kernel", &kernel_arg],
    )
    .expect_ok();
    let records = run.records;
    let BuildOutcome::Built { artifact } = &records[0].outcome else {
        panic!("{:?}", records[0].outcome)
    };
    assert!(artifact.signed);
    let file = out.join(&artifact.path);
    assert_eq!(
        common::modinfo("signer", &file),
        "kmodfarm test signing key"
    );
    assert_eq!(common::modinfo("sig_hashalgo", &file), "sha256");
}
