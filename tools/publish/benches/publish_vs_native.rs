//! Benchmark (not a test): `kmodfarm publish` against `apt-ftparchive`
//! (apt-utils) and `createrepo_c`, on the same synthetic packages in the
//! same run: 1, 100 and 10,000 prebuilt-style .deb and .rpm packages plus
//! the -dkms ones, then adding 1 package of each to the 10,000-package
//! repository (kmodfarm's incremental publish against `createrepo_c
//! --update` and `apt-ftparchive` with its `--db` cache). Prints a table of
//! seconds and ratios.
//!
//!     cargo bench -p kmodfarm-publish --bench publish_vs_native [-- 1 100 10000]
//!
//! kmodfarm does the whole publish: read every .deb's control and every
//! .rpm's header, copy them into the pool and the yum directory,
//! Packages/.gz/.xz and by-hash for one codename, Release, InRelease and
//! Release.gpg signed (Ed25519), repodata/ for one RHEL target with
//! repomd.xml.asc, index.json, the page, the state file.
//! apt-ftparchive: `packages` over the same directory, gzip -9 and xz of the
//! list, `release` (no signing: that favours it). createrepo_c: the same
//! number of .rpm files (made beforehand, not timed), default options.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[path = "../tests/synthetic_deb/mod.rs"]
mod synthetic_deb;
use synthetic_deb::synthetic_deb;

use kmodfarm_publish::inputs::{DebTarget, RpmTarget, Targets};
use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};
use kmodfarm_publish::{execute, prepare, Disk, PublishOptions, Request};

/// A small valid .deb carrying one 4 KiB file.
fn deb(dir: &Path, name: &str, arch: &str) {
    let control = format!(
        "Package: {name}\nVersion: 1.0.0-1\nArchitecture: {arch}\nMaintainer: b <b@example.org>\nInstalled-Size: 4\nSection: kernel\nPriority: optional\nDescription: benchmark package\n synthetic package for the publish benchmark\n"
    );
    let payload = vec![0x5au8; 4096];
    let ar = synthetic_deb(&control, &[("./usr/share/bench/payload", &payload)]);
    std::fs::write(dir.join(format!("{name}_1.0.0-1_{arch}.deb")), ar).unwrap();
}

fn rpm(dir: &Path, name: &str) {
    let pkg =
        rpm::PackageBuilder::new(name, "1.0.0", "GPL-2.0-only", "x86_64", "benchmark package")
            .using_config(rpm::BuildConfig::v4().compression(rpm::CompressionWithLevel::Gzip(1)))
            .with_file_contents(
                vec![0x5au8; 4096],
                rpm::FileOptions::new(format!("/usr/share/bench/{name}")),
            )
            .unwrap()
            .build()
            .unwrap();
    pkg.write_file(dir.join(format!("{name}-1.0.0-1.x86_64.rpm")))
        .unwrap();
}

fn kernel_name(i: usize) -> String {
    format!("kmfdemo-modules-6.1.0-{i}-amd64")
}

fn kmod_name(i: usize) -> String {
    format!("kmod-kmfdemo-6.1.0-{i}-amd64")
}

fn targets() -> Targets {
    Targets {
        module: "kmfdemo".into(),
        deb: vec![DebTarget {
            distro: "debian-12".into(),
            codename: "bookworm".into(),
            arch: "amd64".into(),
        }],
        rpm: vec![RpmTarget {
            distro: "rhel-9".into(),
            arch: "x86_64".into(),
        }],
        distros: vec!["debian-12".into(), "rhel-9".into()],
        page: Vec::new(),
    }
}

fn kmodfarm_publish(key: &SigningKey, repo: &Path, packages: &Path) -> f64 {
    let start = Instant::now();
    let request = Request {
        repo: repo.to_path_buf(),
        packages: Some(packages.to_path_buf()),
        builds: None,
        options: PublishOptions {
            valid_for: Some(7 * 86_400),
            ..PublishOptions::at(1_900_000_000)
        },
        wait: false,
    };
    let prepared = prepare(&request, &targets(), key, false).unwrap();
    eprintln!("prepared {:.1} ms", start.elapsed().as_secs_f64()*1e3);
    execute(&prepared.plan, &mut Disk, &mut |_| {}).unwrap();
    eprintln!("executed {:.1} ms", start.elapsed().as_secs_f64()*1e3);
    start.elapsed().as_secs_f64()
}

fn sh(script: &str) -> f64 {
    let start = Instant::now();
    let status = Command::new("sh").args(["-ec", script]).status().unwrap();
    assert!(status.success(), "{script}");
    start.elapsed().as_secs_f64()
}

fn apt_ftparchive(dir: &Path, db: Option<&Path>) -> f64 {
    let db = db.map_or(String::new(), |d| format!("--db {}", d.display()));
    sh(&format!(
        "cd {d} && mkdir -p out && apt-ftparchive {db} packages debs > out/Packages && \
         gzip -9 -k -f out/Packages && xz -6 -k -f out/Packages && \
         apt-ftparchive release out > out/Release",
        d = dir.display()
    ))
}

fn main() {
    for tool in ["apt-ftparchive", "createrepo_c"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .unwrap()
                .success(),
            "{tool} is needed (scripts/test-deps.txt: apt-utils, createrepo-c)"
        );
    }
    let work = tempfile::tempdir().unwrap();
    let keyfile = work.path().join("key.asc");
    std::fs::write(&keyfile, generate("bench", None).unwrap().secret_armored).unwrap();
    let key = SigningKey::load(&keyfile, &Passphrase::None).unwrap();

    println!("| packages (.deb + .rpm each) | kmodfarm publish (apt + yum) | apt-ftparchive | createrepo_c | kmodfarm vs both together |");
    println!("|---:|---:|---:|---:|---:|");
    // `-- 10000` runs one size; the add-1 row comes with 10,000.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![1, 100, 10_000];
    }
    for n in sizes {
        let dir = work.path().join(format!("n{n}"));
        let (debs, rpms) = (dir.join("pk/debs"), dir.join("pk/rpms"));
        std::fs::create_dir_all(&debs).unwrap();
        std::fs::create_dir_all(&rpms).unwrap();
        deb(&debs, "kmfdemo-dkms", "all");
        rpm(&rpms, "kmfdemo-dkms");
        for i in 1..n {
            deb(&debs, &kernel_name(i), "amd64");
            rpm(&rpms, &kmod_name(i));
        }
        sh("sync");
        // Before createrepo_c, which writes its repodata/ into rpms/.
        let ours = kmodfarm_publish(&key, &dir.join("repo"), &dir.join("pk"));
        let apt = apt_ftparchive(&dir.join("pk"), Some(&dir.join("ftparchive.db")));
        let yum = sh(&format!("createrepo_c -q {}", rpms.display()));
        println!(
            "| {n} | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
            (apt + yum) / ours
        );

        if n == 10_000 {
            let new = dir.join("new");
            std::fs::create_dir_all(&new).unwrap();
            deb(&new, &kernel_name(n), "amd64");
            std::fs::copy(
                new.join(format!("{}_1.0.0-1_amd64.deb", kernel_name(n))),
                debs.join(format!("{}_1.0.0-1_amd64.deb", kernel_name(n))),
            )
            .unwrap();
            rpm(&new, &kmod_name(n));
            std::fs::copy(
                new.join(format!("{}-1.0.0-1.x86_64.rpm", kmod_name(n))),
                rpms.join(format!("{}-1.0.0-1.x86_64.rpm", kmod_name(n))),
            )
            .unwrap();
            let ours = kmodfarm_publish(&key, &dir.join("repo"), &new);
            let apt = apt_ftparchive(&dir.join("pk"), Some(&dir.join("ftparchive.db")));
            let yum = sh(&format!("createrepo_c -q --update {}", rpms.display()));
            println!();
            println!("| add 1 to 10,000 | kmodfarm publish (incremental) | apt-ftparchive --db (cached) | createrepo_c --update | kmodfarm vs createrepo_c --update |");
            println!("|---|---:|---:|---:|---:|");
            println!(
                "| | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
                yum / ours
            );
        }
    }
}
