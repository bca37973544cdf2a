//! `rpm_md` against the real createrepo_c: for the same packages (made by
//! the real `kmodfarm package`, plus one made with the `rpm` crate carrying
//! every kind of metadata) our repodata carries the same information.

mod rpm_md_support;

use std::path::Path;
use std::process::Command;

use kmodfarm_publish::rpm_md::{
    repodata, Error, MetadataCompression, Repodata, RepodataOptions, RpmPackage,
};
use rpm_md_support::*;

fn read_all(files: &[std::path::PathBuf]) -> Vec<RpmPackage> {
    files
        .iter()
        .map(|f| RpmPackage::read(f, f.file_name().unwrap().to_str().unwrap()).unwrap())
        .collect()
}

fn write(dir: &Path, data: &Repodata) {
    for (path, bytes) in &data.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn options(compression: MetadataCompression) -> RepodataOptions {
    RepodataOptions {
        compression,
        timestamp: 1_700_000_000,
        // createrepo_c writes each file's mtime: compare like with like.
        clamp_file_times_to: None,
    }
}

#[test]
fn carries_the_same_information_as_createrepo_c() {
    let tmp = tempfile::tempdir().unwrap();
    let files = packages(tmp.path(), &[]);
    assert_eq!(files.len(), 4, "{files:?}");

    let theirs_dir = tmp.path().join("repo");
    run(Command::new("createrepo_c")
        .arg("--no-database")
        .arg(&theirs_dir));
    let theirs = read_repo(&theirs_dir);

    for compression in [MetadataCompression::Gzip, MetadataCompression::Zstd] {
        let ours_dir = tmp.path().join(format!("ours-{compression:?}"));
        write(
            &ours_dir,
            &repodata(&read_all(&files), &options(compression)).unwrap(),
        );
        let ours = read_repo(&ours_dir);

        assert_eq!(
            ours.primary.keys().collect::<Vec<_>>(),
            theirs.primary.keys().collect::<Vec<_>>(),
            "package sets (pkgid = sha256 of the file) differ"
        );
        assert_eq!(ours.primary.len(), 4);
        for (id, theirs_pkg) in &theirs.primary {
            let name = &theirs_pkg["name"][0]["#text"];
            assert_eq!(
                &ours.primary[id], theirs_pkg,
                "primary.xml differs for {name}"
            );
            assert_eq!(
                &ours.filelists[id], &theirs.filelists[id],
                "filelists.xml differs for {name}"
            );
            assert_eq!(
                &ours.other[id], &theirs.other[id],
                "other.xml differs for {name}"
            );
        }
        for (kind, d) in &ours.data {
            let suffix = match compression {
                MetadataCompression::Gzip => ".xml.gz",
                MetadataCompression::Zstd => ".xml.zst",
            };
            let href = &d.child("location").unwrap().attrs["href"];
            assert!(
                href.starts_with("repodata/") && href.ends_with(&format!("-{kind}{suffix}")),
                "{href}"
            );
        }
    }

    // The comparison above covers real content, not two empty documents.
    let rich = theirs
        .primary
        .values()
        .find(|p| p["name"][0]["#text"] == "rich-tool")
        .expect("the rich package is in createrepo_c's output");
    let format = &rich["format"][0];
    assert_eq!(rich["version"][0]["@epoch"], "3");
    assert_eq!(format["rpm:conflicts"][0]["rpm:entry"][0]["@flags"], "LE");
    assert_eq!(format["rpm:obsoletes"][0]["rpm:entry"][0]["@rel"], "1");
    let requires: Vec<&str> = format["rpm:requires"][0]["rpm:entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["@name"].as_str().unwrap())
        .collect();
    // rich-api = 2 and /etc/rich.conf are the package's own: dropped.
    assert_eq!(
        requires,
        ["/bin/sh", "/bin/sh", "glibc", "openssl-libs", "rich-api"]
    );
    assert!(format["file"].as_array().unwrap().len() >= 2, "{format}");
    let kmod = theirs
        .primary
        .values()
        .find(|p| p["name"][0]["#text"] == "kmod-kmfdemo-5.14.0-503.40.1.el9_5.x86_64")
        .unwrap();
    assert_eq!(
        kmod["format"][0]["rpm:requires"][0]["rpm:entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["@name"] == "kernel-uname-r")
            .unwrap()["@rel"],
        "503.40.1.el9_5.x86_64"
    );
}

#[test]
fn the_same_packages_give_the_same_bytes_and_file_times_clamp_to_source_date_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let files = packages(tmp.path(), &[]);
    let opts = RepodataOptions {
        compression: MetadataCompression::Gzip,
        timestamp: 1_700_000_000,
        clamp_file_times_to: Some(1_700_000_000),
    };
    let first = repodata(&read_all(&files), &opts).unwrap();
    // Touch the files: a copy made later must not change the metadata.
    for f in &files {
        std::fs::File::options()
            .append(true)
            .open(f)
            .unwrap()
            .set_modified(std::time::SystemTime::now())
            .unwrap();
    }
    let mut reversed = read_all(&files);
    reversed.reverse();
    let second = repodata(&reversed, &opts).unwrap();
    assert!(first == second, "same packages, different bytes");

    let dir = tmp.path().join("ours");
    write(&dir, &first);
    let read = read_repo(&dir);
    for p in read.primary.values() {
        assert_eq!(p["time"][0]["@file"], "1700000000");
    }
    assert_eq!(read.repomd.child("revision").unwrap().text, "1700000000");

    let later = repodata(
        &read_all(&files),
        &RepodataOptions {
            timestamp: 1_800_000_000,
            ..opts
        },
    )
    .unwrap();
    assert_ne!(later.repomd(), first.repomd());
}

#[test]
fn a_file_that_is_not_a_package_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("notes.rpm");
    std::fs::write(&bogus, "just text\n").unwrap();
    let err = RpmPackage::read(&bogus, "notes.rpm").unwrap_err();
    assert!(matches!(err, Error::NotRpm { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&bogus.display().to_string()),
        "{err}"
    );

    let missing = tmp.path().join("gone.rpm");
    let err = RpmPackage::read(&missing, "gone.rpm").unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let files = packages(tmp.path(), &[]);
    let one = RpmPackage::read(&files[0], "a.rpm").unwrap();
    let err = repodata(&[one.clone(), one], &options(MetadataCompression::Gzip)).unwrap_err();
    assert!(err.to_string().contains("'a.rpm'"), "{err}");
    let err = RpmPackage::read(&files[0], "../a.rpm").unwrap_err();
    assert!(err.to_string().contains("'../a.rpm'"), "{err}");
}

#[test]
fn repodata_of_one_package_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let rich = rich_package(tmp.path());
    let pkg = RpmPackage::read(&rich, "Packages/rich-tool-2.5-7.el9.x86_64.rpm").unwrap();
    let data = repodata(
        &[pkg],
        &RepodataOptions {
            compression: MetadataCompression::Gzip,
            timestamp: 1_700_000_000,
            clamp_file_times_to: Some(1_700_000_000),
        },
    )
    .unwrap();
    let mut text = String::new();
    for (path, bytes) in &data.files {
        text.push_str(&format!("=== {path}\n"));
        text.push_str(&String::from_utf8(decompress(path, bytes)).unwrap());
    }
    insta::assert_snapshot!(text);
}
