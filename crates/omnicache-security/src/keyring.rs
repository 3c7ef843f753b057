//! Keys and their ring: ids, states, the primary key for new writes, rotation, and the sources
//! keys come from (base64, an environment variable, a key file, or a generated development key).

use crate::files::{check_private, write_private};
use omnicache_core::{Error, ErrorKind, Result};
use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

/// The length of an AES-256 key.
pub const KEY_LEN: usize = 32;

/// Encryptions one key may make with random 96-bit nonces before the ring moves on: NIST SP
/// 800-38D's bound for random nonces is 2^32 invocations per key.
pub const MAX_ENCRYPTIONS: u64 = 1 << 32;

/// What a key may still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Encrypts new writes (the primary) and decrypts.
    Active,
    /// Decrypts entries written under it; encrypts nothing new.
    DecryptOnly,
    /// Neither: entries still under it cannot be read.
    Retired,
}

/// One key: its id, state and material (zeroized on drop), and how many encryptions it made.
pub struct Key {
    id: u32,
    state: RwLock<KeyState>,
    material: Zeroizing<[u8; KEY_LEN]>,
    aead: LessSafeKey,
    encryptions: AtomicU64,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the material.
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("state", &self.state())
            .field("encryptions", &self.encryptions())
            .finish_non_exhaustive()
    }
}

impl Key {
    pub(crate) fn new(id: u32, material: Zeroizing<[u8; KEY_LEN]>, state: KeyState) -> Result<Key> {
        let unbound = UnboundKey::new(&AES_256_GCM, material.as_ref())
            .map_err(|_| Error::invalid_input("an AES-256 key must be 32 bytes"))?;
        Ok(Key {
            id,
            state: RwLock::new(state),
            material,
            aead: LessSafeKey::new(unbound),
            encryptions: AtomicU64::new(0),
        })
    }

    /// The key's id, recorded in every envelope it encrypts.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// What the key may do now.
    pub fn state(&self) -> KeyState {
        *self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Encryptions made with this key by this process.
    pub fn encryptions(&self) -> u64 {
        self.encryptions.load(Ordering::Relaxed)
    }

    pub(crate) fn material(&self) -> &[u8; KEY_LEN] {
        &self.material
    }

    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }

    /// Counts one encryption; false once the key has made [`KeyRing::max_encryptions`].
    pub(crate) fn count(&self, max: u64) -> bool {
        self.encryptions.fetch_add(1, Ordering::Relaxed) < max
    }
}

/// The keys of a cache (or a server): one primary that encrypts new writes, older ones that
/// still decrypt, retired ones that do nothing. Shared by the transforms of every cache that
/// uses it. Its `Debug` shows ids, states and counts, never key material.
pub struct KeyRing {
    keys: RwLock<BTreeMap<u32, Arc<Key>>>,
    primary: RwLock<Option<u32>>,
    rng: SystemRandom,
    max_encryptions: u64,
    rotations: AtomicU64,
    forced: AtomicU64,
    /// The key file the ring was loaded from: rotations are written back to it.
    file: Option<std::path::PathBuf>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.read();
        f.debug_struct("KeyRing")
            .field("primary", &*self.primary.read().unwrap_or_else(|e| e.into_inner()))
            .field("keys", &keys.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A key as a key file stores it.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    id: u32,
    state: KeyState,
    key: String,
}

/// A key file: `{"primary": 2, "keys": [{"id": 1, "state": "decrypt_only", "key": "<base64>"}, ..]}`.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    primary: u32,
    keys: Vec<StoredKey>,
}

fn decode_key(text: &str, what: &str) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    use base64::Engine as _;
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| Error::invalid_input(format!("{what}: not base64")))?,
    );
    if bytes.len() != KEY_LEN {
        return Err(Error::invalid_input(format!(
            "{what}: an AES-256 key is {KEY_LEN} bytes, this one is {}",
            bytes.len()
        )));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

impl Default for KeyRing {
    fn default() -> Self {
        KeyRing::new()
    }
}

impl KeyRing {
    /// An empty ring: it encrypts nothing until a key is added or generated.
    pub fn new() -> KeyRing {
        KeyRing {
            keys: RwLock::default(),
            primary: RwLock::default(),
            rng: SystemRandom::new(),
            max_encryptions: MAX_ENCRYPTIONS,
            rotations: AtomicU64::new(0),
            forced: AtomicU64::new(0),
            file: None,
        }
    }

    /// Rotates to a fresh key after `n` encryptions with one key instead of
    /// [`MAX_ENCRYPTIONS`] (lower only: for tests and stricter policies).
    pub fn with_max_encryptions(mut self, n: u64) -> KeyRing {
        self.max_encryptions = n.clamp(1, MAX_ENCRYPTIONS);
        self
    }

    /// Encryptions one key makes before the ring rotates on its own.
    pub fn max_encryptions(&self) -> u64 {
        self.max_encryptions
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<Key>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a key under `id` (1 or more: 0 means "no key" in an envelope); the first `Active`
    /// key becomes the primary. An id already present is refused.
    pub fn add(&self, id: u32, material: [u8; KEY_LEN], state: KeyState) -> Result<()> {
        self.insert(id, Zeroizing::new(material), state)
    }

    fn insert(&self, id: u32, material: Zeroizing<[u8; KEY_LEN]>, state: KeyState) -> Result<()> {
        if id == 0 {
            return Err(Error::invalid_input("key id 0 is reserved for \"no key\""));
        }
        let key = Arc::new(Key::new(id, material, state)?);
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.contains_key(&id) {
            return Err(Error::invalid_input(format!("key id {id} is already in the ring")));
        }
        keys.insert(id, key);
        drop(keys);
        let mut primary = self.primary.write().unwrap_or_else(|e| e.into_inner());
        if primary.is_none() && state == KeyState::Active {
            *primary = Some(id);
        }
        Ok(())
    }

    /// Adds a key given as base64 (32 bytes once decoded).
    pub fn add_base64(&self, id: u32, text: &str, state: KeyState) -> Result<()> {
        self.insert(id, decode_key(text, &format!("key {id}"))?, state)
    }

    /// A ring with one active key (id 1) from the environment variable `var` (base64).
    pub fn from_env(var: &str) -> Result<KeyRing> {
        let text = std::env::var(var).map_err(|_| {
            Error::invalid_input(format!("{var} is not set (a base64 AES-256 key)"))
        })?;
        let ring = KeyRing::new();
        ring.insert(1, decode_key(&text, var)?, KeyState::Active)?;
        Ok(ring)
    }

    /// A ring with one active key (id 1) generated now from the system's CSPRNG. Save it
    /// ([`save`](Self::save)) to keep it: what an unsaved ring encrypts cannot be read by any
    /// other process or after a restart.
    pub fn generate() -> Result<KeyRing> {
        let ring = KeyRing::new();
        ring.rotate()?;
        Ok(ring)
    }

    /// Loads a key file (see [`save`](Self::save)). A file that others than its owner may
    /// read is refused, naming it.
    pub fn load(path: &Path) -> Result<KeyRing> {
        check_private(path)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::from(e).context(format!("reading the key file {}", path.display()))
        })?);
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| {
            Error::invalid_input(format!("the key file {} is not a key ring: {e}", path.display()))
        })?;
        let mut ring = KeyRing::new();
        ring.file = Some(path.to_path_buf());
        for k in &file.keys {
            let key = Zeroizing::new(k.key.clone());
            ring.insert(
                k.id,
                decode_key(&key, &format!("key {} in {}", k.id, path.display()))?,
                k.state,
            )?;
        }
        ring.set_primary(file.primary)?;
        Ok(ring)
    }

    /// Writes the ring to `path` (mode 0600, replaced atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        use base64::Engine as _;
        let keys = self.read();
        let file = KeyFile {
            primary: self.primary().map_or(0, |k| k.id),
            keys: keys
                .values()
                .map(|k| StoredKey {
                    id: k.id,
                    state: k.state(),
                    key: base64::engine::general_purpose::STANDARD.encode(k.material.as_ref()),
                })
                .collect(),
        };
        drop(keys);
        let text =
            Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| {
                Error::new(ErrorKind::Other, "encoding the key ring").with_source(e)
            })?);
        drop(file);
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::from(e).context(format!("replacing {}", path.display())))
    }

    /// The key new writes use, if any.
    pub fn primary(&self) -> Option<Arc<Key>> {
        let id = (*self.primary.read().unwrap_or_else(|e| e.into_inner()))?;
        self.get(id)
    }

    /// Makes `id` (active) the key of new writes.
    pub fn set_primary(&self, id: u32) -> Result<()> {
        let key = self
            .get(id)
            .ok_or_else(|| Error::invalid_input(format!("no key with id {id} in the ring")))?;
        if key.state() != KeyState::Active {
            return Err(Error::invalid_input(format!("key {id} is not active")));
        }
        *self.primary.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
        Ok(())
    }

    /// The key with `id`, whatever its state.
    pub fn get(&self, id: u32) -> Option<Arc<Key>> {
        self.read().get(&id).cloned()
    }

    /// Every key, by id.
    pub fn keys(&self) -> Vec<Arc<Key>> {
        self.read().values().cloned().collect()
    }

    /// Generates a key from the system's CSPRNG, makes it the primary, and leaves the previous
    /// primary decrypt-only. Returns the new key's id. A ring loaded from a key file writes the
    /// new key back to it first: a key the file does not have would be lost at the next start,
    /// and what it encrypted with it.
    pub fn rotate(&self) -> Result<u32> {
        let (id, previous) = self.rotate_in_memory()?;
        if let Some(path) = &self.file {
            if let Err(e) = self.save(path) {
                self.undo_rotation(id, previous);
                return Err(e.context("rotating: the key file could not be written; not rotated"));
            }
        }
        Ok(id)
    }

    /// Takes back the rotation to `id`: `previous` is primary and active again.
    fn undo_rotation(&self, id: u32, previous: Option<u32>) {
        self.keys.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
        *self.primary.write().unwrap_or_else(|e| e.into_inner()) = previous;
        if let Some(key) = previous.and_then(|p| self.get(p)) {
            *key.state.write().unwrap_or_else(|e| e.into_inner()) = KeyState::Active;
        }
        self.rotations.fetch_sub(1, Ordering::Relaxed);
    }

    /// The new key's id, and the primary before it.
    fn rotate_in_memory(&self) -> Result<(u32, Option<u32>)> {
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        self.rng
            .fill(material.as_mut())
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the system's CSPRNG failed"))?;
        let id = self.read().keys().next_back().map_or(1, |last| last + 1);
        self.insert(id, material, KeyState::Active)?;
        let previous = self.primary.write().unwrap_or_else(|e| e.into_inner()).replace(id);
        if let Some(old) = previous.filter(|&old| old != id).and_then(|old| self.get(old)) {
            *old.state.write().unwrap_or_else(|e| e.into_inner()) = KeyState::DecryptOnly;
        }
        self.rotations.fetch_add(1, Ordering::Relaxed);
        Ok((id, previous))
    }

    /// Rotations so far (by [`rotate`](Self::rotate), or on a key's encryption limit).
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// Sets a key's state. The primary cannot be made anything but active: rotate first.
    pub fn set_state(&self, id: u32, state: KeyState) -> Result<()> {
        let key = self
            .get(id)
            .ok_or_else(|| Error::invalid_input(format!("no key with id {id} in the ring")))?;
        let is_primary = self.primary().is_some_and(|p| p.id == id);
        if is_primary && state != KeyState::Active {
            return Err(Error::invalid_input(format!(
                "key {id} encrypts new writes; rotate to another key first"
            )));
        }
        *key.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(())
    }

    /// Retires key `id` (it decrypts nothing from now on), given how many stored entries
    /// still use it (`in_use`, from a re-encryption pass such as the tiered cache's
    /// `retransform`). Refused while any does, unless `force`: a forced retirement makes those
    /// entries unreadable (counted misses, deleted when read) and is counted
    /// ([`forced_retirements`](Self::forced_retirements)). Written back to the key file the
    /// ring was loaded from.
    pub fn retire(&self, id: u32, in_use: u64, force: bool) -> Result<()> {
        if in_use > 0 && !force {
            return Err(Error::invalid_input(format!(
                "key {id} still encrypts {in_use} stored entries; let re-encryption rewrite \
                 them first, or force the retirement (they become unreadable)"
            )));
        }
        let before = self.get(id).map(|k| k.state());
        self.set_state(id, KeyState::Retired)?;
        if let Some(file) = &self.file {
            if let Err(e) = self.save(file) {
                if let Some(state) = before {
                    let _ = self.set_state(id, state);
                }
                return Err(e);
            }
        }
        if in_use > 0 {
            self.forced.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Retirements forced while entries still used the key.
    pub fn forced_retirements(&self) -> u64 {
        self.forced.load(Ordering::Relaxed)
    }

    pub(crate) fn random(&self, out: &mut [u8]) -> Result<()> {
        self.rng
            .fill(out)
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the system's CSPRNG failed"))
    }
}
