//! `kmodfarm publish` puts only .rpm files that dnf with `gpgcheck=1`
//! accepts into its yum repositories: an unsigned input (cargo-generate-rpm's
//! kmodfarm-host, a package made without `--key`) goes in as a copy signed
//! with the repository's key, the input untouched; one signed with that key
//! goes in as it is; one signed with another key is refused, the repository
//! left byte-identical. Checked with the real `rpm -K`, createrepo_c and
//! dnf (`--installroot`, `gpgcheck=1`, `repo_gpgcheck=1`) against the
//! repository served by `kmodfarm serve` on 127.0.0.1.

mod rpm_md_support;
mod serve_support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kmodfarm_publish::sign::{Passphrase, SigningKey};
use kmodfarm_tests::dnf::{said, Dnf, YumRepo};
use rpm_md_support::*;
use serde_json::Value;
use serve_support::*;

const YUM_DIRS: [&str; 3] = [
    "rpm/rhel-8/x86_64",
    "rpm/rhel-9/x86_64",
    "rpm/sles-15/x86_64",
];
const HOST_RPM: &str = "kmodfarm-host-0.1.0-1.x86_64.rpm";

struct Key {
    secret: PathBuf,
    public: PathBuf,
    id: String,
}

/// A key from `kmodfarm keygen` (Ed25519), and its id as publish names it.
fn keygen(dir: &Path, name: &str) -> Key {
    let out = dir.join(name);
    let made = Command::new(kmodfarm_tests::kmodfarm_bin())
        .args(["keygen", "--name", name, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", said(&made));
    let secret = out.join(format!("{name}.secret.asc"));
    let id = SigningKey::load(&secret, &Passphrase::None)
        .unwrap()
        .key_id();
    Key {
        public: out.join(format!("{name}.asc")),
        secret,
        id,
    }
}

/// A small kmodfarm-host .rpm made with the `rpm` crate (as
/// cargo-generate-rpm makes the real one): unsigned, or signed with `key`.
fn host_rpm(dir: &Path, key: Option<&Key>) -> PathBuf {
    let mut b = rpm::PackageBuilder::new(
        "kmodfarm-host",
        "0.1.0",
        "MIT",
        "x86_64",
        "kmodfarm's target-side program (a test stand-in)",
    );
    b.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32));
    b.with_file_contents(
        b"#!/bin/sh\necho kmodfarm-host stand-in\n".to_vec(),
        rpm::FileOptions::new("/usr/bin/kmodfarm-host").permissions(0o755),
    )
    .unwrap();
    let pkg = match key {
        Some(k) => b.build_and_sign(rpm::signature::pgp::Signer::from_asc_file(&k.secret).unwrap()),
        None => b.build(),
    }
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(HOST_RPM);
    pkg.write_file(&path).unwrap();
    path
}

/// `kmodfarm publish` of `packages` into `repo`, at `epoch`
/// (SOURCE_DATE_EPOCH), with `extra` arguments.
fn publish(repo: &Path, key: &Key, packages: &Path, epoch: u64, extra: &[&str]) -> Output {
    Command::new(kmodfarm_tests::kmodfarm_bin())
        .arg("--manifest")
        .arg(kmodfarm_tests::module_dir().join("kmodfarm.toml"))
        .arg("publish")
        .arg("--repo")
        .arg(repo)
        .arg("--key")
        .arg(&key.secret)
        .arg("--packages")
        .arg(packages)
        .args(extra)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .unwrap()
}

fn publish_ok(repo: &Path, key: &Key, packages: &Path, epoch: u64) -> Value {
    let out = publish(repo, key, packages, epoch, &["--json"]);
    assert!(out.status.success(), "kmodfarm publish: {}", said(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `rpm -K` (`-Kv` when `verbose`) of `file` with only `key` in a fresh
/// rpmdb.
fn rpm_k(file: &Path, key: &Key, verbose: bool) -> String {
    let db = tempfile::tempdir().unwrap();
    let import = Command::new("rpm")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--import")
        .arg(&key.public)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", said(&import));
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(db.path())
        .arg(if verbose { "-Kv" } else { "-K" })
        .arg(file)
        .output()
        .unwrap();
    said(&out)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                stack.push(path);
                out.insert(rel, Vec::new());
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The primary.xml entry of createrepo_c for `file`, beside ours, without
/// the file time (createrepo_c's is the copy's mtime).
fn createrepo_c_primary(file: &Path, tmp: &Path) -> BTreeMap<String, Value> {
    let dir = tmp.join("createrepo_c");
    std::fs::create_dir_all(dir.join("Packages")).unwrap();
    std::fs::copy(file, dir.join("Packages").join(HOST_RPM)).unwrap();
    run(Command::new("createrepo_c").arg("--no-database").arg(&dir));
    without_time(read_repo(&dir).primary)
}

fn without_time(mut primary: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    for p in primary.values_mut() {
        p.as_object_mut().unwrap().remove("time");
    }
    primary
}

/// A yum repository in `dir` holding `rpm` as it is, its repomd.xml signed
/// with `key` (made with the publish's own library, as rpm_md_clients.rs
/// makes its stand-in base repository).
fn yum_repo_holding(dir: &Path, rpm: &Path, key: &Key) {
    let href = format!("Packages/{HOST_RPM}");
    std::fs::create_dir_all(dir.join("Packages")).unwrap();
    std::fs::copy(rpm, dir.join(&href)).unwrap();
    signed_yum_repo_of(dir, &href, &key.secret, 1_900_000_000);
}

#[test]
fn an_unsigned_rpm_is_published_signed_and_dnf_with_gpgcheck_installs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "kmfdemo");
    let pk = tmp.path().join("pk");
    let input = host_rpm(&pk, None);
    let input_bytes = std::fs::read(&input).unwrap();
    // What a host would be given without this: no signature at all.
    let unsigned = rpm_k(&input, &key, false);
    assert!(!unsigned.contains("signatures OK"), "{unsigned}");
    let repo = tmp.path().join("repo");
    let epoch = 1_900_000_000; // after the key was made

    // The plan says which file will be signed, and with which key.
    let dry = publish(&repo, &key, &pk, epoch, &["--dry-run", "--json"]);
    assert!(dry.status.success(), "{}", said(&dry));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let copies = plan["copy"].as_array().unwrap();
    assert_eq!(copies.len(), YUM_DIRS.len(), "{plan:#}");
    for (c, dir) in copies.iter().zip(YUM_DIRS) {
        assert_eq!(c["to"], format!("{dir}/Packages/{HOST_RPM}"));
        assert_eq!(c["from"], input.display().to_string());
        assert_eq!(c["signed"]["key_id"], key.id);
        assert_eq!(c["signed"]["input_sha256"], sha256(&input_bytes));
        assert_ne!(c["sha256"], sha256(&input_bytes));
    }
    assert!(!repo.exists(), "a dry run wrote the repository");

    let summary = publish_ok(&repo, &key, &pk, epoch);
    assert_eq!(summary["signed_rpms"], YUM_DIRS.len(), "{summary}");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        input_bytes,
        "publish changed its input"
    );
    let pooled: Vec<PathBuf> = YUM_DIRS
        .iter()
        .map(|d| repo.join(d).join("Packages").join(HOST_RPM))
        .collect();
    let pooled_bytes = std::fs::read(&pooled[0]).unwrap();
    assert_ne!(pooled_bytes, input_bytes);
    for p in &pooled[1..] {
        assert_eq!(std::fs::read(p).unwrap(), pooled_bytes, "{}", p.display());
    }
    // Real rpm: the signature is the repository key's, and it verifies.
    let checked = rpm_k(&pooled[0], &key, false);
    assert!(
        checked.trim_end().ends_with("digests signatures OK"),
        "{checked}"
    );
    let verbose = rpm_k(&pooled[0], &key, true);
    let short_id = key.id[8..].to_ascii_lowercase();
    assert!(
        verbose.contains(&format!("key ID {short_id}: OK")),
        "{verbose} does not name {}",
        key.id
    );
    // The metadata describes the signed file, as createrepo_c would.
    for dir in YUM_DIRS {
        let ours = without_time(read_repo(&repo.join(dir)).primary);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            [&sha256(&pooled_bytes)],
            "{dir}"
        );
        assert_eq!(
            ours,
            createrepo_c_primary(&pooled[0], &tmp.path().join(dir)),
            "{dir}"
        );
    }

    // Real dnf, every check on, installs it from the served repository.
    let served = Served::start(&repo, &["--quiet"]);
    let gpgkey = format!("{}keys/kmfdemo.asc", served.url);
    let dnf = Dnf::new(&[YumRepo {
        id: "kmodfarm",
        baseurl: &format!("{}{}/", served.url, YUM_DIRS[1]),
        gpgkey: &gpgkey,
    }]);
    let downloads = tmp.path().join("downloads");
    let fetched = dnf.run(&[
        "install",
        "--downloadonly",
        &format!("--downloaddir={}", downloads.display()),
        "kmodfarm-host",
    ]);
    assert!(
        fetched.status.success(),
        "dnf --downloadonly: {}",
        said(&fetched)
    );
    assert_eq!(
        std::fs::read(downloads.join(HOST_RPM)).unwrap(),
        pooled_bytes
    );
    let installed = dnf.run(&["install", "kmodfarm-host"]);
    assert!(
        installed.status.success(),
        "dnf install: {}",
        said(&installed)
    );
    assert!(
        dnf.root().join("root/usr/bin/kmodfarm-host").is_file(),
        "{}",
        said(&installed)
    );
    // The control: the input as it was, in a repository with the same
    // signed metadata, is refused by the same dnf (so the install above
    // passed its signature check, not around it).
    let control = tmp.path().join("control");
    yum_repo_holding(&control.join("yum"), &input, &key);
    std::fs::create_dir_all(control.join("keys")).unwrap();
    std::fs::copy(&key.public, control.join("keys/kmfdemo.asc")).unwrap();
    let served_control = Served::start(&control, &["--quiet"]);
    let gpgkey = format!("{}keys/kmfdemo.asc", served_control.url);
    let refused = Dnf::new(&[YumRepo {
        id: "control",
        baseurl: &format!("{}yum/", served_control.url),
        gpgkey: &gpgkey,
    }])
    .run(&["install", "kmodfarm-host"]);
    assert!(
        !refused.status.success() && said(&refused).contains("not signed"),
        "dnf installed the unsigned input: {}",
        said(&refused)
    );

    // The same input again, at a later time: nothing is signed or written
    // again (a new signature would carry the new time).
    let before: Vec<(u64, i64)> = pooled
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| (m.ino(), m.mtime())).unwrap())
        .collect();
    let again = publish_ok(&repo, &key, &pk, epoch + 3600);
    assert_eq!(
        (&again["copied"], &again["signed_rpms"], &again["unchanged"]),
        (&Value::from(0), &Value::from(0), &Value::from(1)),
        "{again}"
    );
    for (p, was) in pooled.iter().zip(&before) {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.ino(), m.mtime()), *was, "{} was rewritten", p.display());
        assert_eq!(std::fs::read(p).unwrap(), pooled_bytes);
    }
    let state: Value =
        serde_json::from_slice(&std::fs::read(repo.join(".kmodfarm/state.json")).unwrap()).unwrap();
    assert_eq!(
        state["signed_rpms"][HOST_RPM]["sha256"],
        sha256(&input_bytes),
        "{state}"
    );
}

#[test]
fn an_rpm_signed_with_the_repository_key_is_published_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "kmfdemo");
    let pk = tmp.path().join("pk");
    let input = host_rpm(&pk, Some(&key));
    let repo = tmp.path().join("repo");
    let summary = publish_ok(&repo, &key, &pk, 1_900_000_000);
    assert_eq!(summary["signed_rpms"], 0, "{summary}");
    for dir in YUM_DIRS {
        assert_eq!(
            std::fs::read(repo.join(dir).join("Packages").join(HOST_RPM)).unwrap(),
            std::fs::read(&input).unwrap(),
            "{dir}"
        );
    }
}

#[test]
fn an_rpm_signed_with_another_key_is_refused_and_the_repository_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "kmfdemo");
    let stranger = keygen(tmp.path(), "someone-else");
    let repo = tmp.path().join("repo");
    host_rpm(&tmp.path().join("v1"), None);
    publish_ok(&repo, &key, &tmp.path().join("v1"), 1_900_000_000);
    let before = snapshot(&repo);

    let other = host_rpm(&tmp.path().join("other"), Some(&stranger));
    let out = publish(&repo, &key, &tmp.path().join("other"), 1_900_000_100, &[]);
    let text = said(&out);
    assert!(!out.status.success(), "{text}");
    for needed in [
        other.display().to_string(),
        stranger.id.clone(),
        key.id.clone(),
        "unsigned".to_string(),
    ] {
        assert!(text.contains(&needed), "{needed} not in: {text}");
    }
    assert_eq!(
        snapshot(&repo),
        before,
        "a refused publish changed the repository"
    );

    // A file the rpm crate cannot read as a package: named, nothing written.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let mut cut = std::fs::read(&other).unwrap();
    cut.truncate(200);
    std::fs::write(bad.join(HOST_RPM), cut).unwrap();
    let out = publish(&repo, &key, &bad, 1_900_000_200, &[]);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains(&bad.join(HOST_RPM).display().to_string()),
        "{}",
        said(&out)
    );
    assert_eq!(snapshot(&repo), before);
}
