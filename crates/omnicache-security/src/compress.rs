//! Compression before encryption: an LZ4 [`Transform`] (`lz4_flex`, pure Rust). Stacked first
//! (`transform(compress)` then `transform(encrypt)`), it shrinks what the tiers store and what
//! is encrypted; a ciphertext does not compress, so the order matters.

use omnicache_core::envelope::flags;
use omnicache_core::{Error, ErrorKind, Result, Transform, TransformContext};

/// The default largest value [`Compress`] restores: a stored length above it is refused as
/// corrupt instead of allocated.
pub const DEFAULT_MAX_VALUE: usize = 64 << 20;

/// LZ4 block compression, the value's length in front (4 bytes, little endian).
#[derive(Debug, Clone, Copy)]
pub struct Compress {
    max_value: usize,
}

impl Default for Compress {
    fn default() -> Self {
        Compress { max_value: DEFAULT_MAX_VALUE }
    }
}

impl Compress {
    /// Restores values up to `bytes` long; longer stored lengths are refused (a corrupt or
    /// hostile length never becomes an allocation). Default: [`DEFAULT_MAX_VALUE`].
    pub fn max_value(bytes: usize) -> Compress {
        Compress { max_value: bytes }
    }
}

impl Transform for Compress {
    fn flag(&self) -> u8 {
        flags::COMPRESSED
    }

    fn forward(&self, input: &[u8], _ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        if u32::try_from(input.len()).is_err() {
            return Err(Error::invalid_input("a value of 4 GiB or more does not compress here"));
        }
        Ok(lz4_flex::block::compress_prepend_size(input))
    }

    fn inverse(&self, input: &[u8], _ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        let corrupt = |m: String| Error::new(ErrorKind::Codec, m);
        let Some((len, block)) = input.split_first_chunk::<4>() else {
            return Err(corrupt(format!("compressed value too short ({} bytes)", input.len())));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > self.max_value {
            return Err(corrupt(format!(
                "compressed value claims {len} bytes, above the {} allowed",
                self.max_value
            )));
        }
        let mut out = vec![0u8; len];
        let n = lz4_flex::block::decompress_into(block, &mut out)
            .map_err(|e| corrupt(format!("not an LZ4 block: {e}")))?;
        if n != len {
            return Err(corrupt(format!("LZ4 block gave {n} bytes, {len} expected")));
        }
        Ok(out)
    }
}
