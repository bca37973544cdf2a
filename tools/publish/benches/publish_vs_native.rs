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
use synthetic_deb::{
    kernel_deb_name as kernel_name, kernel_rpm_name as kmod_name, one_of_each as targets,
    write_deb as deb, write_packages, write_rpm as rpm,
};

use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};
use kmodfarm_publish::{execute, prepare, Disk, PublishOptions, Request};

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
    execute(&prepared.plan, &mut Disk, &mut |_| {}).unwrap();
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
        write_packages(&dir.join("pk"), 1..n, true);
        sh("sync");
        // Before createrepo_c, which writes its repodata/ into rpms/.
        let ours = kmodfarm_publish(&key, &dir.join("repo"), &dir.join("pk"));
        let apt = apt_ftparchive(&dir.join("pk"), Some(&dir.join("ftparchive.db")));
        let yum = sh(&format!("createrepo_c -q {}", rpms.display()));
        println!(
            "| {n} | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
            (apt + yum) / ours
        );

        if n >= 1_000 {
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
            println!("| add 1 to {n} | kmodfarm publish (incremental) | apt-ftparchive --db (cached) | createrepo_c --update | kmodfarm vs createrepo_c --update |");
            println!("|---|---:|---:|---:|---:|");
            println!(
                "| | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
                yum / ours
            );
        }
    }
}
