//! Invalidations and erasures a tier could not apply because it was down.
//!
//! Each is kept with its version and its tier, in memory and, when the cache has a journal
//! file ([`TieredCacheBuilder::journal`](super::TieredCacheBuilder::journal)), on disk, so a
//! restart forgets none. Until the tier takes it, nothing it covers is served from that tier
//! (an entry older than the invalidation that it matches is a miss there), and it is applied
//! again by [`TieredCache::retry_missed`](super::TieredCache::retry_missed), which the sweeper
//! and readiness probes call.

use omnicache_core::{EntryMeta, Error, Invalidation, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One invalidation a tier missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Miss {
    /// The tier, as `index:name` (stable while the cache's tiers are).
    pub(super) tier: String,
    pub(super) what: Invalidation,
    pub(super) version: u64,
}

/// The missed invalidations of one cache.
#[derive(Debug, Default)]
pub(super) struct Missed {
    list: Mutex<Vec<Miss>>,
    /// `list.len()`, read without the lock on every tier hit.
    count: AtomicUsize,
    journal: Option<PathBuf>,
}

/// The name a tier has in the journal.
pub(super) fn tier_id(index: usize, name: &str) -> String {
    format!("{index}:{name}")
}

impl Missed {
    /// The misses recorded in `journal` (none if it does not exist yet).
    pub(super) fn open(journal: Option<PathBuf>) -> Result<Missed> {
        let list: Vec<Miss> = match &journal {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::corrupt(format!(
                        "{}: not a journal of missed invalidations: {e}",
                        path.display()
                    ))
                })?
            }
            _ => Vec::new(),
        };
        Ok(Missed { count: AtomicUsize::new(list.len()), list: Mutex::new(list), journal })
    }

    /// How many are waiting.
    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Records that `tier` missed `what` (of `version`).
    pub(super) fn record(&self, tier: String, what: &Invalidation, version: u64) {
        let mut list = self.list.lock();
        list.push(Miss { tier, what: what.clone(), version });
        self.count.store(list.len(), Ordering::Release);
        self.persist(&list);
    }

    /// Whether an invalidation `tier` missed covers an entry it returned.
    pub(super) fn covers(&self, tier: &str, key: &[u8], meta: &EntryMeta) -> bool {
        if self.len() == 0 {
            return false;
        }
        self.list
            .lock()
            .iter()
            .any(|m| m.tier == tier && m.version > meta.version && m.what.matches(key, meta))
    }

    /// The misses, oldest first.
    pub(super) fn snapshot(&self) -> Vec<Miss> {
        self.list.lock().clone()
    }

    /// Forgets `done` (applied to its tier).
    pub(super) fn applied(&self, done: &Miss) {
        let mut list = self.list.lock();
        list.retain(|m| m != done);
        self.count.store(list.len(), Ordering::Release);
        self.persist(&list);
    }

    /// Writes the list to the journal: a new file renamed over the old one, so a crash leaves
    /// one or the other. Owner-only: an erasure names its data subject.
    fn persist(&self, list: &[Miss]) {
        let Some(path) = &self.journal else { return };
        let write = || -> std::io::Result<()> {
            let tmp = path.with_extension("tmp");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            std::io::Write::write_all(&mut file, &serde_json::to_vec(list)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            // The list in memory still guards reads; the journal is for restarts.
            eprintln!("warning: could not write {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_cover_older_matching_entries_of_their_tier_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missed.json");
        let missed = Missed::open(Some(path.clone())).unwrap();
        missed.record(tier_id(1, "redis"), &Invalidation::Subject("alice".into()), 10);
        let mut meta =
            EntryMeta { subject: Some("alice".into()), version: 9, ..Default::default() };
        assert!(missed.covers("1:redis", b"k", &meta));
        assert!(!missed.covers("0:disk", b"k", &meta), "another tier took it");
        meta.version = 11;
        assert!(!missed.covers("1:redis", b"k", &meta), "written after the erasure");
        let again = Missed::open(Some(path.clone())).unwrap();
        assert_eq!(again.snapshot(), missed.snapshot());
        again.applied(&again.snapshot()[0]);
        assert_eq!(Missed::open(Some(path)).unwrap().len(), 0);
    }
}
