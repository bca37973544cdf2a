//! kmodfarm's target side, the library behind `kmodfarm-host`: on a
//! customer's host, find the module for a kernel in the signed repository
//! and install it (prebuilt, or built by DKMS when the host opts in), stage
//! modules for new kernels, check the host (doctor) and remove everything
//! again (uninstall).
//!
//! - [`detect`]: distribution, architecture, running kernel.
//! - [`fetch`]: the [`Fetcher`] trait and the HTTP(S) one (retries, timeouts,
//!   always-verified TLS).
//! - [`verify`]: OpenPGP signatures, lookup acceptance (expiry, rollback),
//!   checksums.
//! - [`plan`]: what to do for one kernel, as data.
//! - [`execute`]: doing it through a [`Host`].
//! - [`depmod`], [`modindex`]: kmod's index after a module is placed.
//! - [`state`]: what the host remembers under `/var/lib/<name>/`.
//! - [`doctor`], [`uninstall`].

pub mod depmod;
pub mod detect;
pub mod doctor;
pub mod error;
pub mod execute;
pub mod fetch;
pub mod host;
pub mod modindex;
pub mod plan;
pub mod state;
pub mod uninstall;
pub mod verify;

use std::path::PathBuf;

use kmodfarm_model::host::{
    apt_source_path, config_path, state_dir, yum_repo_path, zypper_repo_path, HostConfig,
};
use kmodfarm_model::record::{
    kernel_lookup_path, DkmsRoute, Index, IndexEntry, KernelLookup, KernelStatus,
};
use kmodfarm_model::{Distro, DistroSet, KernelRelease};

pub use error::{Error, Result};
pub use fetch::{Fetcher, HttpFetcher};
pub use host::{Host, SystemHost};
use plan::{Answer, DkmsChoice, Facts, Plan};
use state::{Route, State};
use verify::{RepoKey, Wanted};

/// Everything known about one module on one host.
pub struct Session<'a> {
    pub config: HostConfig,
    pub distro: Distro,
    pub arch: String,
    pub key: RepoKey,
    pub state: State,
    pub host: &'a dyn Host,
    pub fetcher: &'a dyn Fetcher,
    /// Seconds since the epoch, for expiry.
    pub now: u64,
}

/// Reads the module's settings (`/etc/kmodfarm-host/<name>.toml`).
pub fn load_config(host: &dyn Host, name: &str) -> Result<HostConfig> {
    let path = host.path(&config_path(name));
    let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
    HostConfig::parse(&text).map_err(|message| Error::Config { path, message })
}

/// The one module configured on this host, when `--module` is not given.
pub fn only_module(host: &dyn Host) -> Result<String> {
    let dir = host.path("/etc/kmodfarm-host");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(Error::read(&dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".toml")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    match names.len() {
        1 => Ok(names.remove(0)),
        0 => Err(Error::Refused(format!(
            "{}: no module is configured on this host; run the module's install.sh",
            dir.display()
        ))),
        _ => Err(Error::Refused(format!(
            "several modules are configured ({}); say which with --module",
            names.join(", ")
        ))),
    }
}

impl<'a> Session<'a> {
    pub fn open(
        config: HostConfig,
        host: &'a dyn Host,
        fetcher: &'a dyn Fetcher,
        machine: &str,
    ) -> Result<Session<'a>> {
        let distro = detect::distro(host.root(), &DistroSet::builtin())?;
        let arch = detect::arch(&distro, machine);
        let key = RepoKey::load(&host.path(&config.key))?;
        let state = State::new(host.path(&state_dir(&config.name)));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Session {
            config,
            distro,
            arch,
            key,
            state,
            host,
            fetcher,
            now,
        })
    }

    /// Refuses a kernel outside the module's range before asking anything.
    pub fn check_range(&self, kernel: &str) -> Result<()> {
        let release =
            KernelRelease::parse(kernel).map_err(|e| Error::Refused(format!("{kernel}: {e}")))?;
        let range = self.config.range().map_err(|message| Error::Config {
            path: self.host.path(&config_path(&self.config.name)),
            message,
        })?;
        match range.exclusion_reason(&release) {
            Some(reason) => Err(Error::OutOfRange {
                name: self.config.name.clone(),
                kernel: kernel.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Fetches a signed file: the file and its `.asc`, verified.
    fn fetch_signed(&self, relative: &str) -> Result<Option<(String, Vec<u8>)>> {
        let url = fetch::join_url(&self.config.repo, relative);
        let Some((data, signature)) = self.fetch_pair(&url)? else {
            return Ok(None);
        };
        if self.key.verify(&url, &data, &signature).is_ok() {
            return Ok(Some((url, data)));
        }
        // A publish renames a file and then its signature: a host that
        // read between the two renames holds one of each generation.
        // Fetched again the pair agrees; a second mismatch is real.
        let Some((data, signature)) = self.fetch_pair(&url)? else {
            return Ok(None);
        };
        self.key.verify(&url, &data, &signature)?;
        Ok(Some((url, data)))
    }

    /// A file and its `.asc` signature; `None` when the file is not there.
    fn fetch_pair(&self, url: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(data) = self.fetcher.fetch(url)? else {
            return Ok(None);
        };
        let sig_url = format!("{url}.asc");
        let signature = self
            .fetcher
            .fetch(&sig_url)?
            .ok_or_else(|| Error::BadSignature {
                url: url.to_string(),
                message: format!("its signature {sig_url} is missing"),
            })?;
        Ok(Some((data, signature)))
    }

    /// The verified, fresh lookup file of `kernel`, or `Unknown`.
    pub fn look_up(&self, kernel: &str) -> Result<Answer> {
        let release =
            KernelRelease::parse(kernel).map_err(|e| Error::Refused(format!("{kernel}: {e}")))?;
        let relative = kernel_lookup_path(&self.distro.id, &self.arch, &release);
        let Some((url, data)) = self.fetch_signed(&relative)? else {
            return Ok(Answer::Unknown);
        };
        let wanted = Wanted {
            module: &self.config.name,
            distro: &self.distro.id,
            arch: &self.arch,
            kernel,
        };
        let lookup: KernelLookup = verify::accept_lookup(
            &url,
            &data,
            &wanted,
            self.now,
            self.state.last_serial()?,
            &self.state.serial_path(),
        )?;
        self.state.accept_serial(lookup.freshness.serial)?;
        Ok(Answer::Found(Box::new(lookup)))
    }

    /// The repository's signed `index.json`, checked like a lookup file.
    pub fn index(&self) -> Result<Option<Index>> {
        let Some((url, data)) = self.fetch_signed("index.json")? else {
            return Ok(None);
        };
        let index: Index = serde_json::from_slice(&data).map_err(|e| Error::Lookup {
            url: url.clone(),
            message: format!("not a repository index: {e}"),
        })?;
        if let Some(expires) = index.freshness.expires {
            if expires <= self.now {
                return Err(Error::Expired {
                    url,
                    expires,
                    now: self.now,
                });
            }
        }
        if let Some(last) = self.state.last_serial()? {
            if index.freshness.serial < last {
                return Err(Error::RolledBack {
                    url,
                    serial: index.freshness.serial,
                    last,
                    state: self.state.serial_path(),
                });
            }
        }
        Ok(Some(index))
    }

    /// The DKMS route of this distro from index.json (a lookup file may
    /// not exist for the kernel).
    fn index_dkms(&self) -> Option<DkmsRoute> {
        let index = self.index().ok()??;
        index.dkms.into_iter().find(|d| d.distro == self.distro.id)
    }

    /// The index's prebuilt entries of `kernel` on this distro and arch,
    /// when the product has several modules, the lookup names one of them
    /// and the host places files itself (no repository source).
    fn sibling_entries(&self, facts: &Facts, answer: &Answer) -> Result<Vec<IndexEntry>> {
        let prebuilt =
            matches!(answer, Answer::Found(l) if matches!(l.status, KernelStatus::Prebuilt { .. }));
        if !prebuilt || self.config.modules.len() <= 1 || facts.repo_source.is_some() {
            return Ok(Vec::new());
        }
        Ok(self
            .index()?
            .map(|index| {
                index
                    .entries
                    .into_iter()
                    .filter(|e| {
                        e.distro == self.distro.id
                            && e.arch == self.arch
                            && e.kernel_release.as_str() == facts.kernel
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The package manager's definition of the module's repository, when
    /// install.sh wrote one.
    pub fn repo_source(&self) -> Option<String> {
        let name = &self.config.name;
        [
            apt_source_path(name),
            yum_repo_path(name),
            zypper_repo_path(name),
        ]
        .into_iter()
        .find(|p| self.host.path(p).is_file())
    }

    /// How the module is in place for `kernel` already, if it is.
    pub fn present(&self, kernel: &str) -> Result<Option<Route>> {
        // Every module of the product, or it is not in place.
        if self.config.modules.is_empty()
            || self
                .config
                .modules
                .iter()
                .any(|m| execute::module_file(self.host, kernel, m).is_none())
        {
            return Ok(None);
        }
        Ok(Some(
            self.state
                .record(kernel)?
                .map_or(Route::PrebuiltPackage, |r| r.route),
        ))
    }

    pub fn facts(
        &self,
        kernel: &str,
        no_load: bool,
        use_staged: bool,
        with_index: bool,
    ) -> Result<Facts> {
        let running = detect::running_kernel().is_ok_and(|k| k == kernel);
        // The kernel hook stages every module of the product; a staging
        // that lacks one (a product that gained a module since) is not used.
        let staged = if use_staged {
            let root = self
                .host
                .root()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let staged: Vec<(IndexEntry, String)> = self
                .state
                .staged(kernel)?
                .into_iter()
                .map(|(entry, path)| {
                    let host_path = path
                        .to_string_lossy()
                        .strip_prefix(&root)
                        .map(str::to_string)
                        .unwrap_or_else(|| path.to_string_lossy().into_owned());
                    (entry, host_path)
                })
                .collect();
            let complete = self
                .config
                .modules
                .iter()
                .all(|m| staged.iter().any(|(e, _)| e.module == *m));
            if complete {
                staged
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        Ok(Facts {
            config: self.config.clone(),
            distro: self.distro.clone(),
            arch: self.arch.clone(),
            kernel: kernel.to_string(),
            running,
            repo_source: self.repo_source(),
            no_load,
            present: None,
            staged,
            index_dkms: if with_index { self.index_dkms() } else { None },
            sibling_entries: Vec::new(),
            download_dir: format!("{}/download/{kernel}", state_dir(&self.config.name)),
        })
    }

    /// `install`: the plan for `kernel`. Refuses a kernel outside the range
    /// and any fault of the repository before planning anything.
    pub fn plan_install(
        &self,
        kernel: &str,
        no_load: bool,
        dkms: DkmsChoice,
    ) -> Result<(Plan, Answer)> {
        self.check_range(kernel)?;
        let answer = self.look_up(kernel)?;
        let wants_index = !matches!(&answer, Answer::Found(l) if matches!(l.status, kmodfarm_model::record::KernelStatus::Prebuilt { .. }));
        let mut facts = self.facts(
            kernel,
            no_load,
            false,
            wants_index && dkms == DkmsChoice::Build,
        )?;
        facts.sibling_entries = self.sibling_entries(&facts, &answer)?;
        Ok((plan::plan(&facts, &answer, dkms), answer))
    }

    /// `ensure` (boot unit, `--kernel` for another): already there → load;
    /// staged by the hook → place; else the repository; DKMS only when the
    /// host opted in.
    pub fn plan_ensure(&self, kernel: &str, no_load: bool) -> Result<Plan> {
        self.check_range(kernel)?;
        let mut facts = self.facts(kernel, no_load, true, false)?;
        facts.present = self.present(kernel)?;
        let dkms = if self.state.dkms_opted_in() {
            DkmsChoice::Build
        } else {
            DkmsChoice::No
        };
        if facts.present.is_some() || !facts.staged.is_empty() {
            return Ok(plan::plan(&facts, &Answer::Unknown, dkms));
        }
        let answer = self.look_up(kernel)?;
        if dkms == DkmsChoice::Build {
            facts.index_dkms = self.index_dkms();
        }
        facts.sibling_entries = self.sibling_entries(&facts, &answer)?;
        Ok(plan::plan(&facts, &answer, dkms))
    }

    /// `stage` (kernel postinst hook): download and verify the prebuilt
    /// modules of `kernel` (every module of the product: the lookup file's
    /// entry and, for a product of several, the others from index.json)
    /// into the state directory; the staged files, or why nothing was
    /// staged. Never calls the package manager (the hook runs inside it).
    pub fn stage(&self, kernel: &str) -> Result<std::result::Result<Vec<PathBuf>, String>> {
        self.check_range(kernel)?;
        let none = format!("the repository has no prebuilt module for {kernel}");
        let Answer::Found(lookup) = self.look_up(kernel)? else {
            return Ok(Err(none));
        };
        let KernelStatus::Prebuilt { entry } = lookup.status else {
            return Ok(Err(none));
        };
        let others: Vec<IndexEntry> = if self.config.modules.len() > 1 {
            self.index()?.map(|i| i.entries).unwrap_or_default()
        } else {
            Vec::new()
        };
        let entries = match plan::every_module(&self.config.modules, &entry, &others) {
            Ok(entries) => entries,
            Err(missing) => {
                return Ok(Err(format!(
                    "the repository has no prebuilt {} {} for {kernel}",
                    missing.join(", "),
                    entry.version
                )))
            }
        };
        let dir = self.state.staged_dir(kernel);
        // What an earlier run staged stops counting before any file of this
        // one replaces its files.
        for old in [state::STAGED_ENTRIES, "entry.json"] {
            state::remove_if_present(&dir.join(old))?;
        }
        let mut files = Vec::new();
        for entry in &entries {
            let url = fetch::join_url(&self.config.repo, &entry.path);
            let data = self
                .fetcher
                .fetch(&url)?
                .ok_or_else(|| Error::Missing { url: url.clone() })?;
            verify::check_download(&url, &data, entry.size, &entry.sha256)?;
            let file = dir.join(entry.module_file_name());
            state::write_atomic(&file, &data)?;
            files.push(file);
        }
        // Written last: a hook killed before this line staged nothing.
        state::write_atomic(
            &dir.join(state::STAGED_ENTRIES),
            &serde_json::to_vec_pretty(&entries).expect("entries serialize"),
        )?;
        Ok(Ok(files))
    }
}

/// The exit code of `install`/`ensure` when no module was installed because
/// there is no prebuilt one and DKMS was not chosen.
pub const EXIT_NO_MODULE: u8 = 10;
