//! The matrix of each distro family, from index excerpts written for these
//! tests (tests/data/, see its README; the Ubuntu, RHEL and SUSE archives
//! are not reachable here, so these are the only checks of those parsers:
//! excerpts, not live data).

mod common;

use common::{any_kernel, apt_found, entry, excluded, kernel_range, releases, rpm_found};

/// Written for this test: stanzas shaped like Ubuntu 24.04 (noble)'s main
/// and updates indexes, trimmed to the fields that matter.
const UBUNTU_NOBLE_EXCERPT: &str = include_str!("data/ubuntu-24.04-noble.Packages");

/// Written for this test: bookworm main and bookworm-security stanzas,
/// including a package present in both suites at two versions.
const DEBIAN_BOOKWORM_EXCERPT: &str = include_str!("data/debian-12-bookworm.Packages");

/// Written for this test: a Rocky Linux 9 BaseOS/AppStream primary.xml
/// reduced to kernel packages and one other.
const ROCKY9_PRIMARY_EXCERPT: &str = include_str!("data/rocky-9-primary.xml");

/// Written for this test: an openSUSE Leap 15.6 / SLES 15 SP6 primary.xml
/// reduced to kernel packages.
const SLES15_PRIMARY_EXCERPT: &str = include_str!("data/sles-15-sp6-primary.xml");

#[test]
fn ubuntu_noble_excerpt() {
    let range = kernel_range(Some("6.8"), Some("6.8"));
    let found = apt_found("ubuntu-24.04", UBUNTU_NOBLE_EXCERPT, &range, true);
    // The meta package and the flavourless shared headers are not kernels;
    // 6.8.0-63 lacks its shared headers, 6.14 is outside 6.8..6.8.
    assert_eq!(
        releases(&found),
        "6.8.0-31-generic 6.8.0-62-generic 6.8.0-62-lowlatency"
    );
    assert_eq!(
        entry(&found, 1),
        "6.8.0-62-generic generic: linux-headers-6.8.0-62-generic linux-headers-6.8.0-62; \
         System.map: linux-modules-6.8.0-62-generic"
    );
    // No linux-modules for 6.8.0-31 in the excerpt: nothing claims one.
    assert_eq!(
        entry(&found, 0),
        "6.8.0-31-generic generic: linux-headers-6.8.0-31-generic linux-headers-6.8.0-31; \
         System.map: none"
    );
    assert_eq!(
        entry(&found, 2),
        "6.8.0-62-lowlatency lowlatency: linux-headers-6.8.0-62-lowlatency \
         linux-lowlatency-headers-6.8.0-62; System.map: none"
    );

    let reasons = excluded(&found);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "6.8.0-63-generic");
    assert!(
        reasons[0]
            .1
            .contains("depends on linux-headers-6.8.0-63, which none of the suites"),
        "{}",
        reasons[0].1
    );
    assert_eq!(reasons[1].0, "6.14.0-24-generic");
    assert!(reasons[1]
        .1
        .contains("outside the supported range 6.8 to 6.8"));

    // In a wider range the HWE kernel comes with its hwe shared headers.
    let found = apt_found("ubuntu-24.04", UBUNTU_NOBLE_EXCERPT, &any_kernel(), false);
    let hwe = found.entries.last().unwrap();
    assert_eq!(hwe.kernel_release.as_str(), "6.14.0-24-generic");
    assert_eq!(hwe.packages[1], "linux-hwe-6.14-headers-6.14.0-24");
    assert_eq!(hwe.system_map_package, None, "not asked for");
}

#[test]
fn debian_bookworm_excerpt() {
    let range = kernel_range(Some("5.15"), Some("6.14"));
    let found = apt_found("debian-12", DEBIAN_BOOKWORM_EXCERPT, &range, true);
    assert_eq!(
        releases(&found),
        "6.1.0-47-amd64 6.1.0-47-cloud-amd64 6.12.117+deb12-rt-amd64"
    );
    assert_eq!(
        entry(&found, 0),
        "6.1.0-47-amd64 amd64: linux-headers-6.1.0-47-amd64 linux-headers-6.1.0-47-common \
         linux-kbuild-6.1 linux-compiler-gcc-12-x86; System.map: linux-image-6.1.0-47-amd64-dbg"
    );
    // The image alternatives and gcc-12 are not header packages.
    assert_eq!(
        entry(&found, 2),
        "6.12.117+deb12-rt-amd64 rt-amd64: linux-headers-6.12.117+deb12-rt-amd64 \
         linux-headers-6.12.117+deb12-common-rt linux-kbuild-6.12.117+deb12; System.map: none"
    );
    assert_eq!(found.excluded.len(), 1);
    assert_eq!(found.excluded[0].kernel_release.as_str(), "4.19.0-27-amd64");
}

#[test]
fn rocky9_primary_excerpt() {
    let range = kernel_range(Some("5.14"), Some("6.14"));
    let found = rpm_found("rhel-9", ROCKY9_PRIMARY_EXCERPT, &range, true);
    assert_eq!(
        releases(&found),
        "5.14.0-427.13.1.el9_4.x86_64 5.14.0-503.40.1.el9_5.x86_64"
    );
    assert_eq!(
        entry(&found, 1),
        "5.14.0-503.40.1.el9_5.x86_64 -: kernel-devel-5.14.0-503.40.1.el9_5.x86_64; \
         System.map: kernel-core-5.14.0-503.40.1.el9_5.x86_64"
    );
    assert!(
        entry(&found, 0).ends_with("System.map: none"),
        "no kernel-core 427 in the excerpt"
    );

    // 5.14 is below a 5.15 minimum: both are excluded with the reason.
    let range = kernel_range(Some("5.15"), Some("6.14"));
    let found = rpm_found("rhel-9", ROCKY9_PRIMARY_EXCERPT, &range, false);
    assert!(found.entries.is_empty());
    assert_eq!(found.excluded.len(), 2);
    assert!(found.excluded[0]
        .reason
        .contains("outside the supported range 5.15 to 6.14"));
}

#[test]
fn sles15_primary_excerpt() {
    let range = kernel_range(Some("5.15"), Some("6.14"));
    let found = rpm_found("sles-15", SLES15_PRIMARY_EXCERPT, &range, true);
    // uname -r drops the rebuild counter SUSE appends to the RPM release.
    assert_eq!(
        releases(&found),
        "6.4.0-150600.8.40-azure 6.4.0-150600.23.47-default 6.4.0-150600.23.53-default"
    );
    assert_eq!(
        entry(&found, 2),
        "6.4.0-150600.23.53-default default: kernel-default-devel-6.4.0-150600.23.53.1.x86_64 \
         kernel-devel-6.4.0-150600.23.53.1.noarch; \
         System.map: kernel-default-6.4.0-150600.23.53.1.x86_64"
    );
    // 23.47's pinned kernel-devel is not in the excerpt: only its own package.
    assert_eq!(
        entry(&found, 1),
        "6.4.0-150600.23.47-default default: kernel-default-devel-6.4.0-150600.23.47.2.x86_64; \
         System.map: none"
    );
}
