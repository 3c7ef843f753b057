//! The S3 tier: entries as [`Envelope`] objects in a bucket, through `aws-sdk-s3` with a custom
//! endpoint and path-style addressing (any S3-compatible server), static or environment
//! credentials, and a timeout on every call.
//!
//! - Object keys are the entry keys under a prefix, with bytes outside `[A-Za-z0-9._-:/]`
//!   written as `%XX`, so key prefixes stay object-key prefixes and listing by prefix works.
//! - The expiry, tags and subject are also in the object's user metadata (`x-amz-meta-*`).
//!   Expiry is enforced on read (an expired object is deleted and missed) and by
//!   [`S3Tier::sweep_expired`]; S3 has no secondary index, so invalidation by tag and the sweep
//!   read every object's metadata under the prefix.
//! - Erasure by data subject goes through an index of its own: writing an entry with a subject
//!   first writes an empty marker `PREFIX%subjects/<hex of the subject>/<key>` (a name no
//!   encoded entry key can take), so an erase lists the subject's markers and deletes the
//!   entries they name that still belong to the subject, then the markers; no scan of the
//!   bucket. Listings, scans and usage skip the markers.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use omnicache_core::{
    EntryMeta, Envelope, Error, ErrorKind, Invalidation, Result, ScanPage, SharedClock, Tier,
    TierEntry, TierHealth, Timestamp,
};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Builds an [`S3Tier`].
#[derive(Clone)]
#[must_use]
pub struct S3TierBuilder {
    endpoint: String,
    bucket: String,
    prefix: String,
    region: String,
    credentials: Option<(String, String)>,
    timeout: Duration,
    clock: SharedClock,
    name: String,
}

impl fmt::Debug for S3TierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3TierBuilder")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("credentials", &self.credentials.as_ref().map(|(ak, _)| (ak, "<redacted>")))
            .finish_non_exhaustive()
    }
}

impl S3TierBuilder {
    /// The key prefix inside the bucket. Default: `"omnicache/"`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The region to sign for. Default: `"us-east-1"`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Static credentials. Default: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from the
    /// environment.
    pub fn credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some((access_key.into(), secret_key.into()));
        self
    }

    /// The time limit of every call. Default: 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock for expiry. Default: the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// The tier's name in logs and metrics. Default: `"s3"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the client (no network call yet).
    pub fn build(self) -> Result<S3Tier> {
        let (ak, sk) = match self.credentials {
            Some(c) => c,
            None => match (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
                (Ok(a), Ok(s)) => (a, s),
                _ => {
                    return Err(Error::invalid_input(
                        "S3 tier: no credentials (give them to the builder or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                    ))
                }
            },
        };
        if self.bucket.is_empty() {
            return Err(Error::invalid_input("S3 tier: the bucket name is empty"));
        }
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region))
            .endpoint_url(self.endpoint.clone())
            .force_path_style(true)
            .credentials_provider(Credentials::new(ak, sk, None, None, "omnicache"))
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        Ok(S3Tier {
            client: Client::from_conf(conf),
            bucket: self.bucket,
            prefix: self.prefix,
            timeout: self.timeout,
            clock: self.clock,
            failing: AtomicBool::new(false),
            name: self.name,
            endpoint: self.endpoint,
        })
    }
}

/// The S3 tier; see the [module docs](self).
pub struct S3Tier {
    client: Client,
    bucket: String,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    failing: AtomicBool,
    name: String,
    endpoint: String,
}

impl fmt::Debug for S3Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Tier")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/')
}

/// Object key text for an entry key.
pub fn encode_key(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len());
    for &b in key {
        if safe(b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The entry key of an object key text; `None` if it is not one [`encode_key`] writes.
pub fn decode_key(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

const META_EXPIRES: &str = "expires";
const META_TAGS: &str = "tags";
const META_SUBJECT: &str = "subject";
/// Under the tier's prefix, where the subject index lives.
const SUBJECTS: &str = "%subjects/";

impl S3Tier {
    /// A builder for `bucket` at `endpoint` (for example `http://127.0.0.1:9000`).
    pub fn builder(endpoint: impl Into<String>, bucket: impl Into<String>) -> S3TierBuilder {
        S3TierBuilder {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            prefix: "omnicache/".into(),
            region: "us-east-1".into(),
            credentials: None,
            timeout: Duration::from_secs(5),
            clock: SharedClock::System,
            name: "s3".into(),
        }
    }

    fn object_key(&self, key: &[u8]) -> String {
        format!("{}{}", self.prefix, encode_key(key))
    }

    async fn run<T, E>(
        &self,
        what: &str,
        f: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<std::result::Result<T, E>> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => Ok(r),
            Err(_) => {
                self.failing.store(true, Ordering::Relaxed);
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("s3 {}: {what} timed out after {:?}", self.endpoint, self.timeout),
                ))
            }
        }
    }

    fn fail(&self, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.failing.store(true, Ordering::Relaxed);
        Error::new(
            ErrorKind::Unavailable,
            format!("s3 {} bucket {}: {what}", self.endpoint, self.bucket),
        )
        .with_source(e)
    }

    fn ok(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }

    /// The user metadata of an object, or `None` if it does not exist.
    async fn head(&self, object: &str) -> Result<Option<EntryMeta>> {
        let r = self
            .run("head", self.client.head_object().bucket(&self.bucket).key(object).send())
            .await?;
        match r {
            Ok(out) => {
                self.ok();
                let m = out.metadata();
                let get = |k: &str| m.and_then(|m| m.get(k)).cloned();
                let mut meta = EntryMeta::new(0);
                meta.expires =
                    get(META_EXPIRES).and_then(|e| e.parse::<u64>().ok()).filter(|&e| e > 0);
                meta.tags = get(META_TAGS)
                    .map(|t| {
                        t.split(',')
                            .filter(|s| !s.is_empty())
                            .filter_map(decode_key)
                            .filter_map(|b| String::from_utf8(b).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                meta.subject = get(META_SUBJECT)
                    .and_then(|s| decode_key(&s))
                    .and_then(|b| String::from_utf8(b).ok());
                Ok(Some(meta))
            }
            Err(e) => {
                let se = e.into_service_error();
                if se.is_not_found() {
                    self.ok();
                    Ok(None)
                } else {
                    Err(self.fail("head", se))
                }
            }
        }
    }

    async fn delete(&self, object: &str) -> Result<()> {
        match self
            .run("delete", self.client.delete_object().bucket(&self.bucket).key(object).send())
            .await?
        {
            Ok(_) => {
                self.ok();
                Ok(())
            }
            Err(e) => Err(self.fail("delete", e.into_service_error())),
        }
    }

    /// Object keys under the tier's prefix plus `prefix`, after the object key `start_after`,
    /// up to `max`.
    async fn list(
        &self,
        prefix: &[u8],
        start_after: Option<&str>,
        max: i32,
    ) -> Result<(Vec<String>, bool)> {
        self.list_raw(&format!("{}{}", self.prefix, encode_key(prefix)), start_after, max).await
    }

    /// Object keys under `prefix` (an object key prefix as is), after `start_after`.
    async fn list_raw(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: i32,
    ) -> Result<(Vec<String>, bool)> {
        let mut req =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).max_keys(max);
        if let Some(c) = start_after {
            req = req.start_after(c);
        }
        match self.run("list", req.send()).await? {
            Ok(out) => {
                self.ok();
                let keys =
                    out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
                Ok((keys, out.is_truncated().unwrap_or(false)))
            }
            Err(e) => Err(self.fail("list", e.into_service_error())),
        }
    }

    /// Every object key under `prefix` (as is).
    async fn list_all_raw(&self, prefix: &str) -> Result<Vec<String>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (keys, truncated) = self.list_raw(prefix, after.as_deref(), 1000).await?;
            let last = keys.last().cloned();
            all.extend(keys);
            match (truncated, last) {
                (true, Some(l)) => after = Some(l),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Every object key under the tier's prefix plus `prefix`.
    async fn list_all(&self, prefix: &[u8]) -> Result<Vec<String>> {
        self.list_all_raw(&format!("{}{}", self.prefix, encode_key(prefix))).await
    }

    /// Whether `object` is a subject index marker, not an entry.
    fn is_marker(&self, object: &str) -> bool {
        object.get(self.prefix.len()..).is_some_and(|rest| rest.starts_with(SUBJECTS))
    }

    /// Where the subject index notes that `key` belongs to `subject`: an empty object under
    /// `PREFIX%subjects/<hex of the subject>/`, a name no encoded entry key can take (`%` is
    /// always escaped in them).
    fn marker_prefix(&self, subject: &str) -> String {
        let hex: String = subject.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}{SUBJECTS}{hex}/", self.prefix)
    }

    /// Erases every entry of `subject` through the index: the markers under its prefix name
    /// the entries; each is deleted only if it still belongs to the subject (a key written
    /// since for someone else stays), then the marker.
    async fn erase_subject(&self, subject: &str, now: Timestamp) -> Result<u64> {
        let markers = self.marker_prefix(subject);
        let mut n = 0;
        for marker in self.list_all_raw(&markers).await? {
            let object = format!("{}{}", self.prefix, &marker[markers.len()..]);
            if let Some(meta) = self.head(&object).await? {
                if meta.subject.as_deref() == Some(subject) {
                    self.delete(&object).await?;
                    if !meta.is_expired(now) {
                        n += 1;
                    }
                }
            }
            self.delete(&marker).await?;
        }
        Ok(n)
    }

    /// Deletes every expired object under the prefix; returns how many.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut n = 0;
        for object in self.list_all(b"").await? {
            if self.is_marker(&object) {
                continue;
            }
            if let Some(meta) = self.head(&object).await? {
                if meta.is_expired(now) {
                    self.delete(&object).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    async fn delete_matching(&self, what: &Invalidation, now: Timestamp) -> Result<u64> {
        let prefix: &[u8] = match what {
            Invalidation::Prefix(p) => p,
            _ => b"",
        };
        let mut n = 0;
        for object in self.list_all(prefix).await? {
            if self.is_marker(&object) {
                if *what == Invalidation::All {
                    self.delete(&object).await?;
                }
                continue;
            }
            let Some(key) = decode_key(&object[self.prefix.len()..]) else { continue };
            let hit = if what.needs_meta() {
                self.head(&object)
                    .await?
                    .is_some_and(|m| what.matches(&key, &m) && !m.is_expired(now))
            } else {
                what.matches(&key, &EntryMeta::default())
            };
            if hit {
                self.delete(&object).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Tier for S3Tier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        let object = self.object_key(key);
        let out = match self
            .run("get", self.client.get_object().bucket(&self.bucket).key(&object).send())
            .await?
        {
            Ok(out) => out,
            Err(e) => {
                let se = e.into_service_error();
                if se.is_no_such_key() {
                    self.ok();
                    return Ok(None);
                }
                return Err(self.fail("get", se));
            }
        };
        let bytes = match self.run("read body", out.body.collect()).await? {
            Ok(b) => b.into_bytes(),
            Err(e) => return Err(self.fail("read body", e)),
        };
        self.ok();
        match Envelope::decode(&bytes) {
            Ok(env) if env.meta.is_expired(self.clock.now()) => {
                self.delete(&object).await?;
                Ok(None)
            }
            Ok(env) => Ok(Some(env.into_entry())),
            Err(e) => {
                self.delete(&object).await?;
                Err(e.context(format!("s3 object {object}: deleted")))
            }
        }
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        let object = self.object_key(key);
        let expires = entry.meta.expires.unwrap_or(0).to_string();
        let tags =
            entry.meta.tags.iter().map(|t| encode_key(t.as_bytes())).collect::<Vec<_>>().join(",");
        if let Some(s) = entry.meta.subject.as_deref() {
            // The index first: an entry stored without its marker would escape an erase.
            let marker = format!("{}{}", self.marker_prefix(s), encode_key(key));
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(marker)
                .body(ByteStream::from(Vec::new()));
            if let Err(e) = self.run("put", req.send()).await? {
                return Err(self.fail("put", e.into_service_error()));
            }
        }
        let subject = entry.meta.subject.as_deref().map(|s| encode_key(s.as_bytes()));
        let body = Envelope::from_entry(entry).encode()?;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .body(ByteStream::from(body))
            .metadata(META_EXPIRES, expires)
            .metadata(META_TAGS, tags);
        if let Some(s) = subject {
            req = req.metadata(META_SUBJECT, s);
        }
        match self.run("put", req.send()).await? {
            Ok(_) => {
                self.ok();
                Ok(())
            }
            Err(e) => Err(self.fail("put", e.into_service_error())),
        }
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        let object = self.object_key(key);
        let meta = self.head(&object).await?;
        if let Some(meta) = &meta {
            self.delete(&object).await?;
            if let Some(s) = meta.subject.as_deref() {
                self.delete(&format!("{}{}", self.marker_prefix(s), encode_key(key))).await?;
            }
        }
        Ok(meta.is_some())
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        let now = self.clock.now();
        match what {
            Invalidation::Key(k) => Ok(u64::from(self.remove(k).await?)),
            Invalidation::Keys(ks) => {
                let mut n = 0;
                for k in ks {
                    n += u64::from(self.remove(k).await?);
                }
                Ok(n)
            }
            // Boxed: each S3 call's future is large, and a caller awaiting `invalidate` inside
            // its own big future (the conformance suite) would overflow a thread's stack.
            Invalidation::Subject(s) => Box::pin(self.erase_subject(s, now)).await,
            other => Box::pin(self.delete_matching(other, now)).await,
        }
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        let now = self.clock.now();
        let mut keys = Vec::new();
        let mut after = cursor.map(|c| self.object_key(c));
        loop {
            let (objects, truncated) = self.list(prefix, after.as_deref(), 1000).await?;
            let last = objects.last().cloned();
            for object in objects {
                if self.is_marker(&object) {
                    continue;
                }
                let Some(key) = decode_key(&object[self.prefix.len()..]) else { continue };
                let live = self.head(&object).await?.is_some_and(|m| !m.is_expired(now));
                if !live {
                    continue;
                }
                if keys.len() == limit {
                    let next = keys.last().cloned();
                    return Ok(ScanPage { keys, next });
                }
                keys.push(key);
            }
            match (truncated, last) {
                (true, Some(l)) => after = Some(l),
                _ => return Ok(ScanPage { keys, next: None }),
            }
        }
    }

    async fn sweep_expired(&self) -> Result<u64> {
        S3Tier::sweep_expired(self).await
    }

    async fn usage(&self) -> Result<Option<omnicache_core::TierUsage>> {
        let mut usage = omnicache_core::TierUsage::default();
        let mut after: Option<String> = None;
        loop {
            let mut req = self.client.list_objects_v2().bucket(&self.bucket).prefix(&self.prefix);
            if let Some(a) = &after {
                req = req.start_after(a);
            }
            let out = match self.run("list", req.send()).await? {
                Ok(o) => o,
                Err(e) => return Err(self.fail("list", e.into_service_error())),
            };
            for o in out.contents() {
                if o.key().is_some_and(|k| self.is_marker(k)) {
                    continue;
                }
                usage.entries += 1;
                usage.bytes += o.size().unwrap_or(0).max(0) as u64;
            }
            match (out.is_truncated().unwrap_or(false), out.contents().last().and_then(|o| o.key()))
            {
                (true, Some(k)) => after = Some(k.to_string()),
                _ => return Ok(Some(usage)),
            }
        }
    }

    fn health(&self) -> TierHealth {
        if self.failing.load(Ordering::Relaxed) {
            TierHealth::Degraded
        } else {
            TierHealth::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_reversibly_and_keep_prefixes() {
        for k in [&b"user:1"[..], b"a b/%", &[0, 255, 10], b""] {
            assert_eq!(decode_key(&encode_key(k)).unwrap(), k);
        }
        assert!(encode_key(b"scan:001").starts_with(&encode_key(b"scan:")));
        assert_eq!(encode_key(b"a b"), "a%20b");
        assert_eq!(decode_key("%zz"), None);
        assert_eq!(decode_key("%4"), None);
    }
}
