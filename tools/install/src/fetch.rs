//! Getting files from the repository: the [`Fetcher`] trait, and the real
//! one over HTTP(S) with timeouts and retries. TLS is always verified
//! (system roots, plus a CA file when given); there is no way to turn that
//! off. Plain http is accepted because nothing fetched is trusted before
//! its OpenPGP signature or its signed sha256 is checked.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Gets one file. `Ok(None)` when the repository does not have it (404),
/// which for a kernel's lookup file means "the matrix does not know this
/// kernel".
pub trait Fetcher {
    fn fetch(&self, url: &str) -> Result<Option<Vec<u8>>>;
}

/// Retry policy: `attempts` tries, waiting `first_delay`, then twice as
/// long each time.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 4,
            first_delay: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
    }
}

pub struct HttpFetcher {
    client: reqwest::blocking::Client,
    retry: Retry,
}

impl HttpFetcher {
    /// A client that trusts the system's CAs and, when given, `ca` (a PEM
    /// file with one or more certificates).
    pub fn new(ca: Option<&Path>, retry: Retry) -> Result<HttpFetcher> {
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(retry.connect_timeout)
            .timeout(retry.timeout)
            .user_agent(concat!("kmodfarm-host/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(Error::read(ca))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Key {
                path: ca.to_path_buf(),
                message: format!("not a PEM certificate bundle: {e}"),
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::Refused(format!("cannot set up HTTPS: {e}")))?;
        Ok(HttpFetcher { client, retry })
    }

    fn once(&self, url: &str) -> std::result::Result<Option<Vec<u8>>, Attempt> {
        let response = self
            .client
            .get(url)
            .send()
            .map_err(|e| Attempt::Retry(describe(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry(format!("the server answered {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(Error::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
            }));
        }
        let expected = response.content_length();
        let mut body = Vec::new();
        let read = response.take(u64::MAX).read_to_end(&mut body);
        match (read, expected) {
            (Ok(_), Some(n)) if body.len() as u64 != n => Err(Attempt::Retry(format!(
                "the download ended after {} of {n} bytes",
                body.len()
            ))),
            (Ok(_), _) => Ok(Some(body)),
            (Err(e), Some(n)) => Err(Attempt::Retry(format!(
                "the download ended after {} of {n} bytes ({e})",
                body.len()
            ))),
            (Err(e), None) => Err(Attempt::Retry(format!("reading the download: {e}"))),
        }
    }
}

enum Attempt {
    Retry(String),
    Fatal(Error),
}

/// reqwest's error with its causes (connection refused, certificate…).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str) -> Result<Option<Vec<u8>>> {
        let mut delay = self.retry.first_delay;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            match self.once(url) {
                Ok(found) => return Ok(found),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => last = reason,
            }
            if attempt < self.retry.attempts {
                std::thread::sleep(delay);
                delay *= 2;
            }
        }
        Err(Error::Unreachable {
            url: url.to_string(),
            attempts: self.retry.attempts,
            reason: last,
        })
    }
}

/// `base/relative`, with exactly one slash between.
pub fn join_url(base: &str, relative: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        relative.trim_start_matches('/')
    )
}
