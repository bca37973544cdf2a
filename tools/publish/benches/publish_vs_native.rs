//! Benchmark (not a test): `kmodfarm publish` against `apt-ftparchive`
//! (apt-utils) and `createrepo_c`, on the same synthetic packages in the
//! same run: 1, 100 and 10,000 prebuilt-style .deb and .rpm packages plus
//! the -dkms ones, then adding 1 package of each to the 10,000-package
//! repository (kmodfarm's incremental publish against `createrepo_c
//! --update` and `apt-ftparchive` with its `--db` cache). Prints a table of
//! seconds (medians) and ratios.
//!
//!     cargo bench -p kmodfarm-publish --bench publish_vs_native [-- 1 100 10000]
//!
//! Each size runs `$KMODFARM_BENCH_REPS` times (default 3), the tools in
//! turn and in the opposite order every other time, into fresh
//! directories; the table has the medians. One run alone is at the mercy
//! of this machine's file system: right after tens of thousands of files
//! are deleted, its discards slow whichever tool writes next by 3x.
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
    let took = start.elapsed().as_secs_f64();
    // `kmodfarm publish` exits here without freeing the state, so the
    // freeing is not timed; it must still happen, since it releases the
    // repository's lock for the next publish of this process.
    drop(prepared);
    took
}

fn sh(script: &str) -> f64 {
    let start = Instant::now();
    let status = Command::new("sh").args(["-ec", script]).status().unwrap();
    assert!(status.success(), "{script}");
    start.elapsed().as_secs_f64()
}

/// `apt-ftparchive` over `dir`'s debs/, its lists written to `out` (not
/// into `dir`, which kmodfarm reads as its packages folder).
fn apt_ftparchive(dir: &Path, out: &Path, db: &Path) -> f64 {
    sh(&format!(
        "cd {d} && mkdir -p {o} && apt-ftparchive --db {db} packages debs > {o}/Packages && \
         gzip -9 -k -f {o}/Packages && xz -6 -k -f {o}/Packages && \
         apt-ftparchive release {o} > {o}/Release",
        d = dir.display(),
        o = out.display(),
        db = db.display()
    ))
}

/// `createrepo_c [--update]` over `rpms`, its repodata/ written to `out`.
fn createrepo_c(rpms: &Path, out: &Path, update: bool) -> f64 {
    std::fs::create_dir_all(out).unwrap();
    sh(&format!(
        "createrepo_c -q {} -o {} {}",
        if update { "--update" } else { "" },
        out.display(),
        rpms.display()
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
    let reps: usize = std::env::var("KMODFARM_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut add_rows = Vec::new();
    for n in sizes {
        let dir = work.path().join(format!("n{n}"));
        let (debs, rpms) = (dir.join("pk/debs"), dir.join("pk/rpms"));
        write_packages(&dir.join("pk"), 1..n, true);
        sh("sync");
        let mut times = Times::default();
        for rep in 0..reps {
            let repo = dir.join(format!("repo{rep}"));
            let db = dir.join(format!("ftparchive{rep}.db"));
            let (apt_out, yum_out) = (dir.join(format!("apt{rep}")), dir.join(format!("yum{rep}")));
            times.rep(
                rep,
                || kmodfarm_publish(&key, &repo, &dir.join("pk")),
                || {
                    (
                        apt_ftparchive(&dir.join("pk"), &apt_out, &db),
                        createrepo_c(&rpms, &yum_out, false),
                    )
                },
            );
            eprintln!("publish_vs_native: {n} rep {rep}: {}", times.last());
        }
        let (ours, apt, yum) = times.medians();
        println!(
            "| {n} | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
            (apt + yum) / ours
        );

        if n >= 1_000 {
            // Each rep adds one more package to repo0 (kmodfarm's) and to
            // the directory createrepo_c and apt-ftparchive index again.
            let mut times = Times::default();
            for rep in 0..reps {
                let new = dir.join(format!("new{rep}"));
                std::fs::create_dir_all(&new).unwrap();
                let k = n + rep;
                deb(&new, &kernel_name(k), "amd64");
                std::fs::copy(
                    new.join(format!("{}_1.0.0-1_amd64.deb", kernel_name(k))),
                    debs.join(format!("{}_1.0.0-1_amd64.deb", kernel_name(k))),
                )
                .unwrap();
                rpm(&new, &kmod_name(k));
                std::fs::copy(
                    new.join(format!("{}-1.0.0-1.x86_64.rpm", kmod_name(k))),
                    rpms.join(format!("{}-1.0.0-1.x86_64.rpm", kmod_name(k))),
                )
                .unwrap();
                sh("sync");
                times.rep(
                    rep,
                    || kmodfarm_publish(&key, &dir.join("repo0"), &new),
                    || {
                        (
                            apt_ftparchive(
                                &dir.join("pk"),
                                &dir.join("apt0"),
                                &dir.join("ftparchive0.db"),
                            ),
                            createrepo_c(&rpms, &dir.join("yum0"), true),
                        )
                    },
                );
                eprintln!(
                    "publish_vs_native: add 1 to {n} rep {rep}: {}",
                    times.last()
                );
            }
            let (ours, apt, yum) = times.medians();
            add_rows.push((n, ours, apt, yum));
        }
    }
    for (n, ours, apt, yum) in add_rows {
        println!();
        println!("| add 1 to {n} | kmodfarm publish (incremental) | apt-ftparchive --db (cached) | createrepo_c --update | kmodfarm vs createrepo_c --update |");
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| | {ours:.3} s | {apt:.3} s | {yum:.3} s | {:.1}× faster |",
            yum / ours
        );
    }
    println!();
    println!("(medians of {reps} runs each)");
}

/// Seconds of each run: kmodfarm, apt-ftparchive, createrepo_c.
#[derive(Default)]
struct Times {
    ours: Vec<f64>,
    apt: Vec<f64>,
    yum: Vec<f64>,
}

impl Times {
    /// One run of both sides; every other run the native tools go first,
    /// so neither side always follows the other's writes.
    fn rep(&mut self, rep: usize, ours: impl FnOnce() -> f64, native: impl FnOnce() -> (f64, f64)) {
        let (o, (a, y)) = if rep.is_multiple_of(2) {
            let o = ours();
            (o, native())
        } else {
            let n = native();
            (ours(), n)
        };
        self.ours.push(o);
        self.apt.push(a);
        self.yum.push(y);
    }

    fn last(&self) -> String {
        let at = self.ours.len() - 1;
        format!(
            "kmodfarm {:.3} s, apt-ftparchive {:.3} s, createrepo_c {:.3} s",
            self.ours[at], self.apt[at], self.yum[at]
        )
    }

    fn medians(self) -> (f64, f64, f64) {
        (
            kmodfarm_tests::median(self.ours),
            kmodfarm_tests::median(self.apt),
            kmodfarm_tests::median(self.yum),
        )
    }
}
