//! A suite's package lists, fetched by the host's apt into a private
//! directory (the host's own apt state is left alone). Tests use it to pick
//! kernels the archive carries today instead of hard-coding releases that
//! the archive drops a few weeks later.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use kmodfarm_model::KernelRelease;

use crate::cache::{cache_dir, CacheLock};
use crate::error::{Error, Result};
use crate::process::{capture, require_tool};
use crate::root::apt_sources;

/// Lists older than this are fetched again: the archive replaces kernel
/// header packages every few weeks, and a root made from stale lists would
/// ask for files that are gone.
const MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// Package lists of one suite (with its -updates and -security suites).
#[derive(Debug, Clone)]
pub struct AptIndex {
    suite: String,
    dir: PathBuf,
}

impl AptIndex {
    /// The suite's lists under `<cache>/apt-index-<suite>`, fetched now if
    /// missing or older than a few hours.
    pub fn updated(suite: &str) -> Result<AptIndex> {
        require_tool("apt-get", "apt")?;
        let dir = cache_dir().join(format!("apt-index-{suite}"));
        let _lock = CacheLock::acquire(&dir)?;
        let index = AptIndex {
            suite: suite.to_string(),
            dir,
        };
        if !index.is_fresh() {
            index.fetch()?;
        }
        Ok(index)
    }

    fn stamp(&self) -> PathBuf {
        self.dir.join("updated")
    }

    fn is_fresh(&self) -> bool {
        fs::metadata(self.stamp())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < MAX_AGE)
    }

    fn fetch(&self) -> Result<()> {
        let sources = apt_sources(&self.suite)?;
        for sub in [
            "etc/sources.list.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            let path = self.dir.join(sub);
            fs::create_dir_all(&path).map_err(Error::io(&path))?;
        }
        let write = |rel: &str, text: &str| {
            let path = self.dir.join(rel);
            fs::write(&path, text).map_err(Error::io(&path))
        };
        write("etc/sources.list.d/debian.sources", &sources.to_deb822())?;
        write("etc/sources.list", "")?;
        write("state/status", "")?;
        capture(self.apt("apt-get").arg("update"))?.ok()?;
        write("updated", "")
    }

    /// An apt command reading only this index's sources and state.
    fn apt(&self, program: &str) -> Command {
        let d = |rel: &str| self.dir.join(rel).display().to_string();
        let mut cmd = Command::new(program);
        for option in [
            format!("Dir::Etc::SourceList={}", d("etc/sources.list")),
            format!("Dir::Etc::SourceParts={}", d("etc/sources.list.d")),
            format!("Dir::State={}", d("state")),
            format!("Dir::State::status={}", d("state/status")),
            format!("Dir::Cache={}", d("cache")),
            "APT::Architectures=amd64".to_string(),
            "Acquire::Languages=none".to_string(),
            // The cache is usually under root's 0700 home, where apt's
            // _apt download user cannot write.
            "APT::Sandbox::User=root".to_string(),
        ] {
            cmd.arg("-o").arg(option);
        }
        cmd.arg("-q");
        cmd
    }

    /// Names of the packages in the lists that start with `prefix`.
    pub fn package_names(&self, prefix: &str) -> Result<Vec<String>> {
        let out = capture(self.apt("apt-cache").args(["pkgnames", prefix]))?.ok()?;
        let mut names: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        names.sort();
        Ok(names)
    }

    /// `apt-get download PACKAGES` from these lists into `dir`: the .deb
    /// files, as the archive has them today.
    pub fn download(&self, packages: &[&str], dir: &std::path::Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        capture(
            self.apt("apt-get")
                .arg("download")
                .args(packages)
                .current_dir(dir),
        )?
        .ok()?;
        Ok(())
    }

    /// Where the downloaded lists are (for messages).
    pub fn lists_dir(&self) -> PathBuf {
        self.dir.join("state/lists")
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }
}

/// The newest kernel release of `series` ("6.1", "6.12") whose plain
/// `linux-headers-<release>-amd64` package `suite` has today (not -cloud or
/// -rt), from the suite's package lists (see [`AptIndex::updated`]).
pub fn newest_headers(series: &str, suite: &str) -> Result<KernelRelease> {
    AptIndex::updated(suite)?.newest_headers(series)
}

impl AptIndex {
    /// [`newest_headers`] from these lists.
    pub fn newest_headers(&self, series: &str) -> Result<KernelRelease> {
        let names = self.package_names("linux-headers-")?;
        newest_in_series(&names, series).ok_or_else(|| Error::NoHeaders {
            series: series.to_string(),
            suite: self.suite().to_string(),
            lists: self.lists_dir(),
        })
    }
}

/// The pure part of [`newest_headers`]: choose among package names.
fn newest_in_series(names: &[String], series: &str) -> Option<KernelRelease> {
    names
        .iter()
        .filter_map(|name| name.strip_prefix("linux-headers-"))
        .filter_map(|release| KernelRelease::parse(release).ok())
        .filter(|k| k.flavour.as_deref() == Some("amd64") && k.series() == series)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| format!("linux-headers-{s}")).collect()
    }

    #[test]
    fn picks_the_newest_plain_amd64_release_of_the_series() {
        let available = names(&[
            "6.1.0-9-amd64",
            "6.1.0-56-amd64",
            "6.1.0-56-cloud-amd64",
            "6.1.0-57-rt-amd64",
            "6.1.0-56-common",
            "6.12.9+deb12-amd64",
            "6.12.117+deb12-amd64",
            "6.12.118+deb12-cloud-amd64",
            "amd64",
        ]);
        assert_eq!(
            newest_in_series(&available, "6.1").unwrap().as_str(),
            "6.1.0-56-amd64"
        );
        assert_eq!(
            newest_in_series(&available, "6.12").unwrap().as_str(),
            "6.12.117+deb12-amd64"
        );
        assert!(newest_in_series(&available, "6.6").is_none());
    }
}
