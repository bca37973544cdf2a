//! A minimal valid .deb (ar with debian-binary, control.tar.gz,
//! data.tar.gz) for tests and benchmarks that need many packages fast; the
//! real writer is kmodfarm-package's, exercised by its own tests.

/// A .deb with `control` as its control file and `files` as its data.
pub fn synthetic_deb(control: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let members: [(&str, Vec<u8>); 3] = [
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.gz",
            tar_gz(&[("./control", control.as_bytes())]),
        ),
        ("data.tar.gz", tar_gz(files)),
    ];
    let mut ar = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8o}{:<10}`\n",
            0,
            0,
            0,
            0o100644,
            data.len()
        );
        ar.extend(header.bytes());
        ar.extend(&data);
        if data.len() % 2 == 1 {
            ar.push(b'\n');
        }
    }
    ar
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    kmodfarm_publish::apt::gzip(&b.into_inner().unwrap()).unwrap()
}
