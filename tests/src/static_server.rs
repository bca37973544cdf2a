//! A static HTTP server on 127.0.0.1 over a directory, for tests that point
//! apt at a published repository. A named stand-in: Python's `http.server`
//! until `kmodfarm serve` exists; the repository is plain files, so any
//! static server is a fair one.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::require_tool;

pub struct StaticServer {
    child: Child,
    pub port: u16,
}

impl StaticServer {
    /// Serves `dir` on a free loopback port, returning once it accepts
    /// connections.
    pub fn start(dir: &Path) -> Result<StaticServer> {
        require_tool("python3", "python3")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(Error::io(dir))?
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::io(dir))?;
        let server = StaticServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(Error::io(dir)(std::io::Error::other(
                    "python3 -m http.server did not start listening within 20 s",
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `http://127.0.0.1:PORT/`, then `path`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
