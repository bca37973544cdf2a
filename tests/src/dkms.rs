//! What DKMS and kmod say inside a sandbox, as the tests check it: status
//! lines for one kernel, "installed" or not, and modinfo of the module
//! DKMS installed.

use kmodfarm_model::KernelRelease;

use crate::sandbox::Sandbox;

/// The `dkms status -m MODULE` lines about `kernel`, and the whole output
/// (for messages). No lines: DKMS has nothing of `module` for `kernel`.
pub fn dkms_status(
    sandbox: &Sandbox,
    module: &str,
    kernel: &KernelRelease,
) -> (Vec<String>, String) {
    let status = sandbox.run_ok(&["dkms", "status", "-m", module]);
    let lines = status
        .stdout
        .lines()
        .filter(|l| l.contains(&format!(", {kernel},")))
        .map(str::to_string)
        .collect();
    (lines, status.stdout)
}

/// Panics, saying `context` and all DKMS said, unless DKMS's only line
/// about `kernel` is that `id` (`name/version`) is installed for it.
#[track_caller]
pub fn assert_dkms_installed(sandbox: &Sandbox, id: &str, kernel: &KernelRelease, context: &str) {
    let module = id.split('/').next().unwrap_or(id);
    let (lines, status) = dkms_status(sandbox, module, kernel);
    assert_eq!(
        lines,
        [format!("{id}, {kernel}, x86_64: installed")],
        "DKMS should have {id} installed for {kernel}; {context}\ndkms status:\n{status}"
    );
}

/// Panics, saying `context`, when DKMS has `module` installed for
/// `kernel` (it may still have it added or built).
#[track_caller]
pub fn assert_dkms_not_installed(
    sandbox: &Sandbox,
    module: &str,
    kernel: &KernelRelease,
    context: &str,
) {
    let (lines, status) = dkms_status(sandbox, module, kernel);
    assert!(
        !lines.iter().any(|l| l.ends_with("installed")),
        "DKMS has {module} installed for {kernel}; {context}\ndkms status:\n{status}"
    );
}

/// Panics, saying `context`, when DKMS has anything of `module` for
/// `kernel` (built or installed).
#[track_caller]
pub fn assert_dkms_has_nothing_for(
    sandbox: &Sandbox,
    module: &str,
    kernel: &KernelRelease,
    context: &str,
) {
    let (lines, _) = dkms_status(sandbox, module, kernel);
    assert!(
        lines.is_empty(),
        "DKMS built {module} for {kernel}: {lines:?}; {context}"
    );
}

/// `modinfo -k KERNEL -F FIELD MODULE` in the sandbox, trimmed: modinfo
/// finds the module through the kernel's modules.dep, so an answer also
/// shows depmod registered it.
pub fn sandbox_modinfo(
    sandbox: &Sandbox,
    kernel: &KernelRelease,
    module: &str,
    field: &str,
) -> String {
    let out = sandbox.run_ok(&["modinfo", "-k", kernel.as_str(), "-F", field, module]);
    out.stdout.trim().to_string()
}

/// A prebuilt package for `kernel` was installed: what its scripts `said`
/// names the DKMS build of `id` they removed, and DKMS has no install of
/// the module for that kernel left.
#[track_caller]
pub fn assert_taken_from_dkms(sandbox: &Sandbox, said: &str, id: &str, kernel: &KernelRelease) {
    let (module, version) = id.split_once('/').expect("a DKMS id: name/version");
    let removing = format!("removing the DKMS build of {version} for {kernel}");
    assert!(said.contains(&removing), "no {removing:?} in:\n{said}");
    assert_dkms_not_installed(
        sandbox,
        module,
        kernel,
        &format!("DKMS still has it:\n{said}"),
    );
}

/// A prebuilt package for `kernel` was removed: what its scripts `said`
/// hands the kernel back to DKMS, and DKMS has `id` installed for it again.
#[track_caller]
pub fn assert_handed_back_to_dkms(sandbox: &Sandbox, said: &str, id: &str, kernel: &KernelRelease) {
    let handing = format!("handing kernel {kernel} back to DKMS");
    assert!(said.contains(&handing), "no {handing:?} in:\n{said}");
    assert_dkms_installed(sandbox, id, kernel, &format!("not taken back:\n{said}"));
}
