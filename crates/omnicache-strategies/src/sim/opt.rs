//! Belady's OPT: the offline optimum, the ceiling no online policy can beat.

use super::{Replay, Replayer, Trace};
use std::collections::BinaryHeap;

/// Replays `trace` with perfect knowledge of the future: on a miss with the cache full, the
/// resident (or the newcomer itself: OPT may decline to admit) whose next use is furthest away
/// leaves. Unit sizes, O(n log n).
pub fn opt(trace: &Trace, capacity: u64) -> Replay {
    let n = trace.ids.len();
    // next[i]: the index of the next request for the same key, or n.
    let mut next = vec![n as u32; n];
    let mut seen = vec![n as u32; trace.unique()];
    for i in (0..n).rev() {
        let id = trace.ids[i] as usize;
        next[i] = seen[id];
        seen[id] = i as u32;
    }
    // For each resident key: the index of its next use. The heap holds (next use, key) and may
    // contain stale pairs, skipped when popped.
    const OUT: u32 = u32::MAX;
    let mut next_use = vec![OUT; trace.unique()];
    let mut heap: BinaryHeap<(u32, u32)> = BinaryHeap::new();
    let mut resident = 0u64;
    let mut out = Replay::default();
    for (i, &id) in trace.ids.iter().enumerate() {
        out.requests += 1;
        let nu = next[i];
        if next_use[id as usize] != OUT {
            out.hits += 1;
            next_use[id as usize] = nu;
            heap.push((nu, id));
            continue;
        }
        if capacity == 0 || nu as usize == n {
            continue; // never used again: not worth admitting
        }
        if resident == capacity {
            // The furthest next use among residents, skipping stale heap entries.
            let furthest = loop {
                let Some(&(u, k)) = heap.peek() else { break None };
                if next_use[k as usize] == u {
                    break Some((u, k));
                }
                heap.pop();
            };
            match furthest {
                Some((u, k)) if u > nu => {
                    heap.pop();
                    next_use[k as usize] = OUT;
                    resident -= 1;
                }
                _ => continue, // the newcomer is needed last: decline it
            }
        }
        next_use[id as usize] = nu;
        heap.push((nu, id));
        resident += 1;
    }
    out
}

/// [`opt`] as a [`Replayer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Opt;

impl Replayer for Opt {
    fn name(&self) -> String {
        "opt".into()
    }
    fn replay(&self, trace: &Trace, capacity: u64) -> Replay {
        opt(trace, capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnicache_core::testkit::SplitMix;

    /// OPT by brute force: on a miss when full, try evicting each candidate (or bypassing) and
    /// keep the choice that evicts the key used furthest in the future.
    fn brute(keys: &[u64], cap: usize) -> u64 {
        let mut cache: Vec<u64> = Vec::new();
        let mut hits = 0;
        for (i, &k) in keys.iter().enumerate() {
            if cache.contains(&k) {
                hits += 1;
                continue;
            }
            let next_use =
                |x: u64| keys[i + 1..].iter().position(|&y| y == x).unwrap_or(usize::MAX);
            if cap == 0 {
                continue;
            }
            if cache.len() < cap {
                if next_use(k) != usize::MAX {
                    cache.push(k);
                }
                continue;
            }
            let (j, far) = cache
                .iter()
                .enumerate()
                .map(|(j, &x)| (j, next_use(x)))
                .max_by_key(|p| p.1)
                .unwrap();
            if far > next_use(k) {
                cache[j] = k;
            }
        }
        hits
    }

    #[test]
    fn opt_matches_brute_force_on_random_traces() {
        for seed in 0..40 {
            let mut rng = SplitMix(seed);
            let universe = 1 + rng.below(30);
            let keys: Vec<u64> = (0..400).map(|_| rng.below(universe)).collect();
            let cap = rng.below(12);
            let t = Trace::from_keys("r", keys.iter().copied());
            assert_eq!(opt(&t, cap).hits, brute(&keys, cap as usize), "seed {seed} cap {cap}");
        }
    }

    #[test]
    fn opt_is_an_upper_bound() {
        let mut rng = SplitMix(1);
        let keys: Vec<u64> = (0..5_000).map(|_| rng.below(300).min(rng.below(300))).collect();
        let t = Trace::from_keys("r", keys);
        for cap in [1, 10, 50, 200] {
            let o = opt(&t, cap).hits;
            for name in crate::NAMES {
                let f = crate::by_name_for_replay(name).unwrap();
                let h = super::super::replay_trace(&*f, &t, cap).hits;
                assert!(h <= o, "{name} at {cap}: {h} hits beats OPT's {o}");
            }
        }
    }
}
