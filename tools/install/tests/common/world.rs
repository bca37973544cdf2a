//! The repository the host tests install from, made once per test process:
//! kmfdemo built by real DKMS for both Debian 12 kernels of the shared root,
//! recompressed to .ko.zst as `kmodfarm build` leaves it, packaged by the
//! real `kmodfarm package`, published by the real `kmodfarm publish` (with
//! `--url`, so install.sh is the one publish writes) and served on
//! 127.0.0.1, together with kmodfarm-host as cargo-deb and
//! cargo-generate-rpm package it (common/build.rs). The build records beside the modules are a stand-in for
//! `kmodfarm build`'s (see `write_build_output`). Two repositories:
//! `prebuilt` has both kernels; `dkms_only` has a failed build for the 6.12
//! kernel and nothing for 6.1, so hosts take the DKMS route.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::stand_in_repo::RepoServer;
use kmodfarm_tests::{
    fixtures, kmodfarm_bin, kmodfarm_package, module_dir, write_build_output, Bind, Sandbox,
    StandInBuild,
};

use super::build::{host_packages, HostPackages};

pub struct World {
    /// The repository's public key (armored), as install.sh pins it.
    pub key: String,
    pub prebuilt_url: String,
    pub dkms_only_url: String,
    pub k61: KernelRelease,
    pub k612: KernelRelease,
    /// kmodfarm-host's packages, published into both repositories.
    pub host: HostPackages,
    /// The directory served at `prebuilt_url`.
    pub prebuilt_repo: PathBuf,
    _files: tempfile::TempDir,
}

fn find(debs: &[PathBuf], prefix: &str) -> PathBuf {
    debs.iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* among {debs:?}"))
        .clone()
}

/// kmfdemo built by DKMS in a sandbox for each kernel, as .ko.zst files.
fn built_modules(files: &Path, kernels: &[&KernelRelease], dkms_deb: &Path) -> Vec<PathBuf> {
    let root = fixtures::bookworm();
    let sandbox = Sandbox::new(&root.root).unwrap();
    sandbox.copy_in(dkms_deb, "/root/kmfdemo-dkms.deb").unwrap();
    sandbox.sh_ok("apt-get install -y -o Dpkg::Use-Pty=0 /root/kmfdemo-dkms.deb");
    let out = Bind {
        host: files.to_path_buf(),
        guest: "/out".into(),
        writable: true,
    };
    kernels
        .iter()
        .map(|kernel| {
            // DKMS may have left this kernel alone at install (no image yet).
            let script = format!(
                "dkms status -m kmfdemo -k {kernel} | grep -q installed || dkms install kmfdemo/1.0.0 -k {kernel}\n\
                 f=$(ls /lib/modules/{kernel}/updates/dkms/kmfdemo.ko* | head -n 1)\n\
                 case $f in *.xz) xz -dc \"$f\" ;; *.zst) zstd -dc \"$f\" ;; *) cat \"$f\" ;; esac > /out/kmfdemo-{kernel}.ko"
            );
            sandbox.run_with(&["sh", "-ec", &script], std::slice::from_ref(&out)).unwrap().expect_ok();
            let ko = files.join(format!("kmfdemo-{kernel}.ko"));
            let zst = files.join(format!("{kernel}/kmfdemo.ko.zst"));
            std::fs::create_dir_all(zst.parent().unwrap()).unwrap();
            let plain = std::fs::read(&ko).unwrap();
            assert!(plain.starts_with(b"\x7fELF"), "{} is not a module", ko.display());
            let status = Command::new("zstd").args(["-q", "-19", "-f"]).arg(&ko).arg("-o").arg(&zst).status().unwrap();
            assert!(status.success());
            zst
        })
        .collect()
}

/// The shared world; made once, and a failure to make it is reported by
/// every test that needs it without trying again.
pub fn world() -> &'static World {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    let made = WORLD.get_or_init(|| {
        std::panic::catch_unwind(make).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match made {
        Ok(world) => world,
        Err(why) => panic!("the test repository could not be made: {why}"),
    }
}

fn make() -> World {
    let root = fixtures::bookworm();
    let files = tempfile::tempdir().unwrap();
    let manifest_path = module_dir().join("kmodfarm.toml");
    let dkms_deb = find(
        &kmodfarm_package(&manifest_path, "deb", &files.path().join("dkms"), &[]),
        "kmfdemo-dkms_",
    );
    let kernels = [&root.k61, &root.k612];
    let modules = built_modules(files.path(), &kernels, &dkms_deb);
    let host = host_packages(files.path());
    let keys = files.path().join("key");
    let made = Command::new(kmodfarm_bin())
        .args(["keygen", "--name", "kmfdemo", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(made.status.success(), "kmodfarm keygen: {made:?}");

    // One repository: its packages and build output, published by the
    // real binary into a directory already served (install.sh names the
    // address).
    let publish = |name: &str, builds: &[(&KernelRelease, StandInBuild<'_>)]| -> String {
        let pk = files.path().join(format!("{name}-packages"));
        std::fs::create_dir_all(&pk).unwrap();
        for file in [&dkms_deb, &host.deb, &host.rpm] {
            std::fs::copy(file, pk.join(file.file_name().unwrap())).unwrap();
        }
        for (kernel, build) in builds {
            if let StandInBuild::Built(zst) = build {
                let zst = zst.display().to_string();
                kmodfarm_package(
                    &manifest_path,
                    "deb",
                    &pk,
                    &["--ko", &zst, "--kernel", kernel.as_str()],
                );
            }
        }
        let out = files.path().join(format!("{name}-build"));
        write_build_output(&out, "kmfdemo", "1.0.0", "debian-12", "amd64", builds);
        let repo = files.path().join(format!("{name}-repo"));
        std::fs::create_dir_all(&repo).unwrap();
        let url = RepoServer::serve(&repo).unwrap().url;
        let published = Command::new(kmodfarm_bin())
            .arg("-m")
            .arg(&manifest_path)
            .args(["publish", "--repo"])
            .arg(&repo)
            .arg("--key")
            .arg(keys.join("kmfdemo.secret.asc"))
            .arg("--packages")
            .arg(&pk)
            .arg("--builds")
            .arg(&out)
            .args(["--valid-for", "7d", "--url", &url])
            .output()
            .unwrap();
        assert!(
            published.status.success(),
            "kmodfarm publish ({name}): {published:?}"
        );
        url
    };
    let prebuilt_url = publish(
        "prebuilt",
        &[
            (&root.k61, StandInBuild::Built(&modules[0])),
            (&root.k612, StandInBuild::Built(&modules[1])),
        ],
    );
    let dkms_only_url = publish(
        "dkms-only",
        &[(
            &root.k612,
            StandInBuild::Failed("the matrix build failed (stand-in)"),
        )],
    );
    World {
        key: std::fs::read_to_string(keys.join("kmfdemo.asc")).unwrap(),
        prebuilt_url,
        dkms_only_url,
        k61: root.k61.clone(),
        k612: root.k612.clone(),
        host,
        prebuilt_repo: files.path().join("prebuilt-repo"),
        _files: files,
    }
}
