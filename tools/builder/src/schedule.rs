//! Running a plan: roots first (one per distro), then up to N jobs at once
//! on worker threads, each fetching its kernel's headers if needed and then
//! building. A failing kernel becomes a Failed record; the others go on.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use kmodfarm_model::error_text::with_causes;
use kmodfarm_model::record::BuildRecord;
use kmodfarm_model::{DistroSet, Manifest};

use crate::error::{BuildError, Result};
use crate::events::{Event, Events};
use crate::headers::HeaderStore;
use crate::image::{RootInfo, RootRecipe};
use crate::job::{self, Shared};
use crate::plan::{find_distro, manifest_build_section, BuildPlan, Job};
use crate::runtime::{Runtime, RuntimeKind};
use crate::source;

pub struct Options<'a> {
    pub jobs: usize,
    pub runtime: &'a dyn Runtime,
    pub cache: PathBuf,
    pub out: PathBuf,
    /// Archive for roots that must be made; else the host's apt sources.
    pub mirror: Option<String>,
    pub apt_sources: PathBuf,
}

/// Runs `plan`; returns every record (built, cached, failed, skipped),
/// sorted by kernel key, and writes them to `<out>/records.json`.
pub fn execute(
    plan: &BuildPlan,
    manifest: &Manifest,
    set: &DistroSet,
    opts: &Options,
    events: Events,
) -> Result<Vec<BuildRecord>> {
    events(Event::Planned {
        jobs: plan.jobs.len(),
        skips: plan.skips.len(),
    });
    std::fs::create_dir_all(&opts.out).map_err(BuildError::io(&opts.out))?;
    let source_digest = source::digest(&manifest.source_path())?;
    let shared = Shared {
        manifest,
        runtime: opts.runtime,
        cache: &opts.cache,
        out: &opts.out,
        source_digest: &source_digest,
        manifest_build: manifest_build_section(manifest),
    };

    let mut records: Vec<BuildRecord> = plan
        .skips
        .iter()
        .flat_map(|s| job::skipped(manifest, s))
        .collect();
    for r in &records {
        events(Event::Finished { record: r });
    }
    let roots = roots_for(plan, set, opts, events);
    let headers = HeaderStore::new(&opts.cache);
    let queue: Mutex<VecDeque<&Job>> = Mutex::new(plan.jobs.iter().collect());
    let done: Mutex<Vec<BuildRecord>> = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(plan.jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(job) = queue.lock().expect("not poisoned").pop_front() else {
                    break;
                };
                let started = Instant::now();
                let key = job.entry.key();
                let result = match &roots[&job.entry.distro] {
                    Err(reason) => job::failed(&shared, job, reason, started),
                    Ok(root) => {
                        if opts.runtime.uses_header_layer() && !headers.is_ready(&job.entry) {
                            events(Event::FetchingHeaders { key: &key });
                        }
                        let layer = headers.layer(opts.runtime, root, &job.entry);
                        match layer {
                            Err(e) => job::failed(&shared, job, &with_causes(&e), started),
                            Ok(layer) => {
                                events(Event::Started { key: &key });
                                job::run(&shared, job, root, &layer, started)
                            }
                        }
                    }
                };
                for r in &result {
                    events(Event::Finished { record: r });
                }
                done.lock().expect("not poisoned").extend(result);
            });
        }
    });
    records.extend(done.into_inner().expect("not poisoned"));
    sort_records(&mut records);
    write_records(&opts.out, &records)?;
    Ok(records)
}

/// The order of every record list: distro, arch, kernel (newest last), module.
pub fn sort_records(records: &mut [BuildRecord]) {
    records.sort_by(|a, b| {
        (&a.distro, &a.arch, &a.kernel_release, &a.module).cmp(&(
            &b.distro,
            &b.arch,
            &b.kernel_release,
            &b.module,
        ))
    });
}

/// `<out>/records.json`, written through a temporary file.
pub fn write_records(out: &Path, records: &[BuildRecord]) -> Result<()> {
    let path = out.join("records.json");
    let tmp = out.join(".records.json.tmp");
    let json = serde_json::to_string_pretty(records).expect("records serialize");
    std::fs::write(&tmp, json).map_err(BuildError::io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(BuildError::io(&path))
}

/// Each distro's root, or why it has none (its jobs then fail).
fn roots_for(
    plan: &BuildPlan,
    set: &DistroSet,
    opts: &Options,
    events: Events,
) -> BTreeMap<String, std::result::Result<RootInfo, String>> {
    let mut roots = BTreeMap::new();
    for job in &plan.jobs {
        let id = &job.entry.distro;
        if roots.contains_key(id) {
            continue;
        }
        let root = root_for(id, set, opts, events)
            .map_err(|e| format!("no build root for {id}: {}", with_causes(&e)));
        roots.insert(id.clone(), root);
    }
    roots
}

fn root_for(id: &str, set: &DistroSet, opts: &Options, events: Events) -> Result<RootInfo> {
    let distro = find_distro(set, id)?;
    if opts.runtime.kind() == RuntimeKind::Host {
        return Ok(host_root(id));
    }
    RootRecipe::check_supported(distro)?;
    let sources = crate::sources::sources_for(distro, opts.mirror.as_deref(), &opts.apt_sources)?;
    let recipe = RootRecipe::for_distro(distro, sources)?;
    let root_id = recipe.id();
    let making = recipe.find(&opts.cache).is_none();
    events(Event::Root {
        distro: id,
        root_id: &root_id,
        making,
    });
    let root = recipe.ensure(&opts.cache, &distro.toolchain.compiler)?;
    opts.runtime.prepare_root(&root)?;
    Ok(root)
}

/// The host as a "root": its own compiler, named in records.
fn host_root(distro: &str) -> RootInfo {
    let compiler = std::process::Command::new("gcc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown host compiler".into());
    RootInfo {
        id: format!("host-{distro}-{compiler}"),
        distro: distro.to_string(),
        packages: Vec::new(),
        compiler,
        path: PathBuf::from("/"),
    }
}
