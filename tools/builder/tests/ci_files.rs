//! The pipelines users copy from ci/ call kmodfarm with options it has:
//! every `--flag` they pass to a subcommand appears in that subcommand's
//! --help, and the GitLab matrix block is what `kmodfarm matrix` prints.

use kmodfarm_tests::{kmodfarm, repo_root};
use std::collections::BTreeMap;

/// The subcommands a pipeline may call (prose mentioning kmodfarm is not a call).
const SUBCOMMANDS: &[&str] = &[
    "kernels", "build", "matrix", "merge", "image", "package", "render", "lint",
];

/// (subcommand, flags) of every kmodfarm call in `text`, joining the
/// continuation lines of a command.
fn calls(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ").replace("\n      --", " --");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut words = line
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''));
        while let Some(word) = words.by_ref().next() {
            // `kmodfarm`, `$(kmodfarm`, and sudo's `"$(command -v kmodfarm)"`.
            if word == "kmodfarm" || word.ends_with("(kmodfarm") || word.ends_with("kmodfarm)") {
                let rest: Vec<&str> = words.by_ref().collect();
                let Some(sub) = rest.first().filter(|s| SUBCOMMANDS.contains(s)) else {
                    break;
                };
                let flags = rest
                    .iter()
                    .filter(|w| w.starts_with("--"))
                    .map(|w| w.split('=').next().unwrap().to_string())
                    .collect();
                out.push((sub.to_string(), flags));
                break;
            }
        }
    }
    out
}

fn help(sub: &str) -> String {
    kmodfarm([sub, "--help"])
        .expect("kmodfarm runs")
        .expect_ok()
        .stdout
}

#[test]
fn every_kmodfarm_call_in_the_pipelines_uses_real_options() {
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    for file in ["ci/github/kmodfarm.yml", "ci/gitlab/.gitlab-ci.yml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let found = calls(&text);
        let subs: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
        for wanted in ["kernels", "build", "merge"] {
            assert!(
                subs.contains(&wanted),
                "{file} never runs kmodfarm {wanted}: {subs:?}"
            );
        }
        for (sub, flags) in found {
            let text = helps.entry(sub.clone()).or_insert_with(|| help(&sub));
            for flag in flags {
                assert!(
                    text.contains(&format!("{flag} "))
                        || text.contains(&format!("{flag}\n"))
                        || text.contains(&format!("{flag} <")),
                    "{file}: kmodfarm {sub} has no {flag}"
                );
            }
        }
    }
}

#[test]
fn the_gitlab_matrix_block_is_what_kmodfarm_matrix_prints() {
    let block = kmodfarm([
        "matrix",
        "--format",
        "gitlab",
        "--shards",
        "4",
        "--kernel",
        "debian-12:6.1.0-41-amd64",
    ])
    .expect("kmodfarm runs")
    .expect_ok()
    .stdout;
    let pipeline = std::fs::read_to_string(repo_root().join("ci/gitlab/.gitlab-ci.yml")).unwrap();
    let indented: String = block.lines().map(|l| format!("  {l}\n")).collect();
    assert!(
        pipeline.contains(&indented),
        "ci/gitlab/.gitlab-ci.yml lacks\n{indented}"
    );
}
