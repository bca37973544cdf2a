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
#[error("line {line}: `{text}`: {message}")]
pub struct DkmsConfError {
    pub line: usize,
    /// The line as written (its first line, for a value spanning several).
    pub text: String,
    pub message: String,
    /// Bash reads this line (a value computed in shell, an array filled by
    /// a loop): only this reader cannot. False: bash cannot read it either
    /// (an unterminated quote, a `[` without `]`).
    pub shell: bool,
}

impl DkmsConf {
    pub fn parse(text: &str) -> Result<Self, DkmsConfError> {
        let mut conf = DkmsConf::default();
        let mut first_shell: Option<DkmsConfError> = None;
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
            let error = |message: String, shell: bool| DkmsConfError {
                line: start,
                text: lines[start - 1].trim().to_string(),
                message,
                shell,
            };
            match parse_assignment(trimmed) {
                Some(Ok((name, index, value))) => conf.assignments.push(Assignment {
                    line: start,
                    name,
                    index,
                    value,
                }),
                Some(Err(message)) if quote_spans_lines => {
                    return Err(error(
                        format!(
                            "unterminated quote: the value opened here runs on to line {i} ({})",
                            message.text
                        ),
                        false,
                    ));
                }
                // Bash reads it: read on, for a line bash cannot read.
                Some(Err(message)) if message.shell => {
                    first_shell.get_or_insert(error(message.text, true));
                }
                Some(Err(message)) => return Err(error(message.text, false)),
                None => conf.other_lines.push((start, trimmed.to_string())),
            }
        }
        match first_shell {
            Some(e) => Err(e),
            None => Ok(conf),
        }
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

impl DkmsConf {
    /// Values that bash computes when it reads the file (`$(…)`, backquotes)
    /// or lines besides assignments: this reader cannot stand in for bash.
    /// The first such line, with its text.
    pub fn computed_in_shell(&self) -> Option<(usize, String)> {
        let computed = self
            .assignments
            .iter()
            .find(|a| a.value.contains("$(") || a.value.contains('`'))
            .map(|a| (a.line, format!("{}={}", a.name, a.value)));
        let other = self.other_lines.first().cloned();
        match (computed, other) {
            (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Expands, in every value, `$NAME` and `${NAME}` of a variable the file
    /// set on an earlier line (`BUILT_MODULE_NAME[0]="$PACKAGE_NAME"`), as
    /// bash does when DKMS sources it. DKMS's own variables (`$kernelver`…)
    /// stay as written: DKMS sets them per kernel.
    pub fn expand_own_variables(&mut self) {
        let mut set: BTreeMap<String, String> = BTreeMap::new();
        for a in &mut self.assignments {
            a.value = expand(&a.value, &set);
            if a.index.unwrap_or(0) == 0 && !DKMS_VARIABLES.contains(&a.name.as_str()) {
                set.insert(a.name.clone(), a.value.clone());
            }
        }
    }
}

/// The variables DKMS sets before it sources dkms.conf.
pub const DKMS_VARIABLES: &[&str] = &[
    "kernelver",
    "arch",
    "kernel_source_dir",
    "dkms_tree",
    "source_tree",
];

fn expand(value: &str, set: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match set.get(name) {
            Some(v) if !name.is_empty() => {
                out.push_str(v);
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Evaluating a dkms.conf with bash, as DKMS does (it sources the file).
/// [`eval_script`] is the script to run (in a sandbox: it runs the file's
/// code); [`read_evaluation`] reads what it prints.
pub mod eval {
    use super::*;

    /// Kernels the file is evaluated for besides the literal run, to see
    /// which values depend on `$kernelver`.
    pub const PROBE_KERNELS: [&str; 2] = ["5.4.0-1-generic", "6.12.9-amd64"];

    const RUN: &str = "\u{1}run";
    const SYNTAX: &str = "\u{1}syntax";

    /// A bash script that sources `conf` (from directory `tree`) three
    /// times: with DKMS's variables set to their own names (`$kernelver`
    /// gives `${kernelver}`, so values keep them live, as in a dkms.conf),
    /// then for each of [`PROBE_KERNELS`]; and prints every directive's
    /// value, NUL-separated.
    pub fn eval_script(conf: &str, tree: &str) -> String {
        let names = KNOWN_DIRECTIVES.join(" ");
        let literal: Vec<String> = DKMS_VARIABLES
            .iter()
            .map(|v| format!("{v}='${{{v}}}'"))
            .collect();
        let mut runs = format!("kmodfarm_run literal {}\n", literal.join(" "));
        for k in PROBE_KERNELS {
            runs.push_str(&format!(
                "kmodfarm_run {k} kernelver={k} arch=x86_64 kernel_source_dir=/lib/modules/{k}/build dkms_tree=/var/lib/dkms source_tree=/usr/src\n"
            ));
        }
        format!(
            r#"kmodfarm_dump() {{
    local kmodfarm_name kmodfarm_decl kmodfarm_i
    for kmodfarm_name in {names}; do
        kmodfarm_decl=$(declare -p "$kmodfarm_name" 2>/dev/null) || continue
        case $kmodfarm_decl in
        "declare -a"* | "declare -A"*)
            local -n kmodfarm_ref=$kmodfarm_name
            for kmodfarm_i in "${{!kmodfarm_ref[@]}}"; do
                printf '%s\0%s\0%s\0' "$kmodfarm_name" "$kmodfarm_i" "${{kmodfarm_ref[$kmodfarm_i]}}"
            done
            unset -n kmodfarm_ref
            ;;
        *) printf '%s\0\0%s\0' "$kmodfarm_name" "${{!kmodfarm_name}}" ;;
        esac
    done
}}
kmodfarm_run() {{
    printf '\001run\0%s\0' "$1"
    shift
    (
        declare -g -- "$@"
        cd {tree} || exit 1
        . {conf} >/dev/null
        kmodfarm_dump
    )
}}
if ! kmodfarm_syntax=$(bash -n {conf} 2>&1); then
    printf '\001syntax\0%s\0' "$kmodfarm_syntax"
    exit 0
fi
{runs}"#,
            tree = quote_sh(tree),
            conf = quote_sh(conf),
        )
    }

    fn quote_sh(s: &str) -> String {
        format!("'{}'", s.replace('\'', "'\\''"))
    }

    /// One evaluation: directive (and index) → value.
    pub type Values = BTreeMap<(String, Option<String>), String>;

    /// What the runs gave: the literal run's values, and the directives
    /// whose values differ between the probe kernels.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Evaluation {
        pub values: Values,
        pub kernel_dependent: Vec<String>,
    }

    /// Reads [`eval_script`]'s output.
    pub fn read_evaluation(output: &[u8]) -> Result<Evaluation, String> {
        let text = String::from_utf8_lossy(output);
        let mut fields = text.split('\0');
        let mut runs: Vec<(String, Values)> = Vec::new();
        while let Some(field) = fields.next() {
            if field == SYNTAX {
                return Err(format!(
                    "bash cannot read it: {}",
                    fields.next().unwrap_or("").trim()
                ));
            }
            if field == RUN {
                let label = fields.next().ok_or("truncated output")?;
                runs.push((label.to_string(), Values::new()));
                continue;
            }
            if field.is_empty() && fields.clone().next().is_none() {
                break;
            }
            let (Some(index), Some(value)) = (fields.next(), fields.next()) else {
                return Err("truncated output".into());
            };
            let (_, values) = runs.last_mut().ok_or("output before the first run")?;
            let index = (!index.is_empty()).then(|| index.to_string());
            values.insert((field.to_string(), index), value.to_string());
        }
        let [literal, old, new] = <[(String, Values); 3]>::try_from(runs)
            .map_err(|r| format!("{} of 3 evaluations ran", r.len()))?;
        let normal = |kernel: &str, values: &Values| -> Values {
            values
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace(
                            &format!("/lib/modules/{kernel}/build"),
                            "${kernel_source_dir}",
                        )
                        .replace(kernel, "${kernelver}")
                        .replace("/var/lib/dkms", "${dkms_tree}")
                        .replace("/usr/src", "${source_tree}")
                        .replace("x86_64", "${arch}");
                    (k.clone(), v)
                })
                .collect()
        };
        let (old, new) = (normal(&old.0, &old.1), normal(&new.0, &new.1));
        let mut kernel_dependent: Vec<String> = old
            .keys()
            .chain(new.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .map(|(name, index)| match index {
                Some(i) => format!("{name}[{i}]"),
                None => name.clone(),
            })
            .collect();
        kernel_dependent.dedup();
        Ok(Evaluation {
            values: literal.1,
            kernel_dependent,
        })
    }

    impl DkmsConf {
        /// The configuration an evaluation gave, each value placed on the
        /// first line of `text` that assigns its directive.
        pub fn from_evaluation(text: &str, values: &Values) -> Result<DkmsConf, String> {
            let mut assignments = Vec::new();
            for ((name, index), value) in values {
                let index = match index {
                    None => None,
                    Some(i) => Some(i.parse::<usize>().map_err(|_| {
                        format!("{name}[{i}]: DKMS's arrays are indexed by numbers")
                    })?),
                };
                assignments.push(Assignment {
                    line: line_assigning(text, name),
                    name: name.clone(),
                    index,
                    value: value.clone(),
                });
            }
            assignments.sort_by_key(|a| (a.line, a.index));
            Ok(DkmsConf {
                assignments,
                other_lines: Vec::new(),
            })
        }
    }

    fn line_assigning(text: &str, name: &str) -> usize {
        text.lines()
            .position(|l| {
                l.match_indices(name).any(|(at, _)| {
                    let before = l[..at].chars().last();
                    let after = l[at + name.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                        && matches!(after, Some('=' | '[' | '+'))
                })
            })
            .map_or(1, |i| i + 1)
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

/// Why a line is not read, and whether bash would read it.
struct Unread {
    text: String,
    shell: bool,
}

impl Unread {
    /// Bash reads it; this reader does not.
    fn shell(text: String) -> Self {
        Unread { text, shell: true }
    }
    /// Bash does not read it either.
    fn malformed(text: String) -> Self {
        Unread { text, shell: false }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// `NAME=value` or `NAME[3]=value`. None: not an assignment at all.
fn parse_assignment(line: &str) -> Option<Result<Parsed, Unread>> {
    let eq = line.find('=')?;
    let lhs = &line[..eq];
    let (name, index) = match lhs.split_once('[') {
        Some((name, rest)) if is_name(name) && !rest.contains(' ') => {
            let Some(idx) = rest.strip_suffix(']') else {
                return Some(Err(Unread::malformed(format!(
                    "{name}[ opens an array index that no ']' closes before '='; write {name}[{rest}]=…"
                ))));
            };
            match idx.parse::<usize>() {
                Ok(i) => (name, Some(i)),
                Err(_) => {
                    return Some(Err(Unread::shell(format!(
                        "array index '{idx}' of {name} is not a number"
                    ))))
                }
            }
        }
        Some(_) => return None,
        None => (lhs, None),
    };
    if !is_name(name) {
        return None;
    }
    Some(
        unquote(&line[eq + 1..])
            .map(|v| (name.to_string(), index, v))
            .map_err(|e| match e {
                Unquote::Unterminated(m) => Unread::malformed(m),
                Unquote::Shell(m) => Unread::shell(m),
            }),
    )
}

enum Unquote {
    Unterminated(String),
    /// Shell syntax this reader does not evaluate.
    Shell(String),
}

/// Shell word unquoting: '…' literal, "…" with \" \\ \$ \` escapes, bare
/// words up to an unquoted space or comment.
fn unquote(s: &str) -> Result<String, Unquote> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err(Unquote::Unterminated("unterminated single quote".into())),
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
                        None => {
                            return Err(Unquote::Unterminated("unterminated double quote".into()))
                        }
                    },
                    Some(c) => out.push(c),
                    None => return Err(Unquote::Unterminated("unterminated double quote".into())),
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
                return Err(Unquote::Shell(format!(
                    "unquoted space in value; quote it (\"…\"), rest: '{rest}'"
                )));
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
