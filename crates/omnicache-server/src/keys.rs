//! API keys: random, shown once, stored as SHA-256 hashes, compared in constant time, each
//! with scopes (`read`, `write`, `admin`) and optionally limited to some caches.

use crate::config::{KeySpec, SCOPES};
use omnicache_core::{Error, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) fn admin_key_file(dir: &Path) -> PathBuf {
    dir.join("admin.key")
}

fn keys_file(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read entries, keys, stats and exports.
    Read,
    /// Write, delete and invalidate entries; warm and import.
    Write,
    /// Create, change and delete caches; manage keys.
    Admin,
}

impl Scope {
    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Admin => 4,
        }
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

fn scope_bits(names: &[String]) -> u8 {
    let mut bits = 0;
    for n in names {
        bits |= match n.as_str() {
            "read" => 1,
            "write" => 2,
            // admin implies the others.
            "admin" => 7,
            _ => 0,
        };
    }
    bits
}

/// The key a request came with: its name, scopes and caches.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The key's name.
    pub name: String,
    bits: u8,
    caches: Option<Vec<String>>,
}

impl Grant {
    /// Whether the key has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.bits & scope.bit() != 0
    }

    /// Whether the key may use `cache` at all.
    pub fn covers(&self, cache: &str) -> bool {
        self.caches.as_ref().is_none_or(|c| c.iter().any(|n| n == cache))
    }

    /// Whether the key may use every cache.
    pub fn covers_all(&self) -> bool {
        self.caches.is_none()
    }
}

#[derive(Debug, Clone)]
struct Known {
    spec: KeySpec,
    hash: [u8; 32],
    from_config: bool,
    /// Built once, handed to every request with this key.
    grant: Arc<Grant>,
}

impl Known {
    fn new(spec: KeySpec, hash: [u8; 32], from_config: bool) -> Known {
        let grant = Arc::new(Grant {
            name: spec.name.clone(),
            bits: scope_bits(&spec.scopes),
            caches: spec.caches.clone(),
        });
        Known { spec, hash, from_config, grant }
    }
}

/// The keys the server accepts: those in `keys.json` and those in the config.
pub struct ApiKeys {
    known: std::sync::RwLock<Vec<Known>>,
    file: PathBuf,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("count", &self.r().len()).finish()
    }
}

/// A key as listed by `GET /keys`: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// The caches it may use; absent for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caches: Option<Vec<String>>,
    /// Declared in the config file (cannot be revoked over the API).
    pub from_config: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredKeys {
    Specs(Vec<KeySpec>),
    /// The first format: bare hashes of admin keys.
    Hashes(Vec<String>),
}

fn new_key() -> String {
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("oc_{}", hex(&raw))
}

impl ApiKeys {
    /// Loads `keys.json` from `dir`, or creates it with an admin key, returned once; then adds
    /// the keys the config declares.
    pub fn load_or_create(
        dir: &Path,
        config_keys: &[KeySpec],
    ) -> Result<(ApiKeys, Option<String>)> {
        let file = keys_file(dir);
        let mut new_admin = None;
        let stored: Vec<KeySpec> = if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            match serde_json::from_str::<StoredKeys>(&text) {
                Ok(StoredKeys::Specs(s)) => s,
                Ok(StoredKeys::Hashes(h)) => h
                    .into_iter()
                    .map(|sha256| KeySpec {
                        name: "admin".into(),
                        sha256,
                        scopes: vec!["admin".into()],
                        caches: None,
                    })
                    .collect(),
                Err(e) => {
                    return Err(Error::invalid_input(format!(
                        "{}: not a JSON list of keys: {e}",
                        file.display()
                    )))
                }
            }
        } else {
            let key = new_key();
            write_private(&admin_key_file(dir), format!("{key}\n").as_bytes())?;
            let spec = KeySpec {
                name: "admin".into(),
                sha256: hex(&hash(&key)),
                scopes: vec!["admin".into()],
                caches: None,
            };
            new_admin = Some(key);
            vec![spec]
        };
        let mut known = Vec::new();
        for (i, spec) in stored.into_iter().enumerate() {
            let hash = unhex(&spec.sha256).ok_or_else(|| {
                Error::invalid_input(format!(
                    "{}: entry {} is not a SHA-256 in hex",
                    file.display(),
                    i + 1
                ))
            })?;
            known.push(Known::new(spec, hash, false));
        }
        for spec in config_keys {
            let hash = unhex(&spec.sha256.to_ascii_lowercase()).ok_or_else(|| {
                Error::invalid_input(format!("config key {:?}: sha256 is not hex", spec.name))
            })?;
            known.push(Known::new(spec.clone(), hash, true));
        }
        let keys = ApiKeys { known: std::sync::RwLock::new(known), file };
        if new_admin.is_some() {
            keys.save()?;
        }
        Ok((keys, new_admin))
    }

    fn r(&self) -> std::sync::RwLockReadGuard<'_, Vec<Known>> {
        self.known.read().unwrap_or_else(|e| e.into_inner())
    }

    fn w(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Known>> {
        self.known.write().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self) -> Result<()> {
        let specs: Vec<KeySpec> =
            self.r().iter().filter(|k| !k.from_config).map(|k| k.spec.clone()).collect();
        replace_private(&self.file, &serde_json::to_vec_pretty(&specs).unwrap_or_default())
    }

    /// The grant of `key`, if it is one of ours. Every known hash is compared, each in the
    /// same time wherever they differ.
    pub fn authorize(&self, key: &str) -> Option<Arc<Grant>> {
        let h = hash(key);
        let mut found = None;
        for known in self.r().iter() {
            let diff = known.hash.iter().zip(h.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(known.grant.clone());
            }
        }
        found
    }

    /// Makes a key with `scopes`, limited to `caches` if given, stores its hash and returns it.
    pub fn create(
        &self,
        name: &str,
        scopes: &[String],
        caches: Option<Vec<String>>,
    ) -> std::result::Result<String, String> {
        if name.is_empty() || name.len() > 64 {
            return Err("a key name is 1 to 64 characters".into());
        }
        if scopes.is_empty() {
            return Err("give at least one scope of read, write, admin".into());
        }
        if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(format!("unknown scope {bad:?}; expected read, write, admin"));
        }
        if self.r().iter().any(|k| k.spec.name == name) {
            return Err(format!("a key named {name:?} exists"));
        }
        let key = new_key();
        let hash = hash(&key);
        let spec =
            KeySpec { name: name.to_string(), sha256: hex(&hash), scopes: scopes.to_vec(), caches };
        self.w().push(Known::new(spec, hash, false));
        self.save().map_err(|e| e.to_string())?;
        Ok(key)
    }

    /// Removes the stored key `name`; `Ok(false)` if there is none. Keys from the config
    /// cannot be revoked here.
    pub fn revoke(&self, name: &str) -> std::result::Result<bool, RevokeError> {
        let mut known = self.w();
        if known.iter().any(|k| k.spec.name == name && k.from_config) {
            return Err(RevokeError::InConfig(format!(
                "the key {name:?} is declared in the config file; remove it there"
            )));
        }
        let full_admin = |k: &Known| k.grant.has(Scope::Admin) && k.grant.caches.is_none();
        let admins_left = known.iter().filter(|k| k.spec.name != name && full_admin(k)).count();
        if admins_left == 0 && known.iter().any(|k| k.spec.name == name && full_admin(k)) {
            return Err(RevokeError::LastAdmin(format!(
                "{name:?} is the last admin key: revoking it would lock everyone out; make another first (omnicache key create NAME --scope admin)"
            )));
        }
        let before = known.len();
        known.retain(|k| k.spec.name != name);
        let removed = known.len() != before;
        drop(known);
        if removed {
            self.save().map_err(|e| RevokeError::Storage(e.to_string()))?;
        }
        Ok(removed)
    }

    /// Makes a new admin key offline, on the server's own machine, for when every admin key
    /// is lost: takes the data directory's lock (so no server runs on it), adds the key to
    /// `keys.json`, writes it to `admin.key` (0600) and returns it.
    pub fn reset_admin(dir: &Path) -> Result<String> {
        let _lock = crate::datadir::open(dir)?;
        let (keys, created) = ApiKeys::load_or_create(dir, &[])?;
        if let Some(key) = created {
            return Ok(key);
        }
        let taken: Vec<String> = keys.list().into_iter().map(|k| k.name).collect();
        let name = (1..)
            .map(|i| format!("admin-reset-{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_else(|| "admin-reset".into());
        let key = keys.create(&name, &["admin".to_string()], None).map_err(Error::invalid_input)?;
        replace_private(&admin_key_file(dir), format!("{key}\n").as_bytes())?;
        Ok(key)
    }

    /// Every key, without the keys themselves.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.r()
            .iter()
            .map(|k| KeyInfo {
                name: k.spec.name.clone(),
                scopes: k.spec.scopes.clone(),
                caches: k.spec.caches.clone(),
                from_config: k.from_config,
            })
            .collect()
    }
}

/// Why a key cannot be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeError {
    /// It is declared in the config file.
    InConfig(String),
    /// It is the last key with the admin scope over every cache.
    LastAdmin(String),
    /// `keys.json` could not be written.
    Storage(String),
}

/// Replaces `path` with `bytes` atomically (a temporary file renamed over it), readable by the
/// owner only: data-directory files can hold secrets (key hashes, tier URLs with passwords).
pub(crate) fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(bytes)?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_key_is_made_once_stored_hashed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, key) = ApiKeys::load_or_create(dir.path(), &[]).unwrap();
        let key = key.expect("first start makes a key");
        assert!(keys.authorize(&key).is_some());
        assert!(keys.authorize("oc_wrong").is_none());
        let stored = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!stored.contains(&key[3..]), "only the hash is stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(admin_key_file(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, none) = ApiKeys::load_or_create(dir.path(), &[]).unwrap();
        assert!(none.is_none(), "a second start shows no key");
        assert!(again.authorize(&key).is_some());
        std::fs::write(dir.path().join("keys.json"), "[\"zz\"]").unwrap();
        let err = ApiKeys::load_or_create(dir.path(), &[]).unwrap_err();
        assert!(err.message().contains("entry 1"), "{err}");
    }

    #[test]
    fn scopes_caches_creation_and_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let reader = "reader-key";
        let config = [KeySpec {
            name: "cfg".into(),
            sha256: hex(&hash(reader)),
            scopes: vec!["read".into()],
            caches: Some(vec!["users".into()]),
        }];
        let (keys, admin) = ApiKeys::load_or_create(dir.path(), &config).unwrap();
        let admin = keys.authorize(&admin.unwrap()).unwrap();
        assert!(admin.has(Scope::Read) && admin.has(Scope::Write) && admin.has(Scope::Admin));
        assert!(admin.covers("anything") && admin.covers_all());
        let r = keys.authorize(reader).unwrap();
        assert!(r.has(Scope::Read) && !r.has(Scope::Write) && !r.has(Scope::Admin));
        assert!(r.covers("users") && !r.covers("orders"));
        let w = keys.create("writer", &["write".into()], None).unwrap();
        let g = keys.authorize(&w).unwrap();
        assert!(g.has(Scope::Write) && !g.has(Scope::Read), "write does not imply read");
        assert!(keys.create("writer", &["read".into()], None).is_err(), "names are unique");
        assert!(keys.create("x", &["root".into()], None).unwrap_err().contains("root"));
        assert!(keys.revoke("cfg").is_err(), "config keys stay");
        // A restart keeps the created key and the config's, not twice.
        let (again, _) = ApiKeys::load_or_create(dir.path(), &config).unwrap();
        assert!(again.authorize(&w).is_some() && again.authorize(reader).is_some());
        assert_eq!(again.list().len(), 3);
        assert_eq!(again.revoke("writer"), Ok(true));
        assert!(again.authorize(&w).is_none());
        let (third, _) = ApiKeys::load_or_create(dir.path(), &config).unwrap();
        assert!(third.authorize(&w).is_none(), "revocation is stored");
        // The first format, bare hashes, still loads as admin keys.
        std::fs::write(dir.path().join("keys.json"), format!("[\"{}\"]", hex(&hash("old"))))
            .unwrap();
        let (old, _) = ApiKeys::load_or_create(dir.path(), &[]).unwrap();
        assert!(old.authorize("old").unwrap().has(Scope::Admin));
    }
}
