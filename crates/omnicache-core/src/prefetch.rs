//! Fetching ahead: a [`PrefetchAdvisor`] hears each lookup and names keys likely to be asked
//! for next; the tiered cache fetches them from its lower tiers into memory in the background.

use crate::clock::Timestamp;
use std::fmt;

/// One lookup, as an advisor hears it.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The key looked up.
    pub key: &'a [u8],
    /// Whether the cache had it (in memory or a tier).
    pub hit: bool,
    /// When, by the cache's clock.
    pub at: Timestamp,
}

/// What became of a key an advisor suggested and the cache fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefetchOutcome {
    /// It was read before it left memory: a miss avoided.
    Used,
    /// It left memory unread: a tier read and a slot spent for nothing.
    Wasted,
}

/// Suggests keys to fetch before they are asked for. The tiered cache calls
/// [`advise`](Self::advise) on the caller's path after every lookup, so it must be quick (a
/// table lookup; learn on another thread), and fetches what it suggests in the background,
/// rate-limited, from its lower tiers only.
pub trait PrefetchAdvisor: Send + Sync + fmt::Debug + 'static {
    /// Hears `access` and pushes onto `out` up to `limit` keys worth fetching now, the most
    /// likely first. Suggesting nothing is always correct.
    fn advise(&self, access: &Access<'_>, limit: usize, out: &mut Vec<Vec<u8>>);

    /// Hears what became of a key it suggested that the cache fetched. Default: nothing.
    fn outcome(&self, _key: &[u8], _outcome: PrefetchOutcome) {}
}

/// The default advisor: never suggests anything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPrefetch;

impl PrefetchAdvisor for NoPrefetch {
    fn advise(&self, _access: &Access<'_>, _limit: usize, _out: &mut Vec<Vec<u8>>) {}
}
