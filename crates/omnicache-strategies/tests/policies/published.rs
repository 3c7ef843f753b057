//! ARC, LIRS, SIEVE, W-TinyLFU, LRB and the selector: hand-worked sequences, brute-force references, bounded ghosts.

use omnicache_core::testkit::SplitMix;
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, NoReads, PolicyFactory, SlotId};
use omnicache_strategies::sim::{mix, replay};
use omnicache_strategies::*;
use std::sync::Arc;

fn info(slot: SlotId) -> EntryInfo {
    EntryInfo { hash: mix(u64::from(slot)), weight: 1, expires: None }
}

/// Hashes by slot, as the cache would give them.
struct Hashes;
impl AccessView for Hashes {
    fn take_accesses(&mut self, _slot: SlotId) -> u8 {
        0
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        mix(u64::from(slot))
    }
}

#[test]
fn arc_adapts_p_up_on_a_b1_hit_and_down_on_a_b2_hit() {
    // Slot ids double as keys here: slot s holds the key whose hash is mix(s).
    let mut p = ArcPolicy::new(4);
    p.on_insert(0, info(0));
    p.on_insert(1, info(1));
    p.on_access(1); // 1 is frequent: T2
    for s in 2..5 {
        p.on_insert(s, info(s));
    }
    assert_eq!(p.evict(&mut Hashes), Some(0), "T1's least recent leaves first");
    assert_eq!(p.sizes(), (3, 1, 1, 0), "and is remembered in B1");
    // Key 0 again: a B1 hit means T1 was too small: p grows by max(|B2|/|B1|, 1) = 1.
    p.on_insert(0, info(0));
    assert_eq!(p.target(), 1.0);
    assert_eq!(p.sizes(), (3, 2, 0, 0), "a ghost hit goes to T2");
    assert_eq!(p.evict(&mut Hashes), Some(2), "T1 (3) is above p (1): evict from T1");
    // Make T1's entries frequent, then bring in a new key: T1 (1 entry) is not above p, so the
    // victim comes from T2 and is remembered in B2.
    p.on_access(3);
    p.on_access(4);
    p.on_insert(5, info(5));
    assert_eq!(p.evict(&mut Hashes), Some(1), "T2's least recent");
    assert_eq!(p.sizes().3, 1, "remembered in B2");
    // Key 1 again: a B2 hit means T2 was too small: p shrinks by max(|B1|/|B2|, 1) = 1.
    p.on_insert(1, info(1));
    assert_eq!(p.target(), 0.0);
}

#[test]
fn arc_ghost_lists_stay_bounded() {
    let mut rng = SplitMix(3);
    let c = 50u64;
    let mut p = ArcPolicy::new(c);
    let mut cache = Driver::new(c as usize);
    for _ in 0..20_000 {
        cache.reference(&mut p, rng.below(400));
        let (t1, t2, b1, b2) = p.sizes();
        assert!(t1 + b1 <= c as usize, "|T1| + |B1| <= c");
        assert!(t1 + t2 + b1 + b2 <= 2 * c as usize, "everything <= 2c");
        assert!(p.target() >= 0.0 && p.target() <= c as f64);
    }
}

/// SIEVE by the paper: evict before insert; the hand walks from the tail towards the head.
fn brute_sieve(keys: &[u64], cap: usize) -> u64 {
    let mut queue: Vec<(u64, bool)> = Vec::new(); // index 0 = tail (oldest)
    let mut hand: Option<usize> = None;
    let mut hits = 0;
    for &k in keys {
        if let Some(e) = queue.iter_mut().find(|e| e.0 == k) {
            e.1 = true;
            hits += 1;
            continue;
        }
        if cap == 0 {
            continue;
        }
        if queue.len() == cap {
            let mut h = hand.unwrap_or(0);
            while queue[h].1 {
                queue[h].1 = false;
                h = if h + 1 < queue.len() { h + 1 } else { 0 };
            }
            queue.remove(h);
            hand = (h < queue.len()).then_some(h);
        }
        queue.push((k, false));
    }
    hits
}

#[test]
fn sieve_matches_the_paper_on_random_traces() {
    for seed in 0..40 {
        let mut rng = SplitMix(seed);
        let universe = 1 + rng.below(50);
        let keys: Vec<u64> = (0..1_500).map(|_| rng.below(universe)).collect();
        let cap = rng.below(30);
        let got = replay(&SieveFactory, &keys, cap).hits;
        assert_eq!(got, brute_sieve(&keys, cap as usize), "seed {seed} cap {cap}");
    }
}

#[test]
fn sieve_hand_keeps_its_place() {
    let mut p = Sieve::new();
    for s in 0..5 {
        p.on_insert(s, info(s)); // tail..head: 0 1 2 3 4, with 4 the newcomer
    }
    p.on_access(0);
    p.on_access(1);
    // The hand starts at the tail: 0 and 1 were visited (cleared, passed), 2 is evicted.
    assert_eq!(p.evict(&mut NoReads), Some(2));
    assert_eq!(p.hand(), Some(3), "the hand stays where it stopped, it does not go back");
    p.on_insert(5, info(5));
    p.on_access(3);
    // 3 visited: cleared and passed; 4 was never read: evicted, although 0 and 1 are older.
    assert_eq!(p.evict(&mut NoReads), Some(4));
    // 4 was the oldest entry on the head side (5 had only just come in), so the hand wraps to
    // the tail, where 0's bit was cleared in the first round: 0 goes.
    p.on_insert(6, info(6));
    assert_eq!(p.evict(&mut NoReads), Some(0));
}

#[test]
fn wtinylfu_admits_by_frequency() {
    // Budget 100, window 1: the window's overflow duels with probation's oldest.
    let mut p = WTinyLfu::new(100, 0.01, false);
    for s in 0..100 {
        p.on_insert(s, info(s));
    }
    // Make the main entries popular.
    for _ in 0..3 {
        for s in 0..100 {
            p.on_access(s);
        }
    }
    // A stream of one-hit wonders. At the first eviction the window's older entries move into
    // the empty main space until it is full; the window keeps 99 and the newcomer 100, and 99
    // (as frequent as main's victim, not more) loses its duel. From then on each newcomer,
    // seen once, loses to main's popular victim when it leaves the window.
    for s in 100..200 {
        p.on_insert(s, info(s));
        let expected = if s == 100 { 99 } else { s - 1 };
        assert_eq!(p.evict(&mut NoReads), Some(expected), "newcomer {s}");
    }
}

/// Drives `p` as a cache of `cap` entries over `keys` (slot ids double as keys, hashed with
/// `mix` as [`Hashes`] does), checking the window's bounds at every step.
fn drive_wtinylfu(
    p: &mut WTinyLfu,
    resident: &mut std::collections::HashSet<u64>,
    cap: usize,
    keys: &[u64],
) {
    for &k in keys {
        let slot = k as SlotId;
        if resident.contains(&k) {
            p.on_access(slot);
        } else {
            if resident.len() >= cap {
                let victim = p.evict(&mut Hashes).expect("a full cache has a victim");
                resident.remove(&u64::from(victim));
            }
            p.on_insert(slot, info(slot));
            resident.insert(k);
        }
        assert!(p.window_max() <= cap as u64, "the window stays within the cache");
    }
}

#[test]
fn wtinylfu_window_adapts() {
    let cap = 1_000;
    let mut p = WTinyLfu::new(cap as u64, 0.01, true);
    let start = p.window_max();
    let mut resident = std::collections::HashSet::new();
    // Recency: half the references are new keys, half re-read a key from up to 900 references
    // back, at any distance alike. A once-seen candidate rarely beats main's victim, so only
    // the window keeps such keys, and every step of growth catches more re-reads: the climber
    // must grow it well past its initial 1%.
    let mut rng = SplitMix(11);
    let mut recency: Vec<u64> = Vec::with_capacity(300_000);
    for i in 0..300_000u64 {
        let back = 1 + rng.below(900);
        let k = if i < 1_000 || rng.below(2) == 0 {
            1_000_000 + i
        } else {
            recency[(i - back) as usize]
        };
        recency.push(k);
    }
    drive_wtinylfu(&mut p, &mut resident, cap, &recency);
    let grown = p.window_max();
    assert!(grown >= start + 100, "recency grew the window: {start} -> {grown}");
    // Frequency: a hot set of 600 keys read over and over, among one-off keys. The window only
    // lets one-offs displace hot keys, so the climber must shrink it again.
    let mut rng = SplitMix(7);
    let frequency: Vec<u64> =
        (0..400_000u64).map(|i| if i % 3 == 0 { 10_000_000 + i } else { rng.below(600) }).collect();
    drive_wtinylfu(&mut p, &mut resident, cap, &frequency);
    let shrunk = p.window_max();
    assert!(shrunk + 100 <= grown, "frequency shrank the window: {grown} -> {shrunk}");
    // A fixed window never moves.
    let mut fixed = WTinyLfu::new(cap as u64, 0.01, false);
    let mut resident = std::collections::HashSet::new();
    drive_wtinylfu(&mut fixed, &mut resident, cap, &recency);
    assert_eq!(fixed.window_max(), start);
}

#[test]
fn lirs_makes_a_ghost_hit_lir_and_demotes_the_oldest_lir() {
    // Budget 3: 2 LIR, 1 HIR. Slots double as keys (hash mix(slot)) except where noted.
    let mut p = Lirs::new(3, 0.01, 2.0);
    p.on_insert(0, info(0)); // A: LIR (the LIR set is not full yet)
    p.on_insert(1, info(1)); // B: LIR
    p.on_insert(2, info(2)); // C: resident HIR
    p.on_insert(3, info(3)); // D: resident HIR
    assert_eq!(p.sizes(), (2, 2, 0));
    assert_eq!(p.evict(&mut Hashes), Some(2), "the oldest resident HIR leaves, not LRU's A");
    assert_eq!(p.sizes(), (2, 1, 1), "and stays in the stack as a ghost");
    // C again, in slot 4: still in the stack, so its reuse distance beats A's: C becomes LIR and
    // A, the oldest LIR, joins the HIR queue ahead of D.
    p.on_insert(4, EntryInfo { hash: mix(2), weight: 1, expires: None });
    assert_eq!(p.sizes(), (2, 2, 0));
    assert_eq!(p.evict(&mut Hashes), Some(3), "D is the oldest in the queue");
    assert_eq!(p.evict(&mut Hashes), Some(0), "then A");
    // A read of B (LIR) keeps it; the victims now come from the LIR set, oldest first.
    p.on_access(1);
    assert_eq!(p.evict(&mut Hashes), Some(4));
    assert_eq!(p.evict(&mut Hashes), Some(1));
    assert_eq!(p.evict(&mut Hashes), None);
    assert!(p.is_empty());
}

#[test]
fn lirs_resident_hir_read_twice_becomes_lir() {
    let mut p = Lirs::new(3, 0.01, 2.0);
    for s in 0..3 {
        p.on_insert(s, info(s)); // 0, 1 LIR; 2 HIR
    }
    p.on_access(2); // in the stack: promoted; 0 (the oldest LIR) is demoted
    assert_eq!(p.sizes(), (2, 1, 0));
    assert_eq!(p.evict(&mut Hashes), Some(0));
}

#[test]
fn lirs_keeps_most_of_a_loop_larger_than_the_cache_where_lru_keeps_nothing() {
    // A loop over 120 keys in a cache of 100: LRU misses every time.
    let keys: Vec<u64> = (0..200).flat_map(|_| 0..120u64).collect();
    let lru = replay(&LruFactory, &keys, 100).hit_ratio();
    let lirs = replay(&LirsFactory::default(), &keys, 100).hit_ratio();
    assert_eq!(lru, 0.0);
    assert!(lirs > 0.75, "LIRS kept the LIR part of the loop: {lirs}");
}

#[test]
fn lirs_ghosts_stay_bounded_and_victims_are_resident() {
    let mut rng = SplitMix(11);
    let c = 50u64;
    let mut p = Lirs::new(c, 0.01, 2.0);
    let mut cache = Driver::new(c as usize);
    for i in 0..30_000u64 {
        // A loop and a random tail, so the stack holds LIR, HIR and ghosts.
        let key = if i % 3 == 0 { rng.below(2_000) } else { i % 70 };
        if cache.contains(key) && rng.below(10) == 0 {
            cache.remove(&mut p, key);
        } else {
            cache.reference(&mut p, key);
        }
        let (lir, hir, ghosts) = p.sizes();
        assert_eq!(lir + hir, cache.len());
        assert_eq!(p.len(), cache.len());
        assert!((lir as u64) < c, "the LIR set stays within its budget");
        assert!(ghosts <= 2 * 51, "ghosts bounded by twice the peak resident count");
    }
}

#[test]
fn selector_follows_lirs_on_a_loop_and_matches_it() {
    // A loop over 120 keys in a cache of 100: LIRS keeps most of it, S3-FIFO and LRU do not.
    let keys: Vec<u64> = (0..300).flat_map(|_| 0..120u64).collect();
    let lirs = replay(&LirsFactory::default(), &keys, 100).hit_ratio();
    let s3 = replay(&S3FifoFactory::default(), &keys, 100).hit_ratio();
    let sel = replay(&SelectorFactory::default(), &keys, 100).hit_ratio();
    assert!(lirs > s3 + 0.2, "the loop separates the experts: {lirs} vs {s3}");
    assert!(sel > lirs - 0.05, "the selector follows LIRS: {sel} vs {lirs}");
    let mut p = Selector::new(
        vec![Arc::new(S3FifoFactory::default()), Arc::new(LirsFactory::default())],
        100,
    );
    assert_eq!(p.leader(), "s3fifo", "the first expert leads at first");
    drive(&mut *p_as_dyn(&mut p), &keys, 100);
    assert_eq!(p.leader(), "lirs");
}

/// A selector over chosen experts, as a factory for `replay`.
#[derive(Debug)]
struct SelectorOver(Vec<Arc<dyn PolicyFactory>>);

impl PolicyFactory for SelectorOver {
    fn name(&self) -> &str {
        "selector"
    }
    fn build(&self, max_weight: u64) -> Box<dyn EvictionPolicy> {
        Box::new(Selector::new(self.0.clone(), max_weight))
    }
}

#[test]
fn a_selector_over_one_expert_is_that_expert() {
    // What the only expert keeps gets the whole vote, so the cache evicts exactly what the
    // expert's shadow evicts: the same hits at every reference count.
    let mut rng = SplitMix(11);
    let keys: Vec<u64> =
        (0..20_000).map(|i| if i % 4 == 0 { rng.below(5_000) } else { rng.below(300) }).collect();
    let experts: [Arc<dyn PolicyFactory>; 3] = [
        Arc::new(LruFactory),
        Arc::new(LirsFactory::default()),
        Arc::new(S3FifoFactory::default()),
    ];
    for expert in experts {
        let alone = replay(&*expert, &keys, 200);
        let selected = replay(&SelectorOver(vec![expert.clone()]), &keys, 200);
        assert_eq!(selected.hits, alone.hits, "{}", expert.name());
    }
}

#[test]
fn a_strong_expert_outvotes_a_weak_majority() {
    // A loop over 120 keys in a cache of 100, every other reference to one of 10 hot keys:
    // LRU gets the hot hits only, LIRS the loop's too. Two LRUs must not carry the vote
    // against one LIRS by number, nor by the sum of their scores (each about 0.55 of LIRS's).
    let keys: Vec<u64> =
        (0..300).flat_map(|_| 0..120u64).flat_map(|k| [1_000 + k % 10, k]).collect();
    let lru = replay(&LruFactory, &keys, 100).hit_ratio();
    let lirs = replay(&LirsFactory::default(), &keys, 100).hit_ratio();
    let two_lrus = SelectorOver(vec![
        Arc::new(LruFactory),
        Arc::new(LruFactory),
        Arc::new(LirsFactory::default()),
    ]);
    let sel = replay(&two_lrus, &keys, 100).hit_ratio();
    assert!(2.0 * lru > lirs && lirs > lru + 0.2, "LRU {lru}, LIRS {lirs}");
    assert!(sel > lirs - 0.05, "the selector follows LIRS: {sel} vs {lirs}");
}

#[test]
fn selector_follows_s3fifo_against_a_scan() {
    // A hot set of 50 keys read between one-off keys: S3-FIFO keeps the hot set, LRU does not.
    let keys = hot_set_between_one_off_keys();
    let mut p = Selector::new(vec![Arc::new(LruFactory), Arc::new(S3FifoFactory::default())], 80);
    drive(&mut *p_as_dyn(&mut p), &keys, 80);
    assert_eq!(p.leader(), "s3fifo");
    let sel = replay(&SelectorFactory::default(), &keys, 80).hit_ratio();
    let lru = replay(&LruFactory, &keys, 80).hit_ratio();
    let s3 = replay(&S3FifoFactory::default(), &keys, 80).hit_ratio();
    assert!(s3 > lru + 0.05, "{s3} vs {lru}");
    assert!(sel > s3 - 0.02, "the selector keeps the hot set too: {sel} vs {s3}");
}

#[test]
fn lrb_learns_to_keep_part_of_a_loop_larger_than_the_cache() {
    keeps_part_of_a_loop_larger_than_the_cache(Lrb::new(100), Lrb::is_trained);
}

#[test]
fn compact_lrb_learns_to_keep_part_of_a_loop_larger_than_the_cache() {
    keeps_part_of_a_loop_larger_than_the_cache(CompactLrb::new(100), CompactLrb::is_trained);
}

/// A loop over 120 keys in a cache of 100: LRU keeps nothing; OPT keeps 99 of every 120; a
/// learned policy `p`, once trained on the first half, more than half in the second.
fn keeps_part_of_a_loop_larger_than_the_cache<P: EvictionPolicy>(
    mut p: P,
    is_trained: fn(&P) -> bool,
) {
    let keys: Vec<u64> = (0..100).flat_map(|_| 0..120u64).collect();
    assert_eq!(replay(&LruFactory, &keys, 100).hit_ratio(), 0.0);
    assert!(!is_trained(&p));
    let mut cache = Driver::new(100);
    let (first, rest) = keys.split_at(keys.len() / 2);
    for &k in first {
        cache.reference(&mut p, k);
    }
    assert!(is_trained(&p), "labels arrive and a model is trained");
    let hits = rest.iter().filter(|&&k| cache.reference(&mut p, k)).count();
    let learned = hits as f64 / rest.len() as f64;
    assert!(learned > 0.5, "the model learns that the youngest entry returns last: {learned}");
}

#[test]
fn lrb_forgets_keys_a_window_after_they_leave() {
    // 100 entries, so a window of 6 x 100 references: with each reference and each eviction
    // leaving one mark in the window, at most 100 residents plus 1,200 others are tracked.
    let mut p = Lrb::new(100);
    let mut cache = Driver::new(100);
    let mut rng = SplitMix(11);
    for i in 0..50_000u64 {
        // A slowly drifting hot set, so keys stay resident well past the window, then leave.
        let k = if i % 3 == 0 { i } else { i / 500 * 40 + rng.below(40) };
        cache.reference(&mut p, k);
        assert!(p.tracked_keys() <= 1_300, "{} histories at {i}", p.tracked_keys());
    }
    assert!(p.tracked_keys() >= 100, "the residents are tracked");
}

#[test]
fn lrb_keeps_a_hot_set_against_one_off_keys() {
    keeps_a_hot_set_against_one_off_keys(&LrbFactory::default());
}

#[test]
fn compact_lrb_keeps_a_hot_set_against_one_off_keys() {
    keeps_a_hot_set_against_one_off_keys(&CompactLrbFactory::default());
}

/// A hot set read between one-off keys: the policy of `factory` keeps it as S3-FIFO does, and
/// LRU does not.
fn keeps_a_hot_set_against_one_off_keys(factory: &dyn PolicyFactory) {
    let keys = hot_set_between_one_off_keys();
    let learned = replay(factory, &keys, 80).hit_ratio();
    let lru = replay(&LruFactory, &keys, 80).hit_ratio();
    let s3 = replay(&S3FifoFactory::default(), &keys, 80).hit_ratio();
    assert!(learned > lru + 0.05, "{learned} vs LRU {lru}");
    assert!(learned > s3 - 0.02, "{learned} vs S3-FIFO {s3}");
}

#[test]
fn lrb_evicts_one_off_keys_from_probation_and_readmits_known_keys_past_it() {
    // Key 100's history stays within LRB's memory window after 50 one-off keys.
    readmits_a_known_key_past_probation(&mut Lrb::new(20), 50);
}

#[test]
fn compact_lrb_remembers_evicted_keys_in_its_ghost_table() {
    // As for LRB, with fewer one-off keys (the table holds about twice the residents' keys).
    readmits_a_known_key_past_probation(&mut CompactLrb::new(20), 26);
    // Without the ghost table's memory, key 100 would be one more one-off key: a policy whose
    // table is forced to forget (a thousand other keys evicted since) sends it to probation.
    let mut p = CompactLrb::new(20);
    let mut cache = Driver::new(20);
    for k in (0..20).chain(0..20).chain(100..101).chain(1_000..3_000) {
        cache.reference(&mut p, k);
    }
    cache.reference(&mut p, 100);
    for k in 200..230 {
        cache.reference(&mut p, k);
    }
    assert!(!cache.contains(100), "a forgotten key is new again and leaves from probation");
}

/// In a cache of 20: 20 keys inserted and read once, then `one_offs` one-off keys from 100.
/// Once probation (2 entries) has passed the read keys on, every victim is a one-off key. Key
/// 100, evicted moments ago, comes back with its history past probation and outlives the next
/// one-off keys.
fn readmits_a_known_key_past_probation(p: &mut dyn EvictionPolicy, one_offs: u64) {
    let mut cache = Driver::new(20);
    for k in (0..20).chain(0..20).chain(100..100 + one_offs) {
        cache.reference(p, k);
    }
    let kept = (0..20).filter(|&k| cache.contains(k)).count();
    assert!(kept >= 18, "the read keys stay while one-off keys pass: {kept} of 20");
    let left = 100..100 + one_offs - 2;
    assert!(left.clone().all(|k| !cache.contains(k)), "one-off keys leave from probation");
    cache.reference(p, 100);
    for k in 200..230 {
        cache.reference(p, k);
    }
    assert!(cache.contains(100), "a known key re-enters past probation");
    assert!(!cache.contains(200));
}

/// 60,000 references: a hot set of 50 keys read between one-off keys.
fn hot_set_between_one_off_keys() -> Vec<u64> {
    let mut rng = SplitMix(5);
    let mut next = 1_000u64;
    (0..60_000)
        .map(|i| {
            if i % 2 == 0 {
                rng.below(50)
            } else {
                next += 1;
                next
            }
        })
        .collect()
}

fn p_as_dyn(p: &mut Selector) -> &mut dyn EvictionPolicy {
    p
}

/// Drives a policy as the cache does (get; insert on miss; evict while over `cap`), checking
/// that every victim is resident and the policy's count matches.
fn drive(p: &mut dyn EvictionPolicy, keys: &[u64], cap: usize) {
    let mut cache = Driver::new(cap);
    for &k in keys {
        cache.reference(p, k);
    }
}

/// The cache's side of a policy: keys in slots, a free list, and the keys' hashes for victims.
struct Driver {
    cap: usize,
    resident: std::collections::HashMap<u64, SlotId>,
    key_of: Vec<Option<u64>>,
    free: Vec<SlotId>,
}

/// Each slot's key hash, as the cache gives it to a policy looking for a victim.
struct KeyHashes<'a>(&'a [Option<u64>]);

impl AccessView for KeyHashes<'_> {
    fn take_accesses(&mut self, _: SlotId) -> u8 {
        0
    }
    fn hash(&mut self, s: SlotId) -> u64 {
        mix(self.0[s as usize].expect("asked for the hash of a resident slot"))
    }
}

impl Driver {
    fn new(cap: usize) -> Self {
        Driver { cap, resident: Default::default(), key_of: Vec::new(), free: Vec::new() }
    }

    fn len(&self) -> usize {
        self.resident.len()
    }

    fn contains(&self, key: u64) -> bool {
        self.resident.contains_key(&key)
    }

    /// A get of `key`, true for a hit: a hit is an access; a miss inserts, then evicts while
    /// over budget, checking that every victim is resident and that the policy counts what is.
    fn reference(&mut self, p: &mut dyn EvictionPolicy, key: u64) -> bool {
        if let Some(&s) = self.resident.get(&key) {
            p.on_access(s);
            return true;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.key_of.push(None);
            (self.key_of.len() - 1) as SlotId
        });
        self.key_of[s as usize] = Some(key);
        self.resident.insert(key, s);
        p.on_insert(s, EntryInfo { hash: mix(key), weight: 1, expires: None });
        while self.resident.len() > self.cap {
            let v = p.evict(&mut KeyHashes(&self.key_of)).expect("a victim while over budget");
            let k = self.key_of[v as usize].take().expect("the victim is resident");
            self.resident.remove(&k);
            self.free.push(v);
        }
        assert_eq!(p.len(), self.resident.len());
        false
    }

    /// An explicit removal of a resident `key`.
    fn remove(&mut self, p: &mut dyn EvictionPolicy, key: u64) {
        let s = self.resident.remove(&key).expect("removing a resident key");
        self.key_of[s as usize] = None;
        self.free.push(s);
        p.on_remove(s);
    }
}

#[test]
fn selector_without_experts_runs_s3fifo_alone() {
    let mut p = Selector::new(Vec::new(), 10);
    assert_eq!(p.leader(), "s3fifo");
    let keys: Vec<u64> = (0..1_000).map(|i| i % 37).collect();
    drive(&mut *p_as_dyn(&mut p), &keys, 10);
    assert_eq!(p.len(), 10);
}
