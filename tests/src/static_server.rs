//! A directory served over HTTP on 127.0.0.1 by kmodfarm's own server
//! (`kmodfarm_publish::serve`, what `kmodfarm serve` runs), in a thread of
//! the test process. The repository is plain files, so the tests of apt,
//! dnf and the installer need nothing else; the server itself is tested in
//! tools/publish/tests/serve.rs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::thread::JoinHandle;

use kmodfarm_publish::serve::{Server, ShutdownHandle};

use crate::error::{Error, Result};

/// Serves a directory until dropped.
pub struct StaticServer {
    pub port: u16,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serves `dir` on a free loopback port; it accepts connections as soon
    /// as this returns (the socket is bound before).
    pub fn start(dir: &Path) -> Result<StaticServer> {
        let server = Server::bind(dir, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| Error::io(dir)(std::io::Error::other(e.to_string())))?;
        let port = server.local_addr().port();
        let stop = server.shutdown_handle();
        let thread = std::thread::spawn(move || {
            let _ = server.run(&|_| {});
        });
        Ok(StaticServer {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/`, then `path`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Keeps serving for the rest of the test process.
    pub fn leak(mut self) -> String {
        let url = self.url("").trim_end_matches('/').to_string();
        self.thread = None;
        std::mem::forget(self);
        url
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.shutdown();
            let _ = thread.join();
        }
    }
}
