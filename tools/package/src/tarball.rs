//! Deterministic tar archives for the .deb members: every entry owned by
//! root:root (0/0), one timestamp, entries in the order given (callers
//! sort), names spelled `./usr/...` the way dpkg-deb writes them.

use std::io::{self, Write};

use tar::{EntryType, Header};

/// `name` field size of a tar header; longer names go in a GNU long-name entry.
const NAME_FIELD: usize = 100;

pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W, mtime: u64) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        TarWriter { builder, mtime }
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> io::Result<()> {
        self.entry(name, EntryType::Directory, mode, &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, contents: &[u8]) -> io::Result<()> {
        self.entry(name, EntryType::Regular, mode, contents)
    }

    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn entry(&mut self, name: &str, kind: EntryType, mode: u32, contents: &[u8]) -> io::Result<()> {
        // The tar crate's own path setter drops the leading "./" that
        // dpkg-deb writes, so the name field is filled here directly.
        if name.len() > NAME_FIELD {
            let mut long = name.as_bytes().to_vec();
            long.push(0);
            let mut header = self.header(EntryType::GNULongName, 0o644, long.len() as u64);
            set_name(&mut header, "././@LongLink");
            header.set_cksum();
            self.builder.append(&header, long.as_slice())?;
        }
        let mut header = self.header(kind, mode, contents.len() as u64);
        set_name(&mut header, &name[..name.len().min(NAME_FIELD)]);
        header.set_cksum();
        self.builder.append(&header, contents)
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        // Names only fail when longer than their 32-byte fields.
        header.set_username("root").expect("fits");
        header.set_groupname("root").expect("fits");
        header
    }
}

fn set_name(header: &mut Header, name: &str) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}
