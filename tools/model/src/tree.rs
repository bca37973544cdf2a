//! What a module's source tree says about itself, for `init --from`: its
//! license (MODULE_LICENSE and SPDX lines), its maintainer (debian/control,
//! a .spec), and what its build reads besides the kernel headers. Reads
//! files only.

use std::path::{Path, PathBuf};

use crate::manifest::KernelInput;

/// A text file of the tree: its path relative to the tree, and its text.
pub struct TreeFile {
    pub path: PathBuf,
    pub text: String,
}

/// Files looked at: at most this many, each at most this big.
const MAX_FILES: usize = 4000;
const MAX_SIZE: u64 = 2 << 20;

/// The tree's sources and build files (C, headers, Makefiles, Kbuild,
/// shell scripts, configure), skipping VCS and hidden directories.
pub fn read_sources(root: &Path) -> Vec<TreeFile> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = rel.join(&name);
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !name.starts_with('.') && name != "debian" {
                    dirs.push(path);
                }
                continue;
            }
            let wanted = [".c", ".h", ".sh", ".mk", ".pl", ".py"]
                .iter()
                .any(|e| name.ends_with(e))
                || ["Makefile", "Kbuild", "GNUmakefile", "configure"].contains(&name.as_str())
                || name.starts_with("Makefile.")
                || is_executable(&entry);
            let small = entry.metadata().is_ok_and(|m| m.len() <= MAX_SIZE);
            if kind.is_file() && wanted && small && out.len() < MAX_FILES {
                if let Ok(text) = std::fs::read_to_string(root.join(&path)) {
                    out.push(TreeFile { path, text });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn is_executable(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// A finding and where it was seen (`file:line`), for the import's notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub value: T,
    pub from: String,
}

/// The SPDX id for the kernel's MODULE_LICENSE tag. The kernel's own
/// documentation (Documentation/process/license-rules.rst, and the comment
/// over MODULE_LICENSE in include/linux/module.h since Linux 5.0) says
/// "GPL" and "GPL v2" both mean only "GPL version 2", without saying
/// whether "or later" applies: the source files' SPDX lines say that.
/// Without an SPDX line we take GPL-2.0-only: the narrower reading grants
/// no right the author may not have given ("or later" would add them).
fn module_license_spdx(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "GPL" | "GPL v2" => "GPL-2.0-only",
        "GPL and additional rights" => "GPL-2.0-only",
        "Dual BSD/GPL" => "GPL-2.0-only OR BSD-3-Clause",
        "Dual MIT/GPL" => "GPL-2.0-only OR MIT",
        "Dual MPL/GPL" => "GPL-2.0-only OR MPL-1.1",
        "Proprietary" => "LicenseRef-Proprietary",
        _ => return None,
    })
}

/// SPDX ids as the SPDX list now spells them: the deprecated bare
/// `GPL-2.0` is `GPL-2.0-only`, `GPL-2.0+` is `GPL-2.0-or-later` (the
/// kernel's sources still use the old forms).
fn current_spdx(expr: &str) -> String {
    expr.split(' ')
        .map(|word| {
            let family = ["GPL-", "LGPL-", "AGPL-", "GFDL-"];
            if !family.iter().any(|f| word.starts_with(f)) {
                return word.to_string();
            }
            if let Some(base) = word.strip_suffix('+') {
                format!("{base}-or-later")
            } else if word.ends_with("-only") || word.ends_with("-or-later") {
                word.to_string()
            } else {
                format!("{word}-only")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(file, line, value)` of every occurrence of `marker` in the files;
/// the value is what follows it on the line.
fn occurrences<'f>(files: &'f [TreeFile], marker: &str) -> Vec<(&'f TreeFile, usize, &'f str)> {
    let mut out = Vec::new();
    for f in files {
        for (i, line) in f.text.lines().enumerate() {
            if let Some(at) = line.find(marker) {
                out.push((f, i + 1, &line[at + marker.len()..]));
            }
        }
    }
    out
}

fn at(f: &TreeFile, line: usize) -> String {
    format!("{}:{line}", f.path.display())
}

/// The license: the SPDX line of the file that holds MODULE_LICENSE (else
/// the first SPDX line of a .c file), checked against MODULE_LICENSE; or
/// MODULE_LICENSE alone, read as the kernel documents it.
pub fn license(files: &[TreeFile]) -> Option<Found<String>> {
    let tags: Vec<(&TreeFile, usize, String)> = occurrences(files, "MODULE_LICENSE(\"")
        .into_iter()
        .filter_map(|(f, l, rest)| Some((f, l, rest[..rest.find('"')?].to_string())))
        .collect();
    let spdx: Vec<(&TreeFile, usize, String)> = occurrences(files, "SPDX-License-Identifier:")
        .into_iter()
        .map(|(f, l, rest)| {
            let v = rest
                .trim()
                .trim_end_matches("*/")
                .trim_end_matches("-->")
                .trim();
            (f, l, v.to_string())
        })
        .filter(|(_, _, v)| !v.is_empty())
        .collect();
    let module_file = tags.first().map(|(f, _, _)| f.path.clone());
    let chosen = spdx
        .iter()
        .find(|(f, _, _)| Some(&f.path) == module_file.as_ref())
        .or_else(|| {
            spdx.iter()
                .find(|(f, _, _)| f.path.extension().is_some_and(|e| e == "c"))
        });
    match (chosen, tags.first()) {
        (Some((f, l, id)), tag) => {
            let mut from = format!("SPDX-License-Identifier: {id} at {}", at(f, *l));
            if let Some((tf, tl, tag)) = tag {
                from.push_str(&format!(", MODULE_LICENSE(\"{tag}\") at {}", at(tf, *tl)));
            }
            Some(Found {
                value: current_spdx(id),
                from,
            })
        }
        (None, Some((f, l, tag))) => Some(Found {
            value: module_license_spdx(tag)?.to_string(),
            from: format!(
                "MODULE_LICENSE(\"{tag}\") at {} (no SPDX line says whether \"or later\" applies; the kernel reads \"{tag}\" as GPL version 2)",
                at(f, *l)
            ),
        }),
        (None, None) => None,
    }
}

/// Who maintains the module, as the tree's own packaging says:
/// debian/control's Maintainer, else a .spec file's Packager.
pub fn maintainer(root: &Path) -> Option<Found<String>> {
    let field = |path: &Path, key: &str| -> Option<Found<String>> {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().enumerate().find_map(|(i, line)| {
            let (k, v) = line.split_once(':')?;
            let v = v.trim();
            (k.trim().eq_ignore_ascii_case(key) && v.contains('<') && v.ends_with('>')).then(|| {
                Found {
                    value: v.to_string(),
                    from: format!("{}:{}", path.display(), i + 1),
                }
            })
        })
    };
    if let Some(found) = field(&root.join("debian/control"), "Maintainer") {
        return Some(found);
    }
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "spec"))
        .collect();
    specs.sort();
    specs.iter().find_map(|s| field(s, "Packager"))
}

/// What the build reads besides the headers, by the words that show it:
/// each need with the first `file:line` that shows it.
const NEED_MARKERS: &[(KernelInput, &[&str])] = &[
    (KernelInput::SystemMap, &["System.map"]),
    // The headers carry the build's .config; these read the running or
    // installed kernel's own.
    (KernelInput::Config, &["/boot/config-", "/proc/config.gz"]),
];

/// The needs a tree's build shows, with where. `commands` are the
/// dkms.conf's MAKE and PRE_BUILD values with their dkms.conf location.
pub fn needs(files: &[TreeFile], commands: &[(String, &str)]) -> Vec<Found<KernelInput>> {
    let mut out: Vec<Found<KernelInput>> = Vec::new();
    for (need, markers) in NEED_MARKERS {
        let in_commands = commands
            .iter()
            .find(|(_, c)| markers.iter().any(|m| c.contains(m)))
            .map(|(from, _)| from.clone());
        let in_files = || {
            markers
                .iter()
                .flat_map(|m| occurrences(files, m))
                .filter(|(f, l, _)| !is_comment(f, *l))
                .map(|(f, l, _)| at(f, l))
                .min()
        };
        if let Some(from) = in_commands.or_else(in_files) {
            out.push(Found { value: *need, from });
        }
    }
    out
}

/// A line that is only a comment (`#`, `//`, ` * `) mentions, not reads.
fn is_comment(f: &TreeFile, line: usize) -> bool {
    let text = f.text.lines().nth(line - 1).unwrap_or("").trim_start();
    text.starts_with('#')
        || text.starts_with("//")
        || text.starts_with('*')
        || text.starts_with("/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> TreeFile {
        TreeFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn needs_come_from_readers_not_from_comments() {
        let files = [
            file(
                "Makefile",
                "# System.map is not needed here\nobj-m := a.o\n",
            ),
            file("gen.sh", "zcat /proc/config.gz > cfg\n"),
        ];
        let found = needs(&files, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].value, KernelInput::Config);
        assert_eq!(found[0].from, "gen.sh:1");
        let found = needs(
            &files,
            &[(
                "dkms.conf:4".into(),
                "make SYMS=/boot/System.map-$kernelver",
            )],
        );
        assert_eq!(found[0].value, KernelInput::SystemMap);
        assert_eq!(found[0].from, "dkms.conf:4");
    }

    #[test]
    fn spdx_decides_what_module_license_leaves_open() {
        let files = [
            file(
                "a.c",
                "// SPDX-License-Identifier: GPL-2.0\nMODULE_LICENSE(\"GPL\");\n",
            ),
            file("b.c", "/* SPDX-License-Identifier: GPL-2.0+ */\n"),
        ];
        let found = license(&files).unwrap();
        assert_eq!(found.value, "GPL-2.0-only");
        assert!(found.from.contains("a.c:1"), "{}", found.from);
        let found = license(&files[1..]).unwrap();
        assert_eq!(found.value, "GPL-2.0-or-later");
        let found = license(&[file("m.c", "MODULE_LICENSE(\"GPL\");\n")]).unwrap();
        assert_eq!(found.value, "GPL-2.0-only");
        let found = license(&[file("m.c", "MODULE_LICENSE(\"Dual MIT/GPL\");\n")]).unwrap();
        assert_eq!(found.value, "GPL-2.0-only OR MIT");
    }
}
