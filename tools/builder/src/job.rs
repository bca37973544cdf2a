//! One kernel: find its result in the cache, or compile in the root, check
//! the product with modinfo, sign it, compress it, check that kmod reads
//! the compressed file, and record it. A finished job's files are moved
//! into the output directory whole; a failed one leaves its records and
//! logs there, and no product.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use kmodfarm_model::error_text::with_causes;
use kmodfarm_model::record::{Artifact, BuildOutcome, BuildRecord, SymbolSource, SCHEMA_VERSION};
use kmodfarm_model::{KernelInput, Manifest};

use crate::compress::compress;
use crate::error::{BuildError, Result};
use crate::headers::{tail, HeaderLayer};
use crate::image::RootInfo;
use crate::plan::{CacheInputs, Job, Skip};
use crate::runtime::{Bind, RunSpec, Runtime, GUEST_KEYS, GUEST_OUT, GUEST_SRC};
use crate::symbols::KernelSymbols;
use crate::workdir::WorkDir;

/// The rendered PRE_BUILD wrapper, laid beside the source.
const PREBUILD: &str = "kmodfarm-prebuild";

/// Where a build sees the kernel's System.map: where DKMS modules look.
const GUEST_BOOT: &str = "/boot";

/// Lines of a failed build's log kept in its record.
const LOG_TAIL: usize = 25;

/// What every job of a run shares.
pub struct Shared<'a> {
    pub manifest: &'a Manifest,
    pub runtime: &'a dyn Runtime,
    pub cache: &'a Path,
    pub out: &'a Path,
    pub source_digest: &'a str,
    pub manifest_build: String,
}

/// Why a job failed, for its records.
struct Failure {
    reason: String,
    log: String,
}

impl From<BuildError> for Failure {
    fn from(e: BuildError) -> Failure {
        Failure {
            reason: with_causes(&e),
            log: String::new(),
        }
    }
}

fn record(shared: &Shared, job: &Job, module: &str, outcome: BuildOutcome) -> BuildRecord {
    BuildRecord {
        schema_version: SCHEMA_VERSION,
        module: module.to_string(),
        version: shared.manifest.package.version.clone(),
        distro: job.entry.distro.clone(),
        arch: job.entry.arch.clone(),
        kernel_release: job.entry.kernel_release.clone(),
        outcome,
        inputs: shared.manifest.build.needs.clone(),
        symbol_source: SymbolSource::NotNeeded,
        compiler: None,
        toolchain_image: Some(job.toolchain_image.clone()),
        cache_key: String::new(),
        duration_ms: 0,
        log: None,
        boot_test: None,
    }
}

/// Records for a kernel outside the range.
pub fn skipped(manifest: &Manifest, skip: &Skip) -> Vec<BuildRecord> {
    manifest
        .modules
        .iter()
        .map(|m| BuildRecord {
            schema_version: SCHEMA_VERSION,
            module: m.name.clone(),
            version: manifest.package.version.clone(),
            distro: skip.entry.distro.clone(),
            arch: skip.entry.arch.clone(),
            kernel_release: skip.entry.kernel_release.clone(),
            outcome: BuildOutcome::Skipped {
                reason: skip.reason.clone(),
            },
            inputs: manifest.build.needs.clone(),
            symbol_source: SymbolSource::NotNeeded,
            compiler: None,
            toolchain_image: None,
            cache_key: String::new(),
            duration_ms: 0,
            log: None,
            boot_test: None,
        })
        .collect()
}

/// Records for a job that could not even start (no root, no headers), or
/// whose result could not be installed: the reason is its log, written
/// beside the records in the output.
pub fn failed(shared: &Shared, job: &Job, reason: &str, started: Instant) -> Vec<BuildRecord> {
    let mut records = failure_records(shared, job, reason, reason);
    for r in &mut records {
        r.duration_ms = started.elapsed().as_millis() as u64;
    }
    install_failure(shared, job, reason, records)
}

/// One Failed record per product, with `log`'s tail.
fn failure_records(shared: &Shared, job: &Job, reason: &str, log: &str) -> Vec<BuildRecord> {
    job.products
        .iter()
        .map(|p| {
            record(
                shared,
                job,
                &p.module,
                BuildOutcome::Failed {
                    reason: reason.to_string(),
                    log_tail: tail(log, LOG_TAIL).lines().map(str::to_string).collect(),
                },
            )
        })
        .collect()
}

/// A failed kernel's directory in the output: its records and each
/// module's whole log, no product (an older product for the kernel would
/// now be a lie, so it goes). When even that cannot be written, the
/// records say so and point at no log.
fn install_failure(
    shared: &Shared,
    job: &Job,
    log: &str,
    mut records: Vec<BuildRecord>,
) -> Vec<BuildRecord> {
    if let Err(e) =
        crate::output::install_kernel(shared.out, &job.entry.key(), &[], log, &mut records)
    {
        for r in &mut records {
            r.log = None;
            if let BuildOutcome::Failed { reason, .. } = &mut r.outcome {
                reason.push_str(&format!(
                    " (and its log could not be written: {})",
                    with_causes(&e)
                ));
            }
        }
    }
    records
}

/// Builds (or finds cached) `job` in `root` over `headers`, with the
/// kernel's checked System.map when the manifest needs one.
pub fn run(
    shared: &Shared,
    job: &Job,
    root: &RootInfo,
    headers: &HeaderLayer,
    symbols: Option<&KernelSymbols>,
    started: Instant,
) -> Vec<BuildRecord> {
    // The map is an input like the headers: another map, another product.
    let mut inputs = headers.packages.clone();
    if let Some(s) = symbols {
        inputs.push(format!("system-map={}", s.sha256));
    }
    // How the build runs: the script, and the dkms.conf and
    // kmodfarm-prebuild it reads (rendered from the manifest).
    let mut how = Sha256::new();
    how.update(crate::dkms_env::BUILD_SCRIPT);
    if shared.manifest.build.dkms_conf.is_none() {
        for (name, contents, _) in rendered_files(shared.manifest).unwrap_or_default() {
            if name == "dkms.conf" || name == PREBUILD {
                how.update(name);
                how.update(contents);
            }
        }
    }
    inputs.push(format!("dkms-build={}", hex::encode(how.finalize())));
    let key = CacheInputs {
        source_digest: shared.source_digest,
        manifest_build: shared.manifest_build.clone(),
        kernel: job.entry.kernel_release.as_str(),
        header_packages: &inputs,
        root_id: &root.id,
    }
    .key();
    let finish = |mut records: Vec<BuildRecord>| {
        for r in &mut records {
            r.cache_key = key.clone();
            r.compiler = Some(root.compiler.clone());
            r.duration_ms = started.elapsed().as_millis() as u64;
        }
        records
    };
    if let Some(records) = from_cache(shared, job, &key) {
        return finish(records);
    }
    match build(shared, job, root, headers, symbols, &key) {
        Ok(records) => {
            let mut records = finish(records);
            match install(shared, job, &cache_entry(shared, &key), &mut records) {
                Ok(()) => records,
                Err(e) => failed(shared, job, &with_causes(&e), started),
            }
        }
        Err(failure) => {
            let log_text = if failure.log.is_empty() {
                &failure.reason
            } else {
                &failure.log
            };
            let records = finish(failure_records(shared, job, &failure.reason, log_text));
            install_failure(shared, job, log_text, records)
        }
    }
}

fn cache_entry(shared: &Shared, key: &str) -> PathBuf {
    shared.cache.join("artifacts").join(key)
}

/// The build log a cache entry keeps for its kernel (all its modules).
const ENTRY_LOG: &str = "build.log";

/// The cached result for `key`, installed into the output, as Cached.
fn from_cache(shared: &Shared, job: &Job, key: &str) -> Option<Vec<BuildRecord>> {
    let entry = cache_entry(shared, key);
    let text = std::fs::read_to_string(entry.join("records.json")).ok()?;
    let records: Vec<BuildRecord> = serde_json::from_str(&text).ok()?;
    let mut cached: Vec<BuildRecord> = records
        .into_iter()
        .map(|mut r| {
            if let BuildOutcome::Built { artifact } = r.outcome {
                r.outcome = BuildOutcome::Cached { artifact };
            }
            r
        })
        .collect();
    if cached.len() != job.products.len() {
        return None;
    }
    install(shared, job, &entry, &mut cached).ok()?;
    Some(cached)
}

/// Installs a cache entry's products, its log (one copy per module) and
/// `records` as the kernel's directory in the output.
fn install(shared: &Shared, job: &Job, from: &Path, records: &mut [BuildRecord]) -> Result<()> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(from).map_err(BuildError::io(from))? {
        let entry = entry.map_err(BuildError::io(from))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "records.json" || name == ENTRY_LOG {
            continue;
        }
        files.push((name, entry.path()));
    }
    let log_path = from.join(ENTRY_LOG);
    let log = std::fs::read_to_string(&log_path).map_err(BuildError::io(&log_path))?;
    crate::output::install_kernel(shared.out, &job.entry.key(), &files, &log, records)
}

/// The compile script: DKMS's steps in bash (see `dkms_build.sh`).
const SCRIPT: &str = "exec bash -c \"$KMODFARM_BUILD\" kmodfarm-build";

/// Where the files a -dkms package lays beside the source go, in the
/// job's output directory.
const OVERLAY: &str = "dkms-package";

/// The files `kmodfarm render` writes for `manifest`: name, contents, mode.
fn rendered_files(manifest: &Manifest) -> Result<Vec<(String, String, u32)>> {
    let files = kmodfarm_render::render(manifest, &kmodfarm_render::RenderOptions::default())
        .map_err(|e| BuildError::Other(format!("rendering dkms.conf: {e}")))?;
    Ok(files
        .into_iter()
        .map(|f| (f.name, f.contents, f.mode))
        .collect())
}

fn build(
    shared: &Shared,
    job: &Job,
    root: &RootInfo,
    headers: &HeaderLayer,
    symbols: Option<&KernelSymbols>,
    key: &str,
) -> std::result::Result<Vec<BuildRecord>, Failure> {
    let manifest = shared.manifest;
    if manifest.build.needs(KernelInput::SystemMap) && symbols.is_none() {
        return Err(Failure {
            reason: format!(
                "the manifest needs a System.map and none was found for {}",
                job.entry.kernel_release
            ),
            log: String::new(),
        });
    }
    // Locked while this job lives; a killed run's is swept by the next.
    let work = WorkDir::create(shared.cache, job.entry.kernel_release.as_str())?;
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).map_err(BuildError::io(&out))?;
    let runtime = shared.runtime;
    let src_bind = Bind {
        host: std::fs::canonicalize(manifest.source_path())
            .map_err(BuildError::io(manifest.source_path()))?,
        guest: GUEST_SRC.into(),
        writable: false,
    };
    let out_bind = Bind {
        host: out.clone(),
        guest: GUEST_OUT.into(),
        writable: true,
    };
    let mut binds = vec![src_bind.clone(), out_bind.clone()];
    let out_guest = runtime.guest_path(&out_bind);
    let dkms = crate::dkms_env::plan(manifest, job, &out_guest, &|| rendered_files(manifest))?;
    let mut env = vec![
        ("SRC".to_string(), runtime.guest_path(&src_bind)),
        ("OUT".to_string(), out_guest.clone()),
        (
            "KMODFARM_BUILD".to_string(),
            crate::dkms_env::BUILD_SCRIPT.to_string(),
        ),
        ("SIGN_HASH".to_string(), String::new()),
    ];
    env.extend(dkms.env.iter().cloned());
    if !dkms.overlay.is_empty() {
        let dir = out.join(OVERLAY);
        std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        for (name, contents, mode) in &dkms.overlay {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(BuildError::io(&path))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .map_err(BuildError::io(&path))?;
        }
        env.push(("CONF_DIR".into(), format!("{out_guest}/{OVERLAY}")));
    }
    if let Some(symbols) = symbols {
        // The checks run by the rendered kmodfarm-prebuild (the
        // dkms.conf's PRE_BUILD), exactly as DKMS runs it on a target
        // host: one rule for "is this System.map real", whichever route
        // builds the module.
        let dir = symbols.path.parent().expect("maps live in a directory");
        let boot_bind = Bind {
            host: dir.to_path_buf(),
            guest: GUEST_BOOT.into(),
            writable: false,
        };
        let map = format!(
            "{}/System.map-{}",
            runtime.guest_path(&boot_bind),
            job.entry.kernel_release
        );
        env.push(("KMODFARM_SYSTEM_MAP".into(), map.clone()));
        env.push(("SYSTEM_MAP".into(), map));
        binds.push(boot_bind);
    }
    if let Some(signing) = &manifest.signing {
        let keys = work.path().join("keys");
        std::fs::create_dir_all(&keys).map_err(BuildError::io(&keys))?;
        for (from, name) in [(&signing.key, "key.pem"), (&signing.cert, "cert")] {
            let from = manifest.root.join(from);
            std::fs::copy(&from, keys.join(name)).map_err(|e| Failure {
                reason: format!("signing: cannot read {}: {e}", from.display()),
                log: String::new(),
            })?;
        }
        let keys_bind = Bind {
            host: keys,
            guest: GUEST_KEYS.into(),
            writable: false,
        };
        env.push(("KEYS".into(), runtime.guest_path(&keys_bind)));
        binds.push(keys_bind);
        env.retain(|(k, _)| k != "SIGN_HASH");
        env.push(("SIGN_HASH".into(), signing.hash.clone()));
    }
    let spec = RunSpec {
        script: SCRIPT,
        binds: binds.clone(),
        headers: headers.tree.as_deref(),
        network: false,
        env: env.clone(),
    };
    let done = runtime.run(root, &spec)?;
    let log = done.output.clone();
    let fail = |reason: String| Failure {
        reason,
        log: log.clone(),
    };
    if !done.success && out.join("excluded").is_file() {
        // The module's own dkms.conf excludes the kernel (BUILD_EXCLUSIVE_*):
        // a skip, as DKMS's, and as deterministic as a build.
        let why = std::fs::read_to_string(out.join("excluded")).unwrap_or_default();
        let reason = format!("the module's dkms.conf: {}", why.trim());
        return store_skip(shared, job, &work, key, &log, &reason);
    }
    if !done.success {
        let last = kmodfarm_model::text::last_line(&done.output);
        return Err(fail(format!("build failed ({}): {last}", done.status)));
    }

    let products = out.join("products");
    let field = |module: &str, name: &str| {
        std::fs::read_to_string(products.join(format!("{module}.{name}")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    // The cache entry, made whole in the work directory, then renamed.
    let final_dir = work.path().join("entry");
    std::fs::create_dir(&final_dir).map_err(BuildError::io(&final_dir))?;
    let mut records = Vec::new();
    let mut check_script = String::new();
    for p in &job.products {
        if !products.join(format!("{}.ko", p.module)).is_file() {
            return Err(fail(format!(
                "the build made no {}.ko (the dkms.conf's BUILT_MODULE_NAME does not name it for this kernel)",
                p.module
            )));
        }
        let vermagic = field(&p.module, "vermagic");
        let kernel = job.entry.kernel_release.as_str();
        if vermagic.split_whitespace().next() != Some(kernel) {
            return Err(fail(format!(
                "{}.ko has vermagic '{vermagic}', not for {kernel}",
                p.module
            )));
        }
        // The kernel treats '-' and '_' in module names as one character
        // (foo-bar.ko loads as foo_bar): kmod and DKMS compare them so.
        let name = field(&p.module, "name");
        if !same_module_name(&name, &p.module) {
            return Err(fail(format!(
                "{}.ko calls itself '{name}' (modinfo name), not '{}'",
                p.module, p.module
            )));
        }
        // Recorded, not compared: DKMS installs a module whatever its
        // MODULE_VERSION says, or without one.
        let module_version = field(&p.module, "version");
        let signed = !field(&p.module, "signer").is_empty();
        if manifest.signing.is_some() && !signed {
            return Err(fail(format!(
                "{}.ko has no signature after sign-file",
                p.module
            )));
        }
        let file_name = Path::new(&p.artifact)
            .file_name()
            .expect("artifact has a name")
            .to_owned();
        let packed = final_dir.as_path().join(&file_name);
        compress(
            &products.join(format!("{}.ko", p.module)),
            &packed,
            job.compression,
        )?;
        let bytes = std::fs::read(&packed).map_err(BuildError::io(&packed))?;
        // Compared by its first word: modinfo ends vermagic with a space.
        check_script.push_str(&format!(
            "v=$(modinfo -F vermagic {GUEST_OUT}/{file}) || exit 1\n[ \"${{v%% *}}\" = '{kernel}' ] || {{ echo \"{file}: vermagic reads '$v'\"; exit 1; }}\n",
            file = file_name.to_string_lossy(),
        ));
        std::fs::copy(&packed, out.join(&file_name)).map_err(BuildError::io(&out))?;
        records.push(record(
            shared,
            job,
            &p.module,
            BuildOutcome::Built {
                artifact: Artifact {
                    path: p.artifact.clone(),
                    module: p.module.clone(),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    size: bytes.len() as u64,
                    compression: job.compression,
                    signed,
                    vermagic,
                    module_version,
                },
            },
        ));
    }
    // The target's own kmod must read the compressed file.
    let check = RunSpec {
        script: &check_script,
        binds: vec![Bind {
            writable: false,
            ..out_bind
        }],
        headers: None,
        network: false,
        env: vec![],
    };
    let check_script_host;
    let check = if runtime.uses_header_layer() {
        check
    } else {
        check_script_host = check_script.replace(GUEST_OUT, &out.display().to_string());
        RunSpec {
            script: &check_script_host,
            ..check
        }
    };
    let checked = runtime.run(root, &check)?;
    if !checked.success {
        return Err(fail(format!(
            "kmod in the {} root cannot read the compressed module: {}",
            job.entry.distro,
            checked.output.trim()
        )));
    }
    let log_path = final_dir.as_path().join(ENTRY_LOG);
    std::fs::write(&log_path, &log).map_err(BuildError::io(&log_path))?;
    for r in &mut records {
        r.log = Some(crate::output::log_path(r));
        if let Some(s) = symbols {
            r.symbol_source = s.source;
        }
        r.cache_key = key.to_string();
        r.compiler = Some(root.compiler.clone());
    }
    let json = serde_json::to_string_pretty(&records).expect("records serialize");
    std::fs::write(final_dir.as_path().join("records.json"), json)
        .map_err(BuildError::io(final_dir.as_path()))?;
    let entry = cache_entry(shared, key);
    if let Some(parent) = entry.parent() {
        std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
    }
    // When another process stored the same key first (same inputs, same
    // result), the rename fails and this one goes with the work directory.
    let _ = std::fs::rename(&final_dir, &entry);
    Ok(records)
}

/// A kernel the module's own dkms.conf excludes: Skipped records, kept in
/// the cache like a build's, with the build's log.
fn store_skip(
    shared: &Shared,
    job: &Job,
    work: &WorkDir,
    key: &str,
    log: &str,
    reason: &str,
) -> std::result::Result<Vec<BuildRecord>, Failure> {
    let final_dir = work.path().join("entry");
    std::fs::create_dir(&final_dir).map_err(BuildError::io(&final_dir))?;
    let records: Vec<BuildRecord> = job
        .products
        .iter()
        .map(|p| {
            let mut r = record(
                shared,
                job,
                &p.module,
                BuildOutcome::Skipped {
                    reason: reason.to_string(),
                },
            );
            r.cache_key = key.to_string();
            r.log = Some(crate::output::log_path(&r));
            r
        })
        .collect();
    let log_path = final_dir.join(ENTRY_LOG);
    std::fs::write(&log_path, log).map_err(BuildError::io(&log_path))?;
    let json = serde_json::to_string_pretty(&records).expect("records serialize");
    std::fs::write(final_dir.join("records.json"), json).map_err(BuildError::io(&final_dir))?;
    let entry = cache_entry(shared, key);
    if let Some(parent) = entry.parent() {
        std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
    }
    let _ = std::fs::rename(&final_dir, &entry);
    Ok(records)
}

/// Whether two module names are the same to the kernel: equal once every
/// '-' reads as '_'.
fn same_module_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || matches!((x, y), (b'-', b'_') | (b'_', b'-')))
}

#[cfg(test)]
mod tests {
    use super::same_module_name;

    #[test]
    fn module_names_match_up_to_dash_and_underscore_only() {
        assert!(same_module_name("foo_bar", "foo-bar"));
        assert!(same_module_name("foo-bar_baz", "foo_bar-baz"));
        assert!(!same_module_name("foo_bar", "foobar"));
        assert!(!same_module_name("foo_bar", "Foo_bar"));
        assert!(!same_module_name("", "x"));
    }
}
