//! Conformance suites that every policy and tier implementation runs, and a reference tier.
//!
//! Enabled by the `testkit` feature; use it from `[dev-dependencies]`:
//!
//! ```toml
//! omnicache-core = { workspace = true, features = ["testkit"] }
//! ```
//!
//! The suites panic with a message naming the broken rule, like `assert!`, so they read as tests.

mod policy;
mod reference_tier;
mod tier;

pub use policy::{check_policy, SplitMix};
pub use reference_tier::MemoryTier;
pub use tier::{check_ordering_tier, check_tier};
