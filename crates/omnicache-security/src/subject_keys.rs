//! A data key per data subject, for crypto-shredding.
//!
//! With [`Encrypt::subject_keys`](crate::Encrypt::subject_keys), an entry written for a data
//! subject is encrypted under that subject's own random AES-256 key instead of the ring's
//! primary key. Erasing the subject then ends with [`SubjectKeys::destroy`]: the key is gone, so
//! every copy of the subject's entries anywhere (a tier that was down during the erase, a
//! backup of the SQLite file, a replica) stays unreadable forever.
//!
//! The store is a JSON file, owner-only, holding each data key wrapped (AES-256-GCM) under the
//! key ring's primary key, and indexed by a salted SHA-256 of the subject, so the file lists no
//! subject. It must not be backed up with the data: a backup of it would bring destroyed keys
//! back (keep it with the key file, which is a secret anyway).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use omnicache_core::{Error, ErrorKind, Result};
use ring::aead::{Aad, Nonce, NONCE_LEN};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keyring::{Key, KeyRing, KeyState, KEY_LEN};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const WRAP_AAD: &[u8] = b"omnicache-subject-key\x01";

/// The data keys of data subjects: with [`Encrypt::subject_keys`](crate::Encrypt::subject_keys)
/// each subject's entries are sealed under a random key of its own, and
/// [`destroy`](Self::destroy) makes every copy of them unreadable (crypto-shredding). Kept in
/// an owner-only JSON file, each key wrapped under the ring's primary key and indexed by a
/// salted hash, so the file names no subject. Back it up with the key file, not with the data.
pub struct SubjectKeys {
    ring: Arc<KeyRing>,
    path: Option<PathBuf>,
    salt: [u8; 16],
    keys: Mutex<HashMap<[u8; 32], Arc<Key>>>,
}

impl fmt::Debug for SubjectKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectKeys")
            .field("path", &self.path)
            .field("subjects", &self.len())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    salt: String,
    /// Hex of the salted hash of the subject -> the wrapped key.
    keys: std::collections::BTreeMap<String, Wrapped>,
}

#[derive(Serialize, Deserialize)]
struct Wrapped {
    /// The ring key that wraps it.
    key_id: u32,
    /// nonce || ciphertext || tag, base64.
    wrapped: String,
}

impl SubjectKeys {
    /// A store kept in memory only (its keys die with the process).
    pub fn in_memory(ring: Arc<KeyRing>) -> Result<SubjectKeys> {
        let mut salt = [0u8; 16];
        ring.random(&mut salt)?;
        Ok(SubjectKeys { ring, path: None, salt, keys: Mutex::new(HashMap::new()) })
    }

    /// The store in `path` (created owner-only if missing; refused if others may read it), its
    /// keys unwrapped with `ring`. Keys wrapped under a key that is no longer the ring's primary
    /// are wrapped again under the primary, so the old key can be retired.
    pub fn open(path: impl Into<PathBuf>, ring: Arc<KeyRing>) -> Result<SubjectKeys> {
        let path = path.into();
        if !path.exists() {
            let store = SubjectKeys { path: Some(path), ..SubjectKeys::in_memory(ring)? };
            store.persist(&store.locked())?;
            return Ok(store);
        }
        crate::files::check_private(&path)?;
        let text = Zeroizing::new(std::fs::read_to_string(&path)?);
        let file: File = serde_json::from_str(&text).map_err(|e| {
            Error::corrupt(format!("{}: not a subject key store: {e}", path.display()))
        })?;
        let salt: [u8; 16] = B64
            .decode(&file.salt)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Error::corrupt(format!("{}: bad salt", path.display())))?;
        let mut keys = HashMap::with_capacity(file.keys.len());
        let mut stale = false;
        for (id, w) in &file.keys {
            let id = hex_id(id)
                .ok_or_else(|| Error::corrupt(format!("{}: bad subject id", path.display())))?;
            let key = unwrap_key(&ring, w, &id).map_err(|e| e.context(path.display()))?;
            stale |= ring.primary().is_none_or(|p| p.id() != w.key_id);
            keys.insert(id, Arc::new(key));
        }
        let store = SubjectKeys { ring, path: Some(path), salt, keys: Mutex::new(keys) };
        if stale {
            store.persist(&store.locked())?;
        }
        Ok(store)
    }

    fn locked(&self) -> MutexGuard<'_, HashMap<[u8; 32], Arc<Key>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subjects with a key.
    pub fn len(&self) -> usize {
        self.locked().len()
    }

    /// True when no subject has a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn id(&self, subject: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(subject.as_bytes());
        ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    /// The subject's key; made (and stored) first when `create` and it has none.
    pub(crate) fn key_for(&self, subject: &str, create: bool) -> Result<Option<Arc<Key>>> {
        let id = self.id(subject);
        let mut keys = self.locked();
        if let Some(k) = keys.get(&id) {
            return Ok(Some(k.clone()));
        }
        if !create {
            return Ok(None);
        }
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        self.ring.random(material.as_mut())?;
        let key = Arc::new(Key::new(0, material, KeyState::Active)?);
        keys.insert(id, key.clone());
        if let Err(e) = self.persist(&keys) {
            keys.remove(&id);
            return Err(e);
        }
        Ok(Some(key))
    }

    /// Destroys the subject's key (crypto-shredding): whatever it encrypted can no longer be
    /// read anywhere. True if the subject had one.
    pub fn destroy(&self, subject: &str) -> Result<bool> {
        let id = self.id(subject);
        let mut keys = self.locked();
        let Some(gone) = keys.remove(&id) else { return Ok(false) };
        if let Err(e) = self.persist(&keys) {
            keys.insert(id, gone);
            return Err(e);
        }
        Ok(true)
    }

    fn persist(&self, keys: &HashMap<[u8; 32], Arc<Key>>) -> Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let wrapper = self
            .ring
            .primary()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "the key ring has no active key"))?;
        let mut file = File { version: 1, salt: B64.encode(self.salt), keys: Default::default() };
        for (id, key) in keys {
            file.keys.insert(hex(id), wrap_key(&self.ring, &wrapper, key, id)?);
        }
        let text = Zeroizing::new(
            serde_json::to_vec(&file).map_err(|e| Error::new(ErrorKind::Other, e.to_string()))?,
        );
        let tmp = path.with_extension("tmp");
        crate::files::write_private(&tmp, &text)?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))
    }
}

fn hex(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_id(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn aad(id: &[u8; 32], key_id: u32) -> Vec<u8> {
    let mut aad = WRAP_AAD.to_vec();
    aad.extend_from_slice(id);
    aad.extend_from_slice(&key_id.to_le_bytes());
    aad
}

fn wrap_key(ring: &KeyRing, wrapper: &Key, key: &Key, id: &[u8; 32]) -> Result<Wrapped> {
    let mut nonce = [0u8; NONCE_LEN];
    ring.random(&mut nonce)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(key.material());
    let tag = wrapper
        .aead()
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(id, wrapper.id())),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::new(ErrorKind::Codec, "AES-GCM refused to wrap a key"))?;
    out.extend_from_slice(tag.as_ref());
    let wrapped = B64.encode(&out);
    out.iter_mut().for_each(|b| *b = 0);
    Ok(Wrapped { key_id: wrapper.id(), wrapped })
}

fn unwrap_key(ring: &KeyRing, w: &Wrapped, id: &[u8; 32]) -> Result<Key> {
    let wrapper =
        ring.get(w.key_id).filter(|k| k.state() != KeyState::Retired).ok_or_else(|| {
            Error::corrupt(format!(
                "a subject key is wrapped under key {}, which the ring lacks or retired",
                w.key_id
            ))
        })?;
    let mut buf = Zeroizing::new(
        B64.decode(&w.wrapped)
            .map_err(|_| Error::corrupt("a wrapped subject key is not base64"))?,
    );
    if buf.len() != NONCE_LEN + KEY_LEN + 16 {
        return Err(Error::corrupt("a wrapped subject key has the wrong length"));
    }
    let nonce: [u8; NONCE_LEN] = buf[..NONCE_LEN].try_into().expect("checked length");
    let plain = wrapper
        .aead()
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(id, w.key_id)),
            &mut buf[NONCE_LEN..],
        )
        .map_err(|_| Error::corrupt("a wrapped subject key failed authentication"))?;
    let mut material = Zeroizing::new([0u8; KEY_LEN]);
    material.copy_from_slice(plain);
    Key::new(0, material, KeyState::Active)
}
