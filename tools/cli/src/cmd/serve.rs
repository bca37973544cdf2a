//! `kmodfarm serve --repo DIR [--addr 127.0.0.1:PORT]`: serves a published
//! repository over HTTP for tests, demos and air-gapped sites.
//!
//! The first line on stdout is `listening on http://ADDR/` with the real
//! port (so `--addr 127.0.0.1:0` works for scripts); each request is a line
//! on stderr. SIGINT or SIGTERM stops it once the requests in flight are
//! answered.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use kmodfarm_publish::serve::{ServeEvent, Server, ShutdownHandle, DEFAULT_ADDR};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The repository directory (what `kmodfarm publish --repo` wrote).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// Where to listen; port 0 picks a free one. Loopback unless you say otherwise.
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Requests answered at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    threads: usize,
    /// Do not log each request.
    #[arg(long)]
    quiet: bool,
}

pub fn run(_ctx: &Context, args: Args) -> Result {
    // Before any thread starts, so every thread inherits the blocked mask
    // and the signals reach only the waiting thread below.
    let signals = block_stop_signals();
    let server = Server::bind(&args.repo, args.addr)?.threads(args.threads);
    let handle = server.shutdown_handle();
    std::thread::spawn(move || wait_for_stop_signal(signals, handle));

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "listening on http://{}/ (serving {})",
        server.local_addr(),
        args.repo.display()
    )?;
    stdout.flush()?;
    drop(stdout);

    let quiet = args.quiet;
    server.run(&move |event| match event {
        ServeEvent::Request {
            peer,
            method,
            target,
            status,
            bytes,
        } => {
            if !quiet {
                eprintln!("{peer} {method} {target} {status} {bytes}");
            }
        }
        ServeEvent::ConnectionError { peer, message } => eprintln!("{peer} error: {message}"),
        ServeEvent::Stopped => eprintln!("stopped"),
    })?;
    Ok(())
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a set we own; pthread_sigmask
    // changes only this thread's mask (inherited by threads it starts).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_stop_signal(set: libc::sigset_t, handle: ShutdownHandle) {
    let mut signal = 0;
    // SAFETY: sigwait reads the set and writes the signal number we own.
    unsafe { libc::sigwait(&set, &mut signal) };
    handle.shutdown();
}
