//! `kmodfarm init --from DIR`: a manifest from an existing DKMS source tree.
//! Most users arrive with a dkms.conf; we carry over everything with a
//! meaning in the manifest and list, as notes with their dkms.conf line,
//! what we leave out and why. The shell commands carried over (MAKE, the
//! PRE_/POST_ scripts) are listed too: DKMS runs them on every host.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dkms_conf::{eval, DkmsConf};
use crate::manifest::{valid_package_name, KernelInput, Manifest, ManifestError};
use crate::shell_risk::{self, Risk};
use crate::tree::{self, TreeFile};

/// What dkms.conf does not say and the manifest needs.
pub struct ImportDefaults {
    pub maintainer: String,
    pub license: String,
    /// The tree's sources and build files (see [`tree::read_sources`]),
    /// for what the build reads besides the headers.
    pub tree: Vec<TreeFile>,
}

/// Runs a bash script in a sandbox and returns what it printed: how a
/// dkms.conf that computes its values in shell is read.
pub type Shell<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}:{line}: {message}")]
    Conf {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Missing { file: String, message: String },
    #[error("{file}: line {line} computes values in shell (`{text}`), and bash could not evaluate it: {why}")]
    Shell {
        file: String,
        line: usize,
        text: String,
        why: String,
    },
    /// The manifest made from the file is invalid where no dkms.conf line
    /// is to blame (a default kmodfarm chose).
    #[error("the manifest made from {file} is invalid: {message} (its line `{toml_line}`)")]
    Generated {
        file: String,
        message: String,
        toml_line: String,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A shell command carried into the manifest, for the summary `init` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// The dkms.conf line it came from.
    pub line: usize,
    /// `MAKE[0]`, `PRE_BUILD`…
    pub directive: String,
    pub command: String,
    /// What it does beyond the build (see [`shell_risk`]).
    pub risks: Vec<Risk>,
}

pub struct Imported {
    pub manifest: Manifest,
    /// The manifest text to write.
    pub toml: String,
    /// What was not carried over or was changed, one sentence each.
    pub notes: Vec<String>,
    /// Every shell command carried over.
    pub commands: Vec<Carried>,
}

/// The manifest's text, with the dkms.conf line each line came from.
struct Toml {
    lines: Vec<(String, Option<(usize, String)>)>,
}

impl Toml {
    fn line(&mut self, text: impl Into<String>) {
        self.lines.push((text.into(), None));
    }
    /// `key = "value"`, from `directive` on dkms.conf line `from`.
    fn key(&mut self, key: &str, value: &str, from: Option<(usize, &str)>) {
        self.lines.push((
            format!("{key} = {}", toml_str(value)),
            from.map(|(l, d)| (l, d.to_string())),
        ));
    }
    fn text(&self) -> String {
        let mut out: String = self.lines.iter().map(|(l, _)| format!("{l}\n")).collect();
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }
}

/// Directives the import carries into the manifest (others get a note).
const CARRIED: &[&str] = &[
    "PACKAGE_NAME",
    "PACKAGE_VERSION",
    "BUILT_MODULE_NAME",
    "BUILT_MODULE_LOCATION",
    "DEST_MODULE_LOCATION",
    "PRE_BUILD",
    "POST_BUILD",
    "POST_INSTALL",
    "BUILD_EXCLUSIVE_KERNEL_MIN",
    "BUILD_EXCLUSIVE_KERNEL_MAX",
    "AUTOINSTALL",
    "REMAKE_INITRD",
];

/// Directives the builder reads from a module's own dkms.conf (`dkms_conf`).
const PER_KERNEL_READ: &[&str] = &[
    "MAKE",
    "MAKE_MATCH",
    "PATCH",
    "PATCH_MATCH",
    "BUILD_EXCLUSIVE_KERNEL",
    "BUILD_EXCLUSIVE_ARCH",
];

/// Why a directive kmodfarm does not carry is dropped, and what follows.
fn dropped_because(name: &str) -> &'static str {
    match name {
        "CLEAN" => "deprecated in DKMS 3 (DKMS cleans the build directory itself)",
        "STRIP" => "kmodfarm has no setting for it: DKMS strips the module's debug symbols (its default)",
        "NO_WEAK_MODULES" => "kmodfarm has no setting for it: on RHEL-family hosts DKMS may link the module into other kernels of the same ABI (weak-modules)",
        "MAKE" => "only MAKE[0] is imported: every kernel builds with it",
        "MAKE_MATCH" => "kmodfarm has no per-kernel build commands: every kernel builds with MAKE[0]",
        "PRE_INSTALL" | "POST_ADD" | "POST_REMOVE" => "kmodfarm does not run this script: do its work in the package or in post_install",
        "BUILD_DEPENDS" => "kmodfarm does not order the builds of several DKMS modules",
        "BUILD_EXCLUSIVE_CONFIG" => "kmodfarm does not limit builds by kernel configuration",
        "BUILD_EXCLUSIVE_ARCH" => "kmodfarm builds for the target distros' architectures",
        "PATCH" | "PATCH_MATCH" => "kmodfarm applies no patches: apply them to the source tree",
        "OBSOLETE_BY" => "kmodfarm has no setting for it",
        "MODULES_CONF" | "MODULES_CONF_ALIAS_TYPE" | "MODULES_CONF_OBSOLETES" | "MODULES_CONF_OBSOLETE_ONLY" => "removed in DKMS 3: write [boot] options (a modprobe.d file) instead",
        "UDEV_TRIGGER" => "kmodfarm has no setting for it",
        "DEST_MODULE_NAME" => "a rename on install is not supported: the module keeps its built name",
        "BUILD_EXCLUSIVE_KERNEL" => "kmodfarm renders this regex from [kernels] min/max",
        _ if crate::dkms_conf::KNOWN_DIRECTIVES.contains(&name) => "kmodfarm does not carry it",
        _ => "DKMS does not read it either (not a DKMS directive)",
    }
}

/// Converts dkms.conf `text` (file `file`, in source tree `source_dir`
/// relative to where the manifest will live) into a manifest. A file that
/// computes its values in shell is evaluated with `shell`, as DKMS does.
pub fn from_dkms_conf(
    file: &str,
    text: &str,
    source_dir: &str,
    defaults: &ImportDefaults,
    manifest_path: &Path,
    shell: Option<Shell>,
) -> Result<Imported, ImportError> {
    let mut notes = Vec::new();
    let conf_error = |line: usize, message: String| ImportError::Conf {
        file: file.into(),
        line,
        message,
    };
    let mut kernel_dependent: Vec<String> = Vec::new();
    // Shell code in the file (a conditional, a loop, a command) may read
    // the kernel's files ($kernel_source_dir/.config) that no probe has.
    let mut shell_line: Option<usize> = None;
    let computed = match DkmsConf::parse(text) {
        Ok(mut conf) => match conf.computed_in_shell() {
            None => {
                conf.expand_own_variables();
                Ok(conf)
            }
            Some(at) => Err(at),
        },
        Err(e) if e.shell => Err((e.line, e.text)),
        Err(e) => return Err(conf_error(e.line, format!("`{}`: {}", e.text, e.message))),
    };
    let conf = match computed {
        Ok(conf) => conf,
        Err((line, code)) => {
            let fail = |why: String| ImportError::Shell {
                file: file.into(),
                line,
                text: code.clone(),
                why,
            };
            let shell = shell.ok_or_else(|| fail("no sandbox to run bash in".into()))?;
            let output = shell(text).map_err(&fail)?;
            let evaluation = eval::read_evaluation(&output).map_err(&fail)?;
            notes.push(format!("line {line}: dkms.conf computes values in shell (`{code}`): read as DKMS reads it, by bash (in a sandbox without network), with DKMS's variables ($kernelver…) kept as variables"));
            kernel_dependent = evaluation.kernel_dependent.clone();
            shell_line = Some(line);
            DkmsConf::from_evaluation(text, &evaluation.values)
                .map_err(|why| conf_error(line, why))?
        }
    };

    let at = |name: &'static str| conf.line_of(name).map(|l| (l, name));
    // What only a per-kernel reading of the file gives: values computed
    // from $kernelver, MAKE_MATCH, PATCH, a BUILD_EXCLUSIVE regex. Then
    // kmodfarm's builds read the module's own dkms.conf for each kernel,
    // as DKMS does, and the translation below serves the -dkms package.
    let per_kernel: Vec<String> = kernel_dependent
        .iter()
        .map(|d| format!("{d} depends on $kernelver"))
        .chain(
            [
                "MAKE_MATCH",
                "PATCH",
                "BUILD_EXCLUSIVE_KERNEL",
                "BUILD_EXCLUSIVE_ARCH",
            ]
            .into_iter()
            .filter(|d| conf.line_of(d).is_some())
            .map(|d| format!("{d} is set")),
        )
        .chain(shell_line.map(|l| format!("shell code from line {l} may read the kernel's files")))
        .collect();
    let at_index = |name: &str, i: usize| {
        conf.assignments
            .iter()
            .rev()
            .find(|a| a.name == name && a.index.unwrap_or(0) == i)
            .map(|a| a.line)
    };
    let required = |name: &str| {
        conf.scalar(name)
            .map(str::to_string)
            .ok_or_else(|| ImportError::Missing {
                file: file.to_string(),
                message: format!("{name} is not set; DKMS needs it too"),
            })
    };
    let raw_name = required("PACKAGE_NAME")?;
    let raw_version = required("PACKAGE_VERSION")?;
    // DKMS takes any version; rpm refuses '-' in one and dpkg reads the
    // last '-' as the start of the Debian revision (lime-forensics has
    // "1.9.1-5"): '-' becomes '.', which sorts the same way.
    let version = if raw_version.contains('-')
        && crate::manifest::valid_version(&raw_version.replace('-', "."))
    {
        let version = raw_version.replace('-', ".");
        notes.push(format!("line {}: PACKAGE_VERSION '{raw_version}' became version '{version}' (rpm refuses '-' in a version, dpkg reads it as the revision)", at("PACKAGE_VERSION").map_or(1, |a| a.0)));
        version
    } else {
        raw_version.clone()
    };
    let mut name = raw_name.to_ascii_lowercase().replace('_', "-");
    if !valid_package_name(&name) && valid_package_name(&format!("{name}-module")) {
        name = format!("{name}-module");
    }
    if name != raw_name {
        notes.push(format!("line {}: PACKAGE_NAME '{raw_name}' became package name '{name}' (Debian package names are lowercase, without '_')", at("PACKAGE_NAME").map_or(1, |a| a.0)));
    }

    let names = conf.array("BUILT_MODULE_NAME");
    if names.is_empty() {
        return Err(ImportError::Missing {
            file: file.into(),
            message: "BUILT_MODULE_NAME[0] is not set: name the module(s) the tree builds".into(),
        });
    }
    let locations = conf.array("BUILT_MODULE_LOCATION");
    let dests = conf.array("DEST_MODULE_LOCATION");
    let mut toml = Toml { lines: Vec::new() };
    toml.line(format!("# Imported by `kmodfarm init --from` from {file}."));
    toml.line("");
    toml.line("[package]");
    toml.key("name", &name, at("PACKAGE_NAME"));
    toml.key("version", &version, at("PACKAGE_VERSION"));
    toml.key("license", &defaults.license, None);
    let (summary, description) = texts(&name);
    toml.key("summary", &summary, None);
    toml.key("description", &description, None);
    toml.key("maintainer", &defaults.maintainer, None);
    toml.line("");
    toml.line("[source]");
    toml.key("dir", source_dir, None);
    for (i, module) in &names {
        let from = at_index("BUILT_MODULE_NAME", *i).map(|l| (l, "BUILT_MODULE_NAME"));
        toml.line("");
        toml.line("[[module]]");
        toml.key("name", module, from);
        if let Some(loc) = locations.get(i) {
            let loc = loc.trim_end_matches('/');
            if !loc.is_empty() && loc != "." {
                let from =
                    at_index("BUILT_MODULE_LOCATION", *i).map(|l| (l, "BUILT_MODULE_LOCATION"));
                toml.key("location", loc, from);
            }
        }
        match dests.get(i) {
            Some(dest) => {
                let from =
                    at_index("DEST_MODULE_LOCATION", *i).map(|l| (l, "DEST_MODULE_LOCATION"));
                toml.key("dest", dest.trim_end_matches('/'), from)
            }
            None => notes.push(format!(
                "DEST_MODULE_LOCATION[{i}] is not set; {module} installs to /updates/dkms"
            )),
        }
    }

    let mut commands = Vec::new();
    let mut carry = |line: usize, directive: String, command: &str| {
        commands.push(Carried {
            line,
            directive,
            command: command.to_string(),
            risks: shell_risk::risks(command),
        })
    };
    let mut build = Toml { lines: Vec::new() };
    let make = conf.array("MAKE");
    let mut carried_make = false;
    // The dkms tree's build directory is named by the package name: where
    // the import renamed the package, a path the file spelt with the old
    // name follows the new one (else make looks in a directory DKMS never
    // makes).
    let old_build_dir = format!("{raw_name}/{raw_version}/build");
    let follow_rename = |command: &str, directive: &str, line: usize, notes: &mut Vec<String>| {
        if (name != raw_name || version != raw_version) && command.contains(&old_build_dir) {
            notes.push(format!("line {line}: {directive}'s path {old_build_dir} became ${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build, the build directory of package {name} {version}"));
            command.replace(&old_build_dir, "${PACKAGE_NAME}/${PACKAGE_VERSION}/build")
        } else {
            command.to_string()
        }
    };
    if let Some(command) = make.get(&0) {
        let line = at_index("MAKE", 0).unwrap_or(1);
        let command = &follow_rename(command, "MAKE[0]", line, &mut notes);
        build.key("command", command, Some((line, "MAKE[0]")));
        carry(line, "MAKE[0]".into(), command);
        carried_make = true;
    }
    for (directive, key) in [
        ("PRE_BUILD", "pre_build"),
        ("POST_BUILD", "post_build"),
        ("POST_INSTALL", "post_install"),
    ] {
        if let Some(v) = conf.scalar(directive) {
            let from = at(directive);
            let v = &follow_rename(v, directive, from.map_or(1, |f| f.0), &mut notes);
            build.key(key, v, from);
            carry(from.map_or(1, |f| f.0), directive.into(), v);
        }
    }
    if !per_kernel.is_empty() {
        build.key("dkms_conf", "dkms.conf", None);
        let [old, new] = eval::PROBE_KERNELS;
        let mut why = per_kernel.join(", ");
        if !kernel_dependent.is_empty() {
            why.push_str(&format!("; bash gives {old} and {new} different values"));
        }
        notes.push(format!("dkms_conf = \"dkms.conf\": the file decides per kernel ({why}), so `kmodfarm build` reads it for each kernel as DKMS does (bash, DKMS's variables, MAKE_MATCH, PATCH_MATCH, BUILD_EXCLUSIVE_*) instead of the translation below"));
    }
    let mut needs_commands: Vec<(String, &str)> = Vec::new();
    for directive in ["MAKE", "PRE_BUILD"] {
        if let Some(v) = conf.scalar(directive) {
            needs_commands.push((format!("{file}:{}", at(directive).map_or(1, |a| a.0)), v));
        }
    }
    let mut tree_files: Vec<&TreeFile> = defaults.tree.iter().collect();
    // The PRE_BUILD script first: it is what runs for each kernel.
    if let Some(script) = conf
        .scalar("PRE_BUILD")
        .and_then(|s| s.split_whitespace().next())
    {
        let script = script.trim_start_matches("./");
        tree_files.sort_by_key(|f| f.path != Path::new(script));
    }
    let needs = tree::needs(
        &tree_files.into_iter().map(clone_file).collect::<Vec<_>>(),
        &needs_commands,
    );
    if !needs.is_empty() {
        let list: Vec<String> = needs
            .iter()
            .map(|n| toml_str(&n.value.to_string()))
            .collect();
        build.line(format!("needs = [{}]", list.join(", ")));
        for n in &needs {
            let what = match n.value {
                KernelInput::SystemMap => "the kernel's System.map",
                KernelInput::Config => "the kernel's own .config",
            };
            notes.push(format!(
                "needs = [\"{}\"]: the build reads {what} ({})",
                n.value, n.from
            ));
        }
    }

    let mut kernels = Toml { lines: Vec::new() };
    if let Some(min) = conf.scalar("BUILD_EXCLUSIVE_KERNEL_MIN") {
        kernels.key("min", min, at("BUILD_EXCLUSIVE_KERNEL_MIN"));
    }
    if let Some(max) = conf.scalar("BUILD_EXCLUSIVE_KERNEL_MAX") {
        // kmodfarm writes max 6.8 as 6.8.999999 for sort -V; read it back.
        let max = max.trim_end_matches(".999999").trim_end_matches("-999999");
        kernels.key("max", max, at("BUILD_EXCLUSIVE_KERNEL_MAX"));
    }
    if conf
        .scalar("AUTOINSTALL")
        .is_some_and(|v| !v.eq_ignore_ascii_case("yes"))
    {
        notes.push(format!("line {}: AUTOINSTALL was not 'yes': kmodfarm always sets it, so kernel upgrades rebuild the module", at("AUTOINSTALL").map_or(1, |a| a.0)));
    }
    let mut boot = Toml { lines: Vec::new() };
    if conf
        .scalar("REMAKE_INITRD")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    {
        let all: Vec<String> = names.values().map(|n| toml_str(n)).collect();
        boot.lines.push((
            format!("initramfs = [{}]", all.join(", ")),
            at("REMAKE_INITRD").map(|(l, d)| (l, d.to_string())),
        ));
        notes.push(format!("line {}: REMAKE_INITRD=yes became [boot] initramfs (DKMS 3 ignores REMAKE_INITRD; the package scripts update the initramfs)", at("REMAKE_INITRD").map_or(1, |a| a.0)));
    }
    // Every assignment not carried, named with its line: the last value of
    // each directive and index (the one DKMS uses).
    let mut last: BTreeMap<(&str, Option<usize>), &crate::dkms_conf::Assignment> = BTreeMap::new();
    for a in &conf.assignments {
        last.insert((&a.name, a.index), a);
    }
    let mut dropped: Vec<_> = last
        .values()
        .filter(|a| !CARRIED.contains(&a.name.as_str()))
        .filter(|a| !(a.name == "MAKE" && a.index.unwrap_or(0) == 0 && carried_make))
        .filter(|a| {
            // Same name as the module: nothing is renamed.
            !(a.name == "DEST_MODULE_NAME"
                && names.get(&a.index.unwrap_or(0)) == Some(&a.value.as_str()))
        })
        .collect();
    dropped.sort_by_key(|a| (a.line, a.index));
    for a in dropped {
        let shown = match a.index {
            Some(i) => format!("{}[{i}]", a.name),
            None => a.name.clone(),
        };
        let because = if !per_kernel.is_empty() && PER_KERNEL_READ.contains(&a.name.as_str()) {
            "kmodfarm's prebuilt builds read it from the module's dkms.conf (dkms_conf) for each kernel; the translation has no place for it"
        } else {
            dropped_because(&a.name)
        };
        notes.push(format!(
            "line {}: {shown}={} was dropped: {because}",
            a.line,
            crate::dkms_conf::quote(&a.value),
        ));
    }
    for (line, text) in &conf.other_lines {
        notes.push(format!("line {line}: shell code '{text}' was not imported"));
    }

    for (table, body) in [("build", build), ("kernels", kernels), ("boot", boot)] {
        if !body.lines.is_empty() {
            toml.line("");
            toml.line(format!("[{table}]"));
            toml.lines.extend(body.lines);
        }
    }
    let text_out = toml.text();
    let manifest = Manifest::parse(manifest_path, &text_out).map_err(|e| match e {
        ManifestError::Invalid { pos, message } => match toml.lines.get(pos.line - 1) {
            Some((_, Some((line, directive)))) => {
                conf_error(*line, format!("{directive}: {message}"))
            }
            Some((toml_line, None)) => ImportError::Generated {
                file: file.into(),
                message,
                toml_line: toml_line.clone(),
            },
            None => ImportError::Generated {
                file: file.into(),
                message,
                toml_line: String::new(),
            },
        },
        other => other.into(),
    })?;
    Ok(Imported {
        manifest,
        toml: text_out,
        notes,
        commands,
    })
}

fn clone_file(f: &TreeFile) -> TreeFile {
    TreeFile {
        path: f.path.clone(),
        text: f.text.clone(),
    }
}

/// Longest summary rpmlint accepts (`summary-too-long`).
pub const MAX_SUMMARY: usize = 80;
/// Longest description line lintian and rpmlint accept
/// (`description-line-too-long` beyond 79 and 80).
pub const MAX_DESCRIPTION_LINE: usize = 79;

/// The generated summary and description for package `name`: the summary
/// one line without a final period, the description wrapped to lines
/// lintian and rpmlint accept.
pub fn texts(name: &str) -> (String, String) {
    let summary = format!("{name} kernel module");
    let summary = if summary.len() <= MAX_SUMMARY {
        summary
    } else {
        "Out-of-tree Linux kernel module".to_string()
    };
    let description = wrap(
        &format!(
            "The {name} out-of-tree Linux kernel module, built by DKMS or installed prebuilt."
        ),
        MAX_DESCRIPTION_LINE,
    );
    (summary, description)
}

/// Words of `text` in lines of at most `width` (a longer word alone).
pub fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

/// A TOML basic string on one line (a newline as `\n`), so each line of
/// the manifest text keeps its dkms.conf origin.
fn toml_str(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
