//! Broken templates: the error names the template file and line to fix,
//! and nothing is written.

mod common;

use std::fs;
use std::path::Path;

use kmodfarm_render::{render_to_dir, RenderError, RenderOptions};

fn with_override(dir: &Path, name: &str, text: &str) -> RenderOptions {
    let templates = dir.join("my-templates");
    fs::create_dir_all(&templates).unwrap();
    fs::write(templates.join(name), text).unwrap();
    RenderOptions {
        templates_dir: Some(templates),
    }
}

/// Renders into a fresh `out` and into one holding a previous rendering;
/// both must fail with the same error and leave `out` as it was.
fn fails_without_writing(opts: &RenderOptions) -> String {
    let manifest = common::example_manifest();
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh/render");
    let err = render_to_dir(&manifest, opts, &fresh).unwrap_err();
    assert!(
        !fresh.exists() && !tmp.path().join("fresh").exists(),
        "nothing is created on error"
    );

    let previous = tmp.path().join("previous");
    render_to_dir(&manifest, &RenderOptions::default(), &previous).unwrap();
    let before = snapshot_dir(&previous);
    let again = render_to_dir(&manifest, opts, &previous).unwrap_err();
    assert_eq!(
        snapshot_dir(&previous),
        before,
        "the previous rendering is untouched"
    );
    assert_eq!(err.to_string(), again.to_string());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no staging directory is left behind"
    );
    err.to_string()
}

fn snapshot_dir(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// An override `template` with `text` fails without writing, and the error
/// starts with the override's path and `at` (`4:`, line 4) and names `what`.
#[track_caller]
fn refused_at(template: &str, text: &str, at: &str, what: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let message = fails_without_writing(&with_override(tmp.path(), template, text));
    let file = tmp.path().join("my-templates").join(template);
    assert!(
        message.starts_with(&format!("{}:{at}", file.display())),
        "{message}"
    );
    assert!(message.contains(what), "{message}");
}

#[test]
fn syntax_error_names_the_override_and_its_line() {
    refused_at(
        "dkms.conf.tera",
        "# my dkms.conf\nPACKAGE_NAME={{ name }}\n{% if version %}\nPACKAGE_VERSION={{ version }\n{% endif %}\n",
        "4:",
        "syntax error",
    );
}

#[test]
fn undefined_variable_names_the_template_and_line() {
    refused_at(
        "kernel-postinst.sh.tera",
        "#!/bin/sh\n# hook for {{ name }}\nset -u\nexec {{ helper_path }} kernel-installed \"$1\"\n",
        "4: ",
        "`helper_path` is not defined",
    );
}

#[test]
fn undefined_field_in_an_included_template_points_at_the_include() {
    refused_at(
        "_header.tera",
        "# {{ generated_by }}\n# {{ build.compiler }}\n",
        "2: ",
        "build.compiler",
    );
}

#[test]
fn an_override_that_replaces_nothing_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = with_override(tmp.path(), "dkms.tera", "x\n");
    let message = fails_without_writing(&opts);
    assert!(
        message.contains("dkms.tera: no built-in template has this name"),
        "{message}"
    );
    assert!(
        message.contains("dkms.conf.tera"),
        "lists the real names: {message}"
    );
}

#[test]
fn an_override_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = with_override(
        tmp.path(),
        "modules-load.conf.tera",
        "# mine\n{% for m in boot.load %}{{ m }}\n{% endfor %}",
    );
    let files = kmodfarm_render::render(&common::example_manifest(), &opts).unwrap();
    assert_eq!(
        common::file(&files, "modules-load.d/kmfdemo.conf").contents,
        "# mine\nkmfdemo\n"
    );
}

#[test]
fn an_unwritable_destination_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("occupied");
    fs::write(&out, "a file, not a directory").unwrap();
    let err =
        render_to_dir(&common::example_manifest(), &RenderOptions::default(), &out).unwrap_err();
    assert!(matches!(err, RenderError::NotARenderDir { .. }), "{err}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "a file, not a directory");
}
