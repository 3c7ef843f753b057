//! The PII validators against reference implementations on random inputs, and the detector on
//! random text and bytes: it never panics, and its spans are in order, apart, on character
//! boundaries.

use omnicache_security::pii::{iban_mod97, luhn, Detector};
use proptest::prelude::*;

/// Luhn as the ISO/IEC 7812 text states it: double every second digit from the right, sum the
/// digits of the products.
fn luhn_reference(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 1 {
                let p = d * 2;
                p / 10 + p % 10
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// mod-97 as ISO 13616 states it: move the first four characters to the end, letters to
/// 10..35, and take the whole number modulo 97 (here in nine-digit pieces).
fn mod97_reference(iban: &str) -> bool {
    let moved = format!("{}{}", &iban[4..], &iban[..4]);
    let numeric: String = moved.chars().map(|c| c.to_digit(36).unwrap().to_string()).collect();
    let mut rem = 0u64;
    let mut rest = numeric.as_str();
    while !rest.is_empty() {
        let take = rest.len().min(9);
        rem = format!("{rem}{}", &rest[..take]).parse::<u64>().unwrap() % 97;
        rest = &rest[take..];
    }
    rem == 1
}

static DETECTOR: std::sync::LazyLock<Detector> =
    std::sync::LazyLock::new(|| Detector::new().min_confidence(0.0));

fn check_spans(text: &str) {
    let findings = DETECTOR.scan(text);
    let mut last_end = 0;
    for f in &findings {
        assert!(
            f.start >= last_end && f.start < f.end && f.end <= text.len(),
            "{findings:?} in {text:?}"
        );
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        assert!((0.0..=1.0).contains(&f.confidence));
        last_end = f.end;
    }
}

proptest! {
    #[test]
    fn luhn_matches_the_reference(digits in "[0-9]{1,24}") {
        prop_assert_eq!(luhn(digits.as_bytes()), luhn_reference(&digits));
    }

    #[test]
    fn mod97_matches_the_reference(country in "[A-Z]{2}", check in "[0-9]{2}", bban in "[A-Z0-9]{8,30}") {
        let iban = format!("{country}{check}{bban}");
        prop_assert_eq!(iban_mod97(iban.as_bytes()), mod97_reference(&iban));
    }

    #[test]
    fn any_text_scans_without_panic(text in any::<String>()) {
        check_spans(&text);
    }

    #[test]
    fn number_like_text_scans_without_panic(text in r"[0-9 +()./:,@xA-Za-z\-]{0,80}") {
        check_spans(&text);
    }

    #[test]
    fn random_bytes_are_skipped_or_scanned(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let out = DETECTOR.scan_bytes(&bytes);
        prop_assert_eq!(out.is_some(), std::str::from_utf8(&bytes).is_ok());
    }
}
