//! The order in which writes and deletes reach the tiers, so that a delete or an invalidation
//! always wins over an older write, however late that write runs (write-behind, demotion,
//! promotion, the inline fallback of a full queue).
//!
//! - **Versions.** Every mutation of a key takes a version from one counter, seeded from the
//!   clock when the cache is built and raised past every version read back from a tier, so a
//!   restarted cache's writes are newer than what its tiers hold.
//! - **Lines.** For each key with tier work outstanding, [`Order`] keeps the newest version
//!   issued. Tier work runs only while its version is still the newest for its key
//!   ([`Order::run`]); older work is skipped, because the newer operation carries the whole
//!   desired state of every tier (a write writes where the value goes and purges everywhere
//!   else; a delete deletes everywhere).
//! - **Per-key exclusion.** The check and the tier call run under the key's stripe lock, so a
//!   write that passed its check cannot land after a newer delete of the same key.
//! - **Sweeps.** An invalidation (tag, prefix, subject, all) takes the gate exclusively, so no
//!   tier work is in flight while the tiers run it, and is remembered with its version: later
//!   work older than it whose entry it covers is skipped.
//! - **Retention.** Finished lines and sweeps are kept for a while ([`RETAIN_LINES`],
//!   [`RETAIN_SWEEPS`]): an L1 eviction reaches the demotion path just after L1 let the entry
//!   go, and a newer delete that completed in between must still be known then.

use omnicache_core::{EntryMeta, Invalidation, SharedClock};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes of the per-key exclusion.
const STRIPES: usize = 256;
/// Finished lines remembered, newest first, beyond those with work outstanding.
pub(super) const RETAIN_LINES: usize = 16_384;
/// Finished sweeps remembered beyond those older work still needs.
pub(super) const RETAIN_SWEEPS: usize = 64;

/// A mutation of one key: its version. Each unit of tier work holds the ticket's line open
/// ([`Order::enlist`] ... [`Order::end`]).
#[derive(Debug, Clone)]
pub(super) struct Ticket {
    pub(super) key: Vec<u8>,
    pub(super) version: u64,
}

/// Whether a unit of tier work may still run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing newer happened to the key: run it.
    Current,
    /// A newer write or delete of the key carries the key's state: skip it.
    Newer,
    /// A newer invalidation covers the entry: the key is gone, so a write becomes a delete (a
    /// tier may hold an older copy the invalidation did not match).
    Swept,
}

#[derive(Debug, Default)]
struct Line {
    /// The newest version issued or registered for the key.
    latest: u64,
    /// Units of tier work not finished.
    work: u32,
}

#[derive(Debug, Default)]
struct State {
    lines: HashMap<Vec<u8>, Line>,
    /// Lines whose work finished, oldest first, with the version they finished at.
    retired: VecDeque<(Vec<u8>, u64)>,
    /// Invalidations with their version, oldest first.
    sweeps: VecDeque<(u64, Invalidation)>,
    /// Versions with work outstanding, and how many units each.
    outstanding: BTreeMap<u64, u32>,
}

impl State {
    fn hold(&mut self, version: u64) {
        *self.outstanding.entry(version).or_insert(0) += 1;
    }

    fn release(&mut self, version: u64) {
        if let Some(n) = self.outstanding.get_mut(&version) {
            *n -= 1;
            if *n == 0 {
                self.outstanding.remove(&version);
            }
        }
        // A sweep is needed while older work may still run, and a while after.
        let oldest = self.outstanding.keys().next().copied().unwrap_or(u64::MAX);
        while self.sweeps.len() > RETAIN_SWEEPS && self.sweeps.front().is_some_and(|s| s.0 < oldest)
        {
            self.sweeps.pop_front();
        }
    }

    /// Whether an invalidation newer than `version` covers `key` with `meta`.
    fn swept(&self, key: &[u8], version: u64, meta: Option<&EntryMeta>) -> bool {
        self.sweeps.iter().rev().take_while(|s| s.0 > version).any(|(_, what)| match meta {
            Some(m) => what.matches(key, m),
            // Without metadata (a delete), only key-based rules can tell; a delete is never
            // skipped for a sweep anyway.
            None => false,
        })
    }

    fn verdict(&self, key: &[u8], version: u64, meta: Option<&EntryMeta>) -> Verdict {
        if self.lines.get(key).is_some_and(|l| l.latest > version) {
            Verdict::Newer
        } else if self.swept(key, version, meta) {
            Verdict::Swept
        } else {
            Verdict::Current
        }
    }

    fn current(&self, key: &[u8], version: u64, meta: Option<&EntryMeta>) -> bool {
        self.verdict(key, version, meta) == Verdict::Current
    }
}

/// See the [module docs](self).
pub(super) struct Order {
    state: Mutex<State>,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    gate: tokio::sync::RwLock<()>,
    hasher: foldhash::fast::FixedState,
    versions: AtomicU64,
}

impl std::fmt::Debug for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Order")
            .field("lines", &s.lines.len())
            .field("sweeps", &s.sweeps.len())
            .field("outstanding", &s.outstanding.len())
            .finish_non_exhaustive()
    }
}

impl Order {
    /// An order whose versions start after the clock's now.
    pub(super) fn new(clock: &SharedClock) -> Self {
        Order {
            state: Mutex::default(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            gate: tokio::sync::RwLock::new(()),
            hasher: foldhash::fast::FixedState::with_seed(0x6f6d_6e69),
            versions: AtomicU64::new(clock.now()),
        }
    }

    /// Raises the counter past `version` (one read back from a tier or given by a caller).
    /// A version so large that counting on from it could wrap is not followed (it can only
    /// come from a foreign or damaged writer).
    pub(super) fn observe(&self, version: u64) {
        if version < u64::MAX - (1 << 40) {
            self.versions.fetch_max(version, Ordering::Relaxed);
        }
    }

    /// A new mutation of `key`: the newest version, with one unit of work held.
    pub(super) fn begin(&self, key: &[u8]) -> Ticket {
        let mut s = self.state.lock();
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        let line = s.lines.entry(key.to_vec()).or_default();
        line.latest = line.latest.max(version);
        line.work += 1;
        s.hold(version);
        Ticket { key: key.to_vec(), version }
    }

    /// Work on an existing version of `key` (a demotion or a promotion of `meta`): a ticket
    /// with one unit held, or `None` when something newer already happened to the key.
    pub(super) fn begin_existing(&self, key: &[u8], meta: &EntryMeta) -> Option<Ticket> {
        let mut s = self.state.lock();
        if !s.current(key, meta.version, Some(meta)) {
            return None;
        }
        let line = s.lines.entry(key.to_vec()).or_default();
        line.latest = line.latest.max(meta.version);
        line.work += 1;
        s.hold(meta.version);
        Some(Ticket { key: key.to_vec(), version: meta.version })
    }

    /// One more unit of work on `ticket` (a queued job).
    pub(super) fn enlist(&self, ticket: &Ticket) {
        let mut s = self.state.lock();
        if let Some(line) = s.lines.get_mut(&ticket.key) {
            line.work += 1;
        }
        s.hold(ticket.version);
    }

    /// A unit of work on `ticket` is done.
    pub(super) fn end(&self, ticket: &Ticket) {
        let mut s = self.state.lock();
        let s = &mut *s;
        if let Some(line) = s.lines.get_mut(&ticket.key) {
            line.work = line.work.saturating_sub(1);
            if line.work == 0 {
                let latest = line.latest;
                s.retired.push_back((ticket.key.clone(), latest));
                while s.retired.len() > RETAIN_LINES {
                    let Some((k, v)) = s.retired.pop_front() else { break };
                    if s.lines.get(&k).is_some_and(|l| l.work == 0 && l.latest == v) {
                        s.lines.remove(&k);
                    }
                }
            }
        }
        s.release(ticket.version);
    }

    /// Whether `ticket` is still the newest thing to happen to its key (and, for a write of
    /// `meta`, no newer invalidation covers it).
    pub(super) fn is_current(&self, ticket: &Ticket, meta: Option<&EntryMeta>) -> bool {
        self.state.lock().current(&ticket.key, ticket.version, meta)
    }

    /// Whether an entry of `key` with `meta`, read back from a tier, is older than something
    /// that happened to the key since (a write, a delete, an invalidation).
    pub(super) fn superseded(&self, key: &[u8], meta: &EntryMeta) -> bool {
        !self.state.lock().current(key, meta.version, Some(meta))
    }

    /// Runs `work` for `ticket` under the key's stripe lock, with the ticket's [`Verdict`] as
    /// it stands there (for a write, `meta` is the entry's metadata; `None` for a delete).
    pub(super) async fn run<T, F>(
        &self,
        ticket: &Ticket,
        meta: Option<&EntryMeta>,
        work: impl FnOnce(Verdict) -> F,
    ) -> T
    where
        F: Future<Output = T>,
    {
        let _gate = self.gate.read().await;
        let stripe = self.hasher.hash_one(&ticket.key) as usize % STRIPES;
        let _key = self.stripes[stripe].lock().await;
        let verdict = self.state.lock().verdict(&ticket.key, ticket.version, meta);
        work(verdict).await
    }

    /// Runs `work` for several tickets at once (a batch write), under every stripe they use;
    /// `work` gets each ticket's [`Verdict`], in order.
    pub(super) async fn run_many<T, F>(
        &self,
        tickets: &[(Ticket, Option<&EntryMeta>)],
        work: impl FnOnce(Vec<Verdict>) -> F,
    ) -> T
    where
        F: Future<Output = T>,
    {
        let _gate = self.gate.read().await;
        let mut stripes: Vec<usize> =
            tickets.iter().map(|(t, _)| self.hasher.hash_one(&t.key) as usize % STRIPES).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(self.stripes[i].lock().await);
        }
        let verdicts = {
            let s = self.state.lock();
            tickets.iter().map(|(t, meta)| s.verdict(&t.key, t.version, *meta)).collect()
        };
        work(verdicts).await
    }

    /// An invalidation: waits until no tier work is in flight and holds it off, then records
    /// `what` with a new version. Drop the guard (after [`Order::end_sweep`]) to let work go on.
    pub(super) async fn begin_sweep(
        &self,
        what: &Invalidation,
    ) -> (u64, tokio::sync::RwLockWriteGuard<'_, ()>) {
        let gate = self.gate.write().await;
        let mut s = self.state.lock();
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        s.sweeps.push_back((version, what.clone()));
        s.hold(version);
        (version, gate)
    }

    /// The invalidation of `version` is done.
    pub(super) fn end_sweep(&self, version: u64) {
        self.state.lock().release(version);
    }

    /// Lines remembered now (for tests of the bound).
    #[cfg(test)]
    pub(super) fn lines(&self) -> usize {
        self.state.lock().lines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order::new(&SharedClock::System)
    }

    #[test]
    fn a_newer_mutation_makes_older_work_stale() {
        let o = order();
        let put = o.begin(b"k");
        assert!(o.is_current(&put, None));
        let delete = o.begin(b"k");
        assert!(!o.is_current(&put, None), "the delete is newer");
        assert!(o.is_current(&delete, None));
        let mut meta = EntryMeta::new(0);
        meta.version = put.version;
        assert!(o.begin_existing(b"k", &meta).is_none(), "a demotion of the old value");
        assert!(o.superseded(b"k", &meta));
        o.end(&put);
        o.end(&delete);
        assert!(o.superseded(b"k", &meta), "remembered after the work is done");
    }

    #[test]
    fn a_sweep_covers_older_entries_it_matches_only() {
        let o = order();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut tagged = EntryMeta::new(0);
        tagged.tags = vec!["t".into()];
        tagged.version = o.begin(b"a").version;
        let mut plain = EntryMeta::new(0);
        plain.version = o.begin(b"b").version;
        let (v, gate) = rt.block_on(o.begin_sweep(&Invalidation::Tag("t".into())));
        drop(gate);
        o.end_sweep(v);
        assert!(o.superseded(b"a", &tagged));
        assert!(!o.superseded(b"b", &plain));
        let later = o.begin(b"a");
        tagged.version = later.version;
        assert!(!o.superseded(b"a", &tagged), "written after the sweep");
    }

    #[test]
    fn observed_versions_raise_the_counter_but_never_to_the_wrap() {
        let o = order();
        let now = o.begin(b"k").version;
        o.observe(now + 1_000);
        assert!(o.begin(b"k").version > now + 1_000, "newer than what a tier holds");
        o.observe(u64::MAX);
        let next = o.begin(b"k").version;
        assert!(next > now + 1_000 && next < u64::MAX / 2, "not wrapped: {next}");
    }

    #[test]
    fn finished_lines_are_forgotten_beyond_the_bound() {
        let o = order();
        for i in 0..RETAIN_LINES + 100 {
            let t = o.begin(format!("k{i}").as_bytes());
            o.end(&t);
        }
        assert_eq!(o.lines(), RETAIN_LINES);
        let open = o.begin(b"open");
        for i in 0..RETAIN_LINES + 100 {
            let t = o.begin(format!("x{i}").as_bytes());
            o.end(&t);
        }
        assert!(o.is_current(&open, None), "a line with work outstanding is never forgotten");
    }
}
