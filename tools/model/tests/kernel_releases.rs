//! Kernel release parsing, ordering and ranges, on the release strings of
//! the issue and on 4,450 real ones from distro archives
//! (tests/data/kernel-releases-x86_64.tsv, see tests/data/README.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kmodfarm_model::kernel::{KernelRange, KernelRelease, Scheme};
use proptest::prelude::*;

fn k(s: &str) -> KernelRelease {
    KernelRelease::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn range(min: Option<&str>, max: Option<&str>) -> KernelRange {
    KernelRange {
        min: min.map(|m| m.parse().unwrap()),
        max: max.map(|m| m.parse().unwrap()),
    }
}

/// (distro, release, header package file names) rows of the data set.
fn real_releases() -> Vec<(String, String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/kernel-releases-x86_64.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the kernel release data set is needed at {}: {e}",
            path.display()
        )
    });
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols.get(3).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_scheme_of_the_issue_parses() {
    let cases = [
        (
            "5.15.0-143-generic",
            [5, 15, 0],
            Scheme::Ubuntu,
            "143",
            Some("generic"),
            None,
        ),
        (
            "6.8.0-62-generic",
            [6, 8, 0],
            Scheme::Ubuntu,
            "62",
            Some("generic"),
            None,
        ),
        (
            "6.1.0-56-amd64",
            [6, 1, 0],
            Scheme::Debian,
            "56",
            Some("amd64"),
            None,
        ),
        (
            "6.12.111+deb12-amd64",
            [6, 12, 111],
            Scheme::Debian,
            "",
            Some("amd64"),
            Some("deb12"),
        ),
        (
            "6.12.57+deb13-cloud-amd64",
            [6, 12, 57],
            Scheme::Debian,
            "",
            Some("cloud-amd64"),
            Some("deb13"),
        ),
        (
            "5.14.0-503.40.1.el9_5.x86_64",
            [5, 14, 0],
            Scheme::Rpm,
            "503.40.1",
            None,
            Some("el9_5"),
        ),
        (
            "4.18.0-553.el8_10.x86_64",
            [4, 18, 0],
            Scheme::Rpm,
            "553",
            None,
            Some("el8_10"),
        ),
        (
            "6.4.0-150600.23.53-default",
            [6, 4, 0],
            Scheme::Suse,
            "150600.23.53",
            Some("default"),
            None,
        ),
    ];
    for (raw, version, scheme, abi, flavour, dist) in cases {
        let r = k(raw);
        assert_eq!(r.version, version, "{raw}");
        assert_eq!(r.scheme, scheme, "{raw}");
        assert_eq!(r.abi, abi, "{raw}");
        assert_eq!(r.flavour.as_deref(), flavour, "{raw}");
        assert_eq!(r.dist.as_deref(), dist, "{raw}");
        assert_eq!(r.to_string(), raw);
    }
    assert_eq!(
        k("5.14.0-503.40.1.el9_5.x86_64").base(),
        "5.14.0-503.40.1.el9_5"
    );
    assert_eq!(k("6.12.57+deb13-cloud-amd64").base(), "6.12.57+deb13");
    assert_eq!(k("6.1.0-56-amd64").base(), "6.1.0-56");
}

#[test]
fn garbage_is_refused_with_the_string_named() {
    for bad in [
        "",
        "linux",
        "6",
        "6.x.1",
        "6.1.0 -56",
        "6.1/../../etc",
        "6.1.0-56-amd64;rm",
    ] {
        let err = KernelRelease::parse(bad).unwrap_err();
        assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
    }
}

#[test]
fn order_follows_the_package_manager() {
    let ascending = [
        "5.15.0-9-generic",
        "5.15.0-10-generic",
        "5.15.0-143-generic",
        "5.15.1-1-generic",
        "6.1.0-9-amd64",
        "6.1.0-56-amd64",
        "6.8.0-62-generic",
        "6.12.9+deb12-amd64",
        "6.12.57+deb13-amd64",
        "6.12.111+deb12-amd64",
    ];
    for pair in ascending.windows(2) {
        assert!(k(pair[0]) < k(pair[1]), "{} < {}", pair[0], pair[1]);
    }
    assert!(k("5.14.0-427.13.1.el9_4.x86_64") < k("5.14.0-503.40.1.el9_5.x86_64"));
    assert!(k("5.14.0-503.9.1.el9_5.x86_64") < k("5.14.0-503.40.1.el9_5.x86_64"));
    assert!(
        k("4.19.232-1~deb9u1-amd64") < k("4.19.232-1-amd64"),
        "~ sorts first, as in dpkg and rpm"
    );
    assert!(k("6.4.0-150600.23.9-default") < k("6.4.0-150600.23.53-default"));
}

#[test]
fn all_real_releases_parse_and_schemes_match_their_distro() {
    let rows = real_releases();
    assert!(
        rows.len() > 4000,
        "expected the full data set, got {}",
        rows.len()
    );
    let mut schemes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (distro, raw, _) in &rows {
        let r = KernelRelease::parse(raw).unwrap_or_else(|e| panic!("{distro}: {e}"));
        *schemes
            .entry((distro.clone(), format!("{:?}", r.scheme)))
            .or_default() += 1;
        let expected = match distro.as_str() {
            "Ubuntu" => Scheme::Ubuntu,
            "Debian" => Scheme::Debian,
            "CentOS" | "Fedora" | "Oracle6" | "Oracle7" | "Oracle8" | "AmazonLinux"
            | "AmazonLinux2" | "AmazonLinux2022" | "PhotonOS" => Scheme::Rpm,
            _ => continue,
        };
        assert_eq!(r.scheme, expected, "{distro} {raw}");
    }
}

#[test]
fn header_package_names_derive_from_the_release() {
    // Ubuntu: linux-headers-<release>_<...>.deb; RPM family: kernel(-uek)-devel-<release>.rpm.
    let set = kmodfarm_model::DistroSet::builtin();
    let ubuntu = set.get("ubuntu-24.04").unwrap();
    let rhel = set.get("rhel-9").unwrap();
    let mut checked = 0;
    for (distro, raw, files) in real_releases() {
        let r = k(&raw);
        match distro.as_str() {
            // The crawler suffixes some Ubuntu releases with their source
            // package's variant (4.15.0-1135-gcp-4.15, 4.4.0-21-lts-xenial,
            // 5.4.0-42-hwe); uname -r is only ever <abi>-<one-word flavour>.
            "Ubuntu"
                if r.flavour.as_deref().is_some_and(|f| f.contains('-'))
                    || r.flavour.as_deref() == Some("hwe") => {}
            "Ubuntu" => {
                let want = format!("{}_", ubuntu.headers_package(&r));
                assert!(
                    files.split(' ').any(|f| f.starts_with(&want)),
                    "{raw}: no {want}* in {files}"
                );
                checked += 1;
            }
            "CentOS" | "Fedora" | "AmazonLinux2" | "AmazonLinux2022" => {
                let want = format!("{}.rpm", rhel.headers_package(&r));
                assert!(
                    files.split(' ').any(|f| f == want),
                    "{raw}: no {want} in {files}"
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 1800, "checked {checked}");
}

#[test]
fn range_bounds_are_inclusive_at_their_precision() {
    let r = range(Some("5.15"), Some("6.8"));
    for inside in [
        "5.15.0-143-generic",
        "6.8.0-62-generic",
        "6.8.12-1-generic",
        "6.1.0-56-amd64",
        "5.15.0-1034-aws",
    ] {
        assert!(r.contains(&k(inside)), "{inside}");
    }
    for outside in [
        "5.14.0-503.40.1.el9_5.x86_64",
        "6.9.0-1-generic",
        "6.12.111+deb12-amd64",
        "4.18.0-553.el8_10.x86_64",
    ] {
        assert!(!r.contains(&k(outside)), "{outside}");
        assert!(r
            .exclusion_reason(&k(outside))
            .unwrap()
            .contains("5.15 to 6.8"));
    }
    let patch = range(Some("5.15.100"), Some("6.8.12"));
    assert!(!patch.contains(&k("5.15.99-1-generic")));
    assert!(patch.contains(&k("5.15.100-1-generic")));
    assert!(patch.contains(&k("6.8.12+deb13-amd64")));
    assert!(!patch.contains(&k("6.8.13-1-generic")));
}

fn re_matches(r: &KernelRange, raw: &str) -> bool {
    regex_of(r).is_match(raw)
}

fn regex_of(r: &KernelRange) -> regex::Regex {
    regex::Regex::new(&r.dkms_regex().unwrap()).unwrap()
}

#[test]
fn regex_agrees_with_the_range_on_every_real_release() {
    let rows = real_releases();
    let ranges = [
        range(Some("5.15"), Some("6.8")),
        range(Some("4.18"), None),
        range(None, Some("5.4")),
        range(Some("3.10"), Some("3.10")),
        range(Some("5.4.17"), Some("5.15.0")),
        range(Some("4.14.100"), Some("5.10")),
        range(Some("2.6"), Some("10.2.3")),
    ];
    for r in &ranges {
        let re = regex_of(r);
        for (_, raw, _) in &rows {
            let rel = k(raw);
            assert_eq!(
                re.is_match(raw),
                r.contains(&rel),
                "range {:?}..{:?} regex {} on {raw}",
                r.min,
                r.max,
                re.as_str()
            );
        }
    }
}

/// Releases of every scheme from generated version numbers.
fn any_release() -> impl Strategy<Value = String> {
    (2u64..8, 0u64..25, 0u64..300, 0usize..6, 1u64..2000).prop_map(
        |(maj, min, patch, scheme, abi)| match scheme {
            0 => format!("{maj}.{min}.{patch}-{abi}-generic"),
            1 => format!("{maj}.{min}.{patch}+deb12-cloud-amd64"),
            2 => format!("{maj}.{min}.{patch}-{abi}.40.1.el9_5.x86_64"),
            3 => format!("{maj}.{min}.{patch}-150600.{abi}.53-default"),
            4 => format!("{maj}.{min}-rc{}", abi % 9),
            _ => format!("{maj}.{min}.{patch}"),
        },
    )
}

fn any_bound() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (2u64..8, 0u64..25).prop_map(|(a, b)| Some(format!("{a}.{b}"))),
        (2u64..8, 0u64..25, 0u64..300).prop_map(|(a, b, c)| Some(format!("{a}.{b}.{c}"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// The BUILD_EXCLUSIVE_KERNEL regex accepts exactly the releases inside the range.
    #[test]
    fn regex_accepts_exactly_the_range(min in any_bound(), max in any_bound(), releases in prop::collection::vec(any_release(), 40)) {
        let r = range(min.as_deref(), max.as_deref());
        prop_assume!(!r.is_unbounded());
        if r.is_empty() {
            prop_assert!(releases.iter().all(|raw| !re_matches(&r, raw)));
            return Ok(());
        }
        let re = regex_of(&r);
        for raw in &releases {
            let rel = k(raw);
            prop_assert_eq!(re.is_match(raw), r.contains(&rel), "range {:?}..{:?} regex {} on {}", min, max, re.as_str(), raw);
        }
    }
}

#[test]
fn dkms_min_max_values_sort_around_the_whole_series() {
    let r = range(Some("5.15"), Some("6.8"));
    assert_eq!(r.dkms_min().as_deref(), Some("5.15"));
    assert_eq!(r.dkms_max().as_deref(), Some("6.8.999999"));
    // What DKMS does with them: sort -V, the real tool.
    for release in ["6.8.0-62-generic", "6.8.12-1-generic", "5.15.0-143-generic"] {
        let out = std::process::Command::new("sort")
            .arg("-V")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{release}\n6.8.999999\n5.15\n").as_bytes())?;
                c.wait_with_output()
            });
        let sorted = String::from_utf8(out.unwrap().stdout).unwrap();
        let lines: Vec<&str> = sorted.lines().collect();
        assert_eq!(
            lines,
            ["5.15", release, "6.8.999999"],
            "sort -V places {release} inside the bounds"
        );
    }
}
