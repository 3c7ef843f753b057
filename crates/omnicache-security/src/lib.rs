//! # omnicache-security
//!
//! Security for cached data, plugged into `omnicache-core`'s seams. This first part is
//! encryption at rest: [`Encrypt`], an AES-256-GCM [`Transform`](omnicache_core::Transform)
//! on `ring`, over a [`KeyRing`] of versioned keys (one primary for new writes, older ones that
//! still decrypt, retired ones that do not), with rotation and key sources (base64, an
//! environment variable, a private key file, a development key). Key material is zeroized on
//! drop and never appears in a `Debug`, an error or a log line. [`Compress`] (LZ4) stacks
//! before it, so the tiers store compressed ciphertext. [`audit`] keeps a tamper-evident,
//! HMAC-chained log of what operators and clients did.
//!
//! ```
//! use omnicache_core::{Transform, TransformContext};
//! use omnicache_security::{Encrypt, KeyRing};
//! use std::sync::Arc;
//!
//! let ring = Arc::new(KeyRing::generate()?);
//! let enc = Encrypt::new(ring.clone(), "sessions");
//! let ctx = TransformContext::new(b"session:42", enc.key_id());
//! let sealed = enc.forward(b"alice", &ctx)?;
//! assert_ne!(&sealed[..], b"alice");
//! assert_eq!(enc.inverse(&sealed, &ctx)?, b"alice");
//! // Bound to its key: the same bytes under another key do not decrypt.
//! let elsewhere = TransformContext { key: b"session:43", ..ctx };
//! assert!(enc.inverse(&sealed, &elsewhere).is_err());
//! # Ok::<(), omnicache_core::Error>(())
//! ```

mod aead;
pub mod audit;
mod compress;
pub mod files;
mod keyring;
pub mod pii;
mod subject_keys;

pub use aead::{Encrypt, OVERHEAD};
pub use compress::{Compress, DEFAULT_MAX_VALUE};
pub use keyring::{Key, KeyRing, KeyState, KEY_LEN, MAX_ENCRYPTIONS};
pub use subject_keys::SubjectKeys;
