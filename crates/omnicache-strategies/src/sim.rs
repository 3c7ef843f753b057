//! Trace replay: drives a policy the way the memory cache does (get; insert on miss; evict
//! while over capacity), with unit weights, and counts hits. The kernel of the trace simulator.

use omnicache_core::{AccessView, EntryInfo, PolicyFactory, ReadTracking, SlotId};
use std::collections::HashMap;

/// Hits and requests of one replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replay {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that found their key resident.
    pub hits: u64,
}

impl Replay {
    /// Hits over requests (0 for an empty trace).
    pub fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.hits as f64 / self.requests as f64
        }
    }
}

/// A well-mixed 64-bit hash of a trace key, as the cache's hasher would give.
pub fn mix(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Slots {
    keys: Vec<u64>,
    accesses: Vec<u8>,
}

impl AccessView for Slots {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        std::mem::take(&mut self.accesses[slot as usize])
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        mix(self.keys[slot as usize])
    }
}

/// Replays `keys` through a cache of `capacity` entries evicting with `factory`'s policy.
pub fn replay(factory: &dyn PolicyFactory, keys: &[u64], capacity: u64) -> Replay {
    let mut policy = factory.build(capacity);
    let events = policy.read_tracking() == ReadTracking::Events;
    let mut resident: HashMap<u64, SlotId> = HashMap::with_capacity(capacity as usize + 1);
    let mut slots = Slots { keys: Vec::new(), accesses: Vec::new() };
    let mut free: Vec<SlotId> = Vec::new();
    let mut out = Replay::default();
    for &key in keys {
        out.requests += 1;
        if let Some(&s) = resident.get(&key) {
            out.hits += 1;
            let a = &mut slots.accesses[s as usize];
            *a = (*a + 1).min(3);
            if events {
                policy.on_access(s);
            }
            continue;
        }
        if capacity == 0 {
            continue;
        }
        let s = free.pop().unwrap_or_else(|| {
            slots.keys.push(0);
            slots.accesses.push(0);
            (slots.keys.len() - 1) as SlotId
        });
        slots.keys[s as usize] = key;
        slots.accesses[s as usize] = 0;
        resident.insert(key, s);
        policy.on_insert(s, EntryInfo { hash: mix(key), weight: 1, expires: None });
        while resident.len() as u64 > capacity {
            let Some(v) = policy.evict(&mut slots) else { break };
            resident.remove(&slots.keys[v as usize]);
            free.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LruFactory;
    use omnicache_core::testkit::SplitMix;

    /// LRU by brute force: a vector ordered by recency.
    fn brute_lru(keys: &[u64], capacity: usize) -> u64 {
        let mut order: Vec<u64> = Vec::new();
        let mut hits = 0;
        for &k in keys {
            if let Some(i) = order.iter().position(|&x| x == k) {
                hits += 1;
                order.remove(i);
            } else if order.len() == capacity {
                if capacity == 0 {
                    continue;
                }
                order.remove(0);
            }
            order.push(k);
        }
        hits
    }

    #[test]
    fn lru_replay_matches_brute_force_on_random_traces() {
        for seed in 0..30 {
            let mut rng = SplitMix(seed);
            let universe = 1 + rng.below(60);
            let keys: Vec<u64> = (0..2_000).map(|_| rng.below(universe)).collect();
            let cap = rng.below(40);
            let r = replay(&LruFactory, &keys, cap);
            assert_eq!(r.requests, 2_000);
            assert_eq!(r.hits, brute_lru(&keys, cap as usize), "seed {seed} cap {cap}");
        }
    }

    #[test]
    fn empty_trace_and_zero_capacity() {
        assert_eq!(replay(&LruFactory, &[], 10), Replay::default());
        let r = replay(&LruFactory, &[1, 1, 1], 0);
        assert_eq!((r.requests, r.hits), (3, 0));
    }
}
