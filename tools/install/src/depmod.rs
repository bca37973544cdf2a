//! Making a placed module known to modprobe: kmod's index for the kernel.
//!
//! `depmod -a` reads every module of the kernel, and on kernels whose
//! modules are xz-compressed (Debian's 6.12: ~4,000 files) that takes
//! seconds, most of a prebuilt install. When the index is current and the
//! new module can only be appended to it, the [`quick`] update writes the
//! very files depmod would write (the tests compare them byte for byte with
//! the host's depmod) in milliseconds. Whenever that cannot be shown, it
//! leaves everything as it was and says why, and `depmod -a` runs.
//!
//! Appending is exact when: no depmod.d file changes what is indexed; the
//! index lists exactly the module files on disk and none is newer than
//! modules.dep (depmod's own "up to date" rule, plus the file set); every
//! indexed module is in modules.order, so the new one goes last (depmod
//! orders the others by its hash table, which is not reproduced here);
//! the new module depends on no module, exports no symbol, and its name
//! is its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::modindex::{module_name, normalize_alias, Index, Layout};
use crate::state::write_atomic;

/// What the host's kmod is, from `kmod --version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kmod {
    pub version: u32,
    /// The module file suffixes this kmod reads (`.ko`, `.ko.xz`…).
    pub suffixes: Vec<&'static str>,
}

impl Kmod {
    /// `kmod version 30` and a feature line such as `+ZSTD +XZ -ZLIB`.
    pub fn parse(output: &str) -> Option<Kmod> {
        let version = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("kmod version "))?
            .split(['.', ' '])
            .next()?
            .parse()
            .ok()?;
        let features: Vec<&str> = output.split_whitespace().collect();
        let mut suffixes = vec![".ko"];
        for (feature, suffix) in [("+XZ", ".ko.xz"), ("+ZSTD", ".ko.zst"), ("+ZLIB", ".ko.gz")] {
            if features.contains(&feature) {
                suffixes.push(suffix);
            }
        }
        Some(Kmod { version, suffixes })
    }

    pub fn of_host(host: &dyn Host) -> Option<Kmod> {
        let ran = host.run(&["kmod", "--version"]).ok()?;
        ran.success.then(|| Kmod::parse(&ran.stdout)).flatten()
    }

    fn is_module(&self, file_name: &str) -> bool {
        self.suffixes.iter().any(|s| file_name.ends_with(s))
    }
}

/// How the index was brought up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reindexed {
    /// The quick update appended the modules.
    Appended,
    /// The index already listed every module file (a package script ran
    /// depmod or the quick update).
    Current,
    /// `depmod -a` ran, because the quick update could not show it was exact.
    Depmod { why: String },
}

impl Reindexed {
    /// The line the install, the boot unit and `reindex` print.
    pub fn describe(&self, kernel: &str) -> String {
        match self {
            Reindexed::Appended => format!("module index of {kernel} updated"),
            Reindexed::Current => format!("module index of {kernel} already current"),
            Reindexed::Depmod { why } => {
                format!("depmod -a {kernel} (the quick index update does not apply: {why})")
            }
        }
    }
}

/// Brings kernel `kernel`'s index up to date after `added` (host paths
/// under /lib/modules/<kernel>) were placed: the quick update, else
/// `depmod -a`.
pub fn reindex(host: &dyn Host, kernel: &str, added: &[PathBuf]) -> Result<Reindexed> {
    let why = match Kmod::of_host(host) {
        Some(kmod) => match quick(host, kernel, added, &kmod)? {
            Ok(true) => return Ok(Reindexed::Appended),
            Ok(false) => return Ok(Reindexed::Current),
            Err(why) => why,
        },
        None => "`kmod --version` did not say which kmod this is".to_string(),
    };
    host.run_ok(&["depmod", "-a", kernel])?;
    Ok(Reindexed::Depmod { why })
}

/// The text files depmod writes besides modules.dep, and the line each
/// starts with (modules.devname's only when it has entries).
const ALIASES: &str = "modules.alias";
const SOFTDEPS: &str = "modules.softdep";
const WEAKDEPS: &str = "modules.weakdep";
const DEVNAMES: &str = "modules.devname";
const ALIAS_HEADER: &str = "# Aliases extracted from modules themselves.";
const SOFTDEP_HEADER: &str = "# Soft dependencies extracted from modules themselves.";
const WEAKDEP_HEADER: &str = "# Weak dependencies extracted from modules themselves.";
const DEVNAME_HEADER: &str = "# Device nodes to trigger on-demand module loading.";

/// The quick update: `Ok(Ok(true))` when the index now lists `added`
/// exactly as depmod would have written it, `Ok(Ok(false))` when nothing
/// was added and the index is current, `Ok(Err(why))` when exactness
/// cannot be shown here (nothing was written), `Err` when a file could not
/// be read or written.
pub fn quick(
    host: &dyn Host,
    kernel: &str,
    added: &[PathBuf],
    kmod: &Kmod,
) -> Result<std::result::Result<bool, String>> {
    let dir = host.path(&format!("/lib/modules/{kernel}"));
    if let Some(why) = configured(host)? {
        return Ok(Err(why));
    }
    let dep_file = dir.join("modules.dep");
    let Ok(dep_meta) = std::fs::metadata(&dep_file) else {
        return Ok(Err(format!("{} does not exist yet", dep_file.display())));
    };
    let dep_time = dep_meta.modified().map_err(Error::read(&dep_file))?;
    let mut wanted = vec![
        "modules.dep.bin",
        ALIASES,
        "modules.alias.bin",
        SOFTDEPS,
        "modules.symbols",
        "modules.symbols.bin",
        "modules.builtin.bin",
        DEVNAMES,
    ];
    if kmod.version >= 33 {
        wanted.push(WEAKDEPS);
    }
    if let Some(missing) = wanted.iter().find(|f| !dir.join(f).is_file()) {
        return Ok(Err(format!("{} is missing", dir.join(missing).display())));
    }

    let mut new_paths = Vec::new();
    for path in added {
        match path.strip_prefix(&dir) {
            Ok(rel) => new_paths.push(rel.to_string_lossy().into_owned()),
            Err(_) => {
                return Ok(Err(format!(
                    "{} is outside {}",
                    path.display(),
                    dir.display()
                )))
            }
        }
    }
    let on_disk = module_files(&dir, kmod)?;
    for (rel, modified) in &on_disk {
        if !new_paths.contains(rel) && *modified > dep_time {
            return Ok(Err(format!("{rel} is newer than modules.dep")));
        }
    }
    let order_file = dir.join("modules.order");
    if let Ok(meta) = std::fs::metadata(&order_file) {
        if meta.modified().map_err(Error::read(&order_file))? > dep_time {
            return Ok(Err("modules.order is newer than modules.dep".into()));
        }
    }

    let dep_text = read(&dep_file)?;
    let mut lines: Vec<&str> = dep_text.lines().collect();
    let indexed: BTreeSet<&str> = lines.iter().filter_map(|l| l.split(':').next()).collect();
    let disk: BTreeSet<&str> = on_disk
        .keys()
        .map(String::as_str)
        .filter(|p| !new_paths.iter().any(|n| n == p))
        .collect();
    let kept: BTreeSet<&str> = indexed
        .iter()
        .copied()
        .filter(|p| !new_paths.iter().any(|n| n == p))
        .collect();
    if let Some(p) = disk.difference(&kept).next() {
        return Ok(Err(format!("modules.dep does not list {p}")));
    }
    if let Some(p) = kept.difference(&disk).next() {
        return Ok(Err(format!("modules.dep lists {p}, which is not on disk")));
    }
    let [new_path] = new_paths.as_slice() else {
        if new_paths.is_empty() {
            return Ok(Ok(false));
        }
        return Ok(Err(format!(
            "{} modules placed at once; depmod's order among them is its hash table's",
            new_paths.len()
        )));
    };

    let ordered: BTreeSet<String> = match std::fs::read_to_string(&order_file) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => BTreeSet::new(),
    };
    let name = module_name(new_path);
    lines.retain(|l| l.split(':').next() != Some(new_path.as_str()));
    for line in &lines {
        let path = line.split(':').next().unwrap_or_default();
        if module_name(path) == name {
            return Ok(Err(format!("{path} is a module named {name} too")));
        }
        if !ordered.contains(uncompressed(path)) {
            return Ok(Err(format!(
                "{path} is not in modules.order, so depmod's place for {new_path} is its hash table's"
            )));
        }
    }
    if ordered.contains(uncompressed(new_path)) {
        return Ok(Err(format!("{new_path} is in modules.order")));
    }
    let symbols = read(&dir.join("modules.symbols"))?;
    if symbols
        .lines()
        .any(|l| l.rsplit(' ').next() == Some(name.as_str()) && l.starts_with("alias "))
    {
        return Ok(Err(format!("the {name} being replaced exported symbols")));
    }

    let module = match ModuleInfo::read(&dir.join(new_path)) {
        Ok(module) => module,
        Err(why) => return Ok(Err(why)),
    };
    if !module.depends.is_empty() {
        return Ok(Err(format!(
            "{name} depends on {}",
            module.depends.join(", ")
        )));
    }
    if module.exports {
        return Ok(Err(format!("{name} exports symbols")));
    }

    // The new line goes last, as the one module outside modules.order.
    let new_line = format!("{new_path}:");
    lines.push(&new_line);
    // A module's priority in the binary files is its line's number.
    let names: Vec<String> = lines
        .iter()
        .map(|l| module_name(l.split(':').next().unwrap_or_default()))
        .collect();
    let position: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i as u32))
        .collect();
    let layout = Layout::of_kmod(kmod.version);
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut deps = Index::new();
    for (i, (line, name)) in lines.iter().zip(&names).enumerate() {
        if deps.insert(name, line, i as u32).is_err() {
            return Ok(Err(format!("modules.dep: {line:?} is not ASCII")));
        }
    }
    files.push(("modules.dep.bin", deps.write(layout)));

    let alias_lines = replace_entries(
        &read(&dir.join(ALIASES))?,
        |l| l.rsplit(' ').next() == Some(name.as_str()),
        module.aliases.iter().map(|a| format!("alias {a} {name}")),
    );
    let mut aliases = Index::new();
    for line in &alias_lines {
        let Some((pattern, owner)) = line.strip_prefix("alias ").and_then(|l| l.rsplit_once(' '))
        else {
            return Ok(Err(format!("modules.alias: cannot read {line:?}")));
        };
        let Some(&priority) = position.get(owner) else {
            return Ok(Err(format!(
                "modules.alias names {owner}, which modules.dep does not"
            )));
        };
        if let Some(key) = normalize_alias(pattern) {
            if aliases.insert(&key, owner, priority).is_err() {
                return Ok(Err(format!("modules.alias: {line:?} is not ASCII")));
            }
        }
    }
    files.push((ALIASES, with_header(Some(ALIAS_HEADER), &alias_lines)));
    files.push(("modules.alias.bin", aliases.write(layout)));

    let owner_is = |word: usize| {
        let name = name.clone();
        move |l: &str| l.split(' ').nth(word) == Some(name.as_str())
    };
    let mut dependency_files = vec![(SOFTDEPS, SOFTDEP_HEADER, "softdep", &module.softdeps)];
    if kmod.version >= 33 {
        dependency_files.push((WEAKDEPS, WEAKDEP_HEADER, "weakdep", &module.weakdeps));
    }
    for (file, header, keyword, values) in dependency_files {
        let lines = replace_entries(
            &read(&dir.join(file))?,
            owner_is(1),
            values.iter().map(|v| format!("{keyword} {name} {v}")),
        );
        files.push((file, with_header(Some(header), &lines)));
    }
    let devnames = replace_entries(
        &read(&dir.join(DEVNAMES))?,
        owner_is(0),
        module
            .device_node()
            .map(|node| format!("{name} {node}"))
            .into_iter(),
    );
    let devname_header = (!devnames.is_empty()).then_some(DEVNAME_HEADER);
    files.push((DEVNAMES, with_header(devname_header, &devnames)));

    // modules.dep last: its time says the index is current.
    files.push(("modules.dep", with_header(None, &lines)));
    for (file, bytes) in files {
        write_atomic(&dir.join(file), &bytes)?;
    }
    Ok(Ok(true))
}

/// Whether a depmod.d file holds anything but `search` lines (which only
/// decide between modules of the same name, and those are refused anyway).
fn configured(host: &dyn Host) -> Result<Option<String>> {
    for dir in [
        "/etc/depmod.d",
        "/run/depmod.d",
        "/usr/local/lib/depmod.d",
        "/lib/depmod.d",
        "/usr/lib/depmod.d",
    ] {
        let dir = host.path(dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "conf") {
                continue;
            }
            let text = read(&path)?;
            for line in text.lines().map(str::trim) {
                let word = line.split_whitespace().next().unwrap_or("");
                if !(word.is_empty() || word.starts_with('#') || word == "search") {
                    return Ok(Some(format!(
                        "{}: `{word}` changes what depmod indexes",
                        path.display()
                    )));
                }
            }
        }
    }
    Ok(None)
}

/// Every module file below `dir` that depmod would index (relative path,
/// modification time), walked as depmod walks: `build` and `source` left
/// out at every depth, links followed.
fn module_files(dir: &Path, kmod: &Kmod) -> Result<BTreeMap<String, std::time::SystemTime>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).map_err(Error::read(&at))? {
            let entry = entry.map_err(Error::read(&at))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name == "build" || file_name == "source" {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // a dangling link: depmod skips it too
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() && kmod.is_module(&file_name) {
                let rel = path.strip_prefix(dir).expect("below dir");
                let modified = meta.modified().map_err(Error::read(&path))?;
                found.insert(rel.to_string_lossy().into_owned(), modified);
            }
        }
    }
    Ok(found)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::read(path))
}

/// modules.order names modules by their uncompressed file.
fn uncompressed(path: &str) -> &str {
    for suffix in [".xz", ".zst", ".gz"] {
        if let Some(plain) = path.strip_suffix(suffix) {
            return plain;
        }
    }
    path
}

/// A text file's entries (comment lines left out) without `old`'s, then
/// `new`'s.
fn replace_entries(
    text: &str,
    old: impl Fn(&str) -> bool,
    new: impl Iterator<Item = String>,
) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !old(l))
        .map(str::to_string)
        .chain(new)
        .collect()
}

fn with_header<S: AsRef<str>>(header: Option<&str>, lines: &[S]) -> Vec<u8> {
    let mut out = String::new();
    if let Some(header) = header {
        out.push_str(header);
        out.push('\n');
    }
    for line in lines {
        out.push_str(line.as_ref());
        out.push('\n');
    }
    out.into_bytes()
}

/// What depmod reads from a module file.
#[derive(Debug, Default)]
struct ModuleInfo {
    depends: Vec<String>,
    /// `alias=` values in the file's order (depmod's order).
    aliases: Vec<String>,
    softdeps: Vec<String>,
    weakdeps: Vec<String>,
    exports: bool,
}

impl ModuleInfo {
    /// `Err(why)` when the file is not a module read here.
    fn read(path: &Path) -> std::result::Result<ModuleInfo, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let elf = if bytes.starts_with(b"\x7fELF") {
            bytes
        } else if bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            zstd::decode_all(bytes.as_slice())
                .map_err(|e| format!("cannot decompress {}: {e}", path.display()))?
        } else {
            return Err(format!(
                "{} is compressed in a way not read here",
                path.display()
            ));
        };
        let sections = Sections::of(&elf).ok_or_else(|| {
            format!(
                "{} is not a 64-bit little-endian ELF module",
                path.display()
            )
        })?;
        let mut info = ModuleInfo {
            exports: ["__ksymtab", "__ksymtab_gpl", "__ksymtab_strings"]
                .iter()
                .any(|s| sections.get(s).is_some_and(|data| !data.is_empty())),
            ..ModuleInfo::default()
        };
        let modinfo = sections.get(".modinfo").unwrap_or_default();
        for field in modinfo.split(|&b| b == 0).filter(|f| !f.is_empty()) {
            let field = String::from_utf8_lossy(field);
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "depends" => info.depends.extend(
                    value
                        .split(',')
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                ),
                "alias" => info.aliases.push(value.to_string()),
                "softdep" => info.softdeps.push(value.to_string()),
                "weakdep" => info.weakdeps.push(value.to_string()),
                _ => {}
            }
        }
        Ok(info)
    }

    /// modules.devname's entry: `<node> c|b<major>:<minor>`, from the
    /// `devname:` alias and the first major/minor alias, read as depmod
    /// reads them (it stops once it has both).
    fn device_node(&self) -> Option<String> {
        let mut devname = None;
        let mut device = None;
        for alias in &self.aliases {
            if let Some(name) = alias.strip_prefix("devname:") {
                devname = Some(name);
            } else if let Some(numbers) = alias.strip_prefix("char-major-") {
                device = major_minor(numbers).map(|(a, b)| ('c', a, b)).or(device);
            } else if let Some(numbers) = alias.strip_prefix("block-major-") {
                device = major_minor(numbers).map(|(a, b)| ('b', a, b)).or(device);
            }
            if devname.is_some() && device.is_some() {
                break;
            }
        }
        let (kind, major, minor) = device?;
        Some(format!("{} {kind}{major}:{minor}", devname?))
    }
}

/// `10-234` (and depmod's sscanf would stop at anything after the digits).
fn major_minor(text: &str) -> Option<(u32, u32)> {
    let (major, rest) = text.split_once('-')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, digits.parse().ok()?))
}

/// The sections of a 64-bit little-endian ELF file, by name.
struct Sections<'a> {
    elf: &'a [u8],
    table: Vec<(String, usize, usize)>,
}

impl<'a> Sections<'a> {
    fn of(elf: &'a [u8]) -> Option<Sections<'a>> {
        let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
        if elf.get(4..6)? != [2, 1] {
            return None;
        }
        let shoff = usize::try_from(u64_at(0x28)?).ok()?;
        let entsize = usize::from(u16_at(0x3A)?);
        let count = usize::from(u16_at(0x3C)?);
        let names_index = usize::from(u16_at(0x3E)?);
        let header = |i: usize| -> Option<(u32, u32, usize, usize)> {
            let at = shoff.checked_add(i.checked_mul(entsize)?)?;
            Some((
                u32_at(at)?,
                u32_at(at + 4)?,
                usize::try_from(u64_at(at + 0x18)?).ok()?,
                usize::try_from(u64_at(at + 0x20)?).ok()?,
            ))
        };
        let (_, _, names_at, names_size) = header(names_index)?;
        let names = elf.get(names_at..names_at.checked_add(names_size)?)?;
        let mut table = Vec::new();
        for i in 0..count {
            let (name, kind, offset, size) = header(i)?;
            let name = names.get(name as usize..)?;
            let name = &name[..name.iter().position(|&b| b == 0)?];
            // SHT_NOBITS (8) has no bytes in the file.
            let size = if kind == 8 { 0 } else { size };
            elf.get(offset..offset.checked_add(size)?)?;
            table.push((String::from_utf8_lossy(name).into_owned(), offset, size));
        }
        Some(Sections { elf, table })
    }

    fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.table
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|&(_, at, size)| &self.elf[at..at + size])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmod_versions_and_the_suffixes_they_read() {
        let debian12 =
            Kmod::parse("kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n").unwrap();
        assert_eq!(debian12.version, 30);
        assert_eq!(debian12.suffixes, vec![".ko", ".ko.xz", ".ko.zst"]);
        assert_eq!(
            Kmod::parse("kmod version 34.2\n+ZSTD +XZ -ZLIB +OPENSSL\n")
                .unwrap()
                .version,
            34
        );
        assert_eq!(
            Kmod::parse("kmod version 25\n+XZ +ZLIB +OPENSSL\n")
                .unwrap()
                .suffixes,
            vec![".ko", ".ko.xz", ".ko.gz"]
        );
        assert_eq!(Kmod::parse("something else"), None);
    }

    #[test]
    fn device_nodes_are_read_as_depmod_reads_them() {
        let info = |aliases: &[&str]| ModuleInfo {
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..ModuleInfo::default()
        };
        assert_eq!(
            info(&["devname:kmfdemo", "char-major-10-234"])
                .device_node()
                .as_deref(),
            Some("kmfdemo c10:234")
        );
        assert_eq!(
            info(&[
                "block-major-7-*",
                "devname:loop-control",
                "char-major-10-237"
            ])
            .device_node()
            .as_deref(),
            Some("loop-control c10:237")
        );
        // A device name without numbers has no entry (depmod says so and skips it).
        assert_eq!(info(&["devname:lonely"]).device_node(), None);
    }

    #[test]
    fn entries_of_the_replaced_module_go_and_the_new_ones_come_last() {
        let text = "# header\nalias a kmfdemo\nalias b other\nalias c kmfdemo\n";
        let lines = replace_entries(
            text,
            |l| l.ends_with(" kmfdemo"),
            ["alias d kmfdemo".to_string()].into_iter(),
        );
        assert_eq!(lines, vec!["alias b other", "alias d kmfdemo"]);
        assert_eq!(uncompressed("kernel/x.ko.xz"), "kernel/x.ko");
        assert_eq!(uncompressed("updates/x.ko"), "updates/x.ko");
    }
}
