//! The most requested keys of a cache, in bounded memory: the Space-Saving algorithm (Metwally,
//! Agrawal and El Abbadi, ICDT 2005) over a min-heap of `capacity` counters.
//!
//! Each counter holds a key's hash, its estimated count and the most that estimate can be over
//! (its error). A key already counted adds one; a new key takes the smallest counter's place,
//! inheriting its count as error. Any key seen more than `requests / capacity` times is always
//! among the counters, and on skewed traffic (what caches see) the top of the list is exact or
//! nearly so. Keys are kept (up to [`MAX_KEY`] bytes, for display) only for the counters.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// The longest key prefix kept for display; longer keys are shown cut (their hash still tells
/// them apart).
pub const MAX_KEY: usize = 48;

#[derive(Debug, Clone)]
struct Counter {
    hash: u64,
    count: u64,
    error: u64,
    key: Box<[u8]>,
}

/// One entry of [`TopKeys::top`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopKey {
    /// The key (cut to [`MAX_KEY`] bytes).
    pub key: Vec<u8>,
    /// Requests counted for it (an upper bound).
    pub count: u64,
    /// How much `count` may be over the truth.
    pub error: u64,
}

/// A Space-Saving sketch. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TopKeys {
    capacity: usize,
    heap: Vec<Counter>,
    /// hash -> position in `heap`.
    index: HashMap<u64, usize, foldhash::fast::FixedState>,
    hasher: foldhash::fast::FixedState,
    total: u64,
}

impl TopKeys {
    /// A sketch of `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> TopKeys {
        let capacity = capacity.max(1);
        let state = foldhash::fast::FixedState::with_seed(0x6f6d_6e69_6361_6368);
        TopKeys {
            capacity,
            heap: Vec::with_capacity(capacity),
            index: HashMap::with_capacity_and_hasher(capacity, state.clone()),
            hasher: state,
            total: 0,
        }
    }

    /// Requests counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The bytes the sketch holds (counters, kept keys, the index), roughly as allocated.
    pub fn memory_bytes(&self) -> usize {
        let counters = self.heap.capacity() * std::mem::size_of::<Counter>();
        let keys: usize = self.heap.iter().map(|c| c.key.len()).sum();
        // hashbrown: one control byte and one (u64, usize) slot per bucket, buckets ~ 8/7 of len.
        let index = self.index.capacity() * 8 / 7 * (1 + std::mem::size_of::<(u64, usize)>());
        counters + keys + index
    }

    /// Counts one request for `key`.
    pub fn offer(&mut self, key: &[u8]) {
        self.offer_weighted(key, 1);
    }

    /// Counts `weight` requests for `key` at once: one sampled request standing for `weight`
    /// (sampling keeps the cost per request down when traffic is heavy).
    pub fn offer_weighted(&mut self, key: &[u8], weight: u64) {
        let weight = weight.max(1);
        self.total += weight;
        let hash = {
            let mut h = self.hasher.build_hasher();
            h.write(key);
            h.finish()
        };
        if let Some(&i) = self.index.get(&hash) {
            self.heap[i].count += weight;
            self.sift_down(i);
            return;
        }
        let kept: Box<[u8]> = key[..key.len().min(MAX_KEY)].into();
        if self.heap.len() < self.capacity {
            self.heap.push(Counter { hash, count: weight, error: 0, key: kept });
            let i = self.heap.len() - 1;
            self.index.insert(hash, i);
            self.sift_up(i);
            return;
        }
        // Replace the smallest counter: the newcomer may have been seen that often before.
        let min = self.heap[0].count;
        self.index.remove(&self.heap[0].hash);
        self.heap[0] = Counter { hash, count: min + weight, error: min, key: kept };
        self.index.insert(hash, 0);
        self.sift_down(0);
    }

    /// The `n` keys with the highest counts, highest first.
    pub fn top(&self, n: usize) -> Vec<TopKey> {
        let mut all: Vec<&Counter> = self.heap.iter().collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then(a.error.cmp(&b.error)));
        all.into_iter()
            .take(n)
            .map(|c| TopKey { key: c.key.to_vec(), count: c.count, error: c.error })
            .collect()
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.index.insert(self.heap[a].hash, a);
        self.index.insert(self.heap[b].hash, b);
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].count <= self.heap[i].count {
                break;
            }
            self.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.heap[l].count < self.heap[smallest].count {
                smallest = l;
            }
            if r < n && self.heap[r].count < self.heap[smallest].count {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_while_everything_fits() {
        let mut t = TopKeys::new(8);
        for (k, n) in [("a", 5), ("b", 3), ("c", 9)] {
            for _ in 0..n {
                t.offer(k.as_bytes());
            }
        }
        let top = t.top(2);
        assert_eq!(top[0], TopKey { key: b"c".to_vec(), count: 9, error: 0 });
        assert_eq!(top[1].key, b"a");
        assert_eq!(t.total(), 17);
    }

    #[test]
    fn a_heavy_key_survives_a_flood_of_one_off_keys() {
        let mut t = TopKeys::new(16);
        for i in 0..10_000u32 {
            t.offer(format!("once-{i}").as_bytes());
            if i % 4 == 0 {
                t.offer(b"hot");
            }
        }
        let top = t.top(1);
        assert_eq!(top[0].key, b"hot");
        assert!(top[0].count - top[0].error <= 2_500 && top[0].count >= 2_500);
    }

    #[test]
    fn long_keys_are_kept_cut() {
        let mut t = TopKeys::new(2);
        t.offer(&[b'x'; 500]);
        assert_eq!(t.top(1)[0].key.len(), MAX_KEY);
    }
}
