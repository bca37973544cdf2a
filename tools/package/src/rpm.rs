//! The .rpm writer, on the `rpm` crate's `PackageBuilder`: it writes the
//! lead, signature and main headers, file digests (SHA-256) and the cpio
//! payload, and signs with OpenPGP keys. What is ours is the mapping from a
//! `PackageSpec` and the choices that make the output reproducible: every
//! timestamp is `spec.source_date`, owners are root, no build host.

use std::io::Write;
use std::path::{Path, PathBuf};

use rpm::signature::pgp::Signer;

use crate::content::load_files;
use crate::error::{PackageError, Result};
use crate::spec::{Dependency, Format, PackageSpec, ScriptKind};

/// xz at level 6: every rpm since RHEL 6 reads it, and it is much faster
/// than the crate's default level 9 for a few percent in size.
const XZ_LEVEL: u32 = 6;

/// An OpenPGP secret key (ASCII-armored, as `gpg --export-secret-keys -a`
/// writes it) to sign .rpm files with.
pub struct SigningKey {
    path: PathBuf,
    signer: Signer,
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PackageError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let signer = Signer::from_asc(&text).map_err(|source| PackageError::SigningKey {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        Ok(SigningKey {
            path: path.to_path_buf(),
            signer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `spec` as an .rpm to `out`, signed when `key` is given.
pub fn write_rpm(spec: &PackageSpec, key: Option<&SigningKey>, mut out: impl Write) -> Result<()> {
    assert_eq!(
        spec.format,
        Format::Rpm,
        "write_rpm needs a spec planned for .rpm"
    );
    let rpm_err = |source: rpm::Error| PackageError::Rpm {
        package: spec.name.clone(),
        source: Box::new(source),
    };
    let when = rpm::Timestamp(u32::try_from(spec.source_date).unwrap_or(u32::MAX));
    let config = rpm::BuildConfig::v4()
        .compression(rpm::CompressionWithLevel::Xz(XZ_LEVEL))
        .source_date(when);

    let mut b = rpm::PackageBuilder::new(
        &spec.name,
        &spec.version,
        &spec.license,
        &spec.arch,
        &spec.summary,
    );
    b.using_config(config)
        .release(spec.release.clone())
        .description(spec.description.trim())
        .packager(spec.maintainer.clone())
        // Deprecated in Fedora but still read by SUSE tools and rpmlint.
        .group("System Environment/Kernel")
        // rpmbuild records the machine's host name; a fixed name keeps the
        // header free of host-specific data and the bytes reproducible.
        .build_host("kmodfarm")
        .add_changelog_entry(
            format!("{} - {}", spec.maintainer, spec.full_version()),
            "- Packaged by kmodfarm.",
            when,
        );
    if let Some(url) = &spec.homepage {
        b.url(url.clone());
    }
    for dep in &spec.depends {
        b.requires(capability(dep));
    }
    for dep in &spec.provides {
        b.provides(capability(dep));
    }
    for dep in &spec.conflicts {
        b.conflicts(capability(dep));
    }

    for dir in &spec.directories {
        let options = rpm::FileOptions::dir(dir.clone())
            .permissions(0o755)
            .user("root")
            .group("root");
        b.with_dir_entry(options).map_err(rpm_err)?;
    }
    for file in load_files(spec)? {
        let mut options = rpm::FileOptions::new(file.path.clone())
            .permissions(file.mode as u16)
            .user("root")
            .group("root");
        if file.conffile {
            options = options.config().noreplace();
        }
        b.with_file_contents(file.bytes, options).map_err(rpm_err)?;
    }

    for script in &spec.scripts {
        let scriptlet =
            rpm::Scriptlet::new(script.body.clone()).prog(vec![script.interpreter.clone()]);
        match script.kind {
            ScriptKind::PostInstall => b.post_install_script(scriptlet),
            ScriptKind::PreRemove => b.pre_uninstall_script(scriptlet),
            ScriptKind::PostRemove => b.post_uninstall_script(scriptlet),
        };
    }

    let package = match key {
        Some(key) => b.build_and_sign(key.signer.clone()),
        None => b.build(),
    }
    .map_err(rpm_err)?;
    package.write(&mut out).map_err(rpm_err)?;
    out.flush().map_err(PackageError::Output)
}

/// One RPM capability; alternatives become a rich dependency `(a or b)`
/// (rpm 4.13 and later: every supported RHEL and SLES).
fn capability(dep: &Dependency) -> rpm::Dependency {
    match dep.alternatives.as_slice() {
        [one] => match &one.version {
            Some(v) => rpm::Dependency::eq(one.name.clone(), v.clone()),
            None => rpm::Dependency::any(one.name.clone()),
        },
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|r| match &r.version {
                    Some(v) => format!("{} = {v}", r.name),
                    None => r.name.clone(),
                })
                .collect();
            rpm::Dependency::any(format!("({})", names.join(" or ")))
        }
    }
}
