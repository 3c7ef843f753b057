//! Key rotation against a model: random interleavings of writes, rotations, re-encryption
//! passes, L1 evictions and retirements of old keys, over an encrypting tiered cache. After
//! every step each live entry reads back as the model says (from the tier too), and a key is
//! retired only when the pass left nothing under it, so no entry is ever left under a retired
//! key.

use omnicache::security::{Encrypt, KeyRing, KeyState};
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache_core::testkit::MemoryTier;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Rotate,
    Pass(usize),
    Evict(u8),
    RetireOld,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => Just(Op::Rotate),
        2 => (1usize..6).prop_map(Op::Pass),
        2 => (0u8..12).prop_map(Op::Evict),
        1 => Just(Op::RetireOld),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("k{k}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_live_entry_stays_readable_and_none_is_left_under_a_retired_key(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let ring = Arc::new(KeyRing::generate().unwrap());
            let tier = Arc::new(MemoryTier::default());
            let cache = TieredCache::builder()
                .l1_capacity(4)
                .sweep_interval(None)
                .transform(Arc::new(Encrypt::new(ring.clone(), "model")))
                .tier(tier.clone(), WritePolicy::Through)
                .build()
                .unwrap();
            let mut model: HashMap<u8, u8> = HashMap::new();
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        cache.put(&key(k), vec![v; 8], PutOptions::default()).await.unwrap();
                        model.insert(k, v);
                    }
                    Op::Rotate => {
                        ring.rotate().unwrap();
                    }
                    Op::Pass(page) => {
                        let report = cache.retransform(page, None).await.unwrap();
                        assert_eq!(report.unreadable, 0, "{report:?}");
                    }
                    Op::Evict(k) => cache.evict_from_l1(&key(k)),
                    Op::RetireOld => {
                        let report = cache.retransform(3, None).await.unwrap();
                        let primary = ring.primary().unwrap().id();
                        for k in ring.keys() {
                            if k.id() == primary || k.state() == KeyState::Retired {
                                continue;
                            }
                            let left = report.left_under.get(&k.id()).copied().unwrap_or(0);
                            assert_eq!(left, 0, "a full pass leaves nothing under key {}", k.id());
                            // Refused while in use, unforced: here nothing uses it.
                            ring.retire(k.id(), left, false).unwrap();
                        }
                    }
                }
                for (k, v) in &model {
                    cache.evict_from_l1(&key(*k));
                    let got = cache.get(&key(*k)).await;
                    assert_eq!(got.map(|e| e.value.clone()), Some(vec![*v; 8]), "k{k} after {:?}", ring);
                }
            }
            // Retiring a key still in use is refused unless forced, and counted when forced.
            let old = ring.primary().unwrap().id();
            cache.put(b"late", b"v".to_vec(), PutOptions::default()).await.unwrap();
            ring.rotate().unwrap();
            assert!(ring.retire(old, 1, false).is_err());
            ring.retire(old, 1, true).unwrap();
            assert_eq!(ring.forced_retirements(), 1);
        });
    }
}
