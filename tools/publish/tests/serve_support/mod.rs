//! `kmodfarm serve` started for a test, and curl to talk to it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `kmodfarm serve --repo DIR --addr 127.0.0.1:0`, stopped with
/// SIGTERM when dropped.
pub struct Served {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    pub fn start(repo: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(kmodfarm_tests::kmodfarm_bin())
            .args(["serve", "--repo"])
            .arg(repo)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kmodfarm serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line from kmodfarm serve: {first:?}"))
            .to_string();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut err, &mut s).unwrap();
            s
        });
        Served {
            child: Some(child),
            url,
            stderr: Some(stderr),
        }
    }

    pub fn port(&self) -> u16 {
        self.url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// SIGTERM, then wait: the exit status and everything it logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("stopped once");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let log = self.stderr.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_inner();
        }
    }
}

/// What curl got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// `curl -s ARGS URL`, headers and body kept apart.
pub fn curl(url: &str, args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&head).unwrap_or_default();
    let headers = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status: String::from_utf8_lossy(&out.stdout).parse().unwrap(),
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}
