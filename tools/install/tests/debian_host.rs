//! kmodfarm-host on Debian 12 roots (bwrap), against repositories served on
//! 127.0.0.1 (see common/world.rs): install.sh on a host without a
//! compiler, the DKMS question and its No paths, the DKMS route with real
//! headers from Debian's archive, headers before image, kernel upgrades,
//! doctor's planted failures, and uninstall.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::build::highest_glibc;
use common::world::world;
use common::{configure, difference, exists, kmodfarm_host, listing, write_config};
use kmodfarm_tests::{fixtures, run_ok, Sandbox};

/// Removes the compiler (and so DKMS and the headers, which depend on it;
/// not the kernel image, which apt would auto-remove with them): a
/// customer's base system.
fn without_compiler(sandbox: &Sandbox) {
    sandbox.sh_ok("apt-get purge -y -o Dpkg::Use-Pty=0 gcc-12 cpp-12 make dkms >/dev/null");
    let left = sandbox.sh_ok("for t in gcc cc make dkms; do command -v $t || true; done");
    assert!(
        left.stdout.trim().is_empty(),
        "still installed: {}",
        left.stdout
    );
}

fn dkms_status(sandbox: &Sandbox) -> String {
    sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo"]).stdout
}

fn doctor_json(sandbox: &Sandbox) -> (bool, serde_json::Value) {
    let out = kmodfarm_host(sandbox, &["doctor", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    (out.success(), json)
}

fn problems(json: &serde_json::Value) -> Vec<(String, String)> {
    json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["kernel"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const PROMPT: &str = "Sorry, the current kernel version {k} is not found, would you like to build kmfdemo with DKMS? (y/n) [n]: ";

#[test]
fn the_dkms_question_defaults_to_no_and_installs_nothing() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    // The repository knows nothing about 6.1 on this distro: no lookup file.
    configure(&mut sandbox, &w.dkms_only_url, &w.key);
    let kernel = w.k61.as_str();
    let prompt = PROMPT.replace("{k}", kernel);
    let before = listing(&sandbox, &[]);

    // Closed stdin, no terminal (curl | sh without a tty).
    let out = kmodfarm_host(&sandbox, &["install", "--kernel", kernel, "--no-load"]);
    assert_eq!(out.status.code(), Some(10), "{out}");
    assert!(out.stdout.starts_with(&prompt), "{out}");
    assert!(
        out.stdout.contains(&format!("To build it with DKMS later, run: kmodfarm-host install --kernel {kernel} --enable-dkms")),
        "{out}"
    );
    assert_eq!(
        difference(&before, &listing(&sandbox, &[])),
        Vec::<String>::new()
    );

    // An empty answer on a terminal (script(1) gives it a pty).
    let on_tty = |answer: &str| {
        sandbox.sh(&format!(
            "printf '{answer}' | script -qec 'kmodfarm-host install --kernel {kernel} --no-load; echo exit=$?' /dev/null"
        ))
        .unwrap()
    };
    let out = on_tty("\\n");
    assert!(out.stdout.contains(&prompt), "{out}");
    assert!(out.stdout.contains("exit=10"), "{out}");
    let out = on_tty("nope\\n");
    assert!(out.stdout.contains("exit=10"), "{out}");
    assert_eq!(
        difference(&before, &listing(&sandbox, &[])),
        Vec::<String>::new()
    );
    assert!(!exists(&sandbox, "/var/lib/kmfdemo"));
}

#[test]
fn install_sh_installs_the_prebuilt_module_through_apt_on_a_host_without_a_compiler() {
    let w = world();
    let root = fixtures::bookworm();
    let sandbox = Sandbox::new(&root.root).unwrap();
    without_compiler(&sandbox);
    // The customer runs the 6.1 kernel (its signed image from the archive);
    // the 6.12 one comes later as an upgrade. (The shared root has an image
    // of 6.12, pulled in by its headers: the signed or the unsigned package,
    // whichever the archive offered when the root was made, so the one
    // that owns the file goes.)
    let kernel = w.k61.as_str();
    let k_new = w.k612.as_str();
    sandbox.sh_ok(&format!(
        "apt-get update -qq && image=$(dpkg-query -S /boot/vmlinuz-{k_new} | cut -d: -f1) \
         && apt-get purge -y -o Dpkg::Use-Pty=0 \"$image\" >/dev/null 2>&1 \
         && apt-get install -y -o Dpkg::Use-Pty=0 linux-image-{kernel} >/dev/null 2>&1"
    ));
    assert!(!exists(&sandbox, &format!("/boot/vmlinuz-{k_new}")));
    // Everything but package-manager bookkeeping, to compare after uninstall.
    let bookkeeping = [
        "/root/install.sh",
        "/var/lib/apt",
        "/var/cache",
        "/var/lib/dpkg",
        "/var/log",
        "/etc/ld.so.cache",
    ];
    let before = listing(&sandbox, &bookkeeping);

    let out = sandbox.sh_ok(&format!(
        "/usr/lib/apt/apt-helper download-file {url}/install.sh /root/install.sh >/dev/null && sh /root/install.sh --kernel {kernel} --no-load",
        url = w.prebuilt_url
    ));
    let said = out.combined();
    assert!(
        said.contains("prebuilt 1.0.0, prebuilt (package)"),
        "{said}"
    );
    // The package's postinst had kmodfarm-host (installed first by
    // install.sh) append the module to kmod's index instead of running
    // depmod -a; apt's log keeps what the script said.
    let term = sandbox.read_file("/var/log/apt/term.log").unwrap();
    assert!(
        term.contains(&format!("module index of {kernel} updated")),
        "{term}"
    );
    let status = sandbox.run_ok(&[
        "dpkg-query",
        "-W",
        "-f=${Status}",
        &format!("kmfdemo-modules-{kernel}"),
    ]);
    assert_eq!(status.stdout, "install ok installed");
    let file = sandbox.run_ok(&["modinfo", "-k", kernel, "-n", "kmfdemo"]);
    assert_eq!(
        file.stdout.trim(),
        format!("/lib/modules/{kernel}/updates/kmfdemo.ko.zst")
    );
    let dep = sandbox
        .read_file(&format!("/lib/modules/{kernel}/modules.dep"))
        .unwrap();
    assert!(
        dep.lines()
            .any(|l| l.starts_with("updates/kmfdemo.ko.zst:")),
        "depmod did not index it"
    );
    let load = sandbox
        .read_file("/etc/modules-load.d/kmfdemo.conf")
        .unwrap();
    assert!(load.lines().any(|l| l == "kmfdemo"), "{load}");
    assert!(exists(
        &sandbox,
        "/etc/systemd/system/kmfdemo-modules.service"
    ));
    assert!(exists(
        &sandbox,
        "/etc/kernel/postinst.d/zz-kmfdemo-modules"
    ));

    let doctor = kmodfarm_host(&sandbox, &["doctor"]);
    assert!(
        doctor.success() && doctor.stdout.contains("kmfdemo: all is well"),
        "{doctor}"
    );
    assert!(
        doctor
            .stdout
            .contains("1.0.0, prebuilt (package), unsigned"),
        "{doctor}"
    );

    // A kernel upgrade: the image arrives with apt; the hook stages the
    // prebuilt module (no package manager call inside apt), the boot
    // unit's command places it.
    let upgrade = sandbox.sh_ok(&format!(
        "apt-get install -y -o Dpkg::Use-Pty=0 linux-image-{k_new}-unsigned 2>&1"
    ));
    assert!(
        upgrade
            .stdout
            .contains(&format!("kmfdemo: staged the prebuilt module for {k_new}")),
        "{upgrade}"
    );
    assert!(exists(
        &sandbox,
        &format!("/var/lib/kmfdemo/staged/{k_new}/kmfdemo.ko.zst")
    ));
    let doctor = kmodfarm_host(&sandbox, &["doctor", "--json"]);
    assert!(!doctor.success());
    assert!(doctor.stdout.contains("\"module-missing\""), "{doctor}");
    let ensure = kmodfarm_host(&sandbox, &["ensure", "--kernel", k_new, "--no-load"]).expect_ok();
    assert!(
        ensure.stdout.contains("staged by the kernel hook"),
        "{ensure}"
    );
    // The new kernel's package ran depmod; the module is appended to that
    // index (no second depmod -a), and modinfo finds it there.
    assert!(
        ensure
            .stdout
            .contains(&format!("module index of {k_new} updated")),
        "{ensure}"
    );
    let file = sandbox.run_ok(&["modinfo", "-k", k_new, "-n", "kmfdemo"]);
    assert_eq!(
        file.stdout.trim(),
        format!("/lib/modules/{k_new}/updates/kmfdemo.ko.zst")
    );
    assert!(!exists(
        &sandbox,
        &format!("/var/lib/kmfdemo/staged/{k_new}")
    ));
    let doctor = kmodfarm_host(&sandbox, &["doctor"]);
    assert!(doctor.success(), "{doctor}");
    // Running it again changes nothing.
    let again = kmodfarm_host(&sandbox, &["ensure", "--kernel", k_new, "--no-load"]).expect_ok();
    assert!(again.stdout.contains("already installed"), "{again}");

    // Uninstall: back to the host as it was (but for the kernel image the
    // upgrade brought, which is the host's own).
    sandbox.sh_ok(&format!(
        "apt-get purge -y -o Dpkg::Use-Pty=0 linux-image-{k_new}-unsigned >/dev/null 2>&1"
    ));
    let out = kmodfarm_host(&sandbox, &["uninstall"]).expect_ok();
    let after = listing(&sandbox, &bookkeeping);
    let changed: Vec<String> = difference(&before, &after)
        .into_iter()
        // depmod rewrites its index files; their sizes follow the module set.
        .filter(|l| {
            !l.contains(&format!("/lib/modules/{kernel}/modules."))
                && !l.contains(&format!("/lib/modules/{k_new}/modules."))
        })
        .collect();
    assert!(
        changed.is_empty(),
        "uninstall left:\n{}\n{out}",
        changed.join("\n")
    );
    assert!(sandbox
        .run(&["modinfo", "-k", kernel, "-n", "kmfdemo"])
        .unwrap()
        .stdout
        .trim()
        .is_empty());
}

#[test]
fn enable_dkms_installs_the_build_tools_and_headers_and_dkms_builds_the_module() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    without_compiler(&sandbox);
    configure(&mut sandbox, &w.dkms_only_url, &w.key);
    let kernel = w.k612.as_str();
    let out = kmodfarm_host(
        &sandbox,
        &["install", "--kernel", kernel, "--no-load", "--enable-dkms"],
    )
    .expect_ok();
    assert!(out.stdout.contains("DKMS build with kmfdemo-dkms"), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "DKMS built and installed kmfdemo/1.0.0 for {kernel}"
        )),
        "{out}"
    );
    let status = dkms_status(&sandbox);
    assert!(
        status.contains(&format!("kmfdemo/1.0.0, {kernel}, x86_64: installed")),
        "{status}"
    );
    let headers = sandbox.run_ok(&[
        "dpkg-query",
        "-W",
        "-f=${Status}",
        &format!("linux-headers-{kernel}"),
    ]);
    assert_eq!(headers.stdout, "install ok installed");
    assert!(exists(&sandbox, "/var/lib/kmfdemo/dkms-opt-in"));
    let doctor = kmodfarm_host(&sandbox, &["doctor"]);
    assert!(doctor.stdout.contains("1.0.0, DKMS"), "{doctor}");
}

#[test]
fn headers_before_image_is_refused_and_doctor_names_it() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    configure(&mut sandbox, &w.dkms_only_url, &w.key);
    // The shared root has the 6.1 kernel's headers and not its image.
    let kernel = w.k61.as_str();
    assert!(!exists(&sandbox, &format!("/boot/vmlinuz-{kernel}")));
    let before = listing(&sandbox, &[]);
    let out = kmodfarm_host(
        &sandbox,
        &["install", "--kernel", kernel, "--no-load", "--enable-dkms"],
    )
    .expect_failure();
    assert!(
        out.stderr
            .contains(&format!("kernel {kernel}: its image is not installed")),
        "{out}"
    );
    assert!(
        out.stderr.contains("install the kernel image first"),
        "{out}"
    );
    assert_eq!(
        difference(&before, &listing(&sandbox, &[])),
        Vec::<String>::new()
    );
    let (ok, json) = doctor_json(&sandbox);
    assert!(!ok);
    assert!(
        problems(&json).contains(&("headers-before-image".into(), kernel.into())),
        "{json}"
    );
}

/// A module whose build reads the kernel's symbols: the DKMS route refuses
/// a kernel whose only System.map is Debian's placeholder, names what is
/// there and the package that carries the real one, and installs nothing;
/// with a real map where that package puts it (/usr/lib/debug/boot), the
/// same command builds, and doctor has nothing to say about the map.
#[test]
fn a_module_needing_the_system_map_waits_for_the_real_one_in_any_of_its_places() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    let mut config = configure(&mut sandbox, &w.dkms_only_url, &w.key);
    config.needs_system_map = true;
    write_config(&sandbox, &config);
    let kernel = w.k612.as_str();
    let install = ["install", "--kernel", kernel, "--no-load", "--enable-dkms"];
    let before = listing(&sandbox, &[]);
    let out = kmodfarm_host(&sandbox, &install).expect_failure();
    for needle in [
        format!("kernel {kernel}: this module needs the kernel's real System.map to build"),
        format!("/boot/System.map-{kernel} is only a placeholder"),
        format!("install it: apt-get install linux-image-{kernel}-dbg"),
    ] {
        assert!(out.stderr.contains(&needle), "no {needle:?} in:\n{out}");
    }
    // Nothing installed; only the serial of the verified lookup file is
    // kept (the rollback check's memory), as after any accepted lookup.
    let changed: Vec<String> = difference(&before, &listing(&sandbox, &[]))
        .iter()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        changed,
        ["/var/lib/kmfdemo", "/var/lib/kmfdemo/last-serial"]
    );

    sandbox
        .write_file(
            &format!("/usr/lib/debug/boot/System.map-{kernel}"),
            fixtures::stand_in_system_map(fixtures::STAND_IN_BANNER).as_bytes(),
            0o644,
        )
        .unwrap();
    let out = kmodfarm_host(&sandbox, &install).expect_ok();
    assert!(
        out.stdout.contains(&format!(
            "DKMS built and installed kmfdemo/1.0.0 for {kernel}"
        )),
        "{out}"
    );
    let (_, json) = doctor_json(&sandbox);
    assert!(
        !problems(&json).contains(&("headers-before-image".into(), kernel.into())),
        "{json}"
    );
}

#[test]
fn doctor_names_each_planted_failure() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    configure(&mut sandbox, &w.prebuilt_url, &w.key);
    let k612 = w.k612.as_str();
    kmodfarm_host(&sandbox, &["install", "--kernel", k612, "--no-load"]).expect_ok();
    let (ok, json) = doctor_json(&sandbox);
    // Only the 6.1 headers without their image (the shared root's state).
    assert_eq!(
        problems(&json),
        [("headers-before-image".to_string(), w.k61.to_string())],
        "{json}"
    );
    assert!(!ok);

    // A kernel an upgrade installed that nothing gave the module.
    let missing = "6.1.0-56-amd64";
    sandbox
        .write_file(
            &format!("/boot/vmlinuz-{missing}"),
            b"stand-in image",
            0o644,
        )
        .unwrap();
    sandbox.sh_ok(&format!("mkdir -p /lib/modules/{missing}/kernel"));
    // No load-at-boot entry.
    sandbox.run_ok(&["rm", "/etc/modules-load.d/kmfdemo.conf"]);
    // A DKMS build left failed for the 6.1 kernel.
    sandbox
        .write_file(
            "/var/lib/dkms/kmfdemo/1.0.0/build/make.log",
            format!("DKMS make.log for kmfdemo-1.0.0 for kernel {} (x86_64)\nkmfdemo.c:12:1: error: expected ';'\nmake: *** [Makefile:5: all] Error 2\n", w.k61).as_bytes(),
            0o644,
        )
        .unwrap();
    let (ok, json) = doctor_json(&sandbox);
    assert!(!ok);
    let found = problems(&json);
    for expected in [
        ("module-missing", missing),
        ("not-loaded-at-boot", ""),
        ("headers-before-image", w.k61.as_str()),
        ("dkms-build-failed", w.k61.as_str()),
    ] {
        assert!(
            found.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not reported: {json}"
        );
    }
    let text = kmodfarm_host(&sandbox, &["doctor"]);
    assert!(
        text.stdout.contains(&format!(
            "fix: run `kmodfarm-host ensure --kernel {missing}`"
        )),
        "{text}"
    );
    assert!(
        text.stdout.contains("make: *** [Makefile:5: all] Error 2"),
        "{text}"
    );
}

#[test]
fn ensure_without_a_prebuilt_module_and_without_dkms_says_so() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    configure(&mut sandbox, &w.dkms_only_url, &w.key);
    let kernel = w.k612.as_str();
    let out = kmodfarm_host(&sandbox, &["ensure", "--kernel", kernel, "--no-load"]);
    assert_eq!(out.status.code(), Some(10), "{out}");
    assert!(
        out.stdout
            .contains(&format!("no module for kernel {kernel}")),
        "{out}"
    );
    assert!(out.stdout.contains("did not opt into DKMS builds"), "{out}");
}

/// Every file below `dir` whose name starts with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(prefix)
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// kmodfarm-host as it ships: cargo-deb's .deb and cargo-generate-rpm's
/// .rpm of the glibc 2.28 build, read back by dpkg, rpm and rpmlint, and
/// put by `kmodfarm publish` into every codename and every yum repository
/// (install.sh's apt install of it is the test above).
#[test]
fn kmodfarm_host_ships_as_real_deb_and_rpm_packages_in_the_repository() {
    let w = world();
    let deb = &w.host.deb;
    let field = |f: &str| {
        run_ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(f))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "kmodfarm-host");
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    assert!(depends.split(", ").any(|d| d == "kmod"), "{depends}");
    // apt accepts it on every glibc the binary runs on, and no older one.
    let libc = depends
        .split(", ")
        .find_map(|d| d.strip_prefix("libc6 (>= ")?.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no libc6 version in Depends: {depends}"));
    let libc: Vec<u32> = libc.split('.').map(|p| p.parse().unwrap()).collect();
    let listed = run_ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert!(listed.contains(" ./usr/bin/kmodfarm-host\n"), "{listed}");
    let unpacked = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(unpacked.path()),
    );
    let shipped = unpacked.path().join("usr/bin/kmodfarm-host");
    let needs = highest_glibc(&shipped).expect("dynamically linked");
    assert!(
        needs <= vec![2, 28],
        "the packaged binary needs GLIBC_{needs:?}"
    );
    assert!(
        libc >= needs && libc <= vec![2, 28],
        "Depends: {depends}, binary needs {needs:?}"
    );

    let rpm = &w.host.rpm;
    let info = run_ok(Command::new("rpm").arg("-qpi").arg(rpm));
    for (tag, value) in [("Name", "kmodfarm-host"), ("Architecture", "x86_64")] {
        assert!(
            info.lines()
                .any(|l| l.starts_with(tag)
                    && l.split_once(':').map(|(_, v)| v.trim()) == Some(value)),
            "{tag}: {value} not in\n{info}"
        );
    }
    let files = run_ok(Command::new("rpm").arg("-qpl").arg(rpm));
    assert_eq!(files.trim(), "/usr/bin/kmodfarm-host");
    let requires = run_ok(Command::new("rpm").arg("-qpR").arg(rpm));
    assert!(requires.lines().any(|l| l.trim() == "kmod"), "{requires}");
    let newest_glibc = requires
        .lines()
        .filter_map(|l| l.split("(GLIBC_").nth(1)?.split(')').next())
        .map(|v| {
            v.split('.')
                .map(|p| p.parse::<u32>().unwrap())
                .collect::<Vec<u32>>()
        })
        .max();
    assert!(newest_glibc.is_some_and(|v| v <= vec![2, 28]), "{requires}");
    let rc = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rpmlint/kmodfarm-host.rpmlintrc"
    );
    let lint = Command::new("rpmlint")
        .arg("-r")
        .arg(rc)
        .arg(rpm)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&lint.stdout);
    let errors: Vec<&str> = said.lines().filter(|l| l.contains(": E: ")).collect();
    assert!(errors.is_empty(), "rpmlint:\n{said}");

    // Published: the same bytes in the apt pool, listed for every codename,
    // and in each yum repository (rpm/<distro>/<arch>/).
    let repo = &w.prebuilt_repo;
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    let pooled = files_named(&repo.join("deb/pool"), "kmodfarm-host_");
    assert_eq!(pooled.len(), 1, "{pooled:?}");
    assert_eq!(bytes(&pooled[0]), bytes(deb));
    let lists = files_named(&repo.join("deb/dists"), "Packages");
    let plain: Vec<&PathBuf> = lists.iter().filter(|p| p.extension().is_none()).collect();
    assert!(plain.len() >= 2, "{lists:?}");
    for list in plain {
        let text = std::fs::read_to_string(list).unwrap();
        assert!(
            text.contains("Package: kmodfarm-host\n"),
            "{}",
            list.display()
        );
    }
    let yum: Vec<PathBuf> = files_named(&repo.join("rpm"), "kmodfarm-host-")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    let distros: Vec<String> = yum
        .iter()
        .map(|p| {
            p.strip_prefix(repo.join("rpm"))
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(distros, ["rhel-8", "rhel-9", "sles-15"], "{yum:?}");
    // cargo-generate-rpm's .rpm is unsigned and hosts add the repository
    // with gpgcheck=1: each yum repository holds one copy signed with the
    // repository's key, the same header and payload as the package.
    let db = tempfile::tempdir().unwrap();
    let key = db.path().join("kmfdemo.asc");
    std::fs::write(&key, &w.key).unwrap();
    let rpm_db = || {
        let mut cmd = Command::new("rpm");
        cmd.arg("--dbpath").arg(db.path());
        cmd
    };
    run_ok(rpm_db().arg("--import").arg(&key));
    let content = |p: &Path| {
        run_ok(
            Command::new("rpm")
                .arg("-qp")
                .arg("--nosignature")
                .args(["--qf", "%{NEVRA} %{SHA256HEADER} %{PAYLOADDIGEST}"])
                .arg(p),
        )
    };
    for p in &yum {
        assert_eq!(bytes(p), bytes(&yum[0]), "{}", p.display());
        assert_eq!(content(p), content(rpm), "{}", p.display());
        let checked = run_ok(rpm_db().arg("-K").arg(p));
        assert!(
            checked.trim_end().ends_with("digests signatures OK"),
            "{checked}"
        );
    }
}

/// The third route of a kernel upgrade (the prebuilt one and "no module"
/// are above): a host that opted into DKMS gets a new kernel's image and
/// headers with apt, and the boot unit's command builds the module for it
/// with DKMS.
#[test]
fn a_kernel_upgrade_on_a_host_opted_into_dkms_gets_the_module_from_dkms_at_boot() {
    let w = world();
    let root = fixtures::bookworm();
    let mut sandbox = Sandbox::new(&root.root).unwrap();
    // No prebuilt module for either kernel on this repository.
    configure(&mut sandbox, &w.dkms_only_url, &w.key);
    let (running, upgrade) = (w.k612.as_str(), w.k61.as_str());
    // The new kernel is not on the host yet, not even its headers.
    sandbox.sh_ok(&format!(
        "apt-get purge -y -o Dpkg::Use-Pty=0 linux-headers-{upgrade} >/dev/null 2>&1"
    ));
    kmodfarm_host(
        &sandbox,
        &["install", "--kernel", running, "--no-load", "--enable-dkms"],
    )
    .expect_ok();
    assert!(exists(&sandbox, "/var/lib/kmfdemo/dkms-opt-in"));

    // The upgrade, as unattended-upgrades does it.
    sandbox.sh_ok(&format!(
        "apt-get install -y -o Dpkg::Use-Pty=0 linux-image-{upgrade} linux-headers-{upgrade} >/dev/null 2>&1"
    ));
    // Debian's own DKMS hook may have built it during the upgrade; the boot
    // unit must not rely on that (DKMS 3.0.10 can fail an autoinstall), so
    // the test takes that build away again.
    sandbox.sh_ok(&format!(
        "if dkms status -m kmfdemo -k {upgrade} | grep -q installed; then dkms remove kmfdemo/1.0.0 -k {upgrade} >/dev/null; fi"
    ));
    assert!(!dkms_status(&sandbox).contains(&format!("{upgrade}, x86_64: installed")));

    // What kmfdemo-modules.service runs at the next boot, for that kernel.
    let ensure = kmodfarm_host(&sandbox, &["ensure", "--kernel", upgrade, "--no-load"]).expect_ok();
    assert!(
        ensure.stdout.contains(&format!(
            "DKMS built and installed kmfdemo/1.0.0 for {upgrade}"
        )),
        "{ensure}"
    );
    let status = dkms_status(&sandbox);
    assert!(
        status.contains(&format!("kmfdemo/1.0.0, {upgrade}, x86_64: installed")),
        "{status}"
    );
    let file = sandbox.run_ok(&["modinfo", "-k", upgrade, "-n", "kmfdemo"]);
    assert!(
        file.stdout
            .starts_with(&format!("/lib/modules/{upgrade}/updates/dkms/kmfdemo.ko")),
        "{file}"
    );
    let (_, json) = doctor_json(&sandbox);
    assert!(!problems(&json).iter().any(|(_, k)| k == upgrade), "{json}");
}

/// Not a test: the benchmark scripts/bench-install.sh runs (`--ignored`).
/// `kmodfarm-host install` (the release build that ships) for the same
/// kernel in fresh sandboxes over the same Debian 12 root made a customer's
/// base system (no compiler, no make, no DKMS, no headers: what the product
/// is installed on), prebuilt route against DKMS route, timed from the
/// command's start to its exit. Outside the timing: the repository, the
/// root and the sandbox. Inside: lookup and signature checks, the download
/// from 127.0.0.1, for prebuilt the placement and kmod's index (the
/// quick update), for DKMS apt's
/// runs (`apt-get update` asks the mirror whether the lists changed), the
/// install of gcc, make, dkms and the kernel's headers, the -dkms
/// package's install and DKMS's build and install. The archive's packages
/// come from the harness's apt cache (bound at /var/cache/apt/archives), so
/// apt unpacks them without downloading; one untimed DKMS run first fills
/// that cache. Both with --no-load (nothing is loaded into this machine's
/// kernel).
#[test]
#[ignore = "benchmark: scripts/bench-install.sh"]
fn bench_install_prebuilt_against_dkms() {
    let reps: usize = std::env::var("KMODFARM_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let w = world();
    let root = fixtures::bookworm();
    // The program as it ships (release, glibc 2.28), not the tests' debug build.
    let shipped = common::build::glibc_build();
    let archives = fixtures::AptArchives::for_suite("bookworm");
    // The shared root has 6.12's image (pulled in by its headers) and not
    // 6.1's: a host runs the kernel it installs for, so 6.1's signed image
    // goes in first, untimed, for both routes.
    let fresh = |url: &str, kernel: &str| {
        let mut sandbox = Sandbox::new(&root.root).unwrap();
        sandbox.bind(&archives.dir, "/var/cache/apt/archives");
        without_compiler(&sandbox);
        configure(&mut sandbox, url, &w.key);
        sandbox.ro_bind(&shipped, "/usr/bin/kmodfarm-host");
        if kernel == w.k61.as_str() {
            sandbox.sh_ok(&format!(
                "apt-get update -qq && apt-get install -y -o Dpkg::Use-Pty=0 linux-image-{kernel} >/dev/null 2>&1"
            ));
        }
        sandbox
    };
    let timed = |sandbox: &Sandbox, args: &[&str], expect: &str| {
        let start = std::time::Instant::now();
        let out = kmodfarm_host(sandbox, args).expect_ok();
        let took = start.elapsed().as_secs_f64();
        assert!(out.stdout.contains(expect), "{out}");
        took
    };
    // Both of Debian 12's kernels: 6.1 ships plain .ko files, 6.12 xz-compressed
    // ones, which depmod (on both routes) decompresses one by one.
    for kernel in [w.k61.as_str(), w.k612.as_str()] {
        let dkms_args = ["install", "--kernel", kernel, "--no-load", "--enable-dkms"];
        let dkms_done = format!("DKMS built and installed kmfdemo/1.0.0 for {kernel}");
        let warm_up = timed(&fresh(&w.dkms_only_url, kernel), &dkms_args, &dkms_done);
        println!("bench-install: {kernel} warm-up dkms {warm_up:.3} s (fills the apt cache; not counted)");
        let mut prebuilt = Vec::new();
        let mut dkms = Vec::new();
        for rep in 0..reps {
            let sandbox = fresh(&w.prebuilt_url, kernel);
            // The quick index update, not a fallback to depmod -a.
            let t = timed(
                &sandbox,
                &["install", "--kernel", kernel, "--no-load"],
                &format!("module index of {kernel} updated"),
            );
            println!("bench-install: {kernel} rep {rep} prebuilt {t:.3} s");
            prebuilt.push(t);
            let sandbox = fresh(&w.dkms_only_url, kernel);
            let t = timed(&sandbox, &dkms_args, &dkms_done);
            println!("bench-install: {kernel} rep {rep} dkms {t:.3} s");
            dkms.push(t);
        }
        let (p, d) = (
            kmodfarm_tests::median(prebuilt),
            kmodfarm_tests::median(dkms),
        );
        println!(
            "bench-install: median {kernel} ({reps} repetitions): prebuilt {p:.3} s, dkms {d:.3} s, ratio {:.1}x",
            d / p
        );
    }
}
