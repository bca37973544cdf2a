//! The HTTP side of discovery against a small archive server these tests
//! run on 127.0.0.1: conditional requests into the cache, bounded retries,
//! corrupt files, unreachable and incomplete mirrors.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmodfarm_kernels::events::{Event, Quiet};
use kmodfarm_kernels::fetch::{Fetcher, HttpFetcher, Origin, RetryPolicy};
use kmodfarm_kernels::{discover, Discovered, KernelsError, Mirrors, Sources, Wanted};

use common::{any_kernel, distro, releases};
use sha2::{Digest, Sha256};

#[derive(Clone)]
struct Route {
    body: Vec<u8>,
    etag: String,
    /// Answer this many requests with 503 first.
    fail_first: u32,
}

#[derive(Debug, Clone)]
struct Logged {
    path: String,
    if_none_match: Option<String>,
    status: u16,
}

#[derive(Clone, Default)]
struct Archive {
    routes: Arc<Mutex<HashMap<String, Route>>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl Archive {
    /// Serve until the test process ends; returns the base URL.
    fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let archive = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                archive.answer(stream);
            }
        });
        base
    }

    fn put(&self, path: &str, body: Vec<u8>) {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..16]);
        self.routes.lock().unwrap().insert(
            path.to_string(),
            Route {
                body,
                etag,
                fail_first: 0,
            },
        );
    }

    fn fail_first(&self, path: &str, times: u32) {
        self.routes
            .lock()
            .unwrap()
            .get_mut(path)
            .unwrap()
            .fail_first = times;
    }

    fn requests(&self, path: &str) -> Vec<Logged> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.path == path).cloned().collect()
    }

    fn answer(&self, stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut if_none_match = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("if-none-match") {
                    if_none_match = Some(value.trim().to_string());
                }
            }
        }
        let route = {
            let mut routes = self.routes.lock().unwrap();
            routes.get_mut(&path).map(|r| {
                let failing = r.fail_first > 0;
                r.fail_first = r.fail_first.saturating_sub(1);
                (r.clone(), failing)
            })
        };
        let (status, headers, body) = match route {
            None => (404, String::new(), b"not here".to_vec()),
            Some((_, true)) => (503, String::new(), b"busy".to_vec()),
            Some((r, false)) if if_none_match.as_deref() == Some(r.etag.as_str()) => {
                (304, format!("ETag: {}\r\n", r.etag), Vec::new())
            }
            Some((r, false)) => (
                200,
                format!(
                    "ETag: {}\r\nLast-Modified: Tue, 24 Nov 2026 10:00:00 GMT\r\n",
                    r.etag
                ),
                r.body,
            ),
        };
        self.log.lock().unwrap().push(Logged {
            path,
            if_none_match,
            status,
        });
        let mut stream = reader.into_inner();
        let head = format!(
            "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
    }
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(data, 6)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A Release file (served as InRelease, unsigned) listing `files`.
fn release(suite: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut text = format!(
        "Origin: Test\nSuite: {suite}\nCodename: {suite}\n\
         Valid-Until: Fri, 01 Jan 2100 00:00:00 UTC\nSHA256:\n"
    );
    for (path, bytes) in files {
        text.push_str(&format!(
            " {} {} {path}\n",
            hex::encode(Sha256::digest(bytes)),
            bytes.len()
        ));
    }
    text.into_bytes()
}

/// A Packages stanza with the fields discovery reads.
fn stanza(package: &str, version: &str, arch: &str, depends: &str) -> String {
    let depends = if depends.is_empty() {
        String::new()
    } else {
        format!("Depends: {depends}\n")
    };
    format!("Package: {package}\nVersion: {version}\nArchitecture: {arch}\n{depends}\n")
}

/// One kernel's stanzas, all at `version`: its common headers, its
/// headers `headers` (depending on the other two), its kbuild.
fn kernel_stanzas(version: &str, headers: &str, common: &str, kbuild: &str) -> String {
    let depends = format!("{common} (= {version}), {kbuild} (>= {version})");
    stanza(common, version, "all", "")
        + &stanza(headers, version, "amd64", &depends)
        + &stanza(kbuild, version, "amd64", "")
}

/// bookworm main: a 6.1 kernel.
fn bookworm_main_excerpt() -> String {
    kernel_stanzas(
        "6.1.170-3",
        "linux-headers-6.1.0-47-amd64",
        "linux-headers-6.1.0-47-common",
        "linux-kbuild-6.1",
    )
}

/// Serve debian-12's three suites; returns the Packages.xz path of main.
fn serve_bookworm(archive: &Archive) -> String {
    let suites = [
        ("bookworm", bookworm_main_excerpt()),
        ("bookworm-updates", String::new()),
        (
            "bookworm-security",
            kernel_stanzas(
                "6.12.117-1~deb12u1",
                "linux-headers-6.12.117+deb12-cloud-amd64",
                "linux-headers-6.12.117+deb12-common",
                "linux-kbuild-6.12.117+deb12",
            ),
        ),
    ];
    for (suite, packages) in suites {
        let packages_xz = xz(packages.as_bytes());
        let release = release(suite, &[("main/binary-amd64/Packages.xz", &packages_xz)]);
        archive.put(&format!("/dists/{suite}/InRelease"), release);
        archive.put(
            &format!("/dists/{suite}/main/binary-amd64/Packages.xz"),
            packages_xz,
        );
    }
    "/dists/bookworm/main/binary-amd64/Packages.xz".into()
}

fn mirrors(url: &str) -> Mirrors {
    Mirrors {
        explicit: vec![url.parse().unwrap()],
        apt_sources: vec![],
    }
}

/// A fetcher with the test's retry policy, caching in `cache`.
fn http_fetcher(cache: &tempfile::TempDir, offline: bool) -> HttpFetcher {
    HttpFetcher::new(cache.path().into(), fast_policy(), offline).unwrap()
}

/// Every kernel of `distro_id` the mirrors serve (with its System.map
/// package when `system_map`), without events.
fn discover_quietly(
    distro_id: &str,
    mirrors: &Mirrors,
    fetcher: &HttpFetcher,
    system_map: bool,
) -> Result<Discovered, KernelsError> {
    let range = any_kernel();
    let wanted = Wanted {
        range: &range,
        system_map,
    };
    let sources = Sources {
        mirrors,
        fetcher,
        events: &Quiet,
    };
    discover(&distro(distro_id), &wanted, &sources)
}

#[test]
fn discovery_reads_a_served_archive_and_a_rerun_is_answered_by_304s() {
    let archive = Archive::default();
    let base = archive.start();
    let main_path = serve_bookworm(&archive);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let mirrors = mirrors(&base);
    let range = any_kernel();
    let wanted = Wanted {
        range: &range,
        system_map: false,
    };
    let d = distro("debian-12");
    let counts = Mutex::new((0, 0));
    let count = |e: Event<'_>| match e {
        Event::NotModified { .. } => counts.lock().unwrap().0 += 1,
        Event::StanzasFromCache { .. } => counts.lock().unwrap().1 += 1,
        _ => {}
    };
    let sources = Sources {
        mirrors: &mirrors,
        fetcher: &fetcher,
        events: &count,
    };
    let first = discover(&d, &wanted, &sources).unwrap();
    assert_eq!(
        releases(&first),
        "6.1.0-47-amd64 6.12.117+deb12-cloud-amd64"
    );
    assert_eq!(
        first.entries[1].packages,
        [
            "linux-headers-6.12.117+deb12-cloud-amd64",
            "linux-headers-6.12.117+deb12-common",
            "linux-kbuild-6.12.117+deb12"
        ]
    );
    assert_eq!(*counts.lock().unwrap(), (0, 0));

    // Rerun: the three InRelease files are asked for conditionally and
    // answered 304; their digests are unchanged, so the indexes themselves
    // are not fetched again: their kernel stanzas come from the cache.
    let second = discover(&d, &wanted, &sources).unwrap();
    assert_eq!(second, first);
    assert_eq!(*counts.lock().unwrap(), (3, 3));
    let in_release = archive.requests("/dists/bookworm/InRelease");
    assert_eq!(in_release.len(), 2);
    assert_eq!(in_release[0].if_none_match, None);
    assert!(in_release[1].if_none_match.is_some());
    assert_eq!(in_release[1].status, 304);
    assert_eq!(archive.requests(&main_path).len(), 1);

    // The archive moves on: a new kernel in main, a new InRelease.
    let newer = bookworm_main_excerpt()
        + &stanza(
            "linux-headers-6.1.0-48-amd64",
            "6.1.171-1",
            "amd64",
            "linux-kbuild-6.1",
        );
    let newer_xz = xz(newer.as_bytes());
    archive.put(
        "/dists/bookworm/InRelease",
        release("bookworm", &[("main/binary-amd64/Packages.xz", &newer_xz)]),
    );
    archive.put(&main_path, newer_xz);
    let third = discover(&d, &wanted, &sources).unwrap();
    assert_eq!(third.entries.len(), 3);
    assert_eq!(third.entries[1].kernel_release.as_str(), "6.1.0-48-amd64");
    assert_eq!(archive.requests(&main_path).len(), 2);

    // Offline, the cache alone gives the same answer.
    let offline = http_fetcher(&cache, true);
    assert_eq!(
        discover_quietly("debian-12", &mirrors, &offline, false).unwrap(),
        third
    );
    assert_eq!(archive.requests(&main_path).len(), 2, "offline asks nobody");
    assert_eq!(archive.requests("/dists/bookworm/InRelease").len(), 3);
}

#[test]
fn a_second_fetch_is_a_conditional_request_answered_from_the_cache() {
    let archive = Archive::default();
    let base = archive.start();
    archive.put("/dists/x/main/Packages.xz", b"index bytes".to_vec());
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let url = format!("{base}/dists/x/main/Packages.xz");
    let first = fetcher.fetch(&url, &|_| Ok(()), &Quiet).unwrap();
    assert_eq!(first.origin, Origin::Network);
    let second = fetcher.fetch(&url, &|_| Ok(()), &Quiet).unwrap();
    assert_eq!(second.origin, Origin::NotModified);
    assert_eq!(second.bytes, b"index bytes");
    let requests = archive.requests("/dists/x/main/Packages.xz");
    assert_eq!(requests[1].status, 304);
    // A cached copy the caller no longer accepts (the suite lists another
    // digest now) is not used on a 304: the file is asked for again without
    // validators, and the check's error is what the caller gets.
    let reject_all = |_: &[u8]| {
        Err(KernelsError::NotListed {
            listed_in: "the test".into(),
            wanted: "other bytes".into(),
        })
    };
    let err = fetcher.fetch(&url, &reject_all, &Quiet).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the test lists none of other bytes (so the mirror does not carry this index)"
    );
    let requests = archive.requests("/dists/x/main/Packages.xz");
    assert_eq!(requests.len(), 4);
    assert_eq!(
        (requests[2].status, requests[2].if_none_match.is_some()),
        (304, true)
    );
    assert_eq!(
        (requests[3].status, requests[3].if_none_match.is_some()),
        (200, false)
    );
}

#[test]
fn a_503_is_retried_with_backoff_and_then_served() {
    let archive = Archive::default();
    let base = archive.start();
    archive.put("/file", b"content".to_vec());
    archive.fail_first("/file", 2);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let retries = Mutex::new(Vec::new());
    let events = |e: Event<'_>| {
        if let Event::Retrying { reason, wait, .. } = e {
            retries.lock().unwrap().push((reason.to_string(), wait));
        }
    };
    let got = fetcher
        .fetch(&format!("{base}/file"), &|_| Ok(()), &events)
        .unwrap();
    assert_eq!(got.bytes, b"content");
    assert_eq!(got.origin, Origin::Network);
    let retries = retries.into_inner().unwrap();
    assert_eq!(retries.len(), 2);
    assert!(retries[0].0.contains("503"), "{retries:?}");
    assert_eq!(retries[1].1, retries[0].1 * 2, "the wait doubles");
}

#[test]
fn a_server_that_keeps_failing_is_given_up_on_after_the_bounded_attempts() {
    let archive = Archive::default();
    let base = archive.start();
    archive.put("/file", b"content".to_vec());
    archive.fail_first("/file", 100);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let url = format!("{base}/file");
    let err = fetcher.fetch(&url, &|_| Ok(()), &Quiet).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot fetch {url}: HTTP 503 Service Unavailable (gave up after 3 attempt(s))")
    );
    assert_eq!(archive.requests("/file").len(), 3);
}

#[test]
fn a_corrupt_index_is_a_clear_error_and_nothing_of_it_is_cached() {
    let archive = Archive::default();
    let base = archive.start();
    let main_path = serve_bookworm(&archive);
    // Same length, one byte different from what the InRelease lists.
    let mut corrupt = archive.routes.lock().unwrap()[&main_path].body.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    archive.put(&main_path, corrupt);
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let err = discover_quietly("debian-12", &mirrors(&base), &fetcher, false).unwrap_err();
    assert!(matches!(err, KernelsError::HashMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{base}{main_path} is corrupt: its sha256 is ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("but {base}/dists/bookworm/InRelease lists")),
        "{text}"
    );
    assert!(text.ends_with("; nothing was cached"), "{text}");
    let cached: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !cached.iter().any(|n| n.contains("Packages")),
        "a corrupt index reached the cache: {cached:?}"
    );
}

#[test]
fn an_unreachable_mirror_fails_quickly_naming_the_url() {
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let started = Instant::now();
    let err = discover_quietly(
        "debian-12",
        &mirrors("http://127.0.0.1:9/debian"),
        &fetcher,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("cannot fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease: "),
        "{err}"
    );
    assert!(err.ends_with("(gave up after 3 attempt(s))"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_mirror_without_the_suite_and_no_other_is_a_no_mirror_error() {
    let archive = Archive::default();
    let base = archive.start();
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let err = discover_quietly("ubuntu-24.04", &mirrors(&base), &fetcher, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no mirror configured for ubuntu-24.04 (suite 'noble'): pass --mirror URL"),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "; these answered 404: {base}/dists/noble/InRelease"
        )),
        "{err}"
    );

    // With no mirror at all, nothing is fetched.
    let err = discover_quietly("ubuntu-24.04", &Mirrors::default(), &fetcher, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/etc/apt/sources.list.d/*.sources"), "{err}");
    assert!(!err.contains("404"), "{err}");
}

#[test]
fn offline_without_a_cached_copy_says_so() {
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, true);
    let err = fetcher
        .fetch("http://127.0.0.1:9/x/InRelease", &|_| Ok(()), &Quiet)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "offline, and http://127.0.0.1:9/x/InRelease is not in the cache {}",
            cache.path().display()
        )
    );
}

/// A primary.xml (zstd, as Rocky 9 serves it) and its repomd.xml.
fn serve_rpm_repo(archive: &Archive, repo: &str, primary_xml: &str) {
    let primary = zstd::encode_all(primary_xml.as_bytes(), 3).unwrap();
    let repomd = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <data type="primary">
    <checksum type="sha256">{}</checksum>
    <location href="repodata/0a1b-primary.xml.zst"/>
    <size>{}</size>
  </data>
</repomd>"#,
        hex::encode(Sha256::digest(&primary)),
        primary.len()
    );
    archive.put(&format!("{repo}/repodata/repomd.xml"), repomd.into_bytes());
    archive.put(&format!("{repo}/repodata/0a1b-primary.xml.zst"), primary);
}

fn rpm(name: &str, rel: &str) -> String {
    format!(
        r#"<package type="rpm"><name>{name}</name><arch>x86_64</arch><version epoch="0" ver="5.14.0" rel="{rel}"/></package>"#
    )
}

#[test]
fn an_rpm_md_distro_is_read_from_its_repositories_below_the_mirror() {
    let archive = Archive::default();
    let base = archive.start();
    // As on RHEL 9: kernel-core in BaseOS, kernel-devel in AppStream.
    let wrap = |packages: String| format!("<metadata>{packages}</metadata>");
    serve_rpm_repo(
        &archive,
        "/9/BaseOS/x86_64/os",
        &wrap(rpm("kernel-core", "503.40.1.el9_5")),
    );
    serve_rpm_repo(
        &archive,
        "/9/AppStream/x86_64/os",
        &wrap(rpm("kernel-devel", "503.40.1.el9_5") + &rpm("kernel-devel", "427.13.1.el9_4")),
    );
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let mirrors = Mirrors {
        explicit: vec![format!("rhel-9={base}").parse().unwrap()],
        apt_sources: vec![],
    };
    let found = discover_quietly("rhel-9", &mirrors, &fetcher, true).unwrap();
    assert_eq!(
        releases(&found),
        "5.14.0-427.13.1.el9_4.x86_64 5.14.0-503.40.1.el9_5.x86_64"
    );
    assert_eq!(
        found.entries[1].system_map_package.as_deref(),
        Some("kernel-core-5.14.0-503.40.1.el9_5.x86_64"),
        "found across repositories"
    );

    // A primary index that does not match repomd.xml is refused.
    archive.put(
        "/9/AppStream/x86_64/os/repodata/0a1b-primary.xml.zst",
        b"tampered".to_vec(),
    );
    let fresh = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&fresh, false);
    let err = discover_quietly("rhel-9", &mirrors, &fetcher, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("0a1b-primary.xml.zst is corrupt") && err.contains("repomd.xml lists"),
        "{err}"
    );

    // Without any mirror, the error says where one must come from.
    let err = discover_quietly("rhel-9", &Mirrors::default(), &fetcher, true)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no mirror configured for rhel-9 (suite 'BaseOS'): pass --mirror URL (or --mirror \
         rhel-9=URL); rpm-md mirrors are not read from the host's configuration"
    );
}

#[test]
fn an_expired_suite_is_refused_naming_it() {
    let archive = Archive::default();
    let base = archive.start();
    serve_bookworm(&archive);
    let path = "/dists/bookworm-security/InRelease";
    let current = String::from_utf8(archive.routes.lock().unwrap()[path].body.clone()).unwrap();
    let replayed = current.replace(
        "Valid-Until: Fri, 01 Jan 2100 00:00:00 UTC",
        "Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC",
    );
    archive.put(path, replayed.into_bytes());
    let cache = tempfile::tempdir().unwrap();
    let fetcher = http_fetcher(&cache, false);
    let err = discover_quietly("debian-12", &mirrors(&base), &fetcher, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{base}{path} expired "))
            && err.contains("its Valid-Until has passed"),
        "{err}"
    );
}
