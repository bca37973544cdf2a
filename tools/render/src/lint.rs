//! `kmodfarm lint`: the manifest's source tree, the templates, and the
//! dkms.conf they render (or any dkms.conf), checked the way DKMS will
//! read them. Findings name `file:line`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kmodfarm_model::dkms_conf::{self, Assignment, DkmsConf};
use kmodfarm_model::shell_risk;
use kmodfarm_model::{KernelRange, KernelRelease, Manifest, VersionBound};
use regex::Regex;

use crate::context::{helper_path, PREBUILD_SCRIPT};
use crate::{templates, RenderError, RenderOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// `file:line` (or just `file` when no line applies).
    pub location: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {severity}: {}", self.location, self.message)
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, location, message);
    }
    fn warning(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, location, message);
    }
    fn push(
        &mut self,
        severity: Severity,
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Finding {
            severity,
            location: location.into(),
            message: message.into(),
        });
    }
    fn render_error(&mut self, e: &RenderError) {
        match e {
            RenderError::Template { location, message } => {
                self.error(location.clone(), message.clone())
            }
            other => self.error("templates", other.to_string()),
        }
    }
}

/// The `[test]` section: what the boot test will and will not check.
fn lint_boot_test(manifest: &Manifest, f: &mut Findings) {
    let at = manifest.path.display().to_string();
    let test = &manifest.test;
    match (&test.smoke, &test.expect) {
        // No smoke check: the boot test still loads the modules and scans
        // the console, which is worth having on its own.
        (None, _) => {}
        (Some(_), None) => f.warning(
            at,
            "[test] smoke has no expect: only its exit status is checked; add the text its output must contain",
        ),
        (Some(_), Some(expect)) => {
            if expect.contains("{kallsyms:")
                && !manifest.build.needs(kmodfarm_model::KernelInput::SystemMap)
            {
                f.warning(
                    at,
                    "[test] expect compares a {kallsyms:…} address, but [build] needs has no \"system-map\": builds get no real System.map, so the module cannot have recorded one",
                );
            }
        }
    }
}

/// Lints what `kmodfarm render` would produce for `manifest`.
pub fn lint(manifest: &Manifest, opts: &RenderOptions) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    lint_source_tree(manifest, &mut f);
    lint_boot_test(manifest, &mut f);
    match templates::sources(opts.templates_dir.as_deref()) {
        Err(e) => f.render_error(&e),
        Ok(sources) => {
            let (compiled, errors) = templates::compile(sources);
            errors.iter().for_each(|e| f.render_error(e));
            if errors.is_empty() {
                match crate::render_with(&compiled, manifest) {
                    Err(e) => f.render_error(&e),
                    Ok(files) => {
                        let conf = files.iter().find(|r| r.name == "dkms.conf");
                        if let Some(conf) = conf {
                            f.0.extend(lint_dkms_conf_only(
                                Path::new("dkms.conf"),
                                &conf.contents,
                                Some(&manifest.kernels),
                            ));
                        }
                    }
                }
            }
        }
    }
    f.0
}

/// The source tree holds what the manifest names.
fn lint_source_tree(manifest: &Manifest, f: &mut Findings) {
    let text = std::fs::read_to_string(&manifest.path).unwrap_or_default();
    lint_package(manifest, &text, f);
    let at = |key: &str| format!("{}:{}", manifest.path.display(), key_line(&text, key));
    let tree = manifest.source_path();
    if !tree.is_dir() {
        f.error(
            at("dir"),
            format!("the source tree {} does not exist", tree.display()),
        );
        return;
    }
    // kbuild's default command builds the tree's top level; a custom command
    // (MAKE) may build subdirectories, and then the top level needs neither.
    let default_command = manifest.build.command.is_none();
    if default_command && !tree.join("Makefile").is_file() && !tree.join("Kbuild").is_file() {
        f.error(
            at("dir"),
            format!(
                "the source tree {} has no Makefile or Kbuild for kbuild to build",
                tree.display()
            ),
        );
    }
    let scripts = [
        ("pre_build", &manifest.build.pre_build),
        ("post_build", &manifest.build.post_build),
        ("post_install", &manifest.build.post_install),
    ];
    for (key, script) in scripts {
        let Some(value) = script.as_deref() else {
            continue;
        };
        let Some(first) = value.split_whitespace().next() else {
            continue;
        };
        let path = tree.join(first);
        // DKMS runs the value's first word as the script (it splits the
        // value at blanks), so the whole value is shown, quoted.
        let shown = format!("{key} = {}", dkms_conf::quote(value));
        match std::fs::metadata(&path) {
            Err(_) if value.trim() != first && tree.join(value.trim()).is_file() => f.error(
                at(key),
                format!(
                    "{shown}: DKMS runs the first word, {}, as the script (it splits the value at blanks), and that does not exist; a script path cannot contain blanks: rename the file",
                    path.display()
                ),
            ),
            Err(_) => f.error(
                at(key),
                format!("{shown}: the script {} does not exist", path.display()),
            ),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => f.warning(
                at(key),
                format!(
                    "{shown}: the script {} is not executable; DKMS skips such a script with only a warning",
                    path.display()
                ),
            ),
            Ok(_) => {
                if let Ok(body) = std::fs::read_to_string(&path) {
                    lint_script_body(&path, &body, f);
                }
            }
        }
    }
    lint_commands(manifest, &at, f);
    for m in &manifest.modules {
        if m.location != "." && !tree.join(&m.location).is_dir() {
            f.warning(
                at("location"),
                format!(
                    "module {} is built in {}, which does not exist in the source tree",
                    m.name, m.location
                ),
            );
        }
    }
    if tree.join(PREBUILD_SCRIPT).exists() {
        f.error(
            at("dir"),
            format!("the source tree has its own {PREBUILD_SCRIPT}; kmodfarm ships its PRE_BUILD script under that name: rename yours"),
        );
    }
    if tree.join("dkms.conf").exists() {
        f.warning(
            at("dir"),
            "the source tree has its own dkms.conf; the packages ship the rendered one instead",
        );
    }
}

/// The commands DKMS runs (build command and scripts as the manifest
/// gives them): a warning for each that reaches the network, writes
/// outside the build tree or switches user (rules: `shell_risk`).
fn lint_commands(manifest: &Manifest, at: &dyn Fn(&str) -> String, f: &mut Findings) {
    let b = &manifest.build;
    for (key, value) in [
        ("command", &b.command),
        ("pre_build", &b.pre_build),
        ("post_build", &b.post_build),
        ("post_install", &b.post_install),
    ] {
        let Some(value) = value else { continue };
        if let Some(why) = shell_risk::describe(&shell_risk::risks(value)) {
            f.warning(
                at(key),
                format!("{key} = {}: {why}", dkms_conf::quote(value)),
            );
        }
    }
}

/// A script DKMS runs: the same rules, line by line (comments skipped).
fn lint_script_body(path: &Path, body: &str, f: &mut Findings) {
    for (i, line) in body.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') || code.is_empty() {
            continue;
        }
        if let Some(why) = shell_risk::describe(&shell_risk::risks(code)) {
            f.warning(
                format!("{}:{}", path.display(), i + 1),
                format!("`{}`: {why}", code.trim_end()),
            );
        }
    }
}

/// The longest name a file kmodfarm writes may have (NAME_MAX).
const NAME_MAX: usize = 255;
/// The longest kernel release (the kernel's utsname field: 64 bytes).
const KERNEL_RELEASE_MAX: usize = 64;

/// The package's metadata: a name every file kmodfarm writes can carry,
/// a real maintainer, a summary and description the package linters
/// accept.
fn lint_package(manifest: &Manifest, text: &str, f: &mut Findings) {
    let p = &manifest.package;
    let at = |key: &str| format!("{}:{}", manifest.path.display(), key_line(text, key));
    // The longest file names derived from the name, with the longest kernel
    // release and architecture: the prebuilt .deb and .rpm, the -dkms ones,
    // the kernel-install hook, DKMS's /usr/src/<name>-<version>.
    let kernel = "k".repeat(KERNEL_RELEASE_MAX);
    let (n, v, r) = (&p.name, &p.version, p.release);
    let names = [
        format!("{n}-modules-{kernel}_{v}-{r}_ppc64el.deb"),
        format!("kmod-{n}-{kernel}-{v}-{r}.ppc64le.rpm"),
        format!("{n}-dkms_{v}-{r}_all.deb"),
        format!("{n}-dkms-{v}-{r}.noarch.rpm"),
        format!("40-{n}-dkms.install"),
        format!("{n}-{v}"),
    ];
    let longest = names.iter().max_by_key(|s| s.len()).expect("a list");
    if longest.len() > NAME_MAX {
        let room = NAME_MAX - (longest.len() - n.len());
        f.error(
            at("name"),
            format!(
                "package name is {} characters: the longest file name kmodfarm makes from it (a prebuilt package for a {KERNEL_RELEASE_MAX}-character kernel release, {}…) would be {} bytes, over the {NAME_MAX}-byte limit of file names; use a name of at most {room} characters (with version {v})",
                n.len(),
                longest.replace(&kernel, "<kernel>").chars().take(40).collect::<String>(),
                longest.len()
            ),
        );
    }
    if p.maintainer == kmodfarm_model::manifest::PLACEHOLDER_MAINTAINER
        || p.maintainer.trim_end_matches('>').ends_with(".invalid")
    {
        f.warning(
            at("maintainer"),
            format!("maintainer is a placeholder ({}): write who answers for the package, 'Name <email>'", p.maintainer),
        );
    }
    let max_summary = kmodfarm_model::import::MAX_SUMMARY;
    if p.summary.chars().count() > max_summary {
        f.warning(
            at("summary"),
            format!(
                "summary is {} characters; rpmlint and lintian accept at most {max_summary}",
                p.summary.chars().count()
            ),
        );
    }
    if p.summary.trim_end().ends_with('.') {
        f.warning(
            at("summary"),
            "summary ends with a period; rpmlint and lintian flag it (summary-ended-with-dot)",
        );
    }
    let max_line = kmodfarm_model::import::MAX_DESCRIPTION_LINE;
    if let Some((i, line)) = p
        .description
        .lines()
        .enumerate()
        .find(|(_, l)| l.chars().count() > max_line)
    {
        f.warning(
            at("description"),
            format!("description line {} is {} characters; lintian and rpmlint accept at most {max_line} (description-line-too-long): break it with \\n", i + 1, line.chars().count()),
        );
    }
}

/// The 1-based line of `key = …` in a TOML text (1 when absent).
fn key_line(text: &str, key: &str) -> usize {
    let re = Regex::new(&format!(r"^\s*{}\s*=", regex::escape(key))).expect("valid");
    text.lines()
        .position(|l| re.is_match(l))
        .map_or(1, |i| i + 1)
}

/// A block of code kmodfarm's dkms.conf carries: the only non-assignment
/// lines lint accepts. Its body is one fixed line, an assignment or a
/// command.
struct OwnBlock {
    /// The `if …; then` line, exactly as rendered.
    open: String,
    body: Body,
    /// How messages name it.
    what: &'static str,
}

enum Body {
    Assignment {
        directive: &'static str,
        value: &'static str,
    },
    Command(&'static str),
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Assignment { directive, value } => write!(f, "{directive}=\"{value}\""),
            Body::Command(command) => f.write_str(command),
        }
    }
}

const BLOCK_CLOSE: &str = "fi";

/// kmodfarm's two blocks for package `name`: the prebuilt marker switches
/// the build off for a kernel a prebuilt package serves, and the helper
/// switches AUTOINSTALL off for `dkms autoinstall` of a kernel it skips.
fn own_blocks(name: &str) -> [OwnBlock; 2] {
    let helper = dkms_conf::quote(&helper_path(name));
    [
        OwnBlock {
            open: format!("if [ -n \"${{kernelver:-}}\" ] && [ -f \"/var/lib/kmodfarm/{name}/prebuilt/${{kernelver}}\" ]; then"),
            body: Body::Assignment {
                directive: "BUILD_EXCLUSIVE_KERNEL",
                value: "^$",
            },
            what: "prebuilt block",
        },
        OwnBlock {
            open: format!("if [ ! -x {helper} ] || ! {helper} autoinstall-wants \"$$\"; then"),
            body: Body::Command("unset AUTOINSTALL"),
            what: "autoinstall block",
        },
    ]
}

/// Where one of kmodfarm's blocks sits: its `if` and `fi` lines.
struct BlockAt<'b> {
    open: usize,
    close: usize,
    block: &'b OwnBlock,
}

/// Lints a dkms.conf. `range` is the manifest's; without it the range is
/// read from BUILD_EXCLUSIVE_KERNEL_MIN/_MAX when the file has them.
pub fn lint_dkms_conf(path: &Path, text: &str, range: Option<&KernelRange>) -> Vec<Finding> {
    let mut findings = lint_dkms_conf_only(path, text, range);
    if let Ok(conf) = DkmsConf::parse(text) {
        let mut f = Findings(Vec::new());
        for a in &conf.assignments {
            let runs = a.name == "MAKE"
                || a.name == "CLEAN"
                || a.name.starts_with("PRE_")
                || a.name.starts_with("POST_");
            if !runs {
                continue;
            }
            if let Some(why) = shell_risk::describe(&shell_risk::risks(&a.value)) {
                f.warning(
                    format!("{}:{}", path.display(), a.line),
                    format!("{}={}: {why}", display_name(a), dkms_conf::quote(&a.value)),
                );
            }
        }
        findings.extend(f.0);
    }
    findings
}

/// [`lint_dkms_conf`] without the commands' shell rules (the manifest's
/// lint applies those to the manifest's own lines).
fn lint_dkms_conf_only(path: &Path, text: &str, range: Option<&KernelRange>) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let at = |line: usize| format!("{}:{line}", path.display());
    let conf = match DkmsConf::parse(text) {
        Ok(conf) => conf,
        Err(e) => {
            f.error(at(e.line), e.message);
            return f.0;
        }
    };

    let name = conf.scalar("PACKAGE_NAME").unwrap_or("");
    let own = own_blocks(name);
    let blocks = check_non_assignments(&conf, &own, &at, &mut f);
    let block_of = |a: &Assignment| {
        blocks
            .iter()
            .find(|b| a.line > b.open && a.line < b.close)
            .map(|b| b.block)
    };

    for required in ["PACKAGE_NAME", "PACKAGE_VERSION"] {
        if conf.line_of(required).is_none() {
            f.error(at(1), format!("{required} is missing"));
        }
    }
    let mut seen: BTreeMap<(&str, Option<usize>), usize> = BTreeMap::new();
    for a in &conf.assignments {
        if let Some(block) = block_of(a) {
            let wanted = matches!(block.body, Body::Assignment { directive, value } if a.name == directive && a.value == value);
            if !wanted {
                f.error(
                    at(a.line),
                    format!("only {} belongs in the {}", block.body, block.what),
                );
            }
            continue;
        }
        if let Some((_, why)) = dkms_conf::DEPRECATED_DIRECTIVES
            .iter()
            .find(|(d, _)| *d == a.name)
        {
            f.error(
                at(a.line),
                format!("deprecated directive {}: {why}", a.name),
            );
        } else if !dkms_conf::KNOWN_DIRECTIVES.contains(&a.name.as_str()) {
            f.error(
                at(a.line),
                format!("unknown directive {}: DKMS does not read it", a.name),
            );
        }
        if let Some(first) = seen.insert((&a.name, a.index), a.line) {
            f.warning(
                at(a.line),
                format!(
                    "{} is assigned again (first on line {first}); the last one counts",
                    display_name(a)
                ),
            );
        }
        if let Some((problem, raw)) = needs_quoting(text, a) {
            f.warning(
                at(a.line),
                format!(
                    "the value of {} needs quoting: {problem}; write it as {}={}",
                    display_name(a),
                    display_name(a),
                    dkms_conf::quote(raw)
                ),
            );
        }
    }

    check_arrays(&conf, &at, &mut f);
    // kmodfarm's autoinstall block empties AUTOINSTALL only for kernels the
    // module skips; the file's own setting is the last one outside blocks.
    let autoinstall = conf
        .assignments
        .iter()
        .rev()
        .find(|a| a.name == "AUTOINSTALL" && block_of(a).is_none());
    match autoinstall {
        Some(a) if a.value.eq_ignore_ascii_case("yes") => {}
        _ => f.warning(at(autoinstall.map_or(1, |a| a.line)), "AUTOINSTALL is not \"yes\": DKMS will not build the module for kernels installed later"),
    }
    let regex = conf
        .assignments
        .iter()
        .find(|a| a.name == "BUILD_EXCLUSIVE_KERNEL" && block_of(a).is_none());
    check_range(&conf, regex, range, &at, &mut f);
    f.0
}

fn display_name(a: &Assignment) -> String {
    match a.index {
        Some(i) => format!("{}[{i}]", a.name),
        None => a.name.clone(),
    }
}

/// Every line that is not an assignment is an error, except kmodfarm's own
/// blocks, each accepted once. Returns where they are.
fn check_non_assignments<'b>(
    conf: &DkmsConf,
    own: &'b [OwnBlock],
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) -> Vec<BlockAt<'b>> {
    let mut found: Vec<BlockAt<'b>> = Vec::new();
    let mut lines = conf.other_lines.iter().peekable();
    while let Some((line, text)) = lines.next() {
        let block = own
            .iter()
            .find(|b| b.open == *text && !found.iter().any(|at| std::ptr::eq(at.block, *b)));
        if let Some(block) = block {
            // A command body is a line of its own; an assignment body is
            // among the assignments, checked there.
            if let Body::Command(command) = block.body {
                if lines.next_if(|(_, t)| t == command).is_none() {
                    f.error(
                        at(*line),
                        format!("the {} must hold exactly '{command}'", block.what),
                    );
                    continue;
                }
            }
            if let Some((close, _)) = lines.next_if(|(_, t)| t == BLOCK_CLOSE) {
                found.push(BlockAt {
                    open: *line,
                    close: *close,
                    block,
                });
                continue;
            }
        }
        f.error(
            at(*line),
            format!("'{text}' is not an assignment; DKMS sources dkms.conf with bash, and only assignments (and kmodfarm's own blocks) belong there"),
        );
    }
    found
}

/// What bash would do differently with an unquoted value, and the value as
/// written.
fn needs_quoting<'t>(text: &'t str, a: &Assignment) -> Option<(&'static str, &'t str)> {
    let line = text.lines().nth(a.line - 1)?;
    let raw = line.split_once('=')?.1.trim();
    Some((unquoted_problem(raw)?, raw))
}

fn unquoted_problem(raw: &str) -> Option<&'static str> {
    if raw.starts_with(['"', '\'']) {
        return None;
    }
    if raw.starts_with('~') {
        return Some("a leading ~ is expanded to a home directory");
    }
    if raw.contains(['`']) || raw.contains("$(") {
        return Some("it runs a command when DKMS reads the file");
    }
    if raw.contains([';', '&', '|', '<', '>', '(', ')']) {
        return Some("bash treats ; & | < > ( ) as syntax, not as part of the value");
    }
    None
}

/// The per-module arrays agree: BUILT_MODULE_NAME and DEST_MODULE_LOCATION
/// have the same indices, 0, 1, 2… without gaps, and the optional arrays
/// only use indices of declared modules.
fn check_arrays(conf: &DkmsConf, at: &dyn Fn(usize) -> String, f: &mut Findings) {
    let line_of = |name: &str, index: usize| {
        conf.assignments
            .iter()
            .find(|a| a.name == name && a.index.unwrap_or(0) == index)
            .map_or(1, |a| a.line)
    };
    let names = conf.array("BUILT_MODULE_NAME");
    let dests = conf.array("DEST_MODULE_LOCATION");
    if dests.is_empty() {
        f.error(
            at(1),
            "DEST_MODULE_LOCATION is missing: DKMS does not know where to install the module",
        );
    }
    if names.is_empty() && dests.len() == 1 {
        f.warning(
            at(line_of("DEST_MODULE_LOCATION", 0)),
            "no BUILT_MODULE_NAME: DKMS assumes the module is named after PACKAGE_NAME",
        );
    } else {
        for (array, other, other_name) in [
            ("BUILT_MODULE_NAME", &dests, "DEST_MODULE_LOCATION"),
            ("DEST_MODULE_LOCATION", &names, "BUILT_MODULE_NAME"),
        ] {
            for i in conf.array(array).keys().filter(|i| !other.contains_key(i)) {
                f.error(
                    at(line_of(array, *i)),
                    format!("{array}[{i}] has no {other_name}[{i}]: every module needs both"),
                );
            }
        }
    }
    for array in ["BUILT_MODULE_NAME", "DEST_MODULE_LOCATION"] {
        let indices: Vec<usize> = conf.array(array).keys().copied().collect();
        if let Some(gap) = (0..).zip(&indices).find(|(want, got)| want != *got) {
            f.error(
                at(line_of(array, *gap.1)),
                format!(
                    "{array}[{}] leaves a gap: indices must run 0, 1, 2… (found {})",
                    gap.1,
                    join(&indices)
                ),
            );
        }
    }
    for array in ["BUILT_MODULE_LOCATION", "DEST_MODULE_NAME", "STRIP"] {
        for i in conf.array(array).keys().filter(|i| !names.contains_key(i)) {
            f.error(
                at(line_of(array, *i)),
                format!("{array}[{i}] belongs to no module: there is no BUILT_MODULE_NAME[{i}]"),
            );
        }
    }
    for (i, name) in &names {
        if name.ends_with(".ko") || name.ends_with(".o") {
            f.error(
                at(line_of("BUILT_MODULE_NAME", *i)),
                format!("BUILT_MODULE_NAME[{i}] '{name}' must not end in .ko or .o"),
            );
        }
    }
    for (i, dest) in &dests {
        if !["/kernel", "/updates", "/extra"]
            .iter()
            .any(|r| dest.starts_with(r))
        {
            f.error(at(line_of("DEST_MODULE_LOCATION", *i)), format!("DEST_MODULE_LOCATION[{i}] '{dest}' must begin with /kernel, /updates or /extra"));
        }
    }
}

fn join(indices: &[usize]) -> String {
    indices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// BUILD_EXCLUSIVE_KERNEL accepts exactly the releases in the range, probed
/// just inside and outside each bound in every distro's release scheme.
fn check_range(
    conf: &DkmsConf,
    regex: Option<&Assignment>,
    manifest_range: Option<&KernelRange>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    let min_max = range_from_min_max(conf);
    if let Some(range) = manifest_range {
        for (directive, want) in [
            ("BUILD_EXCLUSIVE_KERNEL_MIN", range.dkms_min()),
            ("BUILD_EXCLUSIVE_KERNEL_MAX", range.dkms_max()),
        ] {
            let have = conf.scalar(directive);
            match (have, want.as_deref()) {
                (None, None) => {}
                (Some(h), Some(w)) if h == w => {}
                (None, Some(w)) => f.warning(
                    at(1),
                    format!("{directive} is missing; DKMS 3.0.11+ reads it (expected \"{w}\")"),
                ),
                (h, w) => f.error(
                    at(conf.line_of(directive).unwrap_or(1)),
                    format!(
                        "{directive} is {} but the manifest's range says {}",
                        h.unwrap_or("unset"),
                        w.unwrap_or("unset")
                    ),
                ),
            }
        }
    }
    let range = manifest_range.cloned().or(min_max);
    let Some(range) = range.filter(|r| !r.is_unbounded()) else {
        return;
    };
    let Some(regex) = regex else {
        f.error(at(1), format!("BUILD_EXCLUSIVE_KERNEL is missing: DKMS 2.8 and 3.0.10 know no other range check and would build for kernels outside {}", describe(&range)));
        return;
    };
    let re = match Regex::new(&regex.value) {
        Ok(re) => re,
        Err(e) => {
            f.error(
                at(regex.line),
                format!("BUILD_EXCLUSIVE_KERNEL is not a valid regular expression: {e}"),
            );
            return;
        }
    };
    let mut wrong_in = Vec::new();
    let mut wrong_out = Vec::new();
    for release in probe_releases(&range) {
        match (re.is_match(release.as_str()), range.contains(&release)) {
            (true, false) => wrong_in.push(release.to_string()),
            (false, true) => wrong_out.push(release.to_string()),
            _ => {}
        }
    }
    if !wrong_in.is_empty() {
        f.error(
            at(regex.line),
            format!(
                "BUILD_EXCLUSIVE_KERNEL accepts kernels outside {}: {}",
                describe(&range),
                examples(&wrong_in)
            ),
        );
    }
    if !wrong_out.is_empty() {
        f.error(
            at(regex.line),
            format!(
                "BUILD_EXCLUSIVE_KERNEL rejects kernels inside {}: {}",
                describe(&range),
                examples(&wrong_out)
            ),
        );
    }
}

fn describe(range: &KernelRange) -> String {
    let b = |b: &Option<VersionBound>| b.as_ref().map_or("any".to_string(), ToString::to_string);
    format!("{} to {}", b(&range.min), b(&range.max))
}

fn examples(releases: &[String]) -> String {
    let shown: Vec<&str> = releases.iter().take(3).map(String::as_str).collect();
    match releases.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The range a dkms.conf states in BUILD_EXCLUSIVE_KERNEL_MIN/_MAX, undoing
/// [`KernelRange::dkms_max`]'s padding.
fn range_from_min_max(conf: &DkmsConf) -> Option<KernelRange> {
    let min = conf
        .scalar("BUILD_EXCLUSIVE_KERNEL_MIN")
        .and_then(|v| v.parse().ok());
    let max = conf.scalar("BUILD_EXCLUSIVE_KERNEL_MAX").and_then(|v| {
        let v = v
            .strip_suffix(".999999")
            .or_else(|| v.strip_suffix("-999999"))
            .unwrap_or(v);
        v.parse().ok()
    });
    (min.is_some() || max.is_some()).then_some(KernelRange { min, max })
}

/// Releases around each bound: every version component one below, at and
/// above the bound, plus the edges of a series, in each distro's scheme.
pub(crate) fn probe_releases(range: &KernelRange) -> Vec<KernelRelease> {
    let mut versions = BTreeSet::new();
    for bound in [&range.min, &range.max].into_iter().flatten() {
        let p = bound.parts();
        let (a, b, c) = (p[0], p[1], p.get(2).copied().unwrap_or(0));
        // Neighbours, and numbers that share a prefix with the bound (6.1
        // against 6.10 and 6.19), the usual regex mistakes.
        let around = |x: u64| {
            [x.saturating_sub(1), x, x + 1, x + 10, x * 10, x * 10 + 9]
                .into_iter()
                .chain([0, 1, 9, 10, 11, 19, 99, 100, 255])
        };
        for major in [a.saturating_sub(1), a, a + 1, a * 10] {
            for minor in around(b) {
                for patch in around(c) {
                    versions.insert((major, minor, patch));
                }
            }
        }
    }
    let mut releases = Vec::new();
    for (x, y, z) in versions {
        let mut forms = vec![
            format!("{x}.{y}.{z}"),
            format!("{x}.{y}.{z}-143-generic"),
            format!("{x}.{y}.{z}-56-amd64"),
            format!("{x}.{y}.{z}+deb12-amd64"),
            format!("{x}.{y}.{z}+deb13-cloud-amd64"),
            format!("{x}.{y}.{z}-503.40.1.el9_5.x86_64"),
            format!("{x}.{y}.{z}-150600.23.53-default"),
        ];
        if z == 0 {
            forms.push(format!("{x}.{y}"));
            forms.push(format!("{x}.{y}-rc3"));
        }
        releases.extend(forms.iter().filter_map(|s| KernelRelease::parse(s).ok()));
    }
    releases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: &str, max: &str) -> KernelRange {
        KernelRange {
            min: Some(min.parse().unwrap()),
            max: Some(max.parse().unwrap()),
        }
    }

    #[test]
    fn probes_straddle_both_bounds() {
        let r = range("5.15", "6.8");
        let probes = probe_releases(&r);
        let inside = probes.iter().filter(|p| r.contains(p)).count();
        assert!(
            inside > 20 && probes.len() - inside > 20,
            "{inside} of {}",
            probes.len()
        );
        for edge in [
            "5.14.255-143-generic",
            "5.15.0-143-generic",
            "6.8.255+deb12-amd64",
            "6.9.0-56-amd64",
        ] {
            assert!(
                probes.iter().any(|p| p.as_str() == edge),
                "{edge} is probed"
            );
        }
    }

    #[test]
    fn a_wrong_regex_is_caught_with_examples() {
        // Off by one at the top: admits 6.9.
        let text = "PACKAGE_NAME=\"m\"\nPACKAGE_VERSION=\"1\"\nAUTOINSTALL=\"yes\"\nBUILT_MODULE_NAME[0]=\"m\"\nDEST_MODULE_LOCATION[0]=\"/updates\"\nBUILD_EXCLUSIVE_KERNEL=\"^(5\\.(1[5-9]|[2-9][0-9]|[1-9][0-9]{2,})|6\\.[0-9])([^0-9]|$)\"\nBUILD_EXCLUSIVE_KERNEL_MIN=\"5.15\"\nBUILD_EXCLUSIVE_KERNEL_MAX=\"6.8.999999\"\n";
        let findings = lint_dkms_conf(Path::new("d.conf"), text, None);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].location, "d.conf:6");
        assert!(
            findings[0]
                .message
                .contains("accepts kernels outside 5.15 to 6.8: 6.9"),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn a_regex_that_forgets_two_digit_minors_is_caught() {
        // `6\.[0-8]` also matches 6.10 to 6.18.
        let text = "PACKAGE_NAME=\"m\"\nPACKAGE_VERSION=\"1\"\nAUTOINSTALL=\"yes\"\nBUILT_MODULE_NAME[0]=\"m\"\nDEST_MODULE_LOCATION[0]=\"/updates\"\nBUILD_EXCLUSIVE_KERNEL=\"^6\\.[0-8]\"\n";
        let findings = lint_dkms_conf(Path::new("d.conf"), text, Some(&range("6.0", "6.8")));
        let errors: Vec<String> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{findings:#?}");
        assert!(
            errors[0].starts_with(
                "d.conf:6: error: BUILD_EXCLUSIVE_KERNEL accepts kernels outside 6.0 to 6.8: 6.10"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn the_generated_regex_passes_for_many_ranges() {
        for (min, max) in [
            ("5.15", "6.8"),
            ("4.18", "5.14"),
            ("6.1.90", "6.12"),
            ("5.4", "5.4"),
            ("3.10", "10.0"),
        ] {
            let r = range(min, max);
            let text = format!(
                "PACKAGE_NAME=\"m\"\nPACKAGE_VERSION=\"1\"\nAUTOINSTALL=\"yes\"\nBUILT_MODULE_NAME[0]=\"m\"\nDEST_MODULE_LOCATION[0]=\"/updates\"\nBUILD_EXCLUSIVE_KERNEL={}\n",
                dkms_conf::quote(&r.dkms_regex().unwrap())
            );
            let findings = lint_dkms_conf(Path::new("d.conf"), &text, Some(&r));
            let errors: Vec<_> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{min}..{max}: {errors:#?}");
        }
    }

    #[test]
    fn unquoted_syntax_is_flagged() {
        let text = "PACKAGE_NAME=m\nPACKAGE_VERSION=1\nAUTOINSTALL=yes\nBUILT_MODULE_NAME[0]=m\nDEST_MODULE_LOCATION[0]=/updates\nMAKE[0]=make&&true\n";
        let findings = lint_dkms_conf(Path::new("d.conf"), text, None);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].location, "d.conf:6");
        assert_eq!(findings[0].severity, Severity::Warning);
    }
}
