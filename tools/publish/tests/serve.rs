//! `kmodfarm serve` over real loopback HTTP, spoken to by curl: files and
//! their headers, HEAD, Range, If-Modified-Since, paths that try to leave
//! the repository, many clients at once, and a clean stop on SIGTERM.

mod serve_support;

use std::path::Path;

use kmodfarm_publish::serve::http_date;
use serve_support::*;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("rpm/rhel-9/x86_64/repodata")).unwrap();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><title>repo</title>\n",
    )
    .unwrap();
    std::fs::write(root.join("index.json"), "{\"schema_version\":1}\n").unwrap();
    std::fs::write(
        root.join("keys/kmodfarm.asc"),
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    )
    .unwrap();
    let numbers: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(root.join("rpm/rhel-9/x86_64/kmod-x.rpm"), &numbers).unwrap();
    std::fs::write(
        root.join("rpm/rhel-9/x86_64/repodata/repomd.xml"),
        "<repomd/>\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("secret"), "outside the repository\n").unwrap();
    dir
}

fn mtime(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn serves_files_with_length_type_and_modification_time() {
    let dir = repo();
    let root = dir.path().join("repo");
    let served = Served::start(&root, &[]);
    assert_ne!(served.port(), 0, "port 0 is reported as the real port");

    let rpm = curl(&format!("{}rpm/rhel-9/x86_64/kmod-x.rpm", served.url), &[]);
    assert_eq!(rpm.status, 200);
    assert_eq!(
        rpm.body,
        std::fs::read(root.join("rpm/rhel-9/x86_64/kmod-x.rpm")).unwrap()
    );
    assert_eq!(rpm.headers["content-length"], "10000");
    assert_eq!(rpm.headers["content-type"], "application/x-rpm");
    assert_eq!(rpm.headers["accept-ranges"], "bytes");
    assert_eq!(
        rpm.headers["last-modified"],
        http_date(mtime(&root.join("rpm/rhel-9/x86_64/kmod-x.rpm")))
    );

    for (path, ty) in [
        ("index.json", "application/json"),
        ("keys/kmodfarm.asc", "application/pgp-keys"),
        ("rpm/rhel-9/x86_64/repodata/repomd.xml", "application/xml"),
    ] {
        let r = curl(&format!("{}{path}", served.url), &[]);
        assert_eq!(
            (r.status, r.headers["content-type"].as_str()),
            (200, ty),
            "{path}"
        );
    }
    // The root serves the page.
    let page = curl(&served.url, &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&page.body).contains("<title>repo</title>"));

    let missing = curl(&format!("{}nothing-here.deb", served.url), &[]);
    assert_eq!(missing.status, 404);

    // HEAD: the same headers, no body.
    let head = curl(
        &format!("{}rpm/rhel-9/x86_64/kmod-x.rpm", served.url),
        &["-I"],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-length"], "10000");
    // (curl -I writes the headers where the body would go: no file bytes.)
    assert!(head.body.len() < 1000 && head.body.starts_with(b"HTTP/1.1 200"));

    let post = curl(
        &format!("{}index.json", served.url),
        &["-X", "POST", "-d", "x"],
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.headers["allow"], "GET, HEAD");

    let (status, log) = served.stop();
    assert!(
        status.success(),
        "kmodfarm serve did not exit cleanly: {status:?}\n{log}"
    );
    assert!(
        log.contains("GET /rpm/rhel-9/x86_64/kmod-x.rpm 200 10000"),
        "{log}"
    );
    assert!(
        log.contains("HEAD /rpm/rhel-9/x86_64/kmod-x.rpm 200 0"),
        "{log}"
    );
    assert!(log.trim_end().ends_with("stopped"), "{log}");
}

#[test]
fn ranges_give_206_or_416() {
    let dir = repo();
    let root = dir.path().join("repo");
    let whole = std::fs::read(root.join("rpm/rhel-9/x86_64/kmod-x.rpm")).unwrap();
    let served = Served::start(&root, &[]);
    let url = format!("{}rpm/rhel-9/x86_64/kmod-x.rpm", served.url);

    let part = curl(&url, &["-r", "100-199"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &whole[100..200]);
    assert_eq!(part.headers["content-range"], "bytes 100-199/10000");
    assert_eq!(part.headers["content-length"], "100");

    let tail = curl(&url, &["-r", "-10"]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &whole[9990..]);

    let open = curl(&url, &["-r", "9995-"]);
    assert_eq!((open.status, open.body.len()), (206, 5));

    let beyond = curl(&url, &["-r", "10000-"]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.headers["content-range"], "bytes */10000");

    // Several ranges at once: the whole file (allowed, and what clients handle).
    let multi = curl(&url, &["-r", "0-1,5-6"]);
    assert_eq!((multi.status, multi.body.len()), (200, 10000));

    // A resumed download (curl -C) gets the rest.
    let rest = curl(&url, &["-C", "9000"]);
    assert_eq!(rest.status, 206);
    assert_eq!(rest.body, &whole[9000..]);
}

#[test]
fn if_modified_since_gives_304_until_the_file_changes() {
    let dir = repo();
    let root = dir.path().join("repo");
    let file = root.join("index.json");
    let served = Served::start(&root, &[]);
    let url = format!("{}index.json", served.url);
    let first = curl(&url, &[]);
    let stamp = first.headers["last-modified"].clone();

    let same = curl(&url, &["-H", &format!("If-Modified-Since: {stamp}")]);
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());

    let older = curl(
        &url,
        &["-H", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"],
    );
    assert_eq!(older.status, 200);

    // Rewritten later: the old date no longer matches.
    std::fs::write(&file, "{\"schema_version\":1,\"serial\":2}\n").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let changed = curl(&url, &["-H", &format!("If-Modified-Since: {stamp}")]);
    assert_eq!(changed.status, 200);
    assert!(String::from_utf8_lossy(&changed.body).contains("serial"));
}

#[test]
fn paths_that_leave_the_repository_are_refused() {
    let dir = repo();
    let root = dir.path().join("repo");
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("escape")).unwrap();
    std::os::unix::fs::symlink("../secret", root.join("keys/up")).unwrap();
    std::os::unix::fs::symlink("index.json", root.join("alias.json")).unwrap();
    let served = Served::start(&root, &[]);
    let base = served.url.trim_end_matches('/');

    for (path, want) in [
        ("/../secret", 400),
        ("/keys/../../secret", 400),
        ("/%2e%2e/secret", 400),
        ("/keys/%2E%2E/%2e%2e/secret", 400),
        ("/keys%2Fkmodfarm.asc", 400),
        ("/keys%5C..%5Csecret", 400),
        ("/index.json%00.html", 400),
        ("/escape", 404),
        ("/keys/up", 404),
    ] {
        let r = curl(&format!("{base}{path}"), &["--path-as-is"]);
        assert_eq!(r.status, want, "{path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("outside the repository"),
            "{path} leaked the file outside the repository"
        );
    }
    // A symlink that stays inside is an ordinary file; encoded names decode.
    assert_eq!(curl(&format!("{base}/alias.json"), &[]).status, 200);
    assert_eq!(curl(&format!("{base}/index%2Ejson"), &[]).status, 200);
}

#[test]
fn many_clients_at_once_are_all_answered_by_a_few_threads() {
    let dir = repo();
    let root = dir.path().join("repo");
    let served = Served::start(&root, &["--threads", "2", "--quiet"]);
    let url = format!("{}rpm/rhel-9/x86_64/kmod-x.rpm", served.url);
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || curl(&url, &[]))
        })
        .collect();
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!((r.status, r.body.len()), (200, 10_000));
    }
    let (status, log) = served.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("GET"), "--quiet logged requests: {log}");
}

#[test]
fn a_missing_repository_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-repo");
    let out = kmodfarm_tests::kmodfarm([
        "serve",
        "--repo",
        missing.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ])
    .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.stderr
    );
}

/// The library's server in this process: a shutdown stops accepting at
/// once but lets the download in flight finish, and reports through
/// events what it answered.
#[test]
fn shutdown_lets_the_request_in_flight_finish() {
    use kmodfarm_publish::serve::{ServeEvent, Server};
    use std::sync::Mutex;

    let dir = repo();
    let root = dir.path().join("repo");
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    let server = Server::bind(&root, "127.0.0.1:0".parse().unwrap())
        .unwrap()
        .threads(2);
    let url = format!("http://{}/big.bin", server.local_addr());
    let handle = server.shutdown_handle();
    let events = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let running = scope.spawn(|| server.run(&|e| events.lock().unwrap().push(e)));
        // About two seconds at this rate.
        let download = scope.spawn(|| curl(&url, &["--limit-rate", "2M"]));
        std::thread::sleep(std::time::Duration::from_millis(500));
        handle.shutdown();
        let reply = download.join().unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.body == big, "the download in flight was cut short");
        running.join().unwrap().unwrap();
    });
    let events = events.into_inner().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ServeEvent::Request { target, status: 200, bytes: 4_000_000, .. } if target == "/big.bin")),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&ServeEvent::Stopped));
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(
        url.trim_start_matches("http://").split('/').next().unwrap()
    )
    .is_err());
}
