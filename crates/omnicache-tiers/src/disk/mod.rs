//! The disk tier: entries as [`Envelope`]s in SQLite (bundled, WAL), with metadata columns
//! indexed by expiry, tags and data subject, a byte budget with eviction of the least recently
//! read entries, and survival across restarts with TTLs intact.
//!
//! - **Private.** A database file the tier creates is mode 0600 (its journal files follow).
//! - **Durable and crash-safe.** Every write is one SQLite transaction in WAL mode. With the
//!   default [`Durability::Normal`] a write acknowledged by `put` survives the process being
//!   killed (`kill -9`); [`Durability::Full`] also survives power loss, at the cost of an fsync
//!   per write.
//! - **Corruption** (a stored envelope that fails its checksum or does not parse) is detected on
//!   read: the row is deleted, counted in [`DiskStats::corrupt`], and the read fails with
//!   [`ErrorKind::Corrupt`], which the tiered cache turns into a miss.
//! - **Disk full** (`SQLITE_FULL`) disables the tier: calls then fail fast with
//!   [`ErrorKind::Unavailable`], [`Tier::health`] says `Unavailable`, and the cache keeps
//!   serving from the other tiers. While disabled, the first call after each probe interval
//!   ([`DiskTierBuilder::probe_interval`], default 5 s) tries a real write; once one succeeds
//!   the tier serves again. [`DiskTier::try_enable`] probes now.
//! - **Never on the async runtime.** SQLite runs on threads of the tier's own: one writer with
//!   its connection, and [`READERS`] readers with theirs (in WAL mode readers never wait for the
//!   writer). Calls reach them through bounded queues ([`QUEUE`] jobs each), so a slow or
//!   locked disk holds up only its own callers, and a caller's timeout (the tiered cache puts
//!   one on every tier call) fires on time. Writes run one at a time in the order queued, each
//!   an immediate transaction (waiting up to 5 s for another process's write lock).
//!
//! ```
//! use omnicache_core::{EntryMeta, Tier, TierEntry};
//! use omnicache_tiers::disk::DiskTier;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let tier = DiskTier::builder(dir.path().join("cache.db")).max_bytes(64 << 20).open()?;
//! # pollster_block_on(async {
//! let entry = TierEntry::new(b"hello".to_vec(), EntryMeta::new(0));
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
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

mod store;
use store::Row;

/// Reader threads per tier.
pub const READERS: usize = 2;
/// Jobs each queue (the writer's, the readers') holds before callers wait.
pub const QUEUE: usize = 1024;

/// Work for one of the tier's threads, on that thread's connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a tier thread polls for the next job before it sleeps: a caller that sends one
/// request after another then finds the thread awake, without a wake-up per call.
const SPIN: Duration = Duration::from_micros(20);

/// The next job, polled for [`SPIN`], then waited for; `None` once the tier is dropped.
#[allow(clippy::disallowed_methods)] // a spin wait, in real time
fn next_job(jobs: &mut mpsc::Receiver<Job>) -> Option<Job> {
    // Elapsed time on this thread only, for the spin; no entry's time is read from it.
    let started = std::time::Instant::now();
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if started.elapsed() < SPIN => {
                std::thread::yield_now();
            }
            Err(mpsc::error::TryRecvError::Empty) => return jobs.blocking_recv(),
        }
    }
}

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
    probe_interval: Duration,
}

impl DiskTierBuilder {
    /// How often a disabled (disk-full) tier tries a write to see whether space is back.
    /// Default: 5 s.
    pub fn probe_interval(mut self, every: Duration) -> Self {
        self.probe_interval = every;
        self
    }

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
        let created = !self.path.exists();
        let conn = Connection::open(&self.path).map_err(|e| sql(e).context(self.path.display()))?;
        #[cfg(unix)]
        if created {
            // Cached values are user data: readable by the owner only. SQLite gives the WAL and
            // shared-memory files the database file's mode.
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&self.path, private).map_err(|e| {
                Error::from(e).context(format!("making {} private", self.path.display()))
            })?;
        }
        let sync = match self.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             PRAGMA secure_delete = ON;
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
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open(&self.path)
                    .map_err(|e| sql(e).context(self.path.display()))?;
                c.execute_batch("PRAGMA busy_timeout = 5000;").map_err(sql)?;
                Ok(c)
            })
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            path: self.path,
            clock: self.clock,
            max_bytes: self.max_bytes,
            bytes: AtomicU64::new(bytes.max(0) as u64),
            disabled: AtomicBool::new(false),
            next_probe: AtomicU64::new(0),
            probe_every: omnicache_core::clock::duration_nanos(self.probe_interval),
            corrupt: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            name: self.name,
            touched: Mutex::new(Vec::new()),
        });
        let thread =
            |role: &str| std::thread::Builder::new().name(format!("omnicache-disk-{role}"));
        let (writer, mut jobs) = mpsc::channel::<Job>(QUEUE);
        let mut conn = conn;
        thread("writer")
            .spawn(move || {
                while let Some(job) = next_job(&mut jobs) {
                    job(&mut conn);
                }
            })
            .map_err(|e| Error::from(e).context("starting the disk tier's writer thread"))?;
        let (reader, jobs) = mpsc::channel::<Job>(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for mut conn in readers {
            let jobs = jobs.clone();
            thread("reader")
                .spawn(move || loop {
                    let Some(job) = next_job(&mut jobs.lock()) else { break };
                    job(&mut conn);
                })
                .map_err(|e| Error::from(e).context("starting the disk tier's reader threads"))?;
        }
        Ok(DiskTier { shared, writer, reader })
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
    shared: Arc<Shared>,
    writer: mpsc::Sender<Job>,
    reader: mpsc::Sender<Job>,
}

/// What the tier's threads and its callers share.
struct Shared {
    path: PathBuf,
    clock: SharedClock,
    max_bytes: u64,
    bytes: AtomicU64,
    disabled: AtomicBool,
    /// When a disabled tier next tries a write.
    next_probe: AtomicU64,
    probe_every: u64,
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
            .field("path", &self.shared.path)
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
            probe_interval: Duration::from_secs(5),
        }
    }

    /// Opens a tier at `path` with the defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<DiskTier> {
        Self::builder(path).open()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Counters so far.
    pub fn stats(&self) -> DiskStats {
        let s = &self.shared;
        DiskStats {
            bytes: s.bytes.load(Ordering::Relaxed),
            corrupt: s.corrupt.load(Ordering::Relaxed),
            evicted: s.evicted.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
            disabled: s.disabled.load(Ordering::Relaxed),
        }
    }

    /// Re-enables a tier that disabled itself if a test write succeeds now; true if it serves.
    pub async fn try_enable(&self) -> bool {
        if !self.shared.disabled.load(Ordering::SeqCst) {
            return true;
        }
        let probed = self.send(&self.writer, |s: &Shared, c: &mut Connection| Ok(s.probe(c))).await;
        probed.unwrap_or(false)
    }

    /// Deletes every expired entry now; returns how many. The tiered cache's sweeper calls it.
    pub async fn sweep_expired(&self) -> Result<u64> {
        self.write(|s, c| {
            let now = ts(s.clock.now());
            let n = s.delete_where(c, "expires > 0 AND expires <= ?1", &[&now])?;
            s.expired.fetch_add(n, Ordering::Relaxed);
            Ok(n)
        })
        .await
    }

    /// Fails fast while the tier is disabled, unless a probe is due and succeeds.
    async fn ready(&self) -> Result<()> {
        let s = &self.shared;
        if !s.disabled.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = s.clock.now();
        let due = s.next_probe.load(Ordering::SeqCst);
        if now >= due
            && s.next_probe
                .compare_exchange(
                    due,
                    now.saturating_add(s.probe_every),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            && self.try_enable().await
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("disk tier {} is disabled (disk full)", s.path.display()),
        ))
    }

    /// Runs `f` on one of `queue`'s threads and waits for its answer.
    async fn send<T: Send + 'static>(
        &self,
        queue: &mpsc::Sender<Job>,
        f: impl FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(&shared, c));
        });
        let stopped = || {
            Error::new(
                ErrorKind::Unavailable,
                format!("disk tier {}: its threads stopped", self.shared.path.display()),
            )
        };
        queue.send(job).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the writer thread (in the order writes were queued).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ready().await?;
        self.send(&self.writer, f).await
    }

    /// Runs `f` on a reader thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ready().await?;
        self.send(&self.reader, f).await
    }

    /// Hands `f` to the writer without waiting (access times); dropped when the queue is full.
    fn write_later(&self, f: impl FnOnce(&Shared, &mut Connection) + Send + 'static) {
        let shared = self.shared.clone();
        let _ = self.writer.try_send(Box::new(move |c| f(&shared, c)));
    }

    /// Records that `key` was read; access times are written in batches, so reads do not each
    /// cost a write transaction.
    fn touch(&self, key: &[u8]) {
        let batch = {
            let mut t = self.shared.touched.lock();
            t.push(key.to_vec());
            if t.len() < TOUCH_BATCH {
                return;
            }
            std::mem::take(&mut *t)
        };
        let now = ts(self.shared.clock.now());
        self.write_later(move |s, c| {
            let _ = s.with(c, |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                {
                    let mut st =
                        tx.prepare_cached("UPDATE entries SET accessed = ?2 WHERE key = ?1")?;
                    for k in &batch {
                        st.execute(params![k, now])?;
                    }
                }
                tx.commit()
            });
        });
    }

    /// Writes entries in one transaction, then keeps the byte budget.
    async fn put_batch(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        let mut rows = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let expires = entry.meta.expires.map_or(0, ts);
            let subject = entry.meta.subject.clone();
            let tags = entry.meta.tags.clone();
            let bytes = Envelope::from_entry(entry).encode()?;
            rows.push(Row { key, bytes, expires, subject, tags });
        }
        self.write(move |s, c| s.put_rows(c, &rows)).await
    }

    /// Deletes the rows `where_sql` selects (on the writer).
    async fn delete(
        &self,
        where_sql: &'static str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<u64> {
        self.write(move |s, c| {
            let args: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a as _).collect();
            s.delete_where(c, where_sql, &args)
        })
        .await
    }
}

impl Tier for DiskTier {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<TierEntry>> {
        let k = key.to_vec();
        let row = self
            .read(move |s, c| {
                s.with(c, |c| {
                    c.query_row(
                        "SELECT envelope, expires, accessed FROM entries WHERE key = ?1",
                        [k],
                        |r| {
                            // A value of the wrong type in the envelope column is corruption too.
                            let bytes = match r.get_ref(0)? {
                                rusqlite::types::ValueRef::Blob(b)
                                | rusqlite::types::ValueRef::Text(b) => b.to_vec(),
                                _ => Vec::new(),
                            };
                            let expires = r.get::<_, Option<i64>>(1)?.unwrap_or(0);
                            let accessed = r.get::<_, Option<i64>>(2)?.unwrap_or(0);
                            Ok((bytes, expires, accessed))
                        },
                    )
                    .optional()
                })
            })
            .await?;
        let Some((bytes, expires, accessed)) = row else { return Ok(None) };
        let now = ts(self.shared.clock.now());
        if expires > 0 && now >= expires {
            // Only the expired row: a newer write of the key may have landed since the read.
            let args = vec![key.to_vec().into(), expires.into()];
            let n = self.delete("key = ?1 AND expires = ?2", args).await?;
            self.shared.expired.fetch_add(n, Ordering::Relaxed);
            return Ok(None);
        }
        match Envelope::decode(&bytes) {
            Ok(env) => {
                // Reads refresh the eviction order at most once a second per entry.
                if now.saturating_sub(accessed) > 1_000_000_000 {
                    self.touch(key);
                }
                Ok(Some(env.into_entry()))
            }
            Err(e) => {
                // Only the corrupt bytes, for the same reason.
                let args = vec![key.to_vec().into(), bytes.into()];
                self.delete("key = ?1 AND envelope = ?2", args).await?;
                self.shared.corrupt.fetch_add(1, Ordering::Relaxed);
                Err(e.context(format!("disk tier {}: entry deleted", self.shared.path.display())))
            }
        }
    }

    async fn put(&self, key: &[u8], entry: TierEntry) -> Result<()> {
        self.put_batch(vec![(key.to_vec(), entry)]).await
    }

    async fn put_many(&self, entries: Vec<(Vec<u8>, TierEntry)>) -> Result<()> {
        self.put_batch(entries).await
    }

    async fn sweep_expired(&self) -> Result<u64> {
        DiskTier::sweep_expired(self).await
    }

    async fn usage(&self) -> Result<Option<omnicache_core::TierUsage>> {
        let entries: i64 = self
            .read(|s, c| {
                s.with(c, |c| c.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0)))
            })
            .await?;
        Ok(Some(omnicache_core::TierUsage {
            entries: entries.max(0) as u64,
            bytes: self.stats().bytes,
        }))
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.delete("key = ?1", vec![key.to_vec().into()]).await? > 0)
    }

    async fn invalidate(&self, what: &Invalidation) -> Result<u64> {
        match what {
            Invalidation::Key(k) => self.delete("key = ?1", vec![k.clone().into()]).await,
            Invalidation::Keys(ks) => {
                let ks = ks.clone();
                self.write(move |s, c| {
                    let mut n = 0;
                    for k in &ks {
                        n += s.delete_where(c, "key = ?1", &[k])?;
                    }
                    Ok(n)
                })
                .await
            }
            Invalidation::Tag(t) => {
                let sql = "key IN (SELECT key FROM tags WHERE tag = ?1)";
                self.delete(sql, vec![t.clone().into()]).await
            }
            Invalidation::Subject(s) => {
                // Erasure: deleted cells are zeroed (secure_delete), and the log is
                // checkpointed and truncated so no older page holds the subject's data.
                let s = s.clone();
                self.write(move |sh, c| {
                    let n = sh.delete_where(c, "subject = ?1", &[&s])?;
                    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(sql)?;
                    Ok(n)
                })
                .await
            }
            Invalidation::Prefix(p) => match prefix_end(p) {
                Some(end) => {
                    self.delete("key >= ?1 AND key < ?2", vec![p.clone().into(), end.into()]).await
                }
                None => self.delete("key >= ?1", vec![p.clone().into()]).await,
            },
            Invalidation::All => self.delete("1", Vec::new()).await,
            other => {
                Err(Error::invalid_input(format!("disk tier: unsupported invalidation {other:?}")))
            }
        }
    }

    async fn scan(&self, prefix: &[u8], cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage> {
        let now = ts(self.shared.clock.now());
        let start = cursor.map_or_else(|| prefix.to_vec(), <[u8]>::to_vec);
        let strict = cursor.is_some();
        let end = prefix_end(prefix);
        let lim = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut keys: Vec<Vec<u8>> = self
            .read(move |s, c| {
                s.with(c, |c| {
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
                })
            })
            .await?;
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ScanPage { keys, next })
    }

    fn health(&self) -> TierHealth {
        if self.shared.disabled.load(Ordering::Relaxed) {
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
