//! Third-party DKMS trees from Debian's archive, as users arrive with them:
//! each `-dkms` package fetched with `apt-get download`, its
//! `/usr/src/<name>-<version>/` imported with `kmodfarm init --from` and
//! built by `kmodfarm build` for a 6.1 and a 6.12 Debian 12 kernel, and
//! built by real DKMS (Debian 12's 3.0.10) from its own, unmodified
//! dkms.conf for the same kernels. For every tree and kernel both give the
//! same outcome (built, failed, skipped by range), each product's modinfo
//! name and vermagic are right, and the -dkms .deb and .rpm made from each
//! import pass lintian and rpmlint. Prints the table of outcomes (README,
//! "Third-party DKMS trees").
//!
//! DKMS's outcomes are cached per .deb (its sha256), root and kernel under
//! the test cache: they are real DKMS runs, made again when any input
//! changes; kmodfarm's side always runs (its own build cache makes a warm
//! run quick).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use kmodfarm_builder::cache_dir::Lock;
use kmodfarm_model::record::{BuildOutcome, BuildRecord};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::bookworm;
use kmodfarm_tests::{cache_dir, kmodfarm, AptIndex, Sandbox};
use sha2::{Digest, Sha256};

/// The trees: Debian 12's -dkms packages of third-party modules.
const CORPUS: &[&str] = &[
    "acpi-call-dkms",
    "bbswitch-dkms",
    "ddcci-dkms",
    "digimend-dkms",
    "evdi-dkms",
    "gost-crypto-dkms",
    "iptables-netflow-dkms",
    "jool-dkms",
    "openrazer-driver-dkms",
    "openvpn-dco-dkms",
    "rapiddisk-dkms",
    "tp-smapi-dkms",
    "xtables-addons-dkms",
    "lime-forensics-dkms",
];

/// Trees built at once (each kmodfarm build compiles its kernels in turn).
const WORKERS: usize = 2;

const RPMLINTRC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tools/package/rpmlint/dkms.rpmlintrc"
);

/// Beside the project's -dkms filters: the trees' own sources under
/// /usr/src are what DKMS compiles, shipped as their authors wrote them:
/// license headers with the old FSF postal address and a Makefile that
/// starts with `#!/usr/bin/make -f` (make reads it, nothing runs it) are
/// upstream's, not the package's (lime-forensics, tp-smapi, xtables-addons,
/// ddcci). Applied here, not in an rc file: rpmlint reports an rc filter a
/// tree leaves unused as an error of its own.
fn upstream_source_finding(line: &str) -> bool {
    line.contains("E: incorrect-fsf-address /usr/src/")
        || (line.contains("E: non-executable-script /usr/src/")
            && line.ends_with(" 644 /usr/bin/make -f"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Built,
    Failed,
    Skipped,
}

/// One tool's result for one kernel: the outcome, the modules it made
/// (name → (modinfo name, vermagic)), and why, in a line.
#[derive(Debug, Clone)]
struct Result1 {
    outcome: Outcome,
    modules: BTreeMap<String, (String, String)>,
    why: String,
}

/// The .debs, fetched once into the test cache (and kept: the archive
/// replaces versions now and then, and any version is a real tree).
fn debs() -> BTreeMap<String, PathBuf> {
    let dir = cache_dir().join("corpus-debs");
    let _lock = Lock::acquire(&dir).expect("the corpus cache lock");
    let find = |package: &str| -> Option<PathBuf> {
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
    };
    let missing: Vec<&str> = CORPUS
        .iter()
        .copied()
        .filter(|p| find(p).is_none())
        .collect();
    if !missing.is_empty() {
        AptIndex::updated("bookworm")
            .and_then(|index| index.download(&missing, &dir))
            .unwrap_or_else(|e| panic!("apt-get download {missing:?}: {e}"));
    }
    CORPUS
        .iter()
        .map(|p| {
            let deb = find(p)
                .unwrap_or_else(|| panic!("apt-get download left no {p} in {}", dir.display()));
            (p.to_string(), deb)
        })
        .collect()
}

/// The package's `/usr/src/<name>-<version>/`, unpacked under `into`.
fn unpack(deb: &Path, into: &Path) -> PathBuf {
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(into)
        .status()
        .expect("dpkg-deb runs");
    assert!(status.success(), "dpkg-deb -x {}", deb.display());
    let src = into.join("usr/src");
    let mut trees: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("dkms.conf").is_file())
        .collect();
    assert_eq!(trees.len(), 1, "{}: {trees:?}", deb.display());
    trees.remove(0)
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// What the sandbox script prints per kernel.
const DKMS_SCRIPT: &str = r#"
tree=$1; shift
# As a package's postinst does: DKMS reads the name and version from the
# tree's dkms.conf.
dkms add "/usr/src/$tree" >/dev/null
id=$(dkms status | sed -n 's/^\([^,:]*\)[,:].*/\1/p' | head -n 1)
name=${id%%/*}; version=${id#*/}
for k in "$@"; do
    set +e
    out=$(dkms build "$name/$version" -k "$k" 2>&1)
    status=$?
    set -e
    echo "@@kernel $k $status"
    printf '%s\n' "$out" | tail -n 5 | sed 's/^/@@say /'
    log=/var/lib/dkms/$name/$version/build/make.log
    [ ! -f "$log" ] || grep -m 3 -E 'error|Error|No such file' "$log" | sed 's/^/@@log /'
    for ko in /var/lib/dkms/$name/$version/$k/*/module/*.ko*; do
        [ -f "$ko" ] || continue
        echo "@@module $(basename "${ko%%.ko*}") $(modinfo -F name "$ko") $(modinfo -F vermagic "$ko" | cut -d' ' -f1)"
    done
done
"#;

/// Real DKMS on `tree` (its /usr/src directory) for `kernels`, in a fresh
/// sandbox over the Debian 12 DKMS root; cached by the .deb's digest.
fn dkms_side(deb: &Path, tree: &Path, kernels: &[&KernelRelease]) -> BTreeMap<String, Result1> {
    let b = bookworm();
    let key = format!(
        "{}-{}-{}-{}",
        sha256_file(deb),
        &hex::encode(Sha256::digest(DKMS_SCRIPT))[..16],
        b.root.path.file_name().unwrap().to_string_lossy(),
        hex::encode(Sha256::digest(
            kernels
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))
    );
    let cached = cache_dir().join("corpus-dkms").join(format!("{key}.out"));
    if let Ok(text) = std::fs::read_to_string(&cached) {
        return parse_dkms(&text, kernels);
    }
    let sandbox = Sandbox::new(&b.root).expect("a sandbox over the Debian 12 root");
    let dir_name = tree.file_name().unwrap().to_string_lossy().into_owned();
    sandbox
        .copy_in(tree, &format!("/usr/src/{dir_name}"))
        .expect("the tree copies in");
    let mut argv = vec!["bash", "-ec", DKMS_SCRIPT, "corpus", dir_name.as_str()];
    argv.extend(kernels.iter().map(|k| k.as_str()));
    let out = sandbox.run(&argv).expect("the sandbox runs");
    assert!(out.success(), "DKMS script: {}", out.combined());
    let results = parse_dkms(&out.stdout, kernels);
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::write(&cached, &out.stdout).unwrap();
    results
}

/// The DKMS script's `@@` lines, per kernel.
fn parse_dkms(stdout: &str, kernels: &[&KernelRelease]) -> BTreeMap<String, Result1> {
    let mut results: BTreeMap<String, Result1> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("@@") else {
            continue;
        };
        let (tag, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        match tag {
            "kernel" => {
                let (k, status) = rest.split_once(' ').unwrap();
                let outcome = match status {
                    "0" => Outcome::Built,
                    // DKMS 3.0.10: 9 (BUILD_EXCLUSIVE does not match), 77 in later 3.x.
                    "9" | "77" => Outcome::Skipped,
                    _ => Outcome::Failed,
                };
                results.insert(
                    k.to_string(),
                    Result1 {
                        outcome,
                        modules: BTreeMap::new(),
                        why: format!("dkms build exit {status}"),
                    },
                );
                current = Some(k.to_string());
            }
            "module" => {
                let mut w = rest.split_whitespace();
                let (file, name, vermagic) = (
                    w.next().unwrap(),
                    w.next().unwrap_or(""),
                    w.next().unwrap_or(""),
                );
                let r = results.get_mut(current.as_ref().unwrap()).unwrap();
                r.modules
                    .insert(file.to_string(), (name.to_string(), vermagic.to_string()));
            }
            "log" | "say" => {
                let r = results.get_mut(current.as_ref().unwrap()).unwrap();
                if r.outcome != Outcome::Built && (tag == "log" || !r.why.contains(": ")) {
                    r.why = format!("{}: {}", r.why.split(": ").next().unwrap(), rest.trim());
                }
            }
            _ => {}
        }
    }
    assert_eq!(results.len(), kernels.len(), "{stdout}");
    results
}

/// kmodfarm on `tree` (unpacked for this run): `init --from`, `build` for `kernels`,
/// then its -dkms .deb and .rpm through lintian and rpmlint.
fn kmodfarm_side(
    tree: &Path,
    work: &Path,
    kernels: &[&KernelRelease],
) -> (BTreeMap<String, Result1>, String) {
    // In place, in the unpacked package: its links into /usr/share/doc
    // resolve there as on a host that installed it.
    let copy = tree;
    let init = kmodfarm(["init", "--from", copy.to_str().unwrap()]).expect("kmodfarm runs");
    assert!(
        init.success(),
        "init --from {}: {}",
        tree.display(),
        init.combined()
    );
    let manifest = copy.join("kmodfarm.toml");
    let out = work.join("out");
    let mut args = vec![
        "--manifest".to_string(),
        manifest.display().to_string(),
        "build".into(),
        "--runtime".into(),
        "bwrap".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    for k in kernels {
        args.extend(["--kernel".into(), format!("debian-12:{k}")]);
    }
    let build = kmodfarm(&args).expect("kmodfarm runs");
    let records: Vec<BuildRecord> = std::fs::read_to_string(out.join("records.json"))
        .map(|t| serde_json::from_str(&t).expect("records.json parses"))
        .unwrap_or_else(|e| panic!("no records.json ({e}): {}", build.combined()));
    let mut results = BTreeMap::new();
    for k in kernels {
        let mine: Vec<&BuildRecord> = records.iter().filter(|r| &r.kernel_release == *k).collect();
        assert!(!mine.is_empty(), "no record for {k}: {}", build.combined());
        let mut r = Result1 {
            outcome: Outcome::Built,
            modules: BTreeMap::new(),
            why: String::new(),
        };
        for rec in &mine {
            match &rec.outcome {
                BuildOutcome::Built { artifact } | BuildOutcome::Cached { artifact } => {
                    let file = out.join(&artifact.path);
                    r.modules.insert(
                        rec.module.clone(),
                        (modinfo("name", &file), modinfo("vermagic", &file)),
                    );
                }
                BuildOutcome::Failed { reason, log_tail } => {
                    r.outcome = Outcome::Failed;
                    // The compiler's or make's first complaint, else the reason.
                    r.why = log_tail
                        .iter()
                        .find(|l| l.contains("error") || l.contains("Error"))
                        .unwrap_or(reason)
                        .clone();
                }
                BuildOutcome::Skipped { reason } => {
                    if r.outcome == Outcome::Built {
                        r.outcome = Outcome::Skipped;
                    }
                    r.why = reason.clone();
                }
            }
        }
        if r.outcome != Outcome::Built {
            r.modules.clear();
        }
        results.insert(k.to_string(), r);
    }
    // The -dkms packages of the import, through the distributions' linters.
    let mut lint = String::new();
    for format in ["deb", "rpm"] {
        let pkgs = work.join(format!("pkg-{format}"));
        std::fs::create_dir_all(&pkgs).unwrap();
        let made = kmodfarm([
            "-m",
            manifest.to_str().unwrap(),
            "package",
            "--format",
            format,
            "--out",
            pkgs.to_str().unwrap(),
        ])
        .expect("kmodfarm runs");
        assert!(
            made.success(),
            "package --format {format}: {}",
            made.combined()
        );
        for entry in std::fs::read_dir(&pkgs).unwrap().flatten() {
            let file = entry.path();
            let mut cmd = if format == "deb" {
                let mut c = Command::new("lintian");
                c.arg("--no-tag-display-limit");
                c
            } else {
                let mut c = Command::new("rpmlint");
                c.arg("-r").arg(RPMLINTRC);
                c
            };
            let o = cmd.arg(&file).output().expect("the linter runs");
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            for l in text.lines().filter(|l| {
                (l.starts_with("E: ") || l.contains(": E: ")) && !upstream_source_finding(l)
            }) {
                lint.push_str(&format!(
                    "{}: {l}\n",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    (results, lint)
}

/// `modinfo -F FIELD FILE` by the host's kmod; vermagic's first word.
fn modinfo(field: &str, file: &Path) -> String {
    let o = Command::new("modinfo")
        .args(["-F", field])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.split_whitespace().next().unwrap_or("").to_string()
}

fn word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Built => "built",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
    }
}

#[test]
fn third_party_dkms_trees_build_under_kmodfarm_as_under_dkms() {
    let started = Instant::now();
    let b = bookworm();
    let kernels = [&b.k61, &b.k612];
    let debs = debs();
    let queue = Mutex::new(debs.iter().collect::<Vec<_>>());
    let rows = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let Some((package, deb)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let work = tempfile::tempdir().unwrap();
                let tree = unpack(deb, &work.path().join("deb"));
                let dkms = dkms_side(deb, &tree, &kernels);
                let (mine, lint) = kmodfarm_side(&tree, work.path(), &kernels);
                eprintln!("corpus: {package} in {:.0} s", t.elapsed().as_secs_f64());
                rows.lock()
                    .unwrap()
                    .push((package.clone(), tree, dkms, mine, lint));
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut problems = Vec::new();
    let mut table = String::from("| package | tree | kernel | DKMS 3.0.10 | kmodfarm | modules (modinfo name) | why (when not built) |\n|---|---|---|---|---|---|---|\n");
    for (package, tree, dkms, mine, lint) in &rows {
        let tree_name = tree.file_name().unwrap().to_string_lossy();
        if !lint.is_empty() {
            problems.push(format!("{package}: lint errors:\n{lint}"));
        }
        for k in kernels {
            let (d, m) = (&dkms[k.as_str()], &mine[k.as_str()]);
            let series = if k.as_str().starts_with("6.1.") {
                "6.1"
            } else {
                "6.12"
            };
            let names: Vec<String> = m.modules.values().map(|(n, _)| n.clone()).collect();
            let why = if d.outcome == Outcome::Built && m.outcome == Outcome::Built {
                String::new()
            } else {
                format!("DKMS: {}; kmodfarm: {}", d.why, kmodfarm_tests_line(&m.why))
            };
            table.push_str(&format!(
                "| {package} | {tree_name} | {series} | {} | {} | {} | {} |\n",
                word(&d.outcome),
                word(&m.outcome),
                names.join(", "),
                why.replace('|', "\\|")
            ));
            if d.outcome != m.outcome {
                problems.push(format!(
                    "{package} on {k}: DKMS {} ({}), kmodfarm {} ({})",
                    word(&d.outcome),
                    d.why,
                    word(&m.outcome),
                    m.why
                ));
                continue;
            }
            if m.outcome != Outcome::Built {
                continue;
            }
            // The same modules, each named and stamped for its kernel.
            let dkms_names: Vec<&String> = d.modules.values().map(|(n, _)| n).collect();
            let mine_names: Vec<&String> = m.modules.values().map(|(n, _)| n).collect();
            if dkms_names != mine_names {
                problems.push(format!(
                    "{package} on {k}: DKMS made {dkms_names:?}, kmodfarm {mine_names:?}"
                ));
            }
            for (module, (name, vermagic)) in &m.modules {
                if vermagic != k.as_str() || name.replace('-', "_") != module.replace('-', "_") {
                    problems.push(format!(
                        "{package} on {k}: {module} has modinfo name '{name}', vermagic '{vermagic}'"
                    ));
                }
            }
        }
    }
    eprintln!("{table}");
    eprintln!(
        "corpus: {} trees x {} kernels in {:.0} s",
        rows.len(),
        kernels.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{}\n\n{table}", problems.join("\n"));
}

/// A record's reason cut to its first line, for the table.
fn kmodfarm_tests_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_string()
    }
}
