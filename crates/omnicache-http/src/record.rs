//! How a stored response is laid out in the store's bytes.
//!
//! ```text
//! "OCH" version(1) kind(1)
//! kind 0, a response:  status u16 | flags u8 | lifetime u64 | initial_age u64 | response_time u64
//!                      | swr u64 | sie u64 | headers u32 × (name u16 + bytes, value u32 + bytes)
//!                      | body (the rest)
//! kind 1, a Vary index: names u16 × (len u16 + bytes)
//! ```
//!
//! Integers are little-endian. The decoder checks every length against what is left and rejects
//! anything malformed, which the cache treats as a miss (and removes).

use crate::policy::Freshness;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

const MAGIC: &[u8; 3] = b"OCH";
const VERSION: u8 = 1;

/// A response as the cache keeps it.
#[derive(Debug, Clone)]
pub(crate) struct StoredResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) freshness: Freshness,
}

/// What a primary key holds.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// The response, for a resource that does not vary.
    Response(StoredResponse),
    /// The request headers the resource varies on; responses live under secondary keys.
    Vary(Vec<String>),
}

impl Record {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self {
            Record::Response(r) => {
                out.push(0);
                let f = &r.freshness;
                out.extend_from_slice(&r.status.as_u16().to_le_bytes());
                out.push(f.flags);
                for n in [f.lifetime, f.initial_age, f.response_time, f.swr, f.sie] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
                out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
                for (name, value) in &r.headers {
                    let n = name.as_str().as_bytes();
                    out.extend_from_slice(&(n.len() as u16).to_le_bytes());
                    out.extend_from_slice(n);
                    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    out.extend_from_slice(value.as_bytes());
                }
                out.extend_from_slice(&r.body);
            }
            Record::Vary(names) => {
                out.push(1);
                out.extend_from_slice(&(names.len() as u16).to_le_bytes());
                for n in names {
                    out.extend_from_slice(&(n.len() as u16).to_le_bytes());
                    out.extend_from_slice(n.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes stored bytes; `None` when they are not a record this version wrote.
    pub(crate) fn decode(bytes: Vec<u8>) -> Option<Record> {
        let bytes = Bytes::from(bytes);
        let mut r = Reader { b: &bytes, at: 0 };
        if r.take(3)? != MAGIC || r.u8()? != VERSION {
            return None;
        }
        match r.u8()? {
            0 => {
                let status = StatusCode::from_u16(r.u16()?).ok()?;
                let flags = r.u8()?;
                let mut n = [0u64; 5];
                for x in &mut n {
                    *x = r.u64()?;
                }
                let count = r.u32()? as usize;
                let mut headers = HeaderMap::with_capacity(count.min(64));
                for _ in 0..count {
                    let len = r.u16()? as usize;
                    let name = HeaderName::from_bytes(r.take(len)?).ok()?;
                    let len = r.u32()? as usize;
                    let start = r.at;
                    r.take(len)?;
                    let value =
                        HeaderValue::from_maybe_shared(bytes.slice(start..start + len)).ok()?;
                    headers.append(name, value);
                }
                let body = bytes.slice(r.at..);
                let freshness = Freshness {
                    lifetime: n[0],
                    initial_age: n[1],
                    response_time: n[2],
                    swr: n[3],
                    sie: n[4],
                    flags,
                };
                Some(Record::Response(StoredResponse { status, headers, body, freshness }))
            }
            1 => {
                let count = r.u16()? as usize;
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    let len = r.u16()? as usize;
                    names.push(std::str::from_utf8(r.take(len)?).ok()?.to_string());
                }
                (r.at == bytes.len()).then_some(Record::Vary(names))
            }
            _ => None,
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredResponse {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        StoredResponse {
            status: StatusCode::NOT_FOUND,
            headers,
            body: Bytes::from_static(b"hello"),
            freshness: Freshness {
                lifetime: 60,
                initial_age: 3,
                response_time: 99,
                swr: 4,
                sie: 5,
                flags: 7,
            },
        }
    }

    #[test]
    fn round_trips() {
        let bytes = Record::Response(sample()).encode();
        let Some(Record::Response(r)) = Record::decode(bytes) else { panic!("decodes") };
        let s = sample();
        assert_eq!(r.status, s.status);
        assert_eq!(r.headers, s.headers);
        assert_eq!(r.body, s.body);
        assert_eq!(r.freshness, s.freshness);
        let v = Record::Vary(vec!["accept".into(), "x-a".into()]).encode();
        let Some(Record::Vary(names)) = Record::decode(v) else { panic!("decodes") };
        assert_eq!(names, ["accept", "x-a"]);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = Record::Response(sample()).encode();
        // The body is the tail, so only cuts before it must fail.
        let body_at = bytes.len() - 5;
        for cut in 0..body_at {
            assert!(Record::decode(bytes[..cut].to_vec()).is_none(), "cut at {cut}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = Record::decode(b.clone());
            let mut framed = b"OCH\x01".to_vec();
            framed.extend(b);
            let _ = Record::decode(framed);
        }
    }
}
