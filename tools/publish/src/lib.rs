//! kmodfarm's publish stage: turns the output of `kmodfarm package` and
//! `kmodfarm build` into a repository that apt, dnf, zypper and the
//! target-side installer read.
//!
//! - `apt`: `deb/dists/<codename>/…` and `deb/pool/…` (Packages, Release,
//!   InRelease, Release.gpg, by-hash).
//! - `rpm_md`: `rpm/<distro>/<arch>/repodata/` (repomd, primary, filelists,
//!   other).
//! - `index`: `index.json` and `prebuilt/<distro>/<arch>/<kernel>.json`.
//! - `page`: the matrix page, `index.html`.
//! - `sign`: OpenPGP keys and signatures.
//! - `serve`: a small static HTTP server for tests, demos and air-gapped
//!   sites.

pub mod apt;
pub mod index;
pub mod page;
pub mod rpm_md;
pub mod serve;
pub mod sign;
