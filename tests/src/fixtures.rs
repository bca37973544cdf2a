//! Roots shared by several test files, made once per machine (cached) and
//! once per test process (memoised), sandboxes over them, and the
//! System.map stand-in.

use std::sync::OnceLock;

use kmodfarm_model::KernelRelease;

use crate::apt_index::AptIndex;
use crate::example::Rendered;
use crate::root::{DebianRoot, PreparedRoot};
use crate::sandbox::Sandbox;

/// A Debian 12 root with DKMS, a compiler and the headers of two kernels,
/// one per Debian 12 kernel line.
#[derive(Debug)]
pub struct Bookworm {
    pub root: PreparedRoot,
    /// The newest 6.1 kernel the archive has (class_create(owner, name)).
    pub k61: KernelRelease,
    /// The newest 6.12 kernel the archive has (class_create(name)).
    pub k612: KernelRelease,
}

/// Packages the DKMS tests need besides the kernel headers.
pub const DKMS_PACKAGES: &[&str] = &["dkms", "build-essential", "kmod"];

/// The shared Debian 12 DKMS root. Panics, saying why, when it cannot be
/// made (no mmdebstrap, no network to the archive, not root...): the tests
/// that need it must fail rather than skip.
pub fn bookworm() -> &'static Bookworm {
    static ROOT: OnceLock<Bookworm> = OnceLock::new();
    ROOT.get_or_init(|| {
        let make = || -> crate::Result<Bookworm> {
            let index = AptIndex::updated("bookworm")?;
            let k61 = index.newest_headers("6.1")?;
            let k612 = index.newest_headers("6.12")?;
            let root = DebianRoot::new("bookworm")
                .packages(DKMS_PACKAGES.iter().copied())
                .packages([
                    format!("linux-headers-{k61}"),
                    format!("linux-headers-{k612}"),
                ])
                .ensure()?;
            Ok(Bookworm { root, k61, k612 })
        };
        make().unwrap_or_else(|e| panic!("cannot make the Debian 12 test root: {e}"))
    })
}

/// The address [`stand_in_system_map`] gives `linux_banner` by default.
pub const STAND_IN_BANNER: u64 = 0xffff_ffff_82a0_01c0;

/// A stand-in for a kernel's real System.map, made by the tests (Debian's
/// real one ships only in the 1 GB linux-image-*-dbg package): thousands of
/// text symbols plus `linux_banner` at `banner`, in System.map's format.
pub fn stand_in_system_map(banner: u64) -> String {
    let mut map = String::new();
    for i in 0..5000u64 {
        map += &format!(
            "{:016x} T kmodfarm_stand_in_text_{i}\n",
            0xffff_ffff_8100_0000u64 + i * 0x40
        );
    }
    map += &format!("{banner:016x} R linux_banner\n");
    map
}

/// A fresh sandbox over the shared Debian 12 root ([`bookworm`]).
pub fn bookworm_sandbox() -> Sandbox {
    Sandbox::new(&bookworm().root).expect("a sandbox over the Debian 12 root")
}

/// A sandbox over the shared Debian 12 root with `rendered` installed the
/// way its -dkms package would put it (see [`Rendered::install_into`]).
pub fn bookworm_with(rendered: &Rendered) -> Sandbox {
    let sandbox = bookworm_sandbox();
    rendered
        .install_into(&sandbox)
        .expect("the module source and rendered files copied in");
    sandbox
}

/// `/boot/System.map-<kernel>` in `sandbox`, after checking that it is
/// Debian's one-line placeholder (the root has the image of `kernel`
/// installed, and the placeholder must not count as a System.map).
#[track_caller]
pub fn placeholder_system_map(sandbox: &Sandbox, kernel: &KernelRelease) -> String {
    let path = format!("/boot/System.map-{kernel}");
    let placeholder = sandbox
        .read_file(&path)
        .expect("the image's System.map placeholder");
    assert_eq!(
        placeholder.lines().count(),
        1,
        "expected Debian's placeholder at {path}:\n{placeholder}"
    );
    path
}

/// Puts a [`stand_in_system_map`] with `linux_banner` at `banner` where
/// the image of `kernel` puts its System.map.
pub fn install_stand_in_system_map(sandbox: &Sandbox, kernel: &KernelRelease, banner: u64) {
    sandbox
        .write_file(
            &format!("/boot/System.map-{kernel}"),
            stand_in_system_map(banner).as_bytes(),
            0o644,
        )
        .expect("stand-in System.map written");
}

/// A Debian 13 root with DKMS, a compiler and the headers (and so the
/// image) of the newest 6.12 kernel: apt 3 verifies with sqv there, the
/// client the publish tests need besides Debian 12's gpgv.
#[derive(Debug)]
pub struct Trixie {
    pub root: PreparedRoot,
    pub k612: KernelRelease,
}

/// The shared Debian 13 DKMS root; panics, saying why, when it cannot be made.
pub fn trixie() -> &'static Trixie {
    static ROOT: OnceLock<Trixie> = OnceLock::new();
    ROOT.get_or_init(|| {
        let make = || -> crate::Result<Trixie> {
            let index = AptIndex::updated("trixie")?;
            let k612 = index.newest_headers("6.12")?;
            let root = DebianRoot::new("trixie")
                .packages(DKMS_PACKAGES.iter().copied())
                .packages([format!("linux-headers-{k612}")])
                .ensure()?;
            Ok(Trixie { root, k612 })
        };
        make().unwrap_or_else(|e| panic!("cannot make the Debian 13 test root: {e}"))
    })
}

/// A persistent /var/cache/apt/archives for sandboxes over `suite`'s roots,
/// so a package a test installs with apt is downloaded once per machine;
/// held locked while the test uses it (apt in two sandboxes at once would
/// share its partial downloads).
pub struct AptArchives {
    pub dir: std::path::PathBuf,
    _lock: crate::cache::CacheLock,
}

impl AptArchives {
    pub fn for_suite(suite: &str) -> AptArchives {
        let dir = crate::cache::cache_dir().join(format!("apt-archives-{suite}"));
        let lock = crate::cache::CacheLock::acquire(&dir)
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", dir.display()));
        std::fs::create_dir_all(dir.join("partial"))
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
        AptArchives { dir, _lock: lock }
    }

    /// The bind that puts it at /var/cache/apt/archives.
    pub fn bind(&self) -> crate::sandbox::Bind {
        crate::sandbox::Bind {
            host: self.dir.clone(),
            guest: "/var/cache/apt/archives".into(),
            writable: true,
        }
    }
}
