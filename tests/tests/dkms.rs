//! Issue 2, "Must show": the rendered dkms.conf of module/ is accepted by
//! real DKMS (Debian 12's dkms 3.0.10) against real linux-headers of one 6.1
//! and one 6.12 kernel from Debian's archive, and a manifest range that
//! excludes 6.12 makes DKMS and the package scripts skip it as expected. Also
//! the System.map requirement: no build against Debian's placeholder.
//!
//! Needs root, mmdebstrap, bwrap and this machine's apt sources reachable;
//! the first run makes the cached Debian 12 root (a few minutes).

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::fixtures::{self, bookworm_with};
use kmodfarm_tests::{
    assert_dkms_has_nothing_for, assert_dkms_installed, sandbox_modinfo, Bind, Rendered, Sandbox,
};

/// `modinfo -k K -F FIELD kmfdemo` (through modules.dep: depmod registered it).
fn modinfo(sandbox: &Sandbox, kernel: &KernelRelease, field: &str) -> String {
    sandbox_modinfo(sandbox, kernel, "kmfdemo", field)
}

#[test]
fn dkms_accepts_rendered_conf() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example();
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();

    let mut said = String::new();
    said += &sandbox.run_ok(&["dkms", "add", &id]).combined();
    for kernel in [&root.k61, &root.k612] {
        let build = sandbox.run_ok(&["dkms", "build", "-k", kernel.as_str(), &id]);
        // The PRE_BUILD step (kmodfarm-prebuild, then ./configure) ran for
        // this kernel and probed the API it has.
        let expected = if kernel == &root.k61 {
            "class_create(owner, name)"
        } else {
            "class_create(name)"
        };
        assert!(
            build
                .stdout
                .contains(&format!("kmfdemo configure: {kernel}: {expected}")),
            "configure did not report {expected} for {kernel}:\n{build}"
        );
        said += &build.combined();
        said += &sandbox
            .run_ok(&["dkms", "install", "-k", kernel.as_str(), &id])
            .combined();
    }

    let status = sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo"]);
    for kernel in [&root.k61, &root.k612] {
        assert_dkms_installed(&sandbox, &id, kernel, "after dkms install");
        let vermagic = modinfo(&sandbox, kernel, "vermagic");
        assert!(
            vermagic.starts_with(&format!("{kernel} ")),
            "module installed for {kernel} has vermagic {vermagic:?}"
        );
        let path = modinfo(&sandbox, kernel, "filename");
        assert!(
            path.starts_with(&format!("/lib/modules/{kernel}/updates/dkms/kmfdemo.ko")),
            "installed at {path}, not the manifest's /updates/dkms"
        );
        // No real System.map in the root: built without a symbol address.
        assert_eq!(modinfo(&sandbox, kernel, "kmfdemo_symbol"), "none");
    }
    assert_eq!(
        modinfo(&sandbox, &root.k61, "kmfdemo_api"),
        "old-class-create"
    );
    assert_eq!(
        modinfo(&sandbox, &root.k612, "kmfdemo_api"),
        "new-class-create"
    );
    said += &status.combined();
    assert!(
        !said.contains("Deprecated feature"),
        "DKMS warned about a deprecated feature:\n{said}"
    );
}

#[test]
fn build_exclusive_skips() {
    let root = fixtures::bookworm();
    let rendered = Rendered::example_with(&[("max = \"6.14\"", "max = \"6.11\"")]);
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();

    // DKMS itself refuses the kernel outside the range (exit 77 = skipped)...
    sandbox.run_ok(&["dkms", "add", &id]);
    let refused = sandbox
        .run(&["dkms", "build", "-k", root.k612.as_str(), &id])
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(77),
        "dkms build for {} outside the range:\n{refused}",
        root.k612
    );
    assert!(
        refused
            .combined()
            .contains("BUILD_EXCLUSIVE directive which does not match this kernel"),
        "{refused}"
    );

    // ...and the package scripts' helper treats that as expected: it skips
    // 6.12 saying why, installs 6.1, and succeeds.
    let configure = sandbox.run_ok(&[&rendered.helper_path(), "configure"]);
    let skipped = format!(
        "kmfdemo: skipping {}: outside the supported kernel range",
        root.k612
    );
    assert!(
        configure.stdout.contains(&skipped),
        "no {skipped:?} in:\n{configure}"
    );
    assert!(
        configure
            .stdout
            .contains(&format!("kmfdemo: built and installed for {}", root.k61)),
        "{configure}"
    );
    assert!(!configure.combined().contains("FAILED"), "{configure}");

    assert_dkms_installed(&sandbox, &id, &root.k61, "after configure");
    assert_dkms_has_nothing_for(&sandbox, "kmfdemo", &root.k612, "the excluded kernel");

    // Running it again (a reinstall) is harmless and still succeeds.
    let again = sandbox.run_ok(&[&rendered.helper_path(), "configure"]);
    assert!(again.stdout.contains(&skipped), "{again}");
    assert!(
        again
            .stdout
            .contains(&format!("{}: already installed", root.k61)),
        "{again}"
    );
}

#[test]
fn system_map_required() {
    let root = fixtures::bookworm();
    let kernel = &root.k612;
    let rendered = Rendered::example_needing_system_map();
    let sandbox = bookworm_with(&rendered);
    let id = rendered.dkms_id();
    // The root has the 6.12 image installed, so /boot holds Debian's
    // one-line placeholder: it must not count.
    let system_map = fixtures::placeholder_system_map(&sandbox, kernel);

    sandbox.run_ok(&["dkms", "add", &id]);
    let refused = sandbox
        .run(&["dkms", "build", "-k", kernel.as_str(), &id])
        .unwrap();
    assert!(
        !refused.success(),
        "dkms built against the placeholder System.map:\n{refused}"
    );
    assert!(
        refused.stderr.contains(&format!(
            "needs the real System.map of kernel {kernel}, and {system_map} is only a placeholder"
        )),
        "the refusal does not name System.map:\n{refused}"
    );
    // DKMS 3.0.10 ignores PRE_BUILD's exit status: the refusal must stop
    // make itself, with the reason in make.log (not merely fail later for
    // want of the configure step's output).
    let make_log = sandbox
        .read_file("/var/lib/dkms/kmfdemo/1.0.0/build/make.log")
        .expect("DKMS keeps make.log of the failed build");
    assert!(
        make_log.contains("kmodfarm-prebuild: kmfdemo needs the real System.map")
            && !make_log.contains("CC [M]"),
        "make did not stop on the refusal before compiling:\n{make_log}"
    );
    // The package scripts' helper does not even try, and says why.
    let hook = sandbox.run_ok(&[&rendered.helper_path(), "kernel-installed", kernel.as_str()]);
    assert!(
        hook.stdout.contains(&format!(
            "not building for {kernel}: its real System.map is not installed yet"
        )),
        "{hook}"
    );
    let status = sandbox.run_ok(&["dkms", "status", "-m", "kmfdemo", "-k", kernel.as_str()]);
    assert!(!status.stdout.contains("installed"), "{status}");

    // With a real-looking System.map where the image puts it, it builds and
    // the configure step records the symbol's address.
    let banner = 0xffff_ffff_82a0_01c0u64;
    fixtures::install_stand_in_system_map(&sandbox, kernel, banner);
    sandbox
        .run(&["dkms", "remove", &id, "-k", kernel.as_str()])
        .unwrap(); // a failed build may leave state
    let build = sandbox.run_ok(&["dkms", "build", "-k", kernel.as_str(), &id]);
    assert!(
        build.stdout.contains(&format!(
            "kmfdemo configure: {kernel}: linux_banner at 0x{banner:x} (from {system_map})"
        )),
        "{build}"
    );
    sandbox.run_ok(&["dkms", "install", "-k", kernel.as_str(), &id]);
    assert_eq!(
        modinfo(&sandbox, kernel, "kmfdemo_symbol"),
        format!("linux_banner=0x{banner:x}")
    );
}

/// What a planted layout holds at one of the places a System.map may be.
#[derive(Clone, Copy)]
enum Map {
    /// Debian's one-line placeholder.
    Placeholder,
    /// A real-looking map (linux_banner with an address).
    Real,
    /// /proc/kallsyms read without privileges: every address zero.
    Zeros,
    /// An empty file.
    Empty,
}

/// A planted layout: what it stands for, the files (path under the tree,
/// content), and the map both rules must pick (None: both refuse).
type Layout<'a> = (&'a str, Vec<(&'a str, Map)>, Option<&'a str>);

fn map_text(map: Map) -> String {
    match map {
        Map::Placeholder => {
            "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"
                .to_string()
        }
        Map::Real => fixtures::stand_in_system_map(fixtures::STAND_IN_BANNER),
        Map::Zeros => "0000000000000000 T _text\n0000000000000000 R linux_banner\n".to_string(),
        Map::Empty => String::new(),
    }
}

/// One System.map rule: for each planted layout, the builder's Rust lookup
/// (`symbols::map_in_tree`, what `kmodfarm build` takes from an unpacked
/// kernel package) and the package scripts' shell rule (the rendered
/// helper's `system-map` verb, run in a Debian 12 root with the layout
/// bound at /boot, /lib/modules/<k> and /usr/lib/debug/boot) pick the same
/// map, or both refuse; a refusal names what is there and a command that
/// installs the real map on Debian (the -dbg package the archive has).
#[test]
fn system_map_rule_is_one_rule_for_builder_and_package_scripts() {
    let root = fixtures::bookworm();
    let kernel = root.k61.as_str();
    let rendered = Rendered::example_needing_system_map();
    let sandbox = bookworm_with(&rendered);
    let boot = format!("boot/System.map-{kernel}");
    let modules = format!("lib/modules/{kernel}/System.map");
    let debug = format!("usr/lib/debug/boot/System.map-{kernel}");
    let layouts: Vec<Layout> = vec![
        (
            "Debian: placeholder only",
            vec![(&boot, Map::Placeholder)],
            None,
        ),
        (
            "Debian with -dbg",
            vec![(&boot, Map::Placeholder), (&debug, Map::Real)],
            Some(&debug),
        ),
        (
            "Ubuntu/SUSE: real in /boot",
            vec![(&boot, Map::Real)],
            Some(&boot),
        ),
        (
            "RHEL: real in /lib/modules",
            vec![(&modules, Map::Real)],
            Some(&modules),
        ),
        (
            "placeholders everywhere",
            vec![
                (&boot, Map::Placeholder),
                (&modules, Map::Placeholder),
                (&debug, Map::Placeholder),
            ],
            None,
        ),
        (
            "zeros and empty before a real one",
            vec![
                (&boot, Map::Zeros),
                (&modules, Map::Empty),
                (&debug, Map::Real),
            ],
            Some(&debug),
        ),
        ("nothing at all", vec![], None),
    ];
    let dbg_package = format!("linux-image-{kernel}-dbg");
    let index = kmodfarm_tests::AptIndex::updated("bookworm").expect("bookworm's package lists");
    assert!(
        index
            .package_names(&dbg_package)
            .expect("package names")
            .contains(&dbg_package),
        "the archive has no {dbg_package}, which the refusal names"
    );
    for (what, files, expected) in layouts {
        let tree = tempfile::tempdir().unwrap();
        let dirs = [
            ("boot", "/boot".to_string()),
            (
                &*format!("lib/modules/{kernel}"),
                format!("/lib/modules/{kernel}"),
            ),
            ("usr/lib/debug/boot", "/usr/lib/debug/boot".to_string()),
        ]
        .map(|(d, g)| (tree.path().join(d), g));
        for (dir, _) in &dirs {
            std::fs::create_dir_all(dir).unwrap();
        }
        for (path, map) in &files {
            std::fs::write(tree.path().join(path), map_text(*map)).unwrap();
        }
        let rust = kmodfarm_builder::symbols::map_in_tree(tree.path(), kernel).map(|p| {
            p.strip_prefix(tree.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        let binds: Vec<Bind> = dirs
            .iter()
            .map(|(host, guest)| Bind {
                host: host.clone(),
                guest: guest.clone(),
                writable: false,
            })
            .collect();
        let shell = sandbox
            .run_with(&[&rendered.helper_path(), "system-map", kernel], &binds)
            .unwrap();
        let shell_pick = shell
            .success()
            .then(|| shell.stdout.trim().trim_start_matches('/').to_string());
        assert_eq!(
            rust.as_deref(),
            expected,
            "{what}: the builder's lookup picked {rust:?}"
        );
        assert_eq!(
            shell_pick.as_deref(),
            expected,
            "{what}: the package scripts' rule disagrees with the builder's:\n{shell}"
        );
        if expected.is_none() {
            let install = format!("install it: apt-get install {dbg_package}");
            assert!(
                shell.stderr.contains(&install),
                "{what}: the refusal does not name {install:?}:\n{shell}"
            );
            if let Some((path, _)) = files.first() {
                assert!(
                    shell.stderr.contains(&format!("/{path}"))
                        && shell.stderr.contains("is only a placeholder"),
                    "{what}: the refusal does not name the placeholder /{path}:\n{shell}"
                );
            }
        }
    }
}
