//! Kernel discovery: which kernels each target distro ships, read from its
//! package indexes, and which packages a build for each one needs.
//!
//! - [`apt_packages`], [`apt_release`], [`rpm_md`], [`decompress`]: pure
//!   readers of Debian/Ubuntu and RPM-MD index files.
//! - [`matrix`]: pure: kernel packages → [`MatrixEntry`](kmodfarm_model::record::MatrixEntry)s.
//! - [`apt_sources`]: the host's (or a directory's) apt sources, and the
//!   rule that rewrites them for another Debian release (used by the build
//!   stage and the test harness too).
//! - [`mirrors`]: which URL serves a suite (`--mirror`, the host's apt sources).
//! - [`fetch`]: the [`Fetcher`](fetch::Fetcher) trait and its caching HTTP client.
//! - [`discover`]: the two put together, per distro.
//!
//! Nothing here prints; progress goes to an [`events::Events`].

pub mod apt_packages;
pub mod apt_release;
pub mod apt_sources;
pub mod decompress;
pub mod discover;
pub mod error;
pub mod events;
pub mod fetch;
pub mod matrix;
pub mod mirrors;
pub mod rpm_md;
pub mod stanza_cache;

pub use apt_sources::{AptSource, AptSources};
pub use discover::{discover, discover_all, select_distros, DistroFailures, Sources};
pub use error::{KernelsError, SourcesError};
pub use matrix::{Discovered, Excluded, Wanted};
pub use mirrors::{Mirror, Mirrors};
