//! Lists of more than 512 packages are made of buckets: Packages.gz of
//! gzip members, Packages.xz of one xz stream assembled from cached blocks,
//! primary/filelists/other of gzip members or zstd frames. Real apt (whose
//! .xz reader stops at the end of the first stream, so several streams
//! would silently lose packages) and real dnf must see every package, after
//! a full publish and after an incremental one that reuses all buckets but
//! one.

mod serve_support;
#[path = "synthetic_deb/mod.rs"]
mod synthetic_deb;

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_publish::rpm_md::MetadataCompression;
use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};
use kmodfarm_publish::{execute, prepare, Disk, PublishOptions, Request};
use kmodfarm_tests::dnf::{said, Dnf, YumRepo};
use serve_support::Served;
use synthetic_deb::{kernel_deb_name, kernel_rpm_name, one_of_each, write_packages};

/// Above the one-bucket limit (512), so the lists are bucketed.
const KERNELS: usize = 700;

fn publish(repo: &Path, packages: &Path, key: &SigningKey, compression: MetadataCompression) {
    let request = Request {
        repo: repo.to_path_buf(),
        packages: Some(packages.to_path_buf()),
        builds: None,
        options: PublishOptions {
            rpm_compression: compression,
            ..PublishOptions::at(1_900_000_000)
        },
        wait: false,
    };
    let prepared = prepare(&request, &one_of_each(), key, false).unwrap();
    execute(&prepared.plan, &mut Disk, &mut |_| {}).unwrap();
}

/// This machine's apt, in a directory of its own (sources, lists, cache,
/// an empty dpkg status): reads the served repository over HTTP with the
/// key given by `signed-by`, as a host would.
struct Apt {
    dir: tempfile::TempDir,
}

impl Apt {
    fn new(repo: &Path, url: &str) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "etc/apt/sources.list.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("var/lib/dpkg/status"), "").unwrap();
        std::fs::write(
            d.join("etc/apt/sources.list.d/kmfdemo.sources"),
            format!(
                "Types: deb\nURIs: {url}deb\nSuites: bookworm\nComponents: main\nArchitectures: amd64\nSigned-By: {}/keys/kmfdemo.gpg\n",
                repo.display()
            ),
        )
        .unwrap();
        Apt { dir }
    }

    fn command(&self, tool: &str, compression_first: &str) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(tool);
        cmd.arg(format!("-oDir={}", d.display()))
            .arg(format!(
                "-oDir::State::status={}/var/lib/dpkg/status",
                d.display()
            ))
            .arg("-oDir::Etc::sourcelist=/dev/null")
            .arg("-oDebug::NoLocking=1")
            // The download methods run as _apt, which cannot write into a
            // private temporary directory.
            .arg("-oAPT::Sandbox::User=root")
            .arg(format!(
                "-oAcquire::CompressionTypes::Order::={compression_first}"
            ));
        cmd
    }

    /// `apt-get update`, then the names of every package apt knows of.
    fn update_and_list(&self, compression_first: &str) -> Vec<String> {
        let lists = self.dir.path().join("var/lib/apt/lists");
        std::fs::remove_dir_all(&lists).unwrap();
        std::fs::create_dir_all(lists.join("partial")).unwrap();
        let out = self
            .command("apt-get", compression_first)
            .arg("update")
            .output()
            .unwrap();
        let text = said(&out);
        assert!(out.status.success(), "apt-get update: {text}");
        assert!(
            !text.contains("W:") && !text.contains("E:"),
            "apt-get update warned: {text}"
        );
        let out = self
            .command("apt-cache", compression_first)
            .arg("dumpavail")
            .output()
            .unwrap();
        assert!(out.status.success(), "apt-cache dumpavail: {}", said(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("Package: "))
            .map(str::to_string)
            .collect()
    }

    /// The list file `apt-get update` would fetch.
    fn first_list_uri(&self, compression_first: &str) -> String {
        let out = self
            .command("apt-get", compression_first)
            .args(["update", "--print-uris"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", said(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.contains("binary-amd64"))
            .unwrap_or_else(|| panic!("no list URI in {text}"))
            .to_string()
    }
}

fn expected_debs(kernels: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..kernels).map(kernel_deb_name).collect();
    names.push("kmfdemo-dkms".into());
    names.sort();
    names
}

fn apt_sees_every_package(repo: &Path, url: &str, kernels: usize) {
    let apt = Apt::new(repo, url);
    for compression in ["xz", "gz"] {
        // apt really takes that list (it then fetches it by hash).
        let uri = apt.first_list_uri(compression);
        assert!(
            uri.contains(&format!("binary-amd64/Packages.{compression}'")),
            "apt fetches {uri}, not Packages.{compression}"
        );
        let mut names = apt.update_and_list(compression);
        names.sort();
        assert_eq!(
            names.len(),
            kernels + 1,
            "apt read {} packages from Packages.{compression}",
            names.len()
        );
        assert_eq!(names, expected_debs(kernels), "from Packages.{compression}");
    }
}

fn dnf_sees_every_package(url: &str, kernels: usize) {
    let key = format!("{url}keys/kmfdemo.asc");
    let dnf = Dnf::new(&[YumRepo {
        id: "kmodfarm",
        baseurl: &format!("{url}rpm/rhel-9/x86_64/"),
        gpgkey: &key,
    }]);
    let made = dnf.run(&["makecache"]);
    assert!(made.status.success(), "dnf makecache: {}", said(&made));
    let listed = dnf.run(&["repoquery", "-q", "--available", "--qf", "%{name}"]);
    assert!(listed.status.success(), "dnf repoquery: {}", said(&listed));
    let mut names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    let mut expected: Vec<String> = (0..kernels).map(kernel_rpm_name).collect();
    expected.push("kmfdemo-dkms".into());
    expected.sort();
    assert_eq!(
        names.len(),
        kernels + 1,
        "dnf lists {} packages",
        names.len()
    );
    assert_eq!(names, expected);
    // filelists too: dnf answers which package owns a file from it.
    let last = kernel_rpm_name(kernels - 1);
    let owner = dnf.run(&[
        "repoquery",
        "-q",
        "--qf",
        "%{name}",
        "--whatprovides",
        &format!("/usr/share/bench/{last}"),
    ]);
    assert!(
        String::from_utf8_lossy(&owner.stdout).contains(&last),
        "dnf does not find /usr/share/bench/{last} in filelists: {}",
        said(&owner)
    );
}

fn key(dir: &Path) -> SigningKey {
    let file = dir.join("key.asc");
    std::fs::write(&file, generate("kmfdemo", None).unwrap().secret_armored).unwrap();
    SigningKey::load(&file, &Passphrase::None).unwrap()
}

fn packages(dir: &Path) -> PathBuf {
    let pk = dir.join("pk");
    write_packages(&pk, 0..KERNELS, true);
    pk
}

/// The incremental publish of the tests: the packages of kernel KERNELS.
fn publish_one_more_kernel(
    dir: &Path,
    repo: &Path,
    key: &SigningKey,
    compression: MetadataCompression,
) {
    let more = dir.join("more");
    write_packages(&more, KERNELS..KERNELS + 1, false);
    publish(repo, &more, key, compression);
}

#[test]
fn apt_and_dnf_read_every_package_of_bucketed_lists_full_and_incremental() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());
    let repo = tmp.path().join("repo");
    publish(
        &repo,
        &packages(tmp.path()),
        &key,
        MetadataCompression::Gzip,
    );
    let served = Served::start(&repo, &["--quiet"]);
    let url = format!("http://127.0.0.1:{}/", served.port());
    apt_sees_every_package(&repo, &url, KERNELS);
    dnf_sees_every_package(&url, KERNELS);

    // One more kernel: every other bucket is reused as it is.
    publish_one_more_kernel(tmp.path(), &repo, &key, MetadataCompression::Gzip);
    let chunks = std::fs::read_dir(repo.join(".kmodfarm/chunks"))
        .unwrap()
        .count();
    assert!(chunks > 60, "the lists are bucketed ({chunks} chunks)");
    apt_sees_every_package(&repo, &url, KERNELS + 1);
    dnf_sees_every_package(&url, KERNELS + 1);
}

#[test]
fn dnf_reads_every_package_of_bucketed_zstd_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());
    let repo = tmp.path().join("repo");
    publish(
        &repo,
        &packages(tmp.path()),
        &key,
        MetadataCompression::Zstd,
    );
    publish_one_more_kernel(tmp.path(), &repo, &key, MetadataCompression::Zstd);
    let served = Served::start(&repo, &["--quiet"]);
    dnf_sees_every_package(&format!("http://127.0.0.1:{}/", served.port()), KERNELS + 1);
}
