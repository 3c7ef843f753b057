//! A policy that runs several policies as shadow caches and evicts by their vote, weighted by hits.
//!
//! No policy wins on every workload: the learned [`Lrb`](crate::Lrb) leads on database,
//! storage and recommendation traces, LIRS on loops, LRU where recency is everything. The
//! selector runs each of them as a full shadow cache of the same budget over the same
//! references and evicts by a vote of the shadows weighted by their recent hits. Its cost is
//! that of its experts together (LRB's model dominates it), and it needs every read in order
//! ([`ReadTracking::Events`]), so it is not the memory cache's default; see
//! docs/BENCHMARKS.md for what it gains and costs.

use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, ReadTracking, SlotId};
use std::collections::HashMap;
use std::sync::Arc;

/// A full simulation of one expert over the same key stream (hashes only).
struct Shadow {
    policy: Box<dyn EvictionPolicy>,
    /// Whether the policy takes reads as events (otherwise only as access counts).
    events: bool,
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
        let policy = factory.build(max);
        Shadow {
            events: policy.read_tracking() == ReadTracking::Events,
            policy,
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

    /// One reference to `hash`; the hashes it evicts go to `evicted`.
    fn reference(&mut self, hash: u64, weight: u64, evicted: &mut Vec<u64>) {
        if let Some(&s) = self.slot_of.get(&hash) {
            self.hits += 1;
            let c = &mut self.counts[s as usize];
            *c = (*c + 1).min(3);
            if self.events {
                self.policy.on_access(s);
            }
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
            evicted.push(h);
            self.free.push(v);
        }
    }
}

/// A resident entry as the selector sees it.
#[derive(Clone, Copy)]
struct Resident {
    hash: u64,
    weight: u64,
    /// Which shadows hold the key (bit `i`: shadow `i`).
    held: usize,
}

/// Runs every expert as a shadow cache of the same size over the same references, scores each
/// by its hits (the past decaying), and evicts by a vote weighted by the scores: the victim is
/// the resident whose holders weigh least, and among those the one that has been in that state
/// longest. Each expert's weight is its score relative to the best one's, raised to a high
/// power, so a clear leader decides alone (once settled, the cache holds what the leader
/// holds), while experts with close scores decide together: a resident that two near-equal
/// experts keep outlasts one that only a third keeps. Entries no expert holds leave first.
/// Scores are hits per epoch of half the cache's size in references, the past decaying by 0.9
/// an epoch; a weight is (score / best score)^32.
///
/// Following the leader alone, as an earlier version did, pays for every change of leader:
/// the new leader's residents that the cache no longer holds are misses until they come back,
/// and a burst that one expert catches makes it lead for several epochs afterwards. Voting
/// keeps what the close experts agree on through such changes (docs/BENCHMARKS.md).
pub struct Selector {
    shadows: Vec<Shadow>,
    scores: Vec<f64>,
    /// What the residents held by each combination of shadows weigh in the vote.
    keep: Vec<f64>,
    residents: Vec<Option<Resident>>,
    by_hash: HashMap<u64, SlotId>,
    /// Residents by which shadows hold them, the latest to get there at the front.
    groups: Vec<SlotList>,
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

/// Experts beyond this many are ignored (the residents' `held` sets are bit masks).
const MAX_EXPERTS: usize = 8;
/// Epochs are this share of the cache's size in references, at least [`EPOCH_MIN`].
const EPOCH_SHARE: f64 = 0.5;
/// Fewest references per epoch.
const EPOCH_MIN: u64 = 256;
/// Each epoch the scores so far count this much (about ten epochs of memory).
const DECAY: f64 = 0.9;
/// An expert's vote is (its score / the best score) to this power: 0.9 of the best score
/// weighs 0.03, so a clear leader decides alone.
const SHARPNESS: i32 = 32;

impl Selector {
    /// A selector over `factories` (at most eight; the first is reported as leading until the
    /// first epoch ends); an empty list means S3-FIFO alone.
    pub fn new(mut factories: Vec<Arc<dyn PolicyFactory>>, max_weight: u64) -> Self {
        if factories.is_empty() {
            factories.push(Arc::new(omnicache_core::S3FifoFactory::default()));
        }
        factories.truncate(MAX_EXPERTS);
        let max = max_weight.max(1);
        let shadows: Vec<Shadow> = factories.iter().map(|f| Shadow::new(&**f, max)).collect();
        let n = shadows.len();
        let mut selector = Selector {
            scores: vec![0.0; n],
            keep: Vec::new(),
            shadows,
            residents: Vec::new(),
            by_hash: HashMap::new(),
            groups: (0..1usize << n).map(|_| SlotList::new()).collect(),
            evicted: Vec::new(),
            len: 0,
            tick: 0,
            epoch: ((max as f64 * EPOCH_SHARE) as u64).clamp(EPOCH_MIN, 1 << 20),
        };
        selector.weigh();
        selector
    }

    /// The expert with the best score (the first until the first epoch ends).
    pub fn leader(&self) -> &'static str {
        let best = (0..self.scores.len())
            .max_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        self.shadows[best].policy.name()
    }

    /// Recomputes what each combination of holders weighs from the scores (equal votes while
    /// no expert has scored).
    fn weigh(&mut self) {
        let top = self.scores.iter().copied().fold(0.0, f64::max);
        let votes: Vec<f64> = self
            .scores
            .iter()
            .map(|&s| if top > 0.0 { (s / top).powi(SHARPNESS) } else { 1.0 })
            .collect();
        self.keep = (0..self.groups.len())
            .map(|held| {
                votes
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| held & (1 << i) != 0)
                    .map(|(_, v)| v)
                    .sum()
            })
            .collect();
    }

    /// Moves a resident to the group of `held`, at the front.
    fn regroup(&mut self, slot: SlotId, held: usize) {
        if let Some(Some(r)) = self.residents.get_mut(slot as usize) {
            self.groups[r.held].unlink(slot);
            r.held = held;
            self.groups[held].push_front(slot);
        }
    }

    fn reference(&mut self, hash: u64, weight: u64) {
        for i in 0..self.shadows.len() {
            self.shadows[i].reference(hash, weight, &mut self.evicted);
            for j in 0..self.evicted.len() {
                if let Some(&s) = self.by_hash.get(&self.evicted[j]) {
                    let held = self.residents[s as usize].map_or(0, |r| r.held) & !(1 << i);
                    self.regroup(s, held);
                }
            }
            self.evicted.clear();
        }
        if let Some(&s) = self.by_hash.get(&hash) {
            let held = (0..self.shadows.len())
                .filter(|&i| self.shadows[i].slot_of.contains_key(&hash))
                .fold(0, |held, i| held | 1 << i);
            self.regroup(s, held);
        }
        self.tick += 1;
        if self.tick.is_multiple_of(self.epoch) {
            for (score, s) in self.scores.iter_mut().zip(&mut self.shadows) {
                *score = *score * DECAY + std::mem::take(&mut s.hits) as f64;
            }
            self.weigh();
        }
    }

    fn drop_resident(&mut self, slot: SlotId) {
        let Some(r) = self.residents.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if self.by_hash.get(&r.hash) == Some(&slot) {
            self.by_hash.remove(&r.hash);
        }
        self.groups[r.held].unlink(slot);
        self.len -= 1;
    }
}

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
        self.residents[i] = Some(Resident { hash: info.hash, weight, held: 0 });
        self.by_hash.insert(info.hash, slot);
        self.groups[0].push_front(slot);
        self.len += 1;
        self.reference(info.hash, weight);
    }

    fn on_access(&mut self, slot: SlotId) {
        let Some(Some(r)) = self.residents.get(slot as usize) else { return };
        let (hash, weight) = (r.hash, r.weight);
        self.reference(hash, weight);
    }

    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if let Some(Some(r)) = self.residents.get_mut(slot as usize) {
            r.weight = info.weight.max(1);
        }
    }

    fn on_remove(&mut self, slot: SlotId) {
        self.drop_resident(slot);
    }

    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        let mut lightest: Option<(f64, usize)> = None;
        for (held, group) in self.groups.iter().enumerate() {
            if group.len() > 0 && lightest.is_none_or(|(w, _)| self.keep[held] < w) {
                lightest = Some((self.keep[held], held));
            }
        }
        let v = self.groups[lightest?.1].back()?;
        self.drop_resident(v);
        Some(v)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Makes [`Selector`]s over LRB, LIRS and LRU.
#[derive(Debug, Default, Clone, Copy)]
pub struct SelectorFactory {
    /// Where the LRB expert trains its model (default inline, for reproducible replays;
    /// [`by_name`](crate::by_name) gives a served cache background training).
    pub training: crate::Training,
}

impl PolicyFactory for SelectorFactory {
    fn name(&self) -> &str {
        "selector"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        let experts: Vec<Arc<dyn PolicyFactory>> = vec![
            Arc::new(crate::LrbFactory { training: self.training, ..Default::default() }),
            Arc::new(crate::LirsFactory::default()),
            Arc::new(crate::LruFactory),
        ];

        Box::new(Selector::new(experts, max_weight))
    }
}
