//! A cache's personal-data policy as the config file and `POST /caches` give it.

use omnicache_security::pii::{PiiAction, PiiKind, PiiPolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A cache's personal-data policy: an action per kind of finding, `allow` (store as is),
/// `tag` (add the tag `pii:<kind>`), `redact` (mask the finding), `encrypt` (encrypt the entry
/// below memory even if the cache does not encrypt) or `reject` (refuse the write: 422 naming
/// the kinds). Values are scanned as UTF-8 text (JSON included); binary values are stored
/// unscanned and counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiSpec {
    /// The action for kinds not named here. Default: allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "tag")]
    pub default: Option<PiiAction>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub email: Option<PiiAction>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<PiiAction>,
    /// Payment card numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub credit_card: Option<PiiAction>,
    /// IBANs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub iban: Option<PiiAction>,
    /// US Social Security numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub us_ssn: Option<PiiAction>,
    /// IPv4 and IPv6 addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ip_address: Option<PiiAction>,
    /// JSON Web Tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub jwt: Option<PiiAction>,
    /// Secrets: cloud keys, private key blocks, API tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<PiiAction>,
    /// Findings less sure than this (0 to 1) are ignored. Default: 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
}

impl PiiSpec {
    /// The policy the spec describes.
    pub fn policy(&self) -> PiiPolicy {
        let mut policy = PiiPolicy::new(self.default.unwrap_or_default());
        let named = [
            (PiiKind::Email, self.email),
            (PiiKind::Phone, self.phone),
            (PiiKind::CreditCard, self.credit_card),
            (PiiKind::Iban, self.iban),
            (PiiKind::UsSsn, self.us_ssn),
            (PiiKind::IpAddress, self.ip_address),
            (PiiKind::Jwt, self.jwt),
            (PiiKind::Secret, self.secret),
        ];
        for (kind, action) in named {
            if let Some(a) = action {
                policy = policy.action(kind, a);
            }
        }
        policy
    }
}
