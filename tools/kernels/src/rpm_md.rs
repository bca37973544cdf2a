//! RPM-MD repositories (RHEL family, SUSE): `repodata/repomd.xml` names the
//! primary index, `primary.xml` lists packages with their requirements.
//! Only packages whose name starts with `kernel` are kept.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::apt_release::IndexDigest;
use crate::error::{KernelsError, Result};

/// The primary index as `repomd.xml` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryLocation {
    /// Relative to the repository root (`repodata/…-primary.xml.zst`).
    pub href: String,
    /// Digest of the file as stored (compressed); sha256 repositories only.
    pub digest: Option<IndexDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmPackage {
    pub name: String,
    pub arch: String,
    pub epoch: String,
    pub version: String,
    pub release: String,
    /// Names from `rpm:requires` with the `ver-rel` they pin (`EQ`), if any.
    pub requires: Vec<(String, Option<String>)>,
    pub location: String,
}

impl RpmPackage {
    /// `name-version-release.arch`, what dnf and zypper install exactly.
    pub fn nevra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }
}

fn attr(e: &BytesStart, key: &[u8], what: &str) -> Result<Option<String>> {
    for a in e.attributes() {
        let a = a.map_err(|err| KernelsError::parse(what, err.to_string()))?;
        if a.key.local_name().as_ref() == key {
            let value = a
                .unescape_value()
                .map_err(|err| KernelsError::parse(what, err.to_string()))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

fn xml_error(what: &str, reader: &Reader<&[u8]>, err: impl std::fmt::Display) -> KernelsError {
    KernelsError::parse(
        what,
        format!("XML error at byte {}: {err}", reader.buffer_position()),
    )
}

/// Find the `primary` data entry of a `repomd.xml`.
pub fn parse_repomd(xml: &[u8], what: &str) -> Result<PrimaryLocation> {
    let mut reader = Reader::from_reader(xml);
    let mut in_primary = false;
    let mut in_checksum: Option<String> = None;
    let mut found = PrimaryLocation {
        href: String::new(),
        digest: None,
    };
    let (mut sha256, mut size) = (None, None);
    let mut in_size = false;
    loop {
        match reader
            .read_event()
            .map_err(|e| xml_error(what, &reader, e))?
        {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"data" => in_primary = attr(&e, b"type", what)?.as_deref() == Some("primary"),
                b"checksum" if in_primary => in_checksum = attr(&e, b"type", what)?,
                b"size" if in_primary => in_size = true,
                b"location" if in_primary => {
                    found.href = attr(&e, b"href", what)?.unwrap_or_default()
                }
                _ => {}
            },
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| xml_error(what, &reader, e))?
                    .trim()
                    .to_string();
                if in_checksum.as_deref() == Some("sha256") {
                    sha256 = Some(text);
                } else if in_size {
                    size = text.parse::<u64>().ok();
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"checksum" => in_checksum = None,
                b"size" => in_size = false,
                b"data" if in_primary => break,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if found.href.is_empty() {
        return Err(KernelsError::parse(what, "it names no primary index"));
    }
    if let (Some(sha256), Some(size)) = (sha256, size) {
        found.digest = Some(IndexDigest {
            sha256: sha256.to_ascii_lowercase(),
            size,
        });
    }
    Ok(found)
}

/// Every `kernel*` package of a `primary.xml`.
pub fn parse_primary(xml: &[u8], what: &str) -> Result<Vec<RpmPackage>> {
    let mut reader = Reader::from_reader(xml);
    let mut packages = Vec::new();
    let mut current: Option<RpmPackage> = None;
    // Which child element's text we are reading.
    let mut field: Option<&'static str> = None;
    let mut in_requires = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(what, &reader, e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                match (local.as_ref(), current.as_mut()) {
                    (b"package", _) => current = Some(RpmPackage::default()),
                    (b"name", Some(_)) if !in_requires => field = Some("name"),
                    (b"arch", Some(_)) => field = Some("arch"),
                    (b"version", Some(p)) => {
                        p.epoch = attr(e, b"epoch", what)?.unwrap_or_else(|| "0".into());
                        p.version = attr(e, b"ver", what)?.unwrap_or_default();
                        p.release = attr(e, b"rel", what)?.unwrap_or_default();
                    }
                    (b"location", Some(p)) => {
                        p.location = attr(e, b"href", what)?.unwrap_or_default()
                    }
                    (b"requires", Some(_)) => in_requires = !empty,
                    (b"entry", Some(p)) if in_requires => {
                        let name = attr(e, b"name", what)?.unwrap_or_default();
                        let pinned = match attr(e, b"flags", what)?.as_deref() {
                            Some("EQ") => {
                                let ver = attr(e, b"ver", what)?.unwrap_or_default();
                                Some(match attr(e, b"rel", what)? {
                                    Some(rel) => format!("{ver}-{rel}"),
                                    None => ver,
                                })
                            }
                            _ => None,
                        };
                        p.requires.push((name, pinned));
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let (Some(f), Some(p)) = (field, current.as_mut()) {
                    let text = t.decode().map_err(|e| xml_error(what, &reader, e))?;
                    match f {
                        "name" => p.name = text.trim().to_string(),
                        _ => p.arch = text.trim().to_string(),
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"package" => {
                    if let Some(p) = current.take() {
                        if p.name.starts_with("kernel") {
                            packages.push(p);
                        }
                    }
                }
                b"requires" => in_requires = false,
                b"name" | b"arch" => field = None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by this test: a Rocky Linux 9 style repomd.xml.
    const ROCKY9_REPOMD_EXCERPT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>8</revision>
  <data type="filelists">
    <checksum type="sha256">1111111111111111111111111111111111111111111111111111111111111111</checksum>
    <location href="repodata/1111-filelists.xml.gz"/>
    <size>900</size>
  </data>
  <data type="primary">
    <checksum type="sha256">ABCDEF0000000000000000000000000000000000000000000000000000000000</checksum>
    <open-checksum type="sha256">2222222222222222222222222222222222222222222222222222222222222222</open-checksum>
    <location href="repodata/abcdef-primary.xml.zst"/>
    <timestamp>1747000000</timestamp>
    <size>4321</size>
    <open-size>99999</open-size>
  </data>
</repomd>"#;

    #[test]
    fn rocky9_repomd_excerpt_names_the_primary_index_and_its_digest() {
        let primary = parse_repomd(ROCKY9_REPOMD_EXCERPT.as_bytes(), "repomd.xml").unwrap();
        assert_eq!(primary.href, "repodata/abcdef-primary.xml.zst");
        let digest = primary.digest.unwrap();
        assert_eq!(digest.size, 4321, "the stored size, not the open-size");
        assert!(digest.sha256.starts_with("abcdef00"));
    }

    #[test]
    fn a_repomd_without_primary_is_an_error() {
        let err = parse_repomd(b"<repomd><data type=\"other\"/></repomd>", "r.xml").unwrap_err();
        assert_eq!(err.to_string(), "r.xml: it names no primary index");
    }

    #[test]
    fn primary_requires_keep_pinned_versions() {
        let xml = r#"<metadata xmlns:rpm="http://linux.duke.edu/metadata/rpm"><package type="rpm">
<name>kernel-default-devel</name><arch>x86_64</arch>
<version epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
<location href="x86_64/kernel-default-devel-6.4.0-150600.23.53.1.x86_64.rpm"/>
<format><rpm:requires><rpm:entry name="kernel-devel" flags="EQ" epoch="0" ver="6.4.0" rel="150600.23.53.1"/>
<rpm:entry name="kernel-macros"/></rpm:requires></format></package>
<package type="rpm"><name>bash</name><arch>x86_64</arch><version epoch="0" ver="4.4" rel="1"/></package></metadata>"#;
        let got = parse_primary(xml.as_bytes(), "primary.xml").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].nevra(),
            "kernel-default-devel-6.4.0-150600.23.53.1.x86_64"
        );
        assert_eq!(
            got[0].requires,
            [
                (
                    "kernel-devel".to_string(),
                    Some("6.4.0-150600.23.53.1".to_string())
                ),
                ("kernel-macros".to_string(), None)
            ]
        );
    }
}
