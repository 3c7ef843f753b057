//! Cache events: everyone emits, events/analytics/security listen.

use crate::clock::Timestamp;
use crate::invalidation::Invalidation;
use crate::meta::RemovalCause;
use crate::tier::TierHealth;
use std::fmt;

/// Something that happened to an entry, described without its value.
///
/// Keys are given as bytes (the tiers' view) or as the memory cache's key hash, so one listener
/// type serves every part of OmniCache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// An entry was written.
    Inserted {
        /// The key.
        key: Vec<u8>,
        /// Its weight.
        weight: u32,
    },
    /// An entry left, for `cause`.
    Removed {
        /// The key.
        key: Vec<u8>,
        /// Why.
        cause: RemovalCause,
    },
    /// An entry moved up to a faster tier after a hit below.
    Promoted {
        /// The key.
        key: Vec<u8>,
        /// The tier it was found in.
        from: String,
    },
    /// An entry evicted from a tier moved down to a slower one.
    Demoted {
        /// The key.
        key: Vec<u8>,
        /// The tier it went to.
        to: String,
    },
    /// An invalidation ran: what it covered, how many entries the tiers reported removed, and
    /// where it came from (a listener that forwards invalidations to other instances forwards
    /// only [`Origin::Local`] ones).
    Invalidated {
        /// What was invalidated.
        what: Invalidation,
        /// Entries removed, as the layer that removed the most reported it.
        removed: u64,
        /// Who asked.
        origin: Origin,
    },
    /// A tier's health as the cache sees it changed: it started failing (`Degraded`), its
    /// breaker opened (`Unavailable`), or it answered again (`Healthy`).
    TierHealthChanged {
        /// The tier's name.
        tier: String,
        /// Its health now.
        health: TierHealth,
        /// The last failure's reason (secrets redacted), when not healthy.
        reason: Option<String>,
    },
    /// A sampled lookup, for collectors of access patterns (heavy hitters, prefetching): one in
    /// every N keys by hash, each time it is looked up, when sampling is on.
    Accessed {
        /// The key.
        key: Vec<u8>,
        /// Whether the cache had it (in memory or a tier).
        hit: bool,
        /// When, by the cache's clock.
        at: Timestamp,
    },
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Origin {
    /// A caller of this process.
    #[default]
    Local,
    /// Another instance, by its id (applied from an event bus or a webhook).
    Remote(String),
}

/// Receives [`CacheEvent`]s. Called synchronously, outside any cache lock; keep it quick.
pub trait EventListener: Send + Sync + fmt::Debug + 'static {
    /// Handles one event.
    fn on_event(&self, event: &CacheEvent);
}

/// Collects events in memory; handy in tests.
#[derive(Debug, Default)]
pub struct EventLog {
    events: std::sync::Mutex<Vec<CacheEvent>>,
}

impl EventLog {
    /// The events seen so far, in order.
    pub fn events(&self) -> Vec<CacheEvent> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventListener for EventLog {
    fn on_event(&self, event: &CacheEvent) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_keeps_order() {
        let log = EventLog::default();
        log.on_event(&CacheEvent::Inserted { key: b"a".to_vec(), weight: 1 });
        log.on_event(&CacheEvent::Removed { key: b"a".to_vec(), cause: RemovalCause::Expired });
        let ev = log.events();
        assert_eq!(ev.len(), 2);
        assert!(matches!(ev[1], CacheEvent::Removed { cause: RemovalCause::Expired, .. }));
    }
}
