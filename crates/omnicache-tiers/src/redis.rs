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
//!
//! **Redis Cluster** ([`RedisTierBuilder::cluster`]) goes through the cluster client: commands
//! are routed by slot, batch reads and deletes become pipelines of single-key commands, and,
//! since `SCAN` does not span nodes, the namespace keeps a set of its keys (`ns:a:`) for scans
//! and clearing. Tag and subject sets clean up after invalidations as in single-node mode.

use omnicache_core::secret::redact_url;
use omnicache_core::{
    Envelope, Error, ErrorKind, Invalidation, Result, ScanPage, SharedClock, Tier, TierEntry,
    TierHealth,
};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One Redis, or a Redis Cluster through the cluster client.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<Cluster>),
}

/// A cluster connection, made on first use when the tier is lazy (and again on the next call
/// while the cluster cannot be reached); once made, the cluster client reconnects by itself.
struct Cluster {
    client: ClusterClient,
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

impl Cluster {
    async fn conn(&self) -> redis::RedisResult<ClusterConnection> {
        self.conn.get_or_try_init(|| self.client.get_async_connection()).await.cloned()
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => {
                Box::pin(async move { c.conn().await?.req_packed_command(cmd).await })
            }
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => {
                Box::pin(
                    async move { c.conn().await?.req_packed_commands(cmd, offset, count).await },
                )
            }
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            // A cluster has only database 0.
            Conn::Cluster(_) => 0,
        }
    }
}

/// Builds a [`RedisTier`].
#[derive(Clone)]
#[must_use]
pub struct RedisTierBuilder {
    url: String,
    cluster: Vec<String>,
    namespace: String,
    timeout: Duration,
    clock: SharedClock,
    name: String,
    lazy: bool,
}

/// Cluster node URLs as shown in errors: passwords redacted.
fn shown_cluster(nodes: &[String]) -> Vec<String> {
    nodes.iter().map(|u| redact_url(u)).collect()
}

impl fmt::Debug for RedisTierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTierBuilder")
            .field("url", &redact_url(&self.url))
            .field("cluster", &shown_cluster(&self.cluster))
            .field("namespace", &self.namespace)
            .field("lazy", &self.lazy)
            .finish_non_exhaustive()
    }
}

impl RedisTierBuilder {
    /// Connects on the first call instead of in [`connect`](Self::connect), so a Redis that
    /// is down at start degrades the tier (calls fail, the tiered cache's breaker opens)
    /// instead of failing the start. For a cluster, the first call connects, and each call
    /// tries again until one succeeds. Default: connect eagerly.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Connects to a Redis Cluster through these nodes (`redis://host:port`) instead of the
    /// single URL. Default: a single Redis.
    pub fn cluster(mut self, nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.cluster = nodes.into_iter().map(Into::into).collect();
        self
    }

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
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!("connecting to {} timed out", redact_url(&self.url)),
            )
        };
        let conn = if self.cluster.is_empty() {
            let client = redis::Client::open(self.url.as_str()).map_err(|e| {
                Error::invalid_input(format!("redis URL {:?}: {e}", redact_url(&self.url)))
            })?;
            let manager = if self.lazy {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
                    Error::invalid_input(format!("redis URL {:?}: {e}", redact_url(&self.url)))
                })?
            } else {
                tokio::time::timeout(self.timeout, ConnectionManager::new(client))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Unavailable,
                            format!("connecting to {}", redact_url(&self.url)),
                        )
                        .with_source(e)
                    })?
            };
            Conn::Single(manager)
        } else {
            let client = redis::cluster::ClusterClient::new(self.cluster.clone()).map_err(|e| {
                Error::invalid_input(format!(
                    "redis cluster nodes {:?}: {e}",
                    shown_cluster(&self.cluster)
                ))
            })?;
            let cluster = Cluster { client, conn: tokio::sync::OnceCell::new() };
            if !self.lazy {
                tokio::time::timeout(self.timeout, cluster.conn())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Unavailable,
                            format!("connecting to the cluster {:?}", shown_cluster(&self.cluster)),
                        )
                        .with_source(e)
                    })?;
            }
            Conn::Cluster(Arc::new(cluster))
        };
        // Shown in errors and `Debug`: without passwords.
        let url = if self.cluster.is_empty() {
            redact_url(&self.url)
        } else {
            shown_cluster(&self.cluster).join(",")
        };
        Ok(RedisTier {
            conn,
            prefix: format!("{}:", self.namespace),
            timeout: self.timeout,
            clock: self.clock,
            failing: AtomicBool::new(false),
            name: self.name,
            url,
        })
    }
}

/// The Redis tier; see the [module docs](self).
pub struct RedisTier {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    clock: SharedClock,
    failing: AtomicBool,
    name: String,
    /// The URL (or the cluster's), passwords redacted.
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
            cluster: Vec::new(),
            namespace: "omnicache".into(),
            timeout: Duration::from_millis(500),
            clock: SharedClock::System,
            name: "redis".into(),
            lazy: false,
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
        Ok(Some(env.into_entry()))
    }

    /// The commands that store one entry: the value with its TTL, and its index entries.
    fn put_cmds(&self, cmds: &mut Vec<(Cmd, bool)>, key: &[u8], entry: TierEntry) -> Result<()> {
        let now = self.clock.now();
        let ek = self.entry_key(key);
        let ttl_ms = entry.meta.expires.map(|e| (e.saturating_sub(now) / 1_000_000).max(1));
        let tags = entry.meta.tags.clone();
        let subject = entry.meta.subject.clone();
        let bytes = Envelope::from_entry(entry).encode()?;
        let mut set = redis::cmd("SET");
        set.arg(&ek).arg(bytes);
        if let Some(ms) = ttl_ms {
            set.arg("PX").arg(ms);
        }
        cmds.push((set, false));
        for t in &tags {
            cmds.push((redis::cmd("SADD").arg(self.index_key("t", t)).arg(key).clone(), false));
        }
        if self.is_cluster() {
            // SCAN does not span a cluster's nodes; an index of every key does.
            cmds.push((redis::cmd("SADD").arg(self.index_key("a", "")).arg(key).clone(), false));
        }
        if let Some(s) = &subject {
            cmds.push((redis::cmd("SADD").arg(self.index_key("s", s)).arg(key).clone(), false));
        }
        Ok(())
    }

    /// Runs commands: one pipeline (a transaction if `atomic`) on a single Redis; one by one on
    /// a cluster, whose keys live in different slots. Returns the replies of the commands
    /// flagged `true`.
    async fn exec(&self, cmds: Vec<(Cmd, bool)>, atomic: bool) -> Result<Vec<Value>> {
        let mut conn = self.conn.clone();
        if self.is_cluster() {
            let mut out = Vec::new();
            for (cmd, keep) in cmds {
                let v: Value = self.run(cmd.query_async(&mut conn)).await?;
                if keep {
                    out.push(v);
                }
            }
            return Ok(out);
        }
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        for (cmd, keep) in cmds {
            pipe.add_command(cmd);
            if !keep {
                pipe.ignore();
            }
        }
        self.run(pipe.query_async(&mut conn)).await
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// Every entry key under `prefix`, without the namespace, sorted.
    async fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        if self.is_cluster() {
            let mut conn = self.conn.clone();
            let mut keys: Vec<Vec<u8>> = self.run(conn.smembers(self.index_key("a", ""))).await?;
            keys.retain(|k| k.starts_with(prefix));
            keys.sort_unstable();
            return Ok(keys);
        }
        let mut pattern = self.entry_key(b"");
        for &b in prefix {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        let strip = self.entry_key(b"").len();
        let mut keys: Vec<Vec<u8>> =
            self.scan_pattern(&pattern).await?.into_iter().map(|k| k[strip..].to_vec()).collect();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// Every Redis key matching the glob `pattern` (single-node mode: SCAN walks one node).
    async fn scan_pattern(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    async fn delete_keys(&self, keys: &[Vec<u8>]) -> Result<u64> {
        let mut n = 0u64;
        for chunk in keys.chunks(500) {
            let mut cmds = Vec::with_capacity(chunk.len() * 2);
            for k in chunk {
                cmds.push((redis::cmd("DEL").arg(self.entry_key(k)).clone(), true));
                if self.is_cluster() {
                    cmds.push((
                        redis::cmd("SREM").arg(self.index_key("a", "")).arg(k).clone(),
                        false,
                    ));
                }
            }
            for v in self.exec(cmds, false).await? {
                n += redis::from_redis_value::<u64>(v).unwrap_or(0);
            }
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
        let values: Vec<Option<Vec<u8>>> = if self.is_cluster() {
            // Keys of a cluster live in different slots: single GETs instead of one MGET.
            let cmds = full.iter().map(|k| (redis::cmd("GET").arg(k).clone(), true)).collect();
            self.exec(cmds, false)
                .await?
                .into_iter()
                .map(|v| redis::from_redis_value::<Option<Vec<u8>>>(v).ok().flatten())
                .collect()
        } else {
            let mut conn = self.conn.clone();
            self.run(redis::cmd("MGET").arg(&full).query_async(&mut conn)).await?
        };
        // A corrupt entry in a batch is a miss for that key, not a failure of the batch.
        Ok(values.into_iter().map(|v| self.decode(v).ok().flatten()).collect())
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        let mut cmds = Vec::new();
        self.put_cmds(&mut cmds, key, entry)?;
        self.exec(cmds, true).await.map(drop)
    }

    async fn put_many(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        let mut cmds = Vec::new();
        for (k, e) in entries {
            self.put_cmds(&mut cmds, &k, e)?;
        }
        self.exec(cmds, false).await.map(drop)
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
            Invalidation::All if self.is_cluster() => {
                let keys = self.keys_under(b"").await?;
                self.delete_keys(&keys).await
            }
            Invalidation::All => {
                let keys = self.keys_under(b"").await?;
                let n = self.delete_keys(&keys).await?;
                // The index sets of this namespace go too.
                let sets = self.scan_pattern(format!("{}[ts]:*", self.prefix).as_bytes()).await?;
                for chunk in sets.chunks(500) {
                    let _: u64 = self.run(conn.del(chunk)).await?;
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
