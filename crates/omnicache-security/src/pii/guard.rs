//! The PII policy as a cache's [`WriteGuard`]: every value scanned before it is stored.

use std::sync::atomic::{AtomicU64, Ordering};

use omnicache_core::{Error, ErrorKind, Inspection, Result, WriteGuard};
use serde::Serialize;

use super::{Detector, PiiKind, PiiPolicy};

/// Applies a [`PiiPolicy`] to the values a cache stores, counting what it did.
#[derive(Debug)]
pub struct PiiGuard {
    detector: Detector,
    policy: PiiPolicy,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    scanned: AtomicU64,
    skipped_binary: AtomicU64,
    rejected: AtomicU64,
    redacted: AtomicU64,
    encrypted: AtomicU64,
    by_kind: [AtomicU64; PiiKind::ALL.len()],
}

/// What a [`PiiGuard`] has done since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PiiGuardStats {
    /// Values scanned as text.
    pub scanned: u64,
    /// Values that were not UTF-8 and were stored unscanned.
    pub skipped_binary: u64,
    /// Writes refused.
    pub rejected: u64,
    /// Values stored with findings masked.
    pub redacted: u64,
    /// Values marked for encryption below memory.
    pub encrypted: u64,
    /// Values holding each kind, by wire name (kinds never seen are left out).
    pub kinds: std::collections::BTreeMap<&'static str, u64>,
}

impl PiiGuard {
    /// A guard applying `policy` with `detector`.
    pub fn new(detector: Detector, policy: PiiPolicy) -> PiiGuard {
        PiiGuard { detector, policy, counts: Counts::default() }
    }

    /// The policy it applies.
    pub fn policy(&self) -> &PiiPolicy {
        &self.policy
    }

    /// What it has done.
    pub fn stats(&self) -> PiiGuardStats {
        let c = &self.counts;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PiiGuardStats {
            scanned: load(&c.scanned),
            skipped_binary: load(&c.skipped_binary),
            rejected: load(&c.rejected),
            redacted: load(&c.redacted),
            encrypted: load(&c.encrypted),
            kinds: PiiKind::ALL
                .iter()
                .zip(&c.by_kind)
                .map(|(k, n)| (k.as_str(), load(n)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    /// Inspects a value's text (UTF-8 bytes), as [`WriteGuard::inspect`] does for a whole value;
    /// for callers that keep the text inside a framing of their own.
    pub fn inspect_text(&self, text: &[u8]) -> Result<Inspection> {
        if self.policy.allows_everything() {
            return Ok(Inspection::default());
        }
        let c = &self.counts;
        let outcome = match self.policy.apply(&self.detector, text) {
            Ok(o) => o,
            Err(refused) => {
                c.scanned.fetch_add(1, Ordering::Relaxed);
                c.rejected.fetch_add(1, Ordering::Relaxed);
                self.count_kinds(&refused.kinds);
                return Err(Error::new(ErrorKind::Rejected, refused.to_string()));
            }
        };
        if outcome.skipped_binary {
            c.skipped_binary.fetch_add(1, Ordering::Relaxed);
            return Ok(Inspection::default());
        }
        c.scanned.fetch_add(1, Ordering::Relaxed);
        self.count_kinds(&outcome.kinds);
        if outcome.redacted.is_some() {
            c.redacted.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.encrypt {
            c.encrypted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Inspection { replace: outcome.redacted, tags: outcome.tags, encrypt: outcome.encrypt })
    }

    fn count_kinds(&self, kinds: &[PiiKind]) {
        for k in kinds {
            if let Some(i) = PiiKind::ALL.iter().position(|x| x == k) {
                self.counts.by_kind[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl WriteGuard for PiiGuard {
    fn inspect(&self, _key: &[u8], value: &[u8]) -> Result<Inspection> {
        self.inspect_text(value)
    }
}
