//! Planning `<name>-dkms`: the module source under /usr/src/<name>-<version>
//! with the rendered dkms.conf, the rendered helper, hooks and boot files,
//! and the rendered maintainer scripts. Pure: the inputs are the manifest,
//! the distro, the rendered files and the listed source tree.

use std::collections::BTreeSet;

use kmodfarm_model::record::dkms_package_name;
use kmodfarm_model::{Distro, Manifest};

use crate::error::{PackageError, Result};
use crate::source_tree::SourceTree;
use crate::spec::{Dependency, FileData, FileEntry, Format, PackageSpec, Script, ScriptKind};
use crate::{debian_docs, GeneratedFile};

/// The shell every maintainer script and scriptlet runs under.
pub const SHELL: &str = "/bin/sh";

pub struct DkmsInputs<'a> {
    pub manifest: &'a Manifest,
    /// The target distro: its headers meta package goes in the dependencies.
    pub distro: &'a Distro,
    pub format: Format,
    /// The output of the render stage.
    pub rendered: &'a [GeneratedFile],
    pub tree: &'a SourceTree,
    pub source_date: u64,
}

pub fn plan_dkms(input: &DkmsInputs) -> Result<PackageSpec> {
    let meta = &input.manifest.package;
    let name = dkms_package_name(&meta.name);
    let src = format!("/usr/src/{}-{}", meta.name, meta.version);

    let mut files: Vec<FileEntry> = input
        .tree
        .files
        .iter()
        .map(|f| FileEntry {
            path: format!("{src}/{}", f.rel),
            mode: f.mode,
            data: FileData::Source {
                path: f.abs.clone(),
                size: f.size,
            },
            conffile: false,
        })
        .collect();
    let mut scripts = Vec::new();
    for r in input.rendered {
        if let Some(kind) = script_kind(&r.name, input.format) {
            scripts.push(script(kind, &r.contents));
            continue;
        }
        if r.name.starts_with("debian/") || r.name.starts_with("rpm/") {
            continue; // the other format's scripts
        }
        // Files without an install path belong with the source (dkms.conf,
        // kmodfarm-prebuild): DKMS reads them from /usr/src/<name>-<version>.
        let path = match &r.install_path {
            Some(path) => path.clone(),
            None if !r.name.contains('/') => format!("{src}/{}", r.name),
            None => {
                return Err(PackageError::UnplacedRendered {
                    name: r.name.clone(),
                })
            }
        };
        files.push(FileEntry {
            conffile: is_conffile(input.format, &path, r.mode),
            path,
            mode: r.mode,
            data: FileData::inline(r.contents.clone()),
        });
    }
    if !files.iter().any(|f| f.path == format!("{src}/dkms.conf")) {
        return Err(PackageError::MissingRendered {
            name: "dkms.conf".into(),
            package: name,
        });
    }
    if input.format == Format::Deb {
        files.extend(debian_docs::files(&name, meta, input.source_date));
    }
    check_unique(&files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    scripts.sort_by_key(|s| s.kind);

    // RPM records directory ownership: this package owns the source tree
    // and its helper's directory, not shared ones like /usr/src.
    let mut directories: BTreeSet<String> = BTreeSet::new();
    if input.format == Format::Rpm {
        directories.insert(src.clone());
        directories.extend(input.tree.dirs.iter().map(|d| format!("{src}/{d}")));
        let helper_dir = format!("/usr/lib/{name}");
        if files
            .iter()
            .any(|f| f.path.starts_with(&format!("{helper_dir}/")))
        {
            directories.insert(helper_dir);
        }
    }

    Ok(PackageSpec {
        format: input.format,
        arch: match input.format {
            Format::Deb => "all",
            Format::Rpm => "noarch",
        }
        .into(),
        depends: dependencies(input.format, input.distro),
        provides: vec![match input.format {
            Format::Deb => Dependency::on(format!("{}-modules", meta.name)),
            Format::Rpm => Dependency::exactly(
                format!("{}-kmod", meta.name),
                format!("{}-{}", meta.version, meta.release),
            ),
        }],
        conflicts: Vec::new(),
        name,
        version: meta.version.clone(),
        release: meta.release.to_string(),
        summary: meta.summary.clone(),
        description: meta.description.clone(),
        maintainer: meta.maintainer.clone(),
        homepage: meta.homepage.clone(),
        license: meta.license.clone(),
        section: "kernel".into(),
        files,
        directories,
        scripts,
        source_date: input.source_date,
    })
}

/// What DKMS needs to build on the target: dkms itself, a compiler, make,
/// kmod (depmod/modprobe) and the headers of the running kernel line,
/// through the distro's headers meta package.
fn dependencies(format: Format, distro: &Distro) -> Vec<Dependency> {
    let meta = distro.kernel.headers_meta_package.clone();
    match format {
        Format::Deb => {
            // The distro's own meta package first; the others keep one
            // package installable on Debian and Ubuntu alike.
            let mut headers = vec![meta];
            for other in [
                "linux-headers-amd64",
                "linux-headers-generic",
                "linux-headers",
            ] {
                if !headers.iter().any(|h| h == other) {
                    headers.push(other.into());
                }
            }
            vec![
                Dependency::on("dkms"),
                Dependency::one_of(["gcc", "c-compiler"]),
                Dependency::on("make"),
                Dependency::one_of(headers),
                Dependency::on("kmod"),
            ]
        }
        Format::Rpm => vec![
            Dependency::on("dkms"),
            Dependency::on("gcc"),
            Dependency::on("make"),
            Dependency::on(meta),
        ],
    }
}

fn script_kind(name: &str, format: Format) -> Option<ScriptKind> {
    Some(match (format, name) {
        (Format::Deb, "debian/postinst") | (Format::Rpm, "rpm/post") => ScriptKind::PostInstall,
        (Format::Deb, "debian/prerm") | (Format::Rpm, "rpm/preun") => ScriptKind::PreRemove,
        (Format::Deb, "debian/postrm") | (Format::Rpm, "rpm/postun") => ScriptKind::PostRemove,
        _ => return None,
    })
}

/// A rendered script body; a `#!` line, if the template wrote one, names
/// the interpreter instead of the default shell.
pub fn script(kind: ScriptKind, text: &[u8]) -> Script {
    let text = String::from_utf8_lossy(text);
    match text.strip_prefix("#!") {
        Some(rest) => {
            let (interp, body) = rest.split_once('\n').unwrap_or((rest, ""));
            Script {
                kind,
                interpreter: interp.trim().to_string(),
                body: body.to_string(),
            }
        }
        None => Script {
            kind,
            interpreter: SHELL.into(),
            body: text.into_owned(),
        },
    }
}

/// Debian policy makes every file under /etc a conffile. RPM %config is
/// kept for the non-executable ones only: an executable (a kernel hook)
/// marked %config and changed by the admin is kept on upgrade with the new
/// version beside it as .rpmnew, so the old code would keep running;
/// rpmlint rejects it for that reason (executable-marked-as-config-file).
fn is_conffile(format: Format, path: &str, mode: u32) -> bool {
    path.starts_with("/etc/") && (format == Format::Deb || mode & 0o111 == 0)
}

pub(crate) fn check_unique(files: &[FileEntry]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for f in files {
        if !seen.insert(f.path.as_str()) {
            return Err(PackageError::DuplicatePath {
                path: f.path.clone(),
            });
        }
    }
    Ok(())
}
