//! How long reading a real Debian main `Packages` index takes (a figure to
//! report, not a test), beside peers on the same file: `grep -c`, `xz -dc |
//! grep -c` and `grep-dctrl` (dctrl-tools) selecting the same stanzas.
//!
//! `cargo bench -p kmodfarm-kernels --bench parse_packages [-- PATH/Packages.xz]`
//! Without a path, bookworm main is fetched through the host's apt sources
//! into the index cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kmodfarm_kernels::apt_packages::{parse_packages, KERNEL_PACKAGE_PREFIX};
use kmodfarm_kernels::apt_sources::read_apt_sources;
use kmodfarm_kernels::decompress::decompress;
use kmodfarm_kernels::events::Quiet;
use kmodfarm_kernels::fetch::{default_cache_dir, Fetcher, HttpFetcher, RetryPolicy};

fn bookworm_main() -> (String, Vec<u8>) {
    let sources = read_apt_sources(Path::new("/etc/apt")).expect("apt sources");
    let source = sources
        .iter()
        .find(|s| s.suites.iter().any(|x| x == "bookworm"))
        .expect("the host's apt sources serve bookworm");
    let url = format!(
        "{}/dists/bookworm/main/binary-amd64/Packages.xz",
        source.uris[0]
    );
    let cache = default_cache_dir().expect("a cache directory");
    let fetcher = HttpFetcher::new(cache, RetryPolicy::default(), false).expect("client");
    let bytes = fetcher
        .fetch(&url, &|_| Ok(()), &Quiet)
        .expect("fetch")
        .bytes;
    (url, bytes)
}

/// The best of `runs` timings of `f`: the least disturbed by the other
/// work on this shared machine.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(f());
        best = best.min(started.elapsed());
    }
    (best, last.expect("at least one run"))
}

fn shell(script: &str) -> (Duration, String) {
    best_of(5, || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let (name, compressed) = match arg {
        Some(path) => (path.clone(), std::fs::read(&path).expect("read the index")),
        None => bookworm_main(),
    };
    let (unpack, text) = best_of(3, || decompress(&name, &compressed).expect("decompress"));
    let (scan, kernel) = best_of(10, || {
        parse_packages(&text, KERNEL_PACKAGE_PREFIX, &name).expect("parse")
    });
    let tmp = std::env::temp_dir().join(format!("kmodfarm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let plain: PathBuf = tmp.join("Packages");
    let xz = tmp.join("Packages.xz");
    std::fs::write(&plain, &text).unwrap();
    std::fs::write(&xz, &compressed).unwrap();

    println!("index: {name}");
    println!(
        "  {} bytes compressed, {} bytes plain, {} kernel stanzas kept",
        compressed.len(),
        text.len(),
        kernel.len()
    );
    println!("kmodfarm: decompress              {}", ms(unpack));
    println!("kmodfarm: scan + parse (linux-*)  {}", ms(scan));
    println!("kmodfarm: both                    {}", ms(unpack + scan));
    let peers = [
        (
            "grep -c '^Package:' (plain)",
            format!("grep -c '^Package:' {}", plain.display()),
        ),
        (
            "xz -dc | grep -c '^Package:'",
            format!("xz -dc {} | grep -c '^Package:'", xz.display()),
        ),
        (
            "grep-dctrl linux-* (plain)",
            format!(
                "grep-dctrl -P -e '^linux-' -s Package,Version,Depends {} | grep -c '^Package:'",
                plain.display()
            ),
        ),
    ];
    for (label, script) in peers {
        let (time, out) = shell(&script);
        println!("peer: {label:30}{} (output {out})", ms(time));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
