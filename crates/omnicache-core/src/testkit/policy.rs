use crate::policy::{AccessView, EntryInfo, PolicyFactory, SlotId};
use std::collections::{BTreeSet, HashMap};

/// A tiny deterministic PRNG (SplitMix64) so suites need no `rand`.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[derive(Default)]
struct Bits(HashMap<SlotId, u8>, HashMap<SlotId, u64>);

impl Bits {
    fn insert(&mut self, p: &mut dyn crate::EvictionPolicy, slot: SlotId, info: EntryInfo) {
        self.1.insert(slot, info.hash);
        p.on_insert(slot, info);
    }
}

impl AccessView for Bits {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        self.0.remove(&slot).unwrap_or(0)
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        *self.1.get(&slot).unwrap_or_else(|| panic!("asked for the hash of untracked slot {slot}"))
    }
}

/// Runs the eviction-policy contract against policies made by `factory`:
/// victims are always tracked slots and are forgotten once returned; `evict` is `None` only when
/// empty; `len` matches the model; untracked slots are ignored; draining returns every slot
/// exactly once; random operation sequences keep all of that true.
pub fn check_policy(factory: &dyn PolicyFactory) {
    let name = factory.name().to_string();

    // Empty policy.
    let mut p = factory.build(10);
    assert_eq!(p.len(), 0, "{name}: a new policy tracks nothing");
    assert!(p.evict(&mut Bits::default()).is_none(), "{name}: evict on empty is None");
    p.on_access(3);
    p.on_remove(3);
    assert_eq!(p.len(), 0, "{name}: untracked slots are ignored");

    // Drain returns every slot exactly once.
    let mut p = factory.build(64);
    let mut bits = Bits::default();
    for s in 0..64u32 {
        bits.insert(&mut *p, s, info(s as u64, 1));
        if s % 3 == 0 {
            p.on_access(s);
        }
    }
    assert_eq!(p.len(), 64, "{name}: len after 64 inserts");
    let mut seen = BTreeSet::new();
    while let Some(v) = p.evict(&mut bits) {
        assert!(seen.insert(v), "{name}: slot {v} evicted twice");
        assert!(v < 64, "{name}: evicted slot {v} was never inserted");
    }
    assert_eq!(seen.len(), 64, "{name}: drain returns every slot");
    assert_eq!(p.len(), 0, "{name}: empty after drain");

    // Removed slots are never evicted.
    let mut p = factory.build(8);
    let mut bits = Bits::default();
    for s in 0..8u32 {
        bits.insert(&mut *p, s, info(1000 + s as u64, 1));
    }
    p.on_remove(2);
    p.on_remove(5);
    let mut seen = BTreeSet::new();
    while let Some(v) = p.evict(&mut bits) {
        seen.insert(v);
    }
    assert_eq!(seen, [0, 1, 3, 4, 6, 7].into_iter().collect(), "{name}: removed slots stay gone");

    // Random sequences against a model of the tracked set, with slot reuse and weights.
    for seed in 0..20u64 {
        let mut rng = SplitMix(seed);
        let cap = 1 + rng.below(50);
        let mut p = factory.build(cap);
        let mut tracked: BTreeSet<SlotId> = BTreeSet::new();
        let mut free: Vec<SlotId> = Vec::new();
        let mut next_slot: SlotId = 0;
        let mut bits = Bits::default();
        for step in 0..2_000 {
            match rng.below(10) {
                0..=3 => {
                    let slot = free.pop().unwrap_or_else(|| {
                        next_slot += 1;
                        next_slot - 1
                    });
                    let w = 1 + rng.below(4);
                    bits.insert(&mut *p, slot, info(rng.below(200), w));
                    tracked.insert(slot);
                    // Keep within the budget by count, as a cache would.
                    while tracked.len() as u64 > cap {
                        let v = p.evict(&mut bits).unwrap_or_else(|| {
                            panic!("{name}: evict returned None with {} tracked", tracked.len())
                        });
                        assert!(
                            tracked.remove(&v),
                            "{name} seed {seed} step {step}: victim {v} was not tracked"
                        );
                        free.push(v);
                    }
                }
                4..=6 => {
                    let slot = rng.below(u64::from(next_slot.max(1))) as SlotId;
                    if tracked.contains(&slot)
                        && p.read_tracking() == crate::ReadTracking::AccessBits
                    {
                        let c = bits.0.entry(slot).or_default();
                        *c = (*c + 1).min(3);
                    }
                    p.on_access(slot);
                }
                7 => {
                    let slot = rng.below(u64::from(next_slot.max(1))) as SlotId;
                    if tracked.contains(&slot) {
                        let i = info(rng.below(200), 1 + rng.below(4));
                        bits.1.insert(slot, i.hash);
                        p.on_update(slot, i);
                    } else {
                        p.on_remove(slot);
                    }
                }
                8 => {
                    let slot = rng.below(u64::from(next_slot.max(1))) as SlotId;
                    if tracked.remove(&slot) {
                        bits.0.remove(&slot);
                        free.push(slot);
                    }
                    p.on_remove(slot);
                }
                _ => {
                    if let Some(v) = p.evict(&mut bits) {
                        assert!(
                            tracked.remove(&v),
                            "{name} seed {seed} step {step}: victim {v} was not tracked"
                        );
                        bits.0.remove(&v);
                        free.push(v);
                    } else {
                        assert!(tracked.is_empty(), "{name}: None while {} tracked", tracked.len());
                    }
                }
            }
            assert_eq!(p.len(), tracked.len(), "{name} seed {seed} step {step}: len");
        }
    }
}

fn info(hash: u64, weight: u64) -> EntryInfo {
    EntryInfo { hash: hash.wrapping_mul(0x9E37_79B9_7F4A_7C15), weight, expires: Some(hash * 10) }
}
