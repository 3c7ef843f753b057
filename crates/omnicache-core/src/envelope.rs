//! The one binary format of a stored entry in L2/L3.
//!
//! ```text
//! offset size  field
//! 0      2     magic "OC"
//! 2      1     format version (1)
//! 3      1     flags (bit 0 compressed, bit 1 encrypted; others must be 0)
//! 4      1     codec id
//! 5      4     key id (for key rotation), little endian like every integer below
//! 9      8     created, ns since the Unix epoch
//! 17     8     expires, ns since the Unix epoch; 0 = never
//! 25     8     entry version
//! 33     4     weight
//! 37     2+n   subject: u16 length (0xFFFF = none) then UTF-8 bytes
//! ..     2     tag count, then per tag: u16 length + UTF-8 bytes
//! ..     4+n   payload: u32 length then bytes
//! end-4  4     CRC-32 (IEEE) of everything before it
//! ```
//!
//! The decoder checks the magic, version, flags, every length against what is left, UTF-8, and
//! the checksum, and rejects anything else with an [`ErrorKind::Corrupt`] error. It never panics,
//! whatever the bytes (a property test feeds it random and mutated input).
//!
//! [`ErrorKind::Corrupt`]: crate::ErrorKind::Corrupt

use crate::error::{Error, Result};
use crate::meta::EntryMeta;
use crate::tier::TierEntry;

/// Envelope flag bits.
pub mod flags {
    /// The payload was compressed.
    pub const COMPRESSED: u8 = 1 << 0;
    /// The payload was encrypted.
    pub const ENCRYPTED: u8 = 1 << 1;
    /// All bits defined by format version 1.
    pub const KNOWN: u8 = COMPRESSED | ENCRYPTED;
}

const MAGIC: [u8; 2] = *b"OC";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
const NO_SUBJECT: u16 = u16::MAX;
/// The largest payload an envelope may carry (4 GiB - 1).
pub const MAX_PAYLOAD: usize = u32::MAX as usize;

/// How a payload's bytes were made: the codec that encoded the value and the transforms applied
/// after it. Kept in the envelope's header, so a reader knows what to undo; the default is raw
/// bytes, untransformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Encoding {
    /// Flag bits ([`flags`]): one per transform applied.
    pub flags: u8,
    /// Which codec encoded the value ([`Codec::id`](crate::Codec::id)).
    pub codec: u8,
    /// Which key a keyed transform used (for key rotation); 0 = none.
    pub key_id: u32,
}

impl Encoding {
    /// Raw bytes, no transform.
    pub const RAW: Encoding = Encoding { flags: 0, codec: 0, key_id: 0 };
}

/// A stored entry: metadata plus payload bytes, with a checksum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// How the payload was made.
    pub encoding: Encoding,
    /// The entry's metadata.
    pub meta: EntryMeta,
    /// The (possibly transformed) value.
    pub payload: Vec<u8>,
}

impl Envelope {
    /// An envelope around `payload` with `meta`, raw codec, no flags.
    pub fn new(meta: EntryMeta, payload: Vec<u8>) -> Self {
        Envelope { meta, payload, ..Default::default() }
    }

    /// The envelope a tier stores for `entry`.
    pub fn from_entry(entry: TierEntry) -> Self {
        Envelope { encoding: entry.encoding, meta: entry.meta, payload: entry.value }
    }

    /// The entry this envelope carries.
    pub fn into_entry(self) -> TierEntry {
        TierEntry { value: self.payload, meta: self.meta, encoding: self.encoding }
    }

    /// Serializes. Fails only if a field is too long for the format (subject or a tag over
    /// 65,534 bytes, more than 65,535 tags, payload of 4 GiB or more) or flags are unknown.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let Encoding { flags: flag_bits, codec, key_id } = self.encoding;
        if flag_bits & !flags::KNOWN != 0 {
            return Err(Error::invalid_input(format!("unknown envelope flags {flag_bits:#04x}")));
        }
        if self.payload.len() > MAX_PAYLOAD {
            return Err(Error::invalid_input("payload too large for an envelope (4 GiB max)"));
        }
        let mut size = 37 + 2 + 2 + 4 + self.payload.len() + 4;
        size += self.meta.subject.as_ref().map_or(0, |s| s.len());
        size += self.meta.tags.iter().map(|t| 2 + t.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(flag_bits);
        out.push(codec);
        out.extend_from_slice(&key_id.to_le_bytes());
        out.extend_from_slice(&self.meta.created.to_le_bytes());
        out.extend_from_slice(&self.meta.expires.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.meta.version.to_le_bytes());
        out.extend_from_slice(&self.meta.weight.to_le_bytes());
        match &self.meta.subject {
            None => out.extend_from_slice(&NO_SUBJECT.to_le_bytes()),
            Some(s) => put_str(&mut out, s, "subject")?,
        }
        let count = u16::try_from(self.meta.tags.len())
            .map_err(|_| Error::invalid_input("more than 65,535 tags"))?;
        out.extend_from_slice(&count.to_le_bytes());
        for t in &self.meta.tags {
            put_str(&mut out, t, "tag")?;
        }
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses and verifies bytes written by [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        if bytes.len() < 4 {
            return Err(Error::corrupt(format!("envelope too short ({} bytes)", bytes.len())));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let mut r = Reader { buf: body, pos: 0 };
        let magic = r.take(2)?;
        if magic != MAGIC {
            return Err(Error::corrupt("not an envelope (bad magic)"));
        }
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(Error::corrupt(format!("unsupported envelope version {version}")));
        }
        let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != expected {
            return Err(Error::corrupt("envelope checksum mismatch"));
        }
        let flag_bits = r.u8()?;
        if flag_bits & !flags::KNOWN != 0 {
            return Err(Error::corrupt(format!("unknown envelope flags {flag_bits:#04x}")));
        }
        let codec = r.u8()?;
        let key_id = r.u32()?;
        let created = r.u64()?;
        let expires = r.u64()?;
        let version = r.u64()?;
        let weight = r.u32()?;
        let subject_len = r.u16()?;
        let subject = if subject_len == NO_SUBJECT {
            None
        } else {
            Some(r.string(subject_len as usize, "subject")?)
        };
        let tag_count = r.u16()?;
        let mut tags = Vec::with_capacity(usize::from(tag_count).min(r.remaining() / 2));
        for _ in 0..tag_count {
            let len = r.u16()?;
            tags.push(r.string(len as usize, "tag")?);
        }
        let payload_len = r.u32()? as usize;
        let payload = r.take(payload_len)?.to_vec();
        if r.remaining() != 0 {
            return Err(Error::corrupt(format!("{} trailing bytes in envelope", r.remaining())));
        }
        Ok(Envelope {
            encoding: Encoding { flags: flag_bits, codec, key_id },
            meta: EntryMeta {
                created,
                expires: (expires != 0).then_some(expires),
                tags,
                subject,
                version,
                weight,
            },
            payload,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, what: &str) -> Result<()> {
    let len = u16::try_from(s.len())
        .ok()
        .filter(|&l| l != NO_SUBJECT)
        .ok_or_else(|| Error::invalid_input(format!("{what} longer than 65,534 bytes")))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::corrupt(format!(
                "envelope truncated at byte {}: needs {n} more, has {}",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self, len: usize, what: &str) -> Result<String> {
        let at = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::corrupt(format!("envelope {what} at byte {at} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;

    fn sample() -> Envelope {
        Envelope {
            encoding: Encoding { flags: flags::ENCRYPTED, codec: 1, key_id: 42 },
            meta: EntryMeta {
                created: 1_700_000_000_000_000_000,
                expires: Some(1_700_000_060_000_000_000),
                tags: vec!["users".into(), "eu".into()],
                subject: Some("alice".into()),
                version: 9,
                weight: 128,
            },
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(Envelope::decode(&e.encode().unwrap()).unwrap(), e);
        let plain = Envelope::new(EntryMeta::new(5), vec![]);
        assert_eq!(Envelope::decode(&plain.encode().unwrap()).unwrap(), plain);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let err = Envelope::decode(&b).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Corrupt, "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn encode_rejects_what_the_format_cannot_hold() {
        let mut e = sample();
        e.encoding.flags = 0x80;
        assert_eq!(e.encode().unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut e = sample();
        e.meta.subject = Some("x".repeat(70_000));
        assert_eq!(e.encode().unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn a_valid_checksum_over_bad_structure_is_still_rejected() {
        // Craft a body whose CRC is right but whose tag length points past the end.
        let mut body = sample().encode().unwrap();
        body.truncate(body.len() - 4);
        let tag_count_at = 37 + 2 + 5; // subject "alice"
        body[tag_count_at] = 200;
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(Envelope::decode(&body).unwrap_err().kind(), ErrorKind::Corrupt);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn random_bytes_with_a_valid_crc_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut b = b"OC\x01".to_vec();
            b.extend_from_slice(&body);
            let crc = crc32fast::hash(&b);
            b.extend_from_slice(&crc.to_le_bytes());
            let _ = Envelope::decode(&b);
        }

        #[test]
        fn arbitrary_envelopes_round_trip(
            flags in 0u8..4, codec: u8, key_id: u32, created: u64, expires in 1u64.., version: u64,
            weight: u32, subject in proptest::option::of(".{0,20}"),
            tags in proptest::collection::vec(".{0,10}", 0..5),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let e = Envelope {
                encoding: Encoding { flags, codec, key_id },
                meta: EntryMeta { created, expires: Some(expires), tags, subject, version, weight },
                payload,
            };
            prop_assert_eq!(Envelope::decode(&e.encode().unwrap()).unwrap(), e);
        }
    }
}
