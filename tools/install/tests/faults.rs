//! Every repository fault the installer must survive, against a repository
//! served on 127.0.0.1 and kmodfarm-host run in a Debian 12 root: each gives
//! its own clear message and a non-zero exit, and leaves the root's files as
//! they were (only the serial of a correctly signed, fresh lookup file may
//! be remembered).

mod common;

use common::{configure, difference, exists, kmodfarm_host, listing};
use kmodfarm_model::record::KernelStatus;
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures;
use kmodfarm_tests::stand_in_repo::{GpgKey, RepoServer, StandInRepo};
use kmodfarm_tests::Sandbox;

const SERIAL: &str = "/var/lib/kmfdemo/last-serial";

/// What a failed install may change: the state directory (which holds only
/// the remembered serial; checked separately) and apt's package lists
/// (refreshing them installs nothing).
const MAY_CHANGE: &[&str] = &["/var/lib/kmfdemo", "/var/lib/apt/lists", "/var/cache/apt"];

fn key() -> &'static GpgKey {
    static KEY: std::sync::OnceLock<GpgKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| GpgKey::generate("kmodfarm test repository <repo@example.org>").unwrap())
}

/// A repository whose lookup file for `kernel` says `status`, or offers a
/// prebuilt module when `None` (arbitrary bytes: every fault stops before
/// anything is placed); `setup` changes the publisher's settings first.
fn repository(
    kernel: &KernelRelease,
    status: Option<KernelStatus>,
    setup: impl FnOnce(&mut StandInRepo),
) -> (StandInRepo, RepoServer) {
    let mut repo = StandInRepo::new("kmfdemo", "debian-12", "amd64", "bookworm").unwrap();
    setup(&mut repo);
    let files = tempfile::tempdir().unwrap();
    let ko = files.path().join("kmfdemo.ko.zst");
    std::fs::write(&ko, vec![0x28u8; 4096]).unwrap();
    let deb = files.path().join("kmfdemo-modules.deb");
    std::fs::write(&deb, b"stand-in").unwrap();
    let status = match status {
        Some(status) => status,
        None => KernelStatus::Prebuilt {
            entry: repo.entry(kernel, &ko, &deb).unwrap(),
        },
    };
    repo.publish_lookup(key(), kernel, status, None).unwrap();
    let server = RepoServer::serve(repo.path()).unwrap();
    (repo, server)
}

/// Runs `install --kernel K --no-load` against `url` in a fresh sandbox,
/// after `prepare`; returns what it said. Asserts the failure contract.
fn install_fails(
    url: &str,
    kernel: &str,
    prepare: impl FnOnce(&Sandbox),
    extra: &[&str],
) -> String {
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    configure(&mut sandbox, url, &key().public);
    prepare(&sandbox);
    let before = listing(&sandbox, MAY_CHANGE);
    let mut args = vec!["install", "--kernel", kernel, "--no-load"];
    args.extend_from_slice(extra);
    let out = kmodfarm_host(&sandbox, &args).expect_failure();
    assert_eq!(out.status.code(), Some(1), "{out}");
    let after = listing(&sandbox, MAY_CHANGE);
    assert!(
        difference(&before, &after).is_empty(),
        "the failed install changed files:\n{}\n{out}",
        difference(&before, &after).join("\n")
    );
    assert!(!exists(
        &sandbox,
        &format!("/lib/modules/{kernel}/updates/kmfdemo.ko.zst")
    ));
    let state = sandbox.sh_ok("cd /var/lib && find kmfdemo -type f 2>/dev/null || true");
    assert!(
        state.stdout.lines().all(|l| l == "kmfdemo/last-serial"),
        "state left behind:\n{}",
        state.stdout
    );
    out.stderr
}

fn k612() -> KernelRelease {
    fixtures::bookworm().k612.clone()
}

#[test]
fn server_down() {
    let said = install_fails(&RepoServer::down(), k612().as_str(), |_| {}, &[]);
    assert!(
        said.contains("cannot reach the repository at http://127.0.0.1:"),
        "{said}"
    );
    assert!(said.contains("after 4 attempts"), "{said}");
}

#[test]
fn truncated_download() {
    let kernel = k612();
    let (_repo, server) = repository(&kernel, None, |_| {});
    // The repository's copy lost its second half after publishing.
    let path = format!(
        "{}/prebuilt/debian-12/amd64/{kernel}/kmfdemo.ko.zst",
        _repo.path().display()
    );
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() / 2]).unwrap();
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &[]);
    assert!(
        said.contains("download truncated: got 2048 of 4096 bytes"),
        "{said}"
    );
}

#[test]
fn wrong_checksum() {
    let kernel = k612();
    let (repo, server) = repository(&kernel, None, |_| {});
    // Same size, other bytes: only the digest can tell.
    let path = format!(
        "{}/prebuilt/debian-12/amd64/{kernel}/kmfdemo.ko.zst",
        repo.path().display()
    );
    std::fs::write(&path, vec![0x29u8; 4096]).unwrap();
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &[]);
    assert!(said.contains("checksum mismatch"), "{said}");
}

#[test]
fn bad_index_signature() {
    let kernel = k612();
    let (repo, server) = repository(&kernel, None, |_| {});
    let lookup = repo
        .path()
        .join(format!("prebuilt/debian-12/amd64/{kernel}.json"));
    let text = std::fs::read_to_string(&lookup)
        .unwrap()
        .replace("\"serial\": 1", "\"serial\": 9");
    std::fs::write(&lookup, text).unwrap();
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &[]);
    assert!(said.contains("bad signature"), "{said}");
}

#[test]
fn index_signed_by_another_key() {
    let kernel = k612();
    let (repo, server) = repository(&kernel, None, |_| {});
    let other = GpgKey::generate("someone else <other@example.org>").unwrap();
    other
        .sign_detached(
            &repo
                .path()
                .join(format!("prebuilt/debian-12/amd64/{kernel}.json")),
        )
        .unwrap();
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &[]);
    assert!(said.contains("signed by another key"), "{said}");
    assert!(said.contains(&other.fingerprint), "{said}");
}

#[test]
fn expired_index() {
    let kernel = k612();
    let (_repo, server) = repository(&kernel, None, |repo| repo.expires = Some(1_700_000_100));
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &[]);
    assert!(said.contains("the index expired at 1700000100"), "{said}");
}

#[test]
fn rolled_back_index() {
    let kernel = k612();
    let (_repo, server) = repository(&kernel, None, |repo| repo.serial = 3);
    let said = install_fails(
        &server.url,
        kernel.as_str(),
        |sandbox| sandbox.write_file(SERIAL, b"7\n", 0o644).unwrap(),
        &[],
    );
    assert!(
        said.contains("rolled-back index: serial 3 is lower than 7"),
        "{said}"
    );
}

#[test]
fn kernel_outside_the_range() {
    // Refused before the repository is asked: the server is down.
    let said = install_fails(
        &RepoServer::down(),
        "6.15.2-amd64",
        |_| {},
        &["--enable-dkms"],
    );
    assert!(
        said.contains("6.15.2-amd64 is outside the supported range 5.15 to 6.14"),
        "{said}"
    );
    // And the matrix's own verdict, for a kernel the range admits.
    let kernel = k612();
    let (_repo, server) = repository(
        &kernel,
        Some(KernelStatus::OutOfRange {
            reason: "excluded by the matrix".into(),
        }),
        |_| {},
    );
    let said = install_fails(&server.url, kernel.as_str(), |_| {}, &["--enable-dkms"]);
    assert!(said.contains("excluded by the matrix"), "{said}");
}

#[test]
fn headers_not_in_the_archive() {
    // A kernel whose image is installed (a locally built one, say) but
    // whose headers Debian's archive does not have.
    let kernel = "6.1.0-999-amd64";
    let said = install_fails(
        &RepoServer::serve(
            StandInRepo::new("kmfdemo", "debian-12", "amd64", "bookworm")
                .unwrap()
                .path(),
        )
        .unwrap()
        .url,
        kernel,
        |sandbox| {
            sandbox
                .write_file(&format!("/boot/vmlinuz-{kernel}"), b"stand-in image", 0o644)
                .unwrap();
        },
        &["--enable-dkms"],
    );
    assert!(
        said.contains(&format!(
            "cannot install the build tools and the headers of {kernel}"
        )),
        "{said}"
    );
    assert!(said.contains(&format!("linux-headers-{kernel}")), "{said}");
}
