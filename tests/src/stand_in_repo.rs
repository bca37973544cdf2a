//! A stand-in for `kmodfarm publish` (issue 11, not merged yet) and a tiny
//! static HTTP server on 127.0.0.1, so the target side (kmodfarm-host,
//! install.sh) is tested against a real repository layout: lookup files at
//! `prebuilt/<distro>/<arch>/<kernel>.json` with detached armored
//! signatures, `index.json` + `.asc`, and an apt repository under `deb/`
//! (`dists/<suite>/main/binary-<arch>/Packages`, `Release`, `InRelease`)
//! whose package files are real .debs. Signatures are made by the real gpg
//! with throw-away keys. The host tests' repositories come from the real
//! `kmodfarm publish`; this stand-in remains for the faults it cannot be
//! made to write (an index signed by another key, an expired or
//! rolled-back index, a wrong checksum: tools/install/tests/faults.rs).
//! Nothing here is a product feature.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_model::record::{
    DkmsRoute, Freshness, Index, IndexEntry, KernelLookup, KernelStatus, SCHEMA_VERSION,
};
use kmodfarm_model::{Compression, KernelRelease};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::process::{capture, require_tool};

/// A throw-away OpenPGP key in its own GNUPGHOME.
pub struct GpgKey {
    home: TempDir,
    pub fingerprint: String,
    /// The armored public key.
    pub public: String,
}

impl GpgKey {
    pub fn generate(uid: &str) -> Result<GpgKey> {
        require_tool("gpg", "gnupg")?;
        let home = tempfile::Builder::new()
            .prefix("kmodfarm-gpg-")
            .tempdir()
            .map_err(Error::io("/tmp"))?;
        let gpg = |args: &[&str]| {
            capture(
                Command::new("gpg")
                    .arg("--homedir")
                    .arg(home.path())
                    .args(["--batch", "--quiet"])
                    .args(args),
            )
            .and_then(|o| o.ok())
        };
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ])?;
        let listing = gpg(&["--with-colons", "--list-keys", uid])?.stdout;
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap_or_default()
            .to_string();
        let public = gpg(&["--armor", "--export", uid])?.stdout;
        Ok(GpgKey {
            home,
            fingerprint,
            public,
        })
    }

    fn gpg(&self, args: &[&str], file: &Path) -> Result<()> {
        capture(
            Command::new("gpg")
                .arg("--homedir")
                .arg(self.home.path())
                .args([
                    "--batch",
                    "--yes",
                    "--quiet",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                ])
                .args(args)
                .arg(file),
        )?
        .ok()
        .map(drop)
    }

    /// `<file>.asc`, a detached armored signature.
    pub fn sign_detached(&self, file: &Path) -> Result<()> {
        let out = file.with_file_name(format!(
            "{}.asc",
            file.file_name().unwrap().to_string_lossy()
        ));
        self.gpg(
            &[
                "--armor",
                "--detach-sign",
                "--output",
                out.to_str().unwrap(),
            ],
            file,
        )
    }

    /// `InRelease` and `Release.gpg` beside a `Release` file.
    pub fn sign_release(&self, release: &Path) -> Result<()> {
        let dir = release.parent().unwrap();
        self.gpg(
            &[
                "--clearsign",
                "--output",
                dir.join("InRelease").to_str().unwrap(),
            ],
            release,
        )?;
        self.gpg(
            &[
                "--armor",
                "--detach-sign",
                "--output",
                dir.join("Release.gpg").to_str().unwrap(),
            ],
            release,
        )
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The repository directory the stand-in publisher writes.
pub struct StandInRepo {
    pub dir: TempDir,
    pub module: String,
    pub distro: String,
    pub arch: String,
    pub suite: String,
    pub serial: u64,
    /// Seconds since the epoch; `None`: files do not expire.
    pub expires: Option<u64>,
}

/// What `kmodfarm publish` would put in a kernel's lookup file.
pub enum Published<'a> {
    /// A prebuilt module: the .ko.zst and its prebuilt .deb.
    Prebuilt {
        ko: &'a Path,
        deb: &'a Path,
    },
    Failed(&'a str),
    OutOfRange(&'a str),
}

impl StandInRepo {
    pub fn new(module: &str, distro: &str, arch: &str, suite: &str) -> Result<StandInRepo> {
        let dir = tempfile::Builder::new()
            .prefix("kmodfarm-repo-")
            .tempdir()
            .map_err(Error::io("/tmp"))?;
        Ok(StandInRepo {
            dir,
            module: module.into(),
            distro: distro.into(),
            arch: arch.into(),
            suite: suite.into(),
            serial: 1,
            expires: None,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, data: &[u8]) -> Result<PathBuf> {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).map_err(Error::io(&path))?;
        std::fs::write(&path, data).map_err(Error::io(&path))?;
        Ok(path)
    }

    fn freshness(&self) -> Freshness {
        Freshness {
            generated: 1_700_000_000,
            expires: self.expires,
            serial: self.serial,
        }
    }

    /// Copies a .deb into the pool; returns its repository path and sha256.
    pub fn add_deb(&self, deb: &Path) -> Result<(String, String)> {
        let data = std::fs::read(deb).map_err(Error::io(deb))?;
        let relative = format!(
            "deb/pool/main/{}/{}",
            &self.module[..1],
            deb.file_name().unwrap().to_string_lossy()
        );
        self.write(&relative, &data)?;
        Ok((relative, sha256_hex(&data)))
    }

    /// The index entry of a prebuilt module for `kernel`, with its files in
    /// the repository.
    pub fn entry(&self, kernel: &KernelRelease, ko: &Path, deb: &Path) -> Result<IndexEntry> {
        let data = std::fs::read(ko).map_err(Error::io(ko))?;
        let path = format!(
            "prebuilt/{}/{}/{kernel}/{}.ko.zst",
            self.distro, self.arch, self.module
        );
        self.write(&path, &data)?;
        let (package_path, package_sha256) = self.add_deb(deb)?;
        Ok(IndexEntry {
            module: self.module.clone(),
            version: "1.0.0".into(),
            distro: self.distro.clone(),
            arch: self.arch.clone(),
            kernel_release: kernel.clone(),
            path,
            sha256: sha256_hex(&data),
            size: data.len() as u64,
            compression: Compression::Zst,
            signed: false,
            vermagic: format!("{kernel} SMP preempt mod_unload modversions"),
            prebuilt_package: format!("{}-modules-{kernel}", self.module),
            package_path,
            package_sha256,
            dkms_package: format!("{}-dkms", self.module),
        })
    }

    /// Writes and signs `prebuilt/<distro>/<arch>/<kernel>.json`; returns its
    /// path in the repository directory.
    pub fn publish_lookup(
        &self,
        key: &GpgKey,
        kernel: &KernelRelease,
        status: KernelStatus,
        dkms: Option<DkmsRoute>,
    ) -> Result<PathBuf> {
        let lookup = KernelLookup {
            schema_version: SCHEMA_VERSION,
            module: self.module.clone(),
            distro: self.distro.clone(),
            arch: self.arch.clone(),
            kernel_release: kernel.clone(),
            freshness: self.freshness(),
            status,
            dkms,
        };
        let relative = kmodfarm_model::record::kernel_lookup_path(&self.distro, &self.arch, kernel);
        let path = self.write(&relative, &serde_json::to_vec_pretty(&lookup).unwrap())?;
        key.sign_detached(&path)?;
        Ok(path)
    }

    /// Writes and signs `index.json`.
    pub fn publish_index(
        &self,
        key: &GpgKey,
        entries: Vec<IndexEntry>,
        dkms: Vec<DkmsRoute>,
    ) -> Result<()> {
        let index = Index {
            schema_version: SCHEMA_VERSION,
            module: self.module.clone(),
            version: "1.0.0".into(),
            freshness: self.freshness(),
            entries,
            without_prebuilt: Vec::new(),
            dkms,
        };
        let path = self.write("index.json", &serde_json::to_vec_pretty(&index).unwrap())?;
        key.sign_detached(&path)
    }

    /// Writes the apt metadata of every .deb in the pool and signs it.
    pub fn publish_apt(&self, key: &GpgKey) -> Result<()> {
        let pool = self.path().join("deb/pool");
        let mut debs = Vec::new();
        for entry in walk(&pool) {
            if entry.extension().is_some_and(|e| e == "deb") {
                debs.push(entry);
            }
        }
        debs.sort();
        let mut packages = String::new();
        for deb in &debs {
            let control = capture(Command::new("dpkg-deb").arg("-f").arg(deb))?
                .ok()?
                .stdout;
            let data = std::fs::read(deb).map_err(Error::io(deb))?;
            let relative = deb
                .strip_prefix(self.path().join("deb"))
                .unwrap()
                .display()
                .to_string();
            packages += control.trim_end();
            packages += &format!(
                "\nFilename: {relative}\nSize: {}\nSHA256: {}\n\n",
                data.len(),
                sha256_hex(&data)
            );
        }
        let dist = format!("deb/dists/{}", self.suite);
        let list = format!("main/binary-{}/Packages", self.arch);
        self.write(&format!("{dist}/{list}"), packages.as_bytes())?;
        let release = format!(
            "Origin: kmodfarm stand-in\nSuite: {suite}\nCodename: {suite}\nArchitectures: {arch}\nComponents: main\nDate: Tue, 14 Nov 2023 22:13:20 UTC\nSHA256:\n {} {} {list}\n",
            sha256_hex(packages.as_bytes()),
            packages.len(),
            suite = self.suite,
            arch = self.arch
        );
        let path = self.write(&format!("{dist}/Release"), release.as_bytes())?;
        key.sign_release(&path)
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A directory served on 127.0.0.1 for as long as the test process runs
/// (by [`StaticServer`](crate::StaticServer), kmodfarm's own server).
pub struct RepoServer {
    pub url: String,
}

impl RepoServer {
    pub fn serve(dir: &Path) -> Result<RepoServer> {
        Ok(RepoServer {
            url: crate::StaticServer::start(dir)?.leak(),
        })
    }

    /// A URL where nothing listens (a server that is down).
    pub fn down() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }
}
