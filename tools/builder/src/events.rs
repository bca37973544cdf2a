//! Progress, as events the caller shows (a bar on a terminal, lines in CI).

use kmodfarm_model::record::BuildRecord;

#[derive(Debug)]
pub enum Event<'a> {
    /// What this run will do.
    Planned {
        jobs: usize,
        skips: usize,
    },
    /// A distro's root is being made (minutes) or was found.
    Root {
        distro: &'a str,
        root_id: &'a str,
        making: bool,
    },
    /// A kernel's headers are being fetched and unpacked.
    FetchingHeaders {
        key: &'a str,
    },
    /// A kernel's System.map is being found or made (a QEMU boot on Debian).
    SystemMap {
        key: &'a str,
    },
    /// A built kernel is being boot-tested under QEMU.
    BootTesting {
        key: &'a str,
    },
    /// A kernel's compile started.
    Started {
        key: &'a str,
    },
    /// One record: built, cached, failed or skipped.
    Finished {
        record: &'a BuildRecord,
    },
    Warning {
        message: String,
    },
}

/// Where events go; must be callable from the worker threads.
pub type Events<'a> = &'a (dyn Fn(Event<'_>) + Sync);
