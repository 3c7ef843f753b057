//! Shared pieces of OmniCache's benchmarks: the peers behind one trait, and workload generators.
// The wrappers hold peers whose Debug output is useless in a benchmark.
#![allow(missing_debug_implementations)]

use std::sync::Arc;

/// A cache under test: the calls the race makes, nothing more.
pub trait Contender: Send + Sync + 'static {
    /// The column name in the CSV.
    fn name(&self) -> &'static str;
    /// A lookup; true on a hit.
    fn get(&self, key: u64) -> bool;
    /// An insert of an 8-byte value.
    fn insert(&self, key: u64, value: u64);
}

/// OmniCache's memory cache with its default policy and TTL on.
pub struct Omni(pub omnicache::sync::Cache<u64, u64>);
/// moka 0.12 `sync::Cache`.
pub struct Moka(pub moka::sync::Cache<u64, u64>);
/// quick_cache 0.7 `sync::Cache`.
pub struct Quick(pub quick_cache::sync::Cache<u64, u64>);
/// `lru::LruCache` behind a `parking_lot::Mutex`.
pub struct LruMutex(pub parking_lot::Mutex<lru::LruCache<u64, u64>>);

impl Contender for Omni {
    fn name(&self) -> &'static str {
        "omnicache"
    }
    #[inline]
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value)
    }
}

impl Contender for Moka {
    fn name(&self) -> &'static str {
        "moka"
    }
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value)
    }
}

impl Contender for Quick {
    fn name(&self) -> &'static str {
        "quick_cache"
    }
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value)
    }
}

impl Contender for LruMutex {
    fn name(&self) -> &'static str {
        "lru+mutex"
    }
    fn get(&self, key: u64) -> bool {
        self.0.lock().get(&key).is_some()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.lock().put(key, value);
    }
}

/// Every contender, freshly built with the same capacity; omnicache runs `policy` when given,
/// its default otherwise.
pub fn contenders(
    capacity: u64,
    policy: Option<Arc<dyn omnicache::core::PolicyFactory>>,
) -> Vec<Arc<dyn Contender>> {
    let mut omni = omnicache::sync::Cache::builder()
        .max_capacity(capacity)
        .time_to_live(std::time::Duration::from_secs(3600));
    if let Some(policy) = policy {
        omni = omni.policy_arc(policy);
    }
    vec![
        Arc::new(Omni(omni.build())),
        Arc::new(Moka(moka::sync::Cache::new(capacity))),
        Arc::new(Quick(quick_cache::sync::Cache::new(capacity as usize))),
        Arc::new(LruMutex(parking_lot::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(capacity as usize).unwrap_or(std::num::NonZeroUsize::MIN),
        )))),
    ]
}

/// The policy called `name`, or an error listing the known names.
pub fn policy_by_name(name: &str) -> anyhow::Result<Arc<dyn omnicache::core::PolicyFactory>> {
    omnicache::strategies::by_name(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown policy {name:?}; known: {}",
            omnicache::strategies::NAMES.join(", ")
        )
    })
}

/// `n` keys drawn from Zipf(s) over `1..=universe`, scrambled so hot keys are not adjacent.
pub fn zipf_keys(n: usize, universe: u64, s: f64, seed: u64) -> Vec<u64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let zipf = rand_distr::Zipf::new(universe, s).expect("valid Zipf parameters");
    (0..n).map(|_| scramble(rng.sample(zipf) as u64)).collect()
}

/// A bijective mix so that key ranks do not map to neighbouring hashes.
pub fn scramble(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Peer caches as trace replayers, so the simulator measures them in the same run.
pub mod peers {
    use omnicache::strategies::sim::{Replay, Replayer, Trace};

    /// moka 0.12 `sync::Cache` (TinyLFU admission, LRU eviction), replayed get / insert on miss.
    ///
    /// As users run it, moka applies writes in batches, so between maintenance runs it holds more
    /// entries than its capacity (measured on lirs-sprite at 100 entries: 122 on average, up to
    /// 162). With `strict`, pending work is run after every insert so the bound holds, which is
    /// the comparison at equal memory.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct MokaReplayer {
        /// Run pending tasks after every insert, so the cache never exceeds its capacity.
        pub strict: bool,
    }

    impl Replayer for MokaReplayer {
        fn name(&self) -> String {
            if self.strict { "moka-strict" } else { "moka" }.into()
        }
        fn replay(&self, trace: &Trace, capacity: u64) -> Replay {
            let cache: moka::sync::Cache<u32, ()> = moka::sync::Cache::new(capacity);
            let mut out = Replay::default();
            for &id in &trace.ids {
                out.requests += 1;
                if cache.get(&id).is_some() {
                    out.hits += 1;
                } else {
                    cache.insert(id, ());
                    if self.strict {
                        cache.run_pending_tasks();
                    }
                }
            }
            out
        }
    }

    /// quick_cache 0.7 `unsync::Cache` (its S3-FIFO/CLOCK-Pro-like policy), replayed the same way.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct QuickCacheReplayer;

    impl Replayer for QuickCacheReplayer {
        fn name(&self) -> String {
            "quick_cache".into()
        }
        fn replay(&self, trace: &Trace, capacity: u64) -> Replay {
            let mut out = Replay { requests: trace.len() as u64, hits: 0 };
            if capacity == 0 {
                return out;
            }
            let mut cache: quick_cache::unsync::Cache<u32, ()> =
                quick_cache::unsync::Cache::new(capacity as usize);
            for &id in &trace.ids {
                if cache.get(&id).is_some() {
                    out.hits += 1;
                } else {
                    cache.insert(id, ());
                }
            }
            out
        }
    }
}
