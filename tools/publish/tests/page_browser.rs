//! The matrix page in a real browser: `kmodfarm serve` serves a repository
//! holding the page and its index.json; headless Chromium (Debian's
//! package) loads it, its DOM's table is checked against index.json, and
//! screenshots at phone and desktop widths are taken (kept under the
//! target directory, `page-phone.png` and `page-desktop.png`, to look at).

mod page_support;
mod serve_support;

use std::path::Path;
use std::process::Command;

use kmodfarm_model::record::Index;
use kmodfarm_publish::page::render_page;
use page_support::*;
use serve_support::*;

fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn chromium_shows_the_matrix_of_index_json() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let published = index();
    std::fs::write(
        repo.join("index.json"),
        serde_json::to_vec_pretty(&published).unwrap(),
    )
    .unwrap();
    let html = render_page(&published, &records(), &options()).unwrap();
    std::fs::write(repo.join("index.html"), html).unwrap();
    let served = Served::start(&repo, &[]);

    // What a reader of the repository gets as index.json, over HTTP.
    let index_json = curl(&format!("{}index.json", served.url), &[]);
    let index: Index = serde_json::from_slice(&index_json.body).unwrap();

    let profile = tmp.path().join("chromium-profile");
    let dom = chromium(&profile, &["--dump-dom"], &served.url);
    let dom_text = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(
        dom.status.success() && dom_text.contains("</html>"),
        "chromium --dump-dom: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(dom_text.contains("<title>kmfdemo 1.0.0"), "{dom_text}");

    // Every kernel of index.json has its row with its status; the only
    // other rows come from the build records (the skipped Ubuntu kernel).
    let mut shown = rows(&dom_text);
    shown.sort();
    let want = rows_of_index(&index);
    for row in &want {
        assert!(
            shown.contains(row),
            "{row:?} missing from the page: {shown:?}"
        );
    }
    let extra: Vec<_> = shown.iter().filter(|r| !want.contains(r)).collect();
    assert_eq!(
        extra,
        [&(
            "ubuntu-24.04".to_string(),
            "amd64".to_string(),
            "6.8.0-62-generic".to_string(),
            "dkms-only".to_string()
        )]
    );
    for e in &index.entries {
        assert!(
            dom_text.contains(&format!("<code>{}</code>", e.prebuilt_package)),
            "{} not shown",
            e.prebuilt_package
        );
    }

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (name, width, height) in [("phone", 390, 4000), ("desktop", 1280, 2200)] {
        let png = shots.join(format!("page-{name}.png"));
        let _ = std::fs::remove_file(&png);
        let out = chromium(
            &profile,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={width},{height}"),
            ],
            &served.url,
        );
        assert!(
            out.status.success(),
            "chromium --screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
        assert_eq!(png_size(&bytes), (width, height), "{name}");
        // A blank page compresses to almost nothing; the matrix does not.
        assert!(
            bytes.len() > 20_000,
            "{name} screenshot looks empty: {} bytes",
            bytes.len()
        );
    }

    let (status, log) = served.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("GET / 200"),
        "chromium did not load the page: {log}"
    );
}
