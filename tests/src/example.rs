//! The example module (`<repo>/module`): variants of its manifest, and its
//! rendering by the real `kmodfarm render`, laid out the way a `-dkms`
//! package installs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_model::Manifest;
use tempfile::TempDir;

use crate::bin::{kmodfarm_bin, module_dir};
use crate::error::{Error, Result};
use crate::process::capture;
use crate::sandbox::Sandbox;

/// A module tree a test may change: a copy of `module/` (manifest and
/// source) in a temp dir.
pub struct ModuleCopy {
    dir: TempDir,
}

impl ModuleCopy {
    /// A copy of module/ whose manifest declares `needs = ["system-map"]`.
    pub fn example_needing_system_map() -> Result<ModuleCopy> {
        Self::example_with(&[(
            "pre_build = \"configure\"\n",
            "pre_build = \"configure\"\nneeds = [\"system-map\"]\n",
        )])
    }

    /// A copy of the example module with its manifest edited by `edits`:
    /// each `(from, to)` replaces text that must occur in the manifest, so a
    /// change to the real manifest breaks the test loudly instead of
    /// silently testing the unedited one.
    pub fn example_with(edits: &[(&str, &str)]) -> Result<ModuleCopy> {
        let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
        let from = module_dir();
        capture(
            Command::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(from.join("src"))
                .arg(dir.path().join("src")),
        )?
        .ok()?;
        let manifest_path = from.join("kmodfarm.toml");
        let mut text = fs::read_to_string(&manifest_path).map_err(Error::io(&manifest_path))?;
        for (old, new) in edits {
            assert!(
                text.contains(old),
                "{} no longer contains {old:?}; update the test's edit",
                manifest_path.display()
            );
            text = text.replacen(old, new, 1);
        }
        let copy = dir.path().join("kmodfarm.toml");
        fs::write(&copy, text).map_err(Error::io(&copy))?;
        Ok(ModuleCopy { dir })
    }

    /// Replaces every `from` in the copy's source file `file` (relative to
    /// src/) with `to`; `from` must occur, as in [`ModuleCopy::example_with`].
    pub fn edit_source(&self, file: &str, from: &str, to: &str) -> Result<()> {
        let path = self.dir.path().join("src").join(file);
        let text = fs::read_to_string(&path).map_err(Error::io(&path))?;
        assert!(
            text.contains(from),
            "{} no longer contains {from:?}; update the test's edit",
            path.display()
        );
        fs::write(&path, text.replace(from, to)).map_err(Error::io(&path))
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("kmodfarm.toml")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// What `kmodfarm render` wrote for one manifest, with the manifest read
/// back for the paths files install to.
pub struct Rendered {
    out: TempDir,
    pub manifest: Manifest,
    /// The edited module copy rendered, kept while the rendering is used
    /// (the manifest's source path points into it).
    _copy: Option<ModuleCopy>,
}

impl Rendered {
    /// `kmodfarm render` of the example module as it is.
    pub fn example() -> Rendered {
        Rendered::render(&module_dir().join("kmodfarm.toml")).expect("kmodfarm render of module/")
    }

    /// `kmodfarm render` of a copy of the example module with its
    /// manifest edited by `edits` (see [`ModuleCopy::example_with`]).
    pub fn example_with(edits: &[(&str, &str)]) -> Rendered {
        let copy = ModuleCopy::example_with(edits).expect("a copy of module/");
        Self::of_copy(copy)
    }

    /// `kmodfarm render` of [`ModuleCopy::example_needing_system_map`].
    pub fn example_needing_system_map() -> Rendered {
        let copy = ModuleCopy::example_needing_system_map().expect("a copy of module/");
        Self::of_copy(copy)
    }

    /// `kmodfarm render` of a module copy (edited by the test), kept alive
    /// with the rendering.
    pub fn of_copy(copy: ModuleCopy) -> Rendered {
        let mut rendered = Rendered::render(&copy.manifest())
            .unwrap_or_else(|e| panic!("kmodfarm render of {}: {e}", copy.manifest().display()));
        rendered._copy = Some(copy);
        rendered
    }

    /// Runs `kmodfarm -m MANIFEST render --out DIR` and checks it succeeded.
    pub fn render(manifest: &Path) -> Result<Rendered> {
        let out = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
        capture(
            Command::new(kmodfarm_bin())
                .arg("-m")
                .arg(manifest)
                .arg("render")
                .arg("--out")
                .arg(out.path().join("render")),
        )?
        .ok()?;
        let manifest = Manifest::load(manifest).unwrap_or_else(|e| {
            panic!(
                "kmodfarm rendered {} but it does not load: {e}",
                manifest.display()
            )
        });
        Ok(Rendered {
            out,
            manifest,
            _copy: None,
        })
    }

    /// The render directory.
    pub fn dir(&self) -> PathBuf {
        self.out.path().join("render")
    }

    /// A rendered file by its name in the render directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// `/usr/src/<name>-<version>`, where DKMS expects the source.
    pub fn source_dir(&self) -> String {
        let p = &self.manifest.package;
        format!("/usr/src/{}-{}", p.name, p.version)
    }

    /// `/usr/lib/<name>-dkms/kmodfarm-dkms`, the helper the package
    /// scripts call.
    pub fn helper_path(&self) -> String {
        format!("/usr/lib/{}-dkms/kmodfarm-dkms", self.manifest.package.name)
    }

    /// `<name>/<version>`, as dkms commands name the module.
    pub fn dkms_id(&self) -> String {
        let p = &self.manifest.package;
        format!("{}/{}", p.name, p.version)
    }

    /// Puts what a `-dkms` package would into `sandbox`: the module source
    /// with the rendered dkms.conf and kmodfarm-prebuild in the DKMS source
    /// directory, and the kmodfarm-dkms helper.
    pub fn install_into(&self, sandbox: &Sandbox) -> Result<()> {
        let source = self.source_dir();
        sandbox.copy_in(&self.manifest.source_path(), &source)?;
        for name in ["dkms.conf", "kmodfarm-prebuild"] {
            sandbox.copy_in(&self.file(name), &format!("{source}/{name}"))?;
        }
        sandbox.copy_in(&self.file("kmodfarm-dkms"), &self.helper_path())
    }
}
