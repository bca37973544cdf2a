//! A small static HTTP/1.1 server for a published repository: for tests,
//! demos and air-gapped sites (production sites use any web server or
//! object store; the repository is plain files).
//!
//! - GET and HEAD; anything else is 405.
//! - `Content-Length`, `Content-Type` by file name, `Last-Modified`,
//!   `Accept-Ranges: bytes`; `If-Modified-Since` gives 304; one `Range`
//!   (`bytes=a-b`, `a-`, `-n`) gives 206, or 416 when it lies outside the
//!   file; several ranges are answered with the whole file (RFC 9110 lets a
//!   server ignore Range).
//! - Only files under the root: `..` segments, encoded `/`, `\` or NUL are
//!   refused (400), and a path whose real location (symlinks resolved)
//!   leaves the root is 404 like a missing file. A directory serves its
//!   `index.html`.
//! - One request per connection (`Connection: close`); a fixed number of
//!   worker threads, fed through a bounded queue, so a flood of connections
//!   waits instead of spawning threads; slow clients time out.
//! - [`Server::bind`] then [`Server::run`], which returns after
//!   [`ShutdownHandle::shutdown`] once the requests in flight are answered.
//!   What happens is reported as [`ServeEvent`]s, never printed.

use kmodfarm_model::text::MONTHS;

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The address `kmodfarm serve` binds when given none.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_THREADS: usize = 8;
const MAX_HEAD: usize = 16 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot serve {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serve {path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server's listening socket failed: {0}")]
    Accept(std::io::Error),
}

/// What the server reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEvent {
    /// One request answered.
    Request {
        peer: SocketAddr,
        method: String,
        target: String,
        status: u16,
        /// Body bytes sent.
        bytes: u64,
    },
    /// A connection that failed before an answer (timeout, reset, garbage).
    ConnectionError { peer: SocketAddr, message: String },
    /// Shut down: every worker has finished.
    Stopped,
}

pub struct Server {
    listener: TcpListener,
    root: PathBuf,
    threads: usize,
    stop: Arc<AtomicBool>,
}

/// Stops a running [`Server`] from another thread (or a signal handler thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection it will drop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port: see [`Server::local_addr`])
    /// to serve the directory `root`.
    pub fn bind(root: &Path, addr: SocketAddr) -> Result<Server, Error> {
        let canonical = root.canonicalize().map_err(|source| Error::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(Error::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let listener = TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        Ok(Server {
            listener,
            root: canonical,
            threads: DEFAULT_THREADS,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// How many requests are answered at once (at least one).
    pub fn threads(mut self, threads: usize) -> Server {
        self.threads = threads.max(1);
        self
    }

    /// The bound address, with the real port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        let mut addr = self.local_addr();
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        ShutdownHandle {
            stop: self.stop.clone(),
            addr,
        }
    }

    /// Answers requests until shut down.
    pub fn run(self, events: &(dyn Fn(ServeEvent) + Sync)) -> Result<(), Error> {
        let (queue, jobs) = mpsc::sync_channel::<TcpStream>(self.threads * 4);
        let jobs = Mutex::new(jobs);
        let root = &self.root;
        let result = std::thread::scope(|scope| {
            for _ in 0..self.threads {
                scope.spawn(|| loop {
                    let next = jobs.lock().expect("no worker panics holding it").recv();
                    match next {
                        Ok(stream) => handle(stream, root, events),
                        Err(_) => break,
                    }
                });
            }
            let result = loop {
                let accepted = self.listener.accept();
                if self.stop.load(Ordering::SeqCst) {
                    break Ok(());
                }
                match accepted {
                    Ok((stream, _)) => {
                        // Blocks while every worker is busy and the queue is full.
                        if queue.send(stream).is_err() {
                            break Ok(());
                        }
                    }
                    // A client that gave up between connect and accept.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
                    Err(e) => break Err(Error::Accept(e)),
                }
            };
            drop(queue);
            result
        });
        events(ServeEvent::Stopped);
        result
    }
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn handle(stream: TcpStream, root: &Path, events: &(dyn Fn(ServeEvent) + Sync)) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    let request = match read_head(&mut reader) {
        Ok(Some(r)) => r,
        Ok(None) => return, // closed without a request (e.g. the shutdown wake-up)
        Err(message) => {
            let mut out = &stream;
            let _ = respond_simple(&mut out, 400, "Bad Request", &[], true);
            events(ServeEvent::ConnectionError { peer, message });
            return;
        }
    };
    let mut out = &stream;
    let (status, bytes) = match answer(&request, root, &mut out) {
        Ok(done) => done,
        Err(e) => {
            events(ServeEvent::ConnectionError {
                peer,
                message: format!("{} {}: {e}", request.method, request.target),
            });
            return;
        }
    };
    let _ = out.flush();
    events(ServeEvent::Request {
        peer,
        method: request.method,
        target: request.target,
        status,
        bytes,
    });
}

fn read_head(reader: &mut impl BufRead) -> Result<Option<Request>, String> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err("the connection closed inside the request head".into());
        }
        if head.len() + line.len() > MAX_HEAD {
            return Err(format!("request head longer than {MAX_HEAD} bytes"));
        }
        let blank = line == b"\r\n" || line == b"\n";
        if blank && head.is_empty() {
            continue; // stray CRLF before a request is allowed
        }
        if blank {
            break;
        }
        head.extend_from_slice(&line);
    }
    let text = String::from_utf8(head).map_err(|_| "request head is not UTF-8".to_string())?;
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line '{request_line}'"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported protocol '{version}'"));
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    }))
}

/// Why a target names no servable file.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    BadPath,
    NotFound,
}

/// The file a request target names, inside `root` (canonical).
fn resolve(root: &Path, target: &str) -> Result<PathBuf, Refusal> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Refusal::BadPath);
    }
    let mut relative = PathBuf::new();
    for segment in path.split('/') {
        let decoded = percent_decode(segment).ok_or(Refusal::BadPath)?;
        if decoded.contains(['/', '\\', '\0']) || decoded == ".." {
            return Err(Refusal::BadPath);
        }
        if decoded.is_empty() || decoded == "." {
            continue;
        }
        relative.push(decoded);
    }
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    let mut file = root.join(&relative);
    if file.is_dir() {
        file.push("index.html");
    }
    // Symlinks are followed only while they stay inside the root.
    let real = file.canonicalize().map_err(|_| Refusal::NotFound)?;
    if !real.starts_with(root) || !real.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok(real)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Content types of what a repository holds.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let in_keys = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|p| p == "keys");
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        "sh" => "text/x-shellscript; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "gz" => "application/gzip",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "bz2" => "application/x-bzip2",
        "deb" => "application/vnd.debian.binary-package",
        "rpm" => "application/x-rpm",
        "asc" if in_keys => "application/pgp-keys",
        "gpg" if in_keys => "application/pgp-keys",
        "asc" | "sig" => "application/pgp-signature",
        "gpg" => "application/pgp-signature",
        "key" => "application/pgp-keys",
        // apt's index files have no extension.
        "" if matches!(name, "Release" | "InRelease" | "Packages" | "Sources") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

fn answer(request: &Request, root: &Path, out: &mut impl Write) -> std::io::Result<(u16, u64)> {
    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            respond_simple(
                out,
                405,
                "Method Not Allowed",
                &[("Allow", "GET, HEAD".into())],
                false,
            )?;
            return Ok((405, 0));
        }
    };
    let file = match resolve(root, &request.target) {
        Ok(f) => f,
        Err(Refusal::BadPath) => {
            respond_simple(out, 400, "Bad Request", &[], head_only)?;
            return Ok((400, 0));
        }
        Err(Refusal::NotFound) => {
            respond_simple(out, 404, "Not Found", &[], head_only)?;
            return Ok((404, 0));
        }
    };
    let mut f = std::fs::File::open(&file)?;
    let meta = f.metadata()?;
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last_modified = http_date(modified);
    let mut headers = vec![
        ("Content-Type", content_type(&file).to_string()),
        ("Last-Modified", last_modified.clone()),
        ("Accept-Ranges", "bytes".to_string()),
    ];

    if let Some(since) = request
        .header("If-Modified-Since")
        .and_then(parse_http_date)
    {
        if modified <= since {
            write_head(out, 304, "Not Modified", &headers, None)?;
            return Ok((304, 0));
        }
    }

    let range_applies = match request.header("If-Range") {
        None => true,
        Some(v) => v == last_modified,
    };
    let range = match request.header("Range") {
        Some(r) if range_applies => parse_range(r, len),
        _ => RangeRequest::Whole,
    };
    let (status, reason, start, count) = match range {
        RangeRequest::Whole => (200, "OK", 0, len),
        RangeRequest::Part(start, end) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            (206, "Partial Content", start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            respond_simple(out, 416, "Range Not Satisfiable", &headers, head_only)?;
            return Ok((416, 0));
        }
    };
    write_head(out, status, reason, &headers, Some(count))?;
    if head_only {
        return Ok((status, 0));
    }
    f.seek(SeekFrom::Start(start))?;
    let sent = std::io::copy(&mut f.take(count), out)?;
    Ok((status, sent))
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    /// Inclusive byte offsets.
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole; // another unit: ignore
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-n: the last n bytes
        (true, false) => match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(len.saturating_sub(n), len - 1),
            None => RangeRequest::Whole,
        },
        (false, true) => match number(first) {
            Some(a) if a < len => RangeRequest::Part(a, len - 1),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b && a < len => RangeRequest::Part(a, b.min(len - 1)),
            (Some(a), Some(b)) if a <= b => RangeRequest::Unsatisfiable,
            _ => RangeRequest::Whole, // syntactically invalid: ignored
        },
        (true, true) => RangeRequest::Whole,
    }
}

fn write_head(
    out: &mut impl Write,
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    content_length: Option<u64>,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    head.push_str(&format!("Date: {}\r\n", http_date(now())));
    head.push_str("Server: kmodfarm\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(n) = content_length {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// An error answer with a one-line text body.
fn respond_simple(
    out: &mut impl Write,
    status: u16,
    reason: &str,
    extra: &[(&str, String)],
    head_only: bool,
) -> std::io::Result<()> {
    let body = format!("{status} {reason}\n");
    let mut headers: Vec<(&str, String)> = extra
        .iter()
        .filter(|(k, _)| *k != "Content-Type")
        .cloned()
        .collect();
    headers.push(("Content-Type", "text/plain; charset=utf-8".into()));
    write_head(out, status, reason, &headers, Some(body.len() as u64))?;
    if !head_only {
        out.write_all(body.as_bytes())?;
    }
    Ok(())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// IMF-fixdate, as `Last-Modified` and `Date` carry it: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> String {
    kmodfarm_model::text::rfc2822(secs, "GMT")
}

/// Reads an IMF-fixdate; `None` for anything else (the header is then ignored).
pub fn parse_http_date(value: &str) -> Option<u64> {
    let rest = value.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400)
        .ok()
        .map(|d| d + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_http_date(&http_date(t)), Some(t));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("bytes=9-1", 100), Whole);
        assert_eq!(parse_range("lines=1-2", 100), Whole);
    }
}
