//! Benchmark (not a test): yum metadata for N packages with `rpm_md`
//! against `createrepo_c` on the same files, in the same run; then adding
//! one package to the N-package repository, `rpm_md` with the records of
//! the N packages kept (as a publish's state file keeps them) against
//! `createrepo_c --update`. Prints medians and ratios.
//!
//!     cargo bench -p kmodfarm-publish --bench rpm_md_vs_createrepo [-- 1 100 10000]
//!
//! The packages are small binary rpms made here with the `rpm` crate
//! (three files, a few dependencies, one changelog entry), like the
//! prebuilt `kmod-` packages a matrix produces. Both sides write gzip
//! metadata and no sqlite databases (`--no-database`: dnf and zypper do not
//! read them); createrepo_c runs with its default worker threads, rpm_md
//! on one thread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kmodfarm_publish::rpm_md::{repodata, MetadataCompression, RepodataOptions, RpmPackage};

const EPOCH: u32 = 1_700_000_000;

fn make_package(dir: &Path, i: usize) -> PathBuf {
    use rpm::{Dependency, FileOptions};
    let kernel = format!("5.14.0-{i}.el9.x86_64");
    let name = format!("kmod-bench-{kernel}");
    let pkg = rpm::PackageBuilder::new(&name, "1.0.0", "GPL-2.0-only", "x86_64", "bench module")
        .using_config(rpm::BuildConfig::v4().source_date(EPOCH))
        .release("1")
        .description("A prebuilt module for one kernel.")
        .requires(Dependency::eq("kernel-uname-r", kernel.clone()))
        .requires(Dependency::script_post("/bin/sh"))
        .provides(Dependency::eq("bench-kmod", "1.0.0"))
        .add_changelog_entry("bench <b@example.org> - 1.0.0-1", "- Built.", EPOCH)
        .with_file_contents(
            vec![0u8; 16_384],
            FileOptions::new(format!("/lib/modules/{kernel}/updates/bench.ko.zst")),
        )
        .unwrap()
        .with_file_contents(
            kernel.clone().into_bytes(),
            FileOptions::new(format!("/var/lib/kmodfarm/bench/prebuilt/{kernel}")),
        )
        .unwrap()
        .with_dir_entry(FileOptions::dir("/var/lib/kmodfarm/bench"))
        .unwrap()
        .build()
        .unwrap();
    let path = dir.join(format!("{name}-1.0.0-1.x86_64.rpm"));
    pkg.write_file(&path).unwrap();
    path
}

fn options() -> RepodataOptions {
    RepodataOptions {
        compression: MetadataCompression::Gzip,
        timestamp: u64::from(EPOCH),
        clamp_file_times_to: Some(u64::from(EPOCH)),
    }
}

fn href(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

fn write(dir: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) {
    for (path, bytes) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn rpm_md_full(dir: &Path, files: &[PathBuf]) -> Vec<RpmPackage> {
    let records: Vec<RpmPackage> = files
        .iter()
        .map(|f| RpmPackage::read(f, &href(f)).unwrap())
        .collect();
    let data = repodata(&records, &options()).unwrap();
    write(dir, &data.files);
    records
}

fn createrepo(args: &[&str], dir: &Path) {
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .args(args)
        .arg(dir)
        .output()
        .expect("createrepo_c runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 100, 1000]
    } else {
        sizes
    };
    println!("| packages | rpm_md | createrepo_c --no-database | ratio | add 1: rpm_md with kept records | add 1: createrepo_c --update | ratio |");
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<PathBuf> = (0..n).map(|i| make_package(&dir, i)).collect();
        let rounds = if n >= 5000 { 3 } else { 7 };

        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut records = Vec::new();
        for _ in 0..rounds {
            let _ = std::fs::remove_dir_all(dir.join("repodata"));
            let t = Instant::now();
            records = rpm_md_full(&dir, &files);
            ours.push(t.elapsed());
            let _ = std::fs::remove_dir_all(dir.join("repodata"));
            let t = Instant::now();
            createrepo(&[], &dir);
            theirs.push(t.elapsed());
        }
        let (ours, theirs) = (median(ours), median(theirs));

        // One new package into the existing N-package repository.
        let mut ours_add = Vec::new();
        let mut theirs_add = Vec::new();
        for round in 0..rounds {
            let new = make_package(&dir, n + round);
            let t = Instant::now();
            let mut all = records.clone();
            all.push(RpmPackage::read(&new, &href(&new)).unwrap());
            let data = repodata(&all, &options()).unwrap();
            write(&dir.join("ours-add"), &data.files);
            ours_add.push(t.elapsed());
            // createrepo_c's own metadata of the N packages is in place.
            let _ = std::fs::remove_dir_all(dir.join("repodata"));
            std::fs::remove_file(&new).unwrap();
            createrepo(&[], &dir);
            make_package(&dir, n + round);
            let t = Instant::now();
            createrepo(&["--update"], &dir);
            theirs_add.push(t.elapsed());
            std::fs::remove_file(&new).unwrap();
        }
        let (ours_add, theirs_add) = (median(ours_add), median(theirs_add));
        println!(
            "| {n} | {} | {} | {:.1}× | {} | {} | {:.1}× |",
            ms(ours),
            ms(theirs),
            theirs.as_secs_f64() / ours.as_secs_f64(),
            ms(ours_add),
            ms(theirs_add),
            theirs_add.as_secs_f64() / ours_add.as_secs_f64()
        );
    }
}
