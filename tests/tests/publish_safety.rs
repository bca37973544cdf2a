//! Issue 11, "Must show", the publish's safety: bad input is refused with
//! an error naming the file and leaves the repository byte-identical;
//! concurrent publishes are serialised by the lock; a publish SIGKILLed at
//! any of 50 points spread over its run leaves a repository apt and dnf
//! accept (checked with gpgv and the digests apt and dnf check, and by the
//! real apt-get of the Debian 12 root and the real dnf at a sample of the
//! points).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kmodfarm_tests::dnf::{Dnf, YumRepo};
use kmodfarm_tests::{fixtures, kmodfarm_bin, kmodfarm_package, ModuleCopy, Sandbox, StaticServer};
use sha2::{Digest, Sha256};

/// The yum repository of the RHEL 9 target.
const YUM_DIR: &str = "rpm/rhel-9/x86_64";

/// The example module with Debian 12 and RHEL 9 as its only targets (one
/// of each family), so prebuilt packages need no build records to find
/// their distro.
fn module_for_two_targets(version: &str) -> ModuleCopy {
    ModuleCopy::example_with(&[
        (
            "distros = [\"debian-12\", \"debian-13\", \"ubuntu-22.04\", \"ubuntu-24.04\", \"rhel-8\", \"rhel-9\", \"sles-15\"]",
            "distros = [\"debian-12\", \"rhel-9\"]",
        ),
        ("version = \"1.0.0\"", &format!("version = \"{version}\"")),
    ])
    .expect("a copy of module/")
}

fn keygen(dir: &Path) -> PathBuf {
    let out = Command::new(kmodfarm_bin())
        .args(["keygen", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir.join("kmodfarm.secret.asc")
}

fn publish_cmd(manifest: &Path, repo: &Path, key: &Path, packages: &Path) -> Command {
    let mut cmd = Command::new(kmodfarm_bin());
    cmd.arg("-m")
        .arg(manifest)
        .args(["publish", "--repo"])
        .arg(repo)
        .arg("--key")
        .arg(key)
        .arg("--packages")
        .arg(packages)
        .env_remove("KMODFARM_KEY_PASSPHRASE");
    cmd
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}", said(&out));
    said(&out)
}

/// `cmd` fails, saying `needle` (the file to fix) in its error.
fn run_fails_naming(cmd: &mut Command, needle: &str) -> String {
    let out = cmd.output().unwrap();
    let text = said(&out);
    assert!(!out.status.success(), "{cmd:?} succeeded:\n{text}");
    assert!(text.contains("error: "), "no error line:\n{text}");
    assert!(
        text.contains(needle),
        "the error does not name {needle}:\n{text}"
    );
    text
}

/// Every file and directory under `dir` with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if meta.is_dir() {
                out.insert(rel, (Vec::new(), mode));
                stack.push(path);
            } else {
                out.insert(rel, (std::fs::read(&path).unwrap(), mode));
            }
        }
    }
    out
}

/// A published repository of the example's -dkms package, and a second
/// version's packages to publish into it.
struct Fixture {
    work: tempfile::TempDir,
    module: ModuleCopy,
    key: PathBuf,
    next: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let work = tempfile::tempdir().unwrap();
        let module = module_for_two_targets("1.0.0");
        let key = keygen(&work.path().join("key"));
        let next_module = module_for_two_targets("1.0.1");
        let next = work.path().join("v2");
        for format in ["deb", "rpm"] {
            kmodfarm_package(&module.manifest(), format, &work.path().join("v1"), &[]);
            kmodfarm_package(&next_module.manifest(), format, &next, &[]);
        }
        Fixture {
            work,
            module,
            key,
            next,
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.work.path().join(p)
    }
    fn publish_first(&self, repo: &Path) {
        run_ok(&mut publish_cmd(
            &self.module.manifest(),
            repo,
            &self.key,
            &self.path("v1"),
        ));
    }
    fn publish(&self, repo: &Path, packages: &Path) -> Command {
        publish_cmd(&self.module.manifest(), repo, &self.key, packages)
    }
}

#[test]
fn bad_input_is_named_and_leaves_the_repository_byte_identical() {
    let f = Fixture::new();
    let repo = f.path("repo");
    f.publish_first(&repo);
    let before = snapshot(&repo);

    // A file that is not a package.
    let junk = f.path("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("kmfdemo-dkms_9_all.deb"), b"not an ar archive").unwrap();
    run_fails_naming(&mut f.publish(&repo, &junk), "junk/kmfdemo-dkms_9_all.deb");
    assert_eq!(
        snapshot(&repo),
        before,
        "a refused publish changed the repository"
    );

    // Another module's package.
    let other = ModuleCopy::example_with(&[("name = \"kmfdemo\"", "name = \"othermod\"")]).unwrap();
    let other_debs = kmodfarm_package(&other.manifest(), "deb", &f.path("other"), &[]);
    let text = run_fails_naming(
        &mut f.publish(&repo, &f.path("other")),
        &other_debs[0].display().to_string(),
    );
    assert!(text.contains("othermod-dkms"), "{text}");
    assert_eq!(snapshot(&repo), before);
    // The same for .rpm files: junk, and another module's package.
    std::fs::remove_file(junk.join("kmfdemo-dkms_9_all.deb")).unwrap();
    std::fs::write(junk.join("kmfdemo-dkms-9-1.noarch.rpm"), b"not an rpm").unwrap();
    run_fails_naming(
        &mut f.publish(&repo, &junk),
        "junk/kmfdemo-dkms-9-1.noarch.rpm",
    );
    let other_rpms = kmodfarm_package(&other.manifest(), "rpm", &f.path("other-rpm"), &[]);
    let text = run_fails_naming(
        &mut f.publish(&repo, &f.path("other-rpm")),
        &other_rpms[0].display().to_string(),
    );
    assert!(text.contains("othermod-dkms"), "{text}");
    assert_eq!(snapshot(&repo), before);

    // A missing key.
    let missing = f.path("no-such-key.asc");
    run_fails_naming(
        &mut publish_cmd(&f.module.manifest(), &repo, &missing, &f.next),
        "no-such-key.asc",
    );
    assert_eq!(snapshot(&repo), before);

    // A wrong passphrase (from the environment; never argv).
    let protected = f.path("protected");
    let out = Command::new(kmodfarm_bin())
        .args(["keygen", "--out"])
        .arg(&protected)
        .env("KMODFARM_KEY_PASSPHRASE", "right one")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let key = protected.join("kmodfarm.secret.asc");
    let text = run_fails_naming(
        publish_cmd(&f.module.manifest(), &repo, &key, &f.next)
            .env("KMODFARM_KEY_PASSPHRASE", "wrong one"),
        &key.display().to_string(),
    );
    assert!(text.contains("wrong passphrase"), "{text}");
    run_fails_naming(
        &mut publish_cmd(&f.module.manifest(), &repo, &key, &f.next),
        "KMODFARM_KEY_PASSPHRASE",
    );
    assert_eq!(snapshot(&repo), before);

    // A directory that is not a kmodfarm repository.
    let foreign = f.path("foreign");
    std::fs::create_dir_all(foreign.join("deb")).unwrap();
    std::fs::write(foreign.join("README"), "someone else's files\n").unwrap();
    let foreign_before = snapshot(&foreign);
    let text = run_fails_naming(
        &mut f.publish(&foreign, &f.next),
        &foreign.display().to_string(),
    );
    assert!(text.contains("not a kmodfarm repository"), "{text}");
    assert_eq!(snapshot(&foreign), foreign_before);

    // The good input still publishes afterwards.
    run_ok(&mut f.publish(&repo, &f.next));
    assert_ne!(snapshot(&repo), before);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs (the test needs root)");
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn remount(&self, option: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_read_only_or_full_file_system_is_named_and_leaves_the_repository_byte_identical() {
    let f = Fixture::new();

    let ro = Tmpfs::new("16m");
    let repo = ro.path().join("repo");
    f.publish_first(&repo);
    let before = snapshot(&repo);
    ro.remount("ro");
    run_fails_naming(&mut f.publish(&repo, &f.next), &repo.display().to_string());
    assert_eq!(snapshot(&repo), before);
    ro.remount("rw");

    // Full: fill the file system but for a few KiB, less than the next
    // version's package needs.
    let full = Tmpfs::new("4m");
    let repo = full.path().join("repo");
    f.publish_first(&repo);
    let before = snapshot(&repo);
    let filler = full.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let next_size: u64 = std::fs::read_dir(&f.next)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    // Give back less than the package's size: the copy must run out.
    let give_back = (next_size / 2).max(4096);
    let len = std::fs::metadata(&filler).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    file.set_len(len.saturating_sub(give_back)).unwrap();
    drop(file);
    let text = run_fails_naming(&mut f.publish(&repo, &f.next), &repo.display().to_string());
    assert!(text.contains("No space left"), "{text}");
    assert_eq!(
        snapshot(&repo),
        before,
        "a publish that ran out of space changed the repository"
    );
}

#[test]
fn concurrent_publishes_wait_or_fail_clearly_and_the_repository_ends_valid() {
    let f = Fixture::new();
    let repo = f.path("repo");
    f.publish_first(&repo);

    // Someone holds the lock: a publish fails at once, naming it; with
    // --wait it waits and then publishes.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(repo.join(".kmodfarm/lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = snapshot(&repo);
    let text = run_fails_naming(&mut f.publish(&repo, &f.next), ".kmodfarm/lock");
    assert!(text.contains("another publish is running"), "{text}");
    assert_eq!(snapshot(&repo), before);
    let mut waiting = f.publish(&repo, &f.next);
    let mut child = waiting
        .arg("--wait")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--wait did not wait for the lock"
    );
    lock.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(check_repo(&repo, &f.path("key/kmodfarm.gpg")).unwrap(), 2);

    // Two at once, for real: each succeeds or fails saying so; the
    // repository holds both changes or one, and apt's checks pass.
    let third_module = module_for_two_targets("1.0.2");
    let third = f.path("v3");
    kmodfarm_package(&third_module.manifest(), "deb", &third, &[]);
    let a = f
        .publish(&repo, &f.next)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = f
        .publish(&repo, &third)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success() || said(out).contains("another publish is running"),
            "{}",
            said(out)
        );
    }
    let serial = check_repo(&repo, &f.path("key/kmodfarm.gpg")).unwrap();
    let succeeded = [&a, &b].iter().filter(|o| o.status.success()).count() as u64;
    assert_eq!(serial, 2 + succeeded);
    let packages =
        std::fs::read_to_string(repo.join("deb/dists/bookworm/main/binary-amd64/Packages"))
            .unwrap();
    assert_eq!(
        packages.contains("Version: 1.0.2-1"),
        b.status.success(),
        "{packages}"
    );
}

/// The checks apt makes on `repo`, without apt: every InRelease verifies
/// with gpgv under `keyring`; every list it names exists by hash with that
/// SHA-256; every package the lists name is in the pool with its SHA-256.
/// Also index.json verifies. Returns index.json's serial.
fn check_repo(repo: &Path, keyring: &Path) -> Result<u64, String> {
    let dists = repo.join("deb/dists");
    for entry in std::fs::read_dir(&dists).map_err(|e| e.to_string())? {
        let dist = entry.unwrap().path();
        let in_release = dist.join("InRelease");
        let out = Command::new("gpgv")
            .arg("--keyring")
            .arg(keyring)
            .arg(&in_release)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!("{}: {}", in_release.display(), said(&out)));
        }
        let text = std::fs::read_to_string(&in_release).unwrap();
        let body = text
            .split_once("\n\n")
            .and_then(|(_, rest)| rest.split_once("\n-----BEGIN PGP SIGNATURE-----"))
            .map(|(b, _)| b)
            .ok_or("InRelease is not clear-signed")?;
        let mut in_sha256 = false;
        for line in body.lines() {
            let line = line.strip_prefix("- ").unwrap_or(line);
            if !line.starts_with(' ') {
                in_sha256 = line == "SHA256:";
                continue;
            }
            if !in_sha256 {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (digest, name) = (parts[0], parts[2]);
            let dir = Path::new(name).parent().unwrap();
            let hashed = dist.join(dir).join("by-hash/SHA256").join(digest);
            let bytes = std::fs::read(&hashed).map_err(|e| format!("{}: {e}", hashed.display()))?;
            if hex::encode(Sha256::digest(&bytes)) != digest {
                return Err(format!("{} does not match its name", hashed.display()));
            }
            if name.ends_with("/Packages") {
                check_pool(repo, &String::from_utf8_lossy(&bytes))?;
            }
        }
    }
    check_yum(&repo.join(YUM_DIR), keyring)?;
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .arg(repo.join("index.json.asc"))
        .arg(repo.join("index.json"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!("index.json: {}", said(&out)));
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("index.json")).unwrap()).unwrap();
    Ok(index["serial"].as_u64().unwrap())
}

/// The checks dnf makes on a yum repository: repomd.xml.asc verifies; each
/// file repomd.xml names has its checksum; each package primary.xml names
/// has its checksum.
fn check_yum(yum: &Path, keyring: &Path) -> Result<(), String> {
    let repomd = yum.join("repodata/repomd.xml");
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .arg(yum.join("repodata/repomd.xml.asc"))
        .arg(&repomd)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!("{}: {}", repomd.display(), said(&out)));
    }
    let text = std::fs::read_to_string(&repomd).map_err(|e| e.to_string())?;
    for data in text.split("<data ").skip(1) {
        let digest = between(data, "<checksum type=\"sha256\">", "<").ok_or("no checksum")?;
        let href = between(data, "<location href=\"", "\"").ok_or("no location")?;
        let bytes = std::fs::read(yum.join(href)).map_err(|e| format!("{href}: {e}"))?;
        if hex::encode(Sha256::digest(&bytes)) != digest {
            return Err(format!("{href} does not match repomd.xml"));
        }
        if href.ends_with("-primary.xml.gz") {
            let mut xml = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut xml,
            )
            .map_err(|e| e.to_string())?;
            for package in xml.split("<package ").skip(1) {
                let digest = between(package, "pkgid=\"YES\">", "<").ok_or("no pkgid")?;
                let href = between(package, "<location href=\"", "\"").ok_or("no location")?;
                let bytes = std::fs::read(yum.join(href)).map_err(|e| format!("{href}: {e}"))?;
                if hex::encode(Sha256::digest(&bytes)) != digest {
                    return Err(format!("{href} does not match primary.xml"));
                }
            }
        }
    }
    Ok(())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn check_pool(repo: &Path, packages: &str) -> Result<(), String> {
    for stanza in packages.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
        };
        let (Some(file), Some(digest)) = (field("Filename"), field("SHA256")) else {
            continue;
        };
        let path = repo.join("deb").join(&file);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if hex::encode(Sha256::digest(&bytes)) != digest {
            return Err(format!("{} does not match Packages", path.display()));
        }
    }
    Ok(())
}

#[test]
fn a_publish_killed_at_fifty_points_leaves_a_repository_apt_and_dnf_accept() {
    let f = Fixture::new();
    // Enough packages that the publish takes a while to kill it in: the
    // -dkms package of 1.0.1 and 120 prebuilt packages (stand-in module
    // files: apt never looks inside them).
    std::fs::create_dir_all(f.path("fake")).unwrap();
    let fake_ko = f.path("fake/kmfdemo.ko.zst");
    std::fs::write(&fake_ko, vec![0x5a; 64 * 1024]).unwrap();
    let next_module = module_for_two_targets("1.0.1");
    for i in 0..120 {
        kmodfarm_package(
            &next_module.manifest(),
            "deb",
            &f.next,
            &[
                "--ko",
                &fake_ko.display().to_string(),
                "--kernel",
                &format!("6.1.0-{}-amd64", 100 + i),
            ],
        );
    }
    for i in 0..30 {
        kmodfarm_package(
            &next_module.manifest(),
            "rpm",
            &f.next,
            &[
                "--ko",
                &fake_ko.display().to_string(),
                "--kernel",
                &format!("5.14.0-{}.el9.x86_64", 100 + i),
            ],
        );
    }
    let base = f.path("base");
    f.publish_first(&base);
    let keyring = f.path("key/kmodfarm.gpg");
    assert_eq!(check_repo(&base, &keyring), Ok(1));

    let copy_of_base = |name: &str| {
        let dir = f.path(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir
    };
    // How long an uninterrupted publish of the new version takes.
    let timed = copy_of_base("timed");
    let start = Instant::now();
    run_ok(&mut f.publish(&timed, &f.next));
    let full = start.elapsed();
    assert_eq!(check_repo(&timed, &keyring), Ok(2));

    let mut outcomes = BTreeMap::new();
    let mut killed_repos = Vec::new();
    for point in 0..54u32 {
        let repo = copy_of_base(&format!("killed-{point}"));
        let mut child = f
            .publish(&repo, &f.next)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Points 0..=49 spread over the uninterrupted run's time; four
        // more wait longer (up to 3x), so that on a loaded machine, where
        // this publish may be slower than the timed one, some kills still
        // come after it finished.
        let at = if point <= 49 {
            f64::from(point) / 49.0
        } else {
            1.0 + f64::from(point - 49) * 0.5
        };
        std::thread::sleep(full.mul_f64(at));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let serial = check_repo(&repo, &keyring).unwrap_or_else(|e| {
            panic!("killed at point {point} ({status}): the repository is broken: {e}")
        });
        assert!(serial == 1 || serial == 2, "serial {serial}");
        *outcomes.entry((serial, status.success())).or_insert(0) += 1;
        killed_repos.push(repo);
    }
    // The points were spread over the run: some kills left the old
    // repository, some landed after it finished.
    assert!(outcomes.keys().any(|(s, _)| *s == 1), "{outcomes:?}");
    assert!(outcomes.keys().any(|(s, _)| *s == 2), "{outcomes:?}");
    eprintln!("outcomes (serial, exited by itself) -> runs: {outcomes:?}");

    // A rerun after a kill completes the publish.
    let rerun = &killed_repos[5];
    run_ok(&mut f.publish(rerun, &f.next));
    assert_eq!(check_repo(rerun, &keyring), Ok(2));
    assert!(
        !snapshot(rerun)
            .keys()
            .any(|p| p.to_string_lossy().ends_with(".kmodfarm-new")),
        "leftovers of the killed publish remain"
    );

    // The real apt of Debian 12 on a sample of the killed repositories.
    let root = fixtures::bookworm();
    let server = StaticServer::start(f.work.path()).unwrap();
    let sandbox = Sandbox::new(&root.root).unwrap();
    sandbox
        .write_file(
            "/etc/apt/keyrings/kmfdemo.gpg",
            &std::fs::read(&keyring).unwrap(),
            0o644,
        )
        .unwrap();
    for point in [1usize, 10, 20, 30, 45, 53] {
        let name = killed_repos[point]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = format!(
            "deb [signed-by=/etc/apt/keyrings/kmfdemo.gpg] {} bookworm main\n",
            server.url(&format!("{name}/deb"))
        );
        sandbox
            .write_file("/etc/apt/kmf-only.list", source.as_bytes(), 0o644)
            .unwrap();
        let out = sandbox
            .sh(
                "rm -rf /var/lib/apt/kmf-lists && mkdir -p /var/lib/apt/kmf-lists/partial && \
                 apt-get -o Dir::Etc::SourceList=/etc/apt/kmf-only.list -o Dir::Etc::SourceParts=/nonexistent \
                 -o Dir::State::Lists=/var/lib/apt/kmf-lists update 2>&1 && \
                 apt-cache -o Dir::Etc::SourceList=/etc/apt/kmf-only.list -o Dir::Etc::SourceParts=/nonexistent \
                 -o Dir::State::Lists=/var/lib/apt/kmf-lists policy kmfdemo-dkms",
            )
            .unwrap();
        assert!(
            out.success() && !out.stdout.contains("W: ") && out.stdout.contains("kmfdemo-dkms"),
            "apt-get update on the repository killed at point {point}:\n{out}"
        );
        // The real dnf, signatures checked, on the same repository.
        let key = format!("file://{}", f.path("key/kmodfarm.asc").display());
        let dnf = Dnf::new(&[YumRepo {
            id: "kmodfarm",
            baseurl: &server.url(&format!("{name}/{YUM_DIR}/")),
            gpgkey: &key,
        }]);
        let out = dnf.run(&["makecache"]);
        let listed = dnf.run(&["repoquery", "--available", "kmfdemo-dkms"]);
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&listed.stdout).contains("kmfdemo-dkms"),
            "dnf makecache on the repository killed at point {point}:\n{}",
            kmodfarm_tests::dnf::said(&out)
        );
    }
}
