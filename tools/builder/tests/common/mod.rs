//! Set-up the build stage's tests share: kernels chosen from the archive's
//! lists today, an editable copy of the example module whose source the
//! cache has never seen, and `kmodfarm build` run with its records read back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use kmodfarm_model::record::BuildRecord;
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::{kmodfarm, AptIndex, ModuleCopy};

/// Every plain amd64 kernel (`linux-headers-<release>` with flavour
/// `amd64`) in `suite`'s package lists today, oldest first.
pub fn amd64_kernels(suite: &str) -> Vec<KernelRelease> {
    let index = AptIndex::updated(suite).expect("the archive's package lists");
    let mut found: Vec<KernelRelease> = index
        .package_names("linux-headers-")
        .expect("apt-cache pkgnames")
        .iter()
        .filter_map(|name| KernelRelease::parse(name.strip_prefix("linux-headers-")?).ok())
        .filter(|k| k.flavour.as_deref() == Some("amd64"))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The newest `n` plain amd64 kernels of `series` in `suite`'s lists.
pub fn newest(suite: &str, series: &str, n: usize) -> Vec<KernelRelease> {
    let mut found: Vec<KernelRelease> = amd64_kernels(suite)
        .into_iter()
        .filter(|k| k.series() == series)
        .collect();
    assert!(
        found.len() >= n,
        "{suite} lists only {found:?} for {series}"
    );
    found.split_off(found.len() - n)
}

/// The newest kernel series `suite` lists (sid: newer than any range here).
pub fn newest_series(suite: &str) -> String {
    amd64_kernels(suite)
        .pop()
        .unwrap_or_else(|| panic!("{suite} lists no amd64 kernels"))
        .series()
}

/// A copy of the example module (manifest edited by `edits`, see
/// [`ModuleCopy::example_with`]) whose kmfdemo.c starts with a stamp of
/// this run, so the build cache has never seen its source.
pub struct FreshModule {
    pub copy: ModuleCopy,
    /// The first line of kmfdemo.c: a comment naming the test and the time.
    pub stamp: String,
    /// kmfdemo.c as the example module has it.
    pub original: String,
}

impl FreshModule {
    pub fn new(test: &str, edits: &[(&str, &str)]) -> FreshModule {
        let copy = ModuleCopy::example_with(edits).expect("a copy of module/");
        let stamp = format!("/* {test} {:?} */\n", std::time::SystemTime::now());
        let module = FreshModule {
            original: std::fs::read_to_string(copy.dir().join("src/kmfdemo.c")).unwrap(),
            copy,
            stamp,
        };
        module.write_source("");
        module
    }

    pub fn manifest(&self) -> PathBuf {
        self.copy.manifest()
    }

    pub fn source(&self) -> PathBuf {
        self.copy.dir().join("src/kmfdemo.c")
    }

    /// kmfdemo.c as: the stamp, `extra`, the original source.
    pub fn write_source(&self, extra: &str) {
        let text = format!("{}{extra}{}", self.stamp, self.original);
        std::fs::write(self.source(), text).unwrap();
    }
}

/// One `kmodfarm build` run: how it ended, what it said, what it recorded.
pub struct Run {
    pub ok: bool,
    pub stderr: String,
    pub stdout: String,
    /// `records.json` of the output directory; empty when there is none.
    pub records: Vec<BuildRecord>,
    pub seconds: f64,
}

impl Run {
    /// Panics with what kmodfarm said when the run failed.
    #[track_caller]
    pub fn expect_ok(self) -> Run {
        assert!(
            self.ok,
            "kmodfarm build failed:\n{}\n{}\n{:#?}",
            self.stdout, self.stderr, self.records
        );
        self
    }
}

/// `kmodfarm --manifest MANIFEST build --out OUT ARGS...`.
pub fn build(manifest: &Path, out: &Path, args: &[&str]) -> Run {
    let started = Instant::now();
    let mut all = vec![
        "--manifest".to_string(),
        manifest.display().to_string(),
        "build".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = kmodfarm(&all).expect("kmodfarm runs");
    let seconds = started.elapsed().as_secs_f64();
    let records = std::fs::read_to_string(out.join("records.json"))
        .map(|t| serde_json::from_str(&t).expect("records.json parses"))
        .unwrap_or_default();
    Run {
        ok: output.success(),
        stderr: output.stderr,
        stdout: output.stdout,
        records,
        seconds,
    }
}

/// `modinfo -F FIELD FILE` by the host's kmod (it reads .ko.zst itself):
/// a check of kmodfarm's output independent of kmodfarm.
pub fn modinfo(field: &str, file: &Path) -> String {
    let out = std::process::Command::new("modinfo")
        .args(["-F", field])
        .arg(file)
        .output()
        .expect("modinfo runs");
    assert!(
        out.status.success(),
        "modinfo {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A module tree as a new user has it: `src/<file>.c` and a one-line
/// Makefile, its manifest written by `kmodfarm init --name NAME`, and a
/// stamp of this run in the source so the build cache has never seen it.
pub struct InitModule {
    pub dir: tempfile::TempDir,
    pub name: String,
    /// The .c file's name without `.c` (and the .ko's).
    pub file: String,
    body: String,
}

impl InitModule {
    /// `body` is the module's C source after the stamp; `file` names
    /// `src/<file>.c` and the object the Makefile builds.
    pub fn new(name: &str, file: &str, body: &str) -> InitModule {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("src/Makefile"),
            format!("obj-m := {file}.o\n"),
        )
        .unwrap();
        let module = InitModule {
            dir,
            name: name.to_string(),
            file: file.to_string(),
            body: body.to_string(),
        };
        module.restamp("");
        let manifest = module.manifest();
        let args = [
            "init".to_string(),
            "--name".into(),
            name.into(),
            "--out".into(),
            manifest.display().to_string(),
        ];
        kmodfarm(&args).expect("kmodfarm runs").expect_ok();
        module
    }

    /// The manifest `kmodfarm init` wrote.
    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("kmodfarm.toml")
    }

    /// Edits the manifest: `from` must occur in it.
    pub fn edit_manifest(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.manifest()).unwrap();
        assert!(text.contains(from), "{from:?} not in:\n{text}");
        std::fs::write(self.manifest(), text.replacen(from, to, 1)).unwrap();
    }

    /// Writes the source again with a new stamp and `extra` before the
    /// body: a source the cache has never seen.
    pub fn restamp(&self, extra: &str) {
        let stamp = format!(
            "/* kmodfarm builder test {} {:?} */\n",
            self.name,
            std::time::SystemTime::now()
        );
        std::fs::write(
            self.dir.path().join(format!("src/{}.c", self.file)),
            format!("{stamp}{extra}{}", self.body),
        )
        .unwrap();
    }
}

/// A hello-world module with no MODULE_VERSION, as new users write it.
pub const HELLO_C: &str = r#"#include <linux/module.h>
#include <linux/init.h>
static int __init hello_init(void) { pr_info("hello\n"); return 0; }
static void __exit hello_exit(void) { }
module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
"#;

/// The newest Debian 12 kernel of each of its two lines, 6.1 and 6.12, as
/// `--kernel` arguments' releases.
pub fn bookworm_pair() -> (KernelRelease, KernelRelease) {
    (
        newest("bookworm", "6.1", 1).remove(0),
        newest("bookworm", "6.12", 1).remove(0),
    )
}

/// Every file below `dir`, recursively (hidden ones too).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.push(path.clone());
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out
}
