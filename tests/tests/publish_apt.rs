//! Issue 11, "Must show", apt part: the repository `kmodfarm publish`
//! writes, read by the real apt of Debian 12 (gpgv) and Debian 13 (sqv)
//! over HTTP on 127.0.0.1, with the key given by `signed-by` and no
//! `trusted=yes`:
//!
//! - `apt-get update` + `apt-get install kmfdemo-dkms` (DKMS builds it),
//!   then a prebuilt package made from that build and published into the
//!   same repository (an incremental publish) installs too;
//! - a tampered Packages list, a tampered Release, a Release signed by
//!   another key and an expired Valid-Until each make apt refuse.
//!
//! The server is Python's http.server (a named stand-in, see
//! `StaticServer`). Needs root, bwrap and the cached Debian roots.

use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_model::manifest::Compression;
use kmodfarm_model::record::{Artifact, BuildOutcome, BuildRecord, SymbolSource, SCHEMA_VERSION};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::{
    fixtures, kmodfarm, kmodfarm_package, module_dir, PreparedRoot, Sandbox, StaticServer,
};
use sha2::{Digest, Sha256};

const KEYRING: &str = "/etc/apt/keyrings/kmfdemo.gpg";

fn manifest() -> PathBuf {
    module_dir().join("kmodfarm.toml")
}

fn keygen(dir: &Path) -> PathBuf {
    kmodfarm(["keygen", "--out", &dir.display().to_string()])
        .unwrap()
        .expect_ok();
    dir.join("kmodfarm.secret.asc")
}

fn publish(repo: &Path, key: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let mut cmd = Command::new(kmodfarm_tests::kmodfarm_bin());
    cmd.arg("-m")
        .arg(manifest())
        .args(["publish", "--repo"])
        .arg(repo)
        .arg("--key")
        .arg(key)
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "kmodfarm publish failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// apt in the sandbox with our repository as its only source, keeping its
/// lists apart from the root's own.
struct AptClient<'a> {
    sandbox: &'a Sandbox,
}

impl AptClient<'_> {
    fn new<'a>(sandbox: &'a Sandbox, key_gpg: &Path) -> AptClient<'a> {
        sandbox
            .write_file(KEYRING, &std::fs::read(key_gpg).unwrap(), 0o644)
            .unwrap();
        sandbox
            .sh_ok("mkdir -p /etc/apt/kmf-only.d /var/lib/apt/kmf-lists/partial && : > /etc/apt/kmf-empty.list");
        AptClient { sandbox }
    }

    /// Points the repository source at `url` for `codename`.
    fn source(&self, url: &str, codename: &str) {
        let text = format!(
            "Types: deb\nURIs: {url}\nSuites: {codename}\nComponents: main\nSigned-By: {KEYRING}\n"
        );
        for dir in ["/etc/apt/sources.list.d", "/etc/apt/kmf-only.d"] {
            self.sandbox
                .write_file(&format!("{dir}/kmfdemo.sources"), text.as_bytes(), 0o644)
                .unwrap();
        }
    }

    /// `apt-get update` against our repository only.
    fn update_only_ours(&self) -> kmodfarm_tests::Output {
        self.sandbox
            .sh(
                "rm -rf /var/lib/apt/kmf-lists/* && mkdir -p /var/lib/apt/kmf-lists/partial && \
                 apt-get -o Dir::Etc::SourceList=/etc/apt/kmf-empty.list \
                 -o Dir::Etc::SourceParts=/etc/apt/kmf-only.d \
                 -o Dir::State::Lists=/var/lib/apt/kmf-lists update 2>&1",
            )
            .unwrap()
    }

    /// `apt-get update` with the root's Debian sources and ours (the -dkms
    /// package's dependencies come from Debian).
    fn update_all(&self) -> String {
        self.sandbox.sh_ok("apt-get update 2>&1").combined()
    }

    fn install(&self, package: &str) -> String {
        self.sandbox
            .sh_ok(&format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Use-Pty=0 {package} 2>&1"
            ))
            .combined()
    }
}

/// The module DKMS built for `kernel` in the sandbox, recompressed with
/// zstd as `kmodfarm build` writes it, laid out as a build output with its
/// records.json: `<dir>/<distro>/<arch>/<kernel>/kmfdemo.ko.zst`.
fn build_output_from_dkms(sandbox: &Sandbox, distro: &str, kernel: &KernelRelease, dir: &Path) {
    let kdir = dir.join(distro).join("amd64").join(kernel.as_str());
    std::fs::create_dir_all(&kdir).unwrap();
    let found = sandbox.sh_ok(&format!(
        "ls /lib/modules/{kernel}/updates/dkms/kmfdemo.ko*"
    ));
    let guest = found.stdout.trim().to_string();
    let b64 = sandbox.run_ok(&["base64", "-w0", &guest]);
    let packed = kdir.join("packed");
    let decoded = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo '{}' | base64 -d > {}",
            b64.stdout.trim(),
            packed.display()
        ))
        .status()
        .unwrap();
    assert!(decoded.success());
    let unpack = match Path::new(&guest).extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz -dc",
        Some("zst") => "zstd -dcq",
        _ => "cat",
    };
    let zst = kdir.join("kmfdemo.ko.zst");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{unpack} {p} > {p}.ko && zstd -q -19 -f {p}.ko -o {z} && rm {p} {p}.ko",
            p = packed.display(),
            z = zst.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let vermagic = sandbox.run_ok(&["modinfo", "-F", "vermagic", &guest]);
    let bytes = std::fs::read(&zst).unwrap();
    let record = BuildRecord {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        version: "1.0.0".into(),
        distro: distro.into(),
        arch: "amd64".into(),
        kernel_release: kernel.clone(),
        outcome: BuildOutcome::Built {
            artifact: Artifact {
                path: format!("{distro}/amd64/{kernel}/kmfdemo.ko.zst"),
                module: "kmfdemo".into(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                size: bytes.len() as u64,
                compression: Compression::Zst,
                signed: false,
                vermagic: vermagic.stdout.trim().to_string(),
                module_version: "1.0.0".into(),
            },
        },
        inputs: Vec::new(),
        symbol_source: SymbolSource::NotNeeded,
        compiler: None,
        toolchain_image: None,
        cache_key: "dkms-in-test-root".into(),
        duration_ms: 0,
        log: None,
        boot_test: None,
    };
    std::fs::write(
        dir.join("records.json"),
        serde_json::to_string_pretty(&vec![record]).unwrap(),
    )
    .unwrap();
}

/// The whole user path on one Debian root.
fn installs_from_the_served_repository(
    root: &PreparedRoot,
    distro: &str,
    codename: &str,
    kernel: &KernelRelease,
) {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let key = keygen(&w.join("key"));
    let dkms = kmodfarm_package(&manifest(), "deb", &w.join("packages"), &[]);
    assert_eq!(dkms.len(), 1, "{dkms:?}");
    let repo = w.join("repo");
    publish(
        &repo,
        &key,
        &[
            "--packages",
            &w.join("packages").display().to_string(),
            "--valid-for",
            "7d",
        ],
        &[],
    );

    let server = StaticServer::start(w).expect("a static server on 127.0.0.1");
    let sandbox = Sandbox::new(root).expect("a sandbox");
    let apt = AptClient::new(&sandbox, &repo.join("keys/kmfdemo.gpg"));
    apt.source(&server.url("repo/deb"), codename);
    let said = apt.update_all();
    assert!(
        !said.contains("W: ") && !said.contains("E: "),
        "apt-get update complained:\n{said}"
    );
    let said = apt.install("kmfdemo-dkms");
    let status = sandbox.run_ok(&[
        "dpkg-query",
        "-W",
        "-f",
        "${Status} ${Version}",
        "kmfdemo-dkms",
    ]);
    assert_eq!(status.stdout, "install ok installed 1.0.0-1", "{said}");
    let dkms_status = sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo"]);
    assert!(
        dkms_status
            .stdout
            .contains(&format!("kmfdemo/1.0.0, {kernel}, x86_64: installed")),
        "DKMS did not build for {kernel}:\n{dkms_status}\n{said}"
    );

    // The prebuilt route: a module for `kernel` (the one DKMS just built,
    // recompressed as `kmodfarm build` writes it), packaged, published
    // into the same repository, installed by name.
    let builds = w.join("builds");
    build_output_from_dkms(&sandbox, distro, kernel, &builds);
    // `package --prebuilt` writes the -dkms package again too; only the
    // prebuilt one is new (the -dkms bytes differ: its date follows the
    // inputs' times, and the repository refuses a different file under a
    // published name).
    let written = kmodfarm_package(
        &manifest(),
        "deb",
        &w.join("prebuilt-out"),
        &[
            "--distro",
            distro,
            "--prebuilt",
            &builds.display().to_string(),
        ],
    );
    let name = format!("kmfdemo-modules-{kernel}");
    let prebuilt = written
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&name))
        .unwrap_or_else(|| panic!("no {name} among {written:?}"));
    std::fs::create_dir_all(w.join("prebuilt")).unwrap();
    std::fs::copy(
        prebuilt,
        w.join("prebuilt").join(prebuilt.file_name().unwrap()),
    )
    .unwrap();
    publish(
        &repo,
        &key,
        &[
            "--packages",
            &w.join("prebuilt").display().to_string(),
            "--builds",
            &builds.display().to_string(),
            "--valid-for",
            "7d",
        ],
        &[],
    );
    let said = apt.update_all();
    assert!(
        !said.contains("W: ") && !said.contains("E: "),
        "apt-get update complained:\n{said}"
    );
    let said = apt.install(&name);
    let file = sandbox.run_ok(&["modinfo", "-k", kernel.as_str(), "-n", "kmfdemo"]);
    assert_eq!(
        file.stdout.trim(),
        format!("/lib/modules/{kernel}/updates/kmfdemo.ko.zst"),
        "{said}"
    );
    // The index names that package for that kernel, with its pool path.
    let lookup: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.join(format!("prebuilt/{distro}/amd64/{kernel}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(lookup["status"], "prebuilt");
    assert_eq!(lookup["entry"]["prebuilt_package"], name.as_str());
    assert_eq!(lookup["serial"], 2);
    assert!(repo
        .join(lookup["entry"]["package_path"].as_str().unwrap())
        .is_file());
    assert!(repo
        .join(lookup["entry"]["path"].as_str().unwrap())
        .is_file());

    refusals(&sandbox, w, &repo, &key, &server, codename);
}

/// apt refuses each broken variant of the repository.
fn refusals(
    sandbox: &Sandbox,
    w: &Path,
    repo: &Path,
    key: &Path,
    server: &StaticServer,
    codename: &str,
) {
    let apt = AptClient { sandbox };
    apt.source(&server.url("repo/deb"), codename);
    let good = apt.update_only_ours();
    assert!(good.success() && !good.stdout.contains("W: "), "{good}");

    let variant = |name: &str| {
        let dir = w.join(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(repo)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir
    };

    // A Packages list that is not the one Release names: every name apt
    // might fetch it by (plain, compressed, by-hash) gets the edited list.
    let tampered = variant("tampered-packages");
    let lists = tampered.join(format!("deb/dists/{codename}/main/binary-amd64"));
    let plain = std::fs::read_to_string(lists.join("Packages")).unwrap();
    // Same length, so apt gets past the size check to the digest.
    let edited = plain.replacen("Priority: optional", "Priority: OPTIONAL", 1);
    assert_ne!(plain, edited);
    let mut names = vec![("Packages".to_string(), "plain")];
    for entry in std::fs::read_dir(lists.join("by-hash/SHA256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let kind = if bytes.starts_with(&[0x1f, 0x8b]) {
            "gz"
        } else if bytes.starts_with(b"\xfd7zXZ") {
            "xz"
        } else {
            "plain"
        };
        names.push((
            format!(
                "by-hash/SHA256/{}",
                path.file_name().unwrap().to_string_lossy()
            ),
            kind,
        ));
    }
    names.push(("Packages.gz".into(), "gz"));
    names.push(("Packages.xz".into(), "xz"));
    for (name, kind) in names {
        let bytes = match kind {
            "gz" => kmodfarm_publish::apt::gzip(edited.as_bytes()).unwrap(),
            "xz" => kmodfarm_publish::apt::xz(edited.as_bytes()).unwrap(),
            _ => edited.clone().into_bytes(),
        };
        std::fs::write(lists.join(name), bytes).unwrap();
    }
    apt.source(&server.url("tampered-packages/deb"), codename);
    let said = apt.update_only_ours();
    // apt checks the size Release names, then the digest: either refuses.
    assert!(
        !said.success()
            && said.stdout.contains("binary-amd64")
            && (said.stdout.contains("Hash Sum mismatch")
                || said.stdout.contains("unexpected size")),
        "apt accepted a tampered Packages list:\n{said}"
    );

    // A Release edited after signing.
    let tampered = variant("tampered-release");
    let dist = tampered.join(format!("deb/dists/{codename}"));
    for name in ["InRelease", "Release"] {
        let text = std::fs::read_to_string(dist.join(name)).unwrap();
        std::fs::write(
            dist.join(name),
            text.replacen("Label: kmfdemo", "Label: kmfdem0", 1),
        )
        .unwrap();
    }
    apt.source(&server.url("tampered-release/deb"), codename);
    let said = apt.update_only_ours();
    assert!(
        !said.success() && said.stdout.contains("not signed"),
        "apt accepted a tampered Release:\n{said}"
    );

    // The same packages published with another key.
    let other_key = keygen(&w.join("other-key"));
    publish(
        &w.join("other-signer"),
        &other_key,
        &["--packages", &w.join("packages").display().to_string()],
        &[],
    );
    apt.source(&server.url("other-signer/deb"), codename);
    let said = apt.update_only_ours();
    assert!(
        !said.success() && said.stdout.contains("NO_PUBKEY") || said.stdout.contains("not signed"),
        "apt accepted a Release signed by another key:\n{said}"
    );
    assert!(!said.success(), "{said}");

    // Valid for a day, published ten days ago.
    let ten_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10 * 86_400;
    publish(
        &w.join("expired"),
        key,
        &[
            "--packages",
            &w.join("packages").display().to_string(),
            "--valid-for",
            "1d",
        ],
        &[("SOURCE_DATE_EPOCH", &ten_days_ago.to_string())],
    );
    apt.source(&server.url("expired/deb"), codename);
    let said = apt.update_only_ours();
    assert!(
        !said.success() && said.stdout.contains("expired"),
        "apt accepted an expired Release:\n{said}"
    );
}

#[test]
fn debian_12_apt_installs_dkms_and_prebuilt_packages_and_refuses_broken_repositories() {
    let root = fixtures::bookworm();
    installs_from_the_served_repository(&root.root, "debian-12", "bookworm", &root.k612);
}

#[test]
fn debian_13_apt_with_sqv_installs_dkms_and_prebuilt_packages_and_refuses_broken_repositories() {
    let root = fixtures::trixie();
    let sandbox = Sandbox::new(&root.root).unwrap();
    let apt_verifier = sandbox.run_ok(&[
        "sh",
        "-c",
        "apt-config dump | grep -i sqv || dpkg -s sqv | head -2",
    ]);
    assert!(
        apt_verifier.stdout.to_lowercase().contains("sqv"),
        "{apt_verifier}"
    );
    drop(sandbox);
    installs_from_the_served_repository(&root.root, "debian-13", "trixie", &root.k612);
}
