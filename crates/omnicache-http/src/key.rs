//! What identifies a stored response: the cache key (RFC 9111 §2, §4.1).

use http::header::{HeaderMap, HeaderName, HOST};
use http::Uri;

/// Ends the URI part of a key; cannot occur in a URI, so invalidating a URI by prefix never
/// touches another URI that merely starts the same way.
const END_URI: u8 = 0x1f;
/// Ends the primary key; variants (by `Vary`) append their secondary key after it.
const END_PRIMARY: u8 = b'\n';

/// How the cache key is built from a request: a fixed prefix, the host, the path, the query
/// (by default) and any headers you add. `GET` and `HEAD` share keys (a `HEAD` is answered from
/// a stored `GET`).
///
/// ```
/// use omnicache_http::CacheKey;
/// // Ignore the query string, and keep one copy per tenant header.
/// let key = CacheKey::default().query(false).header("x-tenant".parse().unwrap());
/// # let _ = key;
/// ```
#[derive(Debug, Clone)]
pub struct CacheKey {
    prefix: Vec<u8>,
    host: bool,
    query: bool,
    headers: Vec<HeaderName>,
}

impl Default for CacheKey {
    /// Prefix `http:`, host, path and query, no extra headers.
    fn default() -> Self {
        CacheKey { prefix: b"http:".to_vec(), host: true, query: true, headers: Vec::new() }
    }
}

impl CacheKey {
    /// Bytes every key starts with, so HTTP responses can share a store with other data and be
    /// purged together. Default `http:`.
    pub fn prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether the host is part of the key (one cache in front of several sites). Default true.
    pub fn host(mut self, yes: bool) -> Self {
        self.host = yes;
        self
    }

    /// Whether the query string is part of the key. Default true.
    pub fn query(mut self, yes: bool) -> Self {
        self.query = yes;
        self
    }

    /// Adds a request header to the key (its value, or its absence).
    pub fn header(mut self, name: HeaderName) -> Self {
        self.headers.push(name);
        self
    }

    /// The key's prefix.
    pub(crate) fn key_prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Whether keys hold the host (between the prefix and the path).
    pub(crate) fn host_in_key(&self) -> bool {
        self.host
    }

    fn host_of<'a>(&self, uri: &'a Uri, headers: &'a HeaderMap) -> &'a [u8] {
        if !self.host {
            return b"";
        }
        match uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            None => headers.get(HOST).map_or(&b""[..], |h| h.as_bytes()),
        }
    }

    /// The key of every response for `path_and_query` on `host`, with or without extra
    /// headers and variants (for invalidation by prefix).
    pub(crate) fn uri_prefix(&self, host: &[u8], path_and_query: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + host.len() + path_and_query.len() + 1);
        k.extend_from_slice(&self.prefix);
        if self.host {
            k.extend(host.iter().map(u8::to_ascii_lowercase));
        }
        let pq = if self.query {
            path_and_query
        } else {
            path_and_query.split('?').next().unwrap_or("")
        };
        k.extend_from_slice(if pq.is_empty() { b"/" } else { pq.as_bytes() });
        k.push(END_URI);
        k
    }

    /// The host of a request as the key sees it.
    pub(crate) fn request_host(&self, uri: &Uri, headers: &HeaderMap) -> Vec<u8> {
        self.host_of(uri, headers).to_ascii_lowercase()
    }

    /// The primary key of a request.
    pub(crate) fn primary(&self, uri: &Uri, headers: &HeaderMap) -> Vec<u8> {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut k = self.uri_prefix(self.host_of(uri, headers), pq);
        for name in &self.headers {
            k.extend_from_slice(name.as_str().as_bytes());
            push_values(&mut k, headers, name.as_str());
        }
        k.push(END_PRIMARY);
        k
    }
}

/// The key of the variant of `primary` selected by the request's values of the `Vary` names.
pub(crate) fn variant(primary: &[u8], names: &[String], headers: &HeaderMap) -> Vec<u8> {
    let mut k = primary.to_vec();
    for n in names {
        k.extend_from_slice(n.as_bytes());
        push_values(&mut k, headers, n);
    }
    k
}

/// Appends `=value` (lines joined by `, `, whitespace around commas removed), or `\x01` when
/// the header is absent, then a separator.
fn push_values(k: &mut Vec<u8>, headers: &HeaderMap, name: &str) {
    let mut any = false;
    for v in headers.get_all(name) {
        k.push(if any { b',' } else { b'=' });
        any = true;
        let parts = v.as_bytes().split(|&c| c == b',').map(<[u8]>::trim_ascii);
        for (i, p) in parts.enumerate() {
            if i > 0 {
                k.push(b',');
            }
            k.extend_from_slice(p);
        }
    }
    if !any {
        k.push(0x01);
    }
    k.push(0x1e);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> (Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        (uri.parse().unwrap(), h)
    }

    #[test]
    fn host_path_and_query_separate_keys() {
        let k = CacheKey::default();
        let p = |u: &str, h: &[(&str, &str)]| {
            let (u, h) = req(u, h);
            k.primary(&u, &h)
        };
        assert_ne!(p("/a?x=1", &[("host", "h")]), p("/a?x=2", &[("host", "h")]));
        assert_ne!(p("/a", &[("host", "h1")]), p("/a", &[("host", "h2")]));
        assert_eq!(p("/a", &[("host", "H")]), p("/a", &[("host", "h")]), "hosts are case-blind");
        assert_eq!(p("http://h/a", &[]), p("/a", &[("host", "h")]));
        let nq = CacheKey::default().query(false);
        let (u1, h) = req("/a?x=1", &[("host", "h")]);
        let (u2, _) = req("/a?x=2", &[]);
        assert_eq!(nq.primary(&u1, &h), nq.primary(&u2, &h));
    }

    #[test]
    fn a_uri_prefix_covers_its_variants_only() {
        let k = CacheKey::default();
        let (u, h) = req("/a", &[("host", "h"), ("accept", "x")]);
        let primary = k.primary(&u, &h);
        let v = variant(&primary, &["accept".into()], &h);
        let prefix = k.uri_prefix(b"h", "/a");
        assert!(primary.starts_with(&prefix) && v.starts_with(&prefix));
        let (u2, _) = req("/ab", &[]);
        assert!(!k.primary(&u2, &h).starts_with(&prefix), "/ab is another URI");
    }

    #[test]
    fn variants_distinguish_absent_empty_and_values() {
        let p = b"p\n";
        let names = vec!["accept".to_string()];
        let v = |h: &[(&str, &str)]| variant(p, &names, &req("/", h).1);
        assert_ne!(v(&[]), v(&[("accept", "")]));
        assert_ne!(v(&[("accept", "a")]), v(&[("accept", "b")]));
        assert_eq!(v(&[("accept", "a, b")]), v(&[("accept", "a"), ("accept", "b")]));
    }
}
