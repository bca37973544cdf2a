//! The two documentation files Debian policy requires of every binary
//! package (§12.5, §12.7): /usr/share/doc/<pkg>/copyright and
//! changelog.Debian.gz. Both are derived from the manifest, so they are as
//! reproducible as everything else.

use kmodfarm_model::text::civil_from_days;

use std::io::Write;

use kmodfarm_model::manifest::PackageMeta;

use crate::spec::{FileData, FileEntry};

/// The two files for package `package` (named in the paths).
pub fn files(package: &str, meta: &PackageMeta, source_date: u64) -> Vec<FileEntry> {
    let doc = format!("/usr/share/doc/{package}");
    vec![
        FileEntry {
            path: format!("{doc}/copyright"),
            mode: 0o644,
            data: FileData::inline(copyright(meta, source_date)),
            conffile: false,
        },
        FileEntry {
            path: format!("{doc}/changelog.Debian.gz"),
            mode: 0o644,
            data: FileData::inline(gzip(changelog(package, meta, source_date).as_bytes())),
            conffile: false,
        },
    ]
}

/// A machine-readable copyright file (DEP-5). The manifest names no
/// copyright year, so the year of the package's source date stands in
/// (a notice with a year is what lintian and readers look for).
fn copyright(meta: &PackageMeta, source_date: u64) -> String {
    let mut text = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {}\n",
        meta.name
    );
    if let Some(home) = &meta.homepage {
        text.push_str(&format!("Source: {home}\n"));
    }
    text.push_str(&format!(
        "\nFiles: *\nCopyright: {} {}\nLicense: {}\n",
        civil_from_days((source_date / 86_400) as i64).0,
        meta.maintainer,
        meta.license
    ));
    match common_license(&meta.license) {
        Some(file) => text.push_str(&format!(
            " On Debian systems, the complete text of this license can be found in\n \
             /usr/share/common-licenses/{file}.\n"
        )),
        None => text.push_str(" See the module's source in /usr/src for the license text.\n"),
    }
    text
}

/// The file in /usr/share/common-licenses holding an SPDX license's text.
fn common_license(spdx: &str) -> Option<&'static str> {
    let base = spdx.trim_end_matches("-only").trim_end_matches("-or-later");
    Some(match base {
        "GPL-2.0" | "GPL-2" => "GPL-2",
        "GPL-3.0" | "GPL-3" => "GPL-3",
        "LGPL-2.1" => "LGPL-2.1",
        "LGPL-3.0" | "LGPL-3" => "LGPL-3",
        "Apache-2.0" => "Apache-2.0",
        "MPL-2.0" => "MPL-2.0",
        _ => return None,
    })
}

fn changelog(package: &str, meta: &PackageMeta, source_date: u64) -> String {
    format!(
        "{package} ({}-{}) unstable; urgency=medium\n\n  * Packaged by kmodfarm from {} {}.\n\n -- {}  {}\n",
        meta.version,
        meta.release,
        meta.name,
        meta.version,
        meta.maintainer,
        rfc2822(source_date)
    )
}

/// gzip at maximum compression with no name and mtime 0 in its header, as
/// dh_compress does (`gzip -9n`), so the bytes depend on the text only.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` for a Unix time (UTC).
pub fn rfc2822(secs: u64) -> String {
    kmodfarm_model::text::rfc2822(secs, "+0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_date_r() {
        // `date -u -R -d @0`, `@951782400` (a leap day) and `@1700000000`.
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
    }

    #[test]
    fn gpl_points_at_common_licenses() {
        assert_eq!(common_license("GPL-2.0-only"), Some("GPL-2"));
        assert_eq!(common_license("GPL-2.0-or-later"), Some("GPL-2"));
        assert_eq!(common_license("Proprietary"), None);
    }
}
