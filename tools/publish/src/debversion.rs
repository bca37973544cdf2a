//! Debian version ordering (deb-version(7)), which `--keep N` needs to
//! tell the newest versions of a module from older ones: `[epoch:]upstream
//! [-revision]`, compared part by part, alternating non-digit runs (where
//! `~` sorts before everything, even the end) and numbers.

use std::cmp::Ordering;

pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (e.parse().unwrap_or(0), rest),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight of one character in a non-digit run: `~` lowest, then the
/// end of the run, then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit run.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match weight(ca).cmp(&weight(cb)) {
                Ordering::Equal => {
                    a = &a[1..];
                    b = &b[1..];
                }
                other => return other,
            }
        }
        // Digit run.
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = std::str::from_utf8(&a[..da])
            .unwrap_or("0")
            .trim_start_matches('0');
        let nb = std::str::from_utf8(&b[..db])
            .unwrap_or("0")
            .trim_start_matches('0');
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {}
            other => return other,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_dpkg() {
        // Each pair checked with `dpkg --compare-versions A lt B`.
        for (lo, hi) in [
            ("1.0.0-1", "1.0.1-1"),
            ("1.0.9-1", "1.0.10-1"),
            ("1.0~rc1-1", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("1.0-1", "1:0.1-1"),
            ("1.0a-1", "1.0+b-1"),
            ("2.0-1", "10.0-1"),
        ] {
            assert_eq!(compare(lo, hi), Ordering::Less, "{lo} < {hi}");
            assert_eq!(compare(hi, lo), Ordering::Greater, "{hi} > {lo}");
        }
        assert_eq!(compare("1.0-1", "1.00-1"), Ordering::Equal);
    }
}
