//! `kmodfarm.toml`: what a module is, how it builds, which kernels and
//! distros it targets. Strict: unknown keys are errors, and every error names
//! the file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::distro::DistroSet;
use crate::kernel::{KernelRange, VersionBound};
use crate::SourcePos;

pub const FILE_NAME: &str = "kmodfarm.toml";

/// The maintainer `init` writes when it finds none: valid, so the manifest
/// loads, and flagged by lint until replaced.
pub const PLACEHOLDER_MAINTAINER: &str = "Unknown Maintainer <maintainer@example.invalid>";

/// Why a manifest cannot be loaded.
pub type ManifestError = crate::source_pos::TomlFileError;

/// A validated manifest. Paths are as written (relative to `root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file this came from, for messages.
    pub path: PathBuf,
    /// The directory holding the manifest; `source.dir` is relative to it.
    pub root: PathBuf,
    pub package: PackageMeta,
    pub source_dir: PathBuf,
    pub modules: Vec<ModuleSpec>,
    pub build: BuildSpec,
    pub kernels: KernelRange,
    pub distros: Vec<String>,
    pub boot: BootSpec,
    pub signing: Option<Signing>,
    /// What the boot test runs after loading the modules (`[test]`).
    pub test: TestSpec,
    /// How the target side's boot unit fits the host's services (`[host]`).
    pub host: HostSpec,
    distro_positions: Vec<SourcePos>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageMeta {
    pub name: String,
    pub version: String,
    /// Package revision: Debian revision and RPM Release.
    #[serde(default = "one")]
    pub release: u32,
    pub license: String,
    pub summary: String,
    pub description: String,
    pub maintainer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleSpec {
    /// The kernel module's name, without `.ko`.
    pub name: String,
    /// Where the build leaves `<name>.ko`, relative to the source tree.
    pub location: String,
    /// Where DKMS installs it below `/lib/modules/<kernel>`.
    pub dest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KernelInput {
    /// The kernel's real System.map (symbol addresses), not Debian's placeholder.
    SystemMap,
    /// The kernel's .config.
    Config,
}

impl fmt::Display for KernelInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelInput::SystemMap => "system-map",
            KernelInput::Config => "config",
        })
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    #[default]
    Zst,
    Xz,
    None,
    /// Whatever the target distro compresses its own modules with.
    Distro,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zst => ".ko.zst",
            Compression::Xz => ".ko.xz",
            Compression::None | Compression::Distro => ".ko",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build command; default: kbuild's `make -C <kernel build dir> M=<source> modules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Scripts run by DKMS, relative to the source tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install: Option<String>,
    /// Per-kernel inputs besides the headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<KernelInput>,
    #[serde(default)]
    pub compression: Compression,
    /// The module's own dkms.conf (a path in the source tree), read by
    /// bash for each kernel as DKMS reads it: its MAKE/MAKE_MATCH,
    /// PATCH/PATCH_MATCH, PRE_/POST_BUILD, BUILT_MODULE_* and
    /// BUILD_EXCLUSIVE_KERNEL/ARCH then decide each prebuilt build, in
    /// place of `command`/`pre_build`/`post_build`. `init --from` sets it
    /// when the file's values depend on the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkms_conf: Option<String>,
}

impl BuildSpec {
    pub fn needs(&self, input: KernelInput) -> bool {
        self.needs.contains(&input)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSpec {
    /// Modules listed in modules-load.d, loaded at every boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load: Vec<String>,
    /// Modules that must load early: added to the initramfs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initramfs: Vec<String>,
    /// modprobe.d `options` lines, by module.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// `[test]`: the boot test's smoke check. After the modules load in the
/// booted kernel, `smoke` runs in busybox sh; its output must contain
/// `expect` (every line of it, when several).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// A busybox sh command, e.g. `cat /dev/kmfdemo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<String>,
    /// Text the smoke command's output must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// Seconds one boot may take before QEMU is killed (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// `[host]`: how the boot unit `<name>-modules.service` that kmodfarm-host
/// installs fits the host's own services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// systemd units (the agent's own service) the boot unit starts before
    /// and is pulled in by, so the module is loaded when they start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
}

/// Longest boot timeout accepted: a boot test is minutes at most.
pub const MAX_BOOT_TIMEOUT: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// Private key (PEM) used by the kernel's sign-file.
    pub key: PathBuf,
    /// X.509 certificate (PEM or DER) enrolled on the hosts (MOK).
    pub cert: PathBuf,
    #[serde(default = "sha256")]
    pub hash: String,
}

fn sha256() -> String {
    "sha256".into()
}

// ---- the file as written, with positions for validation messages ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    package: RawPackage,
    #[serde(default)]
    source: RawSource,
    #[serde(rename = "module")]
    modules: Vec<RawModule>,
    build: Option<Spanned<BuildSpec>>,
    #[serde(default)]
    kernels: RawKernels,
    #[serde(default)]
    targets: RawTargets,
    boot: Option<Spanned<BootSpec>>,
    signing: Option<Signing>,
    test: Option<Spanned<TestSpec>>,
    #[serde(default)]
    host: RawHost,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(default)]
    before: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default = "one")]
    release: u32,
    license: String,
    summary: Spanned<String>,
    description: String,
    maintainer: Spanned<String>,
    homepage: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSource {
    dir: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: Spanned<String>,
    #[serde(default)]
    location: Option<Spanned<String>>,
    #[serde(default)]
    dest: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKernels {
    min: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    distros: Vec<Spanned<String>>,
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ManifestError> {
        Err(ManifestError::Invalid {
            pos: SourcePos::at_offset(self.path, self.text, span.start),
            message: message.into(),
        })
    }
}

/// Debian package names: lowercase letters, digits, `+ - .`, two characters
/// at least, starting alphanumeric. The package names `<name>-dkms` and
/// `kmod-<name>-…` derive from it, so it must be valid for dpkg and rpm.
pub fn valid_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// A version dpkg (upstream part), rpm (Version: no `-`) and DKMS (a path
/// component of /usr/src/<name>-<version>) all accept.
pub fn valid_version(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
}

/// Kernel module names: what kbuild and modprobe accept, under the kernel's
/// 55-character limit (MODULE_NAME_LEN).
pub fn valid_module_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 55
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The unit types a boot unit can be ordered before.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "slice",
    "scope",
    "device",
];

/// A systemd unit name as systemd accepts it: `<prefix>.<type>` (or an
/// instance `<prefix>@<instance>.<type>`), letters, digits and `: - _ . \`,
/// at most 255 characters, of a known unit type.
pub fn valid_unit_name(s: &str) -> bool {
    let Some((stem, kind)) = s.rsplit_once('.') else {
        return false;
    };
    let allowed = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.\\".contains(&b))
    };
    let stem_ok = match stem.split_once('@') {
        Some((prefix, instance)) => allowed(prefix) && allowed(instance),
        None => allowed(stem),
    };
    s.len() <= 255 && UNIT_TYPES.contains(&kind) && stem_ok
}

/// A relative path inside the source tree: no absolute paths, no `..`.
fn inside_tree(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('/') && !s.split('/').any(|c| c == "..")
}

/// The toml parser's message, said for people: a table header given twice
/// comes out as "invalid table header / duplicate key `package` in
/// document root"; say which table, and where it first was.
fn toml_message(message: &str, text: &str, line: usize) -> String {
    let Some(rest) = message.strip_prefix("invalid table header\n") else {
        return message.to_string();
    };
    let key = |s: &str| s.split('`').nth(1).map(str::to_string);
    let table = match rest.strip_prefix("duplicate key ") {
        Some(d) if d.ends_with("in document root") => key(d),
        Some(d) => match (key(d), d.split('`').nth(3)) {
            (Some(k), Some(parent)) => Some(format!("{parent}.{k}")),
            _ => None,
        },
        None => None,
    };
    let Some(table) = table else {
        return message.replace('\n', ": ");
    };
    let header = |l: &str| {
        let l = l.trim();
        l == format!("[{table}]") || l == format!("[[{table}]]")
    };
    let first = text
        .lines()
        .enumerate()
        .find(|(i, l)| i + 1 != line && header(l))
        .map(|(i, _)| i + 1);
    match first {
        Some(first) if first < line => format!(
            "duplicate table [{table}] (the first is on line {first}): write its keys under one [{table}]"
        ),
        _ => format!("duplicate table [{table}]: write its keys under one [{table}]"),
    }
}

impl Manifest {
    /// Reads `path` (a kmodfarm.toml).
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates manifest text; `path` names it in errors and
    /// anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let c = Checker { path, text };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let pos = SourcePos::at_offset(path, text, offset);
            let message = toml_message(e.message().trim_end(), text, pos.line);
            ManifestError::Invalid { pos, message }
        })?;

        let p = &raw.package;
        if !valid_package_name(p.name.get_ref()) {
            return c.err(p.name.span(), format!("package name '{}' is not usable: write lowercase letters, digits and '+', '-', '.', starting with a letter or digit (it names the {0}-dkms package)", p.name.get_ref()));
        }
        if !valid_version(p.version.get_ref()) {
            return c.err(p.version.span(), format!("version '{}' has characters DKMS, dpkg or rpm reject: start with a digit and use only letters, digits, '.', '+' and '~'", p.version.get_ref()));
        }
        if p.summary.get_ref().trim().is_empty() || p.summary.get_ref().contains('\n') {
            return c.err(p.summary.span(), "summary must be one non-empty line");
        }
        if !p.maintainer.get_ref().contains('<') || !p.maintainer.get_ref().ends_with('>') {
            return c.err(
                p.maintainer.span(),
                format!(
                    "maintainer '{}' must read 'Name <email>'",
                    p.maintainer.get_ref()
                ),
            );
        }

        let source_dir = match &raw.source.dir {
            Some(dir) if !inside_tree(dir.get_ref()) && dir.get_ref() != "." => {
                return c.err(
                    dir.span(),
                    format!(
                        "source dir '{}' must be a relative path inside the project",
                        dir.get_ref()
                    ),
                )
            }
            Some(dir) => PathBuf::from(dir.get_ref()),
            None => PathBuf::from("src"),
        };

        if raw.modules.is_empty() {
            return c.err(0..0, "declare at least one [[module]] with a name");
        }
        let mut modules: Vec<ModuleSpec> = Vec::new();
        for m in &raw.modules {
            let name = m.name.get_ref();
            if name.contains('/') || name.contains('\\') {
                return c.err(m.name.span(), format!("module name '{name}' must not contain a path separator: it names <name>.ko; put its directory in 'location'"));
            }
            if !valid_module_name(name) {
                return c.err(m.name.span(), format!("module name '{name}' is not a kernel module name: use letters, digits, '_' and '-', at most 55"));
            }
            if modules.iter().any(|o| o.name == *name) {
                return c.err(m.name.span(), format!("module '{name}' is declared twice"));
            }
            let location = match &m.location {
                Some(l) if l.get_ref() != "." && !inside_tree(l.get_ref()) => {
                    return c.err(
                        l.span(),
                        format!(
                            "location '{}' must be relative to the source tree, without '..'",
                            l.get_ref()
                        ),
                    )
                }
                Some(l) => l.get_ref().trim_end_matches('/').to_string(),
                None => ".".to_string(),
            };
            let dest = match &m.dest {
                Some(d) => {
                    let ok = ["/kernel", "/updates", "/extra"].iter().any(|root| {
                        d.get_ref() == root || d.get_ref().starts_with(&format!("{root}/"))
                    }) && !d.get_ref().split('/').any(|c| c == "..");
                    if !ok {
                        return c.err(d.span(), format!("dest '{}' must lie under /kernel, /updates or /extra (DKMS installs below /lib/modules/<kernel>)", d.get_ref()));
                    }
                    d.get_ref().trim_end_matches('/').to_string()
                }
                None => "/updates/dkms".to_string(),
            };
            modules.push(ModuleSpec {
                name: name.clone(),
                location,
                dest,
            });
        }

        let build_span = raw.build.as_ref().map_or(0..0, |b| b.span());
        let build = raw
            .build
            .as_ref()
            .map(|b| b.get_ref().clone())
            .unwrap_or_default();
        for script in [&build.pre_build, &build.post_build, &build.post_install]
            .into_iter()
            .flatten()
        {
            let first = script.split_whitespace().next().unwrap_or("");
            if !inside_tree(first) {
                return c.err(build_span.clone(), format!("build script '{script}' must be a path inside the source tree (DKMS runs it from there)"));
            }
        }
        if let Some(conf) = &build.dkms_conf {
            if conf.is_empty() || !inside_tree(conf) {
                return c.err(
                    build_span.clone(),
                    format!("dkms_conf '{conf}' must be a path inside the source tree"),
                );
            }
        }

        let bound =
            |b: &Option<Spanned<String>>| -> Result<Option<VersionBound>, ManifestError> {
                match b {
                    None => Ok(None),
                    Some(s) => s.get_ref().parse().map(Some).or_else(
                        |e: crate::kernel::BoundParseError| c.err(s.span(), e.to_string()),
                    ),
                }
            };
        let kernels = KernelRange {
            min: bound(&raw.kernels.min)?,
            max: bound(&raw.kernels.max)?,
        };
        if kernels.is_empty() {
            // Compared at the shorter precision: min 6.8.3, max 6.8 is fine.
            let span = raw.kernels.min.as_ref().unwrap().span();
            return c.err(
                span,
                format!(
                    "kernel range min {} is above max {}",
                    kernels.min.as_ref().unwrap(),
                    kernels.max.as_ref().unwrap()
                ),
            );
        }

        let boot_span = raw.boot.as_ref().map_or(0..0, |b| b.span());
        let boot = raw
            .boot
            .as_ref()
            .map(|b| b.get_ref().clone())
            .unwrap_or_default();
        for name in boot
            .load
            .iter()
            .chain(&boot.initramfs)
            .chain(boot.options.keys())
        {
            if !modules.iter().any(|m| m.name == *name) {
                return c.err(
                    boot_span.clone(),
                    format!("[boot] names module '{name}', which no [[module]] declares"),
                );
            }
        }

        let test_span = raw.test.as_ref().map_or(0..0, |t| t.span());
        let test = raw
            .test
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        if let Some(smoke) = &test.smoke {
            if smoke.trim().is_empty() {
                return c.err(test_span, "[test] smoke is empty: name a command, e.g. \"cat /dev/mydevice\", or remove the key");
            }
        }
        if let Some(expect) = &test.expect {
            if test.smoke.is_none() {
                return c.err(test_span, "[test] expect needs a smoke command whose output it checks: add smoke = \"...\"");
            }
            if expect.trim().is_empty() {
                return c.err(test_span, "[test] expect is empty, so it checks nothing: write the text the smoke command must print, or remove the key");
            }
        }
        if let Some(timeout) = test.timeout {
            if timeout == 0 || timeout > MAX_BOOT_TIMEOUT {
                return c.err(test_span, format!("[test] timeout = {timeout}: give the seconds one boot may take, 1 to {MAX_BOOT_TIMEOUT}"));
            }
        }

        let own_unit = crate::host::unit_name(p.name.get_ref());
        let mut before: Vec<String> = Vec::new();
        for unit in &raw.host.before {
            let name = unit.get_ref();
            if !valid_unit_name(name) {
                return c.err(unit.span(), format!("[host] before: '{name}' is not a systemd unit name: write the agent's unit as systemd names it, e.g. \"myagent.service\" (letters, digits, ':', '-', '_', '.', '\\', one '@' for an instance, and a unit type such as .service or .target)"));
            }
            if *name == own_unit {
                return c.err(unit.span(), format!("[host] before: '{name}' is kmodfarm's own boot unit; name the units that need the module (the agent's service)"));
            }
            if before.contains(name) {
                return c.err(
                    unit.span(),
                    format!("[host] before: '{name}' is listed twice"),
                );
            }
            before.push(name.clone());
        }

        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Manifest {
            path: path.to_path_buf(),
            root,
            package: PackageMeta {
                name: p.name.get_ref().clone(),
                version: p.version.get_ref().clone(),
                release: p.release,
                license: p.license.clone(),
                summary: p.summary.get_ref().clone(),
                description: p.description.clone(),
                maintainer: p.maintainer.get_ref().clone(),
                homepage: p.homepage.clone(),
            },
            source_dir,
            modules,
            build,
            kernels,
            distros: raw
                .targets
                .distros
                .iter()
                .map(|d| d.get_ref().clone())
                .collect(),
            distro_positions: raw
                .targets
                .distros
                .iter()
                .map(|d| SourcePos::at_offset(path, text, d.span().start))
                .collect(),
            boot,
            signing: raw.signing,
            test,
            host: HostSpec { before },
        })
    }

    /// The source tree on disk.
    pub fn source_path(&self) -> PathBuf {
        self.root.join(&self.source_dir)
    }

    /// Every target distro must be defined.
    pub fn check_distros(&self, known: &DistroSet) -> Result<(), ManifestError> {
        for (id, pos) in self.distros.iter().zip(&self.distro_positions) {
            if known.get(id).is_none() {
                return Err(ManifestError::Invalid {
                    pos: pos.clone(),
                    message: format!(
                        "unknown distro '{id}'; known: {}",
                        known.ids().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Renders the manifest back to TOML (for `init`).
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            package: &'a PackageMeta,
            source: BTreeMap<&'static str, String>,
            module: Vec<&'a ModuleSpec>,
            build: &'a BuildSpec,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            kernels: BTreeMap<&'static str, String>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            targets: BTreeMap<&'static str, &'a Vec<String>>,
            boot: &'a BootSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            signing: &'a Option<Signing>,
            #[serde(skip_serializing_if = "is_default_test")]
            test: &'a TestSpec,
            #[serde(skip_serializing_if = "is_default_host")]
            host: &'a HostSpec,
        }
        fn is_default_host(h: &&HostSpec) -> bool {
            **h == HostSpec::default()
        }
        fn is_default_test(t: &&TestSpec) -> bool {
            **t == TestSpec::default()
        }
        let mut kernels = BTreeMap::new();
        if let Some(min) = &self.kernels.min {
            kernels.insert("min", min.to_string());
        }
        if let Some(max) = &self.kernels.max {
            kernels.insert("max", max.to_string());
        }
        let mut targets = BTreeMap::new();
        if !self.distros.is_empty() {
            targets.insert("distros", &self.distros);
        }
        let out = Out {
            package: &self.package,
            source: BTreeMap::from([("dir", self.source_dir.display().to_string())]),
            module: self.modules.iter().collect(),
            build: &self.build,
            kernels,
            targets,
            boot: &self.boot,
            signing: &self.signing,
            test: &self.test,
            host: &self.host,
        };
        toml::to_string_pretty(&out).expect("a manifest always serializes")
    }
}
