//! Regular expressions for ranges of unsigned integers written without
//! leading zeros (kernel version components). Only POSIX ERE constructs are
//! produced, because DKMS matches `BUILD_EXCLUSIVE_KERNEL` with bash `=~`.

/// A regex (without anchors) matching exactly the decimal numbers in
/// `lo..=hi`, or `lo..` when `hi` is `None`. Empty ranges give `None`.
pub(crate) fn range_regex(lo: u64, hi: Option<u64>) -> Option<String> {
    let mut alternatives = Vec::new();
    match hi {
        Some(hi) if hi < lo => return None,
        Some(hi) => push_finite(lo, hi, &mut alternatives),
        None => {
            // lo.. = lo..=99..9 (same digit count), then every longer number.
            let width = digits(lo);
            push_finite(lo, 10u64.pow(width as u32) - 1, &mut alternatives);
            alternatives.push(format!("[1-9][0-9]{{{width},}}"));
        }
    }
    Some(if alternatives.len() == 1 {
        alternatives.pop().unwrap()
    } else {
        format!("({})", alternatives.join("|"))
    })
}

fn digits(n: u64) -> usize {
    n.to_string().len()
}

/// Splits `lo..=hi` by digit count, since each width is matched separately.
fn push_finite(lo: u64, hi: u64, out: &mut Vec<String>) {
    for width in digits(lo)..=digits(hi) {
        let first = if width == 1 {
            0
        } else {
            10u64.pow(width as u32 - 1)
        };
        let last = 10u64.pow(width as u32) - 1;
        let (a, b) = (lo.max(first), hi.min(last));
        if a <= b {
            same_width(&a.to_string(), &b.to_string(), out);
        }
    }
}

/// Both strings have the same length; inner calls may see leading zeros.
fn same_width(lo: &str, hi: &str, out: &mut Vec<String>) {
    if lo == hi {
        out.push(lo.to_string());
        return;
    }
    let (l0, lrest) = (lo.as_bytes()[0] - b'0', &lo[1..]);
    let (h0, hrest) = (hi.as_bytes()[0] - b'0', &hi[1..]);
    let rest = lrest.len();
    if l0 == h0 {
        let mut inner = Vec::new();
        same_width(lrest, hrest, &mut inner);
        out.extend(inner.into_iter().map(|p| format!("{l0}{p}")));
        return;
    }
    // Leading digits differ: [l0 with rest >= lrest] [l0+1..h0-1 any] [h0 with rest <= hrest],
    // folding the edges into the middle when they cover every tail.
    let low_full = lrest.bytes().all(|b| b == b'0');
    let high_full = hrest.bytes().all(|b| b == b'9');
    let mid_lo = if low_full { l0 } else { l0 + 1 };
    let mid_hi = if high_full { h0 } else { h0 - 1 };
    if !low_full {
        let mut inner = Vec::new();
        same_width(lrest, &"9".repeat(rest), &mut inner);
        out.extend(inner.into_iter().map(|p| format!("{l0}{p}")));
    }
    if mid_lo <= mid_hi {
        out.push(format!(
            "{}{}",
            digit_class(mid_lo, mid_hi),
            any_digits(rest)
        ));
    }
    if !high_full {
        let mut inner = Vec::new();
        same_width(&"0".repeat(rest), hrest, &mut inner);
        out.extend(inner.into_iter().map(|p| format!("{h0}{p}")));
    }
}

fn digit_class(a: u8, b: u8) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("[{a}-{b}]")
    }
}

fn any_digits(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "[0-9]".to_string(),
        n => format!("[0-9]{{{n}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matches(re: &str, n: u64) -> bool {
        regex::Regex::new(&format!("^{re}$"))
            .unwrap()
            .is_match(&n.to_string())
    }

    #[test]
    fn small_examples() {
        assert_eq!(range_regex(0, Some(8)).unwrap(), "[0-8]");
        assert_eq!(
            range_regex(15, None).unwrap(),
            "(1[5-9]|[2-9][0-9]|[1-9][0-9]{2,})"
        );
        assert!(range_regex(5, Some(4)).is_none());
    }

    proptest! {
        #[test]
        fn finite_range_matches_exactly(lo in 0u64..3000, len in 0u64..3000, n in 0u64..7000) {
            let hi = lo + len;
            let re = range_regex(lo, Some(hi)).unwrap();
            prop_assert_eq!(matches(&re, n), lo <= n && n <= hi, "{} on {}", re, n);
        }

        #[test]
        fn open_range_matches_exactly(lo in 0u64..3000, n in 0u64..100_000) {
            let re = range_regex(lo, None).unwrap();
            prop_assert_eq!(matches(&re, n), lo <= n, "{} on {}", re, n);
        }
    }
}
