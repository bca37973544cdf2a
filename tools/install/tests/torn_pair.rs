//! A publish renames a lookup file and then its `.asc`: a host that reads
//! between the two renames gets the new signature over the old file. The
//! installer fetches the pair again and goes on with the new generation; a
//! pair that stays mismatched is refused. The lookups are signed by the
//! publisher's own code (kmodfarm_publish::sign); the fetcher serves them
//! from memory, switching generation where the publish's renames would.

use std::cell::Cell;
use std::collections::HashMap;

use kmodfarm_install::fetch::Fetcher;
use kmodfarm_install::plan::Answer;
use kmodfarm_install::state::State;
use kmodfarm_install::verify::RepoKey;
use kmodfarm_install::{Error, Session, SystemHost};
use kmodfarm_model::host::HostConfig;
use kmodfarm_model::record::{
    kernel_lookup_path, Freshness, KernelLookup, KernelStatus, SCHEMA_VERSION,
};
use kmodfarm_model::{DistroSet, KernelRelease, Manifest};
use kmodfarm_publish::sign::{generate, Passphrase, SigningKey};

const REPO: &str = "https://repo.invalid/kmfdemo";
const KERNEL: &str = "6.1.0-57-amd64";

/// Lookup bytes and signature of generation `serial`.
fn generation(key: &SigningKey, serial: u64) -> (Vec<u8>, Vec<u8>) {
    let lookup = KernelLookup {
        schema_version: SCHEMA_VERSION,
        module: "kmfdemo".into(),
        distro: "debian-12".into(),
        arch: "amd64".into(),
        kernel_release: KernelRelease::parse(KERNEL).unwrap(),
        freshness: Freshness {
            generated: 1_900_000_000 + serial,
            expires: None,
            serial,
        },
        status: KernelStatus::Failed {
            reason: format!("generation {serial}"),
        },
        dkms: None,
    };
    let json = serde_json::to_vec(&lookup).unwrap();
    let sig = key.detached_armored(&json, 1_900_000_000).unwrap();
    (json, sig.into_bytes())
}

/// Serves generation 1's file and generation 2's signature for the first
/// `torn` pair fetches, then generation 2 throughout.
struct Torn {
    files: HashMap<String, [Vec<u8>; 2]>,
    torn: Cell<u32>,
}

impl Fetcher for Torn {
    fn fetch(&self, url: &str) -> kmodfarm_install::Result<Option<Vec<u8>>> {
        let Some([old, new]) = self.files.get(url) else {
            return Ok(None);
        };
        if url.ends_with(".json") && self.torn.get() > 0 {
            self.torn.set(self.torn.get() - 1);
            return Ok(Some(old.clone()));
        }
        Ok(Some(new.clone()))
    }
}

fn look_up(torn: u32) -> (kmodfarm_install::Result<Answer>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate("test", None).unwrap();
    let secret = dir.path().join("secret.asc");
    std::fs::write(&secret, &generated.secret_armored).unwrap();
    let key = SigningKey::load(&secret, &Passphrase::None).unwrap();
    let (json1, sig1) = generation(&key, 1);
    let (json2, sig2) = generation(&key, 2);
    let url = format!(
        "{REPO}/{}",
        kernel_lookup_path("debian-12", "amd64", &KernelRelease::parse(KERNEL).unwrap())
    );
    let fetcher = Torn {
        files: HashMap::from([
            (url.clone(), [json1, json2]),
            (format!("{url}.asc"), [sig1, sig2]),
        ]),
        torn: Cell::new(torn),
    };
    let manifest = Manifest::load(&kmodfarm_tests::module_dir().join("kmodfarm.toml")).unwrap();
    let host = SystemHost::new();
    let session = Session {
        config: HostConfig::from_manifest(&manifest, REPO),
        distro: DistroSet::builtin().get("debian-12").unwrap().clone(),
        arch: "amd64".into(),
        key: RepoKey::parse(&secret, generated.public_armored.as_bytes()).unwrap(),
        state: State::new(dir.path().join("state")),
        host: &host,
        fetcher: &fetcher,
        now: 1_900_000_100,
    };
    (session.look_up(KERNEL), dir)
}

#[test]
fn a_lookup_read_between_the_publishs_two_renames_is_fetched_again() {
    let (answer, _dir) = look_up(1);
    match answer {
        Ok(Answer::Found(lookup)) => assert_eq!(lookup.freshness.serial, 2),
        Ok(Answer::Unknown) => panic!("the lookup was there"),
        Err(e) => panic!("a torn read was not retried: {e}"),
    }
}

#[test]
fn a_pair_that_stays_mismatched_is_refused() {
    let (answer, _dir) = look_up(2);
    assert!(
        matches!(answer, Err(Error::BadSignature { .. })),
        "a mismatched pair was accepted"
    );
}
