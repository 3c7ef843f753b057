//! Phone numbers: a format gate, then libphonenumber's numbering plans.
//!
//! The gate decides which countries a run could be written for: "+" or "00" and a country
//! code; a national trunk prefix (0 in GB, DE, FR, IL and BR, 8 in RU); the North American
//! plan's shape (area and exchange codes start 2-9); Spain's nine digits starting 6-9; Brazil's
//! area code in parentheses. Only then does the `phonenumber` crate check the number against
//! those countries' metadata, which knows their valid ranges; libphonenumber alone accepts far
//! too much when given a default country (a date or a millisecond timestamp parses as a German
//! number), which is why the gate comes first.

use phonenumber::country::Id;

use super::context;
use super::numeric::{adjust, Window};
use super::{Finding, PiiKind};

/// libphonenumber's metadata compiles its patterns lazily into a cache of 100 regexes shared by
/// all countries; eight countries' worth of patterns do not fit, and a scan spent most of its
/// time recompiling them. Enlarged once, so every pattern is compiled once.
pub(super) fn warm_metadata() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cache = phonenumber::metadata::DATABASE.cache();
        let mut guard = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = regex_cache::RegexCache::new(8_192);
    });
}

pub(super) fn phone(w: &Window<'_, '_>) -> Option<Finding> {
    let lens = w.group_lens();
    let seps: Vec<&str> = w.seps().collect();
    let digits = w.digits();
    let plus = w.plus();
    let international =
        plus || (digits.starts_with("00") && !digits.starts_with("000") && !seps.is_empty());
    // "+44 (0)20 ...": the trunk prefix in parentheses is not a group of the number.
    let trunk_in_parens = international
        && lens.len() > 2
        && lens[1] == 1
        && seps[0].ends_with('(')
        && w.groups().nth(1) == Some("0");
    let (layout_lens, layout_seps) = if trunk_in_parens {
        ([&lens[..1], &lens[2..]].concat(), [&seps[..1], &seps[2..]].concat())
    } else {
        (lens.clone(), seps.clone())
    };
    if !plausible_layout(&layout_lens, &layout_seps, international) {
        return None;
    }
    let n = digits.len();
    // "ddd-dd-dddd" is how SSNs are written, not phone numbers (but "030 12 3456" is German);
    // a voided SSN ("078-05-1120") is still no phone.
    if lens == [3, 2, 4] && (!digits.starts_with('0') || seps.iter().all(|s| *s == "-")) {
        return None;
    }
    let separated = !seps.is_empty();
    let base = if international {
        let number = e164(w, plus)?;
        let len = number.len() - 1;
        if !(8..=15).contains(&len) {
            return None;
        }
        match phonenumber::parse(None, &number) {
            Ok(parsed) if parsed.is_valid() => 0.95,
            Ok(_) if separated && len >= 10 => 0.7,
            Ok(_) => 0.45,
            Err(_) => return None,
        }
    } else {
        if !(7..=13).contains(&n) {
            return None;
        }
        let regions = national_regions(w, &digits, &lens);
        if regions.is_empty() {
            return None;
        }
        let valid = regions
            .iter()
            .any(|&r| phonenumber::parse(Some(r), &digits).is_ok_and(|p| p.is_valid()));
        match (valid, separated) {
            (true, true) => 0.85,
            // Written without spaces, a national number is as likely an identifier, unless it
            // carries its trunk prefix and a full length ("0612345678", "07911123456").
            (true, false) if digits.starts_with('0') && n >= 10 => 0.6,
            // Ten bare digits in the North American plan's assigned ranges.
            (true, false) if regions.contains(&Id::US) => 0.55,
            (true, false) => 0.45,
            // A NANP number in its written form, "(555) 123-4567", outside the assigned ranges.
            (false, true) if w.paren_first() && lens == [3, 3, 4] => 0.6,
            (false, true) => 0.35,
            (false, false) => return None,
        }
    };
    let near = context::before(w.text(), w.start(), 40);
    let announced = context::mentions(&near, context::PHONE);
    let confidence = adjust(base, announced, &near, 0.4);
    Some(Finding::new(PiiKind::Phone, w.start(), w.end(), confidence))
}

/// Phone numbers end in a group of two or more digits, have one-digit groups only where a
/// trunk or country code stands, use dots only throughout, and at most one slash.
fn plausible_layout(lens: &[usize], seps: &[&str], international: bool) -> bool {
    if lens.len() > 1 && lens[lens.len() - 1] < 2 {
        return false;
    }
    let one_digit_ok = |i: usize| i == 0 || (i == 1 && international);
    if lens.iter().enumerate().any(|(i, &l)| l == 1 && !one_digit_ok(i)) {
        return false;
    }
    let dots = seps.iter().filter(|s| s.contains('.')).count();
    // "0.825154" is a decimal; dotted numbers have three groups or more ("415.555.2671").
    if dots > 0 && (dots != seps.len() || lens.len() < 3) {
        return false;
    }
    seps.iter().filter(|s| s.contains('/')).count() <= 1
}

/// "+" and the digits, with "00" read as "+" and a "(0)" trunk after the country code dropped.
fn e164(w: &Window<'_, '_>, plus: bool) -> Option<String> {
    let groups: Vec<&str> = w.groups().collect();
    let seps: Vec<&str> = w.seps().collect();
    let mut number = String::from("+");
    for (i, g) in groups.iter().enumerate() {
        let trunk_in_parens = i == 1 && *g == "0" && seps[0].ends_with('(');
        if !trunk_in_parens {
            number.push_str(g);
        }
    }
    if !plus {
        number = format!("+{}", number.strip_prefix("+00")?);
    }
    Some(number)
}

/// The countries whose national format this number is written in.
fn national_regions(w: &Window<'_, '_>, digits: &str, lens: &[usize]) -> Vec<Id> {
    let d = digits.as_bytes();
    let n = d.len();
    let mut regions = Vec::with_capacity(4);
    let nanp =
        |x: &[u8]| x.len() == 10 && (b'2'..=b'9').contains(&x[0]) && (b'2'..=b'9').contains(&x[3]);
    if nanp(d) || (n == 11 && d[0] == b'1' && nanp(&d[1..])) {
        regions.push(Id::US);
    }
    if d[0] == b'0' && d[1] != b'0' {
        if (10..=11).contains(&n) {
            regions.push(Id::GB);
        }
        if (6..=13).contains(&n) {
            regions.push(Id::DE);
        }
        if n == 10 {
            regions.push(Id::FR);
        }
        if (9..=10).contains(&n) {
            regions.push(Id::IL);
        }
        if (11..=12).contains(&n) {
            regions.push(Id::BR);
        }
    }
    if d[0] == b'8' && n == 11 {
        regions.push(Id::RU);
    }
    // Russian numbers without the trunk 8: "(912) 345-67-89", "9123456789".
    if n == 10
        && matches!(d[0], b'3' | b'4' | b'8' | b'9')
        && (w.paren_first() || lens.len() == 1 || lens[lens.len() - 1] == 2)
    {
        regions.push(Id::RU);
    }
    if n == 9 && (b'6'..=b'9').contains(&d[0]) {
        regions.push(Id::ES);
    }
    if (10..=11).contains(&n)
        && lens[0] == 2
        && (w.paren_first() || lens.last() == Some(&4))
        && d[0] != b'0'
    {
        regions.push(Id::BR);
    }
    regions
}
