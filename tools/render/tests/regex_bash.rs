//! The rendered dkms.conf's BUILD_EXCLUSIVE_KERNEL, read the way DKMS reads
//! it (bash sources the file, then tests `[[ $kernel =~ $BUILD_EXCLUSIVE_KERNEL ]]`),
//! accepts exactly the real kernel releases inside the manifest's range.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kmodfarm_model::{KernelRelease, Manifest};

fn releases() -> Vec<KernelRelease> {
    let path: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/kernel-releases-x86_64.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the kernel release list {} is needed by this test: {e}",
            path.display()
        )
    });
    let unique: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let parsed: Vec<KernelRelease> = unique
        .into_iter()
        .filter_map(|r| KernelRelease::parse(r).ok())
        .collect();
    assert!(parsed.len() > 1000, "only {} releases parsed", parsed.len());
    parsed
}

fn manifest(dir: &Path, kernels: &str) -> Manifest {
    let text = format!(
        "[package]\nname = \"rx\"\nversion = \"1\"\nlicense = \"GPL-2.0-only\"\nsummary = \"s\"\ndescription = \"d\"\nmaintainer = \"T <t@example.org>\"\n[[module]]\nname = \"rx\"\n[kernels]\n{kernels}\n"
    );
    let path = dir.join("kmodfarm.toml");
    fs::write(&path, text).unwrap();
    Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Sources `conf` with bash and prints, per release on stdin, 1 or 0.
fn bash_matches(conf: &Path, kernelver: &str, releases: &[&str]) -> Vec<bool> {
    let script = r#"
        kernelver="$1"
        . "$2"
        while IFS= read -r k; do
            if [[ $k =~ $BUILD_EXCLUSIVE_KERNEL ]]; then echo 1; else echo 0; fi
        done
    "#;
    let mut child = Command::new("bash")
        .args(["-c", script, "bash", kernelver])
        .arg(conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let input: String = releases.iter().map(|r| format!("{r}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(answers.len(), releases.len());
    answers
}

#[test]
fn bash_reads_the_regex_as_the_range() {
    let all = releases();
    let names: Vec<&str> = all.iter().map(KernelRelease::as_str).collect();
    for kernels in [
        "min = \"5.15\"\nmax = \"6.8\"",
        "min = \"4.18\"\nmax = \"5.14\"",
        "min = \"5.4.100\"\nmax = \"5.10\"",
        "min = \"4.14\"\nmax = \"4.14\"",
        "min = \"5.0\"",
        "max = \"4.19.200\"",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), kernels);
        let files = common::render(&m);
        let conf = dir.path().join("dkms.conf");
        fs::write(&conf, &common::file(&files, "dkms.conf").contents).unwrap();
        let answers = bash_matches(&conf, "", &names);
        let mut wrong = Vec::new();
        let mut inside = 0;
        for (release, bash_says) in all.iter().zip(answers) {
            let expected = m.kernels.contains(release);
            inside += usize::from(expected);
            if bash_says != expected {
                wrong.push(format!("{release}: bash {bash_says}, range {expected}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{kernels}: {} disagreements, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        // The comparison means something only with releases on both sides.
        assert!(
            inside > 20 && all.len() - inside > 20,
            "{kernels}: {inside} of {} inside",
            all.len()
        );
    }
}

#[test]
fn a_prebuilt_marker_makes_dkms_skip_that_kernel_only() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "min = \"5.15\"\nmax = \"6.8\"");
    let files = common::render(&m);
    // The same dkms.conf with the state directory moved into the test's tree.
    let state = dir.path().join("state");
    let conf_text = common::file(&files, "dkms.conf")
        .contents
        .replace("/var/lib/kmodfarm/", &format!("{}/", state.display()));
    let conf = dir.path().join("dkms.conf");
    fs::write(&conf, conf_text).unwrap();
    let served = "6.1.0-56-amd64";
    let other = "6.1.0-57-amd64";
    fs::create_dir_all(state.join("rx/prebuilt")).unwrap();
    fs::write(
        state.join("rx/prebuilt").join(served),
        "rx-modules-6.1.0-56-amd64\n",
    )
    .unwrap();
    assert_eq!(bash_matches(&conf, served, &[served]), [false]);
    assert_eq!(bash_matches(&conf, other, &[other]), [true]);
    // While DKMS reads the file without a kernel (dkms add, status), the
    // marker directory itself must not count as a marker.
    assert_eq!(bash_matches(&conf, "", &[served]), [true]);
}
