//! Progress, reported to whoever drives discovery (the binary draws it);
//! the library itself never prints.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A request is about to be sent.
    Fetching {
        url: &'a str,
    },
    /// A request failed in a way worth retrying; the next try is after `wait`.
    Retrying {
        url: &'a str,
        attempt: u32,
        reason: &'a str,
        wait: Duration,
    },
    /// The server answered 304: the cached copy is current.
    NotModified {
        url: &'a str,
    },
    Downloaded {
        url: &'a str,
        bytes: u64,
    },
    /// Offline: the cached copy was used without asking the server.
    FromCache {
        url: &'a str,
    },
    /// An InRelease signature was checked with gpgv.
    SignatureVerified {
        url: &'a str,
        keyring: &'a str,
    },
    /// No keyring is known for this mirror: only the hashes chain the
    /// indexes to the InRelease, nothing checks the InRelease itself.
    SignatureNotChecked {
        url: &'a str,
    },
    /// The kernel stanzas of an index whose digest is unchanged were read
    /// from the stanza cache; the index itself was not fetched.
    StanzasFromCache {
        what: &'a str,
        kernel_packages: usize,
    },
    /// An index was decompressed and scanned.
    Parsed {
        what: &'a str,
        kernel_packages: usize,
        elapsed: Duration,
    },
}

pub trait Events {
    fn event(&self, event: Event<'_>);
}

impl<F: Fn(Event<'_>)> Events for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}

/// Discards every event.
pub struct Quiet;

impl Events for Quiet {
    fn event(&self, _: Event<'_>) {}
}
