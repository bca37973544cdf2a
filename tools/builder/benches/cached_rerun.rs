//! Benchmark (not a test): a rerun of `kmodfarm build` over 100 kernels
//! whose results are all in the cache must take under 2 s (issue 4).
//!
//! There are not 100 Debian kernels to compile here in reasonable time, so
//! this seeds a private cache the way 100 finished builds would leave it —
//! a header layer record and a cache entry (a real 70 KiB .ko.zst, its
//! record and log) per kernel, under the keys kmodfarm computes — and then
//! times the real binary doing the rerun: hashing the source tree, finding
//! the roots, looking up 100 keys, installing 100 kernel directories into
//! the output and writing the records. Needs the debian-12 root
//! (`kmodfarm image build debian-12`), shared through a symlink.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kmodfarm_builder::image::RootRecipe;
use kmodfarm_builder::plan::{manifest_build_section, CacheInputs};
use kmodfarm_builder::{cache_dir, source, sources};
use kmodfarm_model::record::{Artifact, BuildOutcome, BuildRecord, SymbolSource, SCHEMA_VERSION};
use kmodfarm_model::{Compression, DistroSet, KernelRelease, Manifest};
use kmodfarm_tests::{kmodfarm_bin, module_dir};
use sha2::{Digest, Sha256};

const KERNELS: usize = 100;

fn main() {
    let manifest = Manifest::load(&module_dir().join("kmodfarm.toml")).unwrap();
    let set = DistroSet::builtin();
    let distro = set.get("debian-12").unwrap();
    let text = sources::sources_for(distro, None, Path::new("/etc/apt/sources.list.d")).unwrap();
    let real_cache = cache_dir::default_cache_dir();
    let root = RootRecipe::for_distro(distro, text)
        .unwrap()
        .find(&real_cache)
        .expect("run `kmodfarm image build debian-12` first");

    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(real_cache.join("roots"), cache.join("roots")).unwrap();
    let digest = source::digest(&manifest.source_path()).unwrap();
    let build_section = manifest_build_section(&manifest);
    // Any real compressed module stands for the product.
    let body: Vec<u8> = (0..72_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&body));

    let mut args: Vec<String> = Vec::new();
    for i in 0..KERNELS {
        let kernel = KernelRelease::parse(&format!("6.1.0-{}-amd64", 1000 + i)).unwrap();
        let layer_dir = cache.join("headers/debian-12").join(kernel.as_str());
        std::fs::create_dir_all(layer_dir.join("tree")).unwrap();
        let packages = vec![format!("linux-headers-{kernel}=6.1.{i}-1")];
        let layer = serde_json::json!({ "kernel": kernel.as_str(), "packages": packages });
        std::fs::write(layer_dir.join("layer.json"), layer.to_string()).unwrap();
        let key = CacheInputs {
            source_digest: &digest,
            manifest_build: build_section.clone(),
            kernel: kernel.as_str(),
            header_packages: &packages,
            root_id: &root.id,
        }
        .key();
        let entry = cache.join("artifacts").join(&key);
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("kmfdemo.ko.zst"), &body).unwrap();
        std::fs::write(entry.join("build.log"), "a build log\n".repeat(300)).unwrap();
        let path = format!("debian-12/amd64/{kernel}/kmfdemo.ko.zst");
        let record = BuildRecord {
            schema_version: SCHEMA_VERSION,
            module: "kmfdemo".into(),
            version: manifest.package.version.clone(),
            distro: "debian-12".into(),
            arch: "amd64".into(),
            kernel_release: kernel.clone(),
            outcome: BuildOutcome::Built {
                artifact: Artifact {
                    path,
                    module: "kmfdemo".into(),
                    sha256: sha.clone(),
                    size: body.len() as u64,
                    compression: Compression::Zst,
                    signed: false,
                    vermagic: format!("{kernel} SMP preempt mod_unload modversions"),
                    module_version: "1.0.0".into(),
                },
            },
            inputs: vec![],
            symbol_source: SymbolSource::NotNeeded,
            compiler: Some(root.compiler.clone()),
            toolchain_image: Some("debian:12".into()),
            cache_key: key.clone(),
            duration_ms: 30_000,
            log: Some(format!("debian-12/amd64/{kernel}/build.log")),
            boot_test: None,
        };
        std::fs::write(
            entry.join("records.json"),
            serde_json::to_string(&vec![record]).unwrap(),
        )
        .unwrap();
        args.extend(["--kernel".into(), format!("debian-12:{kernel}")]);
    }

    for run in 1..=3 {
        let out = work.path().join(format!("out{run}"));
        let started = Instant::now();
        let output = Command::new(kmodfarm_bin())
            .arg("--manifest")
            .arg(module_dir().join("kmodfarm.toml"))
            .args(["build", "--runtime", "bwrap", "--cache-dir"])
            .arg(&cache)
            .arg("--out")
            .arg(&out)
            .args(&args)
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let cached = stdout.lines().filter(|l| l.contains(" cached ")).count();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(cached, KERNELS, "{stdout}");
        println!("rerun {run}: {KERNELS} kernels, all cached, {seconds:.3} s (target < 2 s)");
    }
}
