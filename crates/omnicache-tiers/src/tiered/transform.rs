//! The transform stack between L1 and the tiers: applied in order on the way down, undone in
//! reverse order on the way up, and recorded in each entry's [`Encoding`] so a reader knows what
//! to undo. L1 holds values as written; every tier below holds them transformed.

use omnicache_core::envelope::flags;
use omnicache_core::{
    Encoding, Error, ErrorKind, Result, TierEntry, Transform, TransformContext, ENCRYPT_TAG,
};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The transforms of one tiered cache, in the order they apply on the way down, and the
/// on-demand one applied on top to entries tagged [`ENCRYPT_TAG`] when the stack does not already
/// set its flag (encryption a write guard asked for in a cache that does not encrypt).
#[derive(Clone, Default)]
pub(super) struct Transforms {
    stack: Arc<[Arc<dyn Transform>]>,
    on_demand: Option<Arc<dyn Transform>>,
}

impl fmt::Debug for Transforms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transforms")
            .field("stack", &self.stack)
            .field("on_demand", &self.on_demand)
            .finish()
    }
}

fn check_flag(t: &Arc<dyn Transform>) -> Result<u8> {
    let flag = t.flag();
    if flag.count_ones() != 1 || flag & !flags::KNOWN != 0 {
        return Err(Error::invalid_input(format!(
            "transform {t:?} sets flag {flag:#04x}; it must set exactly one of the \
             envelope's flag bits ({:#04x})",
            flags::KNOWN
        )));
    }
    Ok(flag)
}

impl Transforms {
    /// The stack, checked: each transform sets one flag bit the envelope format defines, and no
    /// two set the same one (a reader could not tell which to undo). The on-demand transform
    /// may share a stack transform's flag (it is then never applied).
    pub(super) fn new(
        stack: Vec<Arc<dyn Transform>>,
        on_demand: Option<Arc<dyn Transform>>,
    ) -> Result<Self> {
        let mut seen = 0u8;
        for t in &stack {
            let flag = check_flag(t)?;
            if seen & flag != 0 {
                return Err(Error::invalid_input(format!(
                    "two transforms set flag {flag:#04x}; each needs its own"
                )));
            }
            seen |= flag;
        }
        if let Some(t) = &on_demand {
            check_flag(t)?;
        }
        Ok(Transforms { stack: stack.into(), on_demand })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.stack.is_empty() && self.on_demand.is_none()
    }

    fn stack_flags(&self) -> u8 {
        self.stack.iter().fold(0u8, |f, t| f | t.flag())
    }

    /// The on-demand transform, when the stack lacks its flag.
    fn extra(&self) -> Option<&Arc<dyn Transform>> {
        self.on_demand.as_ref().filter(|t| self.stack_flags() & t.flag() == 0)
    }

    /// `entry` as the tiers store it. An entry that arrives already transformed (written into
    /// this cache as a [`Tier`](omnicache_core::Tier) by one with its own transforms) passes
    /// unchanged when this cache has none, and is refused when it has some.
    pub(super) fn down(&self, key: &[u8], entry: &TierEntry) -> Result<TierEntry> {
        let extra = self.extra().filter(|_| entry.meta.tags.iter().any(|t| t == ENCRYPT_TAG));
        if self.stack.is_empty() && extra.is_none() {
            return Ok(entry.clone());
        }
        if entry.encoding.flags != 0 {
            return Err(Error::invalid_input(
                "the entry is already transformed, and this cache transforms what it stores",
            ));
        }
        let mut encoding = entry.encoding;
        let mut value = Cow::Borrowed(entry.value.as_slice());
        let subject = entry.meta.subject.as_deref();
        for t in self.stack.iter().chain(extra) {
            let key_id = t.key_id();
            value = Cow::Owned(t.forward(&value, &TransformContext { key, key_id, subject })?);
            encoding.flags |= t.flag();
            if key_id != 0 {
                encoding.key_id = key_id;
            }
        }
        Ok(TierEntry { value: value.into_owned(), meta: entry.meta.clone(), encoding })
    }

    /// Whether an entry stored with `encoding` is not what the stack would store now: a
    /// transform it lacks, or a keyed transform's key that is no longer the current one (after
    /// a rotation). Such entries are rewritten by [`TieredCache::retransform`](super::TieredCache::retransform).
    pub(super) fn is_stale(&self, encoding: &omnicache_core::Encoding) -> bool {
        let stack_stale = self.stack.iter().any(|t| {
            encoding.flags & t.flag() == 0 || (t.key_id() != 0 && encoding.key_id != t.key_id())
        });
        let extra_stale = self.extra().is_some_and(|t| {
            encoding.flags & t.flag() != 0 && t.key_id() != 0 && encoding.key_id != t.key_id()
        });
        stack_stale || extra_stale
    }

    /// The entry as it was written, from what a tier returned: each transform whose flag is set
    /// undone, last applied first. An entry with a flag no transform here sets cannot be read
    /// ([`ErrorKind::Codec`]); a failed inverse is the transform's error.
    pub(super) fn up(&self, key: &[u8], entry: TierEntry) -> Result<TierEntry> {
        let applied = entry.encoding.flags;
        if applied == 0 {
            return Ok(entry);
        }
        let extra = self.extra();
        let known = self.stack_flags() | extra.map_or(0, |t| t.flag());
        if applied & !known != 0 {
            return Err(Error::new(
                ErrorKind::Codec,
                format!(
                    "the entry was written with a transform this cache does not have (flags \
                     {:#04x})",
                    applied & !known
                ),
            ));
        }
        let ctx = TransformContext {
            key,
            key_id: entry.encoding.key_id,
            subject: entry.meta.subject.as_deref(),
        };
        let mut value = entry.value;
        for t in
            extra.into_iter().chain(self.stack.iter().rev()).filter(|t| applied & t.flag() != 0)
        {
            value = t.inverse(&value, &ctx)?;
        }
        let encoding = Encoding { codec: entry.encoding.codec, ..Encoding::RAW };
        Ok(TierEntry { value, meta: entry.meta, encoding })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnicache_core::EntryMeta;

    /// XOR with a byte derived from the key id and the key: reversible, keyed, bound to the key.
    #[derive(Debug)]
    struct Xor(u32);

    impl Transform for Xor {
        fn flag(&self) -> u8 {
            flags::ENCRYPTED
        }
        fn key_id(&self) -> u32 {
            self.0
        }
        fn forward(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
            let k = ctx.key_id as u8 ^ ctx.key.len() as u8;
            Ok(input.iter().map(|b| b ^ k).collect())
        }
        fn inverse(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
            self.forward(input, ctx)
        }
    }

    /// Doubles every byte; the inverse checks the pairs.
    #[derive(Debug)]
    struct Twice;

    impl Transform for Twice {
        fn flag(&self) -> u8 {
            flags::COMPRESSED
        }
        fn forward(&self, input: &[u8], _: &TransformContext<'_>) -> Result<Vec<u8>> {
            Ok(input.iter().flat_map(|&b| [b, b]).collect())
        }
        fn inverse(&self, input: &[u8], _: &TransformContext<'_>) -> Result<Vec<u8>> {
            if !input.len().is_multiple_of(2) || input.chunks(2).any(|p| p[0] != p[1]) {
                return Err(Error::new(ErrorKind::Codec, "not doubled"));
            }
            Ok(input.iter().step_by(2).copied().collect())
        }
    }

    fn stack(ts: Vec<Arc<dyn Transform>>) -> Transforms {
        Transforms::new(ts, None).unwrap()
    }

    #[test]
    fn a_stack_round_trips_and_records_what_it_did() {
        let s = stack(vec![Arc::new(Twice), Arc::new(Xor(7))]);
        let e = TierEntry::new(b"abc".to_vec(), EntryMeta::new(1));
        let down = s.down(b"k", &e).unwrap();
        assert_eq!(down.encoding.flags, flags::COMPRESSED | flags::ENCRYPTED);
        assert_eq!(down.encoding.key_id, 7);
        assert_ne!(down.value, b"aabbcc", "the XOR ran after the doubling");
        assert_eq!(s.up(b"k", down).unwrap(), e);
    }

    #[test]
    fn the_on_demand_transform_applies_to_tagged_entries_only_and_never_twice() {
        let s = Transforms::new(vec![Arc::new(Twice)], Some(Arc::new(Xor(9)))).unwrap();
        let plain = TierEntry::new(b"abc".to_vec(), EntryMeta::new(1));
        let mut tagged = plain.clone();
        tagged.meta.tags.push(ENCRYPT_TAG.into());
        assert_eq!(s.down(b"k", &plain).unwrap().encoding.flags, flags::COMPRESSED);
        let down = s.down(b"k", &tagged).unwrap();
        assert_eq!(down.encoding.flags, flags::COMPRESSED | flags::ENCRYPTED);
        assert_eq!(down.encoding.key_id, 9);
        assert_eq!(s.up(b"k", down).unwrap(), tagged);
        // A stack that encrypts already: the on-demand one is never applied.
        let s = Transforms::new(vec![Arc::new(Xor(1))], Some(Arc::new(Xor(9)))).unwrap();
        assert_eq!(s.down(b"k", &tagged).unwrap().encoding.key_id, 1);
        // Only the on-demand one: untagged entries pass as they are.
        let s = Transforms::new(vec![], Some(Arc::new(Xor(9)))).unwrap();
        assert_eq!(s.down(b"k", &plain).unwrap(), plain);
        assert_eq!(s.up(b"k", s.down(b"k", &tagged).unwrap()).unwrap(), tagged);
    }

    #[test]
    fn entries_written_before_a_transform_was_added_stay_readable() {
        let old = stack(vec![Arc::new(Twice)])
            .down(b"k", &TierEntry::new(b"v".to_vec(), EntryMeta::new(1)))
            .unwrap();
        let now = stack(vec![Arc::new(Twice), Arc::new(Xor(1))]);
        assert_eq!(now.up(b"k", old).unwrap().value, b"v");
    }

    #[test]
    fn an_entry_needing_a_missing_transform_is_refused() {
        let enc = stack(vec![Arc::new(Xor(3))])
            .down(b"k", &TierEntry::new(b"v".to_vec(), EntryMeta::new(1)))
            .unwrap();
        let err = stack(vec![Arc::new(Twice)]).up(b"k", enc.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Codec);
        assert_eq!(Transforms::default().up(b"k", enc).unwrap_err().kind(), ErrorKind::Codec);
    }

    #[test]
    fn stacks_with_unknown_or_shared_flags_are_refused() {
        #[derive(Debug)]
        struct Flag(u8);
        impl Transform for Flag {
            fn flag(&self) -> u8 {
                self.0
            }
            fn forward(&self, i: &[u8], _: &TransformContext<'_>) -> Result<Vec<u8>> {
                Ok(i.to_vec())
            }
            fn inverse(&self, i: &[u8], _: &TransformContext<'_>) -> Result<Vec<u8>> {
                Ok(i.to_vec())
            }
        }
        for bad in [vec![Flag(0)], vec![Flag(0x80)], vec![Flag(3)], vec![Flag(1), Flag(1)]] {
            let ts = bad.into_iter().map(|f| Arc::new(f) as Arc<dyn Transform>).collect();
            assert_eq!(Transforms::new(ts, None).unwrap_err().kind(), ErrorKind::InvalidInput);
        }
    }
}
