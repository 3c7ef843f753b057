//! API keys: random, shown once, stored as SHA-256 hashes, compared in constant time.

use omnicache_core::{Error, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The hashes of the keys the server accepts.
#[derive(Clone)]
pub struct ApiKeys {
    hashes: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("count", &self.hashes.len()).finish()
    }
}

pub(crate) fn admin_key_file(dir: &Path) -> PathBuf {
    dir.join("admin.key")
}

fn keys_file(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
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

impl ApiKeys {
    /// Loads `keys.json` from `dir`, or creates an admin key, returning it once.
    pub fn load_or_create(dir: &Path) -> Result<(ApiKeys, Option<String>)> {
        let file = keys_file(dir);
        if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            let list: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!(
                    "{}: not a JSON list of key hashes: {e}",
                    file.display()
                ))
            })?;
            let hashes = list
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    unhex(h).ok_or_else(|| {
                        Error::invalid_input(format!(
                            "{}: entry {} is not a SHA-256 in hex",
                            file.display(),
                            i + 1
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok((ApiKeys { hashes }, None));
        }
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let key = format!("oc_{}", hex(&raw));
        write_private(&admin_key_file(dir), format!("{key}\n").as_bytes())?;
        let list = vec![hex(&hash(&key))];
        std::fs::write(&file, serde_json::to_vec_pretty(&list).unwrap_or_default())?;
        Ok((ApiKeys { hashes: vec![hash(&key)] }, Some(key)))
    }

    /// Whether `key` is one of ours; the comparison takes the same time wherever they differ.
    pub fn accepts(&self, key: &str) -> bool {
        let h = hash(key);
        let mut found = false;
        for known in &self.hashes {
            let diff = known.iter().zip(h.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found |= diff == 0;
        }
        found
    }
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
        let (keys, key) = ApiKeys::load_or_create(dir.path()).unwrap();
        let key = key.expect("first start makes a key");
        assert!(keys.accepts(&key));
        assert!(!keys.accepts("oc_wrong"));
        let stored = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!stored.contains(&key[3..]), "only the hash is stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(admin_key_file(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, none) = ApiKeys::load_or_create(dir.path()).unwrap();
        assert!(none.is_none(), "a second start shows no key");
        assert!(again.accepts(&key));
        std::fs::write(dir.path().join("keys.json"), "[\"zz\"]").unwrap();
        let err = ApiKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.message().contains("entry 1"), "{err}");
    }
}
