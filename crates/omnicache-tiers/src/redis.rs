//! The Redis tier: entries as [`Envelope`]s under namespaced keys, with Redis's own expiry,
//! batch reads (`MGET`) and pipelined batch writes, tag and subject indexes as Redis sets, and a
//! response timeout on every call, so a hung Redis cannot hang a get.
//!
//! Layout, for namespace `ns`: an entry lives at `ns:e:<key>`; the keys carrying tag `t` are the
//! members of the set `ns:t:<t>`, and those of subject `s` of `ns:s:<s>`. Index sets may keep a
//! member whose entry expired; invalidation deletes whatever they name and then the set.
//!
//! [`Tier::scan`] walks the namespace with `SCAN` and sorts the keys, so each page costs a walk
//! of the namespace: it is meant for export and administration, not the request path.

use omnicache_core::{
    Envelope, Error, ErrorKind, Invalidation, Result, ScanPage, SharedClock, Tier, TierEntry,
    TierHealth,
};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Builds a [`RedisTier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisTierBuilder {
    url: String,
    namespace: String,
    timeout: Duration,
    clock: SharedClock,
    name: String,
}

impl RedisTierBuilder {
    /// The key namespace, so several caches share one Redis. Default: `"omnicache"`.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// The time limit of every call, connecting included. Default: 500 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock for expiry checks. Default: the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// The tier's name in logs and metrics. Default: `"redis"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Connects. The connection manager reconnects by itself after Redis comes back.
    pub async fn connect(self) -> Result<RedisTier> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| Error::invalid_input(format!("redis URL {:?}: {e}", self.url)))?;
        let manager = tokio::time::timeout(self.timeout, ConnectionManager::new(client))
            .await
            .map_err(|_| {
                Error::new(ErrorKind::Timeout, format!("connecting to {} timed out", self.url))
            })?
            .map_err(|e| {
                Error::new(ErrorKind::Unavailable, format!("connecting to {}", self.url))
                    .with_source(e)
            })?;
        Ok(RedisTier {
            conn: manager,
            prefix: format!("{}:", self.namespace),
            timeout: self.timeout,
            clock: self.clock,
            failing: AtomicBool::new(false),
            name: self.name,
            url: self.url,
        })
    }
}

/// The Redis tier; see the [module docs](self).
pub struct RedisTier {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    failing: AtomicBool,
    name: String,
    url: String,
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn redis_error(e: redis::RedisError) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Io
    };
    Error::new(kind, "redis").with_source(e)
}

impl RedisTier {
    /// A builder for the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisTierBuilder {
        RedisTierBuilder {
            url: url.into(),
            namespace: "omnicache".into(),
            timeout: Duration::from_millis(500),
            clock: SharedClock::System,
            name: "redis".into(),
        }
    }

    fn entry_key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 2 + key.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(b"e:");
        k.extend_from_slice(key);
        k
    }

    fn index_key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// Runs a command future under the timeout, recording failure for health.
    async fn run<T>(&self, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        let r = match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(redis_error(e).context(format!("redis {}", self.url))),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("redis {}: no answer within {:?}", self.url, self.timeout),
            )),
        };
        self.failing.store(r.is_err(), Ordering::Relaxed);
        r
    }

    fn decode(&self, bytes: Option<Vec<u8>>) -> Result<Option<TierEntry>> {
        let Some(bytes) = bytes else { return Ok(None) };
        let env = Envelope::decode(&bytes)?;
        if env.meta.is_expired(self.clock.now()) {
            return Ok(None);
        }
        Ok(Some(TierEntry { value: env.payload, meta: env.meta }))
    }

    fn add_put(&self, pipe: &mut redis::Pipeline, key: &[u8], entry: TierEntry) -> Result<()> {
        let now = self.clock.now();
        let ek = self.entry_key(key);
        let ttl_ms = entry.meta.expires.map(|e| (e.saturating_sub(now) / 1_000_000).max(1));
        let tags = entry.meta.tags.clone();
        let subject = entry.meta.subject.clone();
        let bytes = Envelope::new(entry.meta, entry.value).encode()?;
        match ttl_ms {
            Some(ms) => pipe.cmd("SET").arg(&ek).arg(bytes).arg("PX").arg(ms).ignore(),
            None => pipe.cmd("SET").arg(&ek).arg(bytes).ignore(),
        };
        for t in &tags {
            pipe.cmd("SADD").arg(self.index_key("t", t)).arg(key).ignore();
        }
        if let Some(s) = &subject {
            pipe.cmd("SADD").arg(self.index_key("s", s)).arg(key).ignore();
        }
        Ok(())
    }

    /// Every entry key under `prefix`, without the namespace, sorted.
    async fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut pattern = self.entry_key(b"");
        for &b in prefix {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        let strip = self.entry_key(b"").len();
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await?;
            keys.extend(batch.into_iter().map(|k| k[strip..].to_vec()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn delete_keys(&self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut n = 0u64;
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(500) {
            let full: Vec<Vec<u8>> = chunk.iter().map(|k| self.entry_key(k)).collect();
            let deleted: u64 = self.run(conn.del(full)).await?;
            n += deleted;
        }
        Ok(n)
    }
}

impl Tier for RedisTier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = self.run(conn.get(self.entry_key(key))).await?;
        match self.decode(bytes) {
            Err(e) if e.kind() == ErrorKind::Corrupt => {
                let _: Result<u64> = self.run(conn.del(self.entry_key(key))).await;
                Err(e.context(format!("redis {}: entry deleted", self.url)))
            }
            other => other,
        }
    }

    async fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<TierEntry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<Vec<u8>> = keys.iter().map(|k| self.entry_key(k)).collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> =
            self.run(redis::cmd("MGET").arg(&full).query_async(&mut conn)).await?;
        // A corrupt entry in a batch is a miss for that key, not a failure of the batch.
        Ok(values.into_iter().map(|v| self.decode(v).ok().flatten()).collect())
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.add_put(&mut pipe, key, entry)?;
        let mut conn = self.conn.clone();
        self.run(pipe.query_async::<()>(&mut conn)).await
    }

    async fn put_many(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        let mut pipe = redis::pipe();
        for (k, e) in entries {
            self.add_put(&mut pipe, &k, e)?;
        }
        let mut conn = self.conn.clone();
        self.run(pipe.query_async::<()>(&mut conn)).await
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: u64 = self.run(conn.del(self.entry_key(key))).await?;
        Ok(n > 0)
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        let mut conn = self.conn.clone();
        match what {
            Invalidation::Key(k) => self.delete_keys(std::slice::from_ref(k)).await,
            Invalidation::Keys(ks) => self.delete_keys(ks).await,
            Invalidation::Tag(t) | Invalidation::Subject(t) => {
                let kind = if matches!(what, Invalidation::Tag(_)) { "t" } else { "s" };
                let set = self.index_key(kind, t);
                let members: Vec<Vec<u8>> = self.run(conn.smembers(&set)).await?;
                let n = self.delete_keys(&members).await?;
                let _: u64 = self.run(conn.del(&set)).await?;
                Ok(n)
            }
            Invalidation::Prefix(p) => {
                let keys = self.keys_under(p).await?;
                self.delete_keys(&keys).await
            }
            Invalidation::All => {
                let keys = self.keys_under(b"").await?;
                let n = self.delete_keys(&keys).await?;
                // The index sets of this namespace go too.
                let pattern = format!("{}[ts]:*", self.prefix);
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<Vec<u8>>) = self
                        .run(
                            redis::cmd("SCAN")
                                .arg(cursor)
                                .arg("MATCH")
                                .arg(&pattern)
                                .arg("COUNT")
                                .arg(1000)
                                .query_async(&mut conn),
                        )
                        .await?;
                    if !batch.is_empty() {
                        let _: u64 = self.run(conn.del(batch)).await?;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Ok(n)
            }
            other => {
                Err(Error::invalid_input(format!("redis tier: unsupported invalidation {other:?}")))
            }
        }
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        let keys = self.keys_under(prefix).await?;
        let start = match cursor {
            Some(c) => keys.partition_point(|k| k.as_slice() <= c),
            None => 0,
        };
        // Keep only live entries: Redis's TTL runs on its own clock, ours may be ahead.
        let mut page: Vec<Vec<u8>> = Vec::new();
        let mut next = None;
        'chunks: for chunk in keys[start..].chunks(limit.max(1) + 1) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let live = self.get_many(&refs).await?;
            for (k, v) in chunk.iter().zip(live) {
                if v.is_none() {
                    continue;
                }
                if page.len() == limit {
                    next = page.last().cloned();
                    break 'chunks;
                }
                page.push(k.clone());
            }
        }
        Ok(ScanPage { keys: page, next })
    }

    fn health(&self) -> TierHealth {
        if self.failing.load(Ordering::Relaxed) {
            TierHealth::Degraded
        } else {
            TierHealth::Healthy
        }
    }
}
