//! The environment DKMS gives a build, for one kernel: which dkms.conf is
//! read, the variables it is read with, the files a -dkms package lays
//! beside the source, and where the build runs. Pure: the build script
//! (`dkms_build.sh`) does what this says in the build root.

use kmodfarm_model::Manifest;

use crate::error::{BuildError, Result};
use crate::plan::Job;

/// The script that builds one kernel the way DKMS does (see its header).
pub const BUILD_SCRIPT: &str = include_str!("dkms_build.sh");

/// The dkms tree and the source tree (DKMS's /var/lib/dkms and /usr/src),
/// inside the job's writable output directory: the root stays read-only.
pub const DKMS_TREE: &str = "dkms";
pub const SOURCE_TREE: &str = "usr-src";

/// One kernel's DKMS build, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkmsBuild {
    /// The dkms.conf read, relative to the source tree.
    pub conf: String,
    /// Whether it is the module's own file (read per kernel) rather than
    /// the one kmodfarm renders from the manifest.
    pub own_conf: bool,
    /// Files laid over the source tree (name, contents, mode): what the
    /// -dkms package installs in /usr/src/<name>-<version> besides the source.
    pub overlay: Vec<(String, String, u32)>,
    /// Environment of the build script.
    pub env: Vec<(String, String)>,
    /// The variables dkms.conf and its commands see, as DKMS sets them
    /// (the guest's paths). PACKAGE_NAME and PACKAGE_VERSION come from the
    /// file itself.
    pub variables: Vec<(String, String)>,
    /// Where PRE_BUILD, MAKE and POST_BUILD run, when the names are known
    /// before reading the file (always, for a rendered dkms.conf).
    pub build_dir: Option<String>,
}

/// `uname -m` for a distro architecture name: what DKMS calls `$arch`.
pub fn dkms_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "i386" => "i686",
        "ppc64el" => "ppc64le",
        other => other,
    }
}

/// Plans `job`'s build from `manifest`, with the job's output directory at
/// `out` in the guest. `rendered` gives the files `kmodfarm render` writes
/// for the manifest (name → contents, mode), for a manifest without its
/// own dkms.conf.
pub fn plan(
    manifest: &Manifest,
    job: &Job,
    out: &str,
    rendered: &dyn Fn() -> Result<Vec<(String, String, u32)>>,
) -> Result<DkmsBuild> {
    let kernel = job.entry.kernel_release.as_str();
    let kdir = format!("/lib/modules/{kernel}/build");
    let arch = dkms_arch(&job.entry.arch).to_string();
    let dkms_tree = format!("{out}/{DKMS_TREE}");
    let variables = vec![
        ("kernelver".to_string(), kernel.to_string()),
        ("kernel_source_dir".into(), kdir.clone()),
        ("dkms_tree".into(), dkms_tree.clone()),
        ("source_tree".into(), format!("{out}/{SOURCE_TREE}")),
        ("arch".into(), arch.clone()),
    ];
    let (conf, own_conf, overlay) = match &manifest.build.dkms_conf {
        Some(conf) => (conf.clone(), true, Vec::new()),
        None => {
            let files: Vec<_> = rendered()?
                .into_iter()
                .filter(|(name, _, _)| name == "dkms.conf" || name == "kmodfarm-prebuild")
                .collect();
            if !files.iter().any(|(n, _, _)| n == "dkms.conf") {
                return Err(BuildError::Other(
                    "the templates render no dkms.conf".into(),
                ));
            }
            ("dkms.conf".to_string(), false, files)
        }
    };
    let build_dir = (!own_conf).then(|| {
        format!(
            "{dkms_tree}/{}/{}/build",
            manifest.package.name, manifest.package.version
        )
    });
    let env = vec![
        ("KVER".to_string(), kernel.to_string()),
        ("KDIR".into(), kdir),
        ("DKMS_ARCH".into(), arch),
        ("CONF".into(), conf.clone()),
    ];
    Ok(DkmsBuild {
        conf,
        own_conf,
        overlay,
        env,
        variables,
        build_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::record::MatrixEntry;
    use kmodfarm_model::{Compression, KernelRelease};
    use std::path::Path;

    fn manifest(build: &str) -> Manifest {
        Manifest::parse(
            Path::new("/m/kmodfarm.toml"),
            &format!(
                r#"[package]
name = "acme"
version = "2.1"
license = "GPL-2.0-only"
summary = "s"
description = "d"
maintainer = "A <a@example.org>"
[[module]]
name = "acme"
[build]
{build}
[targets]
distros = ["debian-12"]
"#
            ),
        )
        .unwrap()
    }

    fn job(kernel: &str) -> Job {
        Job {
            entry: MatrixEntry {
                distro: "debian-12".into(),
                arch: "amd64".into(),
                kernel_release: KernelRelease::parse(kernel).unwrap(),
                flavour: None,
                packages: vec![],
                system_map_package: None,
            },
            compiler: "gcc-12".into(),
            toolchain_image: "x".into(),
            compression: Compression::Zst,
            products: vec![],
        }
    }

    fn rendered() -> Result<Vec<(String, String, u32)>> {
        Ok(vec![
            ("dkms.conf".into(), "PACKAGE_NAME=\"acme\"\n".into(), 0o644),
            ("kmodfarm-prebuild".into(), "#!/bin/sh\n".into(), 0o755),
            ("debian/postinst".into(), "#!/bin/sh\n".into(), 0o755),
        ])
    }

    #[test]
    fn a_manifest_builds_from_its_rendered_dkms_conf_in_dkmss_tree() {
        let plan = plan(&manifest(""), &job("6.1.0-27-amd64"), "/o", &rendered).unwrap();
        assert!(!plan.own_conf);
        assert_eq!(plan.conf, "dkms.conf");
        // What the package puts in /usr/src/acme-2.1 beside the source, no more.
        let names: Vec<&str> = plan.overlay.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["dkms.conf", "kmodfarm-prebuild"]);
        assert_eq!(plan.build_dir.as_deref(), Some("/o/dkms/acme/2.1/build"));
        let vars: Vec<(&str, &str)> = plan
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("kernelver", "6.1.0-27-amd64"),
                ("kernel_source_dir", "/lib/modules/6.1.0-27-amd64/build"),
                ("dkms_tree", "/o/dkms"),
                ("source_tree", "/o/usr-src"),
                ("arch", "x86_64"),
            ]
        );
        assert!(plan
            .env
            .contains(&("KVER".to_string(), "6.1.0-27-amd64".to_string())));
    }

    #[test]
    fn a_module_with_its_own_dkms_conf_reads_it_for_each_kernel() {
        let m = manifest("dkms_conf = \"dkms.conf\"");
        let called = std::cell::Cell::new(false);
        let render = || {
            called.set(true);
            rendered()
        };
        let plan = plan(&m, &job("6.12.9-amd64"), "/o", &render).unwrap();
        assert!(plan.own_conf && plan.overlay.is_empty() && !called.get());
        // The names come from the file, read with this kernel's variables.
        assert_eq!(plan.build_dir, None);
        assert!(plan
            .env
            .contains(&("CONF".to_string(), "dkms.conf".to_string())));
        assert!(plan
            .variables
            .contains(&("kernelver".to_string(), "6.12.9-amd64".to_string())));
    }

    #[test]
    fn dkms_conf_must_stay_in_the_source_tree() {
        for bad in ["../dkms.conf", "/etc/dkms.conf", ""] {
            let text = format!(
                "[package]\nname = \"acme\"\nversion = \"1\"\nlicense = \"MIT\"\nsummary = \"s\"\ndescription = \"d\"\nmaintainer = \"A <a@b.org>\"\n[[module]]\nname = \"acme\"\n[build]\ndkms_conf = \"{bad}\"\n"
            );
            let err = Manifest::parse(Path::new("/m/kmodfarm.toml"), &text).unwrap_err();
            assert!(err.to_string().contains("dkms_conf"), "{bad}: {err}");
        }
    }

    /// Runs the build script with bash on this machine over a tree whose
    /// dkms.conf builds nothing (no BUILT_MODULE_NAME), for `kernel`:
    /// its exit status and the output directory.
    fn run_script(conf: &str, kernel: &str) -> (i32, tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let out = dir.path().join("out");
        std::fs::create_dir_all(src.join("patches")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(src.join("dkms.conf"), conf).unwrap();
        std::fs::write(
            src.join("Makefile"),
            "all:\n\techo \"$(KERNELRELEASE) $(CURDIR) $(WHICH) $$(cat flavour)\" > $(RESULT)\n",
        )
        .unwrap();
        std::fs::write(src.join("flavour"), "plain\n").unwrap();
        std::fs::write(
            src.join("patches/new-api.patch"),
            "--- a/flavour\n+++ b/flavour\n@@ -1 +1 @@\n-plain\n+patched\n",
        )
        .unwrap();
        let pre = src.join("pre.sh");
        std::fs::write(&pre, "#!/bin/sh\necho \"$PWD $*\" > \"$RESULT.pre\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pre, std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = std::process::Command::new("bash")
            .args(["-c", BUILD_SCRIPT])
            .env("SRC", &src)
            .env("OUT", &out)
            .env("KVER", kernel)
            .env("KDIR", format!("/lib/modules/{kernel}/build"))
            .env("DKMS_ARCH", "x86_64")
            .env("CONF", "dkms.conf")
            .env("JOBS", "1")
            .env("RESULT", out.join("result"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code().unwrap_or(-1), dir, text)
    }

    const CONF: &str = r#"PACKAGE_NAME="acme"
PACKAGE_VERSION="2.1"
MAKE[0]="make WHICH=generic-${kernelver%%-*}"
MAKE[1]="make WHICH=new M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build"
MAKE_MATCH[1]="^6\.1[2-9]"
PATCH[0]="new-api.patch"
PATCH_MATCH[0]="^6\.12"
PRE_BUILD="pre.sh ${kernelver} $arch"
BUILD_EXCLUSIVE_KERNEL="^(6\.)"
DEST_MODULE_LOCATION[0]="/updates"
"#;

    #[test]
    fn the_script_picks_make_patches_and_pre_build_per_kernel_as_dkms() {
        let (status, dir, log) = run_script(CONF, "6.12.9-amd64");
        assert_eq!(status, 0, "{log}");
        let out = dir.path().join("out");
        let build = out.join("dkms/acme/2.1/build");
        let result = std::fs::read_to_string(out.join("result")).unwrap();
        // MAKE[1] (its MAKE_MATCH matches), DKMS's KERNELRELEASE, run in the
        // dkms tree's build copy, the 6.12 patch applied to it.
        assert_eq!(
            result.trim(),
            format!("6.12.9-amd64 {} new patched", build.display())
        );
        let pre = std::fs::read_to_string(out.join("result.pre")).unwrap();
        assert_eq!(
            pre.trim(),
            format!("{} 6.12.9-amd64 x86_64", build.display())
        );
        // The source itself is untouched.
        let flavour = std::fs::read_to_string(dir.path().join("src/flavour")).unwrap();
        assert_eq!(flavour, "plain\n");

        let (status, dir, log) = run_script(CONF, "6.1.0-27-amd64");
        assert_eq!(status, 0, "{log}");
        let result = std::fs::read_to_string(dir.path().join("out/result")).unwrap();
        let build = dir.path().join("out/dkms/acme/2.1/build");
        assert_eq!(
            result.trim(),
            format!("6.1.0-27-amd64 {} generic-6.1.0 plain", build.display())
        );
    }

    #[test]
    fn the_script_skips_a_kernel_build_exclusive_excludes_and_fails_a_missing_patch() {
        let (status, dir, log) = run_script(CONF, "5.10.0-30-amd64");
        assert_eq!(status, 77, "{log}");
        let why = std::fs::read_to_string(dir.path().join("out/excluded")).unwrap();
        assert!(why.contains("BUILD_EXCLUSIVE_KERNEL") && why.contains("5.10.0-30-amd64"));
        assert!(!dir.path().join("out/result").exists());

        let conf = CONF.replace("new-api.patch", "gone.patch");
        let (status, _dir, log) = run_script(&conf, "6.12.9-amd64");
        assert_eq!(status, 5, "{log}");
        assert!(log.contains("patch gone.patch"), "{log}");
    }
}
