//! Fetching ahead through a `PrefetchAdvisor`: suggested keys a tier holds reach L1 in the
//! background, the advisor hears what paid off, and the in-flight bound holds.

use super::rt;
use omnicache_core::testkit::MemoryTier;
use omnicache_core::{Access, PrefetchAdvisor, PrefetchOutcome};
use omnicache_tiers::tiered::{PrefetchLimits, PutOptions, TieredCache, WritePolicy};
use std::sync::{Arc, Mutex};

/// Suggests the next key by number: after `k7`, `k8` (and `k9`, ... up to `ahead`).
#[derive(Debug, Default)]
struct Successor {
    ahead: usize,
    outcomes: Mutex<Vec<(String, PrefetchOutcome)>>,
}

impl PrefetchAdvisor for Successor {
    fn advise(&self, access: &Access<'_>, limit: usize, out: &mut Vec<Vec<u8>>) {
        let Some(n) = std::str::from_utf8(access.key)
            .ok()
            .and_then(|k| k.strip_prefix('k'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return;
        };
        for i in 1..=self.ahead.min(limit) as u32 {
            out.push(format!("k{}", n + i).into_bytes());
        }
    }

    fn outcome(&self, key: &[u8], outcome: PrefetchOutcome) {
        self.outcomes.lock().unwrap().push((String::from_utf8_lossy(key).into(), outcome));
    }
}

async fn idle(cache: &TieredCache) {
    while cache.prefetch_stats().in_flight > 0 {
        tokio::task::yield_now().await;
    }
}

async fn fill(tier: &Arc<MemoryTier>, n: u32) {
    let writer = TieredCache::builder().tier(tier.clone(), WritePolicy::Through).build().unwrap();
    for i in 0..n {
        writer.put(format!("k{i}").as_bytes(), vec![1; 10], PutOptions::default()).await.unwrap();
    }
}

#[test]
fn suggested_keys_reach_l1_and_the_advisor_hears_what_paid_off() {
    rt().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        fill(&tier, 10).await;
        let advisor = Arc::new(Successor { ahead: 1, ..Default::default() });
        let cache = TieredCache::builder()
            .l1_capacity(3)
            .prefetch(advisor.clone(), PrefetchLimits::default())
            .tier(tier.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        assert!(cache.get(b"k1").await.is_some());
        idle(&cache).await;
        assert!(cache.l1_keys(b"").contains(&b"k2".to_vec()), "k2 was fetched ahead");
        assert!(cache.get(b"k2").await.is_some());
        let s = cache.stats();
        assert_eq!((s.hits, s.promotions), (2, 1), "k2 came from L1, not the tier: {s:?}");
        idle(&cache).await;
        let s = cache.prefetch_stats();
        assert_eq!((s.suggested, s.fetched, s.loaded, s.used), (2, 2, 2, 1), "{s:?}");
        assert_eq!(
            advisor.outcomes.lock().unwrap().clone(),
            vec![("k2".into(), PrefetchOutcome::Used)]
        );

        // k3 was fetched after the read of k2; pushing it out of L1 unread wastes it.
        for k in ["k7", "k8", "k9"] {
            cache.put(k.as_bytes(), vec![2; 10], PutOptions::default()).await.unwrap();
        }
        cache.flush().await;
        let outcomes = advisor.outcomes.lock().unwrap().clone();
        assert!(outcomes.contains(&("k3".into(), PrefetchOutcome::Wasted)), "{outcomes:?}");
        assert_eq!(cache.prefetch_stats().wasted, 1);

        // Suggestions a tier does not hold, or that L1 has, fetch nothing.
        let before = cache.prefetch_stats();
        assert!(cache.get(b"k9").await.is_some()); // suggests k10: in no tier
        idle(&cache).await;
        let after = cache.prefetch_stats();
        assert_eq!(after.loaded, before.loaded, "{after:?}");
        assert_eq!(cache.stats().misses, 0, "a prefetch's miss is not the cache's");
    });
}

#[test]
fn the_in_flight_bound_drops_what_exceeds_it() {
    // One thread: no fetch finishes while the lookup hands out its suggestions.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tier = Arc::new(MemoryTier::default());
        fill(&tier, 20).await;
        let advisor = Arc::new(Successor { ahead: 8, ..Default::default() });
        let limits = PrefetchLimits { per_lookup: 8, in_flight: 2, ..Default::default() };
        let cache = TieredCache::builder()
            .l1_capacity(100)
            .prefetch(advisor, limits)
            .tier(tier, WritePolicy::Through)
            .build()
            .unwrap();
        assert!(cache.get(b"k0").await.is_some());
        let s = cache.prefetch_stats();
        assert_eq!(s.suggested, 8);
        assert_eq!((s.fetched, s.dropped, s.in_flight), (2, 6, 2), "{s:?}");
        idle(&cache).await;
        assert_eq!(cache.prefetch_stats().loaded, 2);
    });
}

#[test]
fn without_an_advisor_nothing_is_fetched() {
    rt().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        fill(&tier, 3).await;
        let cache = TieredCache::builder().tier(tier, WritePolicy::Through).build().unwrap();
        assert!(cache.get(b"k1").await.is_some());
        assert_eq!(cache.l1_keys(b""), vec![b"k1".to_vec()]);
        assert_eq!(cache.prefetch_stats(), Default::default());
    });
}
