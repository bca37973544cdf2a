//! `kmodfarm lint`: check the manifest's source tree, the templates and the
//! dkms.conf they render, or any dkms.conf given with --dkms-conf.

use std::path::PathBuf;

use kmodfarm_render::{Finding, RenderOptions, Severity};

use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// A directory of *.tera files that replace the built-in templates of the same name.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Lint this dkms.conf (for example an imported tree's) instead of the manifest's rendering.
    #[arg(long, value_name = "FILE")]
    dkms_conf: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let findings = match &args.dkms_conf {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            kmodfarm_render::lint_dkms_conf(path, &text, None)
        }
        None => {
            let manifest = ctx.load_manifest()?;
            let opts = RenderOptions {
                templates_dir: args.templates,
            };
            kmodfarm_render::lint(&manifest, &opts)
        }
    };
    report(&findings)
}

fn report(findings: &[Finding]) -> Result {
    for f in findings {
        println!("{f}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if errors > 0 {
        return Err(format!("lint found {errors} error(s) and {warnings} warning(s)").into());
    }
    if warnings > 0 {
        eprintln!("lint: no errors, {warnings} warning(s)");
    } else {
        eprintln!("lint: clean");
    }
    Ok(())
}
