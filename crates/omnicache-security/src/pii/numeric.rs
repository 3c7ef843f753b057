//! Runs of digits with separators: cards, SSNs, phone numbers and IPv4 addresses.
//!
//! One pass finds each run ("+44 (0)20 7946 0958", "4111-1111-1111-1111", "10.0.0.1"), refusing
//! runs glued to a word or an identifier ("ORD-2023-0001", "v1.2", "abc123", "1,234,567"). The
//! whole run is tried first, then windows of its space-separated tokens, longest first, so a
//! date next to a phone number does not hide it.

use super::context::{self, char_at, is_word, prev_char};
use super::{phone, text, validate, Finding, PiiKind};

/// A run is at most this many digit groups; longer ones are tables of numbers.
const MAX_GROUPS: usize = 12;

/// A run of digit groups and what separates them.
#[derive(Debug)]
pub(super) struct Run<'a> {
    text: &'a str,
    /// Byte spans of the digit groups.
    groups: Vec<(usize, usize)>,
    /// Whether the run starts with `+`.
    plus: bool,
    /// Whether ":" and a digit follow the run (a time, a port).
    time_follows: bool,
    /// Where a phone extension after the run ends ("x123", " ext. 45").
    extension: Option<usize>,
}

/// A window of a run: consecutive groups `from..to`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window<'r, 'a> {
    run: &'r Run<'a>,
    from: usize,
    to: usize,
}

impl<'a> Window<'_, 'a> {
    pub(super) fn groups(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.run.groups[self.from..self.to].iter().map(|&(s, e)| &self.run.text[s..e])
    }

    pub(super) fn group_lens(&self) -> Vec<usize> {
        self.run.groups[self.from..self.to].iter().map(|&(s, e)| e - s).collect()
    }

    /// What lies between group `i` and `i + 1` of the window.
    pub(super) fn seps(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.run.groups[self.from..self.to].windows(2).map(|w| &self.run.text[w[0].1..w[1].0])
    }

    pub(super) fn digits(&self) -> String {
        self.groups().collect()
    }

    /// The window starts with `+` (only the run's first group can).
    pub(super) fn plus(&self) -> bool {
        self.from == 0 && self.run.plus
    }

    /// The first group is in parentheses: "(030) 1234567", "(11) 91234-5678".
    pub(super) fn paren_first(&self) -> bool {
        let (s, e) = self.run.groups[self.from];
        s > 0
            && self.run.text.as_bytes()[s - 1] == b'('
            && self.run.text.as_bytes().get(e) == Some(&b')')
    }

    pub(super) fn start(&self) -> usize {
        let s = self.run.groups[self.from].0;
        let bytes = self.run.text.as_bytes();
        let opening_paren = s > 0 && bytes[s - 1] == b'(' && (self.from == 0 || self.paren_first());
        if self.plus() || opening_paren {
            s - 1
        } else {
            s
        }
    }

    pub(super) fn end(&self) -> usize {
        self.run.groups[self.to - 1].1
    }

    pub(super) fn text(&self) -> &'a str {
        self.run.text
    }

    fn len(&self) -> usize {
        self.to - self.from
    }
}

/// Scans `text` for numeric findings.
pub(super) fn scan(text: &str, out: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = c.is_ascii_digit()
            || ((c == b'+' || c == b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i += 1;
            continue;
        }
        if !left_ok(text, i) {
            // "DE89 3704 ...", "GB29NWBK...": two capitals glued to the digits start an IBAN.
            if i >= 2
                && bytes[i - 2..i].iter().all(u8::is_ascii_uppercase)
                && prev_char(text, i - 2).is_none_or(|c| !is_word(c))
            {
                if let Some(end) = text::iban_at(text, i - 2) {
                    out.push(Finding::new(PiiKind::Iban, i - 2, end, 0.98));
                    i = end;
                    continue;
                }
            }
            i = skip_identifier(bytes, i);
            if iban_head(bytes, i) {
                // "NO64 0549 2038 061": the groups after an IBAN's head are its own, valid or not.
                while let Some(len) = iban_group(bytes, i) {
                    i += 1 + len;
                }
            }
            continue;
        }
        match read_run(text, i) {
            Some((run, end)) => {
                classify(&run, out);
                i = end;
            }
            None => i = skip_identifier(bytes, i),
        }
    }
}

/// A run may not continue a word, a number with thousands separators or an identifier.
fn left_ok(text: &str, i: usize) -> bool {
    let Some(p) = prev_char(text, i) else { return true };
    if is_word(p) || matches!(p, '$' | '€' | '£' | '¥' | '₽' | '₪' | '@' | '\\') {
        return false;
    }
    let pp = prev_char(text, i - p.len_utf8());
    if matches!(p, '-' | '.' | '/' | ',' | '+') {
        // "ORD-123", "v1.2", "a/123", "1,234" are parts of something else.
        return pp.is_none_or(|pp| !is_word(pp));
    }
    if p == ':' {
        // "10:30", "fe80::1", a port; "tel:+1..." is fine.
        return pp.is_none_or(|pp| !(pp.is_ascii_digit() || pp == ':'));
    }
    true
}

/// Whether the token ending at `end` is two capitals and two digits, as an IBAN starts.
fn iban_head(bytes: &[u8], end: usize) -> bool {
    end >= 4
        && bytes[end - 4..end - 2].iter().all(u8::is_ascii_uppercase)
        && bytes[end - 2..end].iter().all(u8::is_ascii_digit)
        && (end == 4 || !bytes[end - 5].is_ascii_alphanumeric())
}

/// The length of the IBAN group (" 0549", " QFTX", " 61") after `at`, if one is there.
fn iban_group(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b' ') {
        return None;
    }
    let len =
        bytes[at + 1..].iter().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit()).count();
    let glued = bytes.get(at + 1 + len).is_some_and(u8::is_ascii_alphanumeric);
    ((1..=4).contains(&len) && !glued).then_some(len)
}

fn skip_identifier(bytes: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric()
            || matches!(bytes[i], b'-' | b'.' | b'/' | b'_' | b','))
    {
        i += 1;
    }
    i
}

/// Reads the run that starts at `start`; `None` (and nothing to report) when it is glued to a
/// word on its right. Returns the run and where scanning resumes.
fn read_run(text: &str, start: usize) -> Option<(Run<'_>, usize)> {
    let bytes = text.as_bytes();
    let mut j = start;
    let plus = bytes[j] == b'+';
    if plus {
        j += 1;
    }
    let mut open = false;
    if bytes[j] == b'(' {
        open = true;
        j += 1;
    }
    let mut groups = Vec::new();
    loop {
        let gs = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        groups.push((gs, j));
        if groups.len() > MAX_GROUPS {
            return None;
        }
        // Separators: [")"] [" " | "-" | "." | "/"] ["("], at least one, then a digit.
        let mut k = j;
        if open && bytes.get(k) == Some(&b')') {
            k += 1;
            open = false;
        }
        if let Some(&s) = bytes.get(k) {
            if matches!(s, b' ' | b'-' | b'.' | b'/') {
                k += 1;
            }
        }
        if !open && bytes.get(k) == Some(&b'(') {
            open = true;
            k += 1;
        }
        if k == j || !bytes.get(k).is_some_and(u8::is_ascii_digit) {
            break;
        }
        j = k;
    }
    let end = j;
    let extension = extension_end(bytes, end);
    // The right edge: not glued to a word ("2023-01-15T10", "4155552671abc", "1,234").
    if let Some(n) = char_at(text, extension.unwrap_or(end)) {
        if is_word(n) || n == '@' {
            return None;
        }
        if matches!(n, '.' | '-' | '/' | ',') {
            let after = char_at(text, end + 1);
            if after.is_some_and(|a| is_word(a) || (n == ',' && a.is_ascii_digit())) {
                return None;
            }
        }
    }
    let time_follows =
        bytes.get(end) == Some(&b':') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
    Some((
        Run { text, groups, plus, time_follows, extension },
        extension.unwrap_or(end).max(start + 1),
    ))
}

/// The end of a phone extension right after `end`: "x123", " ext. 123", " ext 4567".
fn extension_end(bytes: &[u8], end: usize) -> Option<usize> {
    let mut k = end;
    if bytes.get(k) == Some(&b' ') {
        k += 1;
    }
    let rest = &bytes[k.min(bytes.len())..];
    let marker = [&b"extension"[..], b"ext.", b"ext", b"x"]
        .into_iter()
        .find(|m| rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m))?;
    k += marker.len();
    if bytes.get(k) == Some(&b' ') && marker.len() > 1 {
        k += 1;
    }
    let digits = bytes[k.min(bytes.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=6).contains(&digits).then_some(k + digits)
}

/// Tries the whole run, then token windows of it, longest first.
fn classify(run: &Run<'_>, out: &mut Vec<Finding>) {
    let whole = Window { run, from: 0, to: run.groups.len() };
    if let Some(f) = classify_window(whole) {
        out.push(f);
        return;
    }
    // Token starts: the first group and every group after whitespace.
    let starts: Vec<usize> = (0..run.groups.len())
        .filter(|&g| g == 0 || run.text[run.groups[g - 1].1..run.groups[g].0].contains(' '))
        .collect();
    if starts.len() < 2 || uniform(run) {
        return;
    }
    let mut t = 0;
    while t < starts.len() {
        let mut matched = None;
        for u in (t + 1..=starts.len()).rev() {
            let to = starts.get(u).copied().unwrap_or(run.groups.len());
            if t == 0 && u == starts.len() {
                continue; // the whole run, already tried
            }
            let w = Window { run, from: starts[t], to };
            if let Some(f) = classify_window(w) {
                matched = Some((f, u));
                break;
            }
        }
        match matched {
            Some((f, u)) => {
                out.push(f);
                t = u;
            }
            None => t += 1,
        }
    }
}

/// A number written in equal groups ("9400 1000 0000 0000 0000 00", "1538 0383 4047") is one
/// number: its parts are not findings of their own.
fn uniform(run: &Run<'_>) -> bool {
    let lens: Vec<usize> = run.groups.iter().map(|(s, e)| e - s).collect();
    let first_sep = &run.text[run.groups[0].1..run.groups[1].0];
    lens.len() >= 3
        && lens[..lens.len() - 1].iter().all(|&l| l == lens[0])
        && run.groups.windows(2).all(|w| &run.text[w[0].1..w[1].0] == first_sep)
}

fn classify_window(w: Window<'_, '_>) -> Option<Finding> {
    if holds_date(&w) {
        return None;
    }
    if w.run.extension.is_some() {
        // Only a phone number has an extension; its span takes it in.
        let ext = w.run.extension.filter(|_| w.to == w.run.groups.len())?;
        return phone::phone(&w).map(|f| Finding { end: ext, ..f });
    }
    if w.run.time_follows {
        // "2024-01-15 10:30": the last group is an hour; only an address with a port may end so.
        return ipv4(&w);
    }
    ipv4(&w).or_else(|| ssn(&w)).or_else(|| card(&w)).or_else(|| phone::phone(&w))
}

/// A window holding "2023-01-15", "15.01.2023" or "01/15/2023" is never a phone, card or SSN.
fn holds_date(w: &Window<'_, '_>) -> bool {
    let groups: Vec<&str> = w.groups().collect();
    let seps: Vec<&str> = w.seps().collect();
    // A date's separators differ from whatever joins it to its neighbours: "2024-01-15 10" holds
    // one, "01.23.45.22.48" (a French phone number) and "252.30.9.68" do not.
    (0..groups.len().saturating_sub(2)).any(|i| {
        let sep = seps[i];
        let joined = (i > 0 && seps[i - 1] == sep) || seps.get(i + 2) == Some(&sep);
        !joined && is_date(&groups[i..i + 3], &seps[i..i + 2])
    })
}

fn is_date(groups: &[&str], seps: &[&str]) -> bool {
    if seps[0] != seps[1] || !matches!(seps[0], "-" | "." | "/") {
        return false;
    }
    let g: Vec<u32> = groups.iter().map(|s| s.parse().unwrap_or(u32::MAX)).collect();
    let md = |m: u32, d: u32| (1..=12).contains(&m) && (1..=31).contains(&d);
    match (groups[0].len(), groups[1].len(), groups[2].len()) {
        (4, 1..=2, 1..=2) => md(g[1], g[2]),
        (1..=2, 1..=2, 2 | 4) => md(g[1], g[0]) || md(g[0], g[1]),
        _ => false,
    }
}

fn ipv4(w: &Window<'_, '_>) -> Option<Finding> {
    if w.len() != 4 || w.plus() || !w.seps().all(|s| s == ".") {
        return None;
    }
    let ok = w.groups().all(|g| {
        g.len() <= 3
            && (g == "0" || !g.starts_with('0'))
            && g.parse::<u16>().is_ok_and(|v| v <= 255)
    });
    let near = context::before(w.text(), w.start(), 24);
    if !ok
        || context::preceded_by(
            &near,
            &["v", "version", "ver", "release", "build", "firmware", "fw"],
        )
    {
        return None;
    }
    // "1.2.3.4.5" would not be a run of four; a fifth dotted part was refused at the edge.
    Some(Finding::new(PiiKind::IpAddress, w.start(), w.end(), 0.9))
}

fn ssn(w: &Window<'_, '_>) -> Option<Finding> {
    if w.plus() || w.paren_first() {
        return None;
    }
    let lens = w.group_lens();
    let seps: Vec<&str> = w.seps().collect();
    let base = match (lens.as_slice(), seps.as_slice()) {
        ([3, 2, 4], ["-", "-"]) => 0.85,
        ([3, 2, 4], [" ", " "]) => 0.6,
        ([9], []) => 0.3,
        _ => return None,
    };
    if !validate::us_ssn(w.digits().as_bytes()) {
        return None;
    }
    let near = context::before(w.text(), w.start(), 40);
    let announced = context::mentions(&near, context::SSN);
    if lens.len() == 1 && !announced {
        return None; // nine bare digits are an SSN only where one is announced
    }
    let confidence = adjust(base, announced, &near, 0.4);
    Some(Finding::new(PiiKind::UsSsn, w.start(), w.end(), confidence))
}

fn card(w: &Window<'_, '_>) -> Option<Finding> {
    if w.plus() || w.paren_first() {
        return None;
    }
    let lens = w.group_lens();
    let digits = w.digits();
    if !(12..=19).contains(&digits.len()) {
        return None;
    }
    let seps: Vec<&str> = w.seps().collect();
    if let Some(first) = seps.first() {
        if !matches!(*first, " " | "-") || seps.iter().any(|s| s != first) {
            return None;
        }
        let fours = lens[..lens.len() - 1].iter().all(|&l| l == 4) && lens[lens.len() - 1] <= 4;
        let amex_diners = matches!(lens.as_slice(), [4, 6, 5] | [4, 6, 4]);
        if !(fours || amex_diners) {
            return None;
        }
    }
    if !validate::luhn(digits.as_bytes()) || validate::card_scheme(digits.as_bytes()).is_none() {
        return None;
    }
    let near = context::before(w.text(), w.start(), 40);
    let announced = context::mentions(&near, context::CARD);
    let base = if seps.is_empty() { 0.85 } else { 0.9 };
    let confidence = adjust(base, announced, &near, 0.45);
    Some(Finding::new(PiiKind::CreditCard, w.start(), w.end(), confidence))
}

/// Raises a confidence for a kind's own words before it, lowers it by `penalty` when the word
/// just before says it is an identifier ("order #", "ISBN").
pub(super) fn adjust(base: f32, announced: bool, near: &str, penalty: f32) -> f32 {
    if announced {
        (base + 0.3).max(0.9)
    } else if context::preceded_by(near, context::IDENTIFIER) {
        base - penalty
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.retain(|f| f.confidence >= 0.5);
        out.iter().map(|f| (f.kind, &text[f.start..f.end])).collect()
    }

    #[test]
    fn cards_need_luhn_and_an_issuer() {
        assert_eq!(
            kinds("pay with 4111 1111 1111 1111 today"),
            [(PiiKind::CreditCard, "4111 1111 1111 1111")]
        );
        assert_eq!(kinds("amex 3782-822463-10005."), [(PiiKind::CreditCard, "3782-822463-10005")]);
        assert!(kinds("order 4111 1111 1111 1112").is_empty());
        assert!(kinds("ts 1699999999999").is_empty());
    }

    #[test]
    fn identifiers_and_dates_are_not_findings() {
        for text in [
            "ORD-2023-0001234",
            "v1.2.3.4",
            "2023-01-15",
            "15.01.2023 ",
            "1,234,567",
            "id abc4111111111111111",
            "2023-01-15T10:00:00Z",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn iban_spaced_and_compact_and_not_past_its_length() {
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00 AND MORE"),
            [(PiiKind::Iban, "DE89 3704 0044 0532 0130 00")]
        );
        assert_eq!(kinds("GB29NWBK60161331926819."), [(PiiKind::Iban, "GB29NWBK60161331926819")]);
        assert!(
            kinds("DE89 3704 0044 0532 0130 01").is_empty(),
            "a failed check is nothing, not a phone"
        );
        assert!(kinds("XDE89370400440532013000").is_empty());
    }

    #[test]
    fn ssn_and_ip() {
        assert_eq!(kinds("SSN 536-90-4399"), [(PiiKind::UsSsn, "536-90-4399")]);
        assert!(kinds("666-12-3456").is_empty());
        assert!(kinds("SSN: 078-05-1120").is_empty(), "voided, and not a phone either");
        assert_eq!(kinds("from 192.168.10.1:8080"), [(PiiKind::IpAddress, "192.168.10.1")]);
        assert!(kinds("firmware 10.2.0.1").is_empty());
        assert!(kinds("999.1.1.1").is_empty());
    }
}
