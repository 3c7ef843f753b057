//! Learned eviction after LRB (Song et al., "Learning Relaxed Belady for Content Distribution
//! Network Caching", NSDI'20), behind an S3-FIFO-style probationary queue: see [`Lrb`].

use crate::gbm::{log_bin, Boosting, Learner, Pending, Training, MISSING};
use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};
use std::collections::{HashMap, VecDeque};

/// Past reference intervals kept per key.
const INTERVALS: usize = 8;
/// Exponentially decayed counters per key.
const DECAYED: usize = 6;
/// Feature columns: age, intervals, decayed counts, count, weight, four age-interval gaps.
const WIDTH: usize = 1 + INTERVALS + DECAYED + 2 + 4;
/// Sampled entries whose features become training samples, per eviction.
const LABELED_PER_EVICTION: usize = 4;

/// What the policy remembers of a key seen within the memory window.
#[derive(Debug, Clone, Copy)]
struct History {
    last: u64,
    intervals: [u32; INTERVALS],
    known_intervals: u8,
    count: u32,
    decayed: [f32; DECAYED],
    weight: u64,
    resident: bool,
    /// When the history's latest entry in `seen` was made (its last reference or eviction).
    lease: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Free,
    /// In the probationary FIFO, with the key's reference count when it was inserted.
    Small {
        count_at_insert: u32,
    },
    /// In the learned region at this index of `main`.
    Main(u32),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    weight: u64,
    place: Place,
}

/// Learned eviction after LRB (Song et al., NSDI'20), behind a probationary FIFO.
///
/// Belady's OPT evicts the entry whose next reference is furthest away. LRB learns to predict
/// that distance from each entry's history and evicts, among a random sample of residents, the
/// entry predicted to come back last:
///
/// - **Features** (one byte each, log-binned): time since the last reference; the last eight
///   intervals between references; six exponentially decayed reference counts (half-lives
///   2^7..2^17 references); the reference count; the weight; and how far the age is short of
///   or past the last interval and the mean interval (so loops can be learned without deep
///   trees). Times count the references the policy sees.
/// - **Labels**: whenever a resident is considered for eviction, a few of the sampled entries'
///   features are kept; the next reference to the key labels them with the log of the time
///   it took, or with twice the memory window if none came within it.
/// - **Model**: 32 gradient-boosted regression trees (squared loss on the log time), retrained
///   on the latest 32,768 labels whenever an eighth as many new ones have arrived (at least
///   512). Until the first model exists, the oldest sampled entry is evicted.
/// - **Memory window**: `window` times the largest resident count seen, in references. A key
///   no longer resident keeps its history for a window after its last reference or its
///   eviction, whichever is later; a key inserted while its history is kept skips the
///   probationary queue.
/// - **Probation** (from S3-FIFO): a new key enters a small FIFO (10% of the weight); it moves
///   to the learned region if read while there, and is evicted from the FIFO otherwise. This
///   keeps one-hit wonders from ever reaching the model's sample.
///
/// With weights, the score is the predicted log time plus the log of the weight (far and
/// large goes first). Training runs inside [`EvictionPolicy::evict`] (a pause of the order of
/// a hundred milliseconds every thousand or so evictions once the training set is full) or,
/// with [`Training::Background`], on the training thread the process's learned policies share. Replaying a trace costs a few
/// hundred times what S3-FIFO costs: it is for caches whose misses are far dearer than that. docs/BENCHMARKS.md has the figures and what it buys.
pub struct Lrb {
    slots: Vec<Slot>,
    small: SlotList,
    small_weight: u64,
    small_max: u64,
    main: Vec<SlotId>,
    history: HashMap<u64, History>,
    seen: VecDeque<(u64, u64)>,
    pending: Pending<WIDTH>,
    learner: Learner,
    now: u64,
    rng: crate::rng::XorShift64,
    peak: usize,
    window_factor: u64,
    samples: usize,
    half_lives: [f32; DECAYED],
}

impl std::fmt::Debug for Lrb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lrb")
            .field("small", &self.small.len())
            .field("main", &self.main.len())
            .field("trained", &self.learner.is_trained())
            .finish()
    }
}

impl Lrb {
    /// An LRB policy for `max_weight` with the default parameters.
    pub fn new(max_weight: u64) -> Self {
        LrbFactory::default().make(max_weight)
    }

    /// Whether a model has been trained yet (until then the oldest sampled entry goes).
    pub fn is_trained(&self) -> bool {
        self.learner.is_trained()
    }

    /// Keys whose history is kept: the residents and the keys referenced or evicted within
    /// the memory window.
    pub fn tracked_keys(&self) -> usize {
        self.history.len()
    }

    fn window(&self) -> u64 {
        self.window_factor * (self.peak as u64).max(64)
    }

    fn features(&self, h: &History) -> [u8; WIDTH] {
        let mut x = [MISSING; WIDTH];
        let age = self.now - h.last;
        x[0] = log_bin(age);
        let known = h.known_intervals as usize;
        for (i, &d) in h.intervals[..known].iter().enumerate() {
            x[1 + i] = log_bin(u64::from(d));
        }
        for (j, (&c, &half)) in h.decayed.iter().zip(&self.half_lives).enumerate() {
            let now = c * (-(age as f32) / half).exp2();
            x[1 + INTERVALS + j] = log_bin((now * 16.0) as u64);
        }
        let base = 1 + INTERVALS + DECAYED;
        x[base] = log_bin(u64::from(h.count));
        x[base + 1] = log_bin(h.weight);
        if known > 0 {
            let last = u64::from(h.intervals[0]);
            let mean =
                h.intervals[..known].iter().map(|&d| u64::from(d)).sum::<u64>() / known as u64;
            x[base + 2] = log_bin(last.saturating_sub(age));
            x[base + 3] = log_bin(age.saturating_sub(last));
            x[base + 4] = log_bin(mean.saturating_sub(age));
            x[base + 5] = log_bin(age.saturating_sub(mean));
        }
        x
    }

    /// A reference to `hash` (an insert or a read): labels its pending sample, updates its
    /// history, and forgets what fell out of the memory window.
    fn reference(&mut self, hash: u64, weight: u64) {
        self.now += 1;
        let now = self.now;
        self.pending.referenced(hash, now, &mut self.learner);
        let half_lives = self.half_lives;
        let h = self.history.entry(hash).or_insert(History {
            last: now,
            intervals: [0; INTERVALS],
            known_intervals: 0,
            count: 0,
            decayed: [0.0; DECAYED],
            weight,
            resident: true,
            lease: now,
        });
        if h.count > 0 {
            let d = now - h.last;
            h.intervals.copy_within(0..INTERVALS - 1, 1);
            h.intervals[0] = u32::try_from(d).unwrap_or(u32::MAX);
            h.known_intervals = (h.known_intervals + 1).min(INTERVALS as u8);
            for (c, &half) in h.decayed.iter_mut().zip(&half_lives) {
                *c = 1.0 + *c * (-(d as f32) / half).exp2();
            }
        } else {
            h.decayed = [1.0; DECAYED];
        }
        h.count = h.count.saturating_add(1);
        h.last = now;
        h.weight = weight;
        h.resident = true;
        h.lease = now;
        self.seen.push_back((now, hash));
        self.forget();
    }

    fn forget(&mut self) {
        let window = self.window();
        let horizon = self.now.saturating_sub(window);
        while let Some(&(t, hash)) = self.seen.front() {
            if t >= horizon {
                break;
            }
            self.seen.pop_front();
            if self.history.get(&hash).is_some_and(|h| h.lease == t && !h.resident) {
                self.history.remove(&hash);
            }
        }
        self.pending.expire(self.now, window, &mut self.learner);
    }

    /// Marks `hash` evicted or removed: its history is kept for one memory window from now.
    fn leave(&mut self, hash: u64) {
        if let Some(h) = self.history.get_mut(&hash) {
            h.resident = false;
            h.lease = self.now;
            self.seen.push_back((self.now, hash));
        }
    }

    fn promote(&mut self, slot: SlotId) {
        self.slots[slot as usize].place = Place::Main(self.main.len() as u32);
        self.main.push(slot);
    }

    /// Takes `slot` out of whichever queue holds it.
    fn detach(&mut self, slot: SlotId) {
        let Some(s) = self.slots.get(slot as usize).copied() else { return };
        match s.place {
            Place::Free => return,
            Place::Small { .. } => {
                self.small.unlink(slot);
                self.small_weight -= s.weight;
            }
            Place::Main(pos) => {
                self.main.swap_remove(pos as usize);
                if let Some(&moved) = self.main.get(pos as usize) {
                    self.slots[moved as usize].place = Place::Main(pos);
                }
            }
        }
        self.slots[slot as usize].place = Place::Free;
        self.leave(s.hash);
    }

    /// The learned region's victim: the sampled entry predicted to return last.
    fn evict_main(&mut self) -> Option<SlotId> {
        self.learner.adopt();
        let k = self.samples.min(self.main.len());
        let mut best: Option<(f32, SlotId)> = None;
        for c in 0..k {
            let r = (self.rng.next() % self.main.len() as u64) as usize;
            let slot = self.main[r];
            let s = self.slots[slot as usize];
            let Some(h) = self.history.get(&s.hash).copied() else { continue };
            let row = self.features(&h);
            if c < LABELED_PER_EVICTION && self.pending.wants(s.hash) {
                self.pending.add(s.hash, self.now, row);
            }
            let score = match self.learner.model() {
                Some(m) => m.predict(&row) + (s.weight.max(1) as f32).log2(),
                None => (self.now - h.last) as f32,
            };
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, slot));
            }
        }
        // Every sampled history missing (hash collisions): the first resident goes.
        let victim = best.map(|(_, s)| s).or_else(|| self.main.first().copied())?;
        self.detach(victim);
        Some(victim)
    }
}

impl EvictionPolicy for Lrb {
    fn name(&self) -> &'static str {
        "lrb"
    }

    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, Slot { hash: 0, weight: 0, place: Place::Free });
        }
        self.detach(slot);
        let known = self.history.contains_key(&info.hash);
        self.reference(info.hash, info.weight);
        self.slots[i] = Slot { hash: info.hash, weight: info.weight, place: Place::Free };
        if known || self.small_max == 0 {
            self.promote(slot);
        } else {
            let count_at_insert = self.history.get(&info.hash).map_or(1, |h| h.count);
            self.slots[i].place = Place::Small { count_at_insert };
            self.small.push_front(slot);
            self.small_weight += info.weight;
        }
        self.peak = self.peak.max(self.len());
    }

    fn on_access(&mut self, slot: SlotId) {
        let Some(s) = self.slots.get(slot as usize).copied() else { return };
        if s.place != Place::Free {
            self.reference(s.hash, s.weight);
        }
    }

    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        let Some(s) = self.slots.get(slot as usize).copied() else { return };
        if s.place == Place::Free {
            return;
        }
        if let Place::Small { .. } = s.place {
            self.small_weight = self.small_weight - s.weight + info.weight;
        }
        self.slots[slot as usize].weight = info.weight;
        self.reference(s.hash, info.weight);
    }

    fn on_remove(&mut self, slot: SlotId) {
        self.detach(slot);
    }

    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        while self.small.len() > 0 && (self.small_weight > self.small_max || self.main.is_empty()) {
            let slot = self.small.pop_back()?;
            let s = self.slots[slot as usize];
            self.small_weight -= s.weight;
            let Place::Small { count_at_insert } = s.place else { continue };
            let count = self.history.get(&s.hash).map_or(0, |h| h.count);
            if count > count_at_insert {
                self.promote(slot);
                continue;
            }
            self.slots[slot as usize].place = Place::Free;
            self.leave(s.hash);
            return Some(slot);
        }
        if self.main.is_empty() {
            return None;
        }
        self.evict_main()
    }

    fn len(&self) -> usize {
        self.small.len() + self.main.len()
    }
}

/// Makes [`Lrb`] policies.
#[derive(Debug, Clone, Copy)]
pub struct LrbFactory {
    /// Memory window, in multiples of the largest resident count (default 6).
    pub window: u64,
    /// Residents sampled per eviction from the learned region (default 32).
    pub samples: usize,
    /// Share of the weight in the probationary FIFO (default 0.1, as S3-FIFO's small queue).
    pub small_share: f64,
    /// Where the model is trained (default inline, for reproducible replays;
    /// [`by_name`](crate::by_name) gives a served cache background training).
    pub training: Training,
}

impl Default for LrbFactory {
    fn default() -> Self {
        LrbFactory { window: 6, samples: 32, small_share: 0.1, training: Training::Inline }
    }
}

impl LrbFactory {
    fn make(&self, max_weight: u64) -> Lrb {
        let max = max_weight.max(1);
        let mut half_lives = [0f32; DECAYED];
        for (j, h) in half_lives.iter_mut().enumerate() {
            *h = (1u64 << (7 + 2 * j)) as f32;
        }
        Lrb {
            slots: Vec::new(),
            small: SlotList::new(),
            small_weight: 0,
            small_max: ((max as f64 * self.small_share.clamp(0.0, 1.0)) as u64).min(max),
            main: Vec::new(),
            history: HashMap::new(),
            seen: VecDeque::new(),
            pending: Pending::new(usize::MAX),
            learner: Learner::new(WIDTH, Boosting::default(), self.training),
            now: 0,
            rng: crate::rng::XorShift64::new(0x9E37_79B9_7F4A_7C15),
            peak: 0,
            window_factor: self.window.max(1),
            samples: self.samples.max(1),
            half_lives,
        }
    }
}

impl PolicyFactory for LrbFactory {
    fn name(&self) -> &str {
        "lrb"
    }

    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(self.make(max_weight))
    }
}
