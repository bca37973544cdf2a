//! A throw-away dnf world on this machine (Debian's dnf package): its own
//! installroot, repo definitions and cache, reading yum repositories with
//! every signature check on (`gpgcheck=1`, `repo_gpgcheck=1`).

use std::path::Path;
use std::process::{Command, Output};

/// One yum repository for [`Dnf`]: its id, base URL and key URL.
pub struct YumRepo<'a> {
    pub id: &'a str,
    pub baseurl: &'a str,
    pub gpgkey: &'a str,
}

pub struct Dnf {
    dir: tempfile::TempDir,
}

impl Dnf {
    pub fn new(repos: &[YumRepo<'_>]) -> Dnf {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let defs = dir.path().join("repos.d");
        std::fs::create_dir_all(&defs).unwrap();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        let text: String = repos
            .iter()
            .map(|r| {
                format!(
                    "[{id}]\nname={id}\nbaseurl={url}\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\n\
                     gpgkey={key}\nmetadata_expire=0\n",
                    id = r.id,
                    url = r.baseurl,
                    key = r.gpgkey
                )
            })
            .collect();
        std::fs::write(defs.join("test.repo"), text).unwrap();
        Dnf { dir }
    }

    /// `dnf -y <args>` in this world (RHEL 9's release version).
    pub fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("dnf")
            .arg("-y")
            .arg(format!("--installroot={}", d.join("root").display()))
            .arg(format!("--setopt=reposdir={}", d.join("repos.d").display()))
            .arg(format!("--setopt=cachedir={}", d.join("cache").display()))
            .args(["--releasever=9", "--setopt=install_weak_deps=False"])
            .arg("--setopt=skip_if_unavailable=False")
            .args(args)
            .output()
            .expect("dnf runs (scripts/test-deps.txt installs it)")
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// stdout and stderr of a client, for assertion messages.
pub fn said(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
