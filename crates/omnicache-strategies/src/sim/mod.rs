//! The trace simulator: replays real cache traces through policies the way the memory cache
//! drives them (get; insert on miss; evict while over capacity; unit weights), beside Belady's
//! OPT, over a grid of policies and sizes on all cores, with table, CSV and SVG output.
//!
//! ```
//! use omnicache_strategies::sim::{opt, replay_trace, Trace};
//! use omnicache_strategies::LruFactory;
//!
//! let trace = Trace::from_keys("loop", (0..1_000u64).map(|i| i % 11));
//! let lru = replay_trace(&LruFactory, &trace, 10);
//! let best = opt(&trace, 10);
//! assert_eq!(lru.hits, 0, "LRU thrashes on a loop one larger than the cache");
//! assert!(best.hits > 800, "OPT keeps most of the loop");
//! ```

use omnicache_core::{AccessView, AdmissionPolicy, EntryInfo, PolicyFactory, ReadTracking, SlotId};

mod grid;
mod opt;
mod plot;
mod trace;

pub use grid::{
    parse_sizes, run_grid, simulate, write_csv, write_table, PolicyReplayer, Replayer, Row,
    SizeSpec,
};
pub use opt::{opt, Opt};
pub use plot::plot_svg;
pub use trace::{parse, Trace, TraceFormat};

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

struct Slots<'a> {
    ids: Vec<u32>,
    accesses: Vec<u8>,
    hashes: &'a [u64],
}

impl AccessView for Slots<'_> {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        std::mem::take(&mut self.accesses[slot as usize])
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        self.hashes[self.ids[slot as usize] as usize]
    }
}

const ABSENT: SlotId = SlotId::MAX;

/// Replays raw `keys` through a cache of `capacity` entries evicting with `factory`'s policy.
pub fn replay(factory: &dyn PolicyFactory, keys: &[u64], capacity: u64) -> Replay {
    replay_trace(factory, &Trace::from_keys("keys", keys.iter().copied()), capacity)
}

/// Replays a [`Trace`] the way the memory cache runs (get; insert on miss; evict while over
/// capacity; reads counted in access counters and, for event-tracking policies, reported in
/// order). Keys are dense ids, so the replay does no hashing of its own.
pub fn replay_trace(factory: &dyn PolicyFactory, trace: &Trace, capacity: u64) -> Replay {
    replay_admitted(factory, None, trace, capacity)
}

/// [`replay_trace`] with the memory cache's admission step: `admission` hears every request,
/// and a new key arriving in a full cache is weighed against the victims the eviction policy
/// picks; refused, it leaves and they stay (handed back as if just inserted). Admission
/// policies (the `omnicache-ml` crate's, say) are judged here on real traces without this crate
/// depending on theirs: a binary passes them in through core's trait.
pub fn replay_admitted(
    factory: &dyn PolicyFactory,
    admission: Option<&dyn AdmissionPolicy>,
    trace: &Trace,
    capacity: u64,
) -> Replay {
    let mut policy = factory.build(capacity);
    let events = policy.read_tracking() == ReadTracking::Events;
    let mut slot_of: Vec<SlotId> = vec![ABSENT; trace.unique()];
    let mut slots = Slots { ids: Vec::new(), accesses: Vec::new(), hashes: &trace.hashes };
    let mut free: Vec<SlotId> = Vec::new();
    let mut resident = 0u64;
    let mut out = Replay::default();
    let info = |id: u32| EntryInfo { hash: trace.hashes[id as usize], weight: 1, expires: None };
    let mut victims: Vec<SlotId> = Vec::new();
    for &id in &trace.ids {
        out.requests += 1;
        if let Some(a) = admission {
            a.record(trace.hashes[id as usize]);
        }
        let s = slot_of[id as usize];
        if s != ABSENT {
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
            slots.ids.push(0);
            slots.accesses.push(0);
            (slots.ids.len() - 1) as SlotId
        });
        slots.ids[s as usize] = id;
        slots.accesses[s as usize] = 0;
        slot_of[id as usize] = s;
        resident += 1;
        policy.on_insert(s, info(id));
        victims.clear();
        let mut candidate_picked = false;
        while resident - victims.len() as u64 > capacity {
            let Some(v) = policy.evict(&mut slots) else { break };
            if v == s && admission.is_some() {
                candidate_picked = true;
                break;
            }
            victims.push(v);
        }
        let refused = admission.is_some_and(|a| {
            candidate_picked || {
                let infos: Vec<EntryInfo> =
                    victims.iter().map(|&v| info(slots.ids[v as usize])).collect();
                !victims.is_empty() && !a.admit(&info(id), &infos)
            }
        });
        if refused {
            for &v in &victims {
                policy.on_insert(v, info(slots.ids[v as usize]));
            }
            if !candidate_picked {
                policy.on_remove(s);
            }
            victims.clear();
            victims.push(s);
        }
        for &v in &victims {
            slot_of[slots.ids[v as usize] as usize] = ABSENT;
            resident -= 1;
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

    /// Admits a key only if it was requested more often than every victim.
    #[derive(Debug, Default)]
    struct Frequency(std::sync::Mutex<std::collections::HashMap<u64, u32>>);

    impl AdmissionPolicy for Frequency {
        fn record(&self, hash: u64) {
            *self.0.lock().unwrap().entry(hash).or_default() += 1;
        }
        fn admit(&self, candidate: &EntryInfo, victims: &[EntryInfo]) -> bool {
            let seen = self.0.lock().unwrap();
            let f = |h: u64| seen.get(&h).copied().unwrap_or(0);
            victims.iter().all(|v| f(candidate.hash) > f(v.hash))
        }
    }

    #[test]
    fn admission_replays_as_the_engine_runs_it() {
        // A hot set of 50 read in turns with scans of one-off keys, in a cache of 50.
        let mut keys = Vec::new();
        for round in 0..20u64 {
            keys.extend(0..50);
            keys.extend((0..500).map(|k| 1_000_000 + round * 1_000 + k));
        }
        let trace = Trace::from_keys("hot+scan", keys.iter().copied());
        let plain = replay_trace(&LruFactory, &trace, 50);
        let admitted = replay_admitted(&LruFactory, Some(&Frequency::default()), &trace, 50);
        assert_eq!(plain.hits, 0, "LRU loses the hot set to every scan");
        assert_eq!(admitted.hits, 19 * 50, "the filter keeps it after its first round");
        let all = replay_admitted(&LruFactory, Some(&omnicache_core::AdmitAll), &trace, 50);
        assert_eq!(all, plain, "admitting everything is no admission");
    }

    #[test]
    fn empty_trace_and_zero_capacity() {
        assert_eq!(replay(&LruFactory, &[], 10), Replay::default());
        let r = replay(&LruFactory, &[1, 1, 1], 0);
        assert_eq!((r.requests, r.hits), (3, 0));
    }
}
