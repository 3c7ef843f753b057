//! Personal data and secrets in text: what a value holds before it is cached.
//!
//! [`Detector::scan`] finds e-mail addresses, phone numbers, payment cards, IBANs, US Social
//! Security numbers, IP addresses, JWTs and secrets (cloud keys, private key blocks, API
//! tokens of known shapes). A pattern only proposes a candidate; a validator decides: a card
//! passes Luhn and falls in an issuer's range at that issuer's length, an IBAN passes mod-97 at
//! its country's length, a phone number is valid in libphonenumber's numbering plan for the
//! country its format implies (through the `phonenumber` crate), an SSN follows the SSA's
//! rules, a JWT's header decodes to JSON. Dates, timestamps, UUIDs, version strings, order and
//! tracking numbers fail those checks, and words just before a candidate ("tel", "SSN",
//! "order #") move its confidence up or down.
//!
//! ```
//! use omnicache_security::pii::{Detector, PiiKind};
//!
//! let detector = Detector::new();
//! let text = "Mail ana@example.org or call +44 20 7946 0958; order 4111111111111112.";
//! let kinds: Vec<PiiKind> = detector.scan(text).iter().map(|f| f.kind).collect();
//! assert_eq!(kinds, [PiiKind::Email, PiiKind::Phone]);
//! ```

mod context;
mod guard;
pub mod jsonl;
mod numeric;
mod phone;
mod policy;
mod text;
mod validate;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use guard::{PiiGuard, PiiGuardStats};
pub use policy::{PiiAction, PiiOutcome, PiiPolicy, PolicyError};
pub use validate::{card_scheme, iban_mod97, luhn, us_ssn};

/// What a finding is. The names are the wire names (`"credit_card"`, `"us_ssn"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number, international or in a national format.
    Phone,
    /// A payment card number.
    CreditCard,
    /// An international bank account number.
    Iban,
    /// A United States Social Security number.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A JSON Web Token.
    Jwt,
    /// A credential: a cloud access key, a private key block, an API or bearer token.
    Secret,
}

impl PiiKind {
    /// Every kind, in wire-name order of the documentation.
    pub const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
        PiiKind::Jwt,
        PiiKind::Secret,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Iban => "iban",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
            PiiKind::Jwt => "jwt",
            PiiKind::Secret => "secret",
        }
    }

    /// Which of two overlapping findings wins: the more specific kind (a JWT inside a bearer
    /// header is a JWT; an IBAN's digits are not a card).
    fn precedence(self) -> u8 {
        match self {
            PiiKind::Secret => 8,
            PiiKind::Jwt => 7,
            PiiKind::Iban => 6,
            PiiKind::CreditCard => 5,
            PiiKind::Email => 4,
            PiiKind::UsSsn => 3,
            PiiKind::Phone => 2,
            PiiKind::IpAddress => 1,
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PiiKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown PII kind {s:?}; the kinds are {}", names.join(", "))
        })
    }
}

/// One finding: its kind, its byte span in the scanned text and how sure the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was found.
    pub kind: PiiKind,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset just past its last byte.
    pub end: usize,
    /// From 0 to 1: 0.95 and above for checksummed or structurally certain findings, lower for
    /// formats that only look right; findings under the detector's threshold are not reported.
    pub confidence: f32,
}

impl Finding {
    fn new(kind: PiiKind, start: usize, end: usize, confidence: f32) -> Finding {
        Finding { kind, start, end, confidence: confidence.clamp(0.0, 0.99) }
    }
}

/// The default reporting threshold: findings below it are dropped.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;

/// Scans text for personal data and secrets. Cheap to clone (the compiled patterns are shared);
/// build one and reuse it.
#[derive(Clone)]
pub struct Detector {
    patterns: Arc<text::Patterns>,
    min_confidence: f32,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("min_confidence", &self.min_confidence)
            .finish_non_exhaustive()
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

impl Detector {
    /// A detector for every kind, reporting findings of confidence 0.5 and above.
    pub fn new() -> Detector {
        phone::warm_metadata();
        Detector {
            patterns: Arc::new(text::Patterns::new()),
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }

    /// Reports only findings at or above `threshold` (0 to 1). Default 0.5.
    #[must_use]
    pub fn min_confidence(mut self, threshold: f32) -> Detector {
        self.min_confidence = threshold.clamp(0.0, 1.0);
        self
    }

    /// Every finding in `text`, in order, none overlapping another.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut all = Vec::new();
        numeric::scan(text, &mut all);
        self.patterns.scan(text, &mut all);
        all.retain(|f| f.confidence >= self.min_confidence);
        resolve_overlaps(all)
    }

    /// Scans bytes that should be UTF-8 text; `None` when they are not (binary values are
    /// skipped, not guessed at).
    pub fn scan_bytes(&self, bytes: &[u8]) -> Option<Vec<Finding>> {
        std::str::from_utf8(bytes).ok().map(|text| self.scan(text))
    }
}

/// Keeps, of findings that overlap, the one of the more specific kind (then the longer).
fn resolve_overlaps(mut all: Vec<Finding>) -> Vec<Finding> {
    all.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(all.len());
    for f in all {
        match out.last_mut() {
            Some(last) if f.start < last.end => {
                let rank = |x: &Finding| (x.kind.precedence(), x.end - x.start);
                if rank(&f) > rank(last) {
                    *last = f;
                }
            }
            _ => out.push(f),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_wire_names() {
        for kind in PiiKind::ALL {
            assert_eq!(kind.as_str().parse::<PiiKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("ssn".parse::<PiiKind>().unwrap_err().contains("us_ssn"));
    }

    #[test]
    fn overlaps_keep_the_more_specific_kind() {
        let f = |kind, start, end| Finding::new(kind, start, end, 0.9);
        let out = resolve_overlaps(vec![
            f(PiiKind::Phone, 5, 15),
            f(PiiKind::Iban, 0, 22),
            f(PiiKind::Email, 30, 40),
        ]);
        assert_eq!(out, vec![f(PiiKind::Iban, 0, 22), f(PiiKind::Email, 30, 40)]);
    }
}
