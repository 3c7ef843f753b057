//! Per-subject data keys: entries of a subject sealed under its own key, readable while it
//! lives, unreadable anywhere once it is destroyed; the store file lists no subject and
//! survives a reopen and a rotation of the ring.

use omnicache_core::{ErrorKind, Transform, TransformContext};
use omnicache_security::{Encrypt, KeyRing, KeyState, SubjectKeys};
use std::sync::Arc;

fn ctx<'a>(key: &'a [u8], enc: &Encrypt, subject: Option<&'a str>) -> TransformContext<'a> {
    TransformContext { key, key_id: enc.key_id(), subject }
}

#[test]
fn a_destroyed_subject_key_makes_its_entries_unreadable_and_no_one_elses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subject-keys.json");
    let ring = Arc::new(KeyRing::generate().unwrap());
    let keys = Arc::new(SubjectKeys::open(&path, ring.clone()).unwrap());
    let enc = Encrypt::new(ring.clone(), "c").subject_keys(keys.clone());
    let alice = enc.forward(b"alice's record", &ctx(b"k1", &enc, Some("alice"))).unwrap();
    let bob = enc.forward(b"bob's record", &ctx(b"k2", &enc, Some("bob"))).unwrap();
    let nobody = enc.forward(b"shared", &ctx(b"k3", &enc, None)).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(enc.inverse(&alice, &ctx(b"k1", &enc, Some("alice"))).unwrap(), b"alice's record");
    // Bound to the subject: alice's bytes under bob's name do not open.
    assert!(enc.inverse(&alice, &ctx(b"k1", &enc, Some("bob"))).is_err());
    // Not under the ring's key either: only the subject's key opens it.
    let plain = Encrypt::new(ring.clone(), "c");
    assert!(plain.inverse(&alice, &ctx(b"k1", &plain, Some("alice"))).is_err());

    // Reopened (a restart): the same keys, unwrapped with the ring; the file names no subject.
    let reopened = Arc::new(SubjectKeys::open(&path, ring.clone()).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("alice") && !text.contains("bob"), "{text}");
    let enc2 = Encrypt::new(ring.clone(), "c").subject_keys(reopened.clone());
    assert_eq!(enc2.inverse(&bob, &ctx(b"k2", &enc2, Some("bob"))).unwrap(), b"bob's record");

    assert!(reopened.destroy("alice").unwrap());
    assert!(!reopened.destroy("alice").unwrap(), "a second erase finds nothing");
    let err = enc2.inverse(&alice, &ctx(b"k1", &enc2, Some("alice"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Codec);
    assert!(err.to_string().contains("erased"), "{err}");
    assert_eq!(enc2.inverse(&bob, &ctx(b"k2", &enc2, Some("bob"))).unwrap(), b"bob's record");
    assert_eq!(enc2.inverse(&nobody, &ctx(b"k3", &enc2, None)).unwrap(), b"shared");
    // Gone from the file too: a fresh process cannot read alice's bytes either.
    let later = Arc::new(SubjectKeys::open(&path, ring.clone()).unwrap());
    let enc3 = Encrypt::new(ring, "c").subject_keys(later);
    assert!(enc3.inverse(&alice, &ctx(b"k1", &enc3, Some("alice"))).is_err());
    assert_eq!(enc3.inverse(&bob, &ctx(b"k2", &enc3, Some("bob"))).unwrap(), b"bob's record");
}

#[test]
fn a_rotation_rewraps_the_subject_keys_so_the_old_ring_key_can_retire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subject-keys.json");
    let ring = Arc::new(KeyRing::generate().unwrap());
    let keys = Arc::new(SubjectKeys::open(&path, ring.clone()).unwrap());
    let enc = Encrypt::new(ring.clone(), "c").subject_keys(keys);
    let sealed = enc.forward(b"v", &ctx(b"k", &enc, Some("alice"))).unwrap();
    let old = ring.primary().unwrap().id();
    ring.rotate().unwrap();
    // Opening with the rotated ring wraps every subject key under the new primary ...
    drop(SubjectKeys::open(&path, ring.clone()).unwrap());
    // ... so the old key may retire and the store still opens.
    ring.set_state(old, KeyState::Retired).unwrap();
    let keys = Arc::new(SubjectKeys::open(&path, ring.clone()).unwrap());
    let enc = Encrypt::new(ring, "c").subject_keys(keys);
    assert_eq!(enc.inverse(&sealed, &ctx(b"k", &enc, Some("alice"))).unwrap(), b"v");
}

#[test]
fn a_store_file_others_may_read_is_refused() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subject-keys.json");
        let ring = Arc::new(KeyRing::generate().unwrap());
        drop(SubjectKeys::open(&path, ring.clone()).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o077, 0);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SubjectKeys::open(&path, ring).is_err());
    }
}
