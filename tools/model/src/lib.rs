//! kmodfarm's data model. Everything here is pure: parsing, validation and
//! ordering, with no file writes, processes or network.
//!
//! - [`manifest`]: `kmodfarm.toml`, the module's description (strict).
//! - [`distro`]: one target distribution (`distros/*.toml`).
//! - [`kernel`]: kernel release strings of every distro scheme, their order,
//!   and the supported range (with its DKMS `BUILD_EXCLUSIVE_KERNEL` regex).
//! - [`dkms_conf`]: reading an existing `dkms.conf` (import and lint).
//! - [`error_text`]: an error and its causes as one line.
//! - [`host`]: the settings and paths a customer host keeps for one module.
//! - [`shell_risk`]: commands that reach the network or write outside the build.
//! - [`record`]: build records, the matrix, and the repository index that
//!   the publish stage writes and the installer queries.

pub mod distro;
pub mod dkms_conf;
pub mod error_text;
pub mod host;
pub mod import;
pub mod kernel;
pub mod manifest;
mod numrange;
pub mod record;
pub mod shell_risk;
mod source_pos;
pub mod text;
pub mod tree;

pub use distro::{Distro, DistroSet, PackageFamily};
pub use kernel::{KernelRange, KernelRelease, VersionBound};
pub use manifest::{Compression, KernelInput, Manifest, ModuleSpec, TestSpec};
pub use source_pos::{SourcePos, TomlFileError};
