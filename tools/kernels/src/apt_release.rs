//! A suite's `InRelease` (or `Release`) file: which index files the suite
//! has, with the sha256 and size each must have. Reading it is pure; the
//! signature is checked by [`verify_signature`] with the system's gpgv.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{KernelsError, Result};

/// What a Release file promises about one of its index files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDigest {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseFile {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `Valid-Until`, in seconds since the epoch: after it, apt refuses
    /// the file (an old signed file replayed by a mirror would hide updates).
    pub valid_until: Option<u64>,
    /// Path relative to `dists/<suite>/` → its digest.
    pub sha256: BTreeMap<String, IndexDigest>,
}

const SIGNED_HEADER: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_START: &str = "-----BEGIN PGP SIGNATURE-----";

impl ReleaseFile {
    /// Parse a Release or clear-signed InRelease file (the signature is
    /// not checked here). `what` names the file in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let body = signed_body(text, what)?;
        let mut release = ReleaseFile::default();
        let mut in_sha256 = false;
        for (n, line) in body.lines().enumerate() {
            if let Some(entry) = line.strip_prefix(' ') {
                if !in_sha256 {
                    continue;
                }
                let parts: Vec<&str> = entry.split_whitespace().collect();
                let [sha256, size, path] = parts[..] else {
                    return Err(KernelsError::parse(
                        what,
                        format!("line {}: expected '<sha256> <size> <path>'", n + 1),
                    ));
                };
                let size = size.parse().map_err(|_| {
                    KernelsError::parse(what, format!("line {}: bad size '{size}'", n + 1))
                })?;
                release.sha256.insert(
                    path.to_string(),
                    IndexDigest {
                        sha256: sha256.to_ascii_lowercase(),
                        size,
                    },
                );
                continue;
            }
            in_sha256 = false;
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name {
                "SHA256" => in_sha256 = true,
                "Suite" => release.suite = Some(value.trim().to_string()),
                "Codename" => release.codename = Some(value.trim().to_string()),
                "Valid-Until" => {
                    release.valid_until = Some(parse_date(value.trim()).ok_or_else(|| {
                        KernelsError::parse(
                            what,
                            format!(
                                "line {}: Valid-Until '{}' is not a date",
                                n + 1,
                                value.trim()
                            ),
                        )
                    })?)
                }
                _ => {}
            }
        }
        if release.sha256.is_empty() {
            return Err(KernelsError::parse(what, "it has no SHA256 section"));
        }
        Ok(release)
    }

    /// Whether this file describes `suite` (by its Suite or Codename).
    pub fn is_for(&self, suite: &str) -> bool {
        self.suite.as_deref() == Some(suite) || self.codename.as_deref() == Some(suite)
    }

    /// The first of `candidates` (paths below `dists/<suite>/`) the file lists.
    pub fn first_listed<'a>(
        &'a self,
        candidates: &'a [String],
    ) -> Option<(&'a str, &'a IndexDigest)> {
        candidates
            .iter()
            .find_map(|c| self.sha256.get(c).map(|d| (c.as_str(), d)))
    }
}

/// A Release file date, `Sat, 24 Nov 2026 11:22:37 UTC` (RFC 2822 in UTC,
/// as Debian's archive writes it), in seconds since the epoch.
pub fn parse_date(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    // The weekday is optional and says nothing the date does not.
    let words = match words.first() {
        Some(w) if w.ends_with(',') => &words[1..],
        _ => &words[..],
    };
    let [day, month, year, time, zone] = words else {
        return None;
    };
    if !matches!(*zone, "UTC" | "GMT" | "+0000" | "Z") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known
/// era-based count: 400-year eras of 146097 days, years starting in March).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The signed text of a clear-signed message, with dash-escaping undone;
/// an unsigned Release file is returned as it is.
fn signed_body(text: &str, what: &str) -> Result<String> {
    let Some(after_header) = text.trim_start().strip_prefix(SIGNED_HEADER) else {
        return Ok(text.to_string());
    };
    // Armor headers (`Hash: SHA512`) end at the first empty line.
    let (_, rest) = after_header
        .split_once("\n\n")
        .ok_or_else(|| KernelsError::parse(what, "a signed message without a body"))?;
    let (body, _) = rest
        .split_once(SIGNATURE_START)
        .ok_or_else(|| KernelsError::parse(what, "a signed message without its signature"))?;
    Ok(body
        .lines()
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Check a clear-signed InRelease with `gpgv --keyring <keyring>`, the
/// same check apt makes with a source's `Signed-By`.
pub fn verify_signature(in_release: &[u8], keyring: &Path, url: &str) -> Result<()> {
    let mut child = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| KernelsError::Gpgv {
            url: url.to_string(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let write = stdin.write_all(in_release);
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|source| KernelsError::Gpgv {
            url: url.to_string(),
            source,
        })?;
    if output.status.success() && write.is_ok() {
        return Ok(());
    }
    Err(KernelsError::BadSignature {
        url: url.to_string(),
        keyring: keyring.to_path_buf(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by this test in the shape of a Debian suite's InRelease.
    const BOOKWORM_SECURITY_INRELEASE_EXCERPT: &str = "\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: stable-security
Codename: bookworm-security
Components: updates/main updates/contrib
MD5Sum:
 0123456789abcdef0123456789abcdef 1000 main/binary-amd64/Packages.xz
SHA256:
 8F1B2A0000000000000000000000000000000000000000000000000000000001 2048 main/binary-amd64/Packages
 8f1b2a0000000000000000000000000000000000000000000000000000000002 512 main/binary-amd64/Packages.xz
- -dash-escaped: line
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE
-----END PGP SIGNATURE-----
";

    #[test]
    fn reads_the_sha256_section_of_a_signed_release() {
        let release = ReleaseFile::parse(BOOKWORM_SECURITY_INRELEASE_EXCERPT, "InRelease").unwrap();
        assert!(release.is_for("bookworm-security"));
        assert!(release.is_for("stable-security"));
        assert!(!release.is_for("bookworm"));
        assert_eq!(release.sha256.len(), 2);
        let digest = &release.sha256["main/binary-amd64/Packages.xz"];
        assert_eq!(digest.size, 512);
        assert!(digest.sha256.ends_with("02"));
        // Hex is compared in lower case whatever the file wrote.
        assert!(release.sha256["main/binary-amd64/Packages"]
            .sha256
            .starts_with("8f1b2a"));
        let wanted = [
            "main/binary-amd64/Packages.gz".to_string(),
            "main/binary-amd64/Packages.xz".to_string(),
        ];
        assert_eq!(
            release.first_listed(&wanted).unwrap().0,
            "main/binary-amd64/Packages.xz"
        );
    }

    #[test]
    fn release_dates_are_read_as_utc_seconds() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        // Checked with `date -u -d '2026-11-30 11:22:37' +%s`.
        assert_eq!(
            parse_date("Mon, 30 Nov 2026 11:22:37 UTC"),
            Some(1_796_037_757)
        );
        assert_eq!(parse_date("29 Feb 2024 23:59:59 GMT"), Some(1_709_251_199));
        for bad in [
            "Mon, 30 Nov 2026 11:22:37 CET",
            "30 Foo 2026 11:22:37 UTC",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let release = ReleaseFile::parse(
            "Suite: x\nValid-Until: Mon, 30 Nov 2026 11:22:37 UTC\nSHA256:\n 00 1 a\n",
            "Release",
        )
        .unwrap();
        assert_eq!(release.valid_until, Some(1_796_037_757));
    }

    #[test]
    fn a_release_without_sha256_is_rejected() {
        let err = ReleaseFile::parse("Suite: x\nMD5Sum:\n 00 1 a\n", "Release").unwrap_err();
        assert_eq!(err.to_string(), "Release: it has no SHA256 section");
    }
}
