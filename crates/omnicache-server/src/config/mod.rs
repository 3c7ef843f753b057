//! The server's configuration: defaults, an optional TOML file, then `OMNICACHE_...`
//! environment variables, checked before anything starts.
//!
//! Every key of the file can be set from the environment: `OMNICACHE_` followed by the key's
//! path in upper case, with `__` between levels, e.g. `OMNICACHE_LISTEN=0.0.0.0:7070`,
//! `OMNICACHE_CACHES__USERS__L1_CAPACITY=50000`, `OMNICACHE_CACHES__USERS__TIERS__0__URL=...`.
//! Values are read as TOML (`10`, `true`, `["read"]`) and otherwise as text. Variables whose
//! first part is not a top-level key (`OMNICACHE_SERVER`, `OMNICACHE_API_KEY`, ...) are not
//! configuration and are ignored.

use omnicache_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

mod pii;
pub use pii::PiiSpec;

/// The top-level keys of the configuration: `OMNICACHE_` variables that start with anything
/// else (`OMNICACHE_SERVER`, `OMNICACHE_API_KEY` of the CLI, `OMNICACHE_TOOLS` of xtask) are
/// not configuration and are left alone.
const TOP_LEVEL: &[&str] = &[
    "listen",
    "data_dir",
    "data",
    "l1_capacity",
    "max_key_len",
    "max_body_bytes",
    "workers",
    "tls",
    "caches",
    "keys",
    "security",
];

/// What the server runs with; the TOML file has the same shape (see `deploy/omnicache.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen. Default: `127.0.0.1:7070`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where caches and keys live. Default: `./omnicache-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Entries a cache keeps in memory when it does not say. Default: 100,000.
    #[serde(default = "default_l1_capacity")]
    pub l1_capacity: u64,
    /// The longest key, in characters (414 beyond, 400 in a batch). Default: 1,024.
    #[serde(default = "default_max_key_len")]
    pub max_key_len: usize,
    /// The largest request body, in bytes (413 beyond). Default: 16 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Threads serving requests (the binary's runtime; a library caller runs its own).
    /// Default: one per core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Serve HTTPS with this certificate. Default: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Caches to open at start, by name (`default` is always there). Default: only `default`,
    /// in memory over a disk tier.
    #[serde(default)]
    pub caches: BTreeMap<String, CacheSpec>,
    /// API keys besides the generated admin key, given by their SHA-256. Default: none.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Where the encryption keys of caches with `encrypt = true` come from.
    #[serde(default)]
    pub security: SecurityConfig,
}

/// Encryption keys for caches that encrypt what they store below memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// A key ring file made by `omnicache security keygen` (refused if others may read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The name of an environment variable holding one base64 AES-256 key (key id 1), used
    /// when there is no `key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// At start, entries stored under an older key (or before the cache encrypted) are
    /// rewritten in the background at most this many a second; 0 turns it off. Default: 10,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencrypt_per_second: Option<u32>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("omnicache-data")
}
fn default_l1_capacity() -> u64 {
    100_000
}
fn default_max_key_len() -> usize {
    1024
}
fn default_max_body_bytes() -> usize {
    16 << 20
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            l1_capacity: default_l1_capacity(),
            max_key_len: default_max_key_len(),
            max_body_bytes: default_max_body_bytes(),
            workers: None,
            tls: None,
            caches: BTreeMap::new(),
            keys: Vec::new(),
            security: SecurityConfig::default(),
        }
    }
}

/// HTTPS: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A cache: its memory layer and the tiers below it. Also the body of `POST /caches`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// The eviction policy of the memory layer: s3fifo (the default), lru, lfu, ttl, gdsf, arc,
    /// sieve, wtinylfu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PolicyName>)]
    pub policy: Option<String>,
    /// Entries kept in memory. Default: the server's `l1_capacity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub l1_capacity: Option<u64>,
    /// Bound memory by value bytes instead of entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub l1_max_bytes: Option<u64>,
    /// The TTL of entries stored without one, in seconds. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e12)]
    pub default_ttl_secs: Option<f64>,
    /// The tiers below memory, fastest first. Default: one disk tier in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierSpec>>,
    /// Encrypt values stored below memory (AES-256-GCM, keys from the server's `security`
    /// settings); memory keeps them in the clear. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    /// Compress values stored below memory (LZ4, before encryption). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Scan values for personal data and secrets on every write and act per kind. Default: no
    /// scanning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiSpec>,
    /// With `encrypt`: encrypt each data subject's entries under a key of its own, destroyed
    /// when the subject is erased, so no copy anywhere (a backup, a tier that was down) can be
    /// read again (crypto-shredding). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_keys: Option<bool>,
    /// The longest an entry written with a data subject lives, in seconds, whatever TTL its
    /// writer asked for (storage limitation). Default: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0, exclusive_maximum = 1e12)]
    pub subject_retention_secs: Option<f64>,
}

/// A tier below memory.
#[derive(Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// `disk`, `redis` or `s3`.
    pub kind: TierKind,
    /// When writes reach it: `through` (with the caller), `behind` (queued) or `on_evict`
    /// (when memory evicts). Default: through.
    #[serde(default)]
    pub write: WriteMode,
    /// The longest it keeps an entry, in seconds. Default: the entry's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_cap_secs: Option<f64>,
    /// Values larger than this skip the tier. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_bytes: Option<usize>,
    /// Each call's time limit in milliseconds, 1 to 60,000. Default: 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 60000)]
    pub timeout_ms: Option<u64>,
    /// disk: the SQLite file. Default: the cache's file in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub path: Option<PathBuf>,
    /// disk: the byte budget. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// redis: `redis://host:port/db`; s3: the endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// redis: cluster nodes instead of `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Vec<String>>,
    /// redis: the key namespace. Default: `omnicache:` and the cache's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// s3: the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// s3: the key prefix. Default: `omnicache/` and the cache's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// s3: the region. Default: us-east-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether the cache is ready without this tier: an optional tier that is down degrades
    /// `/ready` (200, `degraded`) instead of making it not ready (503). Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// What the tier costs, for the monthly cost report and for placing cold entries (`PUT
    /// ...?cold=true` goes to the tier with the cheapest storage). Default: list prices for its
    /// kind (disk $0.08/GB-month; Redis $10/GB-month; S3 Standard $0.023/GB-month and $0.40
    /// per million requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<TierCostSpec>,
}

/// A tier's cost model; every field defaults to the tier kind's list price.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierCostSpec {
    /// Storage, in US dollars per GB-month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_gb_month: Option<f64>,
    /// Requests, in US dollars per million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_million_requests: Option<f64>,
    /// A typical request's latency, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// Debug output is redacted like the API's, so a spec in a log line or an error shows no
/// password.
impl std::fmt::Debug for TierSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.redacted();
        f.debug_struct("TierSpec")
            .field("kind", &r.kind)
            .field("write", &r.write)
            .field("url", &r.url)
            .field("cluster", &r.cluster)
            .field("path", &r.path)
            .field("namespace", &r.namespace)
            .field("bucket", &r.bucket)
            .finish_non_exhaustive()
    }
}

impl TierSpec {
    /// The spec as the API shows it: passwords in URLs (`redis://user:PASSWORD@host`, a
    /// `password=` query parameter) replaced by `***`.
    pub fn redacted(&self) -> TierSpec {
        TierSpec {
            url: self.url.as_deref().map(omnicache_core::secret::redact_url),
            cluster: self
                .cluster
                .as_ref()
                .map(|c| c.iter().map(|u| omnicache_core::secret::redact_url(u)).collect()),
            ..self.clone()
        }
    }
}

impl CacheSpec {
    /// Whether the cache's tier `i` is declared optional (the default disk tier is not).
    pub fn tier_optional(&self, i: usize) -> bool {
        self.tiers.as_ref().and_then(|t| t.get(i)).is_some_and(|t| t.optional)
    }

    /// The spec as the API shows it, every tier [redacted](TierSpec::redacted).
    pub fn redacted(&self) -> CacheSpec {
        CacheSpec {
            tiers: self.tiers.as_ref().map(|t| t.iter().map(TierSpec::redacted).collect()),
            ..self.clone()
        }
    }
}

/// The kinds of tier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierKind {
    /// SQLite on local disk.
    Disk,
    /// Redis or Redis Cluster.
    Redis,
    /// An S3-compatible object store.
    S3,
}

/// When a tier is written.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// With the caller's write.
    #[default]
    Through,
    /// Queued, flushed in the background and at shutdown.
    Behind,
    /// When memory evicts the entry.
    OnEvict,
}

/// An API key declared in the config, by its SHA-256 (`printf %s KEY | sha256sum`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// A name for listings and logs.
    pub name: String,
    /// The key's SHA-256 in hex.
    pub sha256: String,
    /// Any of `read`, `write`, `admin` (admin implies the others).
    pub scopes: Vec<String>,
    /// The caches it may use. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caches: Option<Vec<String>>,
}

/// The eviction policies by name (`omnicache_strategies::NAMES`), for the API's schema.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub enum PolicyName {
    /// S3-FIFO (Yang et al., SOSP'23), the default.
    #[serde(rename = "s3fifo")]
    S3Fifo,
    /// Least recently used.
    #[serde(rename = "lru")]
    Lru,
    /// Least frequently used, with aging.
    #[serde(rename = "lfu")]
    Lfu,
    /// Soonest expiry first.
    #[serde(rename = "ttl")]
    Ttl,
    /// Greedy-dual size frequency: least value per byte.
    #[serde(rename = "gdsf")]
    Gdsf,
    /// Adaptive replacement cache.
    #[serde(rename = "arc")]
    Arc,
    /// LIRS (Jiang & Zhang, SIGMETRICS'02): reuse distance decides what is protected.
    #[serde(rename = "lirs")]
    Lirs,
    /// Learned eviction after LRB (Song et al., NSDI'20), behind a probationary FIFO.
    #[serde(rename = "lrb")]
    Lrb,
    /// LRB's learned eviction on seven bytes of history per key.
    #[serde(rename = "lrb-compact")]
    LrbCompact,
    /// Evicts by a vote of LRB, LIRS and LRU, run as shadow caches, weighted by their hits.
    #[serde(rename = "selector")]
    Selector,
    /// SIEVE (Zhang et al., NSDI'24).
    #[serde(rename = "sieve")]
    Sieve,
    /// W-TinyLFU with an adaptive window.
    #[serde(rename = "wtinylfu")]
    WTinyLfu,
    /// W-TinyLFU with a fixed 1% window.
    #[serde(rename = "wtinylfu-fixed")]
    WTinyLfuFixed,
    /// The memory cache's default (S3-FIFO).
    #[serde(rename = "default")]
    Default,
    /// GDSF by another name.
    #[serde(rename = "size")]
    Size,
}

impl PolicyName {
    /// The name `omnicache_strategies::by_name` takes.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// The scopes a key can have.
pub(crate) const SCOPES: &[&str] = &["read", "write", "admin"];

/// Whether `name` is a valid cache name: 1 to 64 of a-z, 0-9, `-`, `_`.
pub(crate) fn valid_cache_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl CacheSpec {
    /// Checks the spec; `at` names it in errors (`caches.users` or `body`).
    pub(crate) fn validate(&self, at: &str) -> std::result::Result<(), String> {
        if let Some(p) = &self.policy {
            if omnicache_strategies::by_name(p).is_none() {
                return Err(format!(
                    "{at}.policy: unknown policy {p:?}; expected one of {}",
                    omnicache_strategies::NAMES.join(", ")
                ));
            }
        }
        if self.l1_capacity == Some(0) {
            return Err(format!("{at}.l1_capacity: must be at least 1"));
        }
        if self.l1_max_bytes == Some(0) {
            return Err(format!("{at}.l1_max_bytes: must be at least 1"));
        }
        if self.default_ttl_secs.is_some_and(|t| !(t.is_finite() && t > 0.0 && t < 1e12)) {
            return Err(format!(
                "{at}.default_ttl_secs: must be a positive number of seconds below 1e12"
            ));
        }
        for (i, t) in self.tiers.iter().flatten().enumerate() {
            t.validate(&format!("{at}.tiers[{i}]"))?;
        }
        if self.subject_retention_secs.is_some_and(|t| !(t.is_finite() && t > 0.0 && t < 1e12)) {
            return Err(format!(
                "{at}.subject_retention_secs: must be a positive number of seconds below 1e12"
            ));
        }
        if self.subject_keys == Some(true) && self.encrypt != Some(true) {
            return Err(format!("{at}.subject_keys: needs encrypt = true"));
        }
        if let Some(c) = self.pii.as_ref().and_then(|p| p.min_confidence) {
            if !(0.0..=1.0).contains(&c) {
                return Err(format!("{at}.pii.min_confidence: must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

impl TierSpec {
    fn validate(&self, at: &str) -> std::result::Result<(), String> {
        let given = |v: bool, name: &str, kinds: &str| {
            if v {
                Err(format!("{at}.{name}: only for {kinds} tiers, this one is {:?}", self.kind))
            } else {
                Ok(())
            }
        };
        if self.ttl_cap_secs.is_some_and(|t| !(t.is_finite() && t > 0.0 && t < 1e12)) {
            return Err(format!(
                "{at}.ttl_cap_secs: must be a positive number of seconds below 1e12"
            ));
        }
        if self.timeout_ms.is_some_and(|t| !(1..=60_000).contains(&t)) {
            return Err(format!("{at}.timeout_ms: must be 1 to 60,000 milliseconds"));
        }
        if let Some(c) = &self.cost {
            for (name, v) in [
                ("usd_per_gb_month", c.usd_per_gb_month),
                ("usd_per_million_requests", c.usd_per_million_requests),
                ("latency_ms", c.latency_ms),
            ] {
                if v.is_some_and(|v| !(v.is_finite() && (0.0..1e9).contains(&v))) {
                    return Err(format!("{at}.cost.{name}: must be a number from 0 to 1e9"));
                }
            }
        }
        match self.kind {
            TierKind::Disk => {
                given(self.url.is_some(), "url", "redis and s3")?;
                given(self.cluster.is_some(), "cluster", "redis")?;
                given(self.namespace.is_some(), "namespace", "redis")?;
                given(self.bucket.is_some(), "bucket", "s3")?;
                given(self.prefix.is_some(), "prefix", "s3")?;
                given(self.region.is_some(), "region", "s3")?;
            }
            TierKind::Redis => {
                given(self.path.is_some(), "path", "disk")?;
                given(self.max_bytes.is_some(), "max_bytes", "disk")?;
                given(self.bucket.is_some(), "bucket", "s3")?;
                given(self.prefix.is_some(), "prefix", "s3")?;
                given(self.region.is_some(), "region", "s3")?;
                match (&self.url, &self.cluster) {
                    (None, None) => {
                        return Err(format!(
                        "{at}: a redis tier needs url = \"redis://host:port\" or cluster = [...]"
                    ))
                    }
                    (Some(u), _) if !u.starts_with("redis://") && !u.starts_with("rediss://") => {
                        return Err(format!("{at}.url: {u:?} is not a redis:// URL"))
                    }
                    (Some(_), Some(_)) => {
                        return Err(format!("{at}: give url or cluster, not both"))
                    }
                    _ => {}
                }
            }
            TierKind::S3 => {
                given(self.path.is_some(), "path", "disk")?;
                given(self.max_bytes.is_some(), "max_bytes", "disk")?;
                given(self.cluster.is_some(), "cluster", "redis")?;
                given(self.namespace.is_some(), "namespace", "redis")?;
                if self.url.is_none() {
                    return Err(format!("{at}.url: an s3 tier needs the endpoint URL"));
                }
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    return Err(format!("{at}.bucket: an s3 tier needs a bucket"));
                }
            }
        }
        Ok(())
    }
}

impl KeySpec {
    fn validate(&self, at: &str) -> std::result::Result<(), String> {
        if self.name.is_empty() {
            return Err(format!("{at}.name: must not be empty"));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{at}.sha256: not a SHA-256 in hex (64 digits)"));
        }
        if self.scopes.is_empty() {
            return Err(format!("{at}.scopes: give at least one of read, write, admin"));
        }
        if let Some(bad) = self.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(format!("{at}.scopes: unknown scope {bad:?}; expected read, write, admin"));
        }
        Ok(())
    }
}

impl ServerConfig {
    /// `OMNICACHE_...` variables among `env` that are neither a setting nor one of the other
    /// tools' (the CLI's `OMNICACHE_SERVER`, `OMNICACHE_API_KEY`, `OMNICACHE_CA_CERT`, xtask's
    /// `OMNICACHE_TOOLS`): most likely misspelled, so they deserve a warning.
    pub fn unknown_env(env: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        const OTHERS: &[&str] =
            &["server", "api_key", "ca_cert", "tools", "bless", "disk_kill_child"];
        env.into_iter()
            .filter_map(|(name, _)| {
                let rest = name.strip_prefix("OMNICACHE_")?.to_ascii_lowercase();
                let first = rest.split("__").next().unwrap_or_default().to_string();
                let known = TOP_LEVEL.contains(&first.as_str()) || OTHERS.contains(&rest.as_str());
                (!known).then_some(name)
            })
            .collect()
    }

    /// The defaults, then `file` (if any), then the `OMNICACHE_...` variables among `env`.
    /// Errors name the file or variable, the key and the reason.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid_input(format!("config {}: cannot read it: {e}", path.display()))
                })?;
                text.parse::<toml::Table>().map_err(|e| {
                    Error::invalid_input(format!(
                        "config {}: {}",
                        path.display(),
                        e.to_string().trim_end()
                    ))
                })?
            }
            None => toml::Table::new(),
        };
        let source = file.map_or_else(|| "the defaults".to_string(), |p| p.display().to_string());
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("OMNICACHE_") else { continue };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if !TOP_LEVEL.contains(&path[0].as_str()) {
                continue;
            }
            // `OMNICACHE_DATA` is the CLI's historic name for data_dir.
            let path = if path == ["data"] { vec!["data_dir".to_string()] } else { path };
            set_path(&mut table, &path, parse_env_value(&value))
                .map_err(|e| Error::invalid_input(format!("environment {name}: {e}")))?;
            from_env.push((path.join("."), name));
        }
        let config: ServerConfig = serde_path_to_error::deserialize(table).map_err(|e| {
            let key = e.path().to_string();
            let by_env = from_env.iter().find(|(p, _)| key.starts_with(p.as_str()));
            let origin = match by_env {
                Some((_, var)) => format!("environment {var}"),
                None => format!("config {source}"),
            };
            Error::invalid_input(format!("{origin}: {key}: {}", e.inner()))
        })?;
        config.validate().map_err(|e| Error::invalid_input(format!("config {source}: {e}")))?;
        Ok(config)
    }

    /// Checks what serde cannot: names, policies, tier fields, scopes, TLS files.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.l1_capacity == 0 {
            return Err("l1_capacity: must be at least 1".into());
        }
        if self.max_key_len == 0 {
            return Err("max_key_len: must be at least 1".into());
        }
        if self.workers == Some(0) {
            return Err("workers: must be at least 1".into());
        }
        for (name, spec) in &self.caches {
            if !valid_cache_name(name) {
                return Err(format!(
                    "caches.{name}: a cache name is 1 to 64 characters of a-z, 0-9, '-' and '_'"
                ));
            }
            spec.validate(&format!("caches.{name}"))?;
        }
        for (i, k) in self.keys.iter().enumerate() {
            k.validate(&format!("keys[{i}]"))?;
        }
        if let Some(tls) = &self.tls {
            for (what, p) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if !p.is_file() {
                    return Err(format!("{what}: {} is not a readable file", p.display()));
                }
            }
        }
        Ok(())
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Sets `path` in `table`, making tables (and array slots, for numeric segments) on the way.
fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> std::result::Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty key")?;
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let next_is_index = rest[0].parse::<usize>().is_ok();
    let slot = table.entry(first.clone()).or_insert_with(|| {
        if next_is_index {
            toml::Value::Array(Vec::new())
        } else {
            toml::Value::Table(toml::Table::new())
        }
    });
    set_in(slot, first, rest, value)
}

fn set_in(
    slot: &mut toml::Value,
    at: &str,
    path: &[String],
    value: toml::Value,
) -> std::result::Result<(), String> {
    match slot {
        toml::Value::Table(t) => set_path(t, path, value),
        toml::Value::Array(items) => {
            let i: usize = path[0]
                .parse()
                .map_err(|_| format!("{at} is a list; expected an index, got {:?}", path[0]))?;
            if i > items.len() {
                return Err(format!("{at}[{i}]: the list has {} items", items.len()));
            }
            if i == items.len() {
                items.push(toml::Value::Table(toml::Table::new()));
            }
            if path.len() == 1 {
                items[i] = value;
                return Ok(());
            }
            set_in(&mut items[i], &format!("{at}[{i}]"), &path[1..], value)
        }
        _ => Err(format!("{at} is a value, not a table")),
    }
}

#[cfg(test)]
mod tests;
