//! The kernel hook of a product with two modules stages both: an unattended
//! kernel upgrade then gets every module at the next boot without the
//! network. The repository's lookup file names one module's entry (as
//! `kmodfarm publish` writes it), its signed index.json has the other; both
//! are signed by the publisher's own code (kmodfarm_publish::sign). The
//! fetcher is an in-memory stand-in for the HTTP server, so each test can
//! say exactly which files the repository has.

use std::collections::HashMap;

use kmodfarm_install::fetch::Fetcher;
use kmodfarm_install::plan::{Decision, Step};
use kmodfarm_install::state::State;
use kmodfarm_install::verify::RepoKey;
use kmodfarm_install::{Session, SystemHost};
use kmodfarm_model::host::HostConfig;
use kmodfarm_model::record::{
    kernel_lookup_path, Freshness, Index, IndexEntry, KernelLookup, KernelStatus, SCHEMA_VERSION,
};
use kmodfarm_model::{Compression, DistroSet, KernelRelease, Manifest};
use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};
use sha2::{Digest, Sha256};

const REPO: &str = "https://repo.invalid/kmfpair";
const KERNEL: &str = "6.12.118+deb12-amd64";
const MODULES: [&str; 2] = ["kmfpair_core", "kmfpair_extra"];

/// The repository's files by URL.
struct Repo(HashMap<String, Vec<u8>>);

impl Fetcher for Repo {
    fn fetch(&self, url: &str) -> kmodfarm_install::Result<Option<Vec<u8>>> {
        Ok(self.0.get(url).cloned())
    }
}

fn freshness() -> Freshness {
    Freshness {
        generated: 1_900_000_000,
        expires: None,
        serial: 3,
    }
}

fn entry(module: &str, data: &[u8]) -> IndexEntry {
    IndexEntry {
        module: module.into(),
        version: "2.0.0".into(),
        distro: "debian-12".into(),
        arch: "amd64".into(),
        kernel_release: KernelRelease::parse(KERNEL).unwrap(),
        path: format!("prebuilt/debian-12/amd64/{KERNEL}/{module}-2.0.0.ko.zst"),
        sha256: hex::encode(Sha256::digest(data)),
        size: data.len() as u64,
        compression: Compression::Zst,
        signed: false,
        vermagic: format!("{KERNEL} SMP preempt mod_unload modversions "),
        prebuilt_package: format!("kmfpair-modules-{KERNEL}"),
        package_path: String::new(),
        package_sha256: String::new(),
        dkms_package: "kmfpair-dkms".into(),
    }
}

struct World {
    dir: tempfile::TempDir,
    public_key: String,
    repo: Repo,
    config: HostConfig,
}

/// A repository whose index has the entries of `in_index` (module names).
fn world(in_index: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate("test", None).unwrap();
    let secret = dir.path().join("secret.asc");
    std::fs::write(&secret, &generated.secret_armored).unwrap();
    let signer = SigningKey::load(&secret, &Passphrase::None).unwrap();
    let mut files = HashMap::new();
    let mut signed = |path: &str, data: Vec<u8>| {
        let sig = signer.detached_armored(&data, 1_900_000_000).unwrap();
        files.insert(format!("{REPO}/{path}"), data);
        files.insert(format!("{REPO}/{path}.asc"), sig.into_bytes());
    };
    let modules: Vec<(IndexEntry, Vec<u8>)> = MODULES
        .iter()
        .map(|m| {
            let data = format!("the {m} module for {KERNEL}").into_bytes();
            (entry(m, &data), data)
        })
        .collect();
    let lookup = KernelLookup {
        schema_version: SCHEMA_VERSION,
        module: "kmfpair".into(),
        distro: "debian-12".into(),
        arch: "amd64".into(),
        kernel_release: KernelRelease::parse(KERNEL).unwrap(),
        freshness: freshness(),
        status: KernelStatus::Prebuilt {
            entry: modules[0].0.clone(),
        },
        dkms: None,
    };
    let index = Index {
        schema_version: SCHEMA_VERSION,
        module: "kmfpair".into(),
        version: "2.0.0".into(),
        freshness: freshness(),
        entries: modules
            .iter()
            .filter(|(e, _)| in_index.contains(&e.module.as_str()))
            .map(|(e, _)| e.clone())
            .collect(),
        without_prebuilt: Vec::new(),
        dkms: Vec::new(),
    };
    signed(
        &kernel_lookup_path("debian-12", "amd64", &KernelRelease::parse(KERNEL).unwrap()),
        serde_json::to_vec(&lookup).unwrap(),
    );
    signed("index.json", serde_json::to_vec(&index).unwrap());
    for (e, data) in modules {
        files.insert(format!("{REPO}/{}", e.path), data);
    }
    let manifest = Manifest::load(&kmodfarm_tests::module_dir().join("kmodfarm.toml")).unwrap();
    let mut config = HostConfig::from_manifest(&manifest, REPO);
    config.name = "kmfpair".into();
    config.modules = MODULES.iter().map(|m| m.to_string()).collect();
    config.load = config.modules.clone();
    World {
        public_key: generated.public_armored,
        dir,
        repo: Repo(files),
        config,
    }
}

fn session<'a>(w: &'a World, host: &'a SystemHost, fetcher: &'a dyn Fetcher) -> Session<'a> {
    Session {
        config: w.config.clone(),
        distro: DistroSet::builtin().get("debian-12").unwrap().clone(),
        arch: "amd64".into(),
        key: RepoKey::parse(&w.dir.path().join("public.asc"), w.public_key.as_bytes()).unwrap(),
        state: State::new(w.dir.path().join("state")),
        host,
        fetcher,
        now: 1_900_000_100,
    }
}

#[test]
fn the_kernel_hook_stages_every_module_and_the_boot_unit_places_them_offline() {
    let w = world(&MODULES);
    let host = SystemHost::new();
    let staged = session(&w, &host, &w.repo)
        .stage(KERNEL)
        .unwrap()
        .expect("both modules staged");
    let names: Vec<String> = staged
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kmfpair_core.ko.zst", "kmfpair_extra.ko.zst"]);
    for file in &staged {
        let m = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".ko.zst", "");
        assert_eq!(
            std::fs::read(file).unwrap(),
            format!("the {m} module for {KERNEL}").into_bytes()
        );
    }

    // At the next boot the repository is out of reach: the staged files
    // are checked again and placed, nothing is downloaded.
    let offline = Repo(HashMap::new());
    let plan = session(&w, &host, &offline)
        .plan_ensure(KERNEL, true)
        .unwrap();
    assert!(
        matches!(&plan.decision, Decision::Prebuilt { from, .. } if from == "staged by the kernel hook"),
        "{plan:?}"
    );
    assert!(!plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Download { .. })));
    let placed: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Place { to, .. } => Some(to.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        placed,
        [
            format!("/lib/modules/{KERNEL}/updates/kmfpair_core.ko.zst"),
            format!("/lib/modules/{KERNEL}/updates/kmfpair_extra.ko.zst"),
        ]
    );
}

#[test]
fn a_repository_without_one_of_the_modules_stages_nothing_and_says_which() {
    let w = world(&MODULES[..1]);
    let host = SystemHost::new();
    let why = session(&w, &host, &w.repo)
        .stage(KERNEL)
        .unwrap()
        .expect_err("a product with a module missing was staged");
    assert!(
        why.contains(&format!("no prebuilt kmfpair_extra 2.0.0 for {KERNEL}")),
        "{why}"
    );
    let staged = State::new(w.dir.path().join("state"))
        .staged(KERNEL)
        .unwrap();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn a_staging_that_lost_a_file_is_not_used() {
    let w = world(&MODULES);
    let host = SystemHost::new();
    let staged = session(&w, &host, &w.repo).stage(KERNEL).unwrap().unwrap();
    std::fs::remove_file(&staged[1]).unwrap();
    let state = State::new(w.dir.path().join("state"));
    assert!(state.staged(KERNEL).unwrap().is_empty());
    // The boot unit then goes to the repository for both.
    let plan = session(&w, &host, &w.repo)
        .plan_ensure(KERNEL, true)
        .unwrap();
    let downloads = plan
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Download { .. }))
        .count();
    assert_eq!(downloads, 2, "{plan:?}");
}
