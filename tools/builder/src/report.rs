//! Reports of a run: the summary table's rows, and JUnit XML for CI (a
//! test case per kernel and module; failures carry the log's tail, skips
//! their reason).

use kmodfarm_model::text::escape_markup;

use kmodfarm_model::record::{BuildOutcome, BuildRecord};

/// One row of the final table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kernel: String,
    pub result: &'static str,
    pub time: String,
    pub size: String,
    /// Failure or skip reason, empty otherwise.
    pub note: String,
}

pub fn status(outcome: &BuildOutcome) -> &'static str {
    match outcome {
        BuildOutcome::Built { .. } => "built",
        BuildOutcome::Cached { .. } => "cached",
        BuildOutcome::Failed { .. } => "FAILED",
        BuildOutcome::Skipped { .. } => "skipped",
    }
}

/// A reason on one line: its first line, and its last when it has more
/// (where tools put the error itself: apt's `E: …`).
fn note(reason: &str) -> String {
    let lines: Vec<&str> = reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

pub fn rows(records: &[BuildRecord]) -> Vec<Row> {
    records
        .iter()
        .map(|r| {
            let (size, note) = match &r.outcome {
                BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => (
                    format!("{:.1} KiB", artifact.size as f64 / 1024.0),
                    match &r.boot_test {
                        Some(b) if b.passed => format!(
                            "boot test passed ({:.1}s, {})",
                            b.duration_ms as f64 / 1000.0,
                            b.accel
                        ),
                        Some(b) => format!(
                            "boot test FAILED (kept by --keep-going): {}",
                            note(&b.reason)
                        ),
                        None => String::new(),
                    },
                ),
                BuildOutcome::Failed { reason, .. } | BuildOutcome::Skipped { reason } => {
                    ("-".into(), note(reason))
                }
            };
            Row {
                kernel: format!("{}/{} {}", r.distro, r.kernel_release, r.module),
                result: status(&r.outcome),
                time: format!("{:.1}s", r.duration_ms as f64 / 1000.0),
                size,
                note,
            }
        })
        .collect()
}

/// The table as aligned text.
pub fn table(records: &[BuildRecord]) -> String {
    let rows = rows(records);
    let width = rows
        .iter()
        .map(|r| r.kernel.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:<width$}  {:<7}  {:>7}  {:>10}  note\n",
        "kernel", "result", "time", "size"
    );
    for r in rows {
        let line = format!(
            "{:<width$}  {:<7}  {:>7}  {:>10}  {}",
            r.kernel, r.result, r.time, r.size, r.note
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether any kernel failed.
pub fn any_failed(records: &[BuildRecord]) -> bool {
    records
        .iter()
        .any(|r| matches!(r.outcome, BuildOutcome::Failed { .. }))
}

/// JUnit XML: one `<testsuite>` named `suite`, a `<testcase>` per record,
/// and one more per boot test (`<kernel> <module> boot-test`, its console
/// tail in the failure).
pub fn junit(suite: &str, records: &[BuildRecord]) -> String {
    let boots: Vec<&BuildRecord> = records.iter().filter(|r| r.boot_test.is_some()).collect();
    let boot_failures = boots
        .iter()
        .filter(|r| r.boot_test.as_ref().is_some_and(|b| !b.passed))
        .count();
    let failures = records
        .iter()
        .filter(|r| matches!(r.outcome, BuildOutcome::Failed { .. }))
        .count()
        + boot_failures;
    let skipped = records
        .iter()
        .filter(|r| matches!(r.outcome, BuildOutcome::Skipped { .. }))
        .count();
    let total: f64 = records.iter().map(|r| r.duration_ms as f64 / 1000.0).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">\n",
        escape_markup(suite),
        records.len() + boots.len()
    ));
    for r in records {
        let name = format!("{} {}", r.kernel_release, r.module);
        let class = format!("{}.{}", r.distro, r.arch);
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape_markup(&class),
            escape_markup(&name),
            r.duration_ms as f64 / 1000.0
        );
        match &r.outcome {
            BuildOutcome::Built { .. } | BuildOutcome::Cached { .. } => xml.push_str(&format!("{head}/>\n")),
            BuildOutcome::Skipped { reason } => xml.push_str(&format!("{head}>\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape_markup(reason))),
            BuildOutcome::Failed { reason, log_tail } => xml.push_str(&format!(
                "{head}>\n      <failure message=\"{}\" type=\"build\">{}</failure>\n    </testcase>\n",
                escape_markup(reason.lines().next().unwrap_or("")),
                escape_markup(&log_tail.join("\n"))
            )),
        }
    }
    for r in boots {
        let boot = r.boot_test.as_ref().expect("filtered");
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape_markup(&format!("{}.{}", r.distro, r.arch)),
            escape_markup(&format!("{} {} boot-test", r.kernel_release, r.module)),
            boot.duration_ms as f64 / 1000.0
        );
        if boot.passed {
            xml.push_str(&format!("{head}/>\n"));
        } else {
            xml.push_str(&format!(
                "{head}>\n      <failure message=\"{}\" type=\"boot-test\">{}</failure>\n    </testcase>\n",
                escape_markup(&boot.reason),
                escape_markup(&boot.console_tail.join("\n"))
            ));
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::record::{Artifact, SymbolSource, SCHEMA_VERSION};
    use kmodfarm_model::{Compression, KernelRelease};

    fn rec(kernel: &str, outcome: BuildOutcome) -> BuildRecord {
        BuildRecord {
            schema_version: SCHEMA_VERSION,
            module: "hello".into(),
            version: "1.0".into(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: KernelRelease::parse(kernel).unwrap(),
            outcome,
            inputs: vec![],
            symbol_source: SymbolSource::NotNeeded,
            compiler: None,
            toolchain_image: None,
            cache_key: String::new(),
            duration_ms: 1500,
            log: None,
            boot_test: None,
        }
    }

    fn sample() -> Vec<BuildRecord> {
        let artifact = Artifact {
            path: "p".into(),
            module: "hello".into(),
            sha256: "0".into(),
            size: 2048,
            compression: Compression::Zst,
            signed: false,
            vermagic: "6.1.0-41-amd64 SMP".into(),
            module_version: "1.0".into(),
        };
        vec![
            rec("6.1.0-41-amd64", BuildOutcome::Built { artifact }),
            rec(
                "6.12.57+deb12-amd64",
                BuildOutcome::Failed {
                    reason: "build failed: <error> & more".into(),
                    log_tail: vec![
                        "hello.c:3: error: 'x' undeclared".into(),
                        "\u{1b}[0m".into(),
                    ],
                },
            ),
            rec(
                "5.10.0-35-amd64",
                BuildOutcome::Skipped {
                    reason: "5.10.0-35-amd64 is outside the supported range 6.1 to 6.12".into(),
                },
            ),
        ]
    }

    #[test]
    fn junit_has_a_case_per_kernel_with_failures_and_skips() {
        insta::assert_snapshot!(junit("kmfdemo 1.0", &sample()));
    }

    #[test]
    fn the_table_shows_result_time_size_and_why() {
        insta::assert_snapshot!(table(&sample()));
        assert!(any_failed(&sample()));
        assert!(!any_failed(&sample()[..1]));
    }
}
