//! What an entry carries besides its value, and why entries leave.

use crate::clock::Timestamp;
use std::fmt;

/// Metadata stored with every entry in the lower tiers (and carried by the [`Envelope`]).
///
/// [`Envelope`]: crate::Envelope
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryMeta {
    /// When the entry was written (nanoseconds since the Unix epoch).
    pub created: Timestamp,
    /// When it stops being served; `None` lives until evicted.
    pub expires: Option<Timestamp>,
    /// Tags for group invalidation.
    pub tags: Vec<String>,
    /// The data subject the value belongs to (for GDPR erase/export), if any.
    pub subject: Option<String>,
    /// A version that grows with each write of the key, for ordering and conflict checks.
    pub version: u64,
    /// The weight the memory cache charged for it (bytes, or 1 per entry).
    pub weight: u32,
}

impl EntryMeta {
    /// Metadata for an entry created at `created` with no expiry.
    pub fn new(created: Timestamp) -> Self {
        EntryMeta { created, ..Default::default() }
    }

    /// True when the entry must no longer be served at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// Nanoseconds left before expiry at `now`; `None` if it never expires.
    pub fn remaining(&self, now: Timestamp) -> Option<u64> {
        self.expires.map(|e| e.saturating_sub(now))
    }
}

/// Why an entry left a cache or tier. Every removal is reported with exactly one cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Evicted to respect the capacity or weight budget (or too large to be admitted).
    Capacity,
    /// Its time to live or time to idle ran out.
    Expired,
    /// Removed by a caller (`remove`, `invalidate`, `invalidate_all`, `invalidate_if`).
    Explicit,
    /// Overwritten by a newer value for the same key.
    Replaced,
    /// Dropped by an invalidation event (tag, prefix, dependency, another instance).
    Invalidated,
    /// Dropped because it was reported bad too often, or its tier is unhealthy.
    Health,
    /// Its stored bytes failed verification.
    Corrupt,
    /// Erased on a data subject's request (GDPR).
    Erased,
}

impl RemovalCause {
    /// Every cause, for tables and metrics.
    pub const ALL: [RemovalCause; 8] = [
        RemovalCause::Capacity,
        RemovalCause::Expired,
        RemovalCause::Explicit,
        RemovalCause::Replaced,
        RemovalCause::Invalidated,
        RemovalCause::Health,
        RemovalCause::Corrupt,
        RemovalCause::Erased,
    ];

    /// True when the cache chose to remove the entry (capacity or expiry), not a caller.
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Capacity | RemovalCause::Expired)
    }

    /// A stable snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalCause::Capacity => "capacity",
            RemovalCause::Expired => "expired",
            RemovalCause::Explicit => "explicit",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Invalidated => "invalidated",
            RemovalCause::Health => "health",
            RemovalCause::Corrupt => "corrupt",
            RemovalCause::Erased => "erased",
        }
    }

    /// A dense index, `0..ALL.len()`, for counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RemovalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_of_the_deadline() {
        let mut m = EntryMeta::new(100);
        assert!(!m.is_expired(u64::MAX));
        m.expires = Some(200);
        assert!(!m.is_expired(199));
        assert!(m.is_expired(200));
        assert_eq!(m.remaining(150), Some(50));
        assert_eq!(m.remaining(250), Some(0));
    }

    #[test]
    fn cause_indices_are_dense_and_names_unique() {
        for (i, c) in RemovalCause::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let names: std::collections::HashSet<_> =
            RemovalCause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), RemovalCause::ALL.len());
    }
}
