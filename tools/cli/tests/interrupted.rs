//! What killed and failed runs of `render` and `package` leave behind: a
//! run killed at any moment (SIGKILL: no chance to clean up) leaves every
//! product either absent or complete, and the next run sweeps whatever
//! temporary files the killed one had made. A package never contains an
//! earlier run's packages, wherever `--out` points.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many kill points each command gets, spread over one run's length.
const KILL_POINTS: u32 = 24;

/// A copy of the example module (module/) in a temp dir.
fn example() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(repo.join("module/kmodfarm.toml"))
        .arg(repo.join("module/src"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn kmodfarm(manifest: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmodfarm"));
    cmd.arg("-m").arg(manifest).args(args);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

fn run_ok(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names in `dir` (not recursive) that a run uses only while it runs.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".kmodfarm-tmp-") || n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `cmd`, kills it with SIGKILL after `after`, and waits for it.
fn kill_after(mut cmd: Command, after: Duration) {
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(after);
    // It may have finished already: then there is nothing to kill.
    let _ = child.kill();
    let _ = child.wait();
}

/// How long one uninterrupted run takes here (not asserted: it only
/// spreads the kill points over the run).
fn duration_of(make: impl Fn() -> Command) -> Duration {
    let start = Instant::now();
    run_ok(make());
    start.elapsed().max(Duration::from_millis(20))
}

fn checks_ok(tool: &str, args: &[&str], file: &Path) {
    let out = Command::new(tool).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} {}: an incomplete product was left:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every package in `dir` is whole: dpkg-deb and rpm read it.
fn every_package_is_complete(dir: &Path) -> usize {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("deb") => checks_ok("dpkg-deb", &["--info"], &path),
            Some("rpm") => checks_ok("rpm", &["-K", "--nosignature"], &path),
            _ => continue,
        }
        seen += 1;
    }
    seen
}

#[test]
fn package_killed_at_any_point_leaves_whole_packages_and_the_next_run_sweeps() {
    let project = example();
    let manifest = project.path().join("kmodfarm.toml");
    let out = project.path().join("out");
    let out_arg = out.display().to_string();
    let make = || kmodfarm(&manifest, &["package", "--out", &out_arg]);
    let full = duration_of(make);
    std::fs::remove_dir_all(&out).unwrap();

    let mut left_temporaries = 0;
    for point in 0..KILL_POINTS {
        kill_after(make(), full * point / KILL_POINTS);
        every_package_is_complete(&out);
        left_temporaries += temporaries(&out).len();
        // Half the time the next run is killed too before it finishes, so
        // leftovers from several runs meet one sweep.
        if point % 2 == 1 {
            run_ok(make());
            assert_eq!(temporaries(&out), Vec::<String>::new());
            assert_eq!(
                every_package_is_complete(&out),
                2,
                "the -dkms .deb and .rpm"
            );
        }
    }
    run_ok(make());
    assert_eq!(temporaries(&out), Vec::<String>::new());
    assert_eq!(every_package_is_complete(&out), 2);
    // Not asserted (timing decides), but say whether kills landed mid-write.
    eprintln!("temporary files left by killed runs and swept: {left_temporaries}");
}

#[test]
fn render_killed_at_any_point_leaves_the_old_or_the_new_rendering() {
    let project = example();
    let manifest = project.path().join("kmodfarm.toml");
    let out = project.path().join("rendered");
    let out_arg = out.display().to_string();
    let make = || kmodfarm(&manifest, &["render", "--out", &out_arg]);
    let full = duration_of(make);

    for point in 0..KILL_POINTS {
        kill_after(make(), full * point / KILL_POINTS);
        // The previous rendering stays until the new one replaces it whole.
        assert!(out.join("dkms.conf").is_file(), "kill point {point}");
        assert!(out.join(".kmodfarm-render").is_file(), "kill point {point}");
        if point % 2 == 1 {
            run_ok(make());
            assert_eq!(temporaries(project.path()), Vec::<String>::new());
        }
    }
    run_ok(make());
    assert_eq!(temporaries(project.path()), Vec::<String>::new());
}

#[test]
fn a_package_of_a_tree_that_holds_its_own_output_does_not_contain_it() {
    let project = example();
    // `[source] dir = "."` with `--out pk` inside it, run twice.
    let tree = project.path().join("src");
    let manifest = tree.join("kmodfarm.toml");
    let text = std::fs::read_to_string(project.path().join("kmodfarm.toml")).unwrap();
    std::fs::write(&manifest, text.replace("dir = \"src\"", "dir = \".\"")).unwrap();
    let pk = tree.join("pk").display().to_string();
    run_ok(kmodfarm(
        &manifest,
        &["package", "--format", "deb", "--out", &pk],
    ));
    run_ok(kmodfarm(
        &manifest,
        &["package", "--format", "deb", "--out", &pk],
    ));

    let deb: PathBuf = std::fs::read_dir(tree.join("pk"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb in pk/");
    let listing = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("kmfdemo.c"), "{listing}");
    assert!(
        !listing.contains("/pk/"),
        "the package ships its own output:\n{listing}"
    );
    assert!(!listing.contains(".deb"), "{listing}");
}

#[test]
fn package_into_a_directory_it_cannot_create_leaves_nothing() {
    let project = example();
    let manifest = project.path().join("kmodfarm.toml");
    let locked = project.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let target = locked.join("a/b/out");
    // A missing source tree fails after the output directory could be
    // made: nothing of it may remain.
    let broken = project.path().join("broken.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&broken, text.replace("dir = \"src\"", "dir = \"gone\"")).unwrap();
    let out = kmodfarm(
        &broken,
        &["package", "--out", &target.display().to_string()],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        !locked.join("a").exists(),
        "a failed run left {}",
        locked.join("a").display()
    );

    // Where the directory cannot be created at all, the error names it.
    std::fs::write(locked.join("file"), "").unwrap();
    let bad = locked.join("file/out");
    let out = kmodfarm(&manifest, &["package", "--out", &bad.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("file/out"), "{stderr}");
    let _ = std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755));
}

#[test]
fn render_package_and_build_refuse_what_lint_refuses() {
    let project = example();
    // No Makefile or Kbuild: lint's error, which every writing command
    // must give too, with nothing written.
    std::fs::remove_file(project.path().join("src/Makefile")).unwrap();
    std::fs::remove_file(project.path().join("src/Kbuild")).unwrap();
    let manifest = project.path().join("kmodfarm.toml");
    let lint = kmodfarm(&manifest, &["lint"]).output().unwrap();
    assert!(!lint.status.success());
    let out = project.path().join("out").display().to_string();
    for args in [
        vec!["render", "--out", &out],
        vec!["package", "--out", &out],
        vec![
            "build",
            "--out",
            &out,
            "--kernel",
            "debian-12:6.1.0-99-amd64",
        ],
    ] {
        let run = kmodfarm(&manifest, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("fails `kmodfarm lint`") && stderr.contains("no Makefile or Kbuild"),
            "{args:?}: {stderr}"
        );
        assert!(!project.path().join("out").exists(), "{args:?} wrote out/");
    }
}

#[test]
fn build_refuses_zero_jobs_before_doing_anything() {
    let project = example();
    let manifest = project.path().join("kmodfarm.toml");
    let out = project.path().join("out").display().to_string();
    let run = kmodfarm(
        &manifest,
        &[
            "build",
            "--jobs",
            "0",
            "--out",
            &out,
            "--kernel",
            "debian-12:6.1.0-99-amd64",
        ],
    )
    .output()
    .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("--jobs") && stderr.contains("at least 1"),
        "{stderr}"
    );
    assert!(!project.path().join("out").exists());
}
