//! `kmodfarm package`: the <name>-dkms .deb/.rpm and, from a build's
//! output, the prebuilt per-kernel packages. Plans every package first
//! (`--dry-run` stops there), then writes each file all or nothing.

use std::path::{Path, PathBuf};

use kmodfarm_model::{Distro, DistroSet, KernelRelease, Manifest, PackageFamily};
use kmodfarm_package::dkms::{plan_dkms, DkmsInputs};
use kmodfarm_package::prebuilt::{plan_prebuilt, scan_prebuilt, PrebuiltKernel, PrebuiltModule};
use kmodfarm_package::{
    resolve_source_date, write_packages, Format, GeneratedFile, PackageSpec, SigningKey, SourceTree,
};
use kmodfarm_render::RenderOptions;

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Package formats to write.
    #[arg(long, value_delimiter = ',', default_value = "deb,rpm")]
    format: Vec<Format>,
    /// Where to write [default: kmodfarm-out/packages beside the manifest].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Target distros, one per format family [default: debian-12 for .deb, rhel-9 for .rpm].
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    distro: Vec<String>,
    /// Print the plan instead of writing packages.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON: the plan with --dry-run, else the packages written.
    #[arg(long)]
    json: bool,
    /// Also package every kernel of a build's output: DIR/<distro>/<arch>/<kernel>/<module>.ko.zst.
    #[arg(long, value_name = "DIR", conflicts_with = "ko")]
    prebuilt: Option<PathBuf>,
    /// Also package this one built module file (with --kernel).
    #[arg(long, value_name = "FILE", requires = "kernel")]
    ko: Option<PathBuf>,
    /// The kernel release --ko was built for.
    #[arg(long, value_name = "RELEASE", requires = "ko")]
    kernel: Option<String>,
    /// Sign the .rpm files with this ASCII-armored OpenPGP secret key.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// A directory of *.tera files that replace the built-in templates of the same name.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.checked_manifest(args.templates.clone())?;
    let distros = ctx.distro_set()?;
    let specs = plan(&manifest, &distros, &args)?;

    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&specs)?);
        } else {
            for spec in &specs {
                print_plan(spec);
            }
        }
        return Ok(());
    }

    // Load the key before writing anything, so a bad key writes nothing.
    let key = match &args.sign_key {
        Some(path) => Some(SigningKey::load(path)?),
        None => None,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| manifest.root.join("kmodfarm-out").join("packages"));
    // All packages or none: a failure in the last one must not leave the
    // first ones looking like a complete set.
    let paths = write_packages(&specs, &out, key.as_ref())?;
    let mut written = Vec::new();
    for (spec, path) in specs.iter().zip(paths) {
        let signed = key.is_some() && spec.format == Format::Rpm;
        if !args.json {
            println!(
                "wrote {}{}",
                path.display(),
                if signed { " (signed)" } else { "" }
            );
        }
        written.push(serde_json::json!({
            "package": spec.name,
            "format": spec.format,
            "version": spec.full_version(),
            "arch": spec.arch,
            "path": path,
            "signed": signed,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    }
    Ok(())
}

fn plan(manifest: &Manifest, distros: &DistroSet, args: &Args) -> Result<Vec<PackageSpec>> {
    let rendered: Vec<GeneratedFile> = kmodfarm_render::render(
        manifest,
        &RenderOptions {
            templates_dir: args.templates.clone(),
        },
    )?
    .into_iter()
    .map(GeneratedFile::from)
    .collect();
    let tree = SourceTree::of_manifest(manifest)?;
    let built = prebuilt_inputs(manifest, distros, args)?;

    let env = std::env::var("SOURCE_DATE_EPOCH").ok();
    let inputs = std::iter::once(manifest.path.as_path())
        .chain(tree.files.iter().map(|f| f.abs.as_path()))
        .chain(
            built
                .iter()
                .flat_map(|(_, k)| k.modules.iter().map(|m| m.path.as_path())),
        );
    let source_date = resolve_source_date(env.as_deref(), inputs)?;

    let mut specs = Vec::new();
    for &format in &dedup(&args.format) {
        let distro = target_distro(distros, &args.distro, format)?;
        specs.push(plan_dkms(&DkmsInputs {
            manifest,
            distro,
            format,
            rendered: &rendered,
            tree: &tree,
            source_date,
        })?);
        for (distro_id, kernel) in &built {
            if *distro_id == distro.id {
                specs.push(plan_prebuilt(
                    manifest,
                    distro,
                    format,
                    kernel,
                    source_date,
                )?);
            }
        }
    }
    Ok(specs)
}

/// The built kernels to package, each with the distro it was built for.
fn prebuilt_inputs(
    manifest: &Manifest,
    distros: &DistroSet,
    args: &Args,
) -> Result<Vec<(String, PrebuiltKernel)>> {
    let mut built = Vec::new();
    if let Some(dir) = &args.prebuilt {
        for &format in &dedup(&args.format) {
            let distro = target_distro(distros, &args.distro, format)?;
            if dir.join(&distro.id).is_dir() {
                for kernel in scan_prebuilt(dir, manifest, distro)? {
                    built.push((distro.id.clone(), kernel));
                }
            }
        }
        if built.is_empty() {
            return Err(format!(
                "{}: no build output for the target distros ({}); pass --distro",
                dir.display(),
                dedup(&args.format)
                    .iter()
                    .filter_map(|&f| target_distro(distros, &args.distro, f).ok())
                    .map(|d| d.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into());
        }
    }
    if let (Some(ko), Some(kernel)) = (&args.ko, &args.kernel) {
        let kernel = KernelRelease::parse(kernel)?;
        let module = module_of(manifest, ko)?;
        let size = std::fs::metadata(ko)
            .map_err(|e| format!("cannot read {}: {e}", ko.display()))?
            .len();
        for &format in &dedup(&args.format) {
            let distro = target_distro(distros, &args.distro, format)?;
            built.push((
                distro.id.clone(),
                PrebuiltKernel {
                    kernel: kernel.clone(),
                    modules: vec![PrebuiltModule {
                        module: module.clone(),
                        path: ko.clone(),
                        size,
                    }],
                },
            ));
        }
    }
    Ok(built)
}

/// Which of the manifest's modules a `--ko` file is, from its name.
fn module_of(manifest: &Manifest, ko: &Path) -> Result<String> {
    let file = ko.file_name().unwrap_or_default().to_string_lossy();
    let stem = file.split(".ko").next().unwrap_or_default();
    manifest
        .modules
        .iter()
        .find(|m| m.name == stem)
        .map(|m| m.name.clone())
        .ok_or_else(|| {
            format!(
                "{}: the file name names no module of {} (expected one of: {})",
                ko.display(),
                manifest.path.display(),
                manifest
                    .modules
                    .iter()
                    .map(|m| format!("{}.ko.zst", m.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into()
        })
}

/// The distro a format is planned for: the one given for its family, else
/// Debian 12 for .deb and RHEL 9 for .rpm.
fn target_distro<'a>(
    distros: &'a DistroSet,
    given: &[String],
    format: Format,
) -> Result<&'a Distro> {
    let family = match format {
        Format::Deb => PackageFamily::Deb,
        Format::Rpm => PackageFamily::Rpm,
    };
    for id in given {
        let distro = distros.get(id).ok_or_else(|| {
            format!(
                "unknown distro '{id}'; known: {}",
                distros.ids().collect::<Vec<_>>().join(", ")
            )
        })?;
        if distro.family == family {
            return Ok(distro);
        }
    }
    let default = match format {
        Format::Deb => "debian-12",
        Format::Rpm => "rhel-9",
    };
    Ok(distros
        .get(default)
        .ok_or_else(|| format!("the default distro {default} is not defined"))?)
}

fn dedup(formats: &[Format]) -> Vec<Format> {
    let mut out: Vec<Format> = Vec::new();
    for f in formats {
        if !out.contains(f) {
            out.push(*f);
        }
    }
    out
}

fn print_plan(spec: &PackageSpec) {
    println!(
        "{} ({} {} {}, {} files)",
        spec.file_name(),
        spec.name,
        spec.full_version(),
        spec.arch,
        spec.files.len()
    );
    let deps: Vec<String> = spec.depends.iter().map(|d| d.to_debian()).collect();
    println!("  depends: {}", deps.join(", "));
    let mut files: Vec<_> = spec.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in files {
        println!(
            "  {:04o} {:>8} {}{}",
            f.mode,
            f.data.size(),
            f.path,
            if f.conffile { " (conffile)" } else { "" }
        );
    }
    for s in &spec.scripts {
        println!("  script {:?} ({})", s.kind, s.interpreter);
    }
}
