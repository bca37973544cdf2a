//! Index files come compressed; the file name says how.

use std::io::Read;

use crate::error::{KernelsError, Result};

/// Decompress `data` according to the extension of `name` (`.xz`, `.gz`,
/// `.zst`, or none for a plain file).
pub fn decompress(name: &str, data: &[u8]) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| KernelsError::Decompress {
        what: name.to_string(),
        message: e.to_string(),
    };
    // Index files expand about 5 to 10 times.
    let mut out = Vec::with_capacity(data.len().saturating_mul(8));
    if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new_multi_decoder(data)
            .read_to_end(&mut out)
            .map_err(fail)?;
    } else if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(fail)?;
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(data)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(fail)?;
    } else {
        return Ok(data.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"Package: linux-headers-6.1.0-47-amd64\nVersion: 6.1.170-3\n";

    #[test]
    fn each_format_round_trips() {
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(TEXT, 6)
            .read_to_end(&mut xz)
            .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(decompress("Packages.xz", &xz).unwrap(), TEXT);
        assert_eq!(decompress("Packages.gz", &gz).unwrap(), TEXT);
        assert_eq!(decompress("primary.xml.zst", &zst).unwrap(), TEXT);
        assert_eq!(decompress("Packages", TEXT).unwrap(), TEXT);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let err = decompress("main/binary-amd64/Packages.xz", b"not xz at all").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot decompress main/binary-amd64/Packages.xz: "),
            "{err}"
        );
    }
}
