//! kmodfarm's publish stage: turns the output of `kmodfarm package` and
//! `kmodfarm build` into a repository that apt, dnf, zypper and the
//! target-side installer read.
//!
//! - `apt`: `deb/dists/<codename>/…` and `deb/pool/…` (Packages, Release,
//!   InRelease, Release.gpg, by-hash).
//! - `rpm_md`: `rpm/<distro>/<arch>/repodata/` (repomd, primary, filelists,
//!   other).
//! - `index`: `index.json` and `prebuilt/<distro>/<arch>/<kernel>.json`.
//! - `page`: the matrix page, `index.html`.
//! - `rpm_sign`: the repository key's header signature on every .rpm.
//! - `sign`: OpenPGP keys and signatures.
//! - `serve`: a small static HTTP server for tests, demos and air-gapped
//!   sites.
//!
//! A publish is [`prepare`] (lock, read the state and the inputs, compute
//! the [`Plan`]) and then [`execute`] (write it, old-or-new for readers).
//! Library code never prints: progress comes out as [`Event`]s.

pub mod apt;
pub mod chunks;
pub mod debfile;
pub mod debversion;
pub mod error;
pub mod execute;
pub mod index;
pub mod inputs;
pub mod lists;
pub mod page;
pub mod plan;
pub mod rpm_md;
pub mod rpm_sign;
pub mod serve;
pub mod sign;
pub mod state;

use std::path::{Path, PathBuf};

pub use error::{PublishError, Result};
pub use execute::{execute, Disk, Event, RepoFs};
pub use inputs::Targets;
pub use plan::{Plan, PublishOptions};

use state::RepoLock;

/// What `kmodfarm publish` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub repo: PathBuf,
    pub packages: Option<PathBuf>,
    pub builds: Option<PathBuf>,
    pub options: PublishOptions,
    /// Wait for another publish holding the lock instead of failing.
    pub wait: bool,
}

/// A plan with the repository's lock held: execute it, or drop it.
pub struct Prepared {
    pub plan: Plan,
    _lock: Option<RepoLock>,
}

/// Reads and checks every input (packages, build output, the repository's
/// state), takes the lock, and plans. Nothing in the repository changes
/// unless the repository is new (its directory and `.kmodfarm/lock` are
/// made, to be locked) or a killed publish left files behind (removed).
pub fn prepare(
    request: &Request,
    targets: &Targets,
    key: &sign::SigningKey,
    dry_run: bool,
) -> Result<Prepared> {
    let repo = &request.repo;
    // Refuse a directory that is not ours before touching anything.
    state::probe(repo)?;
    let builds = request
        .builds
        .as_deref()
        .map(inputs::read_builds)
        .transpose()?;
    let (debs, rpms) = match &request.packages {
        Some(dir) => inputs::read_packages(dir, targets, builds.as_ref(), key)?,
        None => (Vec::new(), Vec::new()),
    };

    let lock = if dry_run {
        None
    } else {
        ensure_repo_dirs(repo)?;
        Some(RepoLock::acquire(repo, request.wait)?)
    };
    // Under the lock, the state is the one the last publish committed.
    let old = state::open(repo, &targets.module)?;
    if let (Some(_), Some(old)) = (&lock, &old) {
        execute::sweep_leftovers(repo, old)?;
    }
    let plan = plan::plan(plan::PlanInputs {
        repo,
        targets,
        old,
        debs,
        rpms,
        builds: builds.as_ref(),
        key,
        options: &request.options,
    })?;
    Ok(Prepared { plan, _lock: lock })
}

fn ensure_repo_dirs(repo: &Path) -> Result<()> {
    let dir = repo.join(state::STATE_DIR);
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(PublishError::io("make", &dir))?;
    }
    Ok(())
}

/// Parses `--valid-for`: a number with a unit, `s`, `m`, `h`, `d` or `w`
/// (`7d`, `36h`).
pub fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit: write it as 7d, 36h, 90m or 3600s"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}': '{number}' is not a whole number"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (s, m, h, d or w)")),
    };
    if n == 0 {
        return Err(format!("'{text}': a validity must be longer than zero"));
    }
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("36h"), Ok(129_600));
        assert!(parse_duration("7").unwrap_err().contains("no unit"));
        assert!(parse_duration("7y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0d").is_err());
    }
}
