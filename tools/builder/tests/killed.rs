//! `kmodfarm build` killed with SIGKILL at points spread over its run (a
//! short build of two Debian 12 kernels, two at once, into one --out):
//! afterwards no process of the killed run is left (bwrap, podman, make,
//! the compiler), every product in the output is whole (zstd -t, the
//! sha256 its record gives), and the next run sweeps what the killed one
//! left (temporary entries in --out, its work directory in the cache).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bookworm_pair, InitModule, HELLO_C};
use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::kmodfarm_bin;
use sha2::{Digest, Sha256};

/// Kill points per runtime.
const KILLS: u32 = 24;

/// The test's module: its build command carries `marker`, so every
/// process of its builds has it in its environment (BUILD_CMD), and once
/// make is done it waits while `src/hold` exists: a build killed with a
/// hold in place cannot finish on its own, so anything of it that
/// survives the kill stays to be seen.
fn module(marker: &str) -> InitModule {
    let module = InitModule::new("killme", "killme", HELLO_C);
    module.edit_manifest(
        "[build]\n",
        &format!(
            "[build]\ncommand = \"true {marker}; make -C \\\"$kernel_source_dir\\\" M=\\\"$PWD\\\" modules; while [ -e \\\"$SRC/hold\\\" ]; do sleep 0.2; done\"\n"
        ),
    );
    module
}

fn start(module: &InitModule, runtime: &str, out: &Path, kernels: &[&KernelRelease]) -> Child {
    let mut cmd = Command::new(kmodfarm_bin());
    cmd.arg("--manifest")
        .arg(module.manifest())
        .args(["build", "--runtime", runtime, "--jobs", "2", "--out"])
        .arg(out);
    for k in kernels {
        cmd.arg("--kernel").arg(format!("debian-12:{k}"));
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kmodfarm starts")
}

/// Processes of this test's builds: bwrap, unshare and podman name the
/// module's directory on their command line; what runs inside (sh, make,
/// gcc) has the marker in its environment.
fn processes_of(module_dir: &Path, marker: &str) -> Vec<String> {
    let dir = module_dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let read = |what: &str| {
            std::fs::read(entry.path().join(what))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default()
        };
        let cmdline = read("cmdline");
        if cmdline.contains(&dir) || read("environ").contains(marker) {
            found.push(format!("{name}: {}", cmdline.trim()));
        }
    }
    found
}

/// Podman containers the kmodfarm process `pid` started (named
/// `kmodfarm-build-<pid>-<n>`), running or not.
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("podman")
        .args(["ps", "-a", "--filter"])
        .arg(format!("name=kmodfarm-build-{pid}-"))
        .args(["--format", "{{.Names}} {{.Status}}"])
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (a bounded while: SIGKILL reaches the children through the
/// kernel, not at once) until `left` says nothing is left; returns what
/// is left at the end.
fn settle(left: impl Fn() -> Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = left();
        if now.is_empty() || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every file and directory below `dir` whose name kmodfarm uses for
/// temporary entries (or `.part` files of earlier versions).
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    common::files_below(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".kmodfarm-tmp-")
                || name.starts_with(".incoming-")
                || name.ends_with(".part")
                || name.ends_with(".tmp")
        })
        .collect()
}

/// The cache's work directories holding this test's source.
fn work_dirs_of(file: &str) -> Vec<PathBuf> {
    let work = kmodfarm_builder::cache_dir::default_cache_dir().join("work");
    common::files_below(&work)
        .into_iter()
        // The build directory of the dkms tree a build lays out:
        // `<work>/out/dkms/<name>/<version>/build/<file>.c`.
        .filter(|p| {
            p.to_string_lossy().contains("/out/dkms/") && p.ends_with(format!("build/{file}.c"))
        })
        .collect()
}

/// Every product in `out` is whole: each kernel directory's record.json
/// gives the sha256 of the file beside it, and zstd reads it to the end.
/// Returns how many there are.
fn check_products(out: &Path) -> usize {
    let mut seen = 0;
    for record_file in common::files_below(out)
        .into_iter()
        .filter(|p| p.file_name().unwrap() == "record.json")
    {
        let text = std::fs::read_to_string(&record_file).unwrap();
        let records: Vec<BuildRecord> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", record_file.display()));
        for r in records {
            if let BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } = &r.outcome
            {
                let file = out.join(&artifact.path);
                assert_eq!(file.parent(), record_file.parent());
                let bytes = std::fs::read(&file)
                    .unwrap_or_else(|e| panic!("{} recorded, not there: {e}", file.display()));
                assert_eq!(
                    hex::encode(Sha256::digest(&bytes)),
                    artifact.sha256,
                    "{}",
                    file.display()
                );
                let test = Command::new("zstd").arg("-tq").arg(&file).output().unwrap();
                assert!(
                    test.status.success(),
                    "{}: {}",
                    file.display(),
                    String::from_utf8_lossy(&test.stderr)
                );
                seen += 1;
            }
        }
    }
    seen
}

/// What of a run is left: its processes, and for podman the containers
/// kmodfarm process `pid` started.
fn left_of(runtime: &str, dir: &Path, marker: &str, pid: Option<u32>) -> Vec<String> {
    let mut left = processes_of(dir, marker);
    if let (Some(pid), "podman") = (pid, runtime) {
        left.extend(containers_of(pid));
    }
    left
}

fn kill_at_many_points(runtime: &str) {
    // One runtime at a time: the kill points are spread over a run's
    // length, measured with the machine as the other test leaves it.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (k61, k612) = bookworm_pair();
    let kernels = [&k61, &k612];
    let marker = format!(
        "kmodfarm-kill-test-{runtime}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    );
    let module = module(&marker);
    let dir = module.dir.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");

    // One whole run first: how long a build takes, the kill points spread
    // over it.
    let started = Instant::now();
    let whole = start(&module, runtime, &out, &kernels)
        .wait_with_output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let span = started.elapsed();

    let hold = module.dir.path().join("src/hold");
    let mut hit_a_build = 0;
    let mut left_a_work_dir = 0;
    for i in 1..=KILLS {
        // A source no run has built: every run compiles. Every other run
        // is held after make (see `module`): its kill finds the build
        // still running, and whatever survives the kill cannot end by
        // itself. The others run free and are killed while they finish.
        module.restamp("");
        let held = i % 2 == 0;
        if held {
            std::fs::write(&hold, "").unwrap();
        }
        let mut child = start(&module, runtime, &out, &kernels);
        let pid = child.id();
        std::thread::sleep(span * i / (KILLS + 1));
        if !processes_of(&dir, &marker).is_empty() {
            hit_a_build += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let left = settle(|| left_of(runtime, &dir, &marker, Some(pid)));
        if held {
            std::fs::remove_file(&hold).unwrap();
        }
        assert!(
            left.is_empty(),
            "kill {i} of {KILLS} (held: {held}) left: {left:#?}"
        );
        if !work_dirs_of(&module.file).is_empty() {
            left_a_work_dir += 1;
        }
        check_products(&out);
    }
    // The kills were spread over the run: some hit a compile, some
    // left the work directory a killed run cannot remove itself.
    assert!(hit_a_build >= 5, "only {hit_a_build} kills hit a build");
    assert!(left_a_work_dir >= 1, "no kill left a work directory");

    // The next run completes and sweeps what the killed ones left.
    module.restamp("");
    let next = start(&module, runtime, &out, &kernels)
        .wait_with_output()
        .unwrap();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(check_products(&out), 2);
    let records: Vec<BuildRecord> =
        serde_json::from_str(&std::fs::read_to_string(out.join("records.json")).unwrap()).unwrap();
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        let BuildOutcome::Built { artifact } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        let bytes = std::fs::read(out.join(&artifact.path)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), artifact.sha256);
    }
    assert_eq!(temporaries(&out), Vec::<PathBuf>::new());
    assert_eq!(work_dirs_of(&module.file), Vec::<PathBuf>::new());
    assert_eq!(left_of(runtime, &dir, &marker, None), Vec::<String>::new());
}

#[test]
fn a_bwrap_build_killed_anywhere_leaves_no_process_no_half_product_and_is_swept() {
    kill_at_many_points("bwrap");
}

#[test]
fn a_podman_build_killed_anywhere_leaves_no_container_no_half_product_and_is_swept() {
    kill_at_many_points("podman");
}
