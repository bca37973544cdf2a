//! The files of the target side, rendered per module at publish time:
//! install.sh for the repository's root, which carries the boot unit and the
//! kernel hook inside it (a host without kmodfarm renders nothing). Paths
//! and the settings file come from `kmodfarm_model::host`, which
//! kmodfarm-host reads too.

use kmodfarm_model::host::{self, HostConfig};
use kmodfarm_model::Manifest;
use serde::Serialize;

use crate::context::Context;
use crate::templates;
use crate::RenderError;

#[derive(Debug, Clone, Serialize)]
struct HostContext {
    config: String,
    config_path: String,
    key_path: String,
    unit: String,
    unit_path: String,
    unit_text: String,
    hook_path: String,
    hook_text: String,
    apt_source: String,
    yum_repo: String,
    zypper_repo: String,
    package: &'static str,
    bin: &'static str,
    /// `[host] before`: the agent's units, started after the boot unit.
    before: Vec<String>,
}

/// install.sh for `manifest`'s module served from `repo` (its base URL),
/// with the repository's armored public key `key` embedded. Pure: the same
/// inputs give the same bytes.
pub fn render_install_sh(
    manifest: &Manifest,
    repo: &str,
    key: &str,
) -> Result<String, RenderError> {
    let (compiled, mut ctx, mut host_ctx) = prepare(manifest, repo, key)?;
    host_ctx.unit_text = compiled.render("host-modules.service.tera", &ctx)?;
    host_ctx.hook_text = compiled.render("host-kernel-postinst.sh.tera", &ctx)?;
    ctx.insert("host", &host_ctx);
    compiled.render("host-install.sh.tera", &ctx)
}

/// The boot unit alone (`<name>-modules.service`), as install.sh writes it.
pub fn render_host_unit(manifest: &Manifest, repo: &str) -> Result<String, RenderError> {
    let (compiled, ctx, _) = prepare(manifest, repo, "")?;
    compiled.render("host-modules.service.tera", &ctx)
}

/// The kernel postinst hook alone, as install.sh writes it.
pub fn render_host_kernel_hook(manifest: &Manifest, repo: &str) -> Result<String, RenderError> {
    let (compiled, ctx, _) = prepare(manifest, repo, "")?;
    compiled.render("host-kernel-postinst.sh.tera", &ctx)
}

fn prepare(
    manifest: &Manifest,
    repo: &str,
    key: &str,
) -> Result<(templates::Compiled, tera::Context, HostContext), RenderError> {
    let (compiled, errors) = templates::compile(templates::sources(None)?);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    let config = HostConfig::from_manifest(manifest, repo);
    let name = &config.name;
    let host_ctx = HostContext {
        config: config.to_toml(),
        config_path: host::config_path(name),
        key_path: config.key.clone(),
        unit: host::unit_name(name),
        unit_path: host::unit_path(name),
        unit_text: String::new(),
        hook_path: host::kernel_hook_path(name),
        hook_text: String::new(),
        apt_source: host::apt_source_path(name),
        yum_repo: host::yum_repo_path(name),
        zypper_repo: host::zypper_repo_path(name),
        package: host::HOST_PACKAGE,
        bin: host::HOST_BIN,
        before: manifest.host.before.clone(),
    };
    let mut ctx = tera::Context::from_serialize(Context::new(manifest))
        .expect("the render context is a struct of strings and lists");
    ctx.insert("repo", &config.repo);
    ctx.insert("key", key);
    ctx.insert("host", &host_ctx);
    Ok((compiled, ctx, host_ctx))
}
