//! One check of the tiered cache's transform stack over a real tier, shared by the disk, Redis
//! and S3 tests: what the tier holds is transformed and says so in its header, and what the
//! cache serves is the value as written.

use omnicache_core::envelope::flags;
use omnicache_core::{DynTier, ErrorKind, Result, Transform, TransformContext};
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::sync::Arc;

/// XOR with a keystream drawn from the key id and the entry's key: reversible, keyed and bound
/// to the key, standing in for encryption. Its inverse refuses key ids it does not know.
#[derive(Debug)]
pub(crate) struct Xor(pub u32);

impl Xor {
    fn stream(key_id: u32, key: &[u8]) -> impl Iterator<Item = u8> + '_ {
        let seed = key.iter().fold(key_id, |h, &b| h.wrapping_mul(31).wrapping_add(b as u32));
        (0u32..).map(move |i| (seed.wrapping_add(i).wrapping_mul(2_654_435_761) >> 24) as u8)
    }
}

impl Transform for Xor {
    fn flag(&self) -> u8 {
        flags::ENCRYPTED
    }
    fn key_id(&self) -> u32 {
        self.0
    }
    fn forward(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        Ok(input.iter().zip(Xor::stream(ctx.key_id, ctx.key)).map(|(b, k)| b ^ k).collect())
    }
    fn inverse(&self, input: &[u8], ctx: &TransformContext<'_>) -> Result<Vec<u8>> {
        if ctx.key_id != self.0 {
            return Err(omnicache_core::Error::new(ErrorKind::Codec, "unknown key id"));
        }
        self.forward(input, ctx)
    }
}

/// Writes through a cache with the [`Xor`] transform into `tier` (empty, keys under `k:`), and
/// checks the tier's copy, the cache's reads, entries written before the transform, and a
/// cache that lacks the transform.
pub(crate) async fn check_transforms_over(tier: Arc<dyn DynTier>) {
    let value = b"a value the tier must not hold in the clear".to_vec();
    // Written before the cache had a transform: stays readable after it gets one.
    let plain = TieredCache::builder().tier(tier.clone(), WritePolicy::Through).build().unwrap();
    plain.put(b"k:old", b"old".to_vec(), PutOptions::default()).await.unwrap();

    let cache = TieredCache::builder()
        .transform(Arc::new(Xor(7)))
        .tier(tier.clone(), WritePolicy::Through)
        .build()
        .unwrap();
    cache.put(b"k:new", value.clone(), PutOptions::default()).await.unwrap();
    let stored = tier.get(b"k:new").await.unwrap().expect("written through");
    assert_ne!(stored.value, value, "the tier holds the transformed bytes");
    assert_eq!(stored.value.len(), value.len());
    assert_eq!((stored.encoding.flags, stored.encoding.key_id), (flags::ENCRYPTED, 7));
    assert_eq!(stored.meta.weight as usize, value.len(), "metadata describes the value as written");

    cache.evict_from_l1(b"k:new");
    assert_eq!(cache.get(b"k:new").await.unwrap().value, value, "undone on the way up");
    assert_eq!(cache.get(b"k:old").await.unwrap().value, b"old");

    // A cache without the transform cannot read the entry: a miss, counted, and no garbage.
    let blind = TieredCache::builder().tier(tier.clone(), WritePolicy::Through).build().unwrap();
    assert!(blind.get(b"k:new").await.is_none());
    assert_eq!(blind.tiers()[0].stats.corrupt, 1);
    assert_eq!(cache.transform_errors(), 0);
    for c in [plain, cache, blind] {
        c.shutdown().await;
    }
}
