//! Findings with letters in them: e-mail, JWT, secrets, IPv6; and the IBAN reader the numeric
//! scan calls where two capitals touch digits.

use std::net::Ipv6Addr;

use base64::Engine as _;
use regex::Regex;

use super::context::{char_at, is_word, prev_char};
use super::{validate, Finding, PiiKind};

const EMAIL: &str = r"[\w.%+\-]+@[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?)*\.\p{L}{2,24}";
const JWT: &str = r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*";
/// Credentials of known shapes, each behind a literal prefix (so the scan skips ahead to them).
const SECRET: &str = r"(?x)
      (?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}
    | gh[pousr]_[A-Za-z0-9]{36,255}
    | github_pat_[A-Za-z0-9_]{22,255}
    | glpat-[A-Za-z0-9_\-]{20,64}
    | xox[abposr]-[A-Za-z0-9\-]{10,255}
    | (?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,255}
    | AIza[0-9A-Za-z_\-]{35}
    | sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,255}
    | npm_[A-Za-z0-9]{36}
    | SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}
    | hf_[A-Za-z0-9]{34}
    | shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}
    | dop_v1_[a-f0-9]{64}
";
/// An AWS secret access key where it is named.
const AWS_SECRET: &str = r#"(?i:aws_?secret_?access_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})"#;
const BEARER: &str = r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)";
const PEM_BEGIN: &str = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----";
const PEM_END: &str = r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----";
const IPV6: &str = r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}";

/// The compiled patterns, built once per [`Detector`](super::Detector).
#[derive(Debug)]
pub(super) struct Patterns {
    email: Regex,
    jwt: Regex,
    secret: Regex,
    aws_secret: Regex,
    bearer: Regex,
    pem_begin: Regex,
    pem_end: Regex,
    ipv6: Regex,
}

impl Patterns {
    pub(super) fn new() -> Patterns {
        let re = |p: &str| Regex::new(p).expect("the built-in patterns compile");
        Patterns {
            email: re(EMAIL),
            jwt: re(JWT),
            secret: re(SECRET),
            aws_secret: re(AWS_SECRET),
            bearer: re(BEARER),
            pem_begin: re(PEM_BEGIN),
            pem_end: re(PEM_END),
            ipv6: re(IPV6),
        }
    }

    pub(super) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        if text.contains('@') {
            self.emails(text, out);
        }
        self.jwts(text, out);
        self.secrets(text, out);
        if text.contains(':') {
            self.ipv6(text, out);
        }
    }

    fn emails(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.email.find_iter(text) {
            let (mut start, end) = (m.start(), m.end());
            let candidate = m.as_str();
            let at = candidate.find('@').unwrap_or(0);
            let local = &candidate[..at];
            // A sentence's period is not part of the address: ".ana@x.org" starts at "ana".
            let trimmed = local.trim_start_matches('.');
            start += local.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.ends_with('.') || trimmed.contains("..") {
                continue;
            }
            let domain = &candidate[at + 1..];
            // "icon@2x.png" is a file name.
            let first_label = domain.split('.').next().unwrap_or("");
            if first_label.len() >= 2
                && first_label.ends_with('x')
                && first_label[..first_label.len() - 1].bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            out.push(Finding::new(PiiKind::Email, start, end, 0.97));
        }
    }

    fn jwts(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.jwt.find_iter(text) {
            if !edges_clear(text, m.start(), m.end(), |c| {
                c.is_ascii_alphanumeric() || c == '-' || c == '_'
            }) {
                continue;
            }
            let header = m.as_str().split('.').next().unwrap_or("");
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header.trim_end_matches('='));
            let is_jose = decoded
                .ok()
                .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
                .is_some_and(|v| v.get("alg").is_some() || v.get("typ").is_some());
            if is_jose {
                out.push(Finding::new(PiiKind::Jwt, m.start(), m.end(), 0.99));
            }
        }
    }

    fn secrets(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.secret.find_iter(text) {
            let token = m.as_str();
            if !edges_clear(text, m.start(), m.end(), |c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            // "sk-learn-and-pandas-..." is prose; keys mix digits and letters of both cases.
            let mixed = |t: &str| {
                t.bytes().any(|b| b.is_ascii_digit())
                    && t.bytes().any(|b| b.is_ascii_uppercase())
                    && t.bytes().any(|b| b.is_ascii_lowercase())
            };
            if !token.starts_with("sk-") || mixed(token) {
                out.push(Finding::new(PiiKind::Secret, m.start(), m.end(), 0.95));
            }
        }
        if text.contains("ecret") || text.contains("ECRET") {
            for c in self.aws_secret.captures_iter(text) {
                let key = c.get(1).expect("group 1 always takes part");
                if edges_clear(text, key.start(), key.end(), |c| {
                    c.is_ascii_alphanumeric() || c == '/' || c == '+'
                }) {
                    out.push(Finding::new(PiiKind::Secret, key.start(), key.end(), 0.95));
                }
            }
        }
        for c in self.bearer.captures_iter(text) {
            let token = c.get(1).expect("group 1 always takes part");
            let t = token.as_str();
            // A JWT after "Bearer" is reported as the JWT it is.
            let opaque = !t.starts_with("eyJ")
                && t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes().any(|b| b.is_ascii_alphabetic());
            if opaque
                && prev_char(text, c.get(0).map_or(0, |m| m.start())).is_none_or(|p| !is_word(p))
            {
                out.push(Finding::new(PiiKind::Secret, token.start(), token.end(), 0.85));
            }
        }
        if text.contains("-----BEGIN") {
            for begin in self.pem_begin.find_iter(text) {
                let end = self
                    .pem_end
                    .find_at(text, begin.end())
                    .map_or_else(|| base64_body_end(text, begin.end()), |m| m.end());
                out.push(Finding::new(PiiKind::Secret, begin.start(), end, 0.99));
            }
        }
    }

    fn ipv6(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.ipv6.find_iter(text) {
            let candidate = m.as_str();
            let glued_left =
                prev_char(text, m.start()).is_some_and(|c| is_word(c) || c == ':' || c == '.');
            // A sentence's period may follow; "::1.2" or "fe80::1x" may not.
            let glued_right = char_at(text, m.end()).is_some_and(|c| {
                is_word(c)
                    || c == ':'
                    || (c == '.' && char_at(text, m.end() + 1).is_some_and(is_word))
            });
            if candidate.matches(':').count() < 2 || glued_left || glued_right {
                continue;
            }
            if candidate.parse::<Ipv6Addr>().is_err() {
                continue;
            }
            let hex_digits = candidate.bytes().filter(u8::is_ascii_hexdigit).count();
            // "a::b" in code is a valid address and nobody's: too few digits to report.
            let confidence = if hex_digits >= 3 { 0.9 } else { 0.4 };
            out.push(Finding::new(PiiKind::IpAddress, m.start(), m.end(), confidence));
        }
    }
}

/// Neither the character before `start` nor the one at `end` continues the token.
fn edges_clear(text: &str, start: usize, end: usize, continues: impl Fn(char) -> bool) -> bool {
    prev_char(text, start).is_none_or(|c| !continues(c))
        && char_at(text, end).is_none_or(|c| !continues(c))
}

/// Where a PEM body without its END line stops: the last base64 line after `from`.
fn base64_body_end(text: &str, from: usize) -> usize {
    let mut end = from;
    let mut pos = from;
    for line in text[from..].split_inclusive('\n') {
        let body = line.trim_end();
        if !body.is_empty()
            && !body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            break;
        }
        pos += line.len();
        if !body.is_empty() {
            end = pos - (line.len() - body.len());
        }
    }
    end
}

/// The end of the IBAN starting at `start`, if one is there: the country's length in letters
/// and digits, spaces only between groups of four, and the mod-97 check.
pub(super) fn iban_at(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let want = validate::iban_length(&bytes[start..start + 2])?;
    let mut compact = Vec::with_capacity(want);
    let mut i = start;
    while compact.len() < want {
        let b = *bytes.get(i)?;
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            compact.push(b);
        } else if b == b' ' && compact.len().is_multiple_of(4) && !compact.is_empty() {
            // a space between groups of four
        } else {
            return None;
        }
        i += 1;
    }
    if bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) || !validate::iban_mod97(&compact) {
        return None;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(PiiKind, &str)> {
        let mut out = Vec::new();
        Patterns::new().scan(text, &mut out);
        out.iter().map(|f| (f.kind, &text[f.start..f.end])).collect()
    }

    #[test]
    fn emails_without_trailing_punctuation_or_file_names() {
        assert_eq!(
            found("write to José.García@correo.es."),
            [(PiiKind::Email, "José.García@correo.es")]
        );
        assert!(found("logo@2x.png and npm i pkg@1.2.3").is_empty());
    }

    #[test]
    fn secrets_of_known_shapes() {
        assert_eq!(
            found("key AKIAIOSFODNN7EXAMPLE here"),
            [(PiiKind::Secret, "AKIAIOSFODNN7EXAMPLE")]
        );
        assert!(found("we use sk-learn-and-pandas-for-everything").is_empty());
        let pem = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n";
        let f = found(pem);
        assert_eq!(f.len(), 1);
        assert!(f[0].1.starts_with("-----BEGIN") && f[0].1.ends_with("KEY-----"));
    }

    #[test]
    fn ipv6_but_not_code_or_times() {
        assert_eq!(
            found("peer 2001:db8::ff00:42:8329 up"),
            [(PiiKind::IpAddress, "2001:db8::ff00:42:8329")]
        );
        assert!(found("std::vector and Vec::new at 12:30:45, mac 00:1A:2B:3C:4D:5E").is_empty());
    }
}
