//! The repository the host tests install from, made once per test process:
//! kmfdemo built by real DKMS for both Debian 12 kernels of the shared root,
//! recompressed to .ko.zst as `kmodfarm build` leaves it, packaged by the
//! real `kmodfarm package`, published by the stand-in publisher and served
//! on 127.0.0.1. Two repositories: `prebuilt` has both kernels; `dkms_only`
//! has a failed build for the 6.12 kernel and nothing for 6.1, so hosts
//! take the DKMS route.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kmodfarm_model::record::{DkmsRoute, KernelStatus};
use kmodfarm_model::KernelRelease;
use kmodfarm_tests::stand_in_repo::{kmodfarm_host_deb, GpgKey, RepoServer, StandInRepo};
use kmodfarm_tests::{fixtures, kmodfarm_package, module_dir, Bind, Sandbox};

use super::{host_bin, manifest};

pub struct World {
    pub key: GpgKey,
    pub prebuilt: StandInRepo,
    pub prebuilt_url: String,
    pub dkms_only: StandInRepo,
    pub dkms_only_url: String,
    pub k61: KernelRelease,
    pub k612: KernelRelease,
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
    {
        let root = fixtures::bookworm();
        let files = tempfile::tempdir().unwrap();
        let manifest_path = module_dir().join("kmodfarm.toml");
        let dkms_deb = find(
            &kmodfarm_package(&manifest_path, "deb", &files.path().join("dkms"), &[]),
            "kmfdemo-dkms_",
        );
        let kernels = [&root.k61, &root.k612];
        let modules = built_modules(files.path(), &kernels, &dkms_deb);
        let host_deb = kmodfarm_host_deb(&host_bin(), files.path()).unwrap();
        let key = GpgKey::generate("kmodfarm test repository <repo@example.org>").unwrap();

        let publish = |repo: &StandInRepo,
                       prebuilt: &[(&KernelRelease, &PathBuf)],
                       failed: &[&KernelRelease]| {
            let (path, sha256) = repo.add_deb(&dkms_deb).unwrap();
            let dkms = DkmsRoute {
                distro: "debian-12".into(),
                package: "kmfdemo-dkms".into(),
                version: "1.0.0".into(),
                package_path: path,
                sha256,
            };
            repo.add_deb(&host_deb).unwrap();
            let mut entries = Vec::new();
            for (kernel, zst) in prebuilt {
                let out = files.path().join(format!("prebuilt-{kernel}"));
                let debs = kmodfarm_package(
                    &manifest_path,
                    "deb",
                    &out,
                    &[
                        "--ko",
                        &zst.display().to_string(),
                        "--kernel",
                        kernel.as_str(),
                    ],
                );
                let deb = find(&debs, &format!("kmfdemo-modules-{kernel}_"));
                let entry = repo.entry(kernel, zst, &deb).unwrap();
                repo.publish_lookup(
                    &key,
                    kernel,
                    KernelStatus::Prebuilt {
                        entry: entry.clone(),
                    },
                    Some(dkms.clone()),
                )
                .unwrap();
                entries.push(entry);
            }
            for kernel in failed {
                repo.publish_lookup(
                    &key,
                    kernel,
                    KernelStatus::Failed {
                        reason: "the matrix build failed (stand-in)".into(),
                    },
                    Some(dkms.clone()),
                )
                .unwrap();
            }
            repo.publish_index(&key, entries, vec![dkms]).unwrap();
            repo.publish_apt(&key).unwrap();
        };
        let prebuilt = StandInRepo::new("kmfdemo", "debian-12", "amd64", "bookworm").unwrap();
        publish(
            &prebuilt,
            &[(&root.k61, &modules[0]), (&root.k612, &modules[1])],
            &[],
        );
        let dkms_only = StandInRepo::new("kmfdemo", "debian-12", "amd64", "bookworm").unwrap();
        publish(&dkms_only, &[], &[&root.k612]);
        let prebuilt_url = RepoServer::serve(prebuilt.path()).unwrap().url;
        let dkms_only_url = RepoServer::serve(dkms_only.path()).unwrap().url;
        // install.sh in each repository's root, as publish puts it there.
        for (repo, url) in [(&prebuilt, &prebuilt_url), (&dkms_only, &dkms_only_url)] {
            let script = kmodfarm_render::render_install_sh(&manifest(), url, &key.public).unwrap();
            std::fs::write(repo.path().join("install.sh"), script).unwrap();
        }
        World {
            key,
            prebuilt,
            prebuilt_url,
            dkms_only,
            dkms_only_url,
            k61: root.k61.clone(),
            k612: root.k612.clone(),
            _files: files,
        }
    }
}
