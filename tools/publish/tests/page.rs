//! The matrix page as a pure function of the index and build records.

mod page_support;

use kmodfarm_publish::page::{render_page, PageOptions};
use page_support::*;

#[test]
fn the_page_snapshot() {
    let html = render_page(&index(), &records(), &options()).unwrap();
    insta::assert_snapshot!(html);
}

#[test]
fn every_kernel_of_the_index_and_the_records_has_its_row() {
    let index = index();
    let html = render_page(&index, &records(), &options()).unwrap();
    let mut got = rows(&html);
    got.sort();
    let mut want = rows_of_index(&index);
    // From the records only: the skipped Ubuntu kernel, left to DKMS.
    want.push((
        "ubuntu-24.04".into(),
        "amd64".into(),
        "6.8.0-62-generic".into(),
        "dkms-only".into(),
    ));
    want.sort();
    assert_eq!(got, want);

    // Newest kernel first within a distro.
    let debian: Vec<String> = rows(&html)
        .into_iter()
        .filter(|r| r.0 == "debian-12")
        .map(|r| r.2)
        .collect();
    assert_eq!(
        debian,
        ["6.12.48+deb12-amd64", "6.1.0-57-amd64", "6.1.0-56-amd64"]
    );
}

#[test]
fn the_page_is_static_escaped_and_fits_a_phone() {
    let html = render_page(&index(), &records(), &options()).unwrap();
    assert!(
        !html.contains("<script"),
        "the page must work without JavaScript"
    );
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(html.contains("@media (max-width: 40rem)"));
    // The failure reason carries markup characters: shown, not interpreted.
    assert!(
        html.contains("undefined! &lt;see log&gt;"),
        "reason not escaped"
    );
    assert!(!html.contains("<see log>"));
    // The reason, the log tail in a <details>, the failing kernel's DKMS route.
    assert!(html.contains("<summary>build log (last lines)</summary>"));
    assert!(html.contains("Module.symvers] Error 1"));
    assert!(html.contains("4.18 is below the manifest&#39;s minimum 5.15"));
    // Install lines for each family, with the key and no trusted=yes.
    assert!(
        html.contains("deb [signed-by=/etc/apt/keyrings/kmfdemo.gpg] REPO_URL/deb bookworm main")
    );
    assert!(html.contains("baseurl=REPO_URL/rpm/rhel-9/x86_64/"));
    assert!(html.contains("gpgkey=REPO_URL/keys/kmfdemo.asc"));
    assert!(html.contains("repo_gpgcheck=1"));
    assert!(!html.contains("trusted=yes"));
    assert!(html.contains("Published 2023-11-14 22:13 UTC, valid until 2023-12-14 22:13 UTC"));
}

#[test]
fn a_known_address_goes_into_the_install_lines() {
    let options = PageOptions {
        repo_url: Some("http://127.0.0.1:8080".into()),
        ..options()
    };
    let html = render_page(&index(), &[], &options).unwrap();
    assert!(html.contains("curl -fsSL http://127.0.0.1:8080/keys/kmfdemo.gpg"));
    assert!(!html.contains("REPO_URL"));
    // Without records, the index alone decides the rows.
    let mut got = rows(&html);
    got.sort();
    assert_eq!(got, rows_of_index(&index()));
}
