//! `doctor`: how the module stands on every installed kernel, and the three
//! failures seen in the field, each named with its fix:
//!
//! - `headers-before-image`: a kernel's headers are installed and its image
//!   is not; a module built then (from the headers alone, against a missing
//!   or placeholder System.map) can crash the host.
//! - `not-loaded-at-boot`: no modules-load.d entry, so the module is not
//!   loaded after a reboot.
//! - `module-missing`: an installed kernel (typically one an unattended
//!   upgrade brought) has no module: nothing rebuilt or installed it.
//!
//! and `dkms-build-failed`: DKMS tried and left a failed build.

use std::path::Path;

use serde::Serialize;

use crate::execute::{
    dkms_installed, headers_installed, image_installed, module_file, real_system_map,
};
use crate::host::Host;
use crate::Session;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A stable name: headers-before-image, not-loaded-at-boot,
    /// module-missing, dkms-build-failed, index-unreachable, unit-disabled.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelReport {
    pub kernel: String,
    pub running: bool,
    pub image: bool,
    pub headers: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// prebuilt (package), prebuilt (file), DKMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub signed: bool,
    pub loaded: bool,
    pub in_initramfs: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub module: String,
    pub ok: bool,
    pub kernels: Vec<KernelReport>,
    pub load_at_boot: Vec<String>,
    pub index: String,
    pub problems: Vec<Problem>,
}

fn problem(id: &str, kernel: Option<&str>, message: String, fix: String) -> Problem {
    Problem {
        id: id.into(),
        kernel: kernel.map(str::to_string),
        message,
        fix,
    }
}

/// Kernel releases with a directory under /lib/modules.
fn kernels(host: &dyn Host) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(host.path("/lib/modules"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// modules-load.d files that name `module`.
fn load_entries(host: &dyn Host, module: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [
        "/etc/modules-load.d",
        "/run/modules-load.d",
        "/usr/lib/modules-load.d",
        "/lib/modules-load.d",
    ] {
        let Ok(entries) = std::fs::read_dir(host.path(dir)) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".conf") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.split('#').next().unwrap_or("").trim() == module)
            {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    found
}

fn modinfo_field(host: &dyn Host, kernel: &str, module: &str, field: &str) -> Option<String> {
    let ran = host
        .run(&["modinfo", "-k", kernel, "-F", field, module])
        .ok()?;
    let value = ran.stdout.trim().to_string();
    (ran.success && !value.is_empty()).then_some(value)
}

pub fn doctor(session: &Session<'_>) -> Report {
    let host = session.host;
    let config = &session.config;
    let name = &config.name;
    let module = config
        .modules
        .first()
        .cloned()
        .unwrap_or_else(|| name.clone());
    let running = crate::detect::running_kernel().unwrap_or_default();
    let mut problems = Vec::new();
    let mut reports = Vec::new();
    let range = config.range().unwrap_or_default();
    for kernel in kernels(host) {
        let image = image_installed(host, &kernel);
        let headers = headers_installed(host, &kernel);
        let release = kmodfarm_model::KernelRelease::parse(&kernel).ok();
        let in_range = release.as_ref().is_some_and(|r| range.contains(r));
        if !image && !headers {
            continue; // leftovers of a removed kernel
        }
        let file = module_file(host, &kernel, &module);
        let record = session.state.record(&kernel).ok().flatten();
        let route = file.as_ref().map(|f| match &record {
            Some(r) => r.route.to_string(),
            None if f.contains("/updates/dkms/") => "DKMS".to_string(),
            None => "prebuilt (package)".to_string(),
        });
        let is_running = kernel == running;
        let loaded = is_running && host.path(&format!("/sys/module/{module}")).is_dir();
        let in_initramfs =
            (!config.initramfs.is_empty() && image).then(|| in_initramfs(host, &kernel, &module));
        reports.push(KernelReport {
            kernel: kernel.clone(),
            running: is_running,
            image,
            headers,
            version: file
                .as_ref()
                .and_then(|_| modinfo_field(host, &kernel, &module, "version")),
            signed: file
                .as_ref()
                .is_some_and(|_| modinfo_field(host, &kernel, &module, "signer").is_some()),
            module_file: file.clone(),
            route,
            loaded,
            in_initramfs,
        });
        if headers && !image {
            problems.push(problem(
                "headers-before-image",
                Some(&kernel),
                format!("kernel {kernel}: headers installed, image not; a module built from these headers now (DKMS's header hook) could crash the host"),
                format!("install the kernel image ({}), then run `kmodfarm-host ensure --kernel {kernel}`", image_package(session, &kernel)),
            ));
        } else if image && in_range && file.is_none() {
            problems.push(problem(
                "module-missing",
                Some(&kernel),
                format!("kernel {kernel}: {name} is not installed for it (a kernel upgrade that nothing followed)"),
                format!("run `kmodfarm-host ensure --kernel {kernel}`; keep {} enabled so boots fix this themselves", kmodfarm_model::host::unit_name(name)),
            ));
        }
        if image
            && config.needs_system_map
            && file.as_ref().is_some_and(|f| f.contains("/updates/dkms/"))
            && real_system_map(host, &kernel).is_ok_and(|map| map.is_err())
        {
            problems.push(problem(
                "headers-before-image",
                Some(&kernel),
                format!("kernel {kernel}: DKMS built {name} without the kernel's real System.map"),
                format!("install the real System.map, then `dkms remove {name} -k {kernel}` and `kmodfarm-host ensure --kernel {kernel}`"),
            ));
        }
        if in_initramfs == Some(false) {
            problems.push(problem(
                "not-in-initramfs",
                Some(&kernel),
                format!("kernel {kernel}: {module} must load early but is not in its initramfs"),
                format!("run `kmodfarm-host install --kernel {kernel}` (updates the initramfs)"),
            ));
        }
        if let Some(failure) = dkms_failure(session, &kernel) {
            problems.push(problem(
                "dkms-build-failed",
                Some(&kernel),
                format!("kernel {kernel}: DKMS's build of {name} failed: {failure}"),
                format!("read /var/lib/dkms/{name}/*/build/make.log; fix the cause (headers, compiler) and run `dkms install {name}/<version> -k {kernel}`, or use the prebuilt module when the repository has one"),
            ));
        }
    }
    let load_at_boot = if config.load.is_empty() {
        Vec::new()
    } else {
        load_entries(host, &module)
    };
    if !config.load.is_empty() && load_at_boot.is_empty() {
        problems.push(problem(
            "not-loaded-at-boot",
            None,
            format!("no modules-load.d entry names {module}: it will not be loaded after a reboot"),
            format!(
                "run `kmodfarm-host install` again, or write {module} into {}",
                kmodfarm_model::host::modules_load_path(name)
            ),
        ));
    }
    let index = match session.index() {
        Ok(Some(index)) => format!(
            "reachable, serial {}, {}",
            index.freshness.serial,
            match index.freshness.expires {
                Some(e) => format!("expires in {} s", e.saturating_sub(session.now)),
                None => "does not expire".into(),
            }
        ),
        Ok(None) => {
            problems.push(problem(
                "index-unreachable",
                None,
                format!("{}/index.json is not on the repository", config.repo),
                "check the repository URL in /etc/kmodfarm-host".into(),
            ));
            "missing".into()
        }
        Err(e) => {
            problems.push(problem(
                "index-unreachable",
                None,
                e.to_string(),
                "check the network and the repository; the installed modules keep working".into(),
            ));
            "unusable".into()
        }
    };
    Report {
        module: name.clone(),
        ok: problems.is_empty(),
        kernels: reports,
        load_at_boot,
        index,
        problems,
    }
}

fn image_package(session: &Session<'_>, kernel: &str) -> String {
    kmodfarm_model::KernelRelease::parse(kernel)
        .map(|k| session.distro.image_package(&k))
        .unwrap_or_else(|_| format!("linux-image-{kernel}"))
}

/// A DKMS build of the module for `kernel` that did not end installed:
/// DKMS keeps the last build's make.log, which names its kernel.
fn dkms_failure(session: &Session<'_>, kernel: &str) -> Option<String> {
    let host = session.host;
    let name = &session.config.name;
    let versions = std::fs::read_dir(host.path(&format!("/var/lib/dkms/{name}"))).ok()?;
    for version in versions.filter_map(|e| e.ok()) {
        let version_name = version.file_name().to_string_lossy().into_owned();
        let log = version.path().join("build/make.log");
        if last_build_kernel(&log).as_deref() != Some(kernel)
            || dkms_installed(host, name, &version_name, kernel).unwrap_or(false)
        {
            continue;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let last = kmodfarm_model::text::last_line(&text);
        return Some(format!(
            "{name}/{version_name}: make.log ends with {last:?}"
        ));
    }
    None
}

/// DKMS writes the kernel a build was for into make.log's first line
/// ("DKMS make.log for <m>-<v> for kernel <k> (<arch>)").
fn last_build_kernel(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let first = text.lines().next()?;
    let rest = first.split(" for kernel ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

fn in_initramfs(host: &dyn Host, kernel: &str, module: &str) -> bool {
    let image = format!("/boot/initrd.img-{kernel}");
    let list = if host.has_command("lsinitramfs") && host.path(&image).is_file() {
        host.run(&["lsinitramfs", &image])
    } else {
        host.run(&["lsinitrd", "--kver", kernel])
    };
    list.is_ok_and(|r| {
        r.stdout
            .lines()
            .any(|l| l.contains(&format!("/{module}.ko")))
    })
}
