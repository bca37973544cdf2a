//! The quick index update (src/depmod.rs) against the real depmod of each
//! root: a copy of a real kernel's module tree (Debian 12's 6.12, kmod 30,
//! and Debian 13's 6.12, kmod 34, whose depmod lays its binary files out
//! the other way round), a module placed in updates/, the quick update,
//! then the root's own `depmod` over the same tree: every index file must
//! come out byte for byte the same. The modules placed are copies of real
//! ones with the properties that matter (aliases, a device node, a soft
//! dependency), under a name of their own. Where exactness cannot be shown
//! (dependencies, exports, another module outside modules.order, a stale
//! index, depmod.d...), the quick update must say why and write nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kmodfarm_builder::boot_test::read_module;
use kmodfarm_builder::compress::compress;
use kmodfarm_install::depmod::{quick, Kmod};
use kmodfarm_install::host::Ran;
use kmodfarm_install::Host;
use kmodfarm_model::Compression;
use kmodfarm_tests::{fixtures, PreparedRoot, Sandbox};

/// A copy of one kernel's /lib/modules/<k> (hard links: the index files
/// are replaced by rename, by depmod and by the quick update alike, so the
/// shared root is never written) below a root of its own.
struct Tree {
    dir: tempfile::TempDir,
    kernel: String,
    sandbox: Sandbox,
}

/// The tree as the quick update sees a host: its files below the tree's
/// root. It runs nothing: the quick update only reads and writes files.
struct TreeHost(PathBuf);

impl Host for TreeHost {
    fn root(&self) -> &Path {
        &self.0
    }
    fn run(&self, argv: &[&str]) -> kmodfarm_install::Result<Ran> {
        panic!("the quick update ran {argv:?}");
    }
    fn has_command(&self, _: &str) -> bool {
        false
    }
}

const GUEST: &str = "/tmp/tree";

impl Tree {
    fn of(root: &PreparedRoot, kernel: &str) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        // Where the kmod of either root looks (Debian 13's usr-merged one
        // may go to /usr/lib/modules directly).
        let modules = dir.path().join("usr/lib/modules");
        std::fs::create_dir_all(&modules).unwrap();
        std::os::unix::fs::symlink("usr/lib", dir.path().join("lib")).unwrap();
        let source = root.path.join("lib/modules").join(kernel);
        let linked = Command::new("cp")
            .arg("-al")
            .arg(&source)
            .arg(&modules)
            .status()
            .unwrap();
        if !linked.success() {
            let copied = Command::new("cp")
                .arg("-a")
                .arg(&source)
                .arg(&modules)
                .status()
                .unwrap();
            assert!(copied.success(), "cannot copy {}", source.display());
        }
        let mut sandbox = Sandbox::new(root).unwrap();
        sandbox.bind(dir.path(), GUEST);
        Tree {
            dir,
            kernel: kernel.to_string(),
            sandbox,
        }
    }

    fn host(&self) -> TreeHost {
        TreeHost(self.dir.path().to_path_buf())
    }

    fn modules(&self) -> PathBuf {
        self.dir.path().join("lib/modules").join(&self.kernel)
    }

    fn kmod(&self) -> Kmod {
        let out = self.sandbox.run_ok(&["kmod", "--version"]);
        Kmod::parse(&out.stdout).unwrap_or_else(|| panic!("{out}"))
    }

    /// Every file depmod writes, by name.
    fn index(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.modules())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let input = [
                    "modules.order",
                    "modules.builtin",
                    "modules.builtin.modinfo",
                ];
                (name.starts_with("modules.") && !input.contains(&name.as_str()))
                    .then(|| (name, std::fs::read(e.path()).unwrap()))
            })
            .collect()
    }

    fn depmod(&self) {
        self.sandbox.run_ok(&["depmod", "-b", GUEST, &self.kernel]);
    }

    /// Places a copy of the kernel's module `from` as `rel` (below the
    /// kernel's directory), compressed by kmodfarm's own build step, as
    /// kmodfarm ships modules.
    fn place(&self, from: &str, rel: &str) -> PathBuf {
        let dep = std::fs::read_to_string(self.modules().join("modules.dep")).unwrap();
        let path = dep
            .lines()
            .filter_map(|l| l.split(':').next())
            .find(|p| p.rsplit('/').next().unwrap().split('.').next() == Some(from))
            .unwrap_or_else(|| panic!("{} has no module {from}", self.kernel));
        let plain = read_module(&self.modules().join(path)).unwrap();
        let ko = self.dir.path().join(format!("{from}.ko"));
        std::fs::write(&ko, plain).unwrap();
        let dest = self.modules().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        compress(&ko, &dest, Compression::Zst).unwrap();
        std::fs::remove_file(ko).unwrap();
        dest
    }
}

/// Gives `file` a time long before the index's, as dpkg gives the files it
/// unpacks their packaged time.
fn set_old(file: &Path) {
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    let file = std::fs::File::options().write(true).open(file).unwrap();
    file.set_modified(old).unwrap();
}

#[track_caller]
fn assert_same_index(
    ours: &BTreeMap<String, Vec<u8>>,
    depmods: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        depmods.keys().collect::<Vec<_>>(),
        "{what}: not the same files"
    );
    for (name, bytes) in ours {
        assert!(
            bytes == &depmods[name],
            "{what}: {name} differs from depmod's ({} bytes against {})",
            bytes.len(),
            depmods[name].len()
        );
    }
}

/// Adds a module, then replaces it by another one of the same name, each
/// time checked against the root's depmod and through the root's modprobe.
fn appends_exactly(tree: &Tree) {
    let kmod = tree.kmod();
    let host = tree.host();
    let kernel = tree.kernel.as_str();
    let rel = "updates/kmfquick.ko.zst";

    // loop's aliases: a device name, a char and a block major.
    let placed = tree.place("loop", rel);
    let said = quick(&host, kernel, std::slice::from_ref(&placed), &kmod).unwrap();
    assert_eq!(said, Ok(true), "the quick update did not apply");
    let ours = tree.index();
    let dep = String::from_utf8_lossy(&ours["modules.dep"]).into_owned();
    assert_eq!(dep.lines().last(), Some(format!("{rel}:").as_str()));
    let devnames = String::from_utf8_lossy(&ours["modules.devname"]).into_owned();
    assert!(
        devnames
            .lines()
            .any(|l| l == "kmfquick loop-control c10:237"),
        "{devnames}"
    );
    // The root's own modprobe finds it through the binary index written here.
    let found = tree.sandbox.run_ok(&[
        "modprobe",
        "-d",
        GUEST,
        "-S",
        kernel,
        "--show-depends",
        "kmfquick",
    ]);
    assert!(
        found
            .stdout
            .contains(&format!("/lib/modules/{kernel}/{rel}")),
        "{found}"
    );
    let by_alias = tree.sandbox.run_ok(&[
        "modprobe",
        "-d",
        GUEST,
        "-S",
        kernel,
        "-R",
        "devname:loop-control",
    ]);
    assert!(
        by_alias.stdout.lines().any(|l| l == "kmfquick"),
        "{by_alias}"
    );
    // Current now: nothing more to do.
    assert_eq!(quick(&host, kernel, &[], &kmod).unwrap(), Ok(false));
    tree.depmod();
    assert_same_index(&ours, &tree.index(), &format!("{kernel}: loop as kmfquick"));

    // An upgrade in place: cxl_acpi's aliases and soft dependency instead.
    let placed = tree.place("cxl_acpi", rel);
    assert_eq!(quick(&host, kernel, &[placed], &kmod).unwrap(), Ok(true));
    let ours = tree.index();
    let softdeps = String::from_utf8_lossy(&ours["modules.softdep"]).into_owned();
    assert!(
        softdeps.lines().any(|l| l.starts_with("softdep kmfquick ")),
        "{softdeps}"
    );
    let devnames = String::from_utf8_lossy(&ours["modules.devname"]).into_owned();
    assert!(!devnames.contains("kmfquick"), "{devnames}");
    tree.depmod();
    assert_same_index(
        &ours,
        &tree.index(),
        &format!("{kernel}: cxl_acpi as kmfquick"),
    );
}

#[test]
fn a_placed_module_is_indexed_byte_for_byte_as_depmod_of_kmod_30_would() {
    let root = fixtures::bookworm();
    let tree = Tree::of(&root.root, root.k612.as_str());
    assert_eq!(tree.kmod().version, 30);
    appends_exactly(&tree);
}

#[test]
fn a_placed_module_is_indexed_byte_for_byte_as_depmod_of_kmod_34_would() {
    let root = fixtures::trixie();
    let tree = Tree::of(&root.root, root.k612.as_str());
    assert!(tree.kmod().version >= 34, "{:?}", tree.kmod());
    appends_exactly(&tree);
}

#[test]
fn what_cannot_be_shown_exact_is_left_to_depmod_and_nothing_is_written() {
    let root = fixtures::bookworm();
    let tree = Tree::of(&root.root, root.k612.as_str());
    let kmod = tree.kmod();
    let host = tree.host();
    let kernel = tree.kernel.as_str();
    let before = tree.index();
    let refused = |added: &[PathBuf], expect: &str| {
        let said = quick(&host, kernel, added, &kmod).unwrap();
        let why = said.expect_err("the quick update applied");
        assert!(why.contains(expect), "expected {expect:?} in {why:?}");
        assert!(
            tree.index() == before,
            "the index changed although refused ({why})"
        );
        why
    };

    // vhost_net needs tun, vhost...; tun exports symbols; loop's name is taken.
    for (from, rel, expect) in [
        ("vhost_net", "updates/kmfdeps.ko.zst", "kmfdeps depends on"),
        (
            "tun",
            "updates/kmfexports.ko.zst",
            "kmfexports exports symbols",
        ),
        ("loop", "updates/loop.ko.zst", "is a module named loop too"),
    ] {
        let placed = tree.place(from, rel);
        refused(std::slice::from_ref(&placed), expect);
        std::fs::remove_file(placed).unwrap();
    }

    // Two at once: depmod would order them by its hash table.
    let a = tree.place("loop", "updates/kmfa.ko.zst");
    let b = tree.place("uinput", "updates/kmfb.ko.zst");
    refused(&[a.clone(), b.clone()], "2 modules placed at once");
    refused(
        std::slice::from_ref(&a),
        "updates/kmfb.ko.zst is newer than modules.dep",
    );
    set_old(&b);
    // Another module outside modules.order, on disk and not indexed.
    refused(
        std::slice::from_ref(&a),
        "modules.dep does not list updates/kmfb.ko.zst",
    );
    std::fs::remove_file(&b).unwrap();
    std::fs::remove_file(&a).unwrap();

    // A kernel module newer than the index (replaced without depmod).
    let loop_file = tree.modules().join("kernel/drivers/block/loop.ko.xz");
    let kept = tree.dir.path().join("loop.kept");
    std::fs::copy(&loop_file, &kept).unwrap();
    std::fs::remove_file(&loop_file).unwrap(); // a hard link: the shared root keeps its file
    std::fs::copy(&kept, &loop_file).unwrap();
    let placed = tree.place("uinput", "updates/kmfquick.ko.zst");
    refused(
        std::slice::from_ref(&placed),
        "kernel/drivers/block/loop.ko.xz is newer than modules.dep",
    );

    // depmod.d that changes what is indexed.
    set_old(&loop_file);
    let conf = tree.dir.path().join("etc/depmod.d/override.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "# ours first\noverride loop * updates\n").unwrap();
    refused(
        std::slice::from_ref(&placed),
        "`override` changes what depmod indexes",
    );
    // `search` alone does not change it (Ubuntu ships one).
    std::fs::write(&conf, "search updates ubuntu built-in\n").unwrap();
    assert_eq!(quick(&host, kernel, &[placed], &kmod).unwrap(), Ok(true));
    let ours = tree.index();
    tree.sandbox.run_ok(&[
        "depmod",
        "-b",
        GUEST,
        "-C",
        &format!("{GUEST}/etc/depmod.d"),
        kernel,
    ]);
    assert_same_index(&ours, &tree.index(), "with a search line in depmod.d");
}
