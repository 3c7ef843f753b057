//! The encrypting transform and its key ring: round trips, every kind of tampering and
//! misbinding refused, rotation (by hand and at the encryption limit), key sources, and no key
//! material in any `Debug` or error.

use base64::Engine as _;
use omnicache_core::{ErrorKind, Transform, TransformContext};
use omnicache_security::{Encrypt, KeyRing, KeyState, OVERHEAD};
use proptest::prelude::*;
use std::sync::Arc;

fn ring_with(material: [u8; 32]) -> Arc<KeyRing> {
    let ring = KeyRing::new();
    ring.add(1, material, KeyState::Active).unwrap();
    Arc::new(ring)
}

fn ctx<'a>(key: &'a [u8], enc: &Encrypt) -> TransformContext<'a> {
    TransformContext::new(key, enc.key_id())
}

#[test]
fn values_round_trip_and_each_write_has_its_own_nonce() {
    let enc = Encrypt::new(ring_with([7; 32]), "users");
    let c = ctx(b"user:1", &enc);
    let a = enc.forward(b"Ada Lovelace", &c).unwrap();
    let b = enc.forward(b"Ada Lovelace", &c).unwrap();
    assert_ne!(a, b, "a fresh nonce per write");
    assert_eq!(a.len(), b"Ada Lovelace".len() + OVERHEAD);
    assert!(!a.windows(4).any(|w| w == b"Ada "), "no plaintext in the ciphertext");
    assert_eq!(enc.inverse(&a, &c).unwrap(), b"Ada Lovelace");
    assert_eq!(enc.inverse(&enc.forward(b"", &c).unwrap(), &c).unwrap(), b"");
}

#[test]
fn a_ciphertext_moved_to_another_key_cache_or_key_id_is_refused() {
    let ring = ring_with([7; 32]);
    ring.add(2, [8; 32], KeyState::DecryptOnly).unwrap();
    let users = Encrypt::new(ring.clone(), "users");
    let orders = Encrypt::new(ring.clone(), "orders");
    let c = ctx(b"k", &users);
    let sealed = users.forward(b"secret", &c).unwrap();
    let refused = |enc: &Encrypt, key: &[u8], key_id: u32| {
        let e = enc.inverse(&sealed, &TransformContext::new(key, key_id)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Codec);
    };
    refused(&users, b"other", 1);
    refused(&orders, b"k", 1);
    refused(&users, b"k", 2);
    refused(&users, b"k", 9);
    assert_eq!(users.refused(), 3);
    assert_eq!(users.inverse(&sealed, &c).unwrap(), b"secret");
}

proptest! {
    #[test]
    fn flipping_any_bit_of_nonce_ciphertext_or_tag_is_refused(
        value in proptest::collection::vec(any::<u8>(), 0..64),
        at in any::<usize>(),
        bit in 0u8..8,
    ) {
        let enc = Encrypt::new(ring_with([3; 32]), "c");
        let c = ctx(b"key", &enc);
        let mut sealed = enc.forward(&value, &c).unwrap();
        let i = at % sealed.len();
        sealed[i] ^= 1 << bit;
        prop_assert_eq!(enc.inverse(&sealed, &c).unwrap_err().kind(), ErrorKind::Codec);
        prop_assert!(enc.inverse(&sealed[..i.min(OVERHEAD - 1)], &c).is_err(), "truncated");
    }
}

#[test]
fn rotation_keeps_old_entries_readable_until_their_key_is_retired() {
    let ring = Arc::new(KeyRing::generate().unwrap());
    let enc = Encrypt::new(ring.clone(), "c");
    let old_ctx = ctx(b"k", &enc);
    let old = enc.forward(b"v1", &old_ctx).unwrap();
    let new_id = ring.rotate().unwrap();
    assert_eq!(enc.key_id(), new_id, "new writes use the new key at once");
    assert_eq!(ring.get(old_ctx.key_id).unwrap().state(), KeyState::DecryptOnly);
    assert_eq!(enc.inverse(&old, &old_ctx).unwrap(), b"v1", "still decrypts");
    let new_ctx = ctx(b"k", &enc);
    assert_eq!(enc.inverse(&enc.forward(b"v2", &new_ctx).unwrap(), &new_ctx).unwrap(), b"v2");
    ring.set_state(old_ctx.key_id, KeyState::Retired).unwrap();
    assert!(enc.inverse(&old, &old_ctx).unwrap_err().to_string().contains("retired"));
    let primary = ring.primary().unwrap().id();
    assert!(ring.set_state(primary, KeyState::Retired).is_err(), "not the key of new writes");
}

#[test]
fn a_key_rotates_on_its_own_at_its_encryption_limit() {
    let ring = Arc::new(KeyRing::new().with_max_encryptions(3));
    ring.add(1, [1; 32], KeyState::Active).unwrap();
    let enc = Encrypt::new(ring.clone(), "c");
    for _ in 0..3 {
        let c = ctx(b"k", &enc);
        assert_eq!(c.key_id, 1);
        enc.forward(b"v", &c).unwrap();
    }
    // The fourth write under key 1 is refused (nothing is encrypted past the limit) and the
    // ring has moved on; the next write uses the new key.
    assert_eq!(
        enc.forward(b"v", &TransformContext::new(b"k", 1)).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!((ring.rotations(), enc.key_id()), (1, 2));
    let c = ctx(b"k", &enc);
    assert_eq!(enc.inverse(&enc.forward(b"v", &c).unwrap(), &c).unwrap(), b"v");
}

#[test]
fn key_files_are_private_and_keys_come_from_base64_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let ring = KeyRing::generate().unwrap();
    ring.rotate().unwrap();
    ring.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let back = KeyRing::load(&path).unwrap();
        assert_eq!(back.primary().unwrap().id(), 2);
        assert_eq!(back.get(1).unwrap().state(), KeyState::DecryptOnly);
        // Same material: what one encrypts, the other decrypts.
        let (a, b) = (Encrypt::new(Arc::new(ring), "c"), Encrypt::new(Arc::new(back), "c"));
        let c = ctx(b"k", &a);
        assert_eq!(b.inverse(&a.forward(b"v", &c).unwrap(), &c).unwrap(), b"v");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyRing::load(&path).unwrap_err();
        assert!(e.to_string().contains("0600"), "{e}");
    }
    let ring = KeyRing::new();
    assert!(ring.add_base64(1, "not base64!", KeyState::Active).is_err());
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
    assert!(ring
        .add_base64(1, &short, KeyState::Active)
        .unwrap_err()
        .to_string()
        .contains("32 bytes"));
    assert!(ring.add(0, [1; 32], KeyState::Active).is_err(), "id 0 means no key");
    assert!(KeyRing::from_env("OMNICACHE_TEST_SURELY_UNSET_KEY").is_err());
}

#[test]
fn no_key_material_in_debug_or_errors() {
    let material = [0x5au8; 32];
    let b64 = base64::engine::general_purpose::STANDARD.encode(material);
    let ring = KeyRing::new();
    ring.add_base64(1, &b64, KeyState::Active).unwrap();
    let ring = Arc::new(ring);
    let enc = Encrypt::new(ring.clone(), "c");
    let shown = format!("{ring:?} {enc:?} {:?}", ring.keys());
    assert!(
        !shown.contains(&b64) && !shown.contains("5a5a") && !shown.contains("90, 90"),
        "{shown}"
    );
    let err = ring.add_base64(1, &b64, KeyState::Active).unwrap_err().to_string();
    assert!(!err.contains(&b64), "{err}");
}

#[test]
fn a_ring_from_a_key_file_writes_every_rotation_back_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    KeyRing::generate().unwrap().save(&path).unwrap();
    let ring = Arc::new(KeyRing::load(&path).unwrap().with_max_encryptions(1));
    let enc = Encrypt::new(ring.clone(), "c");
    enc.forward(b"v", &ctx(b"k", &enc)).unwrap();
    // The limit rotates the ring on its own; the new key is in the file at once.
    assert!(enc.forward(b"v", &TransformContext::new(b"k", 1)).is_err());
    assert_eq!(KeyRing::load(&path).unwrap().primary().unwrap().id(), 2);
    // A file that cannot be written: the rotation is refused and taken back.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ring.rotate().is_err());
    assert_eq!(ring.primary().unwrap().id(), 2);
    assert_eq!(ring.primary().unwrap().state(), KeyState::Active);
}
