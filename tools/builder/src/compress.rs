//! Compressing a verified (and signed) module the way kmod reads it.

use std::path::Path;
use std::process::Command;

use kmodfarm_model::Compression;

use crate::error::{BuildError, Result};
use crate::process::run_ok;

/// zstd level for modules: well compressed, and its 8 MiB window is within
/// what kmod and the kernel's own module decompressor accept.
const ZSTD_LEVEL: i32 = 19;

/// Writes `ko` compressed as `compression` to `dest`.
pub fn compress(ko: &Path, dest: &Path, compression: Compression) -> Result<()> {
    match compression {
        Compression::Zst => {
            let data = std::fs::read(ko).map_err(BuildError::io(ko))?;
            let packed = zstd::bulk::compress(&data, ZSTD_LEVEL).map_err(BuildError::io(ko))?;
            std::fs::write(dest, packed).map_err(BuildError::io(dest))
        }
        Compression::Xz => {
            // The kernel's own choice for modules: CRC32 check, 1 MiB dictionary.
            let out = std::fs::File::create(dest).map_err(BuildError::io(dest))?;
            run_ok(
                Command::new("xz")
                    .args(["--check=crc32", "--lzma2=dict=1MiB", "-c"])
                    .arg(ko)
                    .stdout(out),
                "xz-utils",
            )
            .map(drop)
        }
        Compression::None | Compression::Distro => std::fs::copy(ko, dest)
            .map(drop)
            .map_err(BuildError::io(dest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zst_output_is_a_zstd_frame_that_decodes_to_the_module() {
        let dir = tempfile::tempdir().unwrap();
        let ko = dir.path().join("m.ko");
        let body: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::write(&ko, &body).unwrap();
        let zst = dir.path().join("m.ko.zst");
        compress(&ko, &zst, Compression::Zst).unwrap();
        let packed = std::fs::read(&zst).unwrap();
        assert_eq!(&packed[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert!(packed.len() < body.len());
        assert_eq!(zstd::decode_all(&packed[..]).unwrap(), body);
        // kmod 34 (Debian 13) refuses a .ko.zst whose frame does not say
        // its size ("Failed to determine decompression size").
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&packed).unwrap(),
            Some(body.len() as u64)
        );
    }
}
