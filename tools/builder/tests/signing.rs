//! A manifest with [signing]: the kernel's own sign-file (from the header
//! layer) signs the module before it is compressed, so the signature is
//! inside the .ko that kmod unpacks, and the record says it is signed.

use std::process::Command;

use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::{kmodfarm_bin, module_dir, AptIndex};

fn newest_612() -> KernelRelease {
    let index = AptIndex::updated("bookworm").expect("the archive's package lists");
    index
        .package_names("linux-headers-")
        .unwrap()
        .iter()
        .filter_map(|n| KernelRelease::parse(n.strip_prefix("linux-headers-")?).ok())
        .filter(|k| k.flavour.as_deref() == Some("amd64") && k.series() == "6.12")
        .max()
        .expect("bookworm has 6.12 kernels")
}

fn modinfo(field: &str, file: &std::path::Path) -> String {
    let out = Command::new("modinfo")
        .args(["-F", field])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_signed_build_carries_the_signature_inside_the_compressed_module() {
    let kernel = newest_612();
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("module");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(module_dir())
        .arg(&module)
        .status()
        .unwrap()
        .success());
    let keys = module.join("keys");
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
    let manifest = module.join("kmodfarm.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[signing]\nkey = \"keys/key.pem\"\ncert = \"keys/cert.der\"\n"),
    )
    .unwrap();
    let source = module.join("src/kmfdemo.c");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        format!(
            "/* signing test {:?} */\n{original}",
            std::time::SystemTime::now()
        ),
    )
    .unwrap();

    let out = work.path().join("out");
    let output = Command::new(kmodfarm_bin())
        .arg("--manifest")
        .arg(&manifest)
        .args([
            "build",
            "--runtime",
            "bwrap",
            "--kernel",
            &format!("debian-12:{kernel}"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("records.json")).unwrap()).unwrap();
    let BuildOutcome::Built { artifact } = &records[0].outcome else {
        panic!("{:?}", records[0].outcome)
    };
    assert!(artifact.signed);
    let file = out.join(&artifact.path);
    assert_eq!(modinfo("signer", &file), "kmodfarm test signing key");
    assert_eq!(modinfo("sig_hashalgo", &file), "sha256");
}
