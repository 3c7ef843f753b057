//! The tier's SQL on the writer's connection: writing rows with their tags, deleting by a
//! condition, the byte budget, and turning a full disk into a disabled tier.

use super::*;

/// One entry to write.
pub(super) struct Row {
    pub(super) key: Vec<u8>,
    pub(super) bytes: Vec<u8>,
    pub(super) expires: i64,
    pub(super) subject: Option<String>,
    pub(super) tags: Vec<String>,
}

impl Shared {
    /// Runs `f` on `conn`; a disk-full error disables the tier until a probe succeeds.
    pub(super) fn with<T>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        f(conn).map_err(|e| {
            let e = sql(e);
            if e.kind() == ErrorKind::Unavailable {
                let next = self.clock.now().saturating_add(self.probe_every);
                self.next_probe.store(next, Ordering::SeqCst);
                self.disabled.store(true, Ordering::SeqCst);
            }
            e.context(format!("disk tier {}", self.path.display()))
        })
    }

    /// A real write of a page's worth of bytes, rolled back: succeeds once space is back.
    pub(super) fn probe(&self, conn: &mut Connection) -> bool {
        let ok = conn
            .execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS probe (x BLOB);
                 INSERT INTO probe VALUES (zeroblob(65536));
                 DELETE FROM probe;
                 COMMIT;",
            )
            .is_ok();
        if ok {
            self.disabled.store(false, Ordering::SeqCst);
        } else {
            let _ = conn.execute_batch("ROLLBACK;");
        }
        ok
    }

    /// Deletes the entries `where_sql` selects, with their tags, in one transaction; keeps the
    /// byte count; returns how many.
    pub(super) fn delete_where(
        &self,
        conn: &mut Connection,
        where_sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<u64> {
        let (n, freed) = self.with(conn, |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    pub(super) fn enforce_budget(&self, conn: &mut Connection) -> Result<()> {
        while self.bytes.load(Ordering::Relaxed) > self.max_bytes {
            let n = self.delete_where(
                conn,
                "key IN (SELECT key FROM entries ORDER BY accessed LIMIT 32)",
                &[],
            )?;
            self.evicted.fetch_add(n, Ordering::Relaxed);
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn put_rows(&self, conn: &mut Connection, rows: &[Row]) -> Result<()> {
        let now = ts(self.clock.now());
        let (added, removed) = self.with(conn, |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
                for r in rows {
                    let old: Option<i64> = old_size.query_row([&r.key], |r| r.get(0)).optional()?;
                    removed += old.unwrap_or(0);
                    let size = r.bytes.len() as i64;
                    insert.execute(params![r.key, r.bytes, r.expires, size, now, r.subject])?;
                    added += size;
                    if old.is_some() {
                        clear_tags.execute([&r.key])?;
                    }
                    for t in &r.tags {
                        add_tag.execute(params![t, r.key])?;
                    }
                }
            }
            tx.commit()?;
            Ok((added, removed))
        })?;
        self.bytes.fetch_add(added.max(0) as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(removed.max(0) as u64, Ordering::Relaxed);
        self.enforce_budget(conn)
    }
}
