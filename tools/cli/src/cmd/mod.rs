use std::path::PathBuf;

use kmodfarm_model::{DistroSet, Manifest};

pub mod build;
pub mod image;
pub mod init;
pub mod kernels;
pub mod lint;
pub mod matrix;
pub mod merge;
pub mod package;
pub mod render;
pub mod serve;

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options every command shares.
pub struct Context {
    pub manifest: PathBuf,
    pub distros: Option<PathBuf>,
}

impl Context {
    pub fn distro_set(&self) -> Result<DistroSet> {
        Ok(match &self.distros {
            Some(dir) => DistroSet::with_dir(dir)?,
            None => DistroSet::builtin(),
        })
    }

    /// The manifest, validated, with its distros checked against the known set.
    pub fn load_manifest(&self) -> Result<Manifest> {
        let manifest = Manifest::load(&self.manifest)?;
        manifest.check_distros(&self.distro_set()?)?;
        Ok(manifest)
    }
}
