//! Discovery end to end for one distro: find a mirror for each suite,
//! fetch and check its indexes, and hand the kernel packages to [`crate::matrix`].

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kmodfarm_model::distro::IndexFormat;
use kmodfarm_model::error_text::with_causes;
use kmodfarm_model::{Distro, DistroSet, PackageFamily};
use sha2::{Digest, Sha256};

use crate::apt_packages::{parse_packages, DebPackage, KERNEL_PACKAGE_PREFIX};
use crate::apt_release::{verify_signature, IndexDigest, ReleaseFile};
use crate::decompress::decompress;
use crate::error::{KernelsError, Result};
use crate::events::{Event, Events};
use crate::fetch::{Fetched, Fetcher, Origin};
use crate::matrix::{apt_matrix, rpm_matrix, Discovered, Wanted};
use crate::mirrors::{Mirror, Mirrors};
use crate::rpm_md::{parse_primary, parse_repomd, RpmPackage};
use crate::stanza_cache;

/// The distros with these ids, or an error listing the known ones.
pub fn select_distros<'a>(set: &'a DistroSet, ids: &[String]) -> Result<Vec<&'a Distro>> {
    ids.iter()
        .map(|id| {
            set.get(id).ok_or_else(|| KernelsError::UnknownDistro {
                id: id.clone(),
                known: set.ids().collect::<Vec<_>>().join(", "),
            })
        })
        .collect()
}

/// The tools discovery works with.
pub struct Sources<'a> {
    pub mirrors: &'a Mirrors,
    pub fetcher: &'a dyn Fetcher,
    pub events: &'a dyn Events,
}

pub fn discover(distro: &Distro, wanted: &Wanted, sources: &Sources) -> Result<Discovered> {
    match distro.archive.index_format {
        IndexFormat::Apt => Ok(apt_matrix(
            distro,
            wanted,
            &apt_kernel_packages(distro, sources)?,
        )),
        IndexFormat::RpmMd => Ok(rpm_matrix(
            distro,
            wanted,
            &rpm_kernel_packages(distro, sources)?,
        )),
    }
}

/// Discovery for several distros. Every one is tried, so that one run
/// names every problem to fix; any failure fails the whole (a partial
/// matrix would silently drop kernels).
pub fn discover_all(
    distros: &[&Distro],
    wanted: &Wanted,
    sources: &Sources,
) -> Result<Discovered, DistroFailures> {
    let mut found = Discovered::default();
    let mut failures = Vec::new();
    for distro in distros {
        match discover(distro, wanted, sources) {
            Ok(d) => {
                found.entries.extend(d.entries);
                found.excluded.extend(d.excluded);
            }
            Err(e) => failures.push((distro.id.clone(), e)),
        }
    }
    if failures.is_empty() {
        Ok(found)
    } else {
        Err(DistroFailures(failures))
    }
}

/// The distros discovery failed for, each with its error.
#[derive(Debug)]
pub struct DistroFailures(pub Vec<(String, KernelsError)>);

impl std::fmt::Display for DistroFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "discovery failed for {} distro(s):", self.0.len())?;
        for (id, error) in &self.0 {
            write!(f, "\n  {id}: {}", with_causes(error))?;
        }
        Ok(())
    }
}

impl std::error::Error for DistroFailures {}

/// A validator that accepts exactly the bytes a Release/repomd file lists.
fn sha256_check<'a>(
    url: &'a str,
    listed_in: &'a str,
    expected: &'a IndexDigest,
) -> impl Fn(&[u8]) -> Result<()> + 'a {
    move |bytes: &[u8]| {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual == expected.sha256 && bytes.len() as u64 == expected.size {
            return Ok(());
        }
        Err(KernelsError::HashMismatch {
            url: url.to_string(),
            listed_in: listed_in.to_string(),
            expected: expected.sha256.clone(),
            expected_size: expected.size,
            actual,
            actual_size: bytes.len() as u64,
        })
    }
}

/// Checks a file fetched from a mirror (given the mirror and the URL).
type CheckAt<'a> = &'a dyn Fn(&Mirror, &str, &[u8]) -> Result<()>;

/// The first candidate mirror that serves `path` (an InRelease or
/// repomd.xml): mirrors that answer 404 are passed over, any other failure
/// stops discovery, naming the URL.
fn first_serving(
    distro: &Distro,
    suite: &str,
    path: &str,
    sources: &Sources,
    validate: CheckAt<'_>,
) -> Result<(Mirror, String, Fetched)> {
    let candidates = sources.mirrors.candidates(distro, suite);
    let mut tried = Vec::new();
    for mirror in candidates {
        let url = format!("{}/{path}", mirror.url);
        let check = |bytes: &[u8]| validate(&mirror, &url, bytes);
        match sources.fetcher.fetch(&url, &check, sources.events) {
            Ok(fetched) => return Ok((mirror, url, fetched)),
            Err(KernelsError::NotFound { url }) => tried.push(url),
            Err(e) => return Err(e),
        }
    }
    Err(KernelsError::NoMirror {
        distro: distro.id.clone(),
        suite: suite.to_string(),
        hint: match distro.family {
            PackageFamily::Deb => {
                ", or add the suite to the host's apt sources \
                 (/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list)"
            }
            PackageFamily::Rpm => "; rpm-md mirrors are not read from the host's configuration",
        },
        tried: if tried.is_empty() {
            String::new()
        } else {
            format!("; these answered 404: {}", tried.join(", "))
        },
    })
}

fn check_not_expired(release: &ReleaseFile, url: &str) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match release.valid_until {
        Some(until) if until < now => Err(KernelsError::Expired {
            url: url.to_string(),
            ago: now - until,
        }),
        _ => Ok(()),
    }
}

/// Kernel packages of every suite and component of an apt distro.
pub fn apt_kernel_packages(distro: &Distro, sources: &Sources) -> Result<Vec<DebPackage>> {
    let mut all = Vec::new();
    for suite in &distro.archive.suites {
        let check_signature = |mirror: &Mirror, url: &str, bytes: &[u8]| match &mirror.keyring {
            Some(keyring) => {
                verify_signature(bytes, keyring, url)?;
                sources.events.event(Event::SignatureVerified {
                    url,
                    keyring: &keyring.to_string_lossy(),
                });
                Ok(())
            }
            None => {
                sources.events.event(Event::SignatureNotChecked { url });
                Ok(())
            }
        };
        let (mirror, release_url, fetched) = first_serving(
            distro,
            suite,
            &format!("dists/{suite}/InRelease"),
            sources,
            &check_signature,
        )?;
        let text = String::from_utf8_lossy(&fetched.bytes);
        let release = ReleaseFile::parse(&text, &release_url)?;
        // Offline, the cached suite is knowingly used as it was.
        if fetched.origin != Origin::Cache {
            check_not_expired(&release, &release_url)?;
        }
        if !release.is_for(suite) {
            return Err(KernelsError::parse(
                &release_url,
                format!(
                    "it describes suite {} (codename {}), not {suite}",
                    release.suite.as_deref().unwrap_or("?"),
                    release.codename.as_deref().unwrap_or("?")
                ),
            ));
        }
        for component in &distro.archive.components {
            let base = format!("{component}/binary-{}/Packages", distro.arch);
            let candidates: Vec<String> = [".xz", ".gz", ".zst", ""]
                .iter()
                .map(|ext| format!("{base}{ext}"))
                .collect();
            let (path, digest) =
                release
                    .first_listed(&candidates)
                    .ok_or_else(|| KernelsError::NotListed {
                        listed_in: release_url.clone(),
                        wanted: base.clone(),
                    })?;
            let url = format!("{}/dists/{suite}/{path}", mirror.url);
            let stanza_dir = sources.fetcher.derived_dir();
            let known = stanza_dir
                .as_deref()
                .and_then(|dir| stanza_cache::load(dir, &digest.sha256));
            if let Some(packages) = known {
                sources.events.event(Event::StanzasFromCache {
                    what: &url,
                    kernel_packages: packages.len(),
                });
                all.extend(packages);
                continue;
            }
            let check = sha256_check(&url, &release_url, digest);
            let fetched = sources.fetcher.fetch(&url, &check, sources.events)?;
            let started = Instant::now();
            let text = decompress(&url, &fetched.bytes)?;
            let packages = parse_packages(&text, KERNEL_PACKAGE_PREFIX, &url)?;
            sources.events.event(Event::Parsed {
                what: &url,
                kernel_packages: packages.len(),
                elapsed: started.elapsed(),
            });
            if let Some(dir) = &stanza_dir {
                stanza_cache::store(dir, &digest.sha256, &packages)?;
            }
            all.extend(packages);
        }
    }
    Ok(all)
}

/// Kernel packages of every repository of an rpm-md distro.
pub fn rpm_kernel_packages(distro: &Distro, sources: &Sources) -> Result<Vec<RpmPackage>> {
    let mut all = Vec::new();
    let repo_path = distro.archive.repo_path.as_deref().unwrap_or("");
    for suite in &distro.archive.suites {
        let repo = repo_path
            .replace("{release}", &distro.release)
            .replace("{suite}", suite)
            .replace("{arch}", &distro.arch);
        let repo = repo.trim_matches('/');
        let sep = if repo.is_empty() { "" } else { "/" };
        let (mirror, repomd_url, fetched) = first_serving(
            distro,
            suite,
            &format!("{repo}{sep}repodata/repomd.xml"),
            sources,
            &|_, _, _| Ok(()),
        )?;
        let primary = parse_repomd(&fetched.bytes, &repomd_url)?;
        let url = format!("{}/{repo}{sep}{}", mirror.url, primary.href);
        let fetched = match &primary.digest {
            Some(digest) => {
                let check = sha256_check(&url, &repomd_url, digest);
                sources.fetcher.fetch(&url, &check, sources.events)?
            }
            None => sources.fetcher.fetch(&url, &|_| Ok(()), sources.events)?,
        };
        let started = Instant::now();
        let xml = decompress(&url, &fetched.bytes)?;
        let packages = parse_primary(&xml, &url)?;
        sources.events.event(Event::Parsed {
            what: &url,
            kernel_packages: packages.len(),
            elapsed: started.elapsed(),
        });
        all.extend(packages);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_distro_is_named_with_the_known_ones() {
        let set = DistroSet::builtin();
        let ids = ["debian-12".to_string(), "debian-99".to_string()];
        let err = select_distros(&set, &ids).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown distro 'debian-99': the known distros are debian-12, debian-13, rhel-8, \
             rhel-9, sles-15, ubuntu-22.04, ubuntu-24.04"
        );
        assert_eq!(select_distros(&set, &ids[..1]).unwrap()[0].id, "debian-12");
    }
}
