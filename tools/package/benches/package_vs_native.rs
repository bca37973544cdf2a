//! Benchmark (not a test): producing module/'s -dkms .deb and .rpm with
//! kmodfarm against `dpkg-deb --build` and `rpmbuild -bb` of the same
//! content, in the same run. Prints the medians and the ratios.
//!
//!     cargo bench -p kmodfarm-package --bench package_vs_native
//!
//! kmodfarm's side is the whole job from the manifest: render, list the
//! source tree, plan, write both files (xz level 6). The native side gets a
//! staged tree made beforehand (not timed) and only packs it: dpkg-deb with
//! xz 6 (its default), rpmbuild with an xz 6 payload and the distribution's
//! post-install scripts (brp-*: strip, byte-compile) switched off, since
//! there is nothing for them to do in a source package.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kmodfarm_model::{DistroSet, Manifest};
use kmodfarm_package::dkms::{plan_dkms, DkmsInputs};
use kmodfarm_package::{
    write_package, FileData, Format, GeneratedFile, PackageSpec, ScriptKind, SourceTree,
};

const ROUNDS: usize = 15;
const EPOCH: u64 = 1_700_000_000;

fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../module/kmodfarm.toml")
}

/// kmodfarm: manifest → render → plan → both packages in `out`.
fn kmodfarm_both(out: &Path) -> Vec<PackageSpec> {
    let manifest = Manifest::load(&manifest_path()).expect("module/kmodfarm.toml");
    let rendered: Vec<GeneratedFile> = kmodfarm_render::render(&manifest, &Default::default())
        .expect("module/ renders")
        .into_iter()
        .map(GeneratedFile::from)
        .collect();
    let tree = SourceTree::of_manifest(&manifest).expect("module/src lists");
    let distros = DistroSet::builtin();
    let mut specs = Vec::new();
    for (format, distro) in [(Format::Deb, "debian-12"), (Format::Rpm, "rhel-9")] {
        let spec = plan_dkms(&DkmsInputs {
            manifest: &manifest,
            distro: distros.get(distro).unwrap(),
            format,
            rendered: &rendered,
            tree: &tree,
            source_date: EPOCH,
        })
        .expect("plan");
        write_package(&spec, out, None).expect("write");
        specs.push(spec);
    }
    specs
}

/// The spec's files written under `dir`, for the native tools.
fn stage_files(spec: &PackageSpec, dir: &Path) {
    for f in &spec.files {
        let path = dir.join(f.path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = match &f.data {
            FileData::Inline { bytes } => bytes.clone(),
            FileData::Source { path, .. } => std::fs::read(path).unwrap(),
        };
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode)).unwrap();
    }
}

/// A dpkg-deb build tree (files + DEBIAN/) for the .deb spec.
fn stage_deb(spec: &PackageSpec, dir: &Path) {
    stage_files(spec, dir);
    let debian = dir.join("DEBIAN");
    std::fs::create_dir_all(&debian).unwrap();
    let deps: Vec<String> = spec.depends.iter().map(|d| d.to_debian()).collect();
    let mut control = format!(
        "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: {}\nDepends: {}\nSection: kernel\nPriority: optional\nDescription: {}\n",
        spec.name,
        spec.full_version(),
        spec.arch,
        spec.maintainer,
        deps.join(", "),
        spec.summary
    );
    for line in spec.description.lines() {
        let _ = writeln!(control, " {}", if line.is_empty() { "." } else { line });
    }
    std::fs::write(debian.join("control"), control).unwrap();
    let conffiles: String = spec
        .files
        .iter()
        .filter(|f| f.conffile)
        .map(|f| format!("{}\n", f.path))
        .collect();
    std::fs::write(debian.join("conffiles"), conffiles).unwrap();
    for s in &spec.scripts {
        let path = debian.join(s.kind.debian_name());
        std::fs::write(&path, format!("#!{}\n{}", s.interpreter, s.body)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// An rpmbuild top dir with a spec that copies the staged tree.
fn stage_rpm(spec: &PackageSpec, top: &Path) -> PathBuf {
    let stage = top.join("stage");
    stage_files(spec, &stage);
    let mut text = format!(
        "Name: {}\nVersion: {}\nRelease: {}\nSummary: {}\nLicense: {}\nBuildArch: noarch\n",
        spec.name, spec.version, spec.release, spec.summary, spec.license
    );
    for d in &spec.depends {
        let _ = writeln!(text, "Requires: {}", d.alternatives[0].name);
    }
    let _ = write!(
        text,
        "%description\n{}\n%install\ncp -a {}/. %{{buildroot}}/\n%files\n%defattr(-,root,root,-)\n",
        spec.description,
        stage.display()
    );
    for f in &spec.files {
        let _ = writeln!(
            text,
            "{}{}",
            if f.conffile {
                "%config(noreplace) "
            } else {
                ""
            },
            f.path
        );
    }
    for s in &spec.scripts {
        let tag = match s.kind {
            ScriptKind::PostInstall => "%post",
            ScriptKind::PreRemove => "%preun",
            ScriptKind::PostRemove => "%postun",
        };
        let _ = write!(text, "{tag}\n{}\n", s.body);
    }
    let path = top.join("pkg.spec");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn native_both(deb_tree: &Path, rpm_top: &Path, spec_file: &Path, out: &Path) {
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "-z6", "--build"])
        .arg(deb_tree)
        .arg(out.join("native.deb")));
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", rpm_top.display()))
        .args(["--define", "_binary_payload w6.xzdio"])
        .args(["--define", "__os_install_post %{nil}"])
        .args(["--define", "_build_id_links none"])
        .arg("--quiet")
        .arg(spec_file));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let specs = kmodfarm_both(&work.path().join("warmup"));
    let deb_tree = work.path().join("deb-tree");
    stage_deb(&specs[0], &deb_tree);
    let rpm_top = work.path().join("rpmbuild");
    let spec_file = stage_rpm(&specs[1], &rpm_top);
    native_both(&deb_tree, &rpm_top, &spec_file, work.path()); // warm-up

    let (mut ours, mut native) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let out = work.path().join(format!("ours-{round}"));
        let t = Instant::now();
        kmodfarm_both(&out);
        ours.push(t.elapsed());

        let t = Instant::now();
        native_both(&deb_tree, &rpm_top, &spec_file, work.path());
        native.push(t.elapsed());
    }
    let (ours, native) = (median(ours), median(native));
    println!("module/ -dkms .deb + .rpm, median of {ROUNDS} rounds, same run:");
    println!(
        "  kmodfarm (render + plan + write both):   {:>8.1} ms",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "  dpkg-deb --build + rpmbuild -bb (staged): {:>8.1} ms",
        native.as_secs_f64() * 1e3
    );
    println!(
        "  ratio native / kmodfarm: {:.1}x",
        native.as_secs_f64() / ours.as_secs_f64()
    );
}
