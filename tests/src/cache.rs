//! The harness's cache directory and the lock that serialises its writers.

use std::path::PathBuf;

/// Where roots and package lists are kept between runs:
/// `$KMODFARM_TEST_CACHE`, else `~/.cache/kmodfarm-tests`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KMODFARM_TEST_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kmodfarm-tests")
}

/// The builder's cache lock and removal, shared: test binaries run in
/// parallel (and cargo runs several at once), so whoever builds a cache
/// entry holds the lock on `<entry>.lock`; the others wait and then find it
/// made.
pub(crate) use kmodfarm_builder::cache_dir::{remove_if_present, Lock as CacheLock};
