//! The publish as a library, on small packages made by the test: what it
//! writes (snapshots of the unsigned files), that it is reproducible, that
//! a second publish reads only what changed, that `--keep` prunes, and
//! that index.json and the lookup files match the committed JSON Schemas
//! (checked by Debian's python3-jsonschema, a real validator).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_model::manifest::Compression;
use kmodfarm_model::record::{
    index_schema, kernel_lookup_schema, Artifact, BuildOutcome, BuildRecord, SymbolSource,
    SCHEMA_VERSION,
};
use kmodfarm_model::KernelRelease;
mod synthetic_deb;
use synthetic_deb::synthetic_deb;

use kmodfarm_publish::inputs::{DebTarget, RpmTarget, Targets};
use kmodfarm_publish::page::PageDistro;
use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};
use kmodfarm_publish::{execute, prepare, Disk, PublishOptions, Request};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_900_000_000; // after any key made today

/// A minimal .deb (deb(5): ar with debian-binary, control.tar.gz,
/// data.tar.gz), the same bytes every time.
fn tiny_deb(dir: &Path, name: &str, version: &str, arch: &str) -> PathBuf {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@example.org>\nPriority: optional\nDescription: test package\n a test package made by publish_lib.rs\n"
    );
    let ar = synthetic_deb(&control, &[]);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}_{version}_{arch}.deb"));
    std::fs::write(&path, ar).unwrap();
    path
}

/// A minimal noarch .rpm (the rpm crate, as `kmodfarm package` uses it),
/// the same bytes every time.
fn tiny_rpm(dir: &Path, name: &str, version: &str) -> PathBuf {
    let config = rpm::BuildConfig::v4().source_date(rpm::Timestamp(1_700_000_000));
    let pkg = rpm::PackageBuilder::new(name, version, "GPL-2.0-only", "noarch", "test package")
        .using_config(config)
        .release("1")
        .build()
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}-{version}-1.noarch.rpm"));
    pkg.write_file(&path).unwrap();
    path
}

fn targets() -> Targets {
    Targets {
        module: "kmfdemo".into(),
        deb: vec![
            DebTarget {
                distro: "debian-12".into(),
                codename: "bookworm".into(),
                arch: "amd64".into(),
            },
            DebTarget {
                distro: "debian-13".into(),
                codename: "trixie".into(),
                arch: "amd64".into(),
            },
        ],
        rpm: vec![RpmTarget {
            distro: "rhel-9".into(),
            arch: "x86_64".into(),
        }],
        distros: vec!["debian-12".into(), "debian-13".into(), "rhel-9".into()],
        page: vec![
            page_distro("debian-12", "Debian 12", "apt", Some("bookworm")),
            page_distro("debian-13", "Debian 13", "apt", Some("trixie")),
            page_distro("rhel-9", "RHEL 9", "dnf", None),
        ],
    }
}

fn page_distro(id: &str, name: &str, manager: &str, codename: Option<&str>) -> PageDistro {
    PageDistro {
        id: id.into(),
        name: name.into(),
        package_manager: manager.into(),
        codename: codename.map(Into::into),
        yum_path: codename.is_none().then(|| format!("rpm/{id}/x86_64")),
    }
}

/// A build output with one built kernel, one failed and one out of range.
fn builds(dir: &Path, version: &str) -> PathBuf {
    let k = KernelRelease::parse("6.1.0-57-amd64").unwrap();
    let module = b"\x28\xb5\x2f\xfd stand-in module bytes";
    let rel = format!("debian-12/amd64/{k}/kmfdemo.ko.zst");
    std::fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&rel), module).unwrap();
    let record = |kernel: &str, outcome: BuildOutcome| BuildRecord {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        version: version.into(),
        distro: "debian-12".into(),
        arch: "amd64".into(),
        kernel_release: KernelRelease::parse(kernel).unwrap(),
        outcome,
        inputs: Vec::new(),
        symbol_source: SymbolSource::NotNeeded,
        compiler: Some("gcc-12".into()),
        toolchain_image: None,
        cache_key: "k".into(),
        duration_ms: 1,
        log: None,
        boot_test: None,
    };
    let records = vec![
        record(
            k.as_str(),
            BuildOutcome::Built {
                artifact: Artifact {
                    path: rel,
                    module: "kmfdemo".into(),
                    sha256: hex::encode(Sha256::digest(module)),
                    size: module.len() as u64,
                    compression: Compression::Zst,
                    signed: false,
                    vermagic: format!("{k} SMP preempt mod_unload modversions"),
                    module_version: "1.0.0".into(),
                },
            },
        ),
        record(
            "6.12.57+deb12-amd64",
            BuildOutcome::Failed {
                reason: "class_create: too many arguments".into(),
                log_tail: vec![],
            },
        ),
        record(
            "5.10.0-30-amd64",
            BuildOutcome::Skipped {
                reason: "below the manifest's minimum 5.15".into(),
            },
        ),
    ];
    std::fs::write(
        dir.join("records.json"),
        serde_json::to_vec_pretty(&records).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

struct Setup {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = generate("test", None).unwrap();
        let path = dir.path().join("key.asc");
        std::fs::write(&path, key.secret_armored).unwrap();
        let key = SigningKey::load(&path, &Passphrase::None).unwrap();
        Setup { dir, key }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// Publishes and returns the plan's (copied, unchanged, removed).
    fn publish(
        &self,
        repo: &str,
        packages: Option<&str>,
        builds: Option<&str>,
        keep: Option<usize>,
        now: u64,
    ) -> (usize, usize, usize) {
        let request = Request {
            repo: self.path(repo),
            packages: packages.map(|p| self.path(p)),
            builds: builds.map(|p| self.path(p)),
            options: PublishOptions {
                keep,
                valid_for: Some(7 * 86_400),
                ..PublishOptions::at(now)
            },
            // Not a contention test: other tests in this process spawn
            // programs, and a child between fork and exec briefly holds a
            // copy of every descriptor, the lock's included.
            wait: true,
        };
        let prepared = prepare(&request, &targets(), &self.key, false).unwrap();
        let plan = &prepared.plan;
        execute(plan, &mut Disk, &mut |_| {}).unwrap();
        (plan.copy.len(), plan.unchanged, plan.remove.len())
    }
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn text(repo: &Path, p: &str) -> String {
    std::fs::read_to_string(repo.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn the_unsigned_files_are_what_apt_dnf_and_the_installer_expect() {
    let s = Setup::new();
    tiny_deb(&s.path("pk"), "kmfdemo-dkms", "1.0.0-1", "all");
    tiny_rpm(&s.path("pk"), "kmfdemo-dkms", "1.0.0");
    builds(&s.path("builds"), "1.0.0");
    tiny_deb(
        &s.path("pk"),
        "kmfdemo-modules-6.1.0-57-amd64",
        "1.0.0-1",
        "amd64",
    );
    s.publish("repo", Some("pk"), Some("builds"), None, NOW);
    let repo = s.path("repo");
    insta::assert_snapshot!(
        "release_bookworm",
        text(&repo, "deb/dists/bookworm/Release")
    );
    insta::assert_snapshot!(
        "packages_bookworm",
        text(&repo, "deb/dists/bookworm/main/binary-amd64/Packages")
    );
    // The prebuilt package is Debian 12's only; the -dkms one is everywhere.
    insta::assert_snapshot!(
        "packages_trixie",
        text(&repo, "deb/dists/trixie/main/binary-amd64/Packages")
    );
    // The -dkms rpm went in unsigned: the pool holds a copy signed by the
    // repository's key (made for this test, so its digest is not fixed),
    // and the index names that copy.
    let pooled_rpm =
        std::fs::read(repo.join("rpm/rhel-9/x86_64/Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm"))
            .unwrap();
    let pooled_sha = hex::encode(Sha256::digest(&pooled_rpm));
    let index_text = text(&repo, "index.json");
    assert!(index_text.contains(&pooled_sha), "{index_text}");
    insta::assert_snapshot!(
        "index_json",
        index_text.replace(&pooled_sha, "[sha256 of the signed .rpm in the pool]")
    );
    insta::assert_snapshot!(
        "lookup_failed",
        text(&repo, "prebuilt/debian-12/amd64/6.12.57+deb12-amd64.json")
    );
    // The prebuilt module is where its entry says, with its bytes.
    let index: serde_json::Value = serde_json::from_str(&text(&repo, "index.json")).unwrap();
    let entry = &index["entries"][0];
    let bytes = std::fs::read(repo.join(entry["path"].as_str().unwrap())).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        entry["sha256"].as_str().unwrap()
    );
    assert!(repo.join(entry["package_path"].as_str().unwrap()).is_file());
    // The yum repository holds the -dkms rpm, and the index names it as
    // RHEL 9's DKMS route.
    let yum = "rpm/rhel-9/x86_64";
    assert!(repo
        .join(format!("{yum}/Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm"))
        .is_file());
    let rhel = index["dkms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["distro"] == "rhel-9")
        .expect("a DKMS route for rhel-9");
    assert_eq!(
        rhel["package_path"],
        format!("{yum}/Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm")
    );
    let repomd = text(&repo, &format!("{yum}/repodata/repomd.xml"));
    let primary = repomd
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .find(|h| h.contains("-primary."))
        .expect("repomd.xml names primary");
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(
            std::fs::File::open(repo.join(yum).join(primary)).unwrap(),
        ),
        &mut xml,
    )
    .unwrap();
    assert!(
        xml.contains("<name>kmfdemo-dkms</name>")
            && xml.contains("href=\"Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm\""),
        "{xml}"
    );
    // The matrix page is there, one row per kernel the index knows.
    let page = text(&repo, "index.html");
    for k in ["6.1.0-57-amd64", "6.12.57+deb12-amd64", "5.10.0-30-amd64"] {
        assert!(
            page.contains(&format!("data-kernel=\"{k}\"")),
            "{k} not on the page"
        );
    }
    // Every signature verifies under the published key.
    let keyring = repo.join("keys/kmfdemo.gpg");
    for (sig, data) in [
        ("index.json.asc", Some("index.json")),
        (
            "prebuilt/debian-12/amd64/6.1.0-57-amd64.json.asc",
            Some("prebuilt/debian-12/amd64/6.1.0-57-amd64.json"),
        ),
        (
            "deb/dists/trixie/Release.gpg",
            Some("deb/dists/trixie/Release"),
        ),
        ("deb/dists/trixie/InRelease", None),
        (
            "rpm/rhel-9/x86_64/repodata/repomd.xml.asc",
            Some("rpm/rhel-9/x86_64/repodata/repomd.xml"),
        ),
    ] {
        let mut cmd = Command::new("gpgv");
        cmd.arg("--keyring").arg(&keyring).arg(repo.join(sig));
        if let Some(d) = data {
            cmd.arg(repo.join(d));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{sig}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn same_inputs_and_time_give_the_same_repository() {
    let s = Setup::new();
    tiny_deb(&s.path("pk"), "kmfdemo-dkms", "1.0.0-1", "all");
    builds(&s.path("builds"), "1.0.0");
    s.publish("a", Some("pk"), Some("builds"), None, NOW);
    s.publish("b", Some("pk"), Some("builds"), None, NOW);
    assert_eq!(tree(&s.path("a")), tree(&s.path("b")));
    s.publish("c", Some("pk"), Some("builds"), None, NOW + 1);
    assert_ne!(
        tree(&s.path("a")),
        tree(&s.path("c")),
        "the time is in the Release"
    );
}

#[test]
fn a_second_publish_reads_only_what_changed_and_keep_prunes_old_versions() {
    let s = Setup::new();
    tiny_deb(&s.path("v1"), "kmfdemo-dkms", "1.0.0-1", "all");
    builds(&s.path("b1"), "1.0.0");
    assert_eq!(
        s.publish("repo", Some("v1"), Some("b1"), None, NOW),
        (2, 0, 0)
    );
    // The same inputs again: nothing copied, the serial grows.
    assert_eq!(
        s.publish("repo", Some("v1"), Some("b1"), None, NOW + 1),
        (0, 2, 0)
    );
    let repo = s.path("repo");
    let index: serde_json::Value = serde_json::from_str(&text(&repo, "index.json")).unwrap();
    assert_eq!(index["serial"], 2);

    // A new version with --keep 1: the old one leaves pool and index.
    tiny_deb(&s.path("v2"), "kmfdemo-dkms", "1.0.1-1", "all");
    builds(&s.path("b2"), "1.0.1");
    let (copied, _, removed) = s.publish("repo", Some("v2"), Some("b2"), Some(1), NOW + 2);
    assert_eq!(copied, 2);
    assert!(removed >= 2, "removed {removed}");
    let packages = text(&repo, "deb/dists/bookworm/main/binary-amd64/Packages");
    assert!(
        packages.contains("Version: 1.0.1-1") && !packages.contains("Version: 1.0.0-1"),
        "{packages}"
    );
    assert!(!repo
        .join("deb/pool/main/k/kmfdemo/kmfdemo-dkms_1.0.0-1_all.deb")
        .exists());
    let index: serde_json::Value = serde_json::from_str(&text(&repo, "index.json")).unwrap();
    assert_eq!(index["version"], "1.0.1");
    assert_eq!(index["entries"].as_array().unwrap().len(), 1);
    assert_eq!(index["entries"][0]["version"], "1.0.1");
    assert!(!repo
        .join("prebuilt/debian-12/amd64/6.1.0-57-amd64/kmfdemo-1.0.0.ko.zst")
        .exists());
    // A pool file that went missing is noticed by its size and copied again.
    std::fs::remove_file(repo.join("deb/pool/main/k/kmfdemo/kmfdemo-dkms_1.0.1-1_all.deb"))
        .unwrap();
    assert_eq!(
        s.publish("repo", Some("v2"), Some("b2"), Some(1), NOW + 3)
            .0,
        1
    );
    assert!(repo
        .join("deb/pool/main/k/kmfdemo/kmfdemo-dkms_1.0.1-1_all.deb")
        .is_file());
}

/// Rewrites a repository's state as kmodfarm's format 1 wrote it: every
/// package's whole record in the state, the pool's files listed, no record
/// or chunk files.
fn downgrade_to_format_1(repo: &Path) {
    use serde_json::{json, Value};
    let state_path = repo.join(".kmodfarm/state.json");
    let state: Value = serde_json::from_str(&text(repo, ".kmodfarm/state.json")).unwrap();
    let mut records: BTreeMap<String, Value> = BTreeMap::new();
    for entry in std::fs::read_dir(repo.join(".kmodfarm/records")).unwrap() {
        let file: Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for d in file["debs"].as_array().into_iter().flatten() {
            records.insert(d["filename"].as_str().unwrap().into(), d.clone());
        }
        for r in file["rpms"].as_array().into_iter().flatten() {
            records.insert(r["href"].as_str().unwrap().into(), r.clone());
        }
    }
    let mut files = state["files"].as_object().unwrap().clone();
    let fact = |size: &Value, sha: &Value| json!({"size": size, "sha256": sha});
    let debs: Vec<Value> = state["debs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let filename = row[3].as_str().unwrap();
            files.insert(format!("deb/{filename}"), fact(&row[4], &row[5]));
            json!({"package": records[filename], "codenames": row[6]})
        })
        .collect();
    let rpms: Vec<Value> = state["rpms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let href = row[5].as_str().unwrap();
            files.insert(format!("rpm/rhel-9/x86_64/{href}"), fact(&row[6], &row[7]));
            json!({"package": records[href], "distros": row[9]})
        })
        .collect();
    for k in state["kernels"].as_array().unwrap() {
        let entry = &k["status"]["entry"];
        if let Some(path) = entry["path"].as_str() {
            files.insert(path.into(), fact(&entry["size"], &entry["sha256"]));
        }
    }
    let state = json!({
        "format": 1,
        "module": state["module"],
        "serial": state["serial"],
        "debs": debs,
        "rpms": rpms,
        "kernels": state["kernels"],
        "files": files,
        "retained": state["retained"],
    });
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::remove_dir_all(repo.join(".kmodfarm/records")).unwrap();
    std::fs::remove_dir_all(repo.join(".kmodfarm/chunks")).unwrap();
}

#[test]
fn a_repository_of_state_format_1_is_taken_over_by_the_next_publish() {
    let s = Setup::new();
    tiny_deb(&s.path("v1"), "kmfdemo-dkms", "1.0.0-1", "all");
    tiny_rpm(&s.path("v1"), "kmfdemo-dkms", "1.0.0");
    builds(&s.path("b1"), "1.0.0");
    s.publish("repo", Some("v1"), Some("b1"), None, NOW);
    let repo = s.path("repo");
    downgrade_to_format_1(&repo);

    // A new version beside the old: nothing of the old is copied again or
    // lost, and the state is format 2 with its record files.
    tiny_deb(&s.path("v2"), "kmfdemo-dkms", "1.0.1-1", "all");
    tiny_rpm(&s.path("v2"), "kmfdemo-dkms", "1.0.1");
    let (copied, _, removed) = s.publish("repo", Some("v2"), Some("b1"), None, NOW + 1);
    assert_eq!((copied, removed), (2, 0), "copied, removed");
    let packages = text(&repo, "deb/dists/trixie/main/binary-amd64/Packages");
    assert!(
        packages.contains("Version: 1.0.0-1") && packages.contains("Version: 1.0.1-1"),
        "{packages}"
    );
    // The primary repomd.xml names (the previous one is still beside it).
    let repomd = text(&repo, "rpm/rhel-9/x86_64/repodata/repomd.xml");
    let href = repomd
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|href| href.ends_with("-primary.xml.gz"))
        .unwrap();
    let primary = repo.join("rpm/rhel-9/x86_64").join(href);
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(primary).unwrap()),
        &mut xml,
    )
    .unwrap();
    assert!(
        xml.contains("ver=\"1.0.0\"") && xml.contains("ver=\"1.0.1\""),
        "{xml}"
    );
    assert!(repo
        .join("deb/pool/main/k/kmfdemo/kmfdemo-dkms_1.0.0-1_all.deb")
        .is_file());
    assert!(repo
        .join("prebuilt/debian-12/amd64/6.1.0-57-amd64/kmfdemo-1.0.0.ko.zst")
        .is_file());
    let state: serde_json::Value =
        serde_json::from_str(&text(&repo, ".kmodfarm/state.json")).unwrap();
    assert_eq!(state["format"], 2);
    assert!(
        std::fs::read_dir(repo.join(".kmodfarm/records"))
            .unwrap()
            .count()
            > 0
    );
    // And the publish after it reads the new format: nothing to copy.
    let (copied, unchanged, _) = s.publish("repo", Some("v2"), Some("b1"), None, NOW + 2);
    assert_eq!((copied, unchanged), (0, 3));
}

fn schema_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(name)
}

/// The pkgid (sha256) primary.xml gives for each package of rhel-9's yum
/// repository.
fn primary_checksums(repo: &Path) -> Vec<String> {
    let yum = repo.join("rpm/rhel-9/x86_64");
    let repomd = std::fs::read_to_string(yum.join("repodata/repomd.xml")).unwrap();
    let href = repomd
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|href| href.ends_with("-primary.xml.gz"))
        .unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(yum.join(href)).unwrap()),
        &mut xml,
    )
    .unwrap();
    xml.split("<checksum type=\"sha256\" pkgid=\"YES\">")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_string())
        .collect()
}

/// The .rpm at `path` carries a header signature by `key` that verifies.
fn signed_by(path: &Path, key: &SigningKey) -> bool {
    let verifier =
        rpm::signature::pgp::Verifier::from_asc(&key.public_key_armored().unwrap()).unwrap();
    rpm::Package::open(path)
        .unwrap()
        .verify_signature(verifier)
        .is_ok()
}

#[test]
fn a_lost_signed_copy_and_an_unsigned_one_an_older_publish_left_are_signed_again() {
    let s = Setup::new();
    let input = tiny_rpm(&s.path("pk"), "kmfdemo-dkms", "1.0.0");
    let input_bytes = std::fs::read(&input).unwrap();
    let repo = s.path("repo");
    let pool = repo.join("rpm/rhel-9/x86_64/Packages/kmfdemo-dkms-1.0.0-1.noarch.rpm");
    let sha = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    s.publish("repo", Some("pk"), None, None, NOW);
    let first = std::fs::read(&pool).unwrap();
    assert!(signed_by(&pool, &s.key));
    assert!(!signed_by(&input, &s.key), "the input was signed in place");
    assert_eq!(primary_checksums(&repo), [sha(&first)]);

    // The same input later: neither signed nor copied again.
    let (copied, unchanged, _) = s.publish("repo", Some("pk"), None, None, NOW + 10);
    assert_eq!((copied, unchanged), (0, 1));
    assert_eq!(std::fs::read(&pool).unwrap(), first);

    // The copy cut short: signed again, at this publish's time, and the
    // metadata describes the new copy.
    std::fs::write(&pool, &first[..first.len() / 2]).unwrap();
    let (copied, _, _) = s.publish("repo", Some("pk"), None, None, NOW + 20);
    assert_eq!(copied, 1);
    let second = std::fs::read(&pool).unwrap();
    assert_ne!(second, first, "the signature carries the publish's time");
    assert!(signed_by(&pool, &s.key));
    assert_eq!(primary_checksums(&repo), [sha(&second)]);

    // A repository an older kmodfarm published: the unsigned input itself
    // in the pool, its state row naming it, no record of signing.
    std::fs::write(&pool, &input_bytes).unwrap();
    let state_path = repo.join(".kmodfarm/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["rpms"][0][6] = input_bytes.len().into();
    state["rpms"][0][7] = sha(&input_bytes).into();
    state.as_object_mut().unwrap().remove("signed_rpms");
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let (copied, _, _) = s.publish("repo", Some("pk"), None, None, NOW + 30);
    assert_eq!(copied, 1);
    assert!(signed_by(&pool, &s.key));
    let third = std::fs::read(&pool).unwrap();
    assert_eq!(primary_checksums(&repo), [sha(&third)]);
    assert_eq!(std::fs::read(&input).unwrap(), input_bytes);
}

#[test]
fn committed_schemas_are_the_model_types_and_real_output_validates() {
    for (name, schema) in [
        ("index.schema.json", index_schema()),
        ("kernel-lookup.schema.json", kernel_lookup_schema()),
    ] {
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = schema_file(name);
        if std::env::var_os("KMODFARM_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from the model types: rerun with KMODFARM_UPDATE_SCHEMAS=1 and commit it",
            path.display()
        );
    }

    let s = Setup::new();
    tiny_deb(&s.path("pk"), "kmfdemo-dkms", "1.0.0-1", "all");
    builds(&s.path("builds"), "1.0.0");
    s.publish("repo", Some("pk"), Some("builds"), None, NOW);
    let repo = s.path("repo");
    let mut checks = vec![("index.schema.json", repo.join("index.json"))];
    for k in ["6.1.0-57-amd64", "6.12.57+deb12-amd64", "5.10.0-30-amd64"] {
        checks.push((
            "kernel-lookup.schema.json",
            repo.join(format!("prebuilt/debian-12/amd64/{k}.json")),
        ));
    }
    for (schema, doc) in checks {
        let validate = |doc: &Path| {
            Command::new("/usr/bin/python3")
                .args([
                    "-c",
                    "import json, sys, jsonschema\n\
                     jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))",
                ])
                .arg(schema_file(schema))
                .arg(doc)
                .output()
                .unwrap()
        };
        let out = validate(&doc);
        assert!(
            out.status.success(),
            "{} against {schema}: {}",
            doc.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The validator does refuse: a lookup without its serial is invalid.
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
        value.as_object_mut().unwrap().remove("serial");
        let broken = s.path("broken.json");
        std::fs::write(&broken, value.to_string()).unwrap();
        assert!(
            !validate(&broken).status.success(),
            "{schema} accepted a file without serial"
        );
    }
}
