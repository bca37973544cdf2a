//! `kmodfarm init --from DIR`: a manifest from an existing DKMS source tree.
//! Most users arrive with a dkms.conf; we carry over everything with a
//! meaning in the manifest and list, as notes, what we leave out and why.

use std::path::Path;

use crate::dkms_conf::DkmsConf;
use crate::manifest::{valid_package_name, Manifest, ManifestError};

/// What dkms.conf does not say and the manifest needs.
#[derive(Debug, Clone)]
pub struct ImportDefaults {
    pub maintainer: String,
    pub license: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: line {line}: {message}")]
    Conf {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {0}", file = .1)]
    Missing(String, String),
    #[error("the imported manifest is invalid")]
    Manifest(#[from] ManifestError),
}

pub struct Imported {
    pub manifest: Manifest,
    /// The manifest text to write.
    pub toml: String,
    /// What was not carried over, one sentence each.
    pub notes: Vec<String>,
}

/// Converts `conf` (the text of `file`, in source tree `source_dir` relative
/// to where the manifest will live) into a manifest.
pub fn from_dkms_conf(
    file: &str,
    text: &str,
    source_dir: &str,
    defaults: &ImportDefaults,
    manifest_path: &Path,
) -> Result<Imported, ImportError> {
    let conf = DkmsConf::parse(text).map_err(|e| ImportError::Conf {
        file: file.into(),
        line: e.line,
        message: e.message,
    })?;
    let mut notes = Vec::new();
    let required = |name: &str| {
        conf.scalar(name).map(str::to_string).ok_or_else(|| {
            ImportError::Missing(
                format!("{name} is not set; DKMS needs it too"),
                file.to_string(),
            )
        })
    };
    let raw_name = required("PACKAGE_NAME")?;
    let version = required("PACKAGE_VERSION")?;
    let mut name = raw_name.to_ascii_lowercase().replace('_', "-");
    if !valid_package_name(&name) {
        name = format!("{name}-module");
    }
    if name != raw_name {
        notes.push(format!("PACKAGE_NAME '{raw_name}' became package name '{name}' (Debian package names are lowercase, without '_')"));
    }

    let names = conf.array("BUILT_MODULE_NAME");
    if names.is_empty() {
        return Err(ImportError::Missing(
            "BUILT_MODULE_NAME[0] is not set: name the module(s) the tree builds".into(),
            file.into(),
        ));
    }
    let locations = conf.array("BUILT_MODULE_LOCATION");
    let dests = conf.array("DEST_MODULE_LOCATION");
    let dest_names = conf.array("DEST_MODULE_NAME");
    let mut modules = String::new();
    for (i, module) in &names {
        modules.push_str(&format!("\n[[module]]\nname = {}\n", toml_str(module)));
        if let Some(loc) = locations.get(i) {
            let loc = loc.trim_end_matches('/');
            if !loc.is_empty() && loc != "." {
                modules.push_str(&format!("location = {}\n", toml_str(loc)));
            }
        }
        match dests.get(i) {
            Some(dest) => modules.push_str(&format!(
                "dest = {}\n",
                toml_str(dest.trim_end_matches('/'))
            )),
            None => notes.push(format!(
                "DEST_MODULE_LOCATION[{i}] is not set; {module} installs to /updates/dkms"
            )),
        }
        if let Some(dest_name) = dest_names.get(i).filter(|d| *d != module) {
            notes.push(format!("DEST_MODULE_NAME[{i}]='{dest_name}' (a rename on install) is not supported; the module keeps its built name {module}"));
        }
    }

    let mut build = String::new();
    if let Some(make) = conf.array("MAKE").get(&0) {
        build.push_str(&format!("command = {}\n", toml_str(make)));
    }
    for (directive, key) in [
        ("PRE_BUILD", "pre_build"),
        ("POST_BUILD", "post_build"),
        ("POST_INSTALL", "post_install"),
    ] {
        if let Some(v) = conf.scalar(directive) {
            build.push_str(&format!("{key} = {}\n", toml_str(v)));
        }
    }

    let mut kernels = String::new();
    if let Some(min) = conf.scalar("BUILD_EXCLUSIVE_KERNEL_MIN") {
        kernels.push_str(&format!("min = {}\n", toml_str(min)));
    }
    if let Some(max) = conf.scalar("BUILD_EXCLUSIVE_KERNEL_MAX") {
        // kmodfarm writes max 6.8 as 6.8.999999 for sort -V; read it back.
        let max = max.trim_end_matches(".999999").trim_end_matches("-999999");
        kernels.push_str(&format!("max = {}\n", toml_str(max)));
    }
    if let Some(re) = conf.scalar("BUILD_EXCLUSIVE_KERNEL") {
        if kernels.is_empty() {
            notes.push(format!("BUILD_EXCLUSIVE_KERNEL=\"{re}\" was not imported: write the range as [kernels] min/max and kmodfarm renders the regex"));
        }
    }
    if let Some(arch) = conf.scalar("BUILD_EXCLUSIVE_ARCH") {
        notes.push(format!("BUILD_EXCLUSIVE_ARCH=\"{arch}\" was not imported: kmodfarm builds for the distros' architecture"));
    }
    if conf
        .scalar("AUTOINSTALL")
        .is_some_and(|v| !v.eq_ignore_ascii_case("yes"))
    {
        notes.push("AUTOINSTALL was not 'yes': kmodfarm always sets it, so kernel upgrades rebuild the module".into());
    }
    let mut boot = String::new();
    if conf
        .scalar("REMAKE_INITRD")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    {
        let all: Vec<String> = names.values().map(|n| toml_str(n)).collect();
        boot.push_str(&format!("initramfs = [{}]\n", all.join(", ")));
        notes.push("REMAKE_INITRD=yes became [boot] initramfs (DKMS 3 ignores REMAKE_INITRD; the package scripts update the initramfs)".into());
    }
    for dropped in [
        "CLEAN",
        "MODULES_CONF",
        "MODULES_CONF_ALIAS_TYPE",
        "MODULES_CONF_OBSOLETES",
        "MODULES_CONF_OBSOLETE_ONLY",
        "PATCH",
        "OBSOLETE_BY",
    ] {
        if let Some(line) = conf.line_of(dropped) {
            notes.push(format!("line {line}: {dropped} was dropped (deprecated in DKMS 3 or not supported by kmodfarm)"));
        }
    }
    for (line, text) in &conf.other_lines {
        notes.push(format!("line {line}: shell code '{text}' was not imported"));
    }

    let mut toml = format!(
        "# Imported by `kmodfarm init --from` from {file}.\n\n[package]\nname = {}\nversion = {}\nlicense = {}\nsummary = {}\ndescription = {}\nmaintainer = {}\n\n[source]\ndir = {}\n{modules}",
        toml_str(&name),
        toml_str(&version),
        toml_str(&defaults.license),
        toml_str(&format!("{name} kernel module")),
        toml_str(&format!("The {name} out-of-tree Linux kernel module, built by DKMS or installed prebuilt.")),
        toml_str(&defaults.maintainer),
        toml_str(source_dir),
    );
    for (table, body) in [("build", build), ("kernels", kernels), ("boot", boot)] {
        if !body.is_empty() {
            toml.push_str(&format!("\n[{table}]\n{body}"));
        }
    }
    let manifest = Manifest::parse(manifest_path, &toml)?;
    Ok(Imported {
        manifest,
        toml,
        notes,
    })
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
