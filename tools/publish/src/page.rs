//! The matrix page, `index.html` at the repository root: for every distro
//! and kernel the published index and the build records know, whether a
//! prebuilt module is there, the kernel is left to DKMS, its build failed
//! (with the reason), or it is outside the module's kernel range; the
//! module version, when it was published, and the lines that add the
//! repository with its key (apt, dnf, zypper).
//!
//! [`render_page`] is a pure function of its inputs; the HTML comes from
//! `templates/index.html.tera` (compiled in, autoescaped). The page is
//! static: no JavaScript, one small inline style sheet that turns the
//! tables into stacked cards on a phone. Each kernel row carries
//! `data-distro`, `data-arch`, `data-kernel` and `data-status` so scripts
//! (and the tests) can read the matrix back.

use kmodfarm_model::text::{civil_from_days, escape_markup};

use std::collections::BTreeMap;

use kmodfarm_model::record::{BuildOutcome, BuildRecord, Index, KernelStatus};
use kmodfarm_model::{Distro, KernelRelease, PackageFamily};
use serde::Serialize;

const TEMPLATE: &str = include_str!("../../../templates/index.html.tera");

#[derive(Debug, thiserror::Error)]
#[error("cannot render templates/index.html.tera: {0}")]
pub struct PageError(#[source] tera::Error);

/// How a distro's packages are installed: what the install lines need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageDistro {
    pub id: String,
    pub name: String,
    /// `apt`, `dnf` or `zypper`.
    pub package_manager: String,
    /// Debian/Ubuntu codename (the apt suite the repository publishes).
    pub codename: Option<String>,
    /// The yum directory, relative to the repository root: `rpm/<id>/<arch>`.
    pub yum_path: Option<String>,
}

impl PageDistro {
    pub fn from_distro(d: &Distro) -> PageDistro {
        let deb = d.family == PackageFamily::Deb;
        PageDistro {
            id: d.id.clone(),
            name: d.name.clone(),
            package_manager: d.package_manager.clone(),
            codename: deb.then(|| d.release.clone()),
            yum_path: (!deb).then(|| format!("rpm/{}/{}", d.id, d.arch)),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// The distros the repository serves (names, codenames, yum paths).
    pub distros: Vec<PageDistro>,
    /// Where the repository is served from, for the install lines; without
    /// it they read `REPO_URL` and the page says what to put there.
    pub repo_url: Option<String>,
    /// The published key's name: `keys/<name>.asc` and `keys/<name>.gpg`.
    pub key_name: String,
}

/// The status of one kernel, as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    Prebuilt,
    DkmsOnly,
    Failed,
    OutOfRange,
}

impl CellStatus {
    fn label(self) -> &'static str {
        match self {
            CellStatus::Prebuilt => "prebuilt",
            CellStatus::DkmsOnly => "DKMS only",
            CellStatus::Failed => "failed",
            CellStatus::OutOfRange => "outside the range",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Cell {
    kernel: String,
    status: CellStatus,
    label: &'static str,
    version: String,
    /// The package that installs the module for this kernel.
    package: Option<String>,
    /// Why it is not prebuilt.
    reason: Option<String>,
    log_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct DistroSection {
    id: String,
    name: String,
    arch: String,
    package_manager: Option<String>,
    codename: Option<String>,
    yum_path: Option<String>,
    dkms_package: Option<String>,
    dkms_version: Option<String>,
    /// One per status, in [`STATUSES`] order.
    counts: Vec<StatusCount>,
    kernels: Vec<Cell>,
}

#[derive(Debug, Clone, Serialize)]
struct StatusCount {
    status: CellStatus,
    label: &'static str,
    count: usize,
}

const STATUSES: [CellStatus; 4] = [
    CellStatus::Prebuilt,
    CellStatus::DkmsOnly,
    CellStatus::Failed,
    CellStatus::OutOfRange,
];

/// `index.html` for `index` and the build records behind it.
///
/// The index decides: a kernel with an index entry is prebuilt, one in
/// `without_prebuilt` has that lookup's status. A build record adds what
/// the index does not say (the log tail of a failure) and the kernels it
/// left out: a failed build is "failed", a skipped one or one built but
/// not published is "DKMS only".
pub fn render_page(
    index: &Index,
    records: &[BuildRecord],
    options: &PageOptions,
) -> Result<String, PageError> {
    let mut cells: BTreeMap<(String, String), BTreeMap<KernelRelease, Cell>> = BTreeMap::new();

    for e in &index.entries {
        cells
            .entry((e.distro.clone(), e.arch.clone()))
            .or_default()
            .insert(
                e.kernel_release.clone(),
                Cell {
                    kernel: e.kernel_release.to_string(),
                    status: CellStatus::Prebuilt,
                    label: CellStatus::Prebuilt.label(),
                    version: e.version.clone(),
                    package: Some(e.prebuilt_package.clone()),
                    reason: None,
                    log_tail: Vec::new(),
                },
            );
    }
    for l in &index.without_prebuilt {
        let (status, reason) = match &l.status {
            KernelStatus::Prebuilt { .. } => continue, // an entry says so already
            KernelStatus::Failed { reason } => (CellStatus::Failed, reason.clone()),
            KernelStatus::OutOfRange { reason } => (CellStatus::OutOfRange, reason.clone()),
        };
        let row = cells.entry((l.distro.clone(), l.arch.clone())).or_default();
        row.entry(l.kernel_release.clone()).or_insert_with(|| Cell {
            kernel: l.kernel_release.to_string(),
            status,
            label: status.label(),
            version: index.version.clone(),
            package: match status {
                CellStatus::Failed => l.dkms.as_ref().map(|d| d.package.clone()),
                _ => None,
            },
            reason: Some(reason),
            log_tail: Vec::new(),
        });
    }
    for r in records {
        let row = cells.entry((r.distro.clone(), r.arch.clone())).or_default();
        let dkms = index.dkms.iter().find(|d| d.distro == r.distro);
        let (status, reason, log_tail) = match &r.outcome {
            BuildOutcome::Failed { reason, log_tail } => {
                (CellStatus::Failed, reason.clone(), log_tail.clone())
            }
            BuildOutcome::Skipped { reason } => (CellStatus::DkmsOnly, reason.clone(), vec![]),
            BuildOutcome::Built { .. } | BuildOutcome::Cached { .. } => (
                CellStatus::DkmsOnly,
                "built, but no prebuilt package is published for it".to_string(),
                vec![],
            ),
        };
        let cell = row.entry(r.kernel_release.clone()).or_insert_with(|| Cell {
            kernel: r.kernel_release.to_string(),
            status,
            label: status.label(),
            version: r.version.clone(),
            package: dkms.map(|d| d.package.clone()),
            reason: Some(reason),
            log_tail: Vec::new(),
        });
        if cell.status == CellStatus::Failed && cell.log_tail.is_empty() {
            cell.log_tail = log_tail;
        }
    }

    // Distros with a DKMS package and no kernel rows still get a section.
    for d in &index.dkms {
        if !cells.keys().any(|(distro, _)| distro == &d.distro) {
            cells.entry((d.distro.clone(), String::new())).or_default();
        }
    }

    let sections: Vec<DistroSection> = cells
        .into_iter()
        .map(|((distro, arch), kernels)| {
            let known = options.distros.iter().find(|d| d.id == distro);
            let dkms = index.dkms.iter().find(|d| d.distro == distro);
            // Newest kernel first.
            let kernels: Vec<Cell> = kernels.into_values().rev().collect();
            let counts = STATUSES
                .iter()
                .map(|&status| StatusCount {
                    status,
                    label: status.label(),
                    count: kernels.iter().filter(|k| k.status == status).count(),
                })
                .collect();
            DistroSection {
                name: known
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| distro.clone()),
                package_manager: known.map(|d| d.package_manager.clone()),
                codename: known.and_then(|d| d.codename.clone()),
                yum_path: known.and_then(|d| d.yum_path.clone()),
                dkms_package: dkms.map(|d| d.package.clone()),
                dkms_version: dkms.map(|d| d.version.clone()),
                id: distro,
                arch,
                counts,
                kernels,
            }
        })
        .collect();

    let mut ctx = tera::Context::new();
    ctx.insert("module", &index.module);
    ctx.insert("version", &index.version);
    ctx.insert("generated", &utc(index.freshness.generated));
    ctx.insert("expires", &index.freshness.expires.map(utc));
    ctx.insert("serial", &index.freshness.serial);
    ctx.insert(
        "repo_url",
        options.repo_url.as_deref().unwrap_or("REPO_URL"),
    );
    ctx.insert("repo_url_known", &options.repo_url.is_some());
    ctx.insert("key_name", &options.key_name);
    ctx.insert("distros", &sections);
    let labels: Vec<&str> = STATUSES.iter().map(|s| s.label()).collect();
    ctx.insert("status_labels", &labels);
    let mut tera = tera::Tera::default();
    tera.set_escape_fn(escape_markup);
    // The ".html" name turns autoescaping on.
    tera.add_raw_template("index.html", TEMPLATE)
        .map_err(PageError)?;
    tera.render("index.html", &ctx).map_err(PageError)
}

/// `2023-11-14 22:13 UTC`.
fn utc(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}
