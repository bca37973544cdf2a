//! Kernel release strings (`uname -r`) of every distro scheme, their order,
//! and the supported range of a module.
//!
//! Schemes seen in the field:
//! - Ubuntu `5.15.0-143-generic`: upstream version, ABI number, flavour.
//! - Debian ≤12 `6.1.0-56-amd64`: same shape, flavour ends in the architecture.
//! - Debian ≥12 point kernels `6.12.111+deb12-amd64`, `6.12.57+deb13-cloud-amd64`.
//! - RHEL family `5.14.0-503.40.1.el9_5.x86_64`, Fedora `…fc36.x86_64`,
//!   Amazon `…amzn2.x86_64`, Oracle UEK `…el8uek.x86_64`, Photon `…ph4.x86_64`.
//! - SUSE `6.4.0-150600.23.53-default`: dotted build number, flavour.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::numrange::range_regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Ubuntu,
    Debian,
    Rpm,
    Suse,
    /// A bare upstream version (`5.10.57`) or anything unrecognised after it.
    Plain,
}

/// A parsed kernel release. Equality and hashing use the raw string; the
/// order is the one a package manager would give within one distro.
#[derive(Debug, Clone)]
pub struct KernelRelease {
    raw: String,
    /// major, minor, patch (patch 0 when the release has none).
    pub version: [u64; 3],
    pub scheme: Scheme,
    /// Distro build number: `143`, `56`, `503.40.1`, `150600.23.53`; empty for `+debNN`.
    pub abi: String,
    /// Ubuntu/Debian/SUSE flavour: `generic`, `cloud-amd64`, `default`.
    pub flavour: Option<String>,
    /// RPM dist tag (`el9_5`, `fc36`, `amzn2`) or Debian suite tag (`deb12`).
    pub dist: Option<String>,
    /// RPM architecture suffix (`x86_64`).
    pub arch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{release}' is not a kernel release: {why} (expected something like 6.1.0-56-amd64 or 5.14.0-503.40.1.el9_5.x86_64)")]
pub struct ReleaseParseError {
    pub release: String,
    pub why: &'static str,
}

const RPM_ARCHES: &[&str] = &["x86_64", "aarch64", "i686", "ppc64le", "s390x", "noarch"];
/// Debian flavours name the architecture last; Ubuntu's do not.
const DEBIAN_ARCH_SUFFIXES: &[&str] = &[
    "amd64",
    "arm64",
    "686",
    "686-pae",
    "armmp",
    "armmp-lpae",
    "ppc64el",
    "s390x",
    "marvell",
    "rpi",
    "riscv64",
    "loong64",
    "mips64r2el",
    "octeon",
    "4kc-malta",
    "5kc-malta",
    "powerpc64le",
];

impl KernelRelease {
    pub fn parse(raw: &str) -> Result<Self, ReleaseParseError> {
        let err = |why| ReleaseParseError {
            release: raw.to_string(),
            why,
        };
        if raw.is_empty() || raw.len() > 128 {
            return Err(err("empty or too long"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-~".contains(&b))
        {
            return Err(err("only letters, digits and . _ + - ~ may appear"));
        }
        let (version, rest) =
            split_version(raw).ok_or_else(|| err("it does not start with MAJOR.MINOR"))?;
        let mut release = KernelRelease {
            raw: raw.to_string(),
            version,
            scheme: Scheme::Plain,
            abi: String::new(),
            flavour: None,
            dist: None,
            arch: None,
        };
        if rest.is_empty() {
            return Ok(release);
        }
        if let Some(tagged) = rest.strip_prefix('+') {
            // 6.12.111+deb12-amd64
            if let Some((tag, flavour)) = tagged.split_once('-') {
                if tag.starts_with("deb") && !flavour.is_empty() {
                    release.scheme = Scheme::Debian;
                    release.dist = Some(tag.to_string());
                    release.flavour = Some(flavour.to_string());
                    return Ok(release);
                }
            }
            release.abi = rest.to_string();
            return Ok(release);
        }
        let Some(rest) = rest.strip_prefix('-') else {
            release.abi = rest.to_string();
            return Ok(release);
        };
        if let Some((body, arch)) = rest.rsplit_once('.') {
            if RPM_ARCHES.contains(&arch) {
                // 503.40.1.el9_5 → build 503.40.1, dist el9_5
                release.scheme = Scheme::Rpm;
                release.arch = Some(arch.to_string());
                match body.rsplit_once('.') {
                    Some((build, dist)) if dist.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                        release.abi = build.to_string();
                        release.dist = Some(dist.to_string());
                    }
                    _ => release.abi = body.to_string(),
                }
                return Ok(release);
            }
        }
        if let Some((abi, flavour)) = rest.split_once('-') {
            if abi.starts_with(|c: char| c.is_ascii_digit())
                && flavour.starts_with(|c: char| c.is_ascii_alphabetic())
            {
                release.abi = abi.to_string();
                release.flavour = Some(flavour.to_string());
                release.scheme =
                    if abi.contains('.') && abi.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        Scheme::Suse
                    } else if DEBIAN_ARCH_SUFFIXES
                        .iter()
                        .any(|a| flavour == *a || flavour.ends_with(&format!("-{a}")))
                    {
                        Scheme::Debian
                    } else {
                        Scheme::Ubuntu
                    };
                return Ok(release);
            }
        }
        release.abi = rest.to_string();
        Ok(release)
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// `major.minor`, the series a kernel belongs to.
    pub fn series(&self) -> String {
        format!("{}.{}", self.version[0], self.version[1])
    }

    /// `major.minor.patch`.
    pub fn upstream(&self) -> String {
        format!(
            "{}.{}.{}",
            self.version[0], self.version[1], self.version[2]
        )
    }

    /// The release without the flavour or RPM architecture: what names the
    /// shared headers package (`6.1.0-56` for `linux-headers-6.1.0-56-common`).
    pub fn base(&self) -> &str {
        let mut base = self.raw.as_str();
        if let Some(flavour) = &self.flavour {
            base = base
                .strip_suffix(flavour.as_str())
                .and_then(|b| b.strip_suffix('-'))
                .unwrap_or(base);
        }
        if let Some(arch) = &self.arch {
            base = base
                .strip_suffix(arch.as_str())
                .and_then(|b| b.strip_suffix('.'))
                .unwrap_or(base);
        }
        base
    }
}

/// `6.1.0-56-amd64` → ([6,1,0], "-56-amd64"). A missing patch level is 0.
fn split_version(raw: &str) -> Option<([u64; 3], &str)> {
    let mut version = [0u64; 3];
    let mut rest = raw;
    for (i, slot) in version.iter_mut().enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ if i == 2 => break,
                _ => return None,
            }
        }
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 || end > 9 {
            return None;
        }
        *slot = rest[..end].parse().ok()?;
        rest = &rest[end..];
    }
    Some((version, rest))
}

/// RPM's version comparison (rpmvercmp): alternating digit and letter
/// segments, digits numerically, `~` sorts before anything. Debian's order
/// agrees with it on the build numbers kernels use.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        let skip = |s: &[u8]| {
            s.iter()
                .position(|c| c.is_ascii_alphanumeric() || *c == b'~')
                .unwrap_or(s.len())
        };
        a = &a[skip(a)..];
        b = &b[skip(b)..];
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let take = |s: &[u8]| {
            s.iter()
                .position(|c| c.is_ascii_digit() != numeric || !c.is_ascii_alphanumeric())
                .unwrap_or(s.len())
        };
        let (sa, sb) = (&a[..take(a)], &b[..take(b)]);
        if sb.is_empty() {
            // A number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            let strip =
                |s: &[u8]| -> usize { s.iter().position(|c| *c != b'0').unwrap_or(s.len()) };
            let (na, nb) = (&sa[strip(sa)..], &sb[strip(sb)..]);
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            sa.cmp(sb)
        };
        if order != Ordering::Equal {
            return order;
        }
        a = &a[sa.len()..];
        b = &b[sb.len()..];
    }
}

impl Ord for KernelRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        self.version
            .cmp(&other.version)
            .then_with(|| vercmp(&self.abi, &other.abi))
            .then_with(|| self.dist.cmp(&other.dist))
            .then_with(|| self.flavour.cmp(&other.flavour))
            .then_with(|| self.raw.cmp(&other.raw))
    }
}
impl PartialOrd for KernelRelease {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for KernelRelease {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for KernelRelease {}
impl std::hash::Hash for KernelRelease {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}
impl fmt::Display for KernelRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
impl FromStr for KernelRelease {
    type Err = ReleaseParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl Serialize for KernelRelease {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}
impl<'de> Deserialize<'de> for KernelRelease {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        KernelRelease::parse(&raw).map_err(serde::de::Error::custom)
    }
}
impl schemars::JsonSchema for KernelRelease {
    fn schema_name() -> String {
        "KernelRelease".into()
    }
    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(gen)
    }
}

/// A bound of the supported range: `5.15` or `6.8.12`. A bound names a
/// series or a point release, and includes all of it: max `6.8` admits
/// `6.8.0-62-generic`, min `5.15.100` admits `5.15.100-…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionBound(Vec<u64>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a kernel version bound: write MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 5.15 or 6.8.12")]
pub struct BoundParseError(pub String);

impl FromStr for VersionBound {
    type Err = BoundParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Result<Vec<u64>, _> = s
            .split('.')
            .map(|p| {
                if p.is_empty()
                    || p.len() > 6
                    || !p.bytes().all(|b| b.is_ascii_digit())
                    || (p.len() > 1 && p.starts_with('0'))
                {
                    Err(())
                } else {
                    p.parse::<u64>().map_err(|_| ())
                }
            })
            .collect();
        match parts {
            Ok(parts) if (2..=3).contains(&parts.len()) => Ok(VersionBound(parts)),
            _ => Err(BoundParseError(s.to_string())),
        }
    }
}

impl fmt::Display for VersionBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl VersionBound {
    pub fn parts(&self) -> &[u64] {
        &self.0
    }
}

/// The kernels a module supports. Both ends are inclusive, at the
/// precision they are written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelRange {
    pub min: Option<VersionBound>,
    pub max: Option<VersionBound>,
}

impl KernelRange {
    pub fn contains(&self, release: &KernelRelease) -> bool {
        let v = &release.version;
        let above_min = self.min.as_ref().is_none_or(|m| v[..m.0.len()] >= m.0[..]);
        let below_max = self.max.as_ref().is_none_or(|m| v[..m.0.len()] <= m.0[..]);
        above_min && below_max
    }

    /// Why a release is outside the range, for reports and package scripts.
    pub fn exclusion_reason(&self, release: &KernelRelease) -> Option<String> {
        if self.contains(release) {
            return None;
        }
        Some(match (&self.min, &self.max) {
            (Some(min), Some(max)) => {
                format!("{release} is outside the supported range {min} to {max}")
            }
            (Some(min), None) => format!("{release} is older than the supported minimum {min}"),
            (None, Some(max)) => format!("{release} is newer than the supported maximum {max}"),
            (None, None) => unreachable!("an unbounded range contains every release"),
        })
    }

    /// A range whose min lies above its max (the manifest refuses these).
    pub fn is_empty(&self) -> bool {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => {
                let n = min.0.len().min(max.0.len());
                min.0[..n] > max.0[..n]
            }
            _ => false,
        }
    }

    pub fn is_unbounded(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// A POSIX extended regex that matches exactly the releases inside the
    /// range, for DKMS's `BUILD_EXCLUSIVE_KERNEL` (the only range check DKMS
    /// before 3.0.11 knows: Debian 12 ships 3.0.10, Ubuntu 22.04 2.8).
    /// `None` when unbounded.
    pub fn dkms_regex(&self) -> Option<String> {
        if self.is_unbounded() {
            return None;
        }
        if self.is_empty() {
            return Some("^$.".to_string()); // matches nothing
        }
        let empty = Vec::new();
        let min = self.min.as_ref().map_or(&empty, |b| &b.0);
        let max = self.max.as_ref().map_or(&empty, |b| &b.0);
        let body = component(0, min, max, !min.is_empty(), !max.is_empty())
            .unwrap_or_else(|| "$.".to_string()); // an empty range matches nothing
        Some(format!("^{body}"))
    }

    /// The value for `BUILD_EXCLUSIVE_KERNEL_MAX` (DKMS ≥ 3.0.11), which DKMS
    /// compares with `sort -V`: `6.8` alone would sort before `6.8.0-62-generic`
    /// and exclude the whole series the manifest admits.
    pub fn dkms_max(&self) -> Option<String> {
        self.max.as_ref().map(|m| match m.0.len() {
            2 => format!("{m}.999999"),
            _ => format!("{m}-999999"),
        })
    }

    pub fn dkms_min(&self) -> Option<String> {
        self.min.as_ref().map(ToString::to_string)
    }
}

/// Regex for version components `i..` of a release, given whether the lower
/// and upper bounds are still tight (every earlier component equal to them).
fn component(i: usize, min: &[u64], max: &[u64], lo_tight: bool, hi_tight: bool) -> Option<String> {
    let sep = if i == 0 { "" } else { "\\." };
    let lo = if lo_tight { min[i] } else { 0 };
    let hi = if hi_tight { Some(max[i]) } else { None };
    // Is the bound still tight for the next component after matching it exactly?
    let lo_next = lo_tight && i + 1 < min.len();
    let hi_next = hi_tight && i + 1 < max.len();
    let mut alternatives = Vec::new();
    if lo_next {
        alternatives.push(format!(
            "{lo}{}",
            tail(i, min, max, true, hi_next && Some(lo) == hi)?
        ));
    }
    if hi_next && !(lo_next && Some(lo) == hi) {
        alternatives.push(format!(
            "{}{}",
            hi.unwrap(),
            tail(i, min, max, false, true)?
        ));
    }
    // Values strictly between the tight ends match with any tail.
    let mid_lo = if lo_next { lo + 1 } else { lo };
    let middle = match hi {
        None => Some((mid_lo, None)),
        Some(h) => {
            let top = if hi_next { h.checked_sub(1) } else { Some(h) };
            top.filter(|t| mid_lo <= *t).map(|t| (mid_lo, Some(t)))
        }
    };
    if let Some(re) = middle.and_then(|(a, b)| range_regex(a, b)) {
        alternatives.push(format!("{re}{END}"));
    }
    match alternatives.len() {
        0 => None,
        1 => Some(format!("{sep}{}", alternatives[0])),
        _ => Some(format!("{sep}({})", alternatives.join("|"))),
    }
}

/// After a component: the number ends here (next char not a digit).
const END: &str = "([^0-9]|$)";

/// What may follow component `i` when it equalled a tight bound.
fn tail(i: usize, min: &[u64], max: &[u64], lo_tight: bool, hi_tight: bool) -> Option<String> {
    if !lo_tight && !hi_tight {
        return Some(END.to_string());
    }
    let next = component(i + 1, min, max, lo_tight, hi_tight);
    // A release without a patch level (`6.8-rc1`) counts as patch 0.
    let zero_ok = i + 1 >= 2 && (!lo_tight || min[i + 1..].iter().all(|p| *p == 0));
    match (next, zero_ok) {
        (Some(n), true) => Some(format!("({n}|([^.0-9]|$))")),
        (Some(n), false) => Some(n),
        (None, true) => Some("([^.0-9]|$)".to_string()),
        (None, false) => None,
    }
}
