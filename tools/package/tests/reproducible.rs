//! Same inputs and SOURCE_DATE_EPOCH → the same bytes, whatever the paths,
//! file mtimes or time of day; and every timestamp and owner in the
//! archives is the fixed one.

mod common;

use std::io::Read;
use std::time::{Duration, SystemTime};

use common::*;
use kmodfarm_package::{write_package, Format};

/// Sets every file of the project's source tree to `when`.
fn touch_all(p: &Project, when: SystemTime) {
    for entry in walkdir::WalkDir::new(p.src()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let f = std::fs::File::options()
                .append(true)
                .open(entry.path())
                .unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

#[test]
fn two_builds_in_different_places_are_byte_identical() {
    for format in [Format::Deb, Format::Rpm] {
        let a = project();
        let b = project();
        touch_all(
            &a,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
        );
        touch_all(&b, SystemTime::now());
        let kernel = match format {
            Format::Deb => KERNEL,
            Format::Rpm => "5.14.0-503.40.1.el9_5.x86_64",
        };
        for (spec_a, spec_b) in [
            (dkms_spec(&a, format), dkms_spec(&b, format)),
            (
                prebuilt_spec(&a, format, kernel),
                prebuilt_spec(&b, format, kernel),
            ),
        ] {
            let first = write_package(&spec_a, &a.out(), None).unwrap();
            std::thread::sleep(Duration::from_millis(1100)); // a different second
            let second = write_package(&spec_b, &b.out(), None).unwrap();
            let (x, y) = (
                std::fs::read(&first).unwrap(),
                std::fs::read(&second).unwrap(),
            );
            assert!(
                x == y,
                "{} and {} differ (sizes {} and {})",
                first.display(),
                second.display(),
                x.len(),
                y.len()
            );
        }
    }
}

#[test]
fn a_different_source_date_gives_different_bytes() {
    // The identity above is not an accident of ignoring the date.
    let p = project();
    let mut spec = dkms_spec(&p, Format::Deb);
    let mut one = Vec::new();
    kmodfarm_package::write_deb(&spec, &mut one).unwrap();
    spec.source_date += 1;
    let mut two = Vec::new();
    kmodfarm_package::write_deb(&spec, &mut two).unwrap();
    assert_ne!(one, two);
}

/// Reads an ar archive's members: (name, mtime, uid, gid, data).
fn ar_members(bytes: &[u8]) -> Vec<(String, u64, u32, u32, Vec<u8>)> {
    assert!(bytes.starts_with(b"!<arch>\n"), "not an ar archive");
    let mut members = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let h = std::str::from_utf8(&bytes[at..at + 60]).unwrap();
        let num = |r: std::ops::Range<usize>| h[r].trim().to_string();
        let size: usize = num(48..58).parse().unwrap();
        let data = bytes[at + 60..at + 60 + size].to_vec();
        members.push((
            num(0..16),
            num(16..28).parse().unwrap(),
            num(28..34).parse().unwrap(),
            num(34..40).parse().unwrap(),
            data,
        ));
        at += 60 + size + size % 2;
    }
    members
}

#[test]
fn every_deb_header_carries_the_source_date_and_root() {
    let p = project();
    let deb = dkms_package(&p, Format::Deb);
    let members = ar_members(&std::fs::read(deb).unwrap());
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar.xz"]);
    for (name, mtime, uid, gid, data) in &members {
        assert_eq!((*mtime, *uid, *gid), (EPOCH, 0, 0), "ar member {name}");
        if name.ends_with(".tar.xz") {
            let mut tar = Vec::new();
            liblzma::read::XzDecoder::new(&data[..])
                .read_to_end(&mut tar)
                .unwrap();
            let mut archive = tar::Archive::new(&tar[..]);
            let mut paths = Vec::new();
            for entry in archive.entries().unwrap() {
                let entry = entry.unwrap();
                let h = entry.header();
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                assert_eq!(h.mtime().unwrap(), EPOCH, "{name}: {path}");
                assert_eq!(
                    (h.uid().unwrap(), h.gid().unwrap()),
                    (0, 0),
                    "{name}: {path}"
                );
                assert_eq!(h.username().unwrap(), Some("root"), "{name}: {path}");
                assert_eq!(h.groupname().unwrap(), Some("root"), "{name}: {path}");
                assert!(path.starts_with("./"), "{name}: {path}");
                paths.push(path);
            }
            // Sorted by path components: a directory, then what is in it.
            let key = |p: &String| -> Vec<String> {
                p.trim_start_matches("./")
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            };
            let mut sorted = paths.clone();
            sorted.sort_by_key(key);
            assert_eq!(paths, sorted, "{name} is not in sorted order");
            assert!(paths.len() > 3, "{name}: {paths:?}");
        }
    }
}

#[test]
fn rpm_build_time_is_the_source_date() {
    let p = project();
    let rpm = dkms_package(&p, Format::Rpm);
    let out = run(tool("rpm")
        .args(["-qp", "--qf", "%{BUILDTIME} %{BUILDHOST}\n"])
        .arg(&rpm));
    assert_eq!(out.trim(), format!("{EPOCH} kmodfarm"));
}
