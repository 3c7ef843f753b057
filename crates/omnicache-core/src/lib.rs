//! # omnicache-core
//!
//! The vocabulary of OmniCache: the traits and shared types that every other crate plugs into.
//! It has no async runtime and no I/O dependencies, so it stays small and stable.
//!
//! | seam | what it is for | implemented by |
//! |---|---|---|
//! | [`EvictionPolicy`], [`AdmissionPolicy`], [`ExpiryPolicy`] | which entries stay | `omnicache-strategies` (and the planned `omnicache-ml`) |
//! | [`Tier`] / [`DynTier`] | storage below memory, bytes + [`EntryMeta`] | `omnicache-tiers` |
//! | [`Codec`], [`Transform`] | typed values to bytes, bytes to bytes | here (JSON); the planned `omnicache-security` |
//! | [`Envelope`] | the one binary format of a stored entry | here |
//! | [`CacheEvent`], [`EventListener`], [`RemovalCause`] | what happened to entries | everyone emits |
//! | [`StatsRecorder`], [`StatsSnapshot`] | counters | everyone records, analytics exports |
//! | [`Invalidation`] | what to drop | API, tiers, event bus |
//! | [`PrefetchAdvisor`] | keys worth fetching before they are asked for | the planned `omnicache-ml`; [`NoPrefetch`] by default |
//! | [`Clock`] | time, mockable | everyone |
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `json` | yes | [`JsonCodec`] |
//! | `postcard` | no | `PostcardCodec`, a compact binary codec |
//! | `testkit` | no | conformance suites for policies and tiers, and a reference tier |
//!
//! ## Example
//!
//! ```
//! use omnicache_core::{EntryMeta, Envelope, ErrorKind};
//!
//! let mut meta = EntryMeta::new(1_700_000_000_000_000_000);
//! meta.tags.push("users".into());
//! let bytes = Envelope::new(meta, b"hello".to_vec()).encode()?;
//! let back = Envelope::decode(&bytes)?;
//! assert_eq!(back.payload, b"hello");
//!
//! let mut flipped = bytes.clone();
//! flipped[40] ^= 1;
//! assert_eq!(Envelope::decode(&flipped).unwrap_err().kind(), ErrorKind::Corrupt);
//! # Ok::<(), omnicache_core::Error>(())
//! ```

pub mod clock;
pub mod codec;
pub mod envelope;
mod error;
pub mod event;
pub mod guard;
pub mod invalidation;
pub mod meta;
pub mod policy;
pub mod prefetch;
pub mod secret;
pub mod stats;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tier;

pub use clock::{Clock, MockClock, SharedClock, SystemClock, Timestamp};
#[cfg(feature = "json")]
pub use codec::JsonCodec;
#[cfg(feature = "postcard")]
pub use codec::PostcardCodec;
pub use codec::{Codec, RawCodec, Transform, TransformContext};
pub use envelope::{Encoding, Envelope};
pub use error::{Error, ErrorKind, Result};
pub use event::{CacheEvent, EventListener, Origin};
pub use guard::{Inspection, WriteGuard, ENCRYPT_TAG};
pub use invalidation::Invalidation;
pub use meta::{EntryMeta, RemovalCause};
pub use policy::{
    default_policy, AccessView, AdmissionPolicy, AdmitAll, DefaultPolicy, EntryInfo,
    EvictionPolicy, ExpiryPolicy, NoReads, PolicyFactory, ReadTracking, S3Fifo, S3FifoFactory,
    SlotId,
};
pub use prefetch::{Access, NoPrefetch, PrefetchAdvisor, PrefetchOutcome};
pub use stats::{AtomicStats, StatsRecorder, StatsSnapshot};
pub use tier::{DynTier, ScanPage, Tier, TierEntry, TierHealth, TierUsage};
