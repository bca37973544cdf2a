//! Discovery against the real Debian archive, through the mirrors this
//! host's apt sources name, compared with what real apt knows for the same
//! suites. Needs the network (Debian's archive is reachable here).
//!
//! apt runs with a private configuration (its own sources list, lists and
//! cache directories in a temporary directory) so that both sides read the
//! archive at the same moment and the host's apt state is left alone.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use std::sync::Mutex;

use kmodfarm_kernels::apt_release::verify_signature;
use kmodfarm_kernels::apt_sources::{read_apt_sources, AptSource};
use kmodfarm_kernels::events::{Event, Quiet};
use kmodfarm_kernels::fetch::Fetcher;
use kmodfarm_kernels::fetch::{HttpFetcher, RetryPolicy};
use kmodfarm_kernels::{discover, Discovered, Mirror, Mirrors, Sources, Wanted};
use kmodfarm_model::{Distro, DistroSet, KernelRange};

/// The host's deb source that serves `suite`.
fn host_source_for(sources: &[AptSource], suite: &str) -> AptSource {
    sources
        .iter()
        .find(|s| s.suites.iter().any(|x| x == suite) && s.components.iter().any(|c| c == "main"))
        .unwrap_or_else(|| panic!("the host's apt sources do not serve {suite} main"))
        .clone()
}

/// Run apt-get update for `suites` (suite → archive URI) in `dir`, then
/// `apt-cache pkgnames <prefix>` there.
fn apt_pkgnames(dir: &Path, suites: &[(String, AptSource)], prefix: &str) -> BTreeSet<String> {
    let mut list = String::new();
    for (suite, source) in suites {
        let signed_by = source
            .keyring()
            .map(|k| format!("[signed-by={}] ", k.display()))
            .unwrap_or_default();
        list.push_str(&format!("deb {signed_by}{} {suite} main\n", source.uris[0]));
    }
    std::fs::write(dir.join("sources.list"), list).unwrap();
    for sub in ["parts", "lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("status"), "").unwrap();
    let options = |cmd: &mut Command| {
        for (key, value) in [
            ("Dir::Etc::sourcelist", dir.join("sources.list")),
            ("Dir::Etc::sourceparts", dir.join("parts")),
            ("Dir::State::Lists", dir.join("lists")),
            ("Dir::State::status", dir.join("status")),
            ("Dir::Cache", dir.join("cache")),
        ] {
            cmd.arg("-o").arg(format!("{key}={}", value.display()));
        }
        // The temporary directory is private to root; apt's download
        // user could not write into it.
        cmd.args([
            "-o",
            "APT::Sandbox::User=root",
            "-o",
            "APT::Architecture=amd64",
        ]);
        cmd.args(["-o", "Acquire::Languages=none"]);
    };
    let mut update = Command::new("apt-get");
    options(&mut update);
    let out = update
        .args(["-q", "update"])
        .output()
        .expect("apt-get runs");
    assert!(
        out.status.success(),
        "apt-get update failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names = Command::new("apt-cache");
    options(&mut names);
    let out = names
        .args(["pkgnames", prefix])
        .output()
        .expect("apt-cache runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Discovery with a fresh cache; every suite's InRelease must have been
/// checked with gpgv against the source's keyring.
fn discover_live(
    distro: &Distro,
    explicit: Vec<Mirror>,
    apt_sources: Vec<AptSource>,
) -> Discovered {
    let cache = tempfile::tempdir().unwrap();
    let fetcher = HttpFetcher::new(cache.path().into(), RetryPolicy::default(), false).unwrap();
    let mirrors = Mirrors {
        explicit,
        apt_sources,
    };
    let range = KernelRange::default();
    let verified = Mutex::new(Vec::new());
    let events = |e: Event<'_>| {
        if let Event::SignatureVerified { url, .. } = e {
            verified.lock().unwrap().push(url.to_string());
        }
    };
    let sources = Sources {
        mirrors: &mirrors,
        fetcher: &fetcher,
        events: &events,
    };
    let found = discover(
        distro,
        &Wanted {
            range: &range,
            system_map: true,
        },
        &sources,
    )
    .unwrap();
    let verified = verified.into_inner().unwrap();
    assert_eq!(verified.len(), distro.archive.suites.len(), "{verified:?}");
    found
}

/// Kernel releases among apt's linux-headers-* names, by a rule written
/// here independently of the library: `<x.y.z>-<abi>-` or `<x.y.z>+debNN-`
/// (also `+debNN.M-`, a rebuild: trixie has `6.12.115+deb13.1-amd64`), then
/// one of the distro's flavours.
fn apt_kernels(names: &BTreeSet<String>, distro: &Distro) -> BTreeSet<String> {
    let flavours = distro.kernel.flavours.join("|");
    let pattern = format!(r"^linux-headers-(\d+\.\d+\.\d+(-\d+|\+deb\d+(\.\d+)?)-({flavours}))$");
    let re = regex::Regex::new(&pattern).unwrap();
    names
        .iter()
        .filter_map(|n| re.captures(n).map(|c| c[1].to_string()))
        .collect()
}

fn check_against_apt(distro: &Distro, found: &Discovered, suites: &[(String, AptSource)]) {
    let dir = tempfile::tempdir().unwrap();
    let names = apt_pkgnames(dir.path(), suites, "linux-");
    let expected = apt_kernels(&names, distro);
    let got: BTreeSet<String> = found
        .entries
        .iter()
        .map(|e| e.kernel_release.to_string())
        .collect();
    assert!(!expected.is_empty(), "apt knows no {} kernels", distro.id);
    assert_eq!(
        got, expected,
        "{} kernels: kmodfarm vs apt-cache",
        distro.id
    );
    assert!(found.excluded.is_empty(), "{:?}", found.excluded);
    for entry in &found.entries {
        for package in entry.packages.iter().chain(&entry.system_map_package) {
            assert!(
                names.contains(package),
                "{package} of {} is unknown to apt",
                entry.kernel_release
            );
        }
        assert!(
            entry
                .packages
                .iter()
                .any(|p| p.starts_with("linux-kbuild-")),
            "{entry:?}"
        );
        assert!(
            entry.packages.iter().any(|p| p.contains("-common")),
            "{entry:?}"
        );
    }
}

#[test]
fn bookworm_kernels_from_the_hosts_apt_sources_match_apt_cache() {
    let host = read_apt_sources(Path::new("/etc/apt")).unwrap();
    let d = DistroSet::builtin().get("debian-12").unwrap().clone();
    let found = discover_live(&d, vec![], host.clone());
    let series: BTreeSet<String> = found
        .entries
        .iter()
        .map(|e| e.kernel_release.series())
        .collect();
    assert!(
        series.contains("6.1") && series.contains("6.12"),
        "{series:?}"
    );
    let suites: Vec<(String, AptSource)> = d
        .archive
        .suites
        .iter()
        .map(|s| (s.clone(), host_source_for(&host, s)))
        .collect();
    check_against_apt(&d, &found, &suites);
}

#[test]
fn trixie_kernels_from_the_same_archives_match_apt_cache() {
    // The host is bookworm: its sources name the archive and the security
    // archive; trixie's suites are served by the same two.
    let host = read_apt_sources(Path::new("/etc/apt")).unwrap();
    let archive = host_source_for(&host, "bookworm");
    let security = host_source_for(&host, "bookworm-security");
    let d = DistroSet::builtin().get("debian-13").unwrap().clone();
    let suites: Vec<(String, AptSource)> = d
        .archive
        .suites
        .iter()
        .map(|s| {
            let source = if s.ends_with("-security") {
                &security
            } else {
                &archive
            };
            (s.clone(), source.clone())
        })
        .collect();
    let explicit = suites
        .iter()
        .map(|(suite, source)| Mirror {
            scope: Some(suite.clone()),
            url: source.uris[0].clone(),
            keyring: source.keyring(),
        })
        .collect();
    let found = discover_live(&d, explicit, vec![]);
    assert!(found
        .entries
        .iter()
        .any(|e| e.kernel_release.series() == "6.12"));
    check_against_apt(&d, &found, &suites);
}

#[test]
fn a_real_inrelease_verifies_and_a_tampered_copy_does_not() {
    let host = read_apt_sources(Path::new("/etc/apt")).unwrap();
    let source = host_source_for(&host, "bookworm");
    let keyring = source
        .keyring()
        .expect("the host's source names its keyring");
    let cache = tempfile::tempdir().unwrap();
    let fetcher = HttpFetcher::new(cache.path().into(), RetryPolicy::default(), false).unwrap();
    let url = format!("{}/dists/bookworm/InRelease", source.uris[0]);
    let real = fetcher.fetch(&url, &|_| Ok(()), &Quiet).unwrap().bytes;
    verify_signature(&real, &keyring, &url).unwrap();
    let text = String::from_utf8(real).unwrap();
    let tampered = text.replacen("Codename: bookworm", "Codename: bookwork", 1);
    assert_ne!(tampered, text);
    let err = verify_signature(tampered.as_bytes(), &keyring, &url)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "the signature of {url} does not verify with {}: ",
            keyring.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("BAD signature"),
        "gpgv's own words are kept: {err}"
    );
}
