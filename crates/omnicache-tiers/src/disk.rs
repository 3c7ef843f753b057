//! The disk tier: entries as [`Envelope`]s in SQLite (bundled, WAL), with metadata columns
//! indexed by expiry, tags and data subject, a byte budget with eviction of the least recently
//! read entries, and survival across restarts with TTLs intact.
//!
//! - **Durable and crash-safe.** Every write is one SQLite transaction in WAL mode. With the
//!   default [`Durability::Normal`] a write acknowledged by `put` survives the process being
//!   killed (`kill -9`); [`Durability::Full`] also survives power loss, at the cost of an fsync
//!   per write.
//! - **Corruption** (a stored envelope that fails its checksum or does not parse) is detected on
//!   read: the row is deleted, counted in [`DiskStats::corrupt`], and the read fails with
//!   [`ErrorKind::Corrupt`], which the tiered cache turns into a miss.
//! - **Disk full** (`SQLITE_FULL`) disables the tier: every call then fails fast with
//!   [`ErrorKind::Unavailable`], [`Tier::health`] says `Unavailable`, and the cache keeps
//!   serving from the other tiers. [`DiskTier::try_enable`] re-enables it once space is back.
//! - SQLite calls run on the calling task. They are short (keyed lookups on an index); the tier
//!   is meant for a local disk.
//!
//! ```
//! use omnicache_core::{EntryMeta, Tier, TierEntry};
//! use omnicache_tiers::disk::DiskTier;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let tier = DiskTier::builder(dir.path().join("cache.db")).max_bytes(64 << 20).open()?;
//! # pollster_block_on(async {
//! let entry = TierEntry { value: b"hello".to_vec(), meta: EntryMeta::new(0) };
//! tier.put(b"greeting", entry).await?;
//! assert_eq!(tier.get(b"greeting").await?.unwrap().value, b"hello");
//! # Ok::<(), omnicache_core::Error>(())
//! # })?;
//! # fn pollster_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), omnicache_core::Error>(())
//! ```

use omnicache_core::{
    Envelope, Error, ErrorKind, Invalidation, Result, ScanPage, SharedClock, Tier, TierEntry,
    TierHealth, Timestamp,
};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How hard a write is pushed to disk before `put` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the process crashing (WAL, `synchronous=NORMAL`). The default.
    #[default]
    Normal,
    /// Also survives power loss (`synchronous=FULL`): an fsync per write.
    Full,
}

/// Builds a [`DiskTier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DiskTierBuilder {
    path: PathBuf,
    max_bytes: u64,
    clock: SharedClock,
    durability: Durability,
    name: String,
}

impl DiskTierBuilder {
    /// The byte budget for stored envelopes; the least recently read entries are evicted beyond
    /// it. Default: 1 GiB.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The clock for expiry. Default: the system clock.
    pub fn clock(mut self, clock: impl Into<SharedClock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Durability of acknowledged writes. Default: [`Durability::Normal`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The tier's name in logs and metrics. Default: `"disk"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Opens (creating if needed) the database file and its parent directory.
    pub fn open(self) -> Result<DiskTier> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::from(e)
                    .context(format!("creating the disk tier's directory {}", parent.display()))
            })?;
        }
        let conn = Connection::open(&self.path).map_err(|e| sql(e).context(self.path.display()))?;
        let sync = match self.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS entries (
                 key BLOB PRIMARY KEY,
                 envelope BLOB NOT NULL,
                 expires INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 accessed INTEGER NOT NULL,
                 subject TEXT
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires > 0;
             CREATE INDEX IF NOT EXISTS entries_accessed ON entries(accessed);
             CREATE INDEX IF NOT EXISTS entries_subject ON entries(subject) WHERE subject IS NOT NULL;
             CREATE TABLE IF NOT EXISTS tags (
                 tag TEXT NOT NULL,
                 key BLOB NOT NULL,
                 PRIMARY KEY (tag, key)
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS tags_key ON tags(key);"
        ))
        .map_err(|e| sql(e).context(format!("initialising {}", self.path.display())))?;
        let bytes: i64 = conn
            .query_row("SELECT COALESCE(SUM(size), 0) FROM entries", [], |r| r.get(0))
            .map_err(sql)?;
        Ok(DiskTier {
            conn: Mutex::new(conn),
            path: self.path,
            clock: self.clock,
            max_bytes: self.max_bytes,
            bytes: AtomicU64::new(bytes.max(0) as u64),
            disabled: AtomicBool::new(false),
            corrupt: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            name: self.name,
            touched: Mutex::new(Vec::new()),
        })
    }
}

/// Counters of a disk tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    /// Bytes of stored envelopes.
    pub bytes: u64,
    /// Entries found corrupt (and deleted).
    pub corrupt: u64,
    /// Entries evicted for the byte budget.
    pub evicted: u64,
    /// Expired entries deleted.
    pub expired: u64,
    /// Whether the tier disabled itself (disk full).
    pub disabled: bool,
}

/// The SQLite-backed disk tier; see the [module docs](self).
pub struct DiskTier {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: SharedClock,
    max_bytes: u64,
    bytes: AtomicU64,
    disabled: AtomicBool,
    corrupt: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    name: String,
    touched: Mutex<Vec<Vec<u8>>>,
}

/// Reads whose access times are written together.
const TOUCH_BATCH: usize = 256;

impl fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.path)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn sql(e: rusqlite::Error) -> Error {
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => ErrorKind::Unavailable,
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            ErrorKind::Corrupt
        }
        _ => ErrorKind::Io,
    };
    Error::new(kind, "sqlite").with_source(e)
}

fn ts(t: Timestamp) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl DiskTier {
    /// A builder for a tier stored at `path`.
    pub fn builder(path: impl AsRef<Path>) -> DiskTierBuilder {
        DiskTierBuilder {
            path: path.as_ref().to_path_buf(),
            max_bytes: 1 << 30,
            clock: SharedClock::System,
            durability: Durability::Normal,
            name: "disk".into(),
        }
    }

    /// Opens a tier at `path` with the defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<DiskTier> {
        Self::builder(path).open()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters so far.
    pub fn stats(&self) -> DiskStats {
        DiskStats {
            bytes: self.bytes.load(Ordering::Relaxed),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            disabled: self.disabled.load(Ordering::Relaxed),
        }
    }

    /// Re-enables a tier that disabled itself, if a test write succeeds.
    pub fn try_enable(&self) -> bool {
        let conn = self.conn.lock();
        let ok = conn.execute_batch("BEGIN IMMEDIATE; COMMIT;").is_ok();
        if ok {
            self.disabled.store(false, Ordering::SeqCst);
        }
        ok
    }

    fn check(&self) -> Result<()> {
        if self.disabled.load(Ordering::Relaxed) {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("disk tier {} is disabled (disk full)", self.path.display()),
            ))
        } else {
            Ok(())
        }
    }

    /// Runs `f` on the connection; a disk-full error disables the tier.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.check()?;
        let mut conn = self.conn.lock();
        f(&mut conn).map_err(|e| {
            let e = sql(e);
            if e.kind() == ErrorKind::Unavailable {
                self.disabled.store(true, Ordering::SeqCst);
            }
            e.context(format!("disk tier {}", self.path.display()))
        })
    }

    /// Deletes every expired entry now; returns how many. The tiered cache's sweeper calls it.
    pub fn sweep_expired(&self) -> Result<u64> {
        let now = ts(self.clock.now());
        let n = self.delete_where("expires > 0 AND expires <= ?1", &[&now])?;
        self.expired.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    /// Deletes the entries `where_sql` selects, with their tags, in one transaction; keeps the
    /// byte count; returns how many.
    fn delete_where(&self, where_sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<u64> {
        let (n, freed) = self.with(|c| {
            let tx = c.transaction()?;
            let out = {
                let mut st = tx.prepare(&format!(
                    "DELETE FROM entries WHERE {where_sql} RETURNING key, size"
                ))?;
                let rows =
                    st.query_map(args, |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
                let mut del = tx.prepare_cached("DELETE FROM tags WHERE key = ?1")?;
                let (mut n, mut freed) = (0u64, 0i64);
                for row in rows {
                    let (k, size) = row?;
                    del.execute([k])?;
                    n += 1;
                    freed += size;
                }
                (n, freed)
            };
            tx.commit()?;
            Ok(out)
        })?;
        self.bytes.fetch_sub(freed.max(0) as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Evicts the least recently read entries until the budget holds.
    fn enforce_budget(&self) -> Result<()> {
        while self.bytes.load(Ordering::Relaxed) > self.max_bytes {
            let n = self
                .delete_where("key IN (SELECT key FROM entries ORDER BY accessed LIMIT 32)", &[])?;
            self.evicted.fetch_add(n, Ordering::Relaxed);
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    fn get_blocking(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        let now = ts(self.clock.now());
        let row = self.with(|c| {
            c.query_row(
                "SELECT envelope, expires, accessed FROM entries WHERE key = ?1",
                [key],
                |r| {
                    // A value of the wrong type in the envelope column is corruption too.
                    let bytes = match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                            b.to_vec()
                        }
                        _ => Vec::new(),
                    };
                    let expires = r.get::<_, Option<i64>>(1)?.unwrap_or(0);
                    let accessed = r.get::<_, Option<i64>>(2)?.unwrap_or(0);
                    Ok((bytes, expires, accessed))
                },
            )
            .optional()
        })?;
        let Some((bytes, expires, accessed)) = row else { return Ok(None) };
        if expires > 0 && now >= expires {
            let n = self.delete_where("key = ?1", &[&key])?;
            self.expired.fetch_add(n, Ordering::Relaxed);
            return Ok(None);
        }
        match Envelope::decode(&bytes) {
            Ok(env) => {
                // Reads refresh the eviction order at most once a second per entry.
                if now.saturating_sub(accessed) > 1_000_000_000 {
                    self.touch(key);
                }
                Ok(Some(TierEntry { value: env.payload, meta: env.meta }))
            }
            Err(e) => {
                self.delete_where("key = ?1", &[&key])?;
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                Err(e.context(format!("disk tier {}: entry deleted", self.path.display())))
            }
        }
    }

    /// Writes entries in one transaction.
    fn put_batch(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        let now = ts(self.clock.now());
        let mut rows = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let expires = entry.meta.expires.map_or(0, ts);
            let subject = entry.meta.subject.clone();
            let tags = entry.meta.tags.clone();
            let bytes = Envelope::new(entry.meta, entry.value).encode()?;
            rows.push((key, bytes, expires, subject, tags));
        }
        let (added, removed) = self.with(|c| {
            let tx = c.transaction()?;
            let (mut added, mut removed) = (0i64, 0i64);
            {
                let mut old_size = tx.prepare_cached("SELECT size FROM entries WHERE key = ?1")?;
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO entries (key, envelope, expires, size, accessed, subject)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut clear_tags = tx.prepare_cached("DELETE FROM tags WHERE key = ?1")?;
                let mut add_tag =
                    tx.prepare_cached("INSERT OR IGNORE INTO tags (tag, key) VALUES (?1, ?2)")?;
                for (key, bytes, expires, subject, tags) in &rows {
                    let old: Option<i64> = old_size.query_row([key], |r| r.get(0)).optional()?;
                    removed += old.unwrap_or(0);
                    let size = bytes.len() as i64;
                    insert.execute(params![key, bytes, expires, size, now, subject])?;
                    added += size;
                    if old.is_some() {
                        clear_tags.execute([key])?;
                    }
                    for t in tags {
                        add_tag.execute(params![t, key])?;
                    }
                }
            }
            tx.commit()?;
            Ok((added, removed))
        })?;
        self.bytes.fetch_add(added.max(0) as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(removed.max(0) as u64, Ordering::Relaxed);
        self.enforce_budget()
    }

    fn put_blocking(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        self.put_batch(vec![(key.to_vec(), entry)])
    }

    /// Records that `key` was read; access times are written in batches, so reads do not each
    /// cost a write transaction.
    fn touch(&self, key: &[u8]) {
        let batch = {
            let mut t = self.touched.lock();
            t.push(key.to_vec());
            if t.len() < TOUCH_BATCH {
                return;
            }
            std::mem::take(&mut *t)
        };
        let now = ts(self.clock.now());
        let _ = self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut st =
                    tx.prepare_cached("UPDATE entries SET accessed = ?2 WHERE key = ?1")?;
                for k in &batch {
                    st.execute(params![k, now])?;
                }
            }
            tx.commit()
        });
    }
}

impl Tier for DiskTier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        self.get_blocking(key)
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        self.put_blocking(key, entry)
    }

    async fn put_many(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        self.put_batch(entries)
    }

    async fn sweep_expired(&self) -> Result<u64> {
        DiskTier::sweep_expired(self)
    }

    async fn usage(&self) -> Result<Option<omnicache_core::TierUsage>> {
        let entries: i64 =
            self.with(|c| c.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0)))?;
        Ok(Some(omnicache_core::TierUsage {
            entries: entries.max(0) as u64,
            bytes: self.stats().bytes,
        }))
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.delete_where("key = ?1", &[&key])? > 0)
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        match what {
            Invalidation::Key(k) => self.delete_where("key = ?1", &[k]),
            Invalidation::Keys(ks) => {
                let mut n = 0;
                for k in ks {
                    n += self.delete_where("key = ?1", &[k])?;
                }
                Ok(n)
            }
            Invalidation::Tag(t) => {
                self.delete_where("key IN (SELECT key FROM tags WHERE tag = ?1)", &[t])
            }
            Invalidation::Subject(s) => self.delete_where("subject = ?1", &[s]),
            Invalidation::Prefix(p) => match prefix_end(p) {
                Some(end) => self.delete_where("key >= ?1 AND key < ?2", &[p, &end]),
                None => self.delete_where("key >= ?1", &[p]),
            },
            Invalidation::All => self.delete_where("1", &[]),
            other => {
                Err(Error::invalid_input(format!("disk tier: unsupported invalidation {other:?}")))
            }
        }
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        let now = ts(self.clock.now());
        let start = cursor.map_or_else(|| prefix.to_vec(), <[u8]>::to_vec);
        let strict = cursor.is_some();
        let end = prefix_end(prefix);
        let lim = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut keys: Vec<Vec<u8>> = self.with(|c| {
            let sql = format!(
                "SELECT key FROM entries WHERE key {} ?1 {} AND (expires = 0 OR expires > ?2)
                 ORDER BY key LIMIT ?3",
                if strict { ">" } else { ">=" },
                if end.is_some() { "AND key < ?4" } else { "" }
            );
            let mut st = c.prepare(&sql)?;
            let rows = match &end {
                Some(e) => st
                    .query_map(params![start, now, lim, e], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>(),
                None => st.query_map(params![start, now, lim], |r| r.get(0))?.collect(),
            };
            rows
        })?;
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ScanPage { keys, next })
    }

    fn health(&self) -> TierHealth {
        if self.disabled.load(Ordering::Relaxed) {
            TierHealth::Unavailable
        } else {
            TierHealth::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_range() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
