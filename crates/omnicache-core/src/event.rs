//! Cache events: everyone emits, events/analytics/security listen.

use crate::meta::RemovalCause;
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
