//! Small text rules several stages share: calendar dates for the fields
//! that carry one (changelogs, HTTP headers, Release files, the page), and
//! escaping for the markup they write (JUnit XML, the HTML page).

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`). Used instead of a date
/// crate because every date written is a SOURCE_DATE_EPOCH-style count of
/// seconds, in UTC.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// English month abbreviations, as RFC 2822 and HTTP dates use them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Thu, 01 Jan 1970 00:00:00 <zone>` for a Unix time: the RFC 2822 form
/// changelogs (`+0000`), Release files (`UTC`) and HTTP (`GMT`) carry.
pub fn rfc2822(secs: u64, zone: &str) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} {zone}",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The last line of `text` with anything on it, trimmed: what a failed
/// build's or DKMS's log says last, for a one-line reason.
pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Escapes text for XML and HTML, in element content and in quoted
/// attribute values alike. `/` is left alone, so URLs stay readable.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // &#39; rather than &apos;: HTML 4 readers lack the latter.
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters, which build logs can hold.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_map_to_their_dates_across_leap_years_and_eras() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn rfc2822_dates_match_date_r() {
        // `date -u -R -d @951782400` (a leap day), `@1700000000`.
        assert_eq!(rfc2822(0, "+0000"), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(951_782_400, "GMT"), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            rfc2822(1_700_000_000, "UTC"),
            "Tue, 14 Nov 2023 22:13:20 UTC"
        );
    }

    #[test]
    fn markup_escaping_covers_the_five_specials() {
        assert_eq!(
            escape_markup(r#"<a href="x">'&'</a> /p"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt; /p"
        );
    }
}
