//! Getting index files: the [`Fetcher`] trait, and [`HttpFetcher`], which
//! keeps every file in a cache directory and asks the server only whether it
//! changed (ETag / Last-Modified), retrying transient failures a bounded
//! number of times.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::{KernelsError, Result};
use crate::events::{Event, Events};

/// Where the bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Network,
    /// The server said 304: the cached copy.
    NotModified,
    /// Offline mode: the cached copy, unasked.
    Cache,
}

#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub origin: Origin,
}

/// Checks a file before anyone uses or caches it (hash, signature).
pub type Validate<'a> = &'a dyn Fn(&[u8]) -> Result<()>;

pub trait Fetcher {
    /// The content of `url`, accepted by `validate`. Content `validate`
    /// rejects is never cached.
    fn fetch(&self, url: &str, validate: Validate<'_>, events: &dyn Events) -> Result<Fetched>;

    /// A directory for what is derived from fetched files (see
    /// [`crate::stanza_cache`]); `None`: derive everything again each time.
    fn derived_dir(&self) -> Option<PathBuf> {
        None
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each later one.
    pub first_backoff: Duration,
    pub connect_timeout: Duration,
    /// For a whole request, body included.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(180),
        }
    }
}

pub struct HttpFetcher {
    client: Client,
    cache: PathBuf,
    policy: RetryPolicy,
    offline: bool,
}

/// Validators remembered beside a cached file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheMeta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The cache directory used when none is given:
/// `$XDG_CACHE_HOME/kmodfarm/indexes`, else `~/.cache/kmodfarm/indexes`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("kmodfarm").join("indexes"))
}

impl HttpFetcher {
    pub fn new(cache: PathBuf, policy: RetryPolicy, offline: bool) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("kmodfarm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KernelsError::Client(e.to_string()))?;
        Ok(HttpFetcher {
            client,
            cache,
            policy,
            offline,
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// `http://host/debian/dists/x/InRelease` → `host_debian_dists_x_InRelease`,
    /// the way apt names its lists: readable, and one file per URL.
    fn cache_path(&self, url: &str) -> PathBuf {
        let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let name: String = without_scheme
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-.+~".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache.join(name)
    }

    fn read_cached(&self, url: &str) -> Option<(Vec<u8>, CacheMeta)> {
        let path = self.cache_path(url);
        let meta: CacheMeta = serde_json::from_slice(&fs::read(meta_path(&path)).ok()?).ok()?;
        let bytes = fs::read(&path).ok()?;
        (meta.url == url).then_some((bytes, meta))
    }

    /// Write the file, then its validators, each through a rename so a
    /// crash never leaves a half-written cache entry.
    fn store(&self, url: &str, bytes: &[u8], meta: &CacheMeta) -> Result<()> {
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KernelsError::Cache { path, source }
        };
        fs::create_dir_all(&self.cache).map_err(cache_err(&self.cache))?;
        let path = self.cache_path(url);
        let meta_file = meta_path(&path);
        // A stale .meta must not outlive the file it described.
        let _ = fs::remove_file(&meta_file);
        write_atomically(&path, bytes).map_err(cache_err(&path))?;
        let meta_json = serde_json::to_vec(meta).expect("cache metadata serializes");
        write_atomically(&meta_file, &meta_json).map_err(cache_err(&meta_file))
    }

    fn validators(
        meta: &CacheMeta,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        let mut request = request;
        if let Some(etag) = &meta.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(date) = &meta.last_modified {
            request = request.header(IF_MODIFIED_SINCE, date);
        }
        request
    }
}

fn meta_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// One try's result: done, or worth another try (with the reason).
enum Try {
    Done(Result<Fetched>),
    Again(String),
}

impl Fetcher for HttpFetcher {
    fn derived_dir(&self) -> Option<PathBuf> {
        Some(self.cache.join("stanzas"))
    }

    fn fetch(&self, url: &str, validate: Validate<'_>, events: &dyn Events) -> Result<Fetched> {
        let mut cached = self.read_cached(url);
        if self.offline {
            let Some((bytes, _)) = cached else {
                return Err(KernelsError::NotCached {
                    url: url.to_string(),
                    cache: self.cache.clone(),
                });
            };
            validate(&bytes)?;
            events.event(Event::FromCache { url });
            return Ok(Fetched {
                bytes,
                origin: Origin::Cache,
            });
        }
        let mut wait = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            events.event(Event::Fetching { url });
            match self.try_once(url, &mut cached, validate, events) {
                Try::Done(result) => return result,
                Try::Again(reason) if attempt < self.policy.attempts => {
                    events.event(Event::Retrying {
                        url,
                        attempt,
                        reason: &reason,
                        wait,
                    });
                    std::thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                Try::Again(reason) => {
                    return Err(KernelsError::Fetch {
                        url: url.to_string(),
                        attempts: attempt,
                        reason,
                    })
                }
            }
        }
    }
}

impl HttpFetcher {
    fn try_once(
        &self,
        url: &str,
        cached: &mut Option<(Vec<u8>, CacheMeta)>,
        validate: Validate<'_>,
        events: &dyn Events,
    ) -> Try {
        let mut request = self.client.get(url);
        if let Some((_, meta)) = cached.as_ref() {
            request = Self::validators(meta, request);
        }
        let response = match request.send() {
            Ok(r) => r,
            Err(e) => return Try::Again(describe(&e)),
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            if let Some((bytes, _)) = cached.take() {
                // The cached copy must still match what the suite lists now.
                if validate(&bytes).is_ok() {
                    events.event(Event::NotModified { url });
                    return Try::Done(Ok(Fetched {
                        bytes,
                        origin: Origin::NotModified,
                    }));
                }
            }
            return Try::Again("the server said 304 but the cached copy is stale".into());
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Try::Done(Err(KernelsError::NotFound {
                url: url.to_string(),
            }));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Try::Again(format!("HTTP {status}"));
        }
        if !status.is_success() {
            return Try::Done(Err(KernelsError::Fetch {
                url: url.to_string(),
                attempts: 1,
                reason: format!("HTTP {status}"),
            }));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let meta = CacheMeta {
            url: url.to_string(),
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let bytes = match response.bytes() {
            Ok(b) => b.to_vec(),
            Err(e) => return Try::Again(format!("reading the body: {}", describe(&e))),
        };
        if let Err(e) = validate(&bytes) {
            return Try::Done(Err(e));
        }
        events.event(Event::Downloaded {
            url,
            bytes: bytes.len() as u64,
        });
        if let Err(e) = self.store(url, &bytes, &meta) {
            return Try::Done(Err(e));
        }
        Try::Done(Ok(Fetched {
            bytes,
            origin: Origin::Network,
        }))
    }
}

/// reqwest's top-level message only repeats the URL ("error sending
/// request for url (…)"); its causes say what happened (connection
/// refused, timed out), so those are kept.
fn describe(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let mut text = if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    };
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}
