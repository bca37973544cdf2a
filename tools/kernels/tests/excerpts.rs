//! The matrix of each distro family, from index excerpts these tests write
//! themselves (the Ubuntu, RHEL and SUSE archives are not reachable here, so
//! these are the only checks of those parsers: excerpts, not live data).

mod common;

use common::{any_kernel, apt_found, excluded, kernel_range, releases, rpm_found};

/// Written by this test: stanzas shaped like Ubuntu 24.04 (noble)'s main
/// and updates indexes, trimmed to the fields that matter.
const UBUNTU_NOBLE_EXCERPT: &str = "\
Package: linux-headers-6.8.0-62
Architecture: all
Version: 6.8.0-62.65
Depends: coreutils
Filename: pool/main/l/linux/linux-headers-6.8.0-62_6.8.0-62.65_all.deb
Size: 14000000
SHA256: 1111111111111111111111111111111111111111111111111111111111111111

Package: linux-headers-6.8.0-62-generic
Architecture: amd64
Version: 6.8.0-62.65
Depends: linux-headers-6.8.0-62, libc6 (>= 2.34), libelf1t64 (>= 0.144), libssl3t64 (>= 3.0.0), zlib1g (>= 1:1.2.3.3)
Filename: pool/main/l/linux/linux-headers-6.8.0-62-generic_6.8.0-62.65_amd64.deb
Size: 3900000
SHA256: 2222222222222222222222222222222222222222222222222222222222222222

Package: linux-modules-6.8.0-62-generic
Architecture: amd64
Version: 6.8.0-62.65
Filename: pool/main/l/linux/linux-modules-6.8.0-62-generic_6.8.0-62.65_amd64.deb
Size: 40000000
SHA256: 3333333333333333333333333333333333333333333333333333333333333333

Package: linux-lowlatency-headers-6.8.0-62
Architecture: all
Version: 6.8.0-62.62.1
Filename: pool/main/l/linux-lowlatency/linux-lowlatency-headers-6.8.0-62_6.8.0-62.62.1_all.deb
Size: 14000000
SHA256: 4444444444444444444444444444444444444444444444444444444444444444

Package: linux-headers-6.8.0-62-lowlatency
Architecture: amd64
Version: 6.8.0-62.62.1
Depends: linux-lowlatency-headers-6.8.0-62, libc6 (>= 2.34)
Filename: pool/main/l/linux-lowlatency/linux-headers-6.8.0-62-lowlatency_6.8.0-62.62.1_amd64.deb
Size: 3900000
SHA256: 5555555555555555555555555555555555555555555555555555555555555555

Package: linux-headers-6.8.0-31-generic
Architecture: amd64
Version: 6.8.0-31.31
Depends: linux-headers-6.8.0-31, libc6 (>= 2.34)
Filename: pool/main/l/linux/linux-headers-6.8.0-31-generic_6.8.0-31.31_amd64.deb
Size: 3900000
SHA256: 6666666666666666666666666666666666666666666666666666666666666666

Package: linux-headers-6.8.0-31
Architecture: all
Version: 6.8.0-31.31
Filename: pool/main/l/linux/linux-headers-6.8.0-31_6.8.0-31.31_all.deb
Size: 14000000
SHA256: 7777777777777777777777777777777777777777777777777777777777777777

Package: linux-headers-6.14.0-24-generic
Architecture: amd64
Version: 6.14.0-24.24~24.04.1
Depends: linux-hwe-6.14-headers-6.14.0-24, libc6 (>= 2.34)
Filename: pool/main/l/linux-hwe-6.14/linux-headers-6.14.0-24-generic_6.14.0-24.24~24.04.1_amd64.deb
Size: 3900000
SHA256: 8888888888888888888888888888888888888888888888888888888888888888

Package: linux-hwe-6.14-headers-6.14.0-24
Architecture: all
Version: 6.14.0-24.24~24.04.1
Filename: pool/main/l/linux-hwe-6.14/linux-hwe-6.14-headers-6.14.0-24_6.14.0-24.24~24.04.1_all.deb
Size: 14000000
SHA256: 9999999999999999999999999999999999999999999999999999999999999999

Package: linux-headers-6.8.0-63-generic
Architecture: amd64
Version: 6.8.0-63.66
Depends: linux-headers-6.8.0-63, libc6 (>= 2.34)
Filename: pool/main/l/linux/linux-headers-6.8.0-63-generic_6.8.0-63.66_amd64.deb
Size: 3900000
SHA256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

Package: linux-headers-generic
Architecture: amd64
Version: 6.8.0-62.65
Depends: linux-headers-6.8.0-62-generic
Filename: pool/main/l/linux-meta/linux-headers-generic_6.8.0-62.65_amd64.deb
Size: 1000
SHA256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
";

#[test]
fn ubuntu_noble_excerpt() {
    let range = kernel_range(Some("6.8"), Some("6.8"));
    let found = apt_found("ubuntu-24.04", UBUNTU_NOBLE_EXCERPT, &range, true);
    // The meta package and the flavourless shared headers are not kernels;
    // 6.8.0-63 lacks its shared headers, 6.14 is outside 6.8..6.8.
    assert_eq!(
        releases(&found),
        [
            "6.8.0-31-generic",
            "6.8.0-62-generic",
            "6.8.0-62-lowlatency"
        ]
    );
    let generic = &found.entries[1];
    assert_eq!(generic.flavour.as_deref(), Some("generic"));
    assert_eq!(
        generic.packages,
        ["linux-headers-6.8.0-62-generic", "linux-headers-6.8.0-62"]
    );
    assert_eq!(
        generic.system_map_package.as_deref(),
        Some("linux-modules-6.8.0-62-generic")
    );
    // No linux-modules for 6.8.0-31 in the excerpt: nothing claims one.
    assert_eq!(found.entries[0].system_map_package, None);
    assert_eq!(
        found.entries[2].packages,
        [
            "linux-headers-6.8.0-62-lowlatency",
            "linux-lowlatency-headers-6.8.0-62"
        ]
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

/// Written by this test: bookworm main and bookworm-security stanzas,
/// including a package present in both suites at two versions.
const DEBIAN_BOOKWORM_EXCERPT: &str = "\
Package: linux-headers-6.1.0-47-common
Version: 6.1.170-3
Architecture: all

Package: linux-headers-6.1.0-47-amd64
Version: 6.1.170-3
Architecture: amd64
Depends: linux-headers-6.1.0-47-common (= 6.1.170-3), linux-kbuild-6.1 (>= 6.1.170-3), linux-compiler-gcc-12-x86

Package: linux-headers-6.1.0-47-cloud-amd64
Version: 6.1.170-3
Architecture: amd64
Depends: linux-headers-6.1.0-47-common (= 6.1.170-3), linux-kbuild-6.1 (>= 6.1.170-3), linux-compiler-gcc-12-x86

Package: linux-kbuild-6.1
Version: 6.1.170-2
Architecture: amd64

Package: linux-compiler-gcc-12-x86
Version: 6.1.170-3
Architecture: amd64

Package: linux-headers-amd64
Version: 6.1.170-3
Architecture: amd64
Depends: linux-headers-6.1.0-47-amd64 (= 6.1.170-3)

Package: linux-image-6.1.0-47-amd64-dbg
Version: 6.1.170-3
Architecture: amd64

Package: linux-headers-4.19.0-27-amd64
Version: 4.19.316-1
Architecture: amd64
Depends: linux-headers-4.19.0-27-common (= 4.19.316-1), linux-kbuild-4.19 (>= 4.19.316-1), linux-compiler-gcc-8-x86

Package: linux-kbuild-6.1
Version: 6.1.170-3
Architecture: amd64

Package: linux-headers-6.12.117+deb12-common-rt
Version: 6.12.117-1~deb12u1
Architecture: all

Package: linux-headers-6.12.117+deb12-rt-amd64
Version: 6.12.117-1~deb12u1
Architecture: amd64
Depends: linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common-rt (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-rt-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-rt-amd64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12

Package: linux-kbuild-6.12.117+deb12
Version: 6.12.117-1~deb12u1
Architecture: amd64
";

#[test]
fn debian_bookworm_excerpt() {
    let range = kernel_range(Some("5.15"), Some("6.14"));
    let found = apt_found("debian-12", DEBIAN_BOOKWORM_EXCERPT, &range, true);
    assert_eq!(
        releases(&found),
        [
            "6.1.0-47-amd64",
            "6.1.0-47-cloud-amd64",
            "6.12.117+deb12-rt-amd64"
        ]
    );
    assert_eq!(
        found.entries[0].packages,
        [
            "linux-headers-6.1.0-47-amd64",
            "linux-headers-6.1.0-47-common",
            "linux-kbuild-6.1",
            "linux-compiler-gcc-12-x86"
        ]
    );
    assert_eq!(
        found.entries[0].system_map_package.as_deref(),
        Some("linux-image-6.1.0-47-amd64-dbg")
    );
    // The image alternatives and gcc-12 are not header packages.
    assert_eq!(
        found.entries[2].packages,
        [
            "linux-headers-6.12.117+deb12-rt-amd64",
            "linux-headers-6.12.117+deb12-common-rt",
            "linux-kbuild-6.12.117+deb12"
        ]
    );
    assert_eq!(found.entries[2].flavour.as_deref(), Some("rt-amd64"));
    assert_eq!(found.excluded.len(), 1);
    assert_eq!(found.excluded[0].kernel_release.as_str(), "4.19.0-27-amd64");
}

/// Written by this test: a Rocky Linux 9 BaseOS/AppStream primary.xml
/// reduced to kernel packages and one other.
const ROCKY9_PRIMARY_EXCERPT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="7">
<package type="rpm">
  <name>kernel-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="5.14.0" rel="503.40.1.el9_5"/>
  <checksum type="sha256" pkgid="YES">c0ffee</checksum>
  <summary>Development package for building kernel modules to match the kernel</summary>
  <location href="Packages/k/kernel-devel-5.14.0-503.40.1.el9_5.x86_64.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="kernel-devel-uname-r" flags="EQ" epoch="0" ver="5.14.0-503.40.1.el9_5.x86_64"/></rpm:provides>
    <rpm:requires><rpm:entry name="perl-interpreter"/><rpm:entry name="findutils"/><rpm:entry name="elfutils-libelf-devel"/></rpm:requires>
  </format>
</package>
<package type="rpm">
  <name>kernel-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="5.14.0" rel="427.13.1.el9_4"/>
  <location href="Packages/k/kernel-devel-5.14.0-427.13.1.el9_4.x86_64.rpm"/>
</package>
<package type="rpm">
  <name>kernel-devel</name><arch>aarch64</arch>
  <version epoch="0" ver="5.14.0" rel="503.40.1.el9_5"/>
  <location href="Packages/k/kernel-devel-5.14.0-503.40.1.el9_5.aarch64.rpm"/>
</package>
<package type="rpm">
  <name>kernel-core</name><arch>x86_64</arch>
  <version epoch="0" ver="5.14.0" rel="503.40.1.el9_5"/>
  <location href="Packages/k/kernel-core-5.14.0-503.40.1.el9_5.x86_64.rpm"/>
</package>
<package type="rpm">
  <name>kernel-devel-matched</name><arch>x86_64</arch>
  <version epoch="0" ver="5.14.0" rel="503.40.1.el9_5"/>
</package>
<package type="rpm">
  <name>kernel-rt-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="5.14.0" rel="503.40.1.rt14.331.el9_5"/>
</package>
<package type="rpm">
  <name>bash</name><arch>x86_64</arch>
  <version epoch="0" ver="5.1.8" rel="9.el9"/>
</package>
</metadata>"#;

#[test]
fn rocky9_primary_excerpt() {
    let range = kernel_range(Some("5.14"), Some("6.14"));
    let found = rpm_found("rhel-9", ROCKY9_PRIMARY_EXCERPT, &range, true);
    assert_eq!(
        releases(&found),
        [
            "5.14.0-427.13.1.el9_4.x86_64",
            "5.14.0-503.40.1.el9_5.x86_64"
        ]
    );
    let newest = &found.entries[1];
    assert_eq!(newest.flavour, None);
    assert_eq!(
        newest.packages,
        ["kernel-devel-5.14.0-503.40.1.el9_5.x86_64"]
    );
    assert_eq!(
        newest.system_map_package.as_deref(),
        Some("kernel-core-5.14.0-503.40.1.el9_5.x86_64")
    );
    assert_eq!(
        found.entries[0].system_map_package, None,
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

/// Written by this test: an openSUSE Leap 15.6 / SLES 15 SP6 primary.xml
/// reduced to kernel packages.
const SLES15_PRIMARY_EXCERPT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="6">
<package type="rpm">
  <name>kernel-default-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
  <location href="x86_64/kernel-default-devel-6.4.0-150600.23.53.1.x86_64.rpm"/>
  <format><rpm:requires>
    <rpm:entry name="kernel-devel" flags="EQ" epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
    <rpm:entry name="pesign-obs-integration"/>
  </rpm:requires></format>
</package>
<package type="rpm">
  <name>kernel-devel</name><arch>noarch</arch>
  <version epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
  <location href="noarch/kernel-devel-6.4.0-150600.23.53.1.noarch.rpm"/>
</package>
<package type="rpm">
  <name>kernel-default</name><arch>x86_64</arch>
  <version epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
  <location href="x86_64/kernel-default-6.4.0-150600.23.53.1.x86_64.rpm"/>
</package>
<package type="rpm">
  <name>kernel-default-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="6.4.0" rel="150600.23.47.2"/>
  <location href="x86_64/kernel-default-devel-6.4.0-150600.23.47.2.x86_64.rpm"/>
  <format><rpm:requires>
    <rpm:entry name="kernel-devel" flags="EQ" epoch="0" ver="6.4.0" rel="150600.23.47.2"/>
  </rpm:requires></format>
</package>
<package type="rpm">
  <name>kernel-azure-devel</name><arch>x86_64</arch>
  <version epoch="0" ver="6.4.0" rel="150600.8.40.1"/>
  <location href="x86_64/kernel-azure-devel-6.4.0-150600.8.40.1.x86_64.rpm"/>
</package>
<package type="rpm">
  <name>kernel-source</name><arch>noarch</arch>
  <version epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
</package>
</metadata>"#;

#[test]
fn sles15_primary_excerpt() {
    let range = kernel_range(Some("5.15"), Some("6.14"));
    let found = rpm_found("sles-15", SLES15_PRIMARY_EXCERPT, &range, true);
    // uname -r drops the rebuild counter SUSE appends to the RPM release.
    assert_eq!(
        releases(&found),
        [
            "6.4.0-150600.8.40-azure",
            "6.4.0-150600.23.47-default",
            "6.4.0-150600.23.53-default"
        ]
    );
    let newest = &found.entries[2];
    assert_eq!(newest.flavour.as_deref(), Some("default"));
    assert_eq!(
        newest.packages,
        [
            "kernel-default-devel-6.4.0-150600.23.53.1.x86_64",
            "kernel-devel-6.4.0-150600.23.53.1.noarch"
        ]
    );
    assert_eq!(
        newest.system_map_package.as_deref(),
        Some("kernel-default-6.4.0-150600.23.53.1.x86_64")
    );
    // 23.47's pinned kernel-devel is not in the excerpt: only its own package.
    assert_eq!(
        found.entries[1].packages,
        ["kernel-default-devel-6.4.0-150600.23.47.2.x86_64"]
    );
}
