//! Running a plan: roots first (one per distro), then up to N jobs at once
//! on worker threads, each fetching its kernel's headers if needed and then
//! building. A failing kernel becomes a Failed record; the others go on.
//! With a System.map needed, a job first gets its kernel's map (see
//! [`crate::guests`]); with boot tests, each built kernel is handed to
//! boot workers that run beside the builds, as many as cores and memory
//! allow.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use kmodfarm_model::error_text::with_causes;
use kmodfarm_model::record::BuildRecord;
use kmodfarm_model::{DistroSet, Manifest};

use crate::error::{BuildError, Result};
use crate::events::{Event, Events};
use crate::guests::{guest_budget, GuestOptions, Guests};
use crate::headers::{HeaderLayer, HeaderStore};
use crate::image::{RootInfo, RootRecipe};
use crate::job::{self, Shared};
use crate::kernel_image::KernelImage;
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
    /// System.map sources and boot tests.
    pub guests: GuestOptions,
}

/// A built kernel waiting for its boot test.
struct BootTask<'a> {
    root: &'a RootInfo,
    image: KernelImage,
    records: Vec<BuildRecord>,
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
    // The output, swept of what killed runs left in it.
    let (staging, _) = kmodfarm_staging::Staging::open(&opts.out)?;
    staging.commit();
    // Killed runs' work directories and containers: nobody's any more.
    for swept in [
        crate::workdir::sweep(&opts.cache).map(|_| ()),
        opts.runtime.sweep().map(|_| ()),
    ] {
        if let Err(e) = swept {
            events(Event::Warning {
                message: format!("cleaning up after an interrupted run: {}", with_causes(&e)),
            });
        }
    }
    // An output whose records.json this run could not merge into is
    // refused now, not after the builds.
    crate::output::read_records(&opts.out)?;
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
    let guests = Guests::new(&opts.cache, &opts.guests);
    let needs_image = guests.needed(manifest);
    let queue: Mutex<VecDeque<&Job>> = Mutex::new(plan.jobs.iter().collect());
    let done: Mutex<Vec<BuildRecord>> = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(plan.jobs.len().max(1));
    let boot_workers = if opts.guests.boot.is_some() {
        guest_budget().min(plan.jobs.len().max(1))
    } else {
        0
    };
    let (to_boot, boot_queue) = mpsc::channel::<BootTask>();
    let boot_queue = Mutex::new(boot_queue);
    std::thread::scope(|scope| {
        for _ in 0..boot_workers {
            scope.spawn(|| loop {
                let task = boot_queue.lock().expect("not poisoned").recv();
                let Ok(mut task) = task else { break };
                if let Some(first) = task.records.first() {
                    events(Event::BootTesting {
                        key: &format!("{}/{}/{}", first.distro, first.arch, first.kernel_release),
                    });
                }
                guests.boot_test(
                    opts.runtime,
                    task.root,
                    &task.image,
                    manifest,
                    &opts.out,
                    &mut task.records,
                );
                for r in &task.records {
                    events(Event::Finished { record: r });
                }
                done.lock().expect("not poisoned").extend(task.records);
            });
        }
        for _ in 0..workers {
            let to_boot = to_boot.clone();
            scope.spawn(|| {
                let to_boot = to_boot;
                loop {
                    let Some(job) = queue.lock().expect("not poisoned").pop_front() else {
                        break;
                    };
                    let started = Instant::now();
                    let key = job.entry.key();
                    let (result, boot) = match &roots[&job.entry.distro] {
                        Err(reason) => (job::failed(&shared, job, reason, started), None),
                        Ok(root) => {
                            if opts.runtime.uses_header_layer() && !headers.is_ready(&job.entry) {
                                events(Event::FetchingHeaders { key: &key });
                            }
                            match headers.layer(opts.runtime, root, &job.entry) {
                                Err(e) => {
                                    (job::failed(&shared, job, &with_causes(&e), started), None)
                                }
                                Ok(layer) => build_one(
                                    &shared,
                                    &guests,
                                    needs_image,
                                    set,
                                    job,
                                    root,
                                    &layer,
                                    started,
                                    events,
                                ),
                            }
                        }
                    };
                    match (boot, result) {
                        (Some((root, image)), records)
                            if records.iter().any(|r| {
                                matches!(
                                    r.outcome,
                                    kmodfarm_model::record::BuildOutcome::Built { .. }
                                        | kmodfarm_model::record::BuildOutcome::Cached { .. }
                                )
                            }) =>
                        {
                            let _ = to_boot.send(BootTask {
                                root,
                                image,
                                records,
                            });
                        }
                        (_, records) => {
                            for r in &records {
                                events(Event::Finished { record: r });
                            }
                            done.lock().expect("not poisoned").extend(records);
                        }
                    }
                }
            });
        }
        drop(to_boot);
    });
    records.extend(done.into_inner().expect("not poisoned"));
    sort_records(&mut records);
    // Earlier runs' records for other kernels stay.
    crate::output::store_records(&opts.out, &records, true)?;
    Ok(records)
}

/// One job with its headers ready: the kernel's image and System.map when
/// needed, then the build; returns the records, and what a boot test needs
/// when one is to follow.
#[allow(clippy::too_many_arguments)]
fn build_one<'r>(
    shared: &Shared,
    guests: &Guests,
    needs_image: bool,
    set: &DistroSet,
    job: &Job,
    root: &'r RootInfo,
    layer: &HeaderLayer,
    started: Instant,
    events: Events,
) -> (Vec<BuildRecord>, Option<(&'r RootInfo, KernelImage)>) {
    let key = job.entry.key();
    if !needs_image {
        events(Event::Started { key: &key });
        return (job::run(shared, job, root, layer, None, started), None);
    }
    let distro = match find_distro(set, &job.entry.distro) {
        Ok(d) => d,
        Err(e) => return (job::failed(shared, job, &with_causes(&e), started), None),
    };
    let image = match guests
        .images
        .image(shared.runtime, root, distro, &job.entry, Some(layer))
    {
        Ok(image) => image,
        Err(e) => return (job::failed(shared, job, &with_causes(&e), started), None),
    };
    let symbols = if shared
        .manifest
        .build
        .needs(kmodfarm_model::KernelInput::SystemMap)
    {
        events(Event::SystemMap { key: &key });
        match guests.system_map(shared.runtime, root, distro, &job.entry, &image) {
            Ok(s) => Some(s),
            Err(e) => return (job::failed(shared, job, &with_causes(&e), started), None),
        }
    } else {
        None
    };
    events(Event::Started { key: &key });
    let records = job::run(shared, job, root, layer, symbols.as_ref(), started);
    let boot = guests.options.boot.is_some().then_some((root, image));
    (records, boot)
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

/// `<out>/records.json` holding exactly `records` (see
/// [`crate::output::store_records`] for the merging write a build does).
pub fn write_records(out: &Path, records: &[BuildRecord]) -> Result<()> {
    crate::output::store_records(out, records, false).map(drop)
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

/// `kmodfarm boot-test`: boot-tests the built kernels of an earlier run's
/// `<out>/records.json` (as many at once as cores and memory allow),
/// writes the results into it, and returns every record.
pub fn boot_test_output(
    manifest: &Manifest,
    set: &DistroSet,
    opts: &Options,
    events: Events,
) -> Result<Vec<BuildRecord>> {
    let path = opts.out.join("records.json");
    let text = std::fs::read_to_string(&path).map_err(BuildError::io(&path))?;
    let records: Vec<BuildRecord> =
        serde_json::from_str(&text).map_err(|e| BuildError::BadInput {
            path: path.clone(),
            message: format!("not the records.json of a kmodfarm build: {e}"),
        })?;
    let mut by_kernel: BTreeMap<String, Vec<BuildRecord>> = BTreeMap::new();
    for r in records {
        let key = format!("{}:{}", r.distro, r.kernel_release);
        by_kernel.entry(key).or_default().push(r);
    }
    let guests = Guests::new(&opts.cache, &opts.guests);
    let headers = HeaderStore::new(&opts.cache);
    let mut roots: BTreeMap<String, std::result::Result<RootInfo, String>> = BTreeMap::new();
    for group in by_kernel.values() {
        let id = &group[0].distro;
        if !roots.contains_key(id) {
            let root =
                root_for(id, set, opts, events).map_err(|e| format!("no root for {id}: {e}"));
            roots.insert(id.clone(), root);
        }
    }
    let queue: Mutex<VecDeque<(String, Vec<BuildRecord>)>> =
        Mutex::new(by_kernel.into_iter().collect());
    let done: Mutex<Vec<BuildRecord>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..guest_budget() {
            scope.spawn(|| loop {
                let Some((kernel, mut group)) = queue.lock().expect("not poisoned").pop_front()
                else {
                    break;
                };
                let built = group.iter().any(|r| {
                    matches!(
                        r.outcome,
                        kmodfarm_model::record::BuildOutcome::Built { .. }
                            | kmodfarm_model::record::BuildOutcome::Cached { .. }
                    )
                });
                if built {
                    events(Event::BootTesting { key: &kernel });
                    let prepared = (|| -> Result<(&RootInfo, KernelImage)> {
                        let root = roots[&group[0].distro]
                            .as_ref()
                            .map_err(|e| BuildError::Other(e.clone()))?;
                        let entry = crate::plan::entries_from_kernels(
                            set,
                            None,
                            std::slice::from_ref(&kernel),
                        )?
                        .remove(0);
                        let distro = find_distro(set, &entry.distro)?;
                        // The header layer may hold the image already.
                        let layer = if headers.is_ready(&entry) {
                            headers.layer(opts.runtime, root, &entry).ok()
                        } else {
                            None
                        };
                        Ok((
                            root,
                            guests.images.image(
                                opts.runtime,
                                root,
                                distro,
                                &entry,
                                layer.as_ref(),
                            )?,
                        ))
                    })();
                    match prepared {
                        Ok((root, image)) => guests.boot_test(
                            opts.runtime,
                            root,
                            &image,
                            manifest,
                            &opts.out,
                            &mut group,
                        ),
                        Err(e) => {
                            for r in &mut group {
                                r.boot_test =
                                    Some(kmodfarm_model::record::BootTest::could_not_run(&e));
                            }
                        }
                    }
                }
                for r in &group {
                    events(Event::Finished { record: r });
                }
                done.lock().expect("not poisoned").extend(group);
            });
        }
    });
    let mut records = done.into_inner().expect("not poisoned");
    sort_records(&mut records);
    crate::output::store_records(&opts.out, &records, true)?;
    Ok(records)
}
