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
use std::collections::BTreeSet;
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
    /// The key.
    pub key: String,
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
    ) -> std::result::Result<(String, Vec<u8>, PutOptions), String> {
        if self.key.is_empty() {
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
        Ok((
            self.key,
            value,
            PutOptions { ttl, tags: self.tags, subject: self.subject, cold: false },
        ))
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
    let mut report = WarmReport::default();
    let records: Vec<(u64, std::result::Result<Record, String>)> = match format {
        WarmFormat::Json => {
            let value: serde_json::Value = serde_json::from_reader(reader).map_err(|e| {
                Error::invalid_input(format!("line {}: not valid JSON: {e}", e.line()))
            })?;
            match value {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        (
                            i as u64 + 1,
                            serde_json::from_value::<Record>(v).map_err(|e| e.to_string()),
                        )
                    })
                    .collect(),
                serde_json::Value::Object(map) => map
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| {
                        (
                            i as u64 + 1,
                            Ok(Record {
                                key: k,
                                value: Some(v),
                                value_hex: None,
                                ttl_secs: None,
                                ttl_ms: None,
                                tags: vec![],
                                subject: None,
                                content_type: None,
                            }),
                        )
                    })
                    .collect(),
                _ => {
                    return Err(Error::invalid_input(
                        "a JSON warm file holds an array of records or an object",
                    ))
                }
            }
        }
        WarmFormat::Jsonl | WarmFormat::Csv => {
            let mut out = Vec::new();
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
                out.push((n, rec));
            }
            out
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    for (line, rec) in records {
        report.rows += 1;
        match rec.and_then(|r| r.into_put(options.ttl_override, options.pack)) {
            Ok((key, value, opts)) => {
                batch.push((key.into_bytes(), value, opts));
                if batch.len() == BATCH {
                    report.loaded += batch.len() as u64;
                    cache.put_many(std::mem::take(&mut batch)).await?;
                }
            }
            Err(reason) => report.skipped.push((line, reason)),
        }
        if options.progress_every > 0 && report.rows % options.progress_every == 0 {
            if let Some(p) = options.progress.as_mut() {
                p(report.rows);
            }
        }
    }
    report.loaded += batch.len() as u64;
    cache.put_many(batch).await?;
    Ok(report)
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
    let mut keys: BTreeSet<Vec<u8>> = cache.l1_keys(prefix).into_iter().collect();
    keys.extend(cache.tier_keys(prefix).await);
    let now = cache.now();
    let mut n = 0;
    for key in keys {
        let Some(e) = cache.get(&key).await else { continue };
        let Ok(key) = String::from_utf8(key) else { continue };
        let (content_type, bytes) = match unpack {
            Some(u) => u(&e.value),
            None => (None, e.value.clone()),
        };
        let (value, value_hex) = match std::str::from_utf8(&bytes) {
            Ok(s) => (Some(serde_json::Value::String(s.to_string())), None),
            Err(_) => (None, Some(hex_encode(&bytes))),
        };
        let ttl_ms = e.meta.remaining(now).map(|ns| (ns / 1_000_000).max(1));
        let rec = Record {
            key,
            value,
            value_hex,
            ttl_secs: None,
            ttl_ms,
            tags: e.meta.tags.clone(),
            subject: e.meta.subject.clone(),
            content_type,
        };
        serde_json::to_writer(&mut out, &rec).map_err(|e| {
            Error::new(omnicache_core::ErrorKind::Io, "writing export").with_source(e)
        })?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
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
