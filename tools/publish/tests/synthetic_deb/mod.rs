//! A minimal valid .deb (ar with debian-binary, control.tar.gz,
//! data.tar.gz) for tests and benchmarks that need many packages fast; the
//! real writer is kmodfarm-package's, exercised by its own tests. Also the
//! many-package repositories the benchmark and the large-list tests
//! publish: prebuilt-style .deb and .rpm files, and their targets.

#![allow(dead_code)]

use std::path::Path;

use kmodfarm_publish::inputs::{DebTarget, RpmTarget, Targets};

/// A .deb with `control` as its control file and `files` as its data.
pub fn synthetic_deb(control: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let members: [(&str, Vec<u8>); 3] = [
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.gz",
            tar_gz(&[("./control", control.as_bytes())]),
        ),
        ("data.tar.gz", tar_gz(files)),
    ];
    let mut ar = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8o}{:<10}`\n",
            0,
            0,
            0,
            0o100644,
            data.len()
        );
        ar.extend(header.bytes());
        ar.extend(&data);
        if data.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    ar
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    kmodfarm_publish::apt::gzip(&b.into_inner().unwrap()).unwrap()
}

/// `<name>_1.0.0-1_<arch>.deb` in `dir`, carrying one 4 KiB file.
pub fn write_deb(dir: &Path, name: &str, arch: &str) {
    let control = format!(
        "Package: {name}\nVersion: 1.0.0-1\nArchitecture: {arch}\nMaintainer: b <b@example.org>\nInstalled-Size: 4\nSection: kernel\nPriority: optional\nDescription: synthetic package\n many-package repository test and benchmark\n"
    );
    let payload = vec![0x5au8; 4096];
    let ar = synthetic_deb(&control, &[("./usr/share/bench/payload", &payload)]);
    std::fs::write(dir.join(format!("{name}_1.0.0-1_{arch}.deb")), ar).unwrap();
}

/// `<name>-1.0.0-1.x86_64.rpm` in `dir` (unsigned), carrying one 4 KiB file.
pub fn write_rpm(dir: &Path, name: &str) {
    let pkg =
        rpm::PackageBuilder::new(name, "1.0.0", "GPL-2.0-only", "x86_64", "synthetic package")
            .using_config(rpm::BuildConfig::v4().compression(rpm::CompressionWithLevel::Gzip(1)))
            .with_file_contents(
                vec![0x5au8; 4096],
                rpm::FileOptions::new(format!("/usr/share/bench/{name}")),
            )
            .unwrap()
            .build()
            .unwrap();
    pkg.write_file(dir.join(format!("{name}-1.0.0-1.x86_64.rpm")))
        .unwrap();
}

/// The prebuilt-style package names of kernel `i`: .deb and .rpm.
pub fn kernel_deb_name(i: usize) -> String {
    format!("kmfdemo-modules-6.1.0-{i}-amd64")
}

pub fn kernel_rpm_name(i: usize) -> String {
    format!("kmod-kmfdemo-6.1.0-{i}-amd64")
}

/// `kmfdemo-dkms` plus the packages of kernels `from..to`, .deb and .rpm,
/// into `dir/debs` and `dir/rpms`.
pub fn write_packages(dir: &Path, kernels: std::ops::Range<usize>, with_dkms: bool) {
    let (debs, rpms) = (dir.join("debs"), dir.join("rpms"));
    std::fs::create_dir_all(&debs).unwrap();
    std::fs::create_dir_all(&rpms).unwrap();
    if with_dkms {
        write_deb(&debs, "kmfdemo-dkms", "all");
        write_rpm(&rpms, "kmfdemo-dkms");
    }
    for i in kernels {
        write_deb(&debs, &kernel_deb_name(i), "amd64");
        write_rpm(&rpms, &kernel_rpm_name(i));
    }
}

/// One apt codename (bookworm, amd64) and one yum target (rhel-9, x86_64).
pub fn one_of_each() -> Targets {
    Targets {
        module: "kmfdemo".into(),
        deb: vec![DebTarget {
            distro: "debian-12".into(),
            codename: "bookworm".into(),
            arch: "amd64".into(),
        }],
        rpm: vec![RpmTarget {
            distro: "rhel-9".into(),
            arch: "x86_64".into(),
        }],
        distros: vec!["debian-12".into(), "rhel-9".into()],
        page: Vec::new(),
    }
}
