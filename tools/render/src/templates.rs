//! The templates: kmodfarm's own, embedded from templates/, each of which a
//! file of the same name in the user's directory replaces. Errors point at
//! the template file and line a person has to fix.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use tera::{Tera, Value};

use crate::RenderError;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/", $name)))),*]
    };
}

/// Every built-in template, by file name.
pub const BUILTIN: &[(&str, &str)] = builtin![
    "_header.tera",
    "_system_map.sh.tera",
    "dkms.conf.tera",
    "kmodfarm-prebuild.sh.tera",
    "kmodfarm-dkms.sh.tera",
    "debian-postinst.sh.tera",
    "debian-prerm.sh.tera",
    "debian-postrm.sh.tera",
    "rpm-post.sh.tera",
    "rpm-preun.sh.tera",
    "rpm-postun.sh.tera",
    "kernel-postinst.sh.tera",
    "kernel-header-postinst.sh.tera",
    "kernel-install.sh.tera",
    "modules-load.conf.tera",
    "modprobe.conf.tera",
    "initramfs-tools.conf.tera",
    "dracut.conf.tera",
    "host-install.sh.tera",
    "host-modules.service.tera",
    "host-kernel-postinst.sh.tera",
];

/// One template's text and where it came from.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub name: String,
    /// The file a person would edit: the override, or kmodfarm's templates/.
    pub path: PathBuf,
    pub text: String,
}

/// The templates in effect: built-ins with the user's overrides applied.
pub fn sources(override_dir: Option<&Path>) -> Result<Vec<TemplateSource>, RenderError> {
    let mut by_name: BTreeMap<String, TemplateSource> = BUILTIN
        .iter()
        .map(|(name, text)| {
            let source = TemplateSource {
                name: name.to_string(),
                path: Path::new("templates").join(name),
                text: text.to_string(),
            };
            (name.to_string(), source)
        })
        .collect();
    let Some(dir) = override_dir else {
        return Ok(by_name.into_values().collect());
    };
    let read_dir_err = |source| RenderError::ReadTemplates {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_dir_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_dir_err)?;
    entries.sort();
    for path in entries {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        // Other files (a README, editor backups) may sit beside the overrides.
        if !name.ends_with(".tera") {
            continue;
        }
        let Some(slot) = by_name.get_mut(&name) else {
            return Err(RenderError::UnknownOverride {
                path,
                known: BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let text = std::fs::read_to_string(&path).map_err(|source| RenderError::ReadTemplate {
            path: path.clone(),
            source,
        })?;
        *slot = TemplateSource { name, path, text };
    }
    Ok(by_name.into_values().collect())
}

/// Compiled templates, with their sources for error positions.
pub struct Compiled {
    pub tera: Tera,
    sources: HashMap<String, TemplateSource>,
}

/// Parses every template. Returns the set and one error per template that
/// does not parse (lint reports them all; render stops at the first).
pub fn compile(sources: Vec<TemplateSource>) -> (Compiled, Vec<RenderError>) {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_filter("dkms_quote", dkms_quote);
    tera.register_filter("sh_quote", sh_quote);
    let mut errors = Vec::new();
    for source in &sources {
        if let Err(e) = tera.add_raw_template(&source.name, &source.text) {
            errors.push(parse_error(source, &e));
        }
    }
    let sources = sources.into_iter().map(|s| (s.name.clone(), s)).collect();
    (Compiled { tera, sources }, errors)
}

impl Compiled {
    pub fn render(&self, template: &str, context: &tera::Context) -> Result<String, RenderError> {
        self.tera
            .render(template, context)
            .map_err(|e| self.render_error(template, &e))
    }

    /// Tera reports an undefined variable without a line; find the first
    /// line of the template that mentions it.
    fn render_error(&self, template: &str, err: &tera::Error) -> RenderError {
        static UNDEFINED: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"Variable `([^`]+)` not found in context while rendering '([^']+)'")
                .unwrap()
        });
        let chain = error_chain(err);
        if let Some(c) = UNDEFINED.captures(&chain) {
            let (variable, active) = (&c[1], &c[2]);
            if let Some(source) = self.sources.get(active) {
                let line = first_mention(&source.text, variable);
                return RenderError::Template {
                    location: location(&source.path, line, None),
                    message: format!("variable `{variable}` is not defined (the context has name, version, modules, build, kernels, boot, …)"),
                };
            }
        }
        let path = self
            .sources
            .get(template)
            .map_or_else(|| PathBuf::from(template), |s| s.path.clone());
        RenderError::Template {
            location: path.display().to_string(),
            message: chain,
        }
    }
}

fn parse_error(source: &TemplateSource, err: &tera::Error) -> RenderError {
    static POSITION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"--> (\d+):(\d+)").unwrap());
    let chain = error_chain(err);
    let (line, column) = POSITION
        .captures(&chain)
        .map_or((None, None), |c| (c[1].parse().ok(), c[2].parse().ok()));
    // pest's explanation is the line starting with "= ".
    let message = chain
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .map_or_else(|| chain.clone(), |m| format!("syntax error: {m}"));
    RenderError::Template {
        location: location(&source.path, line, column),
        message,
    }
}

fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

/// The 1-based line of the first whole-word mention of `variable` (or, for
/// `a.b.c`, of its longest prefix that appears) inside a tera tag.
fn first_mention(text: &str, variable: &str) -> Option<usize> {
    let parts: Vec<&str> = variable.split('.').collect();
    (1..=parts.len()).rev().find_map(|n| {
        let needle = regex::escape(&parts[..n].join("."));
        let re = Regex::new(&format!(r"(\{{\{{|\{{%)[^}}]*\b{needle}\b")).ok()?;
        text.lines().position(|l| re.is_match(l)).map(|i| i + 1)
    })
}

fn error_chain(err: &tera::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push('\n');
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

fn string_arg<'a>(filter: &str, value: &'a Value) -> tera::Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| tera::Error::msg(format!("filter {filter} takes a string, got {value}")))
}

/// `{{ x | dkms_quote }}`: a double-quoted shell word that bash reads back
/// unchanged, with `$variables` left live (dkms.conf and shell arguments).
fn dkms_quote(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(kmodfarm_model::dkms_conf::quote(string_arg("dkms_quote", value)?).into())
}

/// `{{ x | sh_quote }}`: a single-quoted shell word, taken literally.
fn sh_quote(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(shell_single_quote(string_arg("sh_quote", value)?).into())
}

pub fn shell_single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_mention_finds_the_tag_not_prose() {
        let text =
            "# version of the thing\n{{ name }}\n{% if build.make %}{{ version }}{% endif %}\n";
        assert_eq!(first_mention(text, "version"), Some(3));
        assert_eq!(first_mention(text, "build.make"), Some(3));
        assert_eq!(first_mention(text, "name.missing"), Some(2));
        assert_eq!(first_mention(text, "absent"), None);
    }

    #[test]
    fn single_quotes_survive() {
        assert_eq!(shell_single_quote("it's"), r"'it'\''s'");
    }
}
