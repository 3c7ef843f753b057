//! What to invalidate: one vocabulary for the API, the tiers and the event bus.

use crate::meta::EntryMeta;
use serde::{Deserialize, Serialize};

/// A set of entries to drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
#[non_exhaustive]
pub enum Invalidation {
    /// One key.
    Key(Vec<u8>),
    /// Several keys.
    Keys(Vec<Vec<u8>>),
    /// Every entry carrying this tag.
    Tag(String),
    /// Every key starting with these bytes.
    Prefix(Vec<u8>),
    /// Every entry of this data subject.
    Subject(String),
    /// Everything.
    All,
}

impl Invalidation {
    /// Whether an entry with `key` and `meta` is covered.
    pub fn matches(&self, key: &[u8], meta: &EntryMeta) -> bool {
        match self {
            Invalidation::Key(k) => k == key,
            Invalidation::Keys(ks) => ks.iter().any(|k| k == key),
            Invalidation::Tag(t) => meta.tags.iter().any(|x| x == t),
            Invalidation::Prefix(p) => key.starts_with(p),
            Invalidation::Subject(s) => meta.subject.as_deref() == Some(s.as_str()),
            Invalidation::All => true,
        }
    }

    /// Whether deciding needs the entry's metadata (tags or subject), not just its key.
    pub fn needs_meta(&self) -> bool {
        matches!(self, Invalidation::Tag(_) | Invalidation::Subject(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_each_variant() {
        let mut meta = EntryMeta::new(0);
        meta.tags = vec!["users".into()];
        meta.subject = Some("alice".into());
        let key = b"user:1";
        assert!(Invalidation::Key(key.to_vec()).matches(key, &meta));
        assert!(!Invalidation::Key(b"user:2".to_vec()).matches(key, &meta));
        assert!(Invalidation::Keys(vec![b"x".to_vec(), key.to_vec()]).matches(key, &meta));
        assert!(Invalidation::Tag("users".into()).matches(key, &meta));
        assert!(!Invalidation::Tag("orders".into()).matches(key, &meta));
        assert!(Invalidation::Prefix(b"user:".to_vec()).matches(key, &meta));
        assert!(!Invalidation::Prefix(b"order:".to_vec()).matches(key, &meta));
        assert!(Invalidation::Subject("alice".into()).matches(key, &meta));
        assert!(!Invalidation::Subject("bob".into()).matches(key, &meta));
        assert!(Invalidation::All.matches(key, &meta));
    }

    #[cfg(feature = "json")]
    #[test]
    fn serializes_with_a_tag() {
        let s = serde_json::to_string(&Invalidation::Tag("t".into())).unwrap();
        assert_eq!(s, r#"{"by":"tag","value":"t"}"#);
        let back: Invalidation = serde_json::from_str(&s).unwrap();
        assert_eq!(back, Invalidation::Tag("t".into()));
    }
}
