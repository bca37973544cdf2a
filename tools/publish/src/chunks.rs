//! Package lists made of buckets, so that adding one package to a large
//! repository recompresses one bucket, not the whole list.
//!
//! A list (an apt `Packages`, a yum `primary.xml` …) is a head, its
//! packages in buckets, and a tail. Which bucket a package is in depends
//! only on its file name and the list's size ([`bucket_of`]), so the same
//! packages always give the same bytes, whatever order they arrived in.
//! Each bucket is compressed on its own, and the compressed list is the
//! pieces joined in a way every reader takes as one file:
//!
//! - gzip: members one after another. apt, libsolv and libzypp read with
//!   zlib's `gzread`, which goes on across members.
//! - zstd: frames one after another (a zstd stream is a sequence of frames).
//! - xz: one stream of several blocks. Streams cannot simply be joined:
//!   apt opens .xz without `LZMA_CONCATENATED` and stops at the end of the
//!   first stream, so [`xz_join`] writes one stream header, the blocks, one
//!   index and one footer (the .xz file format, version 1.2.1).
//!
//! A bucket's text and its compressed pieces are kept between publishes in
//! `.kmodfarm/chunks/<key>` ([`Chunk`]), the key a digest of what the bucket
//! was made from.

use std::io::Write;

use sha2::{Digest, Sha256};

/// Lists up to this many packages are one bucket: small repositories keep
/// one sorted list and the best compression.
pub const SINGLE_BUCKET_LIMIT: usize = 512;
/// Buckets of larger lists (about 160 packages each at 10,000).
pub const BUCKETS: usize = 64;

/// How many buckets a list of `packages` packages is cut into.
pub fn bucket_count(packages: usize) -> usize {
    if packages <= SINGLE_BUCKET_LIMIT {
        1
    } else {
        BUCKETS
    }
}

/// The bucket of the package file `name` among `count` buckets: FNV-1a,
/// fixed here so every kmodfarm puts a package in the same bucket.
pub fn bucket_of(name: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut n: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        n ^= u64::from(b);
        n = n.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (n % count as u64) as usize
}

/// A digest naming what a bucket was made from: the kind of list and each
/// package's identity, in order.
pub fn key_of<'a>(kind: &str, parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    for p in parts {
        hash.update([0]);
        hash.update(p.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// How a list is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// gzip at this level, no name, mtime 0, OS `unix`.
    Gzip(u32),
    /// xz at preset 1, CRC64 checks (xz's default).
    Xz,
    /// zstd at its default level.
    Zstd,
}

impl Codec {
    /// The piece `text` contributes to a list compressed with this codec.
    pub fn compress(self, text: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip(level) => {
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(3)
                    .write(Vec::new(), flate2::Compression::new(level));
                enc.write_all(text).expect("writing to a Vec");
                enc.finish().expect("writing to a Vec")
            }
            Codec::Xz => xz_block(text).encode(),
            Codec::Zstd => zstd::encode_all(text, 0).expect("compressing into a Vec"),
        }
    }

    /// The compressed list made of `pieces`, each from [`Codec::compress`].
    pub fn join(self, pieces: &[&[u8]]) -> Vec<u8> {
        match self {
            Codec::Gzip(_) | Codec::Zstd => pieces.concat(),
            Codec::Xz => {
                let blocks: Vec<XzBlock> = pieces
                    .iter()
                    .map(|p| XzBlock::decode(p).expect("pieces come from Codec::compress"))
                    .collect();
                xz_join(&blocks)
            }
        }
    }
}

/// One xz block: its bytes (header, data, padding, check) and the two
/// sizes the stream's index records for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XzBlock {
    pub bytes: Vec<u8>,
    pub unpadded: u64,
    pub uncompressed: u64,
}

const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// Stream flags: no reserved bits, check type 0x04 (CRC64).
const XZ_FLAGS: [u8; 2] = [0, 0x04];

impl XzBlock {
    /// As kept in a chunk: the two sizes, then the block.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 16);
        out.extend_from_slice(&self.unpadded.to_le_bytes());
        out.extend_from_slice(&self.uncompressed.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }

    fn decode(piece: &[u8]) -> Option<XzBlock> {
        let unpadded = u64::from_le_bytes(piece.get(..8)?.try_into().ok()?);
        let uncompressed = u64::from_le_bytes(piece.get(8..16)?.try_into().ok()?);
        Some(XzBlock {
            bytes: piece[16..].to_vec(),
            unpadded,
            uncompressed,
        })
    }
}

/// Compresses `text` as one xz block: liblzma writes a one-block stream,
/// and the block is cut out of it with the sizes its index gives.
pub fn xz_block(text: &[u8]) -> XzBlock {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
    enc.write_all(text).expect("writing to a Vec");
    let stream = enc.finish().expect("writing to a Vec");
    let footer = &stream[stream.len() - 12..];
    let backward = (u32::from_le_bytes(footer[4..8].try_into().expect("4 bytes")) as usize + 1) * 4;
    let index_start = stream.len() - 12 - backward;
    let index = &stream[index_start..stream.len() - 12];
    let mut at = 1;
    let records = read_varint(index, &mut at);
    if records == 0 {
        // Empty text: liblzma writes no block at all.
        return XzBlock {
            bytes: Vec::new(),
            unpadded: 0,
            uncompressed: 0,
        };
    }
    assert_eq!(records, 1, "liblzma wrote one block");
    let unpadded = read_varint(index, &mut at);
    let uncompressed = read_varint(index, &mut at);
    XzBlock {
        bytes: stream[12..index_start].to_vec(),
        unpadded,
        uncompressed,
    }
}

/// One xz stream holding `blocks` in order.
pub fn xz_join(blocks: &[XzBlock]) -> Vec<u8> {
    let blocks: Vec<&XzBlock> = blocks.iter().filter(|b| !b.bytes.is_empty()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&XZ_MAGIC);
    out.extend_from_slice(&XZ_FLAGS);
    out.extend_from_slice(&crc32(&XZ_FLAGS).to_le_bytes());
    for b in &blocks {
        out.extend_from_slice(&b.bytes);
    }
    let mut index = vec![0u8];
    write_varint(&mut index, blocks.len() as u64);
    for b in &blocks {
        write_varint(&mut index, b.unpadded);
        write_varint(&mut index, b.uncompressed);
    }
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    let backward = (index.len() / 4 - 1) as u32;
    out.extend_from_slice(&index);
    let mut tail = Vec::with_capacity(6);
    tail.extend_from_slice(&backward.to_le_bytes());
    tail.extend_from_slice(&XZ_FLAGS);
    out.extend_from_slice(&crc32(&tail).to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(b"YZ");
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A bucket as kept between publishes: named sections of bytes (its text
/// per document, and each text's compressed piece).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    pub sections: Vec<(String, Vec<u8>)>,
}

const CHUNK_MAGIC: &[u8] = b"kmodfarm-chunk 1\n";

impl Chunk {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Moves the section `name` out (None when there is none).
    pub fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        let i = self.sections.iter().position(|(n, _)| n == name)?;
        Some(std::mem::take(&mut self.sections[i].1))
    }

    pub fn put(&mut self, name: &str, bytes: Vec<u8>) {
        self.sections.push((name.to_string(), bytes));
    }

    /// `kmodfarm-chunk 1`, then for each section a line `<name> <length>`
    /// and the bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = CHUNK_MAGIC.to_vec();
        for (name, bytes) in &self.sections {
            out.extend_from_slice(format!("{name} {}\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// None when `bytes` is not a whole chunk (the caller makes the bucket
    /// again).
    pub fn decode(bytes: &[u8]) -> Option<Chunk> {
        let mut rest = bytes.strip_prefix(CHUNK_MAGIC)?;
        let mut chunk = Chunk::default();
        while !rest.is_empty() {
            let newline = rest.iter().position(|&b| b == b'\n')?;
            let line = std::str::from_utf8(&rest[..newline]).ok()?;
            let (name, len) = line.rsplit_once(' ')?;
            let len: usize = len.parse().ok()?;
            let body = rest.get(newline + 1..newline + 1 + len)?;
            chunk.put(name, body.to_vec());
            rest = &rest[newline + 1 + len..];
        }
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("Package: p{i}\nVersion: 1.{i}\n\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn joined_xz_is_one_stream_a_single_stream_reader_reads_whole() {
        let parts = [text(300), Vec::new(), text(1), text(2000)];
        let pieces: Vec<Vec<u8>> = parts.iter().map(|p| Codec::Xz.compress(p)).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let joined = Codec::Xz.join(&refs);
        // The single-stream decoder apt uses (no LZMA_CONCATENATED).
        let stream = liblzma::stream::Stream::new_auto_decoder(u64::MAX, 0).unwrap();
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new_stream(&joined[..], stream)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, parts.concat());
    }

    #[test]
    fn an_empty_xz_list_is_what_xz_writes_for_nothing() {
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(b"").unwrap();
        assert_eq!(xz_join(&[]), enc.finish().unwrap());
    }

    #[test]
    fn joined_gzip_members_read_as_one_file() {
        let parts = [text(10), text(20)];
        let pieces: Vec<Vec<u8>> = parts.iter().map(|p| Codec::Gzip(9).compress(p)).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&Codec::Gzip(9).join(&refs)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, parts.concat());
    }

    #[test]
    fn buckets_depend_on_the_name_and_the_size_only() {
        assert_eq!(bucket_count(SINGLE_BUCKET_LIMIT), 1);
        assert_eq!(bucket_count(SINGLE_BUCKET_LIMIT + 1), BUCKETS);
        assert_eq!(bucket_of("a.deb", 1), 0);
        let b = bucket_of("kmfdemo-modules-6.1.0-9-amd64_1.0.0-1_amd64.deb", BUCKETS);
        assert!(b < BUCKETS);
        assert_eq!(
            b,
            bucket_of("kmfdemo-modules-6.1.0-9-amd64_1.0.0-1_amd64.deb", BUCKETS)
        );
        let used: std::collections::BTreeSet<usize> = (0..1000)
            .map(|i| bucket_of(&format!("p{i}.deb"), BUCKETS))
            .collect();
        assert_eq!(used.len(), BUCKETS, "names spread over every bucket");
    }

    #[test]
    fn chunks_round_trip_and_refuse_a_torn_file() {
        let mut c = Chunk::default();
        c.put("text", b"a b\nc".to_vec());
        c.put("gz", vec![0, 1, 2, b'\n']);
        let bytes = c.encode();
        assert_eq!(Chunk::decode(&bytes), Some(c));
        assert_eq!(Chunk::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Chunk::decode(b"something else"), None);
    }
}
