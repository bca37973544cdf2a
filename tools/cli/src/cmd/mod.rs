use std::path::PathBuf;

use kmodfarm_model::{DistroSet, Manifest};

pub mod boot_test;
pub mod build;
pub mod image;
pub mod init;
pub mod kernels;
pub mod keygen;
pub mod lint;
pub mod matrix;
pub mod merge;
pub mod package;
pub mod publish;
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

    /// The manifest, having passed the checks `kmodfarm lint` makes: the
    /// commands that write something (render, package, build) refuse what
    /// lint refuses, and print its warnings, so that no product is made
    /// from a manifest lint would reject.
    pub fn checked_manifest(&self, templates: Option<PathBuf>) -> Result<Manifest> {
        let manifest = self.load_manifest()?;
        let findings = kmodfarm_render::lint(
            &manifest,
            &kmodfarm_render::RenderOptions {
                templates_dir: templates,
            },
        );
        let errors: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == kmodfarm_render::Severity::Error)
            .collect();
        for warning in findings
            .iter()
            .filter(|f| f.severity != kmodfarm_render::Severity::Error)
        {
            eprintln!("{warning}");
        }
        if errors.is_empty() {
            return Ok(manifest);
        }
        let listed: Vec<String> = errors.iter().map(|f| f.to_string()).collect();
        Err(format!(
            "{} fails `kmodfarm lint` ({} error(s)); nothing was written:\n{}",
            self.manifest.display(),
            errors.len(),
            listed.join("\n")
        )
        .into())
    }
}
