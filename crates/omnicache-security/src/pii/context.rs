//! Words near a candidate, and the characters on either side of it.

/// Words that announce a phone number, in the languages whose formats the detector knows.
pub(super) const PHONE: &[&str] = &[
    "tel",
    "tel.",
    "phone",
    "telephone",
    "call",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "sms",
    "contact",
    "telefon",
    "handy",
    "mobil",
    "anrufen",
    "téléphone",
    "tél",
    "portable",
    "appelez",
    "appeler",
    "teléfono",
    "móvil",
    "movil",
    "llame",
    "llamar",
    "llámanos",
    "telefone",
    "celular",
    "contato",
    "ligue",
    "ligar",
    "тел",
    "телефон",
    "моб",
    "звоните",
    "позвоните",
    "טלפון",
    "טל",
    "נייד",
    "התקשרו",
];

/// Words that announce a Social Security number.
pub(super) const SSN: &[&str] = &["ssn", "ssn#", "ss#", "social security", "soc sec", "taxpayer"];

/// Words that announce a payment card.
pub(super) const CARD: &[&str] = &[
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "discover",
    "cc",
    "pan",
    "tarjeta",
    "cartão",
    "cartao",
    "karte",
    "kreditkarte",
    "carte",
    "карта",
    "карты",
    "כרטיס",
];

/// Words that say the number after them is an identifier, not personal data.
pub(super) const IDENTIFIER: &[&str] = &[
    "order",
    "invoice",
    "tracking",
    "ref",
    "reference",
    "id",
    "no",
    "nr",
    "isbn",
    "issn",
    "version",
    "ver",
    "v",
    "build",
    "release",
    "serial",
    "sku",
    "ticket",
    "case",
    "po",
    "part",
    "model",
    "batch",
    "lot",
    "shipment",
    "awb",
    "transaction",
    "txn",
    "hash",
    "commit",
    "pedido",
    "bestellung",
    "commande",
    "заказ",
    "הזמנה",
    "timestamp",
    "epoch",
    "fedex",
    "ups",
    "usps",
    "dhl",
    "parcel",
    "package",
    "account",
    "acct",
    "konto",
    "compte",
    "cuenta",
    "conta",
    "счет",
    "счёт",
    "routing",
    "swift",
    "bic",
];

/// Words that stand between an identifier word and its number: "order number 123".
const NUMBER_WORDS: &[&str] =
    &["number", "num", "no", "nr", "nº", "n", "numero", "número", "nummer", "numéro", "номер"];

/// The lowercased text in the `window` bytes before `start`, cut on character boundaries.
pub(super) fn before(text: &str, start: usize, window: usize) -> String {
    let mut from = start.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..start].to_lowercase()
}

/// True when `hay` holds one of `words` as a whole word (phrases with spaces match inside).
pub(super) fn mentions(hay: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        if w.contains(' ') {
            return hay.contains(w);
        }
        hay.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '#'))
            .any(|token| token == *w || token.trim_end_matches(['.', '#']) == *w)
    })
}

/// True when the last word of `near` (the lowercased text just before a candidate, from
/// [`before`]) is one of `words`, or is "number", "no." and the like after one: "order
/// #4111...", "ISBN 0-306-...", "v1.2.3.4", "order number 123".
pub(super) fn preceded_by(near: &str, words: &[&str]) -> bool {
    let mut last = near.rsplit(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).take(2);
    match last.next() {
        Some(w) if words.contains(&w) => true,
        Some(w) if NUMBER_WORDS.contains(&w) => last.next().is_some_and(|w| words.contains(&w)),
        _ => false,
    }
}

/// The character just before byte `i`.
pub(super) fn prev_char(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The character at byte `i`.
pub(super) fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|s| s.chars().next())
}

/// A letter, digit or underscore: what continues a word or an identifier.
pub(super) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_matches_whole_words_only() {
        assert!(mentions("call me on ", PHONE));
        assert!(!mentions("recall ", PHONE));
        assert!(mentions("my ssn: ", SSN));
        assert!(mentions("тел.: ", PHONE));
        assert!(!mentions("paid ", IDENTIFIER));
    }

    #[test]
    fn preceded_by_looks_at_the_last_word() {
        assert!(preceded_by("order #", IDENTIFIER));
        assert!(preceded_by("your order number ", IDENTIFIER));
        assert!(!preceded_by("ordered by phone ", IDENTIFIER));
        // A window that would start inside "ñ" starts after it.
        assert_eq!(before("añoÑo", 6, 4), "oñ");
    }
}
