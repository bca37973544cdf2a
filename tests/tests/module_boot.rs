//! Issue 2, module/: kmfdemo, built by real DKMS from the rendered
//! dkms.conf, loads on both Debian 12 kernel lines, prints its line, creates
//! /dev/kmfdemo and /sys/class/kmfdemo, reports how it was configured, and
//! unloads. Each kernel boots under QEMU (TCG) with a busybox initramfs.

use std::time::Duration;

use kmodfarm_model::KernelRelease;
use kmodfarm_tests::{fixtures, BootImage, Rendered, Sandbox};

const SCRIPT: &str = r#"
insmod /modules/kmfdemo.ko && echo "insmod: ok"
echo "dev: $(cat /dev/kmfdemo)"
echo "sys: $(cat /sys/class/kmfdemo/kmfdemo/dev)"
dmesg | grep 'kmfdemo: loaded'
rmmod kmfdemo && echo "rmmod: ok"
test -e /dev/kmfdemo || echo "dev gone: ok"
"#;

fn boot_and_check(sandbox: &Sandbox, kernel: &KernelRelease, api: &str) {
    let image =
        BootImage::busybox(sandbox, kernel.as_str(), &["kmfdemo"], SCRIPT).expect("boot image");
    let text = image.boot(Duration::from_secs(240)).expect("qemu runs");
    let has = |needle: &str| text.contains(needle);
    assert!(
        has("insmod: ok"),
        "kmfdemo did not load on {kernel}:\n{text}"
    );
    assert!(
        has(&format!(
            "dev: kmfdemo 1.0.0 api={api}-class-create symbol=none kernel={kernel}\n"
        )),
        "/dev/kmfdemo on {kernel}:\n{text}"
    );
    assert!(
        has(&format!("kmfdemo: loaded, api={api}, symbol=none\n")),
        "no load line on {kernel}:\n{text}"
    );
    let sys = text
        .lines()
        .find_map(|l| l.strip_prefix("sys: "))
        .unwrap_or("");
    let (major, minor) = sys.split_once(':').unwrap_or(("", ""));
    assert!(
        major.parse::<u32>().is_ok_and(|m| m > 0) && minor == "0",
        "/sys/class/kmfdemo/kmfdemo/dev on {kernel} is {sys:?}:\n{text}"
    );
    assert!(
        has("rmmod: ok") && has("dev gone: ok"),
        "kmfdemo did not unload cleanly on {kernel}:\n{text}"
    );
}

#[test]
fn kmfdemo_loads_and_reports_on_both_kernel_lines() {
    let root = fixtures::bookworm();
    let rendered =
        Rendered::render(&kmodfarm_tests::module_dir().join("kmodfarm.toml")).expect("render");
    let sandbox = Sandbox::new(&root.root).expect("sandbox");
    rendered
        .install_into(&sandbox)
        .expect("install the -dkms files");
    // The package scripts' helper builds for every kernel with headers.
    let configure = sandbox.run_ok(&[&rendered.helper_path(), "configure"]);
    assert!(
        configure.stdout.contains("installed for 2 kernel(s)"),
        "{configure}"
    );

    boot_and_check(&sandbox, &root.k61, "old");
    boot_and_check(&sandbox, &root.k612, "new");
}
