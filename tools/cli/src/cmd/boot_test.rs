//! `kmodfarm boot-test`: boot each kernel of an earlier build's output
//! under QEMU with its module loaded (as `build --boot-test` does), and
//! write the results into its records and reports.

use std::path::PathBuf;

use kmodfarm_builder::events::Event;
use kmodfarm_builder::report;
use kmodfarm_builder::runtime::{self, RuntimeKind};
use kmodfarm_builder::schedule::{self, Options};
use kmodfarm_model::record::BuildOutcome;

use super::build::{GuestArgs, RootArgs};
use super::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The build output to test (holds records.json).
    #[arg(long, short = 'o', value_name = "DIR", default_value = "kmodfarm-out")]
    out: PathBuf,
    #[command(flatten)]
    guests: GuestArgs,
    /// Where apt runs to fetch kernel images and busybox [default: podman if it works, else bwrap].
    #[arg(long, value_name = "podman|docker|bwrap|host")]
    runtime: Option<RuntimeKind>,
    #[command(flatten)]
    roots: RootArgs,
    /// Write every record (with its boot test) here as JSON.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result {
    let manifest = ctx.load_manifest()?;
    let set = ctx.distro_set()?;
    let warn = |message: String| eprintln!("warning: {message}");
    let runtime = runtime::select(args.runtime, &warn)?;
    let options = Options {
        jobs: 1,
        runtime: runtime.as_ref(),
        cache: args.roots.cache(),
        out: args.out.clone(),
        mirror: args.roots.mirror.clone(),
        apt_sources: args.roots.apt_sources.clone(),
        guests: args.guests.options(&set, true)?,
    };
    let events = |event: Event<'_>| match &event {
        Event::BootTesting { key } => eprintln!("{key}: boot test"),
        Event::Root {
            distro, root_id, ..
        } => eprintln!("{distro}: root {root_id}"),
        Event::Finished { record } => {
            if let Some(b) = &record.boot_test {
                let result = if b.passed { "passed" } else { "FAILED" };
                eprintln!(
                    "{}/{}/{} {}: boot test {result} {}",
                    record.distro, record.arch, record.kernel_release, record.module, b.reason
                );
            }
        }
        Event::Warning { message } => eprintln!("warning: {message}"),
        _ => {}
    };
    let records = schedule::boot_test_output(&manifest, &set, &options, &events)?;
    print!("{}", report::table(&records));
    if let Some(path) = &args.report_json {
        std::fs::write(path, serde_json::to_string_pretty(&records)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        let suite = format!(
            "{} {} boot tests",
            manifest.package.name, manifest.package.version
        );
        std::fs::write(path, report::junit(&suite, &records))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let failed: Vec<String> = records
        .iter()
        .filter(|r| {
            r.boot_test.as_ref().is_some_and(|b| !b.passed)
                || (r.boot_test.is_some() && matches!(r.outcome, BuildOutcome::Failed { .. }))
        })
        .map(|r| format!("{}/{}", r.distro, r.kernel_release))
        .collect();
    let tested = records.iter().filter(|r| r.boot_test.is_some()).count();
    if tested == 0 {
        return Err(format!(
            "{}: no built module to boot-test",
            args.out.join("records.json").display()
        )
        .into());
    }
    if !failed.is_empty() && !args.guests.keep_going() {
        return Err(format!(
            "{} boot test(s) failed: {}",
            failed.len(),
            failed.join(", ")
        )
        .into());
    }
    Ok(())
}
