//! How the server stores a value with its content type.
//!
//! A stored value is `MAGIC`, one byte of content-type length, the content type, then the body.
//! Values without the marker (written by the library directly) are served as they are, as
//! `application/octet-stream`.

/// Marks a value stored with its content type.
const MAGIC: &[u8; 3] = b"\0oc";

/// The stored form of `body` with `content_type` (cut to 255 bytes).
pub fn pack_value(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut end = content_type.len().min(255);
    while !content_type.is_char_boundary(end) {
        end -= 1;
    }
    let ct = &content_type.as_bytes()[..end];
    let mut v = Vec::with_capacity(MAGIC.len() + 1 + ct.len() + body.len());
    v.extend_from_slice(MAGIC);
    v.push(ct.len() as u8);
    v.extend_from_slice(ct);
    v.extend_from_slice(body);
    v
}

/// The content type (if the value carries one) and the body of a stored value.
pub fn unpack_value(stored: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(rest) = stored.strip_prefix(MAGIC.as_slice()) else { return (None, stored) };
    let n = rest.first().copied().unwrap_or(0) as usize;
    match (rest.get(1..1 + n), rest.get(1 + n..)) {
        (Some(ct), Some(body)) => match std::str::from_utf8(ct) {
            Ok(ct) => (Some(ct), body),
            Err(_) => (None, stored),
        },
        _ => (None, stored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_types_pack_and_unpack() {
        let v = pack_value("text/plain", b"hi");
        assert_eq!(unpack_value(&v), (Some("text/plain"), &b"hi"[..]));
        assert_eq!(unpack_value(b"plain bytes"), (None, &b"plain bytes"[..]));
        assert_eq!(unpack_value(b"\0oc\x09x"), (None, &b"\0oc\x09x"[..]), "truncated");
        let long = "é".repeat(200);
        let packed = pack_value(&long, b"b");
        let (ct, body) = unpack_value(&packed);
        assert!(ct.unwrap().len() <= 255 && body == b"b", "cut on a character boundary");
    }

    proptest! {
        #[test]
        fn any_bytes_unpack_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unpack_value(&bytes);
            let mut marked = MAGIC.to_vec();
            marked.extend_from_slice(&bytes);
            let _ = unpack_value(&marked);
        }

        #[test]
        fn pack_round_trips(ct in "[ -~]{0,40}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let packed = pack_value(&ct, &body);
            prop_assert_eq!(unpack_value(&packed), (Some(ct.as_str()), body.as_slice()));
        }
    }
}

/// A response body fed by a channel of chunks (a streamed export); an error ends the response
/// abruptly, so a client can tell a cut export from a finished one.
#[derive(Debug)]
pub(crate) struct ChannelBody(pub(crate) tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>>
    {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(|b| http_body::Frame::data(bytes::Bytes::from(b)))))
    }
}

/// A cache's PII guard over the server's stored values: scans the body (not the content-type
/// framing) and keeps the framing around a redacted body.
#[derive(Debug)]
pub(crate) struct PackedPiiGuard(pub(crate) std::sync::Arc<omnicache_security::pii::PiiGuard>);

impl omnicache_core::WriteGuard for PackedPiiGuard {
    fn inspect(
        &self,
        _key: &[u8],
        value: &[u8],
    ) -> omnicache_core::Result<omnicache_core::Inspection> {
        let (content_type, body) = unpack_value(value);
        let mut inspection = self.0.inspect_text(body)?;
        // A value without the framing (written by a library user) is its own body.
        if let Some(ct) = content_type {
            inspection.replace = inspection.replace.map(|redacted| pack_value(ct, &redacted));
        }
        Ok(inspection)
    }
}
