//! kmodfarm's integration test harness.
//!
//! The tests run the real `kmodfarm` binary and real Debian tools (dkms,
//! dpkg, apt) inside a Debian root file system, so nothing is mocked:
//!
//! - [`kmodfarm_bin`]: the built `kmodfarm` binary.
//! - [`AptSources`] / [`apt_sources`]: this machine's Debian apt sources,
//!   rewritten for another suite (the reader is `kmodfarm_kernels`'s, the
//!   one `kmodfarm` itself uses). Mirrors are configuration: the harness
//!   never names one itself.
//! - [`AptIndex`] / [`newest_headers`]: a suite's package lists fetched with
//!   those sources, to choose kernels the archive has today.
//! - [`DebianRoot`]: a root file system made by mmdebstrap, cached between
//!   runs and shared by parallel tests.
//! - [`Sandbox`]: one test's private, writable view of a root, entered with
//!   bwrap.
//! - [`BootImage`]: a sandbox's kernel and a busybox initramfs with its
//!   modules, booted under QEMU to load them for real.
//! - [`fixtures`]: ready-made roots shared by several test files, and
//!   sandboxes over them.
//! - [`dkms_status`], [`assert_dkms_installed`], [`sandbox_modinfo`]: what
//!   DKMS and kmod say inside a sandbox.
//! - [`write_build_output`]: a stand-in for `kmodfarm build`'s output
//!   (records.json and modules) for modules built another way.
//! - [`dnf`]: a throw-away dnf world with signature checks on.
//! - [`stand_in_repo`]: a stand-in for `kmodfarm publish` (gpg-signed lookup
//!   files, index, apt metadata) and a static HTTP server on 127.0.0.1.
//! - [`fixtures`]: ready-made roots shared by several test files.
//! - [`ModuleCopy`] / [`Rendered`]: the example module, edited copies of its
//!   manifest, and `kmodfarm render`'s output installed into a sandbox.
//!
//! Fallible steps return [`Error`], whose message carries the command and
//! its output; tests `expect()` them. Missing prerequisites (mmdebstrap,
//! bwrap, the archive) are errors, never skips.

mod apt_index;
mod bin;
mod build_output;
mod cache;
mod dkms;
pub mod dnf;
mod error;
mod example;
pub mod fixtures;
mod process;
mod qemu;
mod root;
mod sandbox;
pub mod stand_in_repo;
mod static_server;

pub use apt_index::{newest_headers, AptIndex};
pub use bin::{kmodfarm, kmodfarm_bin, kmodfarm_package, module_dir, repo_root};
pub use build_output::{write_build_output, StandInBuild};
pub use cache::cache_dir;
pub use dkms::{
    assert_dkms_has_nothing_for, assert_dkms_installed, assert_dkms_not_installed,
    assert_handed_back_to_dkms, assert_taken_from_dkms, dkms_status, sandbox_modinfo,
};
pub use error::{Error, Result};
pub use example::{ModuleCopy, Rendered};
pub use kmodfarm_kernels::apt_sources::{AptSource, AptSources};
pub use process::{run_ok, Output};
pub use qemu::BootImage;
pub use root::{apt_sources, DebianRoot, PreparedRoot};
pub use sandbox::{Bind, Sandbox, SandboxBackend};
pub use static_server::StaticServer;

/// The median of benchmark timings (the mean of the middle two for an even
/// count), for the benches and the ignored bench tests.
pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}
