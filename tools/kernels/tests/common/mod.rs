//! Set-up the discovery tests share: built-in distros, kernel ranges, and
//! what a matrix found, reduced to what the assertions compare.
#![allow(dead_code)]

use kmodfarm_kernels::apt_packages::parse_packages;
use kmodfarm_kernels::matrix::{apt_matrix, rpm_matrix};
use kmodfarm_kernels::rpm_md::parse_primary;
use kmodfarm_kernels::{Discovered, Wanted};
use kmodfarm_model::{Distro, DistroSet, KernelRange};

/// A built-in distro by id (`debian-12`, `rhel-9`).
pub fn distro(id: &str) -> Distro {
    DistroSet::builtin()
        .get(id)
        .unwrap_or_else(|| panic!("no built-in distro {id}"))
        .clone()
}

/// `min..=max` at the precision written (`"6.8"`, `"5.15.100"`); `None`
/// leaves that side open.
pub fn kernel_range(min: Option<&str>, max: Option<&str>) -> KernelRange {
    KernelRange {
        min: min.map(|m| m.parse().unwrap()),
        max: max.map(|m| m.parse().unwrap()),
    }
}

/// Every kernel release.
pub fn any_kernel() -> KernelRange {
    KernelRange::default()
}

/// The releases found, in order, separated by spaces.
pub fn releases(found: &Discovered) -> String {
    let all: Vec<&str> = found
        .entries
        .iter()
        .map(|e| e.kernel_release.as_str())
        .collect();
    all.join(" ")
}

/// (release, reason) of every kernel left out.
pub fn excluded(found: &Discovered) -> Vec<(&str, &str)> {
    found
        .excluded
        .iter()
        .map(|x| (x.kernel_release.as_str(), x.reason.as_str()))
        .collect()
}

/// The matrix `distro` (an apt one) has in a Packages `excerpt`.
pub fn apt_found(
    distro_id: &str,
    excerpt: &str,
    range: &KernelRange,
    system_map: bool,
) -> Discovered {
    let packages = parse_packages(
        excerpt.as_bytes(),
        "linux-",
        &format!("{distro_id} excerpt"),
    )
    .unwrap();
    let wanted = Wanted { range, system_map };
    apt_matrix(&distro(distro_id), &wanted, &packages)
}

/// The matrix `distro` (an rpm-md one) has in a primary.xml `excerpt`.
pub fn rpm_found(
    distro_id: &str,
    excerpt: &str,
    range: &KernelRange,
    system_map: bool,
) -> Discovered {
    let packages = parse_primary(excerpt.as_bytes(), &format!("{distro_id} excerpt")).unwrap();
    assert!(packages.iter().all(|p| p.name.starts_with("kernel")));
    let wanted = Wanted { range, system_map };
    rpm_matrix(&distro(distro_id), &wanted, &packages)
}

/// Entry `index` of `found` in one line, for one assertion on all it says:
/// `<release> <flavour or ->: <header packages>; System.map: <package or none>`.
pub fn entry(found: &Discovered, index: usize) -> String {
    let e = &found.entries[index];
    format!(
        "{} {}: {}; System.map: {}",
        e.kernel_release,
        e.flavour.as_deref().unwrap_or("-"),
        e.packages.join(" "),
        e.system_map_package.as_deref().unwrap_or("none")
    )
}
