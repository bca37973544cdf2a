//! A minimal initramfs: an uncompressed cpio archive ("newc", the format
//! the kernel unpacks into its rootfs) holding a static busybox, an /init
//! script and the modules to load. Written in memory, in the order given,
//! with fixed owners and times, so the same inputs give the same bytes.

/// An archive being assembled.
#[derive(Debug, Default)]
pub struct Initramfs {
    bytes: Vec<u8>,
    inode: u32,
}

const DIR: u32 = 0o040000;
const FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

impl Initramfs {
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    /// A directory (parents first: the kernel does not make them).
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(path, DIR | 0o755, &[]);
        self
    }

    /// A file with permission bits `mode` (e.g. 0o755).
    pub fn file(&mut self, path: &str, mode: u32, content: &[u8]) -> &mut Self {
        self.entry(path, FILE | mode, content);
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, SYMLINK | 0o777, target.as_bytes());
        self
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, content: &[u8]) {
        self.inode += 1;
        let name_size = path.len() + 1;
        let nlink = if mode & DIR != 0 { 2 } else { 1 };
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, for reproducible archives
            content.len() as u32,
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            name_size as u32,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(content);
        self.pad();
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_reads_the_archive_back_with_modes_and_contents() {
        let mut ramfs = Initramfs::new();
        ramfs
            .dir("bin")
            .file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n")
            .symlink("bin/sh", "hello")
            .file("odd", 0o644, b"abc");
        let bytes = ramfs.finish();
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "--quiet", "-d"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio runs");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        assert!(child.wait().unwrap().success());
        use std::os::unix::fs::PermissionsExt;
        let hello = dir.path().join("bin/hello");
        assert_eq!(
            std::fs::read_to_string(&hello).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::metadata(&hello).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/sh")).unwrap(),
            std::path::Path::new("hello")
        );
        assert_eq!(std::fs::read(dir.path().join("odd")).unwrap(), b"abc");
    }
}
