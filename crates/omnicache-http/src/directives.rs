//! `Cache-Control` (and `Surrogate-Control`, `Pragma`) parsing, RFC 9111 §5.2.
//!
//! A field is a comma-separated list of `token [ "=" ( token / quoted-string ) ]`, possibly spread
//! over several field lines. Names are case-insensitive. A quoted string may contain commas and
//! `=` (`extension="max-age=3600"` is one directive, not a `max-age`). Where a directive repeats,
//! the first occurrence counts.

use http::header::{HeaderMap, HeaderName};

/// The greatest delta-seconds a cache must represent (RFC 9111 §1.2.2).
pub(crate) const DELTA_MAX: u64 = 1 << 31;

/// The directives of one field, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    list: Vec<(String, Option<String>)>,
}

/// A directive's delta-seconds argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delta {
    /// Absent.
    None,
    /// Present with a valid value (saturated at 2^31).
    Secs(u64),
    /// Present without a value.
    Bare,
    /// Present with a value that is not delta-seconds.
    Invalid,
}

impl Directives {
    /// Parses every line of `name` in `headers`.
    pub(crate) fn from_headers(headers: &HeaderMap, name: &HeaderName) -> Self {
        let mut d = Directives::default();
        for v in headers.get_all(name) {
            // Field values are bytes; non-UTF-8 bytes can only be inside quoted strings or
            // garbage, and lossy decoding keeps the structure.
            d.parse_line(&String::from_utf8_lossy(v.as_bytes()));
        }
        d
    }

    /// Parses one field value, appending its directives.
    pub(crate) fn parse_line(&mut self, line: &str) {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && (b[i] == b',' || b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let start = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            let name = line[start..i].to_ascii_lowercase();
            let mut value = None;
            let mut valid = !name.is_empty();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                    let mut v = Vec::new();
                    let mut closed = false;
                    while i < b.len() {
                        match b[i] {
                            b'\\' if i + 1 < b.len() => {
                                v.push(b[i + 1]);
                                i += 2;
                            }
                            b'"' => {
                                i += 1;
                                closed = true;
                                break;
                            }
                            c => {
                                v.push(c);
                                i += 1;
                            }
                        }
                    }
                    valid &= closed;
                    value = Some(String::from_utf8_lossy(&v).into_owned());
                } else {
                    let vs = i;
                    while i < b.len() && is_tchar(b[i]) {
                        i += 1;
                    }
                    valid &= i > vs;
                    value = Some(line[vs..i].to_string());
                }
            }
            // Anything else before the next comma makes the directive malformed.
            while i < b.len() && b[i] != b',' {
                if b[i] != b' ' && b[i] != b'\t' {
                    valid = false;
                }
                i += 1;
            }
            if name.is_empty() {
                continue;
            }
            // A malformed directive is kept with an invalid marker, so `max-age =3600` or
            // `max-age='3600'` is present but unusable (the response is then treated as stale).
            if !valid {
                value = Some(String::from("\u{0}invalid"));
            }
            self.list.push((name, value));
        }
    }

    /// Whether the field had no directives at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `name` is present (with or without a value).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(n, _)| n == name)
    }

    /// The first value of `name`.
    pub(crate) fn value(&self, name: &str) -> Option<Option<&str>> {
        self.list.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }

    /// The delta-seconds argument of the first `name`.
    pub(crate) fn delta(&self, name: &str) -> Delta {
        match self.value(name) {
            None => Delta::None,
            Some(None) => Delta::Bare,
            Some(Some(v)) => parse_delta(v).map_or(Delta::Invalid, Delta::Secs),
        }
    }

    /// Field names listed as the argument of `name` (`no-cache="Set-Cookie"`, `private="a, b"`);
    /// empty for the unqualified form.
    pub(crate) fn fields(&self, name: &str) -> Vec<String> {
        self.list
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .flat_map(|v| v.split(','))
            .map(|f| f.trim().to_ascii_lowercase())
            .filter(|f| !f.is_empty() && !f.starts_with('\u{0}'))
            .collect()
    }

    /// Keeps only the directives aimed at `token` in a `Surrogate-Control` field: untargeted ones,
    /// and `directive;token` ones (targeted ones win over untargeted ones of the same name).
    pub(crate) fn surrogate(headers: &HeaderMap, token: &str) -> Self {
        let mut targeted = Directives::default();
        let mut general = Directives::default();
        for v in headers.get_all(SURROGATE_CONTROL) {
            let line = String::from_utf8_lossy(v.as_bytes()).into_owned();
            // A targeted group is `directives;target`, groups separated by commas; split on
            // commas outside quotes and route each piece by its target.
            for piece in split_outside_quotes(&line, b',') {
                match piece.rsplit_once(';') {
                    Some((d, target)) if target.trim().eq_ignore_ascii_case(token) => {
                        targeted.parse_line(d)
                    }
                    Some(_) => {}
                    None => general.parse_line(piece),
                }
            }
        }
        for (n, v) in general.list {
            if !targeted.has(&n) {
                targeted.list.push((n, v));
            }
        }
        targeted
    }
}

/// The `Surrogate-Control` header (W3C Edge Architecture).
pub(crate) const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");

fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

/// Delta-seconds: one or more digits, saturating at 2^31 (RFC 9111 §1.2.2).
pub(crate) fn parse_delta(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = v.trim_start_matches('0');
    if digits.len() > 10 {
        return Some(DELTA_MAX);
    }
    Some(digits.parse::<u64>().unwrap_or(0).min(DELTA_MAX))
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Directives {
        let mut d = Directives::default();
        d.parse_line(s);
        d
    }

    #[test]
    fn tokens_quoted_strings_and_case() {
        let d = parse(r#"Max-Age=60, no-cache="set-cookie, x-a", PUBLIC, ext="a, b=\"c\"""#);
        assert_eq!(d.delta("max-age"), Delta::Secs(60));
        assert!(d.has("public"));
        assert_eq!(d.fields("no-cache"), vec!["set-cookie", "x-a"]);
        assert!(parse("no-cache").fields("no-cache").is_empty());
        assert_eq!(d.value("ext"), Some(Some(r#"a, b="c""#)));
    }

    #[test]
    fn a_directive_inside_a_quoted_string_is_not_a_directive() {
        let d = parse(r#"extension="max-age=3600", max-age=1"#);
        assert_eq!(d.delta("max-age"), Delta::Secs(1));
        let d = parse(r#"max-age="1", extension="max-age=3600""#);
        assert_eq!(d.delta("max-age"), Delta::Secs(1));
    }

    #[test]
    fn malformed_values_are_invalid_not_ignored() {
        for bad in ["max-age='3600'", "max-age=3600a", "max-age=a3600", "max-age=-1", "max-age=1.5"]
        {
            assert_eq!(parse(bad).delta("max-age"), Delta::Invalid, "{bad}");
        }
        assert_eq!(parse("max-age =3600").delta("max-age"), Delta::Invalid);
        assert_eq!(parse("max-age= 3600").delta("max-age"), Delta::Invalid);
        assert_eq!(parse("max-age=003600").delta("max-age"), Delta::Secs(3600));
        assert_eq!(parse("max-age=99999999999999999999").delta("max-age"), Delta::Secs(DELTA_MAX));
        assert_eq!(parse("max-stale").delta("max-stale"), Delta::Bare);
        assert_eq!(parse(r#"max-age="30""#).delta("max-age"), Delta::Secs(30));
    }

    #[test]
    fn the_first_occurrence_wins_and_lines_accumulate() {
        let mut d = parse("max-age=10");
        d.parse_line("max-age=20, s-maxage=5");
        assert_eq!(d.delta("max-age"), Delta::Secs(10));
        assert_eq!(d.delta("s-maxage"), Delta::Secs(5));
    }

    #[test]
    fn surrogate_control_targets() {
        let mut h = HeaderMap::new();
        h.insert(
            SURROGATE_CONTROL,
            "max-age=10, max-age=99;other, no-store;other".parse().unwrap(),
        );
        let d = Directives::surrogate(&h, "omnicache");
        assert_eq!(d.delta("max-age"), Delta::Secs(10));
        assert!(!d.has("no-store"));
        h.insert(SURROGATE_CONTROL, "max-age=10, max-age=5;omnicache".parse().unwrap());
        assert_eq!(Directives::surrogate(&h, "omnicache").delta("max-age"), Delta::Secs(5));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let d = parse(&s);
            let _ = d.delta("max-age");
            let _ = d.value("private");
        }
    }
}
