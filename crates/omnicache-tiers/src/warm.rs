//! Warming, export and import for a [`TieredCache`].
//!
//! - **Warm** from JSON (an array of records, or an object of key to value), JSONL (one record a
//!   line) or CSV (`key,value[,ttl_secs[,tags]]`, tags separated by `|`, an optional header).
//!   A record is `{"key": "...", "value": "..." | any JSON, "ttl_secs": n, "tags": [...],
//!   "subject": "..."}`; a non-string JSON value is stored as its JSON text; `"value_hex"` holds
//!   binary values. Invalid rows are skipped and reported with their line numbers; an optional
//!   TTL overrides every record's; progress is reported every N rows.
//! - **Export** writes every live entry (or those under a key prefix) as JSONL with its
//!   remaining TTL in milliseconds, tags and subject; **import** reads that back, so a
//!   round trip is exact.

use crate::tiered::{PutOptions, TieredCache};
use omnicache_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::time::Duration;

/// The layout of a warm file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmFormat {
    /// A JSON array of records, or a JSON object mapping keys to values.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// `key,value[,ttl_secs[,tags]]` rows.
    Csv,
}

impl WarmFormat {
    /// The format for a file name's extension (`.json`, `.jsonl`/`.ndjson`, `.csv`).
    pub fn from_path(path: &std::path::Path) -> Option<WarmFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(WarmFormat::Json),
            "jsonl" | "ndjson" => Some(WarmFormat::Jsonl),
            "csv" => Some(WarmFormat::Csv),
            _ => None,
        }
    }
}

/// Stores a value with its content type (see [`WarmOptions::pack`]).
pub type Pack<'a> = &'a (dyn Fn(&str, Vec<u8>) -> Vec<u8> + Sync);

/// Options of a warm or import.
#[derive(Default)]
pub struct WarmOptions<'a> {
    /// Replaces every record's TTL.
    pub ttl_override: Option<Duration>,
    /// Calls `progress` every this many rows (0 = never).
    pub progress_every: u64,
    /// Receives the number of rows read so far.
    pub progress: Option<&'a mut (dyn FnMut(u64) + Send)>,
    /// Stores each value with its content type: the record's `content_type`, or
    /// `text/plain; charset=utf-8` for a text value, `application/json` for other JSON and
    /// `application/octet-stream` for `value_hex`. Default: the value bytes alone.
    pub pack: Option<Pack<'a>>,
}

impl std::fmt::Debug for WarmOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmOptions")
            .field("ttl_override", &self.ttl_override)
            .field("progress_every", &self.progress_every)
            .finish_non_exhaustive()
    }
}

/// What a warm or import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Rows read (valid or not).
    pub rows: u64,
    /// Entries stored.
    pub loaded: u64,
    /// Rows skipped: (line number, 1-based; reason).
    pub skipped: Vec<(u64, String)>,
}

/// One record of a warm or export file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// The key, when it is UTF-8.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The key in standard base64, for keys that are not UTF-8 (export writes it instead of
    /// `key`, so a round trip is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The value as text or any JSON (stored as its JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The value as hexadecimal, for bytes that are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
    /// Time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<f64>,
    /// Remaining time to live in milliseconds (written by export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Data subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The value's content type, for stores that keep one (the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Entries written to the tiers per batch while warming.
const BATCH: usize = 1_000;

fn hex_decode(s: &str) -> std::result::Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("value_hex has an odd number of digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| format!("value_hex: bad digits at {i}"))
        })
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Record {
    /// The value bytes and put options this record describes.
    fn into_put(
        self,
        ttl_override: Option<Duration>,
        pack: Option<Pack<'_>>,
    ) -> std::result::Result<(Vec<u8>, Vec<u8>, PutOptions), String> {
        use base64::Engine as _;
        let key = match (self.key.is_empty(), &self.key_base64) {
            (false, None) => self.key.into_bytes(),
            (true, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("key_base64 is not base64: {e}"))?,
            (false, Some(_)) => return Err("both \"key\" and \"key_base64\"".into()),
            (true, None) => return Err("empty key (expected \"key\" or \"key_base64\")".into()),
        };
        if key.is_empty() {
            return Err("empty key".into());
        }
        let (value, inferred) = match (self.value, self.value_hex) {
            (Some(serde_json::Value::String(s)), None) => {
                (s.into_bytes(), "text/plain; charset=utf-8")
            }
            (Some(v), None) => (v.to_string().into_bytes(), "application/json"),
            (None, Some(h)) => (hex_decode(&h)?, "application/octet-stream"),
            (None, None) => return Err("no value (expected \"value\" or \"value_hex\")".into()),
            (Some(_), Some(_)) => return Err("both \"value\" and \"value_hex\"".into()),
        };
        let value = match pack {
            Some(pack) => pack(self.content_type.as_deref().unwrap_or(inferred), value),
            None => value,
        };
        let ttl = match (ttl_override, self.ttl_ms, self.ttl_secs) {
            (Some(t), _, _) => Some(t),
            (None, Some(ms), _) => Some(Duration::from_millis(ms)),
            (None, None, Some(s)) if s.is_finite() && s > 0.0 => {
                Some(Duration::from_secs_f64(s.min(1e12)))
            }
            (None, None, Some(s)) => {
                return Err(format!("ttl_secs must be a positive number, got {s}"))
            }
            (None, None, None) => None,
        };
        Ok((key, value, PutOptions { ttl, tags: self.tags, subject: self.subject, cold: false }))
    }
}

fn parse_csv_row(line: &str) -> std::result::Result<Record, String> {
    let mut fields = line.splitn(4, ',');
    let key = fields.next().unwrap_or_default().trim().to_string();
    let value = fields.next().ok_or("missing value column")?.trim().to_string();
    let ttl_secs = match fields.next().map(str::trim).filter(|s| !s.is_empty()) {
        Some(t) => Some(t.parse::<f64>().map_err(|_| format!("ttl_secs {t:?} is not a number"))?),
        None => None,
    };
    let tags = fields
        .next()
        .map(|t| {
            t.split('|').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default();
    Ok(Record {
        key,
        key_base64: None,
        value: Some(serde_json::Value::String(value)),
        value_hex: None,
        ttl_secs,
        ttl_ms: None,
        tags,
        subject: None,
        content_type: None,
    })
}

/// Warms `cache` from `reader` in `format`.
pub async fn warm(
    cache: &TieredCache,
    reader: impl BufRead,
    format: WarmFormat,
    mut options: WarmOptions<'_>,
) -> Result<WarmReport> {
    let mut load = Loader { report: WarmReport::default(), batch: Vec::with_capacity(BATCH) };
    match format {
        WarmFormat::Json => {
            let value: serde_json::Value = serde_json::from_reader(reader).map_err(|e| {
                Error::invalid_input(format!("line {}: not valid JSON: {e}", e.line()))
            })?;
            let records: Vec<std::result::Result<Record, String>> = match value {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|v| serde_json::from_value::<Record>(v).map_err(|e| e.to_string()))
                    .collect(),
                serde_json::Value::Object(map) => map
                    .into_iter()
                    .map(|(k, v)| {
                        Ok(Record {
                            key: k,
                            key_base64: None,
                            value: Some(v),
                            value_hex: None,
                            ttl_secs: None,
                            ttl_ms: None,
                            tags: vec![],
                            subject: None,
                            content_type: None,
                        })
                    })
                    .collect(),
                _ => {
                    return Err(Error::invalid_input(
                        "a JSON warm file holds an array of records or an object",
                    ))
                }
            };
            for (i, rec) in records.into_iter().enumerate() {
                load.row(cache, i as u64 + 1, rec, &mut options).await?;
            }
        }
        // Line formats are read a line at a time: memory holds one batch, whatever the size.
        WarmFormat::Jsonl | WarmFormat::Csv => {
            for (i, line) in reader.lines().enumerate() {
                let n = i as u64 + 1;
                let line = line.map_err(|e| Error::from(e).context(format!("line {n}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec = if format == WarmFormat::Jsonl {
                    serde_json::from_str::<Record>(&line).map_err(|e| e.to_string())
                } else {
                    if n == 1 && line.trim_start().to_ascii_lowercase().starts_with("key,") {
                        continue; // header
                    }
                    parse_csv_row(&line)
                };
                load.row(cache, n, rec, &mut options).await?;
            }
        }
    }
    load.report.loaded += load.batch.len() as u64;
    cache.put_many(load.batch).await?;
    Ok(load.report)
}

/// Rows on their way into a cache, a batch at a time.
struct Loader {
    report: WarmReport,
    batch: Vec<(Vec<u8>, Vec<u8>, PutOptions)>,
}

impl Loader {
    async fn row(
        &mut self,
        cache: &TieredCache,
        line: u64,
        rec: std::result::Result<Record, String>,
        options: &mut WarmOptions<'_>,
    ) -> Result<()> {
        self.report.rows += 1;
        match rec.and_then(|r| r.into_put(options.ttl_override, options.pack)) {
            Ok(put) => {
                self.batch.push(put);
                if self.batch.len() == BATCH {
                    self.report.loaded += self.batch.len() as u64;
                    cache.put_many(std::mem::take(&mut self.batch)).await?;
                }
            }
            Err(reason) => self.report.skipped.push((line, reason)),
        }
        if options.progress_every > 0 && self.report.rows.is_multiple_of(options.progress_every) {
            if let Some(p) = options.progress.as_mut() {
                p(self.report.rows);
            }
        }
        Ok(())
    }
}

/// Writes every live entry whose key starts with `prefix` as JSONL; returns how many.
/// Keys come from L1 and from every tier's scan.
pub async fn export(cache: &TieredCache, prefix: &[u8], out: impl Write) -> Result<u64> {
    export_with(cache, prefix, out, None).await
}

/// Splits a stored value into its content type (if it has one) and its bytes.
pub type Unpack<'a> = &'a (dyn Fn(&[u8]) -> (Option<String>, Vec<u8>) + Sync);

/// [`export`], with `unpack` taking the content type out of each stored value (the inverse of
/// [`WarmOptions::pack`]).
pub async fn export_with(
    cache: &TieredCache,
    prefix: &[u8],
    mut out: impl Write,
    unpack: Option<Unpack<'_>>,
) -> Result<u64> {
    let mut walk = Export::new(cache, prefix, unpack);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let written = walk.next_records(EXPORT_BATCH, &mut buf).await?;
        if written == 0 {
            break;
        }
        out.write_all(&buf)?;
        n += written as u64;
    }
    out.flush()?;
    Ok(n)
}

/// Records an export writes between flushes.
const EXPORT_BATCH: usize = 256;
/// Keys read from a tier per page.
const EXPORT_PAGE: usize = 1_000;

/// An export in progress: the keys under a prefix in ascending order, merged from L1 and from
/// every tier a page at a time, each turned into a JSONL record of its live entry. Memory holds
/// L1's keys and one page per tier, however many entries the tiers hold. Keys that are not
/// UTF-8 are written as `key_base64`, values that are not as `value_hex`.
pub struct Export<'a> {
    cache: TieredCache,
    prefix: Vec<u8>,
    l1: std::collections::VecDeque<Vec<u8>>,
    tiers: Vec<TierCursor>,
    unpack: Option<Unpack<'a>>,
    now: omnicache_core::Timestamp,
    /// Only entries of this data subject, when set.
    subject: Option<String>,
}

impl std::fmt::Debug for Export<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").field("l1_keys_left", &self.l1.len()).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct TierCursor {
    page: std::collections::VecDeque<Vec<u8>>,
    /// Where the next page starts; `None` before the first.
    after: Option<Vec<u8>>,
    /// No page left to read (or the tier failed, and is skipped as a read would skip it).
    done: bool,
}

impl<'a> Export<'a> {
    /// An export of `cache`'s live entries under `prefix`.
    pub fn new(cache: &TieredCache, prefix: &[u8], unpack: Option<Unpack<'a>>) -> Self {
        let mut l1 = cache.l1_keys(prefix);
        l1.sort_unstable();
        Export {
            cache: cache.clone(),
            prefix: prefix.to_vec(),
            l1: l1.into(),
            tiers: (0..cache.tier_count()).map(|_| TierCursor::default()).collect(),
            unpack,
            now: cache.now(),
            subject: None,
        }
    }

    /// Exports only the entries of data subject `subject` (a GDPR export). Every key is still
    /// read: the tiers index subjects for erasure, not for listing.
    pub fn only_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    /// The next key in order from any source, once.
    async fn next_key(&mut self) -> Option<Vec<u8>> {
        for (i, t) in self.tiers.iter_mut().enumerate() {
            // A tier may answer an empty page that is not its last: read on until it is not.
            while t.page.is_empty() && !t.done {
                match self.cache.tier_scan(i, &self.prefix, t.after.as_deref(), EXPORT_PAGE).await {
                    Some(page) => {
                        // Done on the last page, or on an empty one that would not move on.
                        t.done = page.next.is_none()
                            || (page.keys.is_empty() && page.next.as_deref() == t.after.as_deref());
                        t.after = page.next.or_else(|| page.keys.last().cloned());
                        t.page = page.keys.into();
                    }
                    None => t.done = true,
                }
            }
        }
        let smallest =
            self.tiers.iter().filter_map(|t| t.page.front()).chain(self.l1.front()).min()?.clone();
        if self.l1.front() == Some(&smallest) {
            self.l1.pop_front();
        }
        for t in &mut self.tiers {
            if t.page.front() == Some(&smallest) {
                t.page.pop_front();
            }
        }
        Some(smallest)
    }

    /// Appends up to `max` records (JSONL) to `out`; returns how many, 0 when done.
    pub async fn next_records(&mut self, max: usize, out: &mut Vec<u8>) -> Result<usize> {
        use base64::Engine as _;
        let mut n = 0;
        while n < max {
            let Some(key) = self.next_key().await else { break };
            let Some(e) = self.cache.get(&key).await else { continue };
            if self.subject.as_ref().is_some_and(|s| e.meta.subject.as_ref() != Some(s)) {
                continue;
            }
            let (key, key_base64) = match String::from_utf8(key) {
                Ok(k) => (k, None),
                Err(k) => (
                    String::new(),
                    Some(base64::engine::general_purpose::STANDARD.encode(k.as_bytes())),
                ),
            };
            let (content_type, bytes) = match self.unpack {
                Some(u) => u(&e.value),
                None => (None, e.value.clone()),
            };
            let (value, value_hex) = match std::str::from_utf8(&bytes) {
                Ok(s) => (Some(serde_json::Value::String(s.to_string())), None),
                Err(_) => (None, Some(hex_encode(&bytes))),
            };
            let ttl_ms = e.meta.remaining(self.now).map(|ns| (ns / 1_000_000).max(1));
            let rec = Record {
                key,
                key_base64,
                value,
                value_hex,
                ttl_secs: None,
                ttl_ms,
                tags: e.meta.tags.clone(),
                subject: e.meta.subject.clone(),
                content_type,
            };
            serde_json::to_writer(&mut *out, &rec).map_err(|e| {
                Error::new(omnicache_core::ErrorKind::Io, "writing export").with_source(e)
            })?;
            out.push(b'\n');
            n += 1;
        }
        Ok(n)
    }
}

/// Reads an [`export`] back.
pub async fn import(
    cache: &TieredCache,
    reader: impl BufRead,
    options: WarmOptions<'_>,
) -> Result<WarmReport> {
    warm(cache, reader, WarmFormat::Jsonl, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(hex_decode(&hex_encode(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn csv_rows_parse() {
        let r = parse_csv_row("k,v,10,a|b").unwrap();
        assert_eq!((r.key.as_str(), r.ttl_secs, r.tags.len()), ("k", Some(10.0), 2));
        assert!(parse_csv_row("only-key").is_err());
        assert!(parse_csv_row("k,v,soon").is_err());
    }
}
