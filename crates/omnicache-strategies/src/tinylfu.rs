//! W-TinyLFU with an adaptive window (Einziger, Friedman & Manes, 2017; Caffeine's hill climber).

use crate::list::SlotList;
use crate::sketch::Sketch;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, PolicyFactory, SlotId};

const NONE: u8 = 0;
const WINDOW: u8 = 1;
const PROBATION: u8 = 2;
const PROTECTED: u8 = 3;

/// Caffeine's hill-climber constants.
const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;
/// A candidate this frequent is sometimes admitted anyway, so an attacker cannot pin the cache
/// by flooding colliding hashes (Caffeine's defence).
const HASHDOS_THRESHOLD: u32 = 6;

/// New entries enter a small LRU window; the window's overflow competes for a place in the main
/// space (a segmented LRU: probation, then protected after a second use) against main's
/// victim, and wins only if the sketch says it is used more often. The window's share starts at
/// 1% and climbs toward whatever improves the hit rate, as Caffeine's hill climber does: every
/// sample period the hit rate is compared with the previous one, and the window moves by a
/// step that decays, restarting when the hit rate changes a lot.
pub struct WTinyLfu {
    window: SlotList,
    probation: SlotList,
    protected: SlotList,
    /// Per slot: segment, weight, hash.
    meta: Vec<(u8, u64, u64)>,
    weights: [u64; 4],
    sketch: Sketch,
    max: u64,
    window_max: u64,
    protected_share: f64,
    adaptive: bool,
    hits: u64,
    misses: u64,
    sample: u64,
    previous_rate: f64,
    step: f64,
    rng: crate::rng::XorShift64,
}

impl std::fmt::Debug for WTinyLfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WTinyLfu")
            .field("max", &self.max)
            .field("window_max", &self.window_max)
            .field("window", &self.window.len())
            .field("probation", &self.probation.len())
            .field("protected", &self.protected.len())
            .finish()
    }
}

impl WTinyLfu {
    /// A W-TinyLFU for a cache of `max_weight`, with the window starting at `window_share`
    /// (clamped to 0..=1) and adapting if `adaptive`.
    pub fn new(max_weight: u64, window_share: f64, adaptive: bool) -> Self {
        Self::with_doorkeeper(max_weight, window_share, adaptive, false)
    }

    /// As [`new`](Self::new), choosing whether the sketch has a doorkeeper.
    pub fn with_doorkeeper(
        max_weight: u64,
        window_share: f64,
        adaptive: bool,
        doorkeeper: bool,
    ) -> Self {
        let max = max_weight.max(1);
        let share = if window_share.is_finite() { window_share.clamp(0.0, 1.0) } else { 0.01 };
        WTinyLfu {
            window: SlotList::new(),
            probation: SlotList::new(),
            protected: SlotList::new(),
            meta: Vec::new(),
            weights: [0; 4],
            sketch: Sketch::new(max, doorkeeper),
            max,
            window_max: ((max as f64 * share).round() as u64).min(max),
            protected_share: 0.8,
            adaptive,
            hits: 0,
            misses: 0,
            sample: (10 * max).clamp(1_000, 1 << 32),
            previous_rate: 0.0,
            // The window starts at its smallest useful size, so the first move is to grow it;
            // the climber reverses as soon as that lowers the hit rate.
            step: STEP_PERCENT * max as f64,
            rng: crate::rng::XorShift64::new(0x2545_F491_4F6C_DD1D),
        }
    }

    /// The window's current budget, in weight units.
    pub fn window_max(&self) -> u64 {
        self.window_max
    }

    fn main_max(&self) -> u64 {
        self.max.saturating_sub(self.window_max)
    }

    fn protected_max(&self) -> u64 {
        (self.main_max() as f64 * self.protected_share) as u64
    }

    fn list(&mut self, seg: u8) -> &mut SlotList {
        match seg {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        }
    }

    fn unlink(&mut self, slot: SlotId) -> Option<(u8, u64, u64)> {
        let m = *self.meta.get(slot as usize)?;
        if m.0 == NONE {
            return None;
        }
        self.list(m.0).unlink(slot);
        self.weights[m.0 as usize] -= m.1;
        self.meta[slot as usize].0 = NONE;
        Some(m)
    }

    fn push(&mut self, slot: SlotId, seg: u8, weight: u64, hash: u64) {
        let i = slot as usize;
        if i >= self.meta.len() {
            self.meta.resize(i + 1, (NONE, 0, 0));
        }
        self.meta[i] = (seg, weight, hash);
        self.list(seg).push_front(slot);
        self.weights[seg as usize] += weight;
    }

    fn main_weight(&self) -> u64 {
        self.weights[PROBATION as usize] + self.weights[PROTECTED as usize]
    }

    /// Moves protected's least recent entries to probation while protected is over its share.
    fn demote_protected(&mut self) {
        while self.weights[PROTECTED as usize] > self.protected_max() {
            let Some(s) = self.protected.back() else { break };
            if let Some((_, w, h)) = self.unlink(s) {
                self.push(s, PROBATION, w, h);
            }
        }
    }

    fn record(&mut self, hash: u64, hit: bool) {
        self.sketch.increment(hash);
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        if self.adaptive && self.hits + self.misses >= self.sample {
            self.climb();
        }
    }

    /// One hill-climbing step of the window size.
    fn climb(&mut self) {
        let rate = self.hits as f64 / (self.hits + self.misses) as f64;
        let change = rate - self.previous_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * self.max as f64 * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_rate = rate;
        self.hits = 0;
        self.misses = 0;
        let target = (self.window_max as f64 + amount).round();
        self.window_max = (target.max(0.0) as u64).min(self.max);
        self.demote_protected();
    }

    fn admit(&mut self, candidate: u64, victim: u64) -> bool {
        let c = self.sketch.frequency(candidate);
        let v = self.sketch.frequency(victim);
        if c > v {
            return true;
        }
        if c >= HASHDOS_THRESHOLD {
            return self.rng.next() & 127 == 0;
        }
        false
    }

    fn main_victim(&self) -> Option<SlotId> {
        self.probation.back().or_else(|| self.protected.back())
    }
}

impl EvictionPolicy for WTinyLfu {
    fn name(&self) -> &'static str {
        if self.adaptive {
            "wtinylfu"
        } else {
            "wtinylfu-fixed"
        }
    }
    fn on_insert(&mut self, slot: SlotId, info: EntryInfo) {
        self.unlink(slot);
        self.record(info.hash, false);
        self.push(slot, WINDOW, info.weight.max(1), info.hash);
    }
    fn on_access(&mut self, slot: SlotId) {
        let Some((seg, w, h)) = self.unlink(slot) else { return };
        self.record(h, true);
        match seg {
            PROBATION | PROTECTED => {
                self.push(slot, PROTECTED, w, h);
                self.demote_protected();
            }
            _ => self.push(slot, WINDOW, w, h),
        }
    }
    fn on_update(&mut self, slot: SlotId, info: EntryInfo) {
        if let Some((seg, _, h)) = self.unlink(slot) {
            self.push(slot, seg, info.weight.max(1), h);
            if seg == PROTECTED {
                self.demote_protected();
            }
        }
    }
    fn on_remove(&mut self, slot: SlotId) {
        self.unlink(slot);
    }
    fn evict(&mut self, _accesses: &mut dyn AccessView) -> Option<SlotId> {
        loop {
            if self.weights[WINDOW as usize] > self.window_max {
                let cand = self.window.back()?;
                let (_, cw, ch) = self.meta[cand as usize];
                if self.main_weight() + cw <= self.main_max() {
                    self.unlink(cand);
                    self.push(cand, PROBATION, cw, ch);
                    continue;
                }
                let Some(victim) = self.main_victim() else {
                    self.unlink(cand);
                    return Some(cand);
                };
                let vh = self.meta[victim as usize].2;
                if self.admit(ch, vh) {
                    self.unlink(victim);
                    self.unlink(cand);
                    self.push(cand, PROBATION, cw, ch);
                    return Some(victim);
                }
                self.unlink(cand);
                return Some(cand);
            }
            let victim = self.main_victim().or_else(|| self.window.back())?;
            self.unlink(victim);
            return Some(victim);
        }
    }
    fn len(&self) -> usize {
        self.window.len() + self.probation.len() + self.protected.len()
    }
}

/// Makes [`WTinyLfu`] policies: 1% window, adaptive, unless set otherwise.
#[derive(Debug, Clone, Copy)]
pub struct WTinyLfuFactory {
    /// The window's initial share of the budget. Default 0.01.
    pub window_share: f64,
    /// Whether the window adapts (hill climbing). Default true.
    pub adaptive: bool,
    /// Whether the sketch has a doorkeeper (a Bloom filter absorbing first sightings). Default
    /// false: without it the policy closed more of the LRU-to-OPT gap on the shared traces.
    pub doorkeeper: bool,
    /// The protected segment's share of the main space. Default 0.8.
    pub protected_share: f64,
}

impl Default for WTinyLfuFactory {
    fn default() -> Self {
        WTinyLfuFactory {
            window_share: 0.01,
            adaptive: true,
            doorkeeper: false,
            protected_share: 0.8,
        }
    }
}

impl PolicyFactory for WTinyLfuFactory {
    fn name(&self) -> &str {
        if self.adaptive {
            "wtinylfu"
        } else {
            "wtinylfu-fixed"
        }
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        let mut p = WTinyLfu::with_doorkeeper(
            max_weight,
            self.window_share,
            self.adaptive,
            self.doorkeeper,
        );
        p.protected_share = self.protected_share.clamp(0.0, 1.0);
        Box::new(p)
    }
}
