//! kmodfarm's render stage: from a manifest, the dkms.conf, the scripts that
//! register the module with DKMS from a .deb or an .rpm, the kernel hooks and
//! the boot configuration files, each from a tera template a user can
//! replace. Also the lint of a manifest's rendering and of any dkms.conf.
//!
//! Pure except for [`write_all`]: [`render`] computes every file as data.

use std::path::PathBuf;

use kmodfarm_model::Manifest;

mod context;
mod host;
mod lint;
mod templates;
mod write;

pub use context::Context;
pub use host::{render_host_kernel_hook, render_host_unit, render_install_sh};
pub use lint::{lint, lint_dkms_conf, Finding, Severity};
pub use templates::BUILTIN as BUILTIN_TEMPLATES;
pub use write::write_all;

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// A directory whose `*.tera` files replace the built-in templates of
    /// the same name.
    pub templates_dir: Option<PathBuf>,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the render directory: `dkms.conf`, `debian/postinst`.
    pub name: String,
    /// Where the package installs it on the target host; None for
    /// maintainer scripts and scriptlets, which live in package metadata.
    pub install_path: Option<String>,
    pub mode: u32,
    pub contents: String,
    /// The template it came from.
    pub template: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template that does not parse or render; `location` is `file:line`.
    #[error("{location}: {message}")]
    Template { location: String, message: String },
    #[error("cannot read the templates directory {}", path.display())]
    ReadTemplates {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read template {}", path.display())]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no built-in template has this name, so it would replace nothing; rename it to one of: {known}", path.display())]
    UnknownOverride { path: PathBuf, known: String },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: exists and is not a kmodfarm render directory (no {marker} inside); choose another --out or remove it", path.display())]
    NotARenderDir { path: PathBuf, marker: &'static str },
    #[error("{name}: two rendered files have the same path or one is invalid")]
    BadName { name: String },
}

/// What to render: template, output name, install path, mode.
struct Output {
    template: &'static str,
    name: String,
    install_path: Option<String>,
    mode: u32,
}

fn plan(ctx: &Context) -> Vec<Output> {
    let n = &ctx.name;
    let hook = &ctx.hook_name;
    let out = |template, name: String, install_path: Option<String>, mode| Output {
        template,
        name,
        install_path,
        mode,
    };
    let script = 0o755;
    let data = 0o644;
    let mut plan = vec![
        out(
            "dkms.conf.tera",
            "dkms.conf".into(),
            Some(format!("{}/dkms.conf", ctx.source_dir)),
            data,
        ),
        out(
            "kmodfarm-prebuild.sh.tera",
            context::PREBUILD_SCRIPT.into(),
            Some(format!("{}/{}", ctx.source_dir, context::PREBUILD_SCRIPT)),
            script,
        ),
        out(
            "kmodfarm-dkms.sh.tera",
            "kmodfarm-dkms".into(),
            Some(ctx.helper.clone()),
            script,
        ),
        out(
            "debian-postinst.sh.tera",
            "debian/postinst".into(),
            None,
            script,
        ),
        out("debian-prerm.sh.tera", "debian/prerm".into(), None, script),
        out(
            "debian-postrm.sh.tera",
            "debian/postrm".into(),
            None,
            script,
        ),
        // Scriptlet bodies: the package writer adds the interpreter.
        out("rpm-post.sh.tera", "rpm/post".into(), None, data),
        out("rpm-preun.sh.tera", "rpm/preun".into(), None, data),
        out("rpm-postun.sh.tera", "rpm/postun".into(), None, data),
        out(
            "kernel-postinst.sh.tera",
            format!("kernel/postinst.d/{hook}"),
            Some(format!("/etc/kernel/postinst.d/{hook}")),
            script,
        ),
        out(
            "kernel-header-postinst.sh.tera",
            format!("kernel/header_postinst.d/{hook}"),
            Some(format!("/etc/kernel/header_postinst.d/{hook}")),
            script,
        ),
        out(
            "kernel-install.sh.tera",
            format!("kernel/install.d/40-{n}-dkms.install"),
            Some(format!("/usr/lib/kernel/install.d/40-{n}-dkms.install")),
            script,
        ),
    ];
    if !ctx.boot.load.is_empty() {
        plan.push(out(
            "modules-load.conf.tera",
            format!("modules-load.d/{n}.conf"),
            Some(format!("/usr/lib/modules-load.d/{n}.conf")),
            data,
        ));
    }
    if !ctx.boot.options.is_empty() {
        plan.push(out(
            "modprobe.conf.tera",
            format!("modprobe.d/{n}.conf"),
            Some(format!("/usr/lib/modprobe.d/{n}.conf")),
            data,
        ));
    }
    if !ctx.boot.initramfs.is_empty() {
        plan.push(out(
            "initramfs-tools.conf.tera",
            format!("initramfs-tools/{n}.conf"),
            Some(format!("/usr/share/initramfs-tools/modules.d/{n}.conf")),
            data,
        ));
        plan.push(out(
            "dracut.conf.tera",
            format!("dracut/{n}.conf"),
            Some(format!("/usr/lib/dracut/dracut.conf.d/50-{n}.conf")),
            data,
        ));
    }
    plan
}

/// Renders every file for `manifest`. Stops at the first template error.
pub fn render(manifest: &Manifest, opts: &RenderOptions) -> Result<Vec<RenderedFile>, RenderError> {
    let sources = templates::sources(opts.templates_dir.as_deref())?;
    let (compiled, errors) = templates::compile(sources);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    render_with(&compiled, manifest)
}

fn render_with(
    compiled: &templates::Compiled,
    manifest: &Manifest,
) -> Result<Vec<RenderedFile>, RenderError> {
    let ctx = Context::new(manifest);
    let tera_ctx = tera::Context::from_serialize(&ctx)
        .expect("the render context is a struct of strings and lists");
    plan(&ctx)
        .into_iter()
        .map(|o| {
            Ok(RenderedFile {
                contents: compiled.render(o.template, &tera_ctx)?,
                name: o.name,
                install_path: o.install_path,
                mode: o.mode,
                template: o.template.to_string(),
            })
        })
        .collect()
}

/// Renders and writes to `out` in one step; on any error `out` is left as
/// it was (absent, or the previous rendering).
pub fn render_to_dir(
    manifest: &Manifest,
    opts: &RenderOptions,
    out: &std::path::Path,
) -> Result<Vec<RenderedFile>, RenderError> {
    let files = render(manifest, opts)?;
    write_all(&files, out)?;
    Ok(files)
}

/// The render directory kmodfarm uses unless told otherwise.
pub fn default_out_dir(manifest: &Manifest) -> PathBuf {
    manifest.root.join("kmodfarm-out").join("render")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_builtin_template_is_used_or_included() {
        // A manifest that asks for every optional file (boot loading,
        // modprobe options, the initramfs) renders every per-manifest
        // template; partials are included by them, and the host templates
        // are render_install_sh's (host.rs).
        let text = "[package]\nname='t1'\nversion='1'\nlicense='GPL-2.0-only'\nsummary='s'\ndescription='d'\nmaintainer='A <a@b>'\n[[module]]\nname='t1'\n[boot]\nload=['t1']\ninitramfs=['t1']\n[boot.options]\nt1='debug=1'\n";
        let ctx = Context::new(&Manifest::parse(Path::new("kmodfarm.toml"), text).unwrap());
        let rendered: Vec<&str> = plan(&ctx).iter().map(|o| o.template).collect();
        let sources: String = BUILTIN_TEMPLATES.iter().map(|(_, text)| *text).collect();
        for (name, _) in BUILTIN_TEMPLATES {
            let used = rendered.contains(name)
                || (name.starts_with('_') && sources.contains(&format!("{{% include \"{name}\"")))
                || name.starts_with("host-");
            assert!(used, "{name} is never used");
        }
    }
}
