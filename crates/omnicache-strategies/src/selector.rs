//! A policy that runs several policies as shadow caches and follows the one with the most hits.
//!
//! No policy wins on every workload: the learned [`Lrb`](crate::Lrb) leads on database,
//! storage and recommendation traces, LIRS on loops, LRU where recency is everything. The
//! selector runs each of them as a full shadow cache of the same budget over the same
//! references and evicts what the current leader evicted. Its cost is that of its experts
//! together (LRB's model dominates it), and it needs every read in order
//! ([`ReadTracking::Events`]), so it is not the memory cache's default; see
//! docs/BENCHMARKS.md for what it gains.

use crate::list::SlotList;
#[cfg(doc)]
use omnicache_core::ReadTracking;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A full simulation of one expert over the same key stream (hashes only).
struct Shadow {
    policy: Box<dyn EvictionPolicy>,
    slot_of: HashMap<u64, SlotId>,
    hashes: Vec<u64>,
    weights: Vec<u64>,
    counts: Vec<u8>,
    free: Vec<SlotId>,
    used: u64,
    max: u64,
    hits: u64,
}

struct ShadowView<'a> {
    hashes: &'a [u64],
    counts: &'a mut [u8],
}

impl AccessView for ShadowView<'_> {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        self.counts.get_mut(slot as usize).map_or(0, std::mem::take)
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        self.hashes.get(slot as usize).copied().unwrap_or(0)
    }
}

impl Shadow {
    fn new(factory: &dyn PolicyFactory, max: u64) -> Self {
        Shadow {
            policy: factory.build(max),
            slot_of: HashMap::new(),
            hashes: Vec::new(),
            weights: Vec::new(),
            counts: Vec::new(),
            free: Vec::new(),
            used: 0,
            max,
            hits: 0,
        }
    }

    /// One reference to `hash`; the hashes it evicts go to `evicted` when given.
    fn reference(&mut self, hash: u64, weight: u64, mut evicted: Option<&mut Vec<u64>>) {
        if let Some(&s) = self.slot_of.get(&hash) {
            self.hits += 1;
            let c = &mut self.counts[s as usize];
            *c = (*c + 1).min(3);
            self.policy.on_access(s);
            return;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.hashes.push(0);
            self.weights.push(0);
            self.counts.push(0);
            (self.hashes.len() - 1) as SlotId
        });
        self.hashes[s as usize] = hash;
        self.weights[s as usize] = weight;
        self.counts[s as usize] = 0;
        self.slot_of.insert(hash, s);
        self.used += weight;
        self.policy.on_insert(s, EntryInfo { hash, weight, expires: None });
        while self.used > self.max {
            let mut view = ShadowView { hashes: &self.hashes, counts: &mut self.counts };
            let Some(v) = self.policy.evict(&mut view) else { break };
            self.used -= self.weights[v as usize];
            let h = self.hashes[v as usize];
            self.slot_of.remove(&h);
            if let Some(e) = evicted.as_deref_mut() {
                e.push(h);
            }
            self.free.push(v);
        }
    }
}

/// Resident entries as the selector sees them.
#[derive(Clone, Copy)]
struct Resident {
    hash: u64,
    weight: u64,
}

/// Runs every expert as a shadow cache of the same size over the same references, and makes
/// the real cache follow the one with the most (recently decayed) hits: the victim is an entry
/// the leader's shadow has evicted. In step with its leader, the cache holds exactly what the
/// leader holds; after a change of leader it converges by evicting, least recently used first,
/// what the new leader does not hold.
pub struct Selector {
    shadows: Vec<Shadow>,
    leader: usize,
    scores: Vec<f64>,
    residents: Vec<Option<Resident>>,
    by_hash: HashMap<u64, SlotId>,
    recency: SlotList,
    pending: VecDeque<u64>,
    evicted: Vec<u64>,
    len: usize,
    tick: u64,
    epoch: u64,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector").field("leader", &self.leader()).field("len", &self.len).finish()
    }
}

impl Selector {
    /// A selector over `factories` (the first leads until the first epoch ends); an empty list
    /// means S3-FIFO alone.
    pub fn new(mut factories: Vec<Arc<dyn PolicyFactory>>, max_weight: u64) -> Self {
        if factories.is_empty() {
            factories.push(Arc::new(omnicache_core::S3FifoFactory::default()));
        }
        let max = max_weight.max(1);
        let shadows: Vec<Shadow> = factories.iter().map(|f| Shadow::new(&**f, max)).collect();
        Selector {
            scores: vec![0.0; shadows.len()],
            shadows,
            leader: 0,
            residents: Vec::new(),
            by_hash: HashMap::new(),
            recency: SlotList::new(),
            pending: VecDeque::new(),
            evicted: Vec::new(),
            len: 0,
            tick: 0,
            epoch: max.clamp(EPOCH_MIN, 1 << 20),
        }
    }

    /// The expert the cache follows now.
    pub fn leader(&self) -> &'static str {
        self.shadows[self.leader].policy.name()
    }

    fn reference(&mut self, hash: u64, weight: u64) {
        for (i, s) in self.shadows.iter_mut().enumerate() {
            s.reference(
                hash,
                weight,
                if i == self.leader { Some(&mut self.evicted) } else { None },
            );
        }
        self.pending.extend(self.evicted.drain(..));
        // Victims pile up only while the cache evicts less than its leader (after removals).
        while self.pending.len() > 2 * self.len.max(16) {
            self.pending.pop_front();
        }
        self.tick += 1;
        if self.tick % self.epoch == 0 {
            self.end_epoch();
        }
    }

    fn end_epoch(&mut self) {
        for (score, s) in self.scores.iter_mut().zip(&mut self.shadows) {
            *score = *score * DECAY + std::mem::take(&mut s.hits) as f64;
        }
        let best = (0..self.scores.len())
            .max_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        if best != self.leader && self.scores[best] > self.scores[self.leader] * LEAD {
            self.leader = best;
            self.pending.clear();
            let mut s = self.recency.back();
            while let Some(slot) = s {
                if let Some(r) = self.residents[slot as usize] {
                    if !self.shadows[best].slot_of.contains_key(&r.hash) {
                        self.pending.push_back(r.hash);
                    }
                }
                s = self.recency.newer(slot);
            }
        }
    }

    fn drop_resident(&mut self, slot: SlotId) {
        let Some(r) = self.residents.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if self.by_hash.get(&r.hash) == Some(&slot) {
            self.by_hash.remove(&r.hash);
        }
        self.recency.unlink(slot);
        self.len -= 1;
    }
}

/// Epochs are the cache's size in references, at least this many.
const EPOCH_MIN: u64 = 256;
/// Each epoch the scores so far count this much (about ten epochs of memory).
const DECAY: f64 = 0.9;
/// A challenger leads when its score is this many times the leader's.
const LEAD: f64 = 1.01;

impl EvictionPolicy for Selector {
    fn name(&self) -> &'static str {
        "selector"
    }

    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        let i = slot as usize;
        if i >= self.residents.len() {
            self.residents.resize(i + 1, None);
        }
        self.drop_resident(slot);
        let weight = info.weight.max(1);
        self.residents[i] = Some(Resident { hash: info.hash, weight });
        self.by_hash.insert(info.hash, slot);
        self.recency.push_front(slot);
        self.len += 1;
        self.reference(info.hash, weight);
    }

    fn on_access(&mut self, slot: SlotId) {
        let Some(Some(r)) = self.residents.get(slot as usize) else { return };
        let (hash, weight) = (r.hash, r.weight);
        self.recency.move_to_front(slot);
        self.reference(hash, weight);
    }

    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if let Some(Some(r)) = self.residents.get_mut(slot as usize) {
            r.weight = info.weight.max(1);
            self.recency.move_to_front(slot);
        }
    }

    fn on_remove(&mut self, slot: SlotId) {
        self.drop_resident(slot);
    }

    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        while let Some(h) = self.pending.pop_front() {
            // Evicted by the leader, but back in its shadow since: no longer a victim.
            if self.shadows[self.leader].slot_of.contains_key(&h) {
                continue;
            }
            if let Some(&s) = self.by_hash.get(&h) {
                self.drop_resident(s);
                return Some(s);
            }
        }
        // Nothing the leader evicted is resident (weights, removals): the least recent leaves.
        let v = self.recency.back()?;
        self.drop_resident(v);
        Some(v)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Makes [`Selector`]s over LRB, LIRS and LRU.
#[derive(Debug, Default, Clone, Copy)]
pub struct SelectorFactory;

impl PolicyFactory for SelectorFactory {
    fn name(&self) -> &str {
        "selector"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        let experts: Vec<Arc<dyn PolicyFactory>> = vec![
            Arc::new(crate::LrbFactory::default()),
            Arc::new(crate::LirsFactory::default()),
            Arc::new(crate::LruFactory),
        ];

        Box::new(Selector::new(experts, max_weight))
    }
}
