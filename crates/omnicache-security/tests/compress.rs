//! LZ4 compression as a transform: round trips, shrinking what compresses, refusing corrupt
//! or hostile input without panicking or allocating what a header claims.

use omnicache_core::{ErrorKind, Transform, TransformContext};
use omnicache_security::Compress;
use proptest::prelude::*;

const CTX: TransformContext<'static> = TransformContext { key: b"k", key_id: 0, subject: None };

#[test]
fn text_shrinks_and_round_trips() {
    let text = "the quick brown fox jumps over the lazy dog; ".repeat(100).into_bytes();
    let c = Compress::default().forward(&text, &CTX).unwrap();
    assert!(c.len() < text.len() / 5, "{} of {}", c.len(), text.len());
    assert_eq!(Compress::default().inverse(&c, &CTX).unwrap(), text);
    let empty = Compress::default().forward(b"", &CTX).unwrap();
    assert_eq!(Compress::default().inverse(&empty, &CTX).unwrap(), b"");
}

#[test]
fn a_hostile_length_is_refused_not_allocated() {
    let mut c = Compress::default().forward(b"hello hello hello", &CTX).unwrap();
    c[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = Compress::default().inverse(&c, &CTX).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Codec);
    assert!(Compress::max_value(4)
        .inverse(&Compress::default().forward(b"hello", &CTX).unwrap(), &CTX)
        .is_err());
    assert!(Compress::default().inverse(b"\x01", &CTX).is_err());
}

proptest! {
    #[test]
    fn anything_round_trips(value in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let c = Compress::default();
        prop_assert_eq!(c.inverse(&c.forward(&value, &CTX).unwrap(), &CTX).unwrap(), value);
    }

    #[test]
    fn random_or_mutated_input_never_panics(
        value in proptest::collection::vec(any::<u8>(), 0..256),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
        at in any::<usize>(),
    ) {
        let c = Compress::default();
        let _ = c.inverse(&junk, &CTX);
        let mut stored = c.forward(&value, &CTX).unwrap();
        let i = at % stored.len();
        stored[i] ^= 0x5a;
        // Wrong bytes may still decode to something; they must never panic.
        let _ = c.inverse(&stored, &CTX);
    }
}
