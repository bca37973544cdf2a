//! Real dnf and zypper read the yum repository `kmodfarm publish` writes
//! (repodata and repomd.xml.asc signed by the project's own OpenPGP code,
//! with a key from `kmodfarm keygen`), served by `kmodfarm serve` on
//! 127.0.0.1, with every signature check on: `gpgcheck=1` and
//! `repo_gpgcheck=1` (dnf), `--gpgcheck` and the repomd.xml.asc check
//! (zypper). Tampered metadata and a repomd signed by another key are
//! refused. The packages are signed by `kmodfarm package --sign-key` with
//! the same key.
//!
//! The RHEL archive cannot be reached from here, so a second repository
//! beside ours holds `kmodfarm-test-rhel-base`, a stand-in made by the test
//! that provides what the packages require from the distro (dkms, gcc,
//! make, kernel-devel, /bin/sh and the kernel), so dnf can resolve an
//! install. gpg is used only to make the "someone else" key of the
//! refusal checks.

mod rpm_md_support;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_tests::dnf::{said, Dnf, YumRepo};
use kmodfarm_tests::{write_build_output, StandInBuild};
use rpm_md_support::*;
use serve_support::*;

const KERNEL: &str = "5.14.0-503.40.1.el9_5.x86_64";
const YUM_DIR: &str = "rpm/rhel-9/x86_64";
/// The stand-in distro repository, beside ours in the served directory.
const BASE_DIR: &str = "stand-in-rhel-base";

struct Key {
    secret: PathBuf,
    public: PathBuf,
}

/// The repository key, made by `kmodfarm keygen` (Ed25519).
fn kmodfarm_key(dir: &Path) -> Key {
    let out = dir.join("key");
    let made = Command::new(kmodfarm_tests::kmodfarm_bin())
        .args(["keygen", "--name", "kmfdemo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    Key {
        secret: out.join("kmfdemo.secret.asc"),
        public: out.join("kmfdemo.asc"),
    }
}

fn gpg(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
    cmd
}

/// A key the clients were never given: gpg's, to sign with gpg.
struct Stranger {
    home: tempfile::TempDir,
}

fn stranger() -> Stranger {
    let home = tempfile::tempdir().unwrap();
    run(gpg(home.path()).args([
        "--quick-gen-key",
        "someone else <else@example.org>",
        "rsa3072",
        "sign",
        "never",
    ]));
    Stranger { home }
}

fn sign_repomd_as_stranger(yum: &Path, key: &Stranger) {
    let sig = yum.join("repodata/repomd.xml.asc");
    let _ = std::fs::remove_file(&sig);
    run(gpg(key.home.path())
        .args([
            "--armor",
            "--detach-sign",
            "--digest-algo",
            "SHA512",
            "--output",
        ])
        .arg(&sig)
        .arg(yum.join("repodata/repomd.xml")));
}

/// The stand-in for the distro's own repository (see the top of the file),
/// signed with the same key so one `gpgkey=` serves both.
fn rhel_base(root: &Path, key: &Key) {
    use rpm::Dependency;
    let mut builder = rpm::PackageBuilder::new(
        "kmodfarm-test-rhel-base",
        "1.0",
        "MIT",
        "x86_64",
        "Test stand-in for the RHEL packages kmodfarm's packages require",
    );
    builder.using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32));
    for name in ["dkms", "gcc", "make", "kernel-devel", "/bin/sh"] {
        builder.provides(Dependency::any(name));
    }
    let (version, release) = KERNEL.split_once('-').unwrap();
    builder.provides(Dependency::eq(
        "kernel-uname-r",
        format!("{version}-{release}"),
    ));
    let signer = rpm::signature::pgp::Signer::from_asc_file(&key.secret).unwrap();
    let pkg = builder.build_and_sign(signer).unwrap();
    let dir = root.join(BASE_DIR);
    let href = "Packages/kmodfarm-test-rhel-base-1.0-1.x86_64.rpm";
    std::fs::create_dir_all(dir.join("Packages")).unwrap();
    pkg.write_file(dir.join(href)).unwrap();
    signed_yum_repo_of(&dir, href, &key.secret, 1_700_000_000);
}

/// The records `kmodfarm build` would have written beside the modules
/// `packages` made, so publish knows which distro each kmod package is for.
fn build_records(build: &Path) {
    let dir = build.join("rhel-9/x86_64");
    let kernels: Vec<kmodfarm_model::KernelRelease> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            kmodfarm_model::KernelRelease::parse(&e.unwrap().file_name().to_string_lossy()).unwrap()
        })
        .collect();
    let files: Vec<PathBuf> = kernels
        .iter()
        .map(|k| dir.join(k.as_str()).join("kmfdemo.ko.zst"))
        .collect();
    let builds: Vec<_> = kernels
        .iter()
        .zip(&files)
        .map(|(k, f)| (k, StandInBuild::Built(f)))
        .collect();
    write_build_output(build, "kmfdemo", "1.0.0", "rhel-9", "x86_64", &builds);
}

/// `kmodfarm package` output for rhel-9 (signed), published with `kmodfarm
/// publish`, the stand-in base repository beside it. Returns the served root.
fn publish(dir: &Path, key: &Key, metadata: &str) -> PathBuf {
    let made = packages(dir, &["--sign-key", key.secret.to_str().unwrap()]);
    let pk = dir.join("pk");
    std::fs::create_dir_all(&pk).unwrap();
    for file in made.iter().filter(|p| {
        let n = p.file_name().unwrap().to_str().unwrap();
        n.starts_with("kmfdemo-dkms") || n.starts_with("kmod-kmfdemo")
    }) {
        std::fs::copy(file, pk.join(file.file_name().unwrap())).unwrap();
    }
    build_records(&dir.join("build"));
    let root = dir.join("published");
    let out = Command::new(kmodfarm_tests::kmodfarm_bin())
        .arg("--manifest")
        .arg(kmodfarm_tests::module_dir().join("kmodfarm.toml"))
        .arg("publish")
        .arg("--repo")
        .arg(&root)
        .arg("--key")
        .arg(&key.secret)
        .arg("--packages")
        .arg(&pk)
        .arg("--builds")
        .arg(dir.join("build"))
        .args(["--rpm-metadata", metadata])
        .output()
        .unwrap();
    assert!(out.status.success(), "kmodfarm publish: {}", text(&out));
    rhel_base(&root, key);
    root
}

fn dnf(url: &str) -> Dnf {
    let key = format!("{url}keys/kmfdemo.asc");
    Dnf::new(&[
        YumRepo {
            id: "kmodfarm",
            baseurl: &format!("{url}{YUM_DIR}/"),
            gpgkey: &key,
        },
        YumRepo {
            id: "stand-in-base",
            baseurl: &format!("{url}{BASE_DIR}/"),
            gpgkey: &key,
        },
    ])
}

fn text(out: &std::process::Output) -> String {
    said(out)
}

#[test]
fn dnf_reads_the_signed_repository_and_downloads_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let key = kmodfarm_key(tmp.path());
    let root = publish(tmp.path(), &key, "gzip");
    let served = Served::start(&root, &["--quiet"]);

    let dnf = dnf(&served.url);
    let cache = dnf.run(&["makecache"]);
    assert!(cache.status.success(), "dnf makecache: {}", text(&cache));

    let listed = dnf.run(&["repoquery", "--available", "--qf", "%{name}-%{evr}.%{arch}"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", text(&listed));
    for want in [
        "kmfdemo-dkms-1.0.0-1.noarch".to_string(),
        format!("kmod-kmfdemo-{KERNEL}-1.0.0-1.x86_64"),
        "kmodfarm-test-rhel-base-1.0-1.x86_64".to_string(),
    ] {
        assert!(
            listed_text.lines().any(|l| l.trim() == want),
            "{want} not in {listed_text}"
        );
    }

    let downloads = tmp.path().join("downloads");
    let kmod = format!("kmod-kmfdemo-{KERNEL}");
    let install = dnf.run(&[
        "install",
        "--downloadonly",
        &format!("--downloaddir={}", downloads.display()),
        "kmfdemo-dkms",
        &kmod,
    ]);
    assert!(
        install.status.success(),
        "dnf install --downloadonly: {}",
        text(&install)
    );
    let mut got: Vec<String> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "kmfdemo-dkms-1.0.0-1.noarch.rpm".to_string(),
            format!("{kmod}-1.0.0-1.x86_64.rpm"),
            "kmodfarm-test-rhel-base-1.0-1.x86_64.rpm".to_string(),
        ]
    );
    for name in &got {
        let dir = if name.starts_with("kmodfarm-test") {
            BASE_DIR
        } else {
            YUM_DIR
        };
        assert_eq!(
            std::fs::read(downloads.join(name)).unwrap(),
            std::fs::read(root.join(dir).join("Packages").join(name)).unwrap(),
            "{name} arrived changed"
        );
    }
    // gpgcheck=1 can vouch for them: each is signed by the repository's key.
    let db = tempfile::tempdir().unwrap();
    let rpm = || {
        let mut cmd = Command::new("rpm");
        cmd.arg("--dbpath").arg(db.path());
        cmd
    };
    run(rpm().arg("--import").arg(&key.public));
    for name in &got {
        let checked = run(rpm().arg("-K").arg(downloads.join(name)));
        assert!(
            checked.trim_end().ends_with("digests signatures OK"),
            "{checked}"
        );
    }
}

#[test]
fn dnf_reads_zstd_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let key = kmodfarm_key(tmp.path());
    let root = publish(tmp.path(), &key, "zstd");
    let served = Served::start(&root, &["--quiet"]);
    let dnf = dnf(&served.url);
    let cache = dnf.run(&["makecache"]);
    assert!(
        cache.status.success(),
        "dnf makecache (zstd): {}",
        text(&cache)
    );
    let info = dnf.run(&["info", "--available", "kmfdemo-dkms"]);
    assert!(
        info.status.success() && String::from_utf8_lossy(&info.stdout).contains("1.0.0"),
        "{}",
        text(&info)
    );
}

/// Rewrites primary.xml.gz with `edit` applied; with `fix_repomd`, also
/// puts its new checksums into repomd.xml, as an attacker without the key
/// would, leaving the old signature.
fn tamper_primary(yum: &Path, edit: impl Fn(&str) -> String, fix_repomd: bool) {
    use sha2::{Digest, Sha256};
    let repomd_path = yum.join("repodata/repomd.xml");
    let repomd = std::fs::read_to_string(&repomd_path).unwrap();
    let doc = parse_xml(repomd.as_bytes());
    let data = doc
        .all("data")
        .find(|d| d.attrs["type"] == "primary")
        .unwrap();
    let href = data.child("location").unwrap().attrs["href"].clone();
    let old = std::fs::read(yum.join(&href)).unwrap();
    let xml = String::from_utf8(decompress(&href, &old)).unwrap();
    let changed = edit(&xml);
    assert_ne!(changed, xml, "the edit changed nothing");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, changed.as_bytes()).unwrap();
    let new = enc.finish().unwrap();
    std::fs::write(yum.join(&href), &new).unwrap();
    if fix_repomd {
        let hex = |b: &[u8]| hex::encode(Sha256::digest(b));
        let fixed = repomd
            .replace(&hex(&old), &hex(&new))
            .replace(&hex(xml.as_bytes()), &hex(changed.as_bytes()))
            .replace(
                &format!("<size>{}</size>", old.len()),
                &format!("<size>{}</size>", new.len()),
            )
            .replace(
                &format!("<open-size>{}</open-size>", xml.len()),
                &format!("<open-size>{}</open-size>", changed.len()),
            );
        std::fs::write(&repomd_path, fixed).unwrap();
    }
}

fn lower_the_requirement(xml: &str) -> String {
    // A tampered index that drops a dependency of the DKMS package.
    xml.replacen("<rpm:entry name=\"dkms\"/>", "", 1)
}

#[test]
fn dnf_refuses_tampered_metadata_and_a_foreign_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let key = kmodfarm_key(tmp.path());
    let root = publish(tmp.path(), &key, "gzip");
    let yum = root.join(YUM_DIR);
    let pristine = tmp.path().join("pristine");
    run(Command::new("cp").arg("-a").arg(&yum).arg(&pristine));
    let restore = || {
        std::fs::remove_dir_all(&yum).unwrap();
        run(Command::new("cp").arg("-a").arg(&pristine).arg(&yum));
    };
    let served = Served::start(&root, &["--quiet"]);

    // primary.xml changed, repomd.xml left alone: the checksum catches it.
    tamper_primary(&yum, lower_the_requirement, false);
    let out = dnf(&served.url).run(&["makecache"]);
    assert!(
        !out.status.success() && text(&out).contains("checksum doesn't match"),
        "dnf accepted a primary.xml that does not match repomd.xml: {}",
        text(&out)
    );

    // primary.xml and repomd.xml's checksums changed: the signature catches it.
    restore();
    tamper_primary(&yum, lower_the_requirement, true);
    let out = dnf(&served.url).run(&["makecache"]);
    assert!(
        !out.status.success(),
        "dnf accepted a repomd.xml whose signature no longer matches"
    );
    assert!(text(&out).contains("Bad GPG signature"), "{}", text(&out));

    // A well-formed repository signed by a key the client does not trust.
    restore();
    sign_repomd_as_stranger(&yum, &stranger());
    let out = dnf(&served.url).run(&["makecache"]);
    assert!(
        !out.status.success() && text(&out).contains("GPG signature verification error"),
        "dnf accepted a repomd.xml signed by another key: {}",
        text(&out)
    );

    // And the untouched repository still passes, so the refusals above
    // were about the tampering.
    restore();
    let out = dnf(&served.url).run(&["makecache"]);
    assert!(out.status.success(), "{}", text(&out));
}

fn zypper(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("zypper")
        .arg("--root")
        .arg(root)
        .args(["--non-interactive", "--gpg-auto-import-keys"])
        .args(args)
        .output()
        .expect("zypper runs")
}

#[test]
fn zypper_refreshes_the_signed_repository_with_gpg_checks_on() {
    let tmp = tempfile::tempdir().unwrap();
    let key = kmodfarm_key(tmp.path());
    let root = publish(tmp.path(), &key, "gzip");
    let served = Served::start(&root, &["--quiet"]);
    let url = format!("{}{YUM_DIR}/", served.url);

    let client = tmp.path().join("zypper-root");
    std::fs::create_dir_all(&client).unwrap();
    let add = zypper(&client, &["addrepo", "--gpgcheck", &url, "kmodfarm"]);
    assert!(add.status.success(), "{}", text(&add));
    let refresh = zypper(&client, &["refresh", "kmodfarm"]);
    assert!(
        refresh.status.success(),
        "zypper refresh: {}",
        text(&refresh)
    );
    // It checked repomd.xml.asc against the key published beside it.
    assert!(
        text(&refresh).contains("Key Fingerprint"),
        "{}",
        text(&refresh)
    );
    let search = zypper(&client, &["search", "kmfdemo"]);
    assert!(
        String::from_utf8_lossy(&search.stdout).contains("kmfdemo-dkms"),
        "{}",
        text(&search)
    );

    // Signed by another key: the refresh fails (the auto-import trusts the
    // published key once, not whatever key signs later).
    sign_repomd_as_stranger(&root.join(YUM_DIR), &stranger());
    let again = zypper(&client, &["refresh", "--force", "kmodfarm"]);
    assert!(
        !again.status.success() && text(&again).contains("signed with an unknown key"),
        "zypper accepted a foreign signature: {}",
        text(&again)
    );
}
