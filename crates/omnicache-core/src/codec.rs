//! Typed values to bytes ([`Codec`]) and bytes to bytes ([`Transform`]).

use crate::error::Result;
#[cfg(any(feature = "json", feature = "postcard"))]
use crate::error::{Error, ErrorKind};
use std::fmt;

/// Turns typed values into bytes and back. The `id` is stored in each [`Envelope`], so a reader
/// can tell which codec wrote an entry.
///
/// [`Envelope`]: crate::Envelope
pub trait Codec<T>: Send + Sync + fmt::Debug + 'static {
    /// The codec's id in envelopes (0 = raw bytes, 1 = JSON, 2 = postcard; 3..=127 reserved;
    /// 128.. for users).
    fn id(&self) -> u8;
    /// Encodes a value.
    fn encode(&self, value: &T) -> Result<Vec<u8>>;
    /// Decodes bytes written by [`encode`](Self::encode); malformed input is an error.
    fn decode(&self, bytes: &[u8]) -> Result<T>;
}

/// The identity codec for byte vectors.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawCodec;

impl Codec<Vec<u8>> for RawCodec {
    fn id(&self) -> u8 {
        0
    }
    fn encode(&self, value: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(value.clone())
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

/// JSON through serde_json, for any serde type.
#[cfg(feature = "json")]
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

#[cfg(feature = "json")]
impl<T> Codec<T> for JsonCodec
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn id(&self) -> u8 {
        1
    }
    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value)
            .map_err(|e| Error::new(ErrorKind::Codec, "encoding JSON").with_source(e))
    }
    fn decode(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::new(ErrorKind::Codec, "decoding JSON").with_source(e))
    }
}

/// A compact binary encoding through postcard, for any serde type: smaller and faster than
/// JSON, but not self-describing (a reader needs the writer's type).
#[cfg(feature = "postcard")]
#[derive(Debug, Default, Clone, Copy)]
pub struct PostcardCodec;

#[cfg(feature = "postcard")]
impl<T> Codec<T> for PostcardCodec
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn id(&self) -> u8 {
        2
    }
    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        postcard::to_allocvec(value)
            .map_err(|e| Error::new(ErrorKind::Codec, "encoding postcard").with_source(e))
    }
    fn decode(&self, bytes: &[u8]) -> Result<T> {
        postcard::from_bytes(bytes)
            .map_err(|e| Error::new(ErrorKind::Codec, "decoding postcard").with_source(e))
    }
}

/// What a transform may bind its output to: the entry's key, so a payload cannot be moved to
/// another key unnoticed (an AEAD uses it as associated data).
#[derive(Debug, Clone, Copy)]
pub struct TransformContext<'a> {
    /// The entry's key.
    pub key: &'a [u8],
    /// The key id recorded in the envelope (for key rotation); 0 when unused.
    pub key_id: u32,
    /// The entry's data subject, if it has one: a transform may keep a key per subject, so
    /// that destroying the key erases every copy of the subject's data (crypto-shredding).
    pub subject: Option<&'a str>,
}

impl<'a> TransformContext<'a> {
    /// The context of an entry `key` under `key_id`, without a data subject.
    pub fn new(key: &'a [u8], key_id: u32) -> Self {
        TransformContext { key, key_id, subject: None }
    }
}

/// A reversible bytes-to-bytes step applied to payloads before they leave memory: compression,
/// encryption. Transforms stack: forward in order on write, inverse in reverse order on read.
pub trait Transform: Send + Sync + fmt::Debug + 'static {
    /// The envelope flag bit this transform sets (see [`crate::envelope::flags`]).
    fn flag(&self) -> u8;
    /// The key id to record for new writes (0 when the transform has no keys).
    fn key_id(&self) -> u32 {
        0
    }
    /// Applies the transform.
    fn forward(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>>;
    /// Undoes it; input that was not produced by `forward` for the same context is an error.
    fn inverse(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "json")]
    use crate::error::ErrorKind;

    #[test]
    fn raw_codec_round_trips() {
        let v = vec![0u8, 1, 255];
        assert_eq!(RawCodec.decode(&RawCodec.encode(&v).unwrap()).unwrap(), v);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_codec_round_trips_and_rejects_garbage() {
        let v: (String, u32) = ("a".into(), 7);
        let bytes = JsonCodec.encode(&v).unwrap();
        let back: (String, u32) = JsonCodec.decode(&bytes).unwrap();
        assert_eq!(back, v);
        let err = <JsonCodec as Codec<(String, u32)>>::decode(&JsonCodec, b"{nope").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Codec);
    }
}
