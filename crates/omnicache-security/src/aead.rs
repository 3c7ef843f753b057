//! Encryption at rest: an AES-256-GCM [`Transform`] over a [`KeyRing`].
//!
//! Each write draws a fresh 96-bit nonce from the system's CSPRNG and stores `nonce ||
//! ciphertext || tag`. The associated data binds the cache's name, the entry's key, the key id
//! and the envelope format version, so a ciphertext copied to another key, another cache or
//! another key id fails to decrypt instead of being served as someone else's value.

use crate::keyring::{Key, KeyRing, KeyState};
use crate::subject_keys::SubjectKeys;
use omnicache_core::envelope::{flags, FORMAT_VERSION};
use omnicache_core::{Error, ErrorKind, Result, Transform, TransformContext};
use ring::aead::{Aad, Nonce, NONCE_LEN};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes AES-GCM adds to a value: the nonce in front, the tag behind.
pub const OVERHEAD: usize = NONCE_LEN + 16;

/// The encrypting transform of one cache. Stack it on a tiered cache with
/// `TieredCacheBuilder::transform`: L1 keeps values in the clear in memory, every tier below
/// holds ciphertext.
pub struct Encrypt {
    ring: Arc<KeyRing>,
    cache: String,
    refused: AtomicU64,
    subjects: Option<Arc<SubjectKeys>>,
}

impl fmt::Debug for Encrypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypt").field("cache", &self.cache).field("ring", &self.ring).finish()
    }
}

impl Encrypt {
    /// Encrypts for the cache named `cache` with `ring`'s primary key.
    pub fn new(ring: Arc<KeyRing>, cache: impl Into<String>) -> Encrypt {
        Encrypt { ring, cache: cache.into(), refused: AtomicU64::new(0), subjects: None }
    }

    /// Encrypts each entry that has a data subject under that subject's own key from `keys`
    /// (made on its first write), so destroying the key ([`SubjectKeys::destroy`]) makes every
    /// copy of the subject's entries unreadable (crypto-shredding). Entries without a subject
    /// use the ring as before. Default: off.
    #[must_use]
    pub fn subject_keys(mut self, keys: Arc<SubjectKeys>) -> Encrypt {
        self.subjects = Some(keys);
        self
    }

    /// The ring.
    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Decryptions refused so far: an unknown or retired key id, or a ciphertext that failed
    /// authentication (tampered, or bound to another key, cache or key id).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn aad(&self, key: &[u8], key_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + self.cache.len() + key.len());
        aad.extend_from_slice(b"omnicache-aead\x01");
        aad.push(FORMAT_VERSION);
        aad.extend_from_slice(&(self.cache.len() as u32).to_le_bytes());
        aad.extend_from_slice(self.cache.as_bytes());
        aad.extend_from_slice(&(key.len() as u32).to_le_bytes());
        aad.extend_from_slice(key);
        aad.extend_from_slice(&key_id.to_le_bytes());
        aad
    }

    fn refuse(&self, message: String) -> Error {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Error::new(ErrorKind::Codec, message)
    }
}

impl Transform for Encrypt {
    fn flag(&self) -> u8 {
        flags::ENCRYPTED
    }

    fn key_id(&self) -> u32 {
        self.ring.primary().map_or(0, |k| k.id())
    }

    fn forward(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        if let (Some(store), Some(subject)) = (&self.subjects, ctx.subject) {
            let key = store.key_for(subject, true)?.ok_or_else(|| {
                Error::new(ErrorKind::Unavailable, "the subject key store made no key")
            })?;
            return self.seal(&key, self.subject_aad(ctx, subject), input);
        }
        let mut key =
            self.ring.get(ctx.key_id).filter(|k| k.state() == KeyState::Active).ok_or_else(
                || Error::new(ErrorKind::Unavailable, "the key ring has no active key"),
            )?;
        if !key.count(self.ring.max_encryptions()) {
            // This key made as many encryptions as random nonces allow: move on. The entry
            // records the new key's id, since the tiered cache reads `key_id` before each write
            // only once; so encrypt under the key id it was told, rotated or not.
            self.ring.rotate()?;
            key = self.ring.primary().ok_or_else(|| {
                Error::new(ErrorKind::Unavailable, "the key ring has no active key")
            })?;
            if key.id() != ctx.key_id {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("key {} reached its encryption limit; the ring rotated", ctx.key_id),
                ));
            }
        }
        self.seal(&key, self.aad(ctx.key, ctx.key_id), input)
    }

    fn inverse(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        if input.len() < OVERHEAD {
            return Err(self.refuse(format!("ciphertext too short ({} bytes)", input.len())));
        }
        let mut subject_key_gone = false;
        if let (Some(store), Some(subject)) = (&self.subjects, ctx.subject) {
            match store.key_for(subject, false)? {
                Some(key) => {
                    if let Some(plain) = open(&key, self.subject_aad(ctx, subject), input) {
                        return Ok(plain);
                    }
                    // Written under the ring's key before subject keys were on: try that.
                }
                None => subject_key_gone = true,
            }
        }
        let id = ctx.key_id;
        let key = match self.ring.get(id) {
            Some(k) if k.state() != KeyState::Retired => k,
            Some(_) => return Err(self.refuse(format!("the entry's key {id} is retired"))),
            None => return Err(self.refuse(format!("the entry's key {id} is not in the ring"))),
        };
        open(&key, self.aad(ctx.key, id), input).ok_or_else(|| {
            if subject_key_gone {
                self.refuse(
                    "the entry's data subject has no key (erased): it cannot be read".into(),
                )
            } else {
                self.refuse(format!("the entry does not decrypt under key {id}"))
            }
        })
    }
}

impl Encrypt {
    /// `nonce || ciphertext || tag` of `input` under `key`, a fresh random nonce.
    fn seal(&self, key: &Key, aad: Vec<u8>, input: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.ring.random(&mut nonce)?;
        let mut out = Vec::with_capacity(input.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(input);
        let tag = key
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| Error::new(ErrorKind::Codec, "AES-GCM refused to encrypt"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The associated data of an entry sealed under its subject's key: the ring's, in another
    /// domain, with the subject bound too.
    fn subject_aad(&self, ctx: &TransformContext<'_>, subject: &str) -> Vec<u8> {
        let mut aad = self.aad(ctx.key, 0);
        aad[14] = 0x02;
        aad.extend_from_slice(&(subject.len() as u32).to_le_bytes());
        aad.extend_from_slice(subject.as_bytes());
        aad
    }
}

/// The plaintext of `nonce || ciphertext || tag`, if it authenticates under `key`.
fn open(key: &Key, aad: Vec<u8>, input: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = input.get(..NONCE_LEN)?.try_into().ok()?;
    let mut buf = input[NONCE_LEN..].to_vec();
    let n = key
        .aead()
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}
