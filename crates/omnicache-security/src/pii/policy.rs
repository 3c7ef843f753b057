//! What a cache does with the personal data in a value: per kind, allow, tag, redact, encrypt
//! or reject.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Detector, Finding, PiiKind};

/// What happens to a value holding a kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Stored as it is.
    #[default]
    Allow,
    /// Stored with the tag `pii:<kind>`, so it can be found, counted and invalidated by tag.
    Tag,
    /// Stored with every finding of the kind masked (`*` for each character) and the tag.
    Redact,
    /// Stored encrypted in every tier below memory even if the cache does not encrypt by
    /// default, and tagged.
    Encrypt,
    /// Refused: the write fails naming the kinds (never the matched text).
    Reject,
}

impl FromStr for PiiAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(PiiAction::Allow),
            "tag" => Ok(PiiAction::Tag),
            "redact" => Ok(PiiAction::Redact),
            "encrypt" => Ok(PiiAction::Encrypt),
            "reject" => Ok(PiiAction::Reject),
            other => Err(format!(
                "unknown PII action {other:?}; the actions are allow, tag, redact, encrypt, reject"
            )),
        }
    }
}

/// A cache's policy: an action per kind, and one for the kinds not named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PiiPolicy {
    default: PiiAction,
    actions: BTreeMap<PiiKind, PiiAction>,
}

/// A value the policy refuses: the kinds it holds that the policy rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The rejected kinds found, in order, each once.
    pub kinds: Vec<PiiKind>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        write!(f, "the value holds personal data this cache refuses: {}", names.join(", "))
    }
}

impl std::error::Error for PolicyError {}

/// What the policy did to a value it accepted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PiiOutcome {
    /// The value to store instead, when something was redacted.
    pub redacted: Option<Vec<u8>>,
    /// Tags to add (`pii:<kind>` for each kind tagged, redacted or encrypted).
    pub tags: Vec<String>,
    /// The value must be encrypted below memory.
    pub encrypt: bool,
    /// Every kind found, each once.
    pub kinds: Vec<PiiKind>,
    /// The value was not UTF-8 text and was not scanned.
    pub skipped_binary: bool,
}

impl PiiPolicy {
    /// A policy applying `default` to every kind.
    pub fn new(default: PiiAction) -> PiiPolicy {
        PiiPolicy { default, actions: BTreeMap::new() }
    }

    /// Sets the action for one kind.
    #[must_use]
    pub fn action(mut self, kind: PiiKind, action: PiiAction) -> PiiPolicy {
        self.actions.insert(kind, action);
        self
    }

    /// The action for `kind`.
    pub fn action_for(&self, kind: PiiKind) -> PiiAction {
        self.actions.get(&kind).copied().unwrap_or(self.default)
    }

    /// The action for kinds not named, and each named kind's.
    pub fn actions(&self) -> (PiiAction, &BTreeMap<PiiKind, PiiAction>) {
        (self.default, &self.actions)
    }

    /// True when the policy can only allow (nothing to scan for).
    pub fn allows_everything(&self) -> bool {
        self.default == PiiAction::Allow && self.actions.values().all(|a| *a == PiiAction::Allow)
    }

    /// Scans `value` and applies the policy.
    pub fn apply(&self, detector: &Detector, value: &[u8]) -> Result<PiiOutcome, PolicyError> {
        let Some(findings) = detector.scan_bytes(value) else {
            return Ok(PiiOutcome { skipped_binary: true, ..PiiOutcome::default() });
        };
        self.apply_findings(value, &findings)
    }

    /// Applies the policy to `findings` already made in `value` (UTF-8).
    pub fn apply_findings(
        &self,
        value: &[u8],
        findings: &[Finding],
    ) -> Result<PiiOutcome, PolicyError> {
        let mut kinds: Vec<PiiKind> = findings.iter().map(|f| f.kind).collect();
        kinds.sort();
        kinds.dedup();
        let rejected: Vec<PiiKind> =
            kinds.iter().copied().filter(|k| self.action_for(*k) == PiiAction::Reject).collect();
        if !rejected.is_empty() {
            return Err(PolicyError { kinds: rejected });
        }
        let mut outcome = PiiOutcome { kinds: kinds.clone(), ..PiiOutcome::default() };
        for kind in &kinds {
            let action = self.action_for(*kind);
            if action != PiiAction::Allow {
                outcome.tags.push(format!("pii:{kind}"));
            }
            outcome.encrypt |= action == PiiAction::Encrypt;
        }
        let redact: Vec<&Finding> =
            findings.iter().filter(|f| self.action_for(f.kind) == PiiAction::Redact).collect();
        if !redact.is_empty() {
            outcome.redacted = Some(mask(value, &redact));
        }
        Ok(outcome)
    }
}

/// `value` with each finding's characters replaced by `*` (one per character, so JSON and
/// layout survive).
fn mask(value: &[u8], findings: &[&Finding]) -> Vec<u8> {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start]);
        out.extend(text[f.start..f.end].chars().map(|c| if c == '\n' { '\n' } else { '*' }));
        at = f.end;
    }
    out.push_str(&text[at..]);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_does_what_it_says() {
        let detector = Detector::new();
        let value = br#"{"email":"ana@example.org","card":"4111 1111 1111 1111"}"#;
        let policy = PiiPolicy::new(PiiAction::Tag).action(PiiKind::Email, PiiAction::Redact);
        let out = policy.apply(&detector, value).unwrap();
        assert_eq!(
            out.redacted.as_deref(),
            Some(&br#"{"email":"***************","card":"4111 1111 1111 1111"}"#[..])
        );
        assert_eq!(out.tags, ["pii:email", "pii:credit_card"]);
        assert!(!out.encrypt);

        let policy =
            PiiPolicy::new(PiiAction::Allow).action(PiiKind::CreditCard, PiiAction::Encrypt);
        let out = policy.apply(&detector, value).unwrap();
        assert!(out.encrypt && out.redacted.is_none());
        assert_eq!(out.tags, ["pii:credit_card"]);

        let policy = PiiPolicy::new(PiiAction::Reject);
        let err = policy.apply(&detector, value).unwrap_err();
        assert_eq!(err.kinds, [PiiKind::Email, PiiKind::CreditCard]);
        assert!(!err.to_string().contains("ana@"));

        let out = PiiPolicy::new(PiiAction::Reject).apply(&detector, &[0xff, 0xfe, 0]).unwrap();
        assert!(out.skipped_binary);
    }
}
