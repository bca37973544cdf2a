//! The .deb writer.
//!
//! Why by hand: the `debian-packaging` crate, the obvious base, does not
//! compile in this dependency graph (its async-tar pulls an xattr release
//! that fails against today's libc, and its xz2/lzma-sys binding clashes with
//! the `liblzma` binding the `rpm` crate links; see DESIGN.md). A .deb is
//! small and fully specified by deb(5): an `ar` archive holding
//! `debian-binary` ("2.0\n"), `control.tar.xz` and `data.tar.xz`. Writing it
//! here with `tar` and `liblzma` (the same lzma binding `rpm` uses) also
//! gives us full control over reproducibility: one timestamp, root:root,
//! sorted entries.

use std::collections::BTreeMap;
use std::io::Write;

use md5::{Digest, Md5};

use crate::content::{load_files, LoadedFile};
use crate::error::{PackageError, Result};
use crate::spec::{Format, PackageSpec};
use crate::tarball::TarWriter;

/// xz preset for both members: dpkg-deb's default is 6 as well.
const XZ_PRESET: u32 = 6;

/// Writes `spec` as a .deb to `out`.
pub fn write_deb(spec: &PackageSpec, mut out: impl Write) -> Result<()> {
    assert_eq!(
        spec.format,
        Format::Deb,
        "write_deb needs a spec planned for .deb"
    );
    let files = load_files(spec)?;
    let data = xz(&data_tar(spec, &files)?)?;
    let control = xz(&control_tar(spec, &files)?)?;

    let mtime = spec.source_date;
    let mut ar = Vec::with_capacity(control.len() + data.len() + 256);
    ar.extend_from_slice(b"!<arch>\n");
    ar_member(&mut ar, "debian-binary", mtime, b"2.0\n");
    ar_member(&mut ar, "control.tar.xz", mtime, &control);
    ar_member(&mut ar, "data.tar.xz", mtime, &data);
    out.write_all(&ar).map_err(PackageError::Output)?;
    out.flush().map_err(PackageError::Output)
}

/// One member of a common-format `ar` archive (a 60-byte header, the data,
/// and a newline pad to an even offset), as dpkg-deb writes them.
fn ar_member(out: &mut Vec<u8>, name: &str, mtime: u64, data: &[u8]) {
    let header = format!(
        "{name:<16}{mtime:<12}{uid:<6}{gid:<6}{mode:<8o}{size:<10}`\n",
        uid = 0,
        gid = 0,
        mode = 0o100644,
        size = data.len()
    );
    debug_assert_eq!(header.len(), 60);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// xz at preset 6 with the dictionary cut to the input's size: a larger
/// one finds nothing more, but preset 6's 8 MiB dictionary costs tens of
/// milliseconds to set up per member, most of the time for a small package.
fn xz(bytes: &[u8]) -> Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    let lzma_err = |e: liblzma::stream::Error| PackageError::Output(e.into());
    let mut options = LzmaOptions::new_preset(XZ_PRESET).map_err(lzma_err)?;
    let wanted = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    options.dict_size(wanted.clamp(4096, 8 << 20));
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64).map_err(lzma_err)?;
    let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    encoder.write_all(bytes).map_err(PackageError::Output)?;
    encoder.finish().map_err(PackageError::Output)
}

/// What goes in data.tar: every file, every parent directory of a file, and
/// the directories the spec owns, keyed by path components so a directory
/// sorts before its contents.
enum DataEntry<'a> {
    Dir,
    File(&'a LoadedFile),
}

fn data_tar(spec: &PackageSpec, files: &[LoadedFile]) -> Result<Vec<u8>> {
    let mut entries: BTreeMap<Vec<&str>, DataEntry> = BTreeMap::new();
    let dirs = spec.directories.iter().map(String::as_str);
    let parents = files.iter().flat_map(|f| ancestors(&f.path));
    for dir in dirs.chain(parents) {
        entries.insert(components(dir), DataEntry::Dir);
    }
    for file in files {
        entries.insert(components(&file.path), DataEntry::File(file));
    }

    let mut tar = TarWriter::new(Vec::new(), spec.source_date);
    tar.dir("./", 0o755).map_err(PackageError::Output)?;
    for (parts, entry) in &entries {
        let name = format!("./{}", parts.join("/"));
        match entry {
            DataEntry::Dir => tar.dir(&format!("{name}/"), 0o755),
            DataEntry::File(f) => tar.file(&name, f.mode, &f.bytes),
        }
        .map_err(PackageError::Output)?;
    }
    tar.finish().map_err(PackageError::Output)
}

fn control_tar(spec: &PackageSpec, files: &[LoadedFile]) -> Result<Vec<u8>> {
    // Names sort the same way dpkg-deb orders them: alphabetically.
    let mut members: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    members.insert("control".into(), (0o644, control_file(spec, files).into()));
    members.insert("md5sums".into(), (0o644, md5sums(files).into()));
    let conffiles: String = files
        .iter()
        .filter(|f| f.conffile)
        .map(|f| format!("{}\n", f.path))
        .collect();
    if !conffiles.is_empty() {
        members.insert("conffiles".into(), (0o644, conffiles.into()));
    }
    for script in &spec.scripts {
        let text = format!(
            "#!{}\n{}{}",
            script.interpreter,
            script.body,
            if script.body.ends_with('\n') {
                ""
            } else {
                "\n"
            }
        );
        members.insert(script.kind.debian_name().into(), (0o755, text.into()));
    }

    let mut tar = TarWriter::new(Vec::new(), spec.source_date);
    tar.dir("./", 0o755).map_err(PackageError::Output)?;
    for (name, (mode, bytes)) in &members {
        tar.file(&format!("./{name}"), *mode, bytes)
            .map_err(PackageError::Output)?;
    }
    tar.finish().map_err(PackageError::Output)
}

/// The `control` file (deb-control(5)), fields in dpkg's usual order.
pub fn control_file(spec: &PackageSpec, files: &[LoadedFile]) -> String {
    let mut c = String::new();
    let mut field = |name: &str, value: &str| {
        if !value.is_empty() {
            c.push_str(&format!("{name}: {value}\n"));
        }
    };
    let list = |deps: &[crate::spec::Dependency]| {
        deps.iter()
            .map(|d| d.to_debian())
            .collect::<Vec<_>>()
            .join(", ")
    };
    field("Package", &spec.name);
    field("Version", &spec.full_version());
    field("Architecture", &spec.arch);
    field("Maintainer", &spec.maintainer);
    field(
        "Installed-Size",
        &installed_size_kib(spec, files).to_string(),
    );
    field("Depends", &list(&spec.depends));
    field("Provides", &list(&spec.provides));
    field("Conflicts", &list(&spec.conflicts));
    field("Section", &spec.section);
    field("Priority", "optional");
    field("Homepage", spec.homepage.as_deref().unwrap_or(""));
    field(
        "Description",
        &description(&spec.summary, &spec.description),
    );
    c
}

/// `summary` on the first line, then the long description indented by one
/// space, blank lines written as " ." (deb-control(5)).
fn description(summary: &str, long: &str) -> String {
    let mut text = summary.trim().to_string();
    for line in long.trim().lines() {
        let line = line.trim_end();
        text.push_str(if line.is_empty() { "\n ." } else { "\n " });
        text.push_str(line);
    }
    text
}

/// dpkg-gencontrol's estimate: each file's size rounded up to KiB, plus one
/// KiB per directory.
fn installed_size_kib(spec: &PackageSpec, files: &[LoadedFile]) -> u64 {
    let mut dirs: Vec<&str> = files.iter().flat_map(|f| ancestors(&f.path)).collect();
    dirs.extend(spec.directories.iter().map(String::as_str));
    dirs.sort_unstable();
    dirs.dedup();
    let file_kib: u64 = files
        .iter()
        .map(|f| (f.bytes.len() as u64).div_ceil(1024))
        .sum();
    file_kib + dirs.len() as u64
}

fn md5sums(files: &[LoadedFile]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| {
            let digest = hex::encode(Md5::digest(&f.bytes));
            format!("{digest}  {}\n", f.path.trim_start_matches('/'))
        })
        .collect();
    lines.sort();
    lines.concat()
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// Every proper ancestor directory of an absolute path, "/" excluded.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(i, _)| &path[..i])
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_marks_blank_lines_and_indents() {
        let d = description("Short", "First para\nline two\n\nSecond para\n");
        assert_eq!(d, "Short\n First para\n line two\n .\n Second para");
    }

    #[test]
    fn ancestors_exclude_root_and_the_path_itself() {
        let got: Vec<&str> = ancestors("/usr/src/a-1/x.c").collect();
        assert_eq!(got, ["/usr", "/usr/src", "/usr/src/a-1"]);
    }

    #[test]
    fn ar_headers_are_sixty_bytes_and_pad_odd_members() {
        let mut out = Vec::new();
        ar_member(&mut out, "debian-binary", 7, b"abc");
        assert_eq!(out.len(), 60 + 4);
        assert!(out.starts_with(b"debian-binary   7           0     0     100644  3         `\n"));
    }
}
