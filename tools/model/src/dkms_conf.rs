//! Reading `dkms.conf`. DKMS sources the file with bash; we read the subset
//! real dkms.conf files use (assignments, arrays, quotes, comments) and
//! report any other line rather than guess at it.

use std::collections::BTreeMap;

/// Every directive DKMS 2.8–3.x reads.
pub const KNOWN_DIRECTIVES: &[&str] = &[
    "PACKAGE_NAME",
    "PACKAGE_VERSION",
    "BUILT_MODULE_NAME",
    "BUILT_MODULE_LOCATION",
    "DEST_MODULE_NAME",
    "DEST_MODULE_LOCATION",
    "MAKE",
    "MAKE_MATCH",
    "CLEAN",
    "PRE_BUILD",
    "POST_BUILD",
    "PRE_INSTALL",
    "POST_INSTALL",
    "POST_ADD",
    "POST_REMOVE",
    "AUTOINSTALL",
    "BUILD_EXCLUSIVE_KERNEL",
    "BUILD_EXCLUSIVE_KERNEL_MIN",
    "BUILD_EXCLUSIVE_KERNEL_MAX",
    "BUILD_EXCLUSIVE_ARCH",
    "BUILD_EXCLUSIVE_CONFIG",
    "BUILD_DEPENDS",
    "STRIP",
    "PATCH",
    "PATCH_MATCH",
    "NO_WEAK_MODULES",
    "OBSOLETE_BY",
    "MODULES_CONF",
    "MODULES_CONF_ALIAS_TYPE",
    "MODULES_CONF_OBSOLETES",
    "MODULES_CONF_OBSOLETE_ONLY",
    "REMAKE_INITRD",
    "UDEV_TRIGGER",
];

/// Directives that make DKMS print "Deprecated feature" (or are ignored) on
/// current releases: a dkms.conf we write never contains them.
pub const DEPRECATED_DIRECTIVES: &[(&str, &str)] = &[
    (
        "REMAKE_INITRD",
        "DKMS 3 ignores it; initramfs updates belong in the package scripts",
    ),
    (
        "MODULES_CONF",
        "removed in DKMS 3; ship a modprobe.d file instead",
    ),
    (
        "MODULES_CONF_ALIAS_TYPE",
        "removed in DKMS 3; ship a modprobe.d file instead",
    ),
    (
        "MODULES_CONF_OBSOLETES",
        "removed in DKMS 3; ship a modprobe.d file instead",
    ),
    (
        "MODULES_CONF_OBSOLETE_ONLY",
        "removed in DKMS 3; ship a modprobe.d file instead",
    ),
    (
        "CLEAN",
        "DKMS 3.0.11+ warns that CLEAN is deprecated; DKMS cleans the build directory itself",
    ),
];

/// Directives that are arrays, one element per built module.
pub const MODULE_ARRAYS: &[&str] = &[
    "BUILT_MODULE_NAME",
    "BUILT_MODULE_LOCATION",
    "DEST_MODULE_NAME",
    "DEST_MODULE_LOCATION",
    "STRIP",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based line of the assignment.
    pub line: usize,
    pub name: String,
    pub index: Option<usize>,
    /// The value with shell quoting removed; `$var` references stay as written.
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DkmsConf {
    pub assignments: Vec<Assignment>,
    /// Lines that are neither assignments, comments nor blank: (line, text).
    pub other_lines: Vec<(usize, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DkmsConfError {
    pub line: usize,
    pub message: String,
}

impl DkmsConf {
    pub fn parse(text: &str) -> Result<Self, DkmsConfError> {
        let mut conf = DkmsConf::default();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let start = i + 1;
            let mut logical = lines[i].to_string();
            let mut quote_spans_lines = false;
            // A quoted value may span lines; so may a trailing backslash.
            while (logical.ends_with('\\') || open_quote(&logical)) && i + 1 < lines.len() {
                if logical.ends_with('\\') {
                    logical.pop();
                } else {
                    logical.push('\n');
                    quote_spans_lines = true;
                }
                i += 1;
                logical.push_str(lines[i]);
            }
            i += 1;
            let trimmed = logical.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_assignment(trimmed) {
                Some(Ok((name, index, value))) => conf.assignments.push(Assignment {
                    line: start,
                    name,
                    index,
                    value,
                }),
                Some(Err(message)) if quote_spans_lines => {
                    let message = format!(
                        "unterminated quote: the value opened here runs on to line {i} ({message})"
                    );
                    return Err(DkmsConfError {
                        line: start,
                        message,
                    });
                }
                Some(Err(message)) => {
                    return Err(DkmsConfError {
                        line: start,
                        message,
                    })
                }
                None => conf.other_lines.push((start, trimmed.to_string())),
            }
        }
        Ok(conf)
    }

    /// The last value given to a scalar directive.
    pub fn scalar(&self, name: &str) -> Option<&str> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.name == name && a.index.unwrap_or(0) == 0)
            .map(|a| a.value.as_str())
    }

    /// An array directive as index → value (a scalar counts as index 0).
    pub fn array(&self, name: &str) -> BTreeMap<usize, &str> {
        let mut out = BTreeMap::new();
        for a in self.assignments.iter().filter(|a| a.name == name) {
            out.insert(a.index.unwrap_or(0), a.value.as_str());
        }
        out
    }

    pub fn line_of(&self, name: &str) -> Option<usize> {
        self.assignments
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.line)
    }

    /// The meaning of the file, independent of layout, quoting and order:
    /// what round-trip tests compare.
    pub fn semantics(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for a in &self.assignments {
            let key = match a.index {
                Some(i) => format!("{}[{i}]", a.name),
                None if MODULE_ARRAYS.contains(&a.name.as_str()) || a.name == "MAKE" => {
                    format!("{}[0]", a.name)
                }
                None => a.name.clone(),
            };
            out.insert(key, a.value.clone());
        }
        out
    }
}

fn open_quote(s: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double => break,
            _ => {}
        }
    }
    single || double
}

/// (name, array index, value) of one assignment.
type Parsed = (String, Option<usize>, String);

/// `NAME=value` or `NAME[3]=value`. None: not an assignment at all.
fn parse_assignment(line: &str) -> Option<Result<Parsed, String>> {
    let eq = line.find('=')?;
    let lhs = &line[..eq];
    let (name, index) = match lhs.split_once('[') {
        Some((name, rest)) => {
            let idx = rest.strip_suffix(']')?;
            match idx.parse::<usize>() {
                Ok(i) => (name, Some(i)),
                Err(_) => {
                    return Some(Err(format!(
                        "array index '{idx}' of {name} is not a number"
                    )))
                }
            }
        }
        None => (lhs, None),
    };
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    Some(unquote(&line[eq + 1..]).map(|v| (name.to_string(), index, v)))
}

/// Shell word unquoting: '…' literal, "…" with \" \\ \$ \` escapes, bare
/// words up to an unquoted space or comment.
fn unquote(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        Some('\n') => {}
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => return Err("unterminated double quote".into()),
                    },
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote".into()),
                }
            },
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            ' ' | '\t' => {
                let rest: String = chars.collect();
                let rest = rest.trim();
                if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
                    break;
                }
                return Err(format!(
                    "unquoted space in value; quote it (\"…\"), rest: '{rest}'"
                ));
            }
            ';' => break,
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Quotes a value for dkms.conf so bash reads it back unchanged, keeping
/// DKMS's own variables (`$kernelver`, `${kernel_source_dir}`…) live.
pub fn quote(value: &str) -> String {
    let mut out = String::from('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arrays_quotes_and_continuations() {
        let conf = DkmsConf::parse(
            "# comment\nPACKAGE_NAME=\"demo\"\nPACKAGE_VERSION=1.2\nBUILT_MODULE_NAME[0]='a'\nBUILT_MODULE_NAME[1]=\"b\" # second\nMAKE[0]=\"make -C ${kernel_source_dir} \\\n M=${dkms_tree}\"\nif true; then :; fi\n",
        )
        .unwrap();
        assert_eq!(conf.scalar("PACKAGE_NAME"), Some("demo"));
        assert_eq!(conf.scalar("PACKAGE_VERSION"), Some("1.2"));
        assert_eq!(
            conf.array("BUILT_MODULE_NAME")
                .values()
                .copied()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            conf.scalar("MAKE"),
            Some("make -C ${kernel_source_dir}  M=${dkms_tree}")
        );
        assert_eq!(conf.line_of("MAKE"), Some(6));
        assert_eq!(conf.other_lines, [(8, "if true; then :; fi".to_string())]);
    }

    #[test]
    fn quote_round_trips() {
        for v in [
            "plain",
            "with \"quotes\"",
            "make -C ${kernel_source_dir} M=$PWD",
            "back\\slash",
        ] {
            let conf = DkmsConf::parse(&format!("X={}", quote(v))).unwrap();
            assert_eq!(conf.scalar("X"), Some(v));
        }
    }

    #[test]
    fn unterminated_quote_names_the_line() {
        let err = DkmsConf::parse("A=1\nB=\"open\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
