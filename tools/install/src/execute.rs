//! Carrying out a [`Plan`] through a [`Host`] and a [`Fetcher`]. A step that
//! fails stops the plan and undoes the files placed so far, so a failed
//! install leaves no module behind.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::host::Host;
use crate::plan::{Plan, Step};
use crate::state::{remove_if_present, write_atomic, InstallRecord, State};
use crate::verify::{check_download, sha256};

/// The shared System.map rule, the same file the package scripts include
/// (templates/_system_map.sh.tera): a placeholder never counts as real.
const SYSTEM_MAP_RULE: &str = include_str!("../../../templates/_system_map.sh.tera");

/// What happened, one line per step, for the terminal or the journal.
pub type Report = Vec<String>;

pub fn execute(
    plan: &Plan,
    host: &dyn Host,
    fetcher: &dyn Fetcher,
    state: &State,
) -> Result<Report> {
    let mut report = Report::new();
    let mut placed: Vec<std::path::PathBuf> = Vec::new();
    let mut downloaded: Vec<std::path::PathBuf> = Vec::new();
    let result = (|| {
        for step in &plan.steps {
            run_step(
                step,
                host,
                fetcher,
                state,
                &mut report,
                &mut placed,
                &mut downloaded,
            )?;
        }
        Ok(())
    })();
    for file in &downloaded {
        let _ = remove_if_present(file);
        if let Some(dir) = file.parent() {
            let _ = std::fs::remove_dir(dir); // only when empty
        }
    }
    if let Err(e) = result {
        for file in placed.iter().rev() {
            if remove_if_present(file).is_ok() {
                report.push(format!("removed {} again", file.display()));
            }
        }
        if !placed.is_empty() {
            let _ = host.run(&["depmod", "-a", &plan.kernel]);
            let _ = state.remove_record(&plan.kernel);
        }
        return Err(e);
    }
    Ok(report)
}

fn run_step(
    step: &Step,
    host: &dyn Host,
    fetcher: &dyn Fetcher,
    state: &State,
    report: &mut Report,
    placed: &mut Vec<std::path::PathBuf>,
    downloaded: &mut Vec<std::path::PathBuf>,
) -> Result<()> {
    match step {
        Step::Download {
            url,
            sha256: expected,
            size,
            to,
        } => {
            let data = fetcher
                .fetch(url)?
                .ok_or_else(|| Error::Missing { url: url.clone() })?;
            check_download(url, &data, size.unwrap_or(0), expected)?;
            let path = host.path(to);
            write_atomic(&path, &data)?;
            downloaded.push(path);
            report.push(format!(
                "downloaded {url} ({} bytes, sha256 checked)",
                data.len()
            ));
        }
        Step::Verify {
            path,
            sha256: expected,
        } => {
            let file = host.path(path);
            let data = std::fs::read(&file).map_err(Error::read(&file))?;
            let got = sha256(&data);
            if got != *expected {
                return Err(Error::Checksum {
                    url: path.clone(),
                    expected: expected.clone(),
                    got,
                });
            }
        }
        Step::RefreshPackages { argv } => {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            host.run_ok(&argv)?;
        }
        Step::InstallPackages { argv, why } => {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            host.run_ok(&argv).map_err(|e| {
                Error::Refused(format!(
                    "cannot install {why}; the package manager installed nothing: {e}"
                ))
            })?;
            report.push(format!("installed {why}"));
        }
        Step::CheckImage { kernel, system_map } => check_image(host, kernel, *system_map)?,
        Step::CheckHeaders { kernel } => check_headers(host, kernel)?,
        Step::DkmsInstall {
            module,
            version,
            kernel,
        } => {
            if !dkms_installed(host, module, version, kernel)? {
                let spec = format!("{module}/{version}");
                let ran = host.run(&["dkms", "install", &spec, "-k", kernel])?;
                if !dkms_installed(host, module, version, kernel)? {
                    let log =
                        host.path(&format!("/var/lib/dkms/{module}/{version}/build/make.log"));
                    let tail = std::fs::read_to_string(&log)
                        .map(|t| {
                            t.lines()
                                .rev()
                                .take(15)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default();
                    return Err(Error::Refused(format!(
                        "DKMS did not build {spec} for {kernel}: {}{}{}",
                        ran.stderr.trim(),
                        if tail.is_empty() {
                            ""
                        } else {
                            "\nmake.log ends:\n"
                        },
                        tail
                    )));
                }
            }
            report.push(format!(
                "DKMS built and installed {module}/{version} for {kernel}"
            ));
        }
        Step::Place { from, to } => {
            let source = host.path(from);
            let dest = host.path(to);
            let data = std::fs::read(&source).map_err(Error::read(&source))?;
            write_atomic(&dest, &data)?;
            placed.push(dest);
            report.push(format!("placed {to}"));
        }
        Step::Depmod { kernel } => {
            report.push(crate::depmod::reindex(host, kernel, placed)?.describe(kernel));
        }
        Step::BootEntry { path, contents } => {
            write_atomic(&host.path(path), contents.as_bytes())?;
            report.push(format!("{path}: loads at boot"));
        }
        Step::Initramfs { argv, config } => {
            if let Some((path, contents)) = config {
                write_atomic(&host.path(path), contents.as_bytes())?;
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            host.run_ok(&argv)?;
            report.push(format!("initramfs updated ({})", argv.join(" ")));
        }
        Step::Load { module } => {
            host.run_ok(&["modprobe", module])?;
            report.push(format!("loaded {module}"));
        }
        Step::OptInDkms => {
            write_atomic(
                &state.dkms_opt_in_path(),
                b"DKMS builds allowed for kernels without a prebuilt module\n",
            )?;
        }
        Step::Record {
            kernel,
            route,
            version,
            files,
            packages,
            sha256,
        } => state.save_record(&InstallRecord {
            kernel: kernel.clone(),
            route: *route,
            version: version.clone(),
            files: files.clone(),
            packages: packages.clone(),
            sha256: sha256.clone(),
        })?,
    }
    Ok(())
}

/// Whether the kernel image is installed (vmlinuz in /boot or, on RPM
/// distributions, in /lib/modules/<k>/).
pub fn image_installed(host: &dyn Host, kernel: &str) -> bool {
    host.path(&format!("/boot/vmlinuz-{kernel}")).is_file()
        || host
            .path(&format!("/lib/modules/{kernel}/vmlinuz"))
            .is_file()
}

/// Whether the kernel's headers are installed.
pub fn headers_installed(host: &dyn Host, kernel: &str) -> bool {
    host.path(&format!("/lib/modules/{kernel}/build/Makefile"))
        .is_file()
}

/// Kernel `kernel`'s real System.map by the package scripts' rule (the
/// same shell, so both look in the same four places and refuse the same
/// placeholders): `Ok(path)`, or `Err` with what is there instead and the
/// command that installs the real map on this distribution.
pub fn real_system_map(
    host: &dyn Host,
    kernel: &str,
) -> Result<std::result::Result<String, String>> {
    let script = format!(
        "{SYSTEM_MAP_RULE}\n\
         system_map_path \"$1\" && exit 0\n\
         printf '%s; install it: %s\\n' \"$(system_map_problem \"$1\")\" \"$(system_map_install_command \"$1\")\"\n\
         exit 1\n"
    );
    let ran = host.run(&["sh", "-c", &script, "sh", kernel])?;
    let said = ran.stdout.trim().to_string();
    if ran.success && !said.is_empty() {
        Ok(Ok(said))
    } else if !ran.success && !said.is_empty() {
        Ok(Err(said))
    } else {
        Err(Error::Command {
            command: format!("the System.map rule for {kernel}"),
            status: ran.status,
            stderr: ran.stderr,
        })
    }
}

fn check_image(host: &dyn Host, kernel: &str, system_map: bool) -> Result<()> {
    if !image_installed(host, kernel) {
        return Err(Error::Refused(format!(
            "kernel {kernel}: its image is not installed (no /boot/vmlinuz-{kernel}); a module built from headers installed before the image can crash the host: install the kernel image first, then rerun"
        )));
    }
    if system_map {
        if let Err(why) = real_system_map(host, kernel)? {
            return Err(Error::Refused(format!(
                "kernel {kernel}: this module needs the kernel's real System.map to build, and {why}; then rerun"
            )));
        }
    }
    Ok(())
}

fn check_headers(host: &dyn Host, kernel: &str) -> Result<()> {
    if !headers_installed(host, kernel) {
        return Err(Error::Refused(format!(
            "kernel {kernel}: no headers at /lib/modules/{kernel}/build after installing them"
        )));
    }
    if let Some(release) = headers_release(host, kernel) {
        if release != kernel {
            return Err(Error::Refused(format!(
                "kernel {kernel}: the headers at /lib/modules/{kernel}/build are for {release}, not this kernel"
            )));
        }
    }
    Ok(())
}

/// The kernel release the headers build for: `UTS_RELEASE` in
/// include/generated/utsrelease.h, which a module's vermagic carries.
/// Not include/config/kernel.release: Debian's 6.1 headers write the
/// upstream version there (`6.1.192` for 6.1.0-57-amd64).
fn headers_release(host: &dyn Host, kernel: &str) -> Option<String> {
    let build = format!("/lib/modules/{kernel}/build/include");
    let uts = std::fs::read_to_string(host.path(&format!("{build}/generated/utsrelease.h")));
    if let Ok(text) = uts {
        let release = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("#define UTS_RELEASE"))
            .map(|v| v.trim().trim_matches('"').to_string());
        if release.is_some() {
            return release;
        }
    }
    std::fs::read_to_string(host.path(&format!("{build}/config/kernel.release")))
        .ok()
        .map(|t| t.trim().to_string())
}

/// `dkms status` says the module is installed for the kernel.
pub fn dkms_installed(host: &dyn Host, module: &str, version: &str, kernel: &str) -> Result<bool> {
    if !host.has_command("dkms") {
        return Ok(false);
    }
    let spec = format!("{module}/{version}");
    let ran = host.run(&["dkms", "status", &spec, "-k", kernel])?;
    Ok(ran
        .stdout
        .lines()
        .any(|l| l.contains(kernel) && l.trim_end().ends_with("installed")))
}

/// The host path of module `module`'s file for `kernel`, per modinfo.
pub fn module_file(host: &dyn Host, kernel: &str, module: &str) -> Option<String> {
    if !host.path(&format!("/lib/modules/{kernel}")).is_dir() {
        return None;
    }
    let ran = host.run(&["modinfo", "-k", kernel, "-n", module]).ok()?;
    let file = ran.stdout.trim().to_string();
    (ran.success && !file.is_empty() && Path::new(&file).is_absolute()).then_some(file)
}
