//! Shared by the rpm_md tests: real packages to publish, and a reader that
//! turns repodata (ours or createrepo_c's) into comparable data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use serde_json::{json, Map, Value};

pub const EPOCH: &str = "1700000000";

/// Real packages in `dir`: the example module's `-dkms` .rpm and two
/// prebuilt `kmod-` packages made by the real `kmodfarm package`, plus one
/// package made here with the `rpm` crate that has every kind of metadata
/// the kmodfarm packages lack (conflicts, obsoletes, weak dependencies, an
/// epoch, ghost files and directories, files on primary paths, a
/// prerequisite, several changelog entries). `extra` goes to
/// `kmodfarm package` (e.g. `--sign-key`).
pub fn packages(dir: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let build = dir.join("build");
    for kernel in [
        "5.14.0-503.40.1.el9_5.x86_64",
        "5.14.0-570.12.1.el9_6.x86_64",
    ] {
        let k = build.join("rhel-9/x86_64").join(kernel);
        std::fs::create_dir_all(&k).unwrap();
        // The kmod package carries the file as it is: a zstd frame header is enough.
        std::fs::write(k.join("kmfdemo.ko.zst"), b"(\xb5/\xfd").unwrap();
    }
    let out = dir.join("repo");
    let mut args = vec!["--prebuilt", build.to_str().unwrap()];
    args.extend_from_slice(extra);
    std::env::set_var("SOURCE_DATE_EPOCH", EPOCH);
    let mut files = kmodfarm_tests::kmodfarm_package(
        &kmodfarm_tests::module_dir().join("kmodfarm.toml"),
        "rpm",
        &out,
        &args,
    );
    files.push(rich_package(&out));
    files.sort();
    files
}

pub fn rich_package(out: &Path) -> PathBuf {
    use rpm::{Dependency, FileOptions};
    let pkg = rpm::PackageBuilder::new(
        "rich-tool",
        "2.5",
        "MIT",
        "x86_64",
        "A package with <every> kind of \"metadata\" & more",
    )
    .using_config(rpm::BuildConfig::v4().source_date(1_700_000_000u32))
    .epoch(3)
    .release("7.el9")
    .description("Line one.\nLine two with <tags> & ampersands.")
    .vendor("kmodfarm tests")
    .packager("Tester <t@example.org>")
    .url("https://example.org/rich")
    .group("Tools")
    .build_host("builder.example.org")
    .provides(Dependency::eq("rich-api", "2"))
    .provides(Dependency::any("/usr/bin/rich"))
    .requires(Dependency::greater_eq("glibc", "2.28"))
    .requires(Dependency::less("openssl-libs", "1:4.0-1"))
    .requires(Dependency::script_pre("/bin/sh"))
    .requires(Dependency::any("/bin/sh"))
    .requires(Dependency::any("/bin/sh"))
    .requires(Dependency::any("rich-api"))
    .requires(Dependency::eq("rich-api", "2"))
    .requires(Dependency::any("/etc/rich.conf"))
    .conflicts(Dependency::less_eq("old-rich", "1.0"))
    .obsoletes(Dependency::less("rich-legacy", "2.0-1"))
    .recommends(Dependency::any("rich-docs"))
    .suggests(Dependency::greater("rich-plugins", "1"))
    .enhances(Dependency::any("bash"))
    .supplements(Dependency::any("rich-meta"))
    .add_changelog_entry(
        "Tester <t@example.org> - 2.5-7 ",
        "- Newest.",
        1_690_000_000u32,
    )
    .add_changelog_entry(
        "Tester <t@example.org> - 2.5-6",
        "- Older & <fixed>.",
        1_680_000_000u32,
    )
    .with_file_contents("[rich]\n", FileOptions::new("/etc/rich.conf").config())
    .unwrap()
    .with_file_contents(
        "#!/bin/sh\n",
        FileOptions::new("/usr/bin/rich").permissions(0o755),
    )
    .unwrap()
    .with_file_contents(
        "doc\n",
        FileOptions::new("/usr/share/doc/rich/README").doc(),
    )
    .unwrap()
    .with_dir_entry(FileOptions::dir("/usr/share/doc/rich"))
    .unwrap()
    .with_dir_entry(FileOptions::dir("/usr/libexec/rich/bin"))
    .unwrap()
    .with_ghost(FileOptions::ghost("/var/log/rich.log"))
    .unwrap()
    .build()
    .unwrap();
    std::fs::create_dir_all(out).unwrap();
    let path = out.join("rich-tool-2.5-7.el9.x86_64.rpm");
    pkg.write_file(&path).unwrap();
    path
}

/// One XML element as a tree.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// A canonical form: attributes, text (for leaves), and children
    /// grouped by name with their order kept. Two documents that carry the
    /// same information compare equal whatever their layout.
    pub fn canonical(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.attrs {
            map.insert(format!("@{k}"), json!(v));
        }
        if self.children.is_empty() {
            map.insert("#text".into(), json!(self.text));
        }
        for c in &self.children {
            map.entry(c.name.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .unwrap()
                .push(c.canonical());
        }
        Value::Object(map)
    }
}

pub fn parse_xml(bytes: &[u8]) -> Element {
    let text = std::str::from_utf8(bytes).expect("metadata is UTF-8");
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let start = |e: &quick_xml::events::BytesStart| Element {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect(),
        ..Element::default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(start(&e)),
            Event::Empty(e) => {
                let el = start(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(el);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.xml_content().unwrap()),
            Event::CData(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => match &*r.decode().unwrap() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push_str(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced XML");
    stack.pop().unwrap().children.remove(0)
}

pub fn decompress(path: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if path.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
    } else if path.ends_with(".zst") {
        out = zstd::decode_all(bytes).unwrap();
    } else {
        out = bytes.to_vec();
    }
    out
}

/// A repodata directory read back through its repomd.xml: every data file
/// checked against the checksums and sizes repomd gives, then the packages
/// of primary, filelists and other, keyed by pkgid, in canonical form.
pub struct ReadRepo {
    pub repomd: Element,
    /// type → (location, checksum, open-checksum, size, open-size)
    pub data: BTreeMap<String, Element>,
    pub primary: BTreeMap<String, Value>,
    pub filelists: BTreeMap<String, Value>,
    pub other: BTreeMap<String, Value>,
}

pub fn read_repo(repo_dir: &Path) -> ReadRepo {
    let repomd_bytes = std::fs::read(repo_dir.join("repodata/repomd.xml")).unwrap();
    read_repo_with(&repomd_bytes, |href| {
        std::fs::read(repo_dir.join(href)).unwrap()
    })
}

pub fn read_repo_with(repomd_bytes: &[u8], read: impl Fn(&str) -> Vec<u8>) -> ReadRepo {
    use sha2::{Digest, Sha256};
    let repomd = parse_xml(repomd_bytes);
    let mut data = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for d in repomd.all("data") {
        let kind = d.attrs["type"].clone();
        if !["primary", "filelists", "other"].contains(&kind.as_str()) {
            continue;
        }
        let href = &d.child("location").unwrap().attrs["href"];
        let bytes = read(href);
        let field = |n: &str| d.child(n).unwrap().text.clone();
        assert_eq!(
            field("checksum"),
            hex::encode(Sha256::digest(&bytes)),
            "{href}"
        );
        assert_eq!(field("size"), bytes.len().to_string(), "{href}");
        let open = decompress(href, &bytes);
        assert_eq!(
            field("open-checksum"),
            hex::encode(Sha256::digest(&open)),
            "{href}"
        );
        assert_eq!(field("open-size"), open.len().to_string(), "{href}");
        let doc = parse_xml(&open);
        let packages: Vec<&Element> = doc.all("package").collect();
        assert_eq!(doc.attrs["packages"], packages.len().to_string(), "{href}");
        let mut map = BTreeMap::new();
        for p in packages {
            let id = if kind == "primary" {
                p.child("checksum").unwrap().text.clone()
            } else {
                p.attrs["pkgid"].clone()
            };
            map.insert(id, p.canonical());
        }
        by_kind.insert(kind.clone(), map);
        data.insert(kind, d.clone());
    }
    ReadRepo {
        repomd,
        data,
        primary: by_kind.remove("primary").unwrap_or_default(),
        filelists: by_kind.remove("filelists").unwrap_or_default(),
        other: by_kind.remove("other").unwrap_or_default(),
    }
}

pub use kmodfarm_tests::run_ok as run;

/// Makes `dir` a yum repository of the one package at `dir/<href>`, as a
/// distribution's own would be: repodata by `rpm_md`, repomd.xml signed
/// (detached, armored) by the secret key at `secret`, dated `when`.
pub fn signed_yum_repo_of(dir: &Path, href: &str, secret: &Path, when: u64) {
    use kmodfarm_publish::rpm_md::{repodata, RepodataOptions, RpmPackage};
    use kmodfarm_publish::sign::{Passphrase, SigningKey};
    let record = RpmPackage::read(&dir.join(href), href).unwrap();
    let data = repodata(&[record], &RepodataOptions::from_env(Default::default())).unwrap();
    for (path, bytes) in &data.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let signing = SigningKey::load(secret, &Passphrase::None).unwrap();
    let sig = signing.detached_armored(data.repomd(), when).unwrap();
    std::fs::write(dir.join("repodata/repomd.xml.asc"), sig).unwrap();
}
