//! kmodfarm's build stage: from a kernel matrix to verified, compressed
//! modules with a record each.
//!
//! Plan, then act:
//! - [`plan`]: pure: matrix entries → jobs or skips, shards, cache keys.
//! - [`ci`]: pure: CI job matrices (GitHub, GitLab) and a Kubernetes Indexed Job.
//! - [`image`] + [`sources`]: the per-distro build roots (mmdebstrap).
//! - [`headers`]: a kernel's header packages, downloaded and unpacked once.
//! - [`runtime`]: where a compile runs: bwrap, podman, docker or the host.
//! - [`job`]: one kernel: compile, verify, sign, compress, record.
//! - [`schedule`]: up to N jobs at once, with progress [`events`].
//! - [`kernel_image`] + [`symbols`]: a kernel's own image, and its real
//!   System.map (from a package, or /proc/kallsyms of a QEMU boot).
//! - [`boot_test`] ([`qemu`], [`initramfs`]): each product loaded in its own
//!   kernel under QEMU, its smoke check run, the console scanned.
//! - [`output`]: the output directory: kernel directories and records.json,
//!   staged, locked, accumulated over runs.
//! - [`report`] and [`merge`]: JUnit/JSON reports, joining shard outputs.
//!
//! Nothing here prints.

pub mod boot_test;
pub mod cache_dir;
pub mod ci;
pub mod compress;
pub mod dkms_env;
pub mod error;
pub mod events;
pub mod guests;
pub mod headers;
pub mod image;
pub mod initramfs;
pub mod job;
pub mod kernel_image;
pub mod merge;
pub mod output;
pub mod plan;
pub mod process;
pub mod qemu;
pub mod report;
pub mod runtime;
pub mod schedule;
pub mod source;
pub mod sources;
pub mod symbols;
pub mod workdir;

pub use error::{BuildError, Result};
