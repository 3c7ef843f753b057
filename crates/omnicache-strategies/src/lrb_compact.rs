//! LRB on a few bytes per key: see [`CompactLrb`].

use crate::gbm::{log_bin, Boosting, Learner, Pending, Training, MISSING};
use crate::list::SlotList;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

/// Feature columns: age, last two intervals, count, weight, age short of and past the last
/// interval.
const WIDTH: usize = 7;
/// Sampled entries whose features become training samples, per eviction.
const LABELED_PER_EVICTION: usize = 4;
/// Most samples awaiting their label at once (more are not taken).
const PENDING_MAX: usize = 16_384;
/// Ways per set of the ghost table.
const WAYS: usize = 8;

/// What is kept of a key: its last reference, the log bins of its last two reuse intervals
/// ([`MISSING`] when unknown) and its reference count (saturating). Seven bytes of content,
/// the size the memory cache could hold in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hist {
    last: u32,
    i1: u8,
    i2: u8,
    count: u8,
}

impl Hist {
    fn first(now: u32) -> Hist {
        Hist { last: now, i1: MISSING, i2: MISSING, count: 1 }
    }

    fn referenced(self, now: u32) -> Hist {
        let d = now.wrapping_sub(self.last);
        Hist {
            last: now,
            i1: log_bin(u64::from(d)),
            i2: self.i1,
            count: self.count.saturating_add(1),
        }
    }
}

/// The smallest value whose [`log_bin`] is `bin`.
fn bin_floor(bin: u8) -> u64 {
    if bin == 0 {
        return 0;
    }
    let b = u64::from(bin - 1);
    let (octave, frac) = (b / 8, b % 8);
    if octave >= 3 {
        (8 + frac) << (octave - 3)
    } else {
        (8 + frac) >> (3 - octave)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Free,
    /// In the probationary FIFO, with the key's count when it was inserted.
    Small {
        count_at_insert: u8,
    },
    /// In the learned region.
    Main,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    weight: u64,
    hist: Hist,
    place: Place,
    stamp: u32,
}

/// Histories of evicted keys: a set-associative table of 32-bit tags, each set replacing
/// its entries in the order they arrived.
struct Ghosts {
    tags: Vec<u32>,
    hists: Vec<Hist>,
    cursors: Vec<u8>,
    mask: usize,
}

impl Ghosts {
    fn with_capacity(entries: usize) -> Ghosts {
        let sets = (entries / WAYS).max(1).next_power_of_two();
        Ghosts {
            tags: vec![0; sets * WAYS],
            hists: vec![Hist::first(0); sets * WAYS],
            cursors: vec![0; sets],
            mask: sets - 1,
        }
    }

    fn capacity(&self) -> usize {
        self.tags.len()
    }

    fn locate(&self, hash: u64) -> (usize, u32) {
        // The tag is the hash's low half, so it holds the set index at every size up to
        // 2^32 sets and the table can grow without the full hashes. Tag 0 marks an empty way.
        let tag = (hash as u32).max(1);
        (tag as usize & self.mask, tag)
    }

    fn find(&self, hash: u64) -> Option<usize> {
        let (set, tag) = self.locate(hash);
        (set * WAYS..(set + 1) * WAYS).find(|&i| self.tags[i] == tag)
    }

    fn take(&mut self, hash: u64) -> Option<Hist> {
        let i = self.find(hash)?;
        self.tags[i] = 0;
        Some(self.hists[i])
    }

    fn put(&mut self, hash: u64, hist: Hist) {
        let (set, tag) = self.locate(hash);
        let base = set * WAYS;
        let i = (base..base + WAYS)
            .find(|&i| self.tags[i] == tag || self.tags[i] == 0)
            .unwrap_or_else(|| {
                let c = self.cursors[set];
                self.cursors[set] = (c + 1) % WAYS as u8;
                base + c as usize
            });
        self.tags[i] = tag;
        self.hists[i] = hist;
    }

    fn grown(&self, entries: usize) -> Ghosts {
        let mut g = Ghosts::with_capacity(entries);
        for (&tag, &hist) in self.tags.iter().zip(&self.hists) {
            if tag != 0 {
                g.put(u64::from(tag), hist);
            }
        }
        g
    }
}

/// LRB's learned eviction on seven bytes of history per key.
///
/// [`Lrb`](crate::Lrb) keeps, for every key seen within its memory window, eight intervals,
/// six decayed counters and more in a hash map: over 600 bytes per cached entry. This keeps
/// what measured to carry most of its gain (docs/BENCHMARKS.md):
///
/// - **History**: per resident, the last reference (32 bits of the policy's reference
///   clock), the log bins of the last two reuse intervals and a saturating count. Evicted
///   keys keep theirs in a set-associative table of `ghosts` times the largest resident
///   count, each set replacing its oldest; a key found there on insertion skips probation.
/// - **Features**: the age, the two intervals, the count, the weight, and how far the age is
///   short of or past the last interval.
/// - **Eviction**: new keys without a history pass a probationary FIFO (10%), as in
///   [`Lrb`](crate::Lrb). In the learned region, as in Redis's eviction pool, `samples`
///   random residents join the `keep` worst candidates of the previous eviction, and the one
///   the model predicts to return last goes; before the first model, the oldest.
/// - **Model and labels**: as [`Lrb`](crate::Lrb)'s (32 boosted trees on the latest 32,768
///   labels, retrained inline or on the process's training thread, see [`Training`]), with at most
///   16,384 samples awaiting their label.
///
/// It closes a little less of the gap to OPT than [`Lrb`](crate::Lrb) on the shared traces
/// and replays them about twice as fast; training still makes it a policy for caches whose
/// misses are far dearer than a replay step.
pub struct CompactLrb {
    slots: Vec<Slot>,
    small: SlotList,
    small_weight: u64,
    small_max: u64,
    main_len: usize,
    ghosts: Ghosts,
    ghost_factor: usize,
    pending: Pending<WIDTH>,
    learner: Learner,
    /// References seen; histories keep its low 32 bits.
    now: u64,
    rng: crate::rng::XorShift64,
    peak: usize,
    window_factor: u32,
    samples: usize,
    stamps: u32,
    keep: usize,
    kept: Vec<(SlotId, u32)>,
    scratch: Vec<(f32, SlotId, u32)>,
}

impl std::fmt::Debug for CompactLrb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactLrb")
            .field("small", &self.small.len())
            .field("main", &self.main_len)
            .field("ghosts", &self.ghosts.capacity())
            .field("trained", &self.learner.is_trained())
            .finish()
    }
}

impl CompactLrb {
    /// A compact LRB policy for `max_weight` with the default parameters.
    pub fn new(max_weight: u64) -> Self {
        CompactLrbFactory::default().make(max_weight)
    }

    /// Whether a model has been trained yet (until then the oldest sampled entry goes).
    pub fn is_trained(&self) -> bool {
        self.learner.is_trained()
    }

    fn window(&self) -> u32 {
        self.window_factor.saturating_mul((self.peak as u32).max(64))
    }

    fn features(&self, h: Hist, weight: u64) -> [u8; WIDTH] {
        let age = u64::from(self.clock().wrapping_sub(h.last));
        let mut x = [MISSING; WIDTH];
        x[0] = log_bin(age);
        x[1] = h.i1;
        x[2] = h.i2;
        x[3] = log_bin(u64::from(h.count));
        x[4] = log_bin(weight);
        if h.i1 != MISSING {
            let last = bin_floor(h.i1);
            x[5] = log_bin(last.saturating_sub(age));
            x[6] = log_bin(age.saturating_sub(last));
        }
        x
    }

    /// The reference clock as histories hold it.
    fn clock(&self) -> u32 {
        self.now as u32
    }

    /// Advances the clock for a reference to `hash`: labels its pending sample and expires
    /// samples older than the memory window.
    fn tick(&mut self, hash: u64) {
        self.now += 1;
        self.pending.referenced(hash, self.now, &mut self.learner);
        self.pending.expire(self.now, u64::from(self.window()), &mut self.learner);
    }

    fn leave(&mut self, slot: SlotId) {
        let s = self.slots[slot as usize];
        match s.place {
            Place::Free => return,
            Place::Small { .. } => {
                self.small.unlink(slot);
                self.small_weight -= s.weight;
            }
            Place::Main => self.main_len -= 1,
        }
        self.slots[slot as usize].place = Place::Free;
        self.ghosts.put(s.hash, s.hist);
    }

    /// The learned region's victim, chosen as Redis chooses from its eviction pool: `samples`
    /// random residents join the `keep` worst candidates left from earlier evictions, and the
    /// one predicted to return last goes (the oldest before the first model).
    fn evict_main(&mut self) -> Option<SlotId> {
        self.learner.adopt();
        let mut cands = std::mem::take(&mut self.scratch);
        cands.clear();
        for &(slot, stamp) in &self.kept {
            let s = &self.slots[slot as usize];
            if s.place == Place::Main && s.stamp == stamp {
                cands.push((0.0, slot, stamp));
            }
        }
        let k = self.samples.min(self.main_len);
        let (mut taken, mut tries) = (0, 0);
        while taken < k && tries < 8 * k + 64 {
            tries += 1;
            let slot = (self.rng.next() % self.slots.len() as u64) as SlotId;
            let s = self.slots[slot as usize];
            if s.place != Place::Main || cands.iter().any(|c| c.1 == slot) {
                continue;
            }
            if taken < LABELED_PER_EVICTION && self.pending.wants(s.hash) {
                self.pending.add(s.hash, self.now, self.features(s.hist, s.weight));
            }
            taken += 1;
            cands.push((0.0, slot, s.stamp));
        }
        for c in cands.iter_mut() {
            let s = self.slots[c.1 as usize];
            c.0 = match self.learner.model() {
                Some(m) => {
                    m.predict(&self.features(s.hist, s.weight)) + (s.weight.max(1) as f32).log2()
                }
                None => self.clock().wrapping_sub(s.hist.last) as f32,
            };
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0));
        let victim = match cands.first() {
            Some(c) => c.1,
            // Sampling found nothing (a sparse slot vector): the first resident goes.
            None => self.slots.iter().position(|s| s.place == Place::Main)? as SlotId,
        };
        self.kept.clear();
        self.kept.extend(cands.iter().skip(1).take(self.keep).map(|c| (c.1, c.2)));
        self.scratch = cands;
        self.leave(victim);
        Some(victim)
    }
}

impl EvictionPolicy for CompactLrb {
    fn name(&self) -> &'static str {
        "lrb-compact"
    }

    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(
                i + 1,
                Slot { hash: 0, weight: 0, hist: Hist::first(0), place: Place::Free, stamp: 0 },
            );
        }
        self.leave(slot);
        self.tick(info.hash);
        let remembered = self.ghosts.take(info.hash);
        let hist = remembered.map_or(Hist::first(self.clock()), |h| h.referenced(self.clock()));
        self.stamps = self.stamps.wrapping_add(1);
        let stamp = self.stamps;
        self.slots[i] =
            Slot { hash: info.hash, weight: info.weight, hist, place: Place::Main, stamp };
        if remembered.is_some() || self.small_max == 0 {
            self.main_len += 1;
        } else {
            self.slots[i].place = Place::Small { count_at_insert: hist.count };
            self.small.push_front(slot);
            self.small_weight += info.weight;
        }
        let len = self.len();
        if len > self.peak {
            self.peak = len;
            let want = self.ghost_factor.saturating_mul(len);
            if want > self.ghosts.capacity() {
                self.ghosts = self.ghosts.grown(want);
            }
        }
    }

    fn on_access(&mut self, slot: SlotId) {
        let Some(s) = self.slots.get(slot as usize).copied() else { return };
        if s.place != Place::Free {
            self.tick(s.hash);
            self.slots[slot as usize].hist = s.hist.referenced(self.clock());
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
        self.tick(s.hash);
        let hist = s.hist.referenced(self.clock());
        let slot = &mut self.slots[slot as usize];
        slot.weight = info.weight;
        slot.hist = hist;
    }

    fn on_remove(&mut self, slot: SlotId) {
        if (slot as usize) < self.slots.len() {
            self.leave(slot);
        }
    }

    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        while self.small.len() > 0 && (self.small_weight > self.small_max || self.main_len == 0) {
            let slot = self.small.pop_back()?;
            let s = self.slots[slot as usize];
            self.small_weight -= s.weight;
            let Place::Small { count_at_insert } = s.place else { continue };
            if s.hist.count > count_at_insert {
                self.slots[slot as usize].place = Place::Main;
                self.main_len += 1;
                continue;
            }
            self.slots[slot as usize].place = Place::Free;
            self.ghosts.put(s.hash, s.hist);
            return Some(slot);
        }
        if self.main_len == 0 {
            return None;
        }
        self.evict_main()
    }

    fn len(&self) -> usize {
        self.small.len() + self.main_len
    }
}

/// Makes [`CompactLrb`] policies.
#[derive(Debug, Clone, Copy)]
pub struct CompactLrbFactory {
    /// Memory window for labels, in multiples of the largest resident count (default 6).
    pub window: u32,
    /// Residents sampled per eviction from the learned region (default 8).
    pub samples: usize,
    /// Worst candidates kept for the next eviction (default 8).
    pub keep: usize,
    /// Share of the weight in the probationary FIFO (default 0.1, as S3-FIFO's small queue).
    pub small_share: f64,
    /// Evicted keys' histories kept, in multiples of the largest resident count (default 2).
    pub ghosts: usize,
    /// Where the model is trained (default inline, for reproducible replays;
    /// [`by_name`](crate::by_name) gives a served cache background training).
    pub training: Training,
}

impl Default for CompactLrbFactory {
    fn default() -> Self {
        CompactLrbFactory {
            window: 6,
            samples: 8,
            keep: 8,
            small_share: 0.1,
            ghosts: 2,
            training: Training::Inline,
        }
    }
}

impl CompactLrbFactory {
    fn make(&self, max_weight: u64) -> CompactLrb {
        let max = max_weight.max(1);
        CompactLrb {
            slots: Vec::new(),
            small: SlotList::new(),
            small_weight: 0,
            small_max: ((max as f64 * self.small_share.clamp(0.0, 1.0)) as u64).min(max),
            main_len: 0,
            ghosts: Ghosts::with_capacity(64),
            ghost_factor: self.ghosts.max(1),
            pending: Pending::new(PENDING_MAX),
            learner: Learner::new(WIDTH, Boosting::default(), self.training),
            now: 0,
            rng: crate::rng::XorShift64::new(0x9E37_79B9_7F4A_7C15),
            peak: 0,
            window_factor: self.window.max(1),
            samples: self.samples.max(1),
            stamps: 0,
            keep: self.keep,
            kept: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl PolicyFactory for CompactLrbFactory {
    fn name(&self) -> &str {
        "lrb-compact"
    }

    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(self.make(max_weight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_floor_inverts_log_bin() {
        let large = (10..32).flat_map(|p| [(1u64 << p) - 1, 1 << p, (1 << p) + 12_345]);
        for x in (0..5_000).chain(large) {
            let bin = log_bin(x);
            let floor = bin_floor(bin);
            assert!(floor <= x && log_bin(floor) == bin, "{floor} is in {x}'s bin {bin}");
            assert!(floor == 0 || log_bin(floor - 1) < bin, "{floor} is the least of bin {bin}");
        }
    }

    #[test]
    fn a_ghost_set_forgets_its_oldest_entry_first() {
        let mut g = Ghosts::with_capacity(2 * WAYS);
        // Hashes 2, 4, 6, ... share set 0 of the two sets.
        let hist = |n: u32| Hist { last: n, i1: 3, i2: MISSING, count: 2 };
        for n in 1..=WAYS as u32 + 1 {
            g.put(u64::from(2 * n), hist(n));
        }
        assert_eq!(g.take(2), None, "the first of nine in an eight-way set is gone");
        for n in 2..=WAYS as u32 + 1 {
            assert_eq!(g.take(u64::from(2 * n)), Some(hist(n)));
        }
        assert_eq!(g.take(4), None, "taking a history removes it");
    }

    #[test]
    fn growing_the_ghost_table_keeps_every_history() {
        let mut g = Ghosts::with_capacity(64);
        let hash = |n: u64| n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for n in 0..40 {
            g.put(hash(n), Hist::first(n as u32));
        }
        let before: Vec<u64> = (0..40).filter(|&n| g.find(hash(n)).is_some()).collect();
        assert!(before.len() >= 32, "most of 40 fit in 64 ways: {}", before.len());
        let mut g = g.grown(1_024);
        assert!(g.capacity() >= 1_024);
        for n in before {
            assert_eq!(g.take(hash(n)), Some(Hist::first(n as u32)), "history {n} after growing");
        }
    }
}
