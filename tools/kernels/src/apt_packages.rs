//! Debian/Ubuntu `Packages` indexes (deb822 stanzas), read for kernel
//! packages only.
//!
//! A bookworm main index is about 64k stanzas and 50 MB; a few hundred of
//! them are kernel packages. So the scan jumps from one `Package: linux-`
//! stanza to the next with a SIMD substring search and never looks at the
//! other stanzas' fields: only the kept stanzas cost allocations.

use std::borrow::Cow;

use memchr::memmem;

use crate::error::{KernelsError, Result};

/// Name prefix of every package discovery can need: headers (also
/// Ubuntu's `linux-hwe-6.8-headers-…`), kbuild, compiler, images and
/// Ubuntu's `linux-modules-…` (which carries its System.map).
pub const KERNEL_PACKAGE_PREFIX: &str = "linux-";

/// The fields of one stanza that discovery uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// `Depends:`, split into and-groups of alternatives (version constraints dropped).
    pub depends: Vec<Vec<String>>,
    pub provides: Vec<String>,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// Every stanza whose `Package` starts with `prefix`, in file order.
/// `what` names the index in error messages.
pub fn parse_packages(text: &[u8], prefix: &str, what: &str) -> Result<Vec<DebPackage>> {
    let needle = format!("\nPackage: {prefix}");
    let finder = memmem::Finder::new(needle.as_bytes());
    let mut found = Vec::new();
    let first = &needle.as_bytes()[1..];
    if text.starts_with(first) {
        found.push(parse_stanza(text, 0, what)?);
    }
    for hit in finder.find_iter(text) {
        let start = hit + 1;
        // `\nPackage:` inside a stanza would be a field of that stanza, not
        // a new one; only a blank line (or the file start) begins a stanza.
        if hit > 0 && text[hit - 1] != b'\n' {
            return Err(KernelsError::parse(
                what,
                format!(
                    "line {}: a Package field in the middle of a stanza",
                    line_of(text, start)
                ),
            ));
        }
        found.push(parse_stanza(text, start, what)?);
    }
    Ok(found)
}

/// Parse the stanza starting at `start` (its `Package:` line).
fn parse_stanza(text: &[u8], start: usize, what: &str) -> Result<DebPackage> {
    let end = memmem::find(&text[start..], b"\n\n").map_or(text.len(), |e| start + e + 1);
    let stanza = &text[start..end];
    let mut package = DebPackage::default();
    let mut lines = Lines { stanza, pos: 0 };
    while let Some((line_start, name, value)) = lines.next_field() {
        let field_err = |message: String| {
            KernelsError::parse(
                what,
                format!("line {}: {message}", line_of(text, start + line_start)),
            )
        };
        let wanted = matches!(
            name,
            b"Package"
                | b"Version"
                | b"Architecture"
                | b"Depends"
                | b"Provides"
                | b"Filename"
                | b"Size"
                | b"SHA256"
        );
        if !wanted {
            continue;
        }
        let value = std::str::from_utf8(&value)
            .map_err(|_| field_err("the value is not UTF-8".into()))?
            .trim();
        match name {
            b"Package" => package.name = value.to_string(),
            b"Version" => package.version = value.to_string(),
            b"Architecture" => package.architecture = value.to_string(),
            b"Depends" => package.depends = parse_relations(value),
            b"Provides" => {
                package.provides = parse_relations(value).into_iter().flatten().collect()
            }
            b"Filename" => package.filename = value.to_string(),
            b"Size" => {
                package.size = value
                    .parse()
                    .map_err(|_| field_err(format!("Size '{value}' is not a number")))?
            }
            b"SHA256" => package.sha256 = value.to_string(),
            _ => unreachable!("only wanted fields get here"),
        }
    }
    if package.version.is_empty() {
        return Err(KernelsError::parse(
            what,
            format!(
                "line {}: package {} has no Version",
                line_of(text, start),
                package.name
            ),
        ));
    }
    Ok(package)
}

/// One field: where its line starts in the stanza, its name, its value.
type Field<'a> = (usize, &'a [u8], Cow<'a, [u8]>);

/// Fields of one stanza; a field's continuation lines (starting with a
/// space or tab) are joined to it with a space.
struct Lines<'a> {
    stanza: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        if self.pos >= self.stanza.len() {
            return None;
        }
        let start = self.pos;
        let end =
            memchr::memchr(b'\n', &self.stanza[start..]).map_or(self.stanza.len(), |e| start + e);
        self.pos = end + 1;
        Some((start, &self.stanza[start..end]))
    }

    fn next_field(&mut self) -> Option<Field<'a>> {
        loop {
            let (start, line) = self.next_line()?;
            if line.is_empty() || line[0] == b' ' || line[0] == b'\t' || line[0] == b'#' {
                continue; // a continuation of a field we skipped, or a comment
            }
            let colon = memchr::memchr(b':', line)?;
            let name = &line[..colon];
            let mut value = Cow::Borrowed(&line[colon + 1..]);
            while self
                .stanza
                .get(self.pos)
                .is_some_and(|c| *c == b' ' || *c == b'\t')
            {
                let (_, more) = self.next_line().expect("a byte is left");
                let joined = value.to_mut();
                joined.push(b' ');
                joined.extend_from_slice(more.trim_ascii());
            }
            return Some((start, name, value));
        }
    }
}

/// `a (>= 1), b | c (= 2) [amd64], d:any` → `[[a], [b, c], [d]]`.
pub fn parse_relations(value: &str) -> Vec<Vec<String>> {
    value
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alternative| {
                    let name = alternative
                        .trim()
                        .split(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
                        .next()?;
                    let name = name.split(':').next().unwrap_or(name);
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect()
}

/// 1-based line number of byte `offset`, computed only for error messages.
fn line_of(text: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &text[..offset.min(text.len())]).count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by this test: three bookworm-style stanzas, one of them not
    /// a kernel package, with a multi-line Description in between.
    const DEBIAN_BOOKWORM_EXCERPT: &str = "\
Package: linux-headers-6.1.0-47-amd64
Source: linux (6.1.170-3)
Version: 6.1.170-3
Installed-Size: 7321
Maintainer: Debian Kernel Team <kernel-team@example.org>
Architecture: amd64
Depends: linux-headers-6.1.0-47-common (= 6.1.170-3), linux-kbuild-6.1 (>= 6.1.170-3), linux-compiler-gcc-12-x86
Description: Header files for Linux 6.1.0-47-amd64
 This package provides the architecture-specific kernel header files for
 Linux kernel 6.1.0-47-amd64.
Filename: pool/main/l/linux/linux-headers-6.1.0-47-amd64_6.1.170-3_amd64.deb
Size: 1655296
SHA256: 2a40c463e108b1ea3abf2e16e38eb9e27b237693b974b862adde73873c7d85c1

Package: make
Version: 4.3-4.1
Architecture: amd64
Depends: libc6 (>= 2.34)

Package: linux-kbuild-6.1
Version: 6.1.170-3
Architecture: amd64
Provides: linux-kbuild
Depends: libc6 (>= 2.34),
 libssl3 (>= 3.0.0)
Filename: pool/main/l/linux/linux-kbuild-6.1_6.1.170-3_amd64.deb
Size: 1234
SHA256: 00aa
";

    #[test]
    fn debian_bookworm_excerpt_keeps_only_kernel_packages_with_their_fields() {
        let got = parse_packages(DEBIAN_BOOKWORM_EXCERPT.as_bytes(), "linux-", "excerpt").unwrap();
        let names: Vec<&str> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["linux-headers-6.1.0-47-amd64", "linux-kbuild-6.1"]);
        let headers = &got[0];
        assert_eq!(headers.version, "6.1.170-3");
        assert_eq!(headers.architecture, "amd64");
        assert_eq!(
            headers.depends,
            [
                vec!["linux-headers-6.1.0-47-common".to_string()],
                vec!["linux-kbuild-6.1".to_string()],
                vec!["linux-compiler-gcc-12-x86".to_string()],
            ]
        );
        assert_eq!(headers.size, 1655296);
        assert!(headers.filename.ends_with("_6.1.170-3_amd64.deb"));
        assert!(headers.sha256.starts_with("2a40c463"));
        // A Depends folded over two lines still yields both relations.
        assert_eq!(got[1].depends.len(), 2);
        assert_eq!(got[1].depends[1], ["libssl3"]);
        assert_eq!(got[1].provides, ["linux-kbuild"]);
    }

    #[test]
    fn alternatives_and_arch_qualifiers_are_read_as_names() {
        let rel = parse_relations(
            "linux-image-6.12.117+deb12-rt-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-rt-amd64-unsigned (= 6.12.117-1~deb12u1), gcc-12:any, libc6 [amd64]",
        );
        assert_eq!(rel.len(), 3);
        assert_eq!(rel[0][1], "linux-image-6.12.117+deb12-rt-amd64-unsigned");
        assert_eq!(rel[1], ["gcc-12"]);
        assert_eq!(rel[2], ["libc6"]);
    }

    #[test]
    fn a_bad_size_names_the_line() {
        let text = "Package: make\nVersion: 1\n\nPackage: linux-x\nVersion: 1\nSize: big\n";
        let err = parse_packages(text.as_bytes(), "linux-", "Packages.xz").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Packages.xz: line 6: Size 'big' is not a number"
        );
    }

    #[test]
    fn a_stanza_without_version_is_an_error() {
        let err =
            parse_packages(b"Package: linux-x\nArchitecture: all\n", "linux-", "P").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1: package linux-x has no Version"),
            "{err}"
        );
    }
}
