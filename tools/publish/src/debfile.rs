//! Reading a .deb's `control` file: the `ar` container (deb(5)), its
//! `control.tar.{xz,gz,zst}` or plain `control.tar`, and the `./control`
//! member. The package crate writes .debs by hand for the reasons in its
//! `deb.rs`; this is the reading half, small enough to own too.

use std::io::Read;
use std::path::Path;

/// A control paragraph's fields, in file order (continuation lines kept
/// inside the value, joined with "\n").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub fields: Vec<(String, String)>,
}

impl Control {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses one deb822 paragraph.
    pub fn parse(text: &str) -> Result<Control, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                break;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some((_, value)) = fields.last_mut() else {
                    return Err(format!("line {}: continuation before any field", n + 1));
                };
                value.push('\n');
                value.push_str(line);
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!(
                    "line {}: not a 'Field: value' line: {line:?}",
                    n + 1
                ));
            };
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
        if fields.is_empty() {
            return Err("empty control file".into());
        }
        Ok(Control { fields })
    }
}

/// Reads the control paragraph of the .deb in `bytes` (`path` only names
/// it in messages).
pub fn read_control(path: &Path, bytes: &[u8]) -> Result<Control, String> {
    let _ = path;
    let members = ar_members(bytes)?;
    match members.first() {
        Some((name, data)) if *name == "debian-binary" && data.starts_with(b"2.") => {}
        _ => return Err("not a Debian package: no 'debian-binary' 2.x member first".into()),
    }
    let (name, data) = members
        .iter()
        .find(|(name, _)| name.starts_with("control.tar"))
        .ok_or("no control.tar member")?;
    let tar = decompress(name, data)?;
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().map_err(|e| format!("{name}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{name}: {e}"))?;
        let entry_path = entry.path().map_err(|e| format!("{name}: {e}"))?;
        if entry_path.as_os_str() == "./control" || entry_path.as_os_str() == "control" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("{name}: ./control: {e}"))?;
            return Control::parse(&text).map_err(|e| format!("{name}: ./control: {e}"));
        }
    }
    Err(format!("{name} has no ./control"))
}

fn decompress(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let result = match name {
        "control.tar" => {
            out.extend_from_slice(data);
            Ok(0)
        }
        "control.tar.xz" => liblzma::read::XzDecoder::new(data).read_to_end(&mut out),
        "control.tar.gz" => flate2::read::GzDecoder::new(data).read_to_end(&mut out),
        "control.tar.zst" => {
            zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out))
        }
        other => return Err(format!("unsupported control member {other}")),
    };
    result.map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

/// The members of a common-format `ar` archive, in order.
fn ar_members(bytes: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let rest = bytes
        .strip_prefix(b"!<arch>\n")
        .ok_or("not an ar archive (no !<arch> magic)")?;
    let mut members = Vec::new();
    let mut offset = 0usize;
    while offset < rest.len() {
        let header = rest
            .get(offset..offset + 60)
            .ok_or("truncated ar member header")?;
        if &header[58..60] != b"`\n" {
            return Err(format!("bad ar member header at byte {}", offset + 8));
        }
        let name = std::str::from_utf8(&header[..16])
            .map_err(|_| "ar member name is not UTF-8")?
            .trim_end()
            .trim_end_matches('/');
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("bad ar member size")?;
        let start = offset + 60;
        let data = rest
            .get(start..start + size)
            .ok_or_else(|| format!("ar member {name} is truncated"))?;
        members.push((name, data));
        offset = start + size + (size % 2);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_keeps_continuation_lines_and_order() {
        let c = Control::parse("Package: a\nVersion: 1-1\nDescription: short\n long\n .\n more\n")
            .unwrap();
        assert_eq!(c.get("package"), Some("a"));
        assert_eq!(c.get("Description"), Some("short\n long\n .\n more"));
        assert_eq!(c.fields[1].0, "Version");
    }

    #[test]
    fn garbage_is_not_a_package() {
        let e = read_control(Path::new("x.deb"), b"hello world").unwrap_err();
        assert!(e.contains("not an ar archive"), "{e}");
        let e = read_control(Path::new("x.deb"), b"!<arch>\nshort").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
