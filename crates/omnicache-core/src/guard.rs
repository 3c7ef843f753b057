//! A look at each value before a cache stores it: what a personal-data policy plugs into.
//!
//! A [`WriteGuard`] sees every value a cache is asked to store, before any copy of it exists,
//! and may refuse it ([`ErrorKind::Rejected`](crate::ErrorKind::Rejected)), replace it (a
//! redacted copy), tag it, or ask that it be encrypted wherever it goes below memory (the tag
//! [`ENCRYPT_TAG`], which the tiered cache's on-demand encryption honours even in a cache that
//! does not encrypt by default). `omnicache-security`'s PII guard is one.

use std::fmt;

use crate::Result;

/// The tag that asks for an entry to be encrypted in every tier below memory.
pub const ENCRYPT_TAG: &str = "omnicache:encrypt";

/// What a guard wants changed about a value it accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// The value to store instead (a redacted copy); `None` keeps it.
    pub replace: Option<Vec<u8>>,
    /// Tags to add to the entry.
    pub tags: Vec<String>,
    /// Store the entry encrypted below memory (adds [`ENCRYPT_TAG`]).
    pub encrypt: bool,
}

/// Inspects values before a cache stores them.
pub trait WriteGuard: Send + Sync + fmt::Debug + 'static {
    /// Looks at `value`, about to be stored under `key`. An error refuses the write; its
    /// message names why and must never contain the value or any part of it.
    fn inspect(&self, key: &[u8], value: &[u8]) -> Result<Inspection>;
}
