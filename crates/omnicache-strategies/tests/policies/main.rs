//! Every strategy: the core conformance suite, hand-worked sequences, and property tests that
//! compare each victim with a brute-force reference model.

mod published;

use omnicache_core::testkit::{check_policy, SplitMix};
use omnicache_core::{AccessView, EntryInfo, EvictionPolicy, NoReads, PolicyFactory, SlotId};
use omnicache_strategies::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn info(weight: u64, expires: Option<u64>) -> EntryInfo {
    EntryInfo { hash: 0, weight, expires }
}

#[test]
fn every_named_policy_passes_the_conformance_suite() {
    for name in NAMES {
        let f = by_name(name).unwrap();
        check_policy(&*f);
    }
    check_policy(&LfuFactory { age_period: Some(3) });
}

#[test]
fn names_resolve_case_insensitively() {
    assert_eq!(by_name("LRU").unwrap().name(), "lru");
    assert_eq!(by_name("default").unwrap().name(), "s3fifo");
    assert_eq!(by_name("size").unwrap().name(), "gdsf");
    assert!(by_name("").is_none());
}

#[test]
fn lru_evicts_least_recently_used() {
    let mut p = Lru::new();
    for s in 0..4 {
        p.on_insert(s, info(1, None));
    }
    p.on_access(0);
    p.on_update(1, info(1, None));
    assert_eq!(p.evict(&mut NoReads), Some(2));
    assert_eq!(p.evict(&mut NoReads), Some(3));
    assert_eq!(p.evict(&mut NoReads), Some(0));
    assert_eq!(p.evict(&mut NoReads), Some(1));
}

#[test]
fn lfu_evicts_least_used_and_ages() {
    let mut p = Lfu::new(1_000);
    for s in 0..3 {
        p.on_insert(s, info(1, None));
    }
    for _ in 0..5 {
        p.on_access(0);
    }
    p.on_access(1);
    assert_eq!(p.evict(&mut NoReads), Some(2), "used once");
    assert_eq!(p.evict(&mut NoReads), Some(1), "used twice");

    // Aging: an old favourite loses to a new regular once counts halve.
    let mut p = Lfu::new(8);
    p.on_insert(0, info(1, None));
    for _ in 0..7 {
        p.on_access(0); // count 8, then halved to 4 at the 8th use below
    }
    p.on_insert(1, info(1, None));
    p.on_access(1); // 8th use: halving, 0 -> 4, 1 -> 1
    for _ in 0..7 {
        p.on_access(1); // 1 -> 8 (with another halving at 16 uses: 0 -> 2, 1 -> 4 then +..)
    }
    assert_eq!(p.evict(&mut NoReads), Some(0), "stale popularity decayed below the new regular");
}

#[test]
fn ttl_evicts_soonest_expiry_and_immortals_last() {
    let mut p = TtlOrdered::new();
    p.on_insert(0, info(1, None));
    p.on_insert(1, info(1, Some(300)));
    p.on_insert(2, info(1, Some(100)));
    p.on_insert(3, info(1, Some(200)));
    p.on_update(2, info(1, Some(400)));
    assert_eq!(p.evict(&mut NoReads), Some(3));
    assert_eq!(p.evict(&mut NoReads), Some(1));
    assert_eq!(p.evict(&mut NoReads), Some(2));
    assert_eq!(p.evict(&mut NoReads), Some(0));
}

#[test]
fn gdsf_prefers_keeping_small_and_popular_entries() {
    let mut p = Gdsf::new();
    p.on_insert(0, info(1_000, None)); // big
    p.on_insert(1, info(10, None)); // small
    p.on_insert(2, info(100, None));
    p.on_access(2);
    p.on_access(2);
    assert_eq!(p.evict(&mut NoReads), Some(0), "least value per byte");
    assert_eq!(p.evict(&mut NoReads), Some(2), "3 uses / 100 bytes < 1 use / 10 bytes");
    // L is now 3/100: a new big entry is worth 0.03 + 1/1000, still less than 1/10.
    p.on_insert(3, info(1_000, None));
    assert_eq!(p.evict(&mut NoReads), Some(3));
    // A new small entry inserted at L = 0.031 is worth 0.131 and outlives the older one (0.1).
    p.on_insert(4, info(10, None));
    assert_eq!(p.evict(&mut NoReads), Some(1), "inflation ages out entries that stop being used");
}

/// The operations a cache performs on a policy.
#[derive(Debug, Clone)]
enum Op {
    Insert { weight: u64, expires: Option<u64> },
    Access(u8),
    Update(u8, u64, Option<u64>),
    Remove(u8),
    Evict,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (1u64..50, proptest::option::of(0u64..1000)).prop_map(|(weight, expires)| Op::Insert { weight, expires }),
        4 => any::<u8>().prop_map(Op::Access),
        1 => (any::<u8>(), 1u64..50, proptest::option::of(0u64..1000)).prop_map(|(s, w, e)| Op::Update(s, w, e)),
        1 => any::<u8>().prop_map(Op::Remove),
        2 => Just(Op::Evict),
    ];
    proptest::collection::vec(op, 1..300)
}

/// A naive reference: every resident slot with the state the policy's rule needs; the victim
/// is found by scanning all of them.
trait Reference {
    fn insert(&mut self, slot: SlotId, weight: u64, expires: Option<u64>, tick: u64);
    fn access(&mut self, slot: SlotId, tick: u64);
    fn update(&mut self, slot: SlotId, weight: u64, expires: Option<u64>, tick: u64);
    fn victim(&mut self) -> Option<SlotId>;
    fn remove(&mut self, slot: SlotId);
}

#[derive(Default)]
struct RefLru(BTreeMap<SlotId, u64>);
impl Reference for RefLru {
    fn insert(&mut self, s: SlotId, _: u64, _: Option<u64>, t: u64) {
        self.0.insert(s, t);
    }
    fn access(&mut self, s: SlotId, t: u64) {
        if let Some(x) = self.0.get_mut(&s) {
            *x = t;
        }
    }
    fn update(&mut self, s: SlotId, _: u64, _: Option<u64>, t: u64) {
        self.access(s, t)
    }
    fn victim(&mut self) -> Option<SlotId> {
        let v = self.0.iter().min_by_key(|(_, t)| **t).map(|(s, _)| *s)?;
        self.0.remove(&v);
        Some(v)
    }
    fn remove(&mut self, s: SlotId) {
        self.0.remove(&s);
    }
}

#[derive(Default)]
struct RefTtl(BTreeMap<SlotId, (u64, u64)>);
impl Reference for RefTtl {
    fn insert(&mut self, s: SlotId, _: u64, e: Option<u64>, t: u64) {
        self.0.insert(s, (e.unwrap_or(u64::MAX), t));
    }
    fn access(&mut self, _: SlotId, _: u64) {}
    fn update(&mut self, s: SlotId, w: u64, e: Option<u64>, t: u64) {
        if self.0.contains_key(&s) {
            self.insert(s, w, e, t);
        }
    }
    fn victim(&mut self) -> Option<SlotId> {
        let v = self.0.iter().min_by_key(|(s, k)| (**k, **s)).map(|(s, _)| *s)?;
        self.0.remove(&v);
        Some(v)
    }
    fn remove(&mut self, s: SlotId) {
        self.0.remove(&s);
    }
}

struct RefLfu {
    m: BTreeMap<SlotId, (u64, u64)>,
    since: u64,
    period: u64,
}
impl Reference for RefLfu {
    fn insert(&mut self, s: SlotId, _: u64, _: Option<u64>, t: u64) {
        self.m.insert(s, (1, t));
    }
    fn access(&mut self, s: SlotId, t: u64) {
        if let Some(x) = self.m.get_mut(&s) {
            *x = (x.0 + 1, t);
            self.since += 1;
            if self.since >= self.period {
                self.since = 0;
                for v in self.m.values_mut() {
                    v.0 /= 2;
                }
            }
        }
    }
    fn update(&mut self, s: SlotId, _: u64, _: Option<u64>, t: u64) {
        self.access(s, t)
    }
    fn victim(&mut self) -> Option<SlotId> {
        let v = self.m.iter().min_by_key(|(s, k)| (**k, **s)).map(|(s, _)| *s)?;
        self.m.remove(&v);
        Some(v)
    }
    fn remove(&mut self, s: SlotId) {
        self.m.remove(&s);
    }
}

#[derive(Default)]
struct RefGdsf {
    m: BTreeMap<SlotId, (u64, u64, u64)>, // freq, weight, tick
    pri: BTreeMap<SlotId, u64>,
    l: u64,
}
impl RefGdsf {
    fn rank(&mut self, s: SlotId, t: u64) {
        let (f, w, _) = self.m[&s];
        self.m.get_mut(&s).unwrap().2 = t;
        self.pri.insert(s, Gdsf::priority(self.l, f, w));
    }
}
impl Reference for RefGdsf {
    fn insert(&mut self, s: SlotId, w: u64, _: Option<u64>, t: u64) {
        self.m.insert(s, (1, w, t));
        self.rank(s, t);
    }
    fn access(&mut self, s: SlotId, t: u64) {
        if let Some(x) = self.m.get_mut(&s) {
            x.0 += 1;
            self.rank(s, t);
        }
    }
    fn update(&mut self, s: SlotId, w: u64, _: Option<u64>, t: u64) {
        if let Some(x) = self.m.get_mut(&s) {
            x.0 += 1;
            x.1 = w;
            self.rank(s, t);
        }
    }
    fn victim(&mut self) -> Option<SlotId> {
        let v = self.m.keys().copied().min_by_key(|s| (self.pri[s], self.m[s].2, *s))?;
        self.l = self.l.max(self.pri[&v]);
        self.m.remove(&v);
        self.pri.remove(&v);
        Some(v)
    }
    fn remove(&mut self, s: SlotId) {
        self.m.remove(&s);
        self.pri.remove(&s);
    }
}

/// Drives the policy and the reference with the same operations; every victim must match.
fn compare(
    ops: Vec<Op>,
    mut p: Box<dyn EvictionPolicy>,
    mut r: impl Reference,
) -> Result<(), TestCaseError> {
    let mut live: Vec<SlotId> = Vec::new();
    let mut free: Vec<SlotId> = Vec::new();
    let mut next = 0;
    let mut tick = 0;
    let mut reads = NoReads;
    for op in ops {
        match op {
            Op::Insert { weight, expires } => {
                let s = free.pop().unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
                tick += 1;
                p.on_insert(s, info(weight, expires));
                r.insert(s, weight, expires, tick);
                live.push(s);
            }
            Op::Access(i) | Op::Update(i, ..) | Op::Remove(i) if live.is_empty() => {
                let _ = i;
            }
            Op::Access(i) => {
                let s = live[i as usize % live.len()];
                tick += 1;
                p.on_access(s);
                r.access(s, tick);
            }
            Op::Update(i, w, e) => {
                let s = live[i as usize % live.len()];
                tick += 1;
                p.on_update(s, info(w, e));
                r.update(s, w, e, tick);
            }
            Op::Remove(i) => {
                let s = live.swap_remove(i as usize % live.len());
                p.on_remove(s);
                r.remove(s);
                free.push(s);
            }
            Op::Evict => {
                let got = p.evict(&mut reads);
                let want = r.victim();
                prop_assert_eq!(got, want);
                if let Some(v) = got {
                    live.retain(|&x| x != v);
                    free.push(v);
                }
            }
        }
        prop_assert_eq!(p.len(), live.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn lru_matches_reference(ops in ops()) {
        compare(ops, LruFactory.build(10), RefLru::default())?;
    }

    #[test]
    fn lfu_matches_reference(ops in ops(), period in 1u64..40) {
        compare(ops, LfuFactory { age_period: Some(period) }.build(10), RefLfu { m: BTreeMap::new(), since: 0, period })?;
    }

    #[test]
    fn ttl_matches_reference(ops in ops()) {
        compare(ops, TtlFactory.build(10), RefTtl::default())?;
    }

    #[test]
    fn gdsf_matches_reference(ops in ops()) {
        compare(ops, GdsfFactory.build(10), RefGdsf::default())?;
    }
}

/// An access view with real counters, to drive access-bit policies in a long random run.
struct Counters(Vec<u8>);
impl AccessView for Counters {
    fn take_accesses(&mut self, slot: SlotId) -> u8 {
        std::mem::take(&mut self.0[slot as usize])
    }
    fn hash(&mut self, slot: SlotId) -> u64 {
        u64::from(slot) * 31
    }
}

#[test]
fn s3fifo_keeps_a_hot_set_against_a_scan_where_lru_does_not() {
    let run = |f: &dyn PolicyFactory| {
        let cap = 100u32;
        let mut p = f.build(u64::from(cap));
        let mut counters = Counters(vec![0; 10_000]);
        let mut resident = std::collections::HashMap::new(); // key -> slot
        let mut slots: Vec<Option<u32>> = vec![None; 10_000];
        let mut free: Vec<u32> = (0..10_000).rev().collect();
        let mut hits = 0;
        let mut rng = SplitMix(7);
        for i in 0..20_000u32 {
            // Half the requests go to 50 hot keys, half to a never-repeating scan.
            let key = if i % 2 == 0 { rng.below(50) as u32 } else { 1_000_000 + i };
            if let Some(&s) = resident.get(&key) {
                hits += 1;
                counters.0[s as usize] = (counters.0[s as usize] + 1).min(3);
                p.on_access(s);
                continue;
            }
            let s = free.pop().unwrap();
            slots[s as usize] = Some(key);
            resident.insert(key, s);
            p.on_insert(s, EntryInfo { hash: u64::from(key) * 31, weight: 1, expires: None });
            while resident.len() > cap as usize {
                let v = p.evict(&mut counters).unwrap();
                let k = slots[v as usize].take().unwrap();
                resident.remove(&k);
                counters.0[v as usize] = 0;
                free.push(v);
            }
        }
        hits
    };
    let s3 = run(&S3FifoFactory::default());
    let lru = run(&LruFactory);
    assert!(s3 > 9_000, "S3-FIFO serves nearly every hot request: {s3}");
    assert!(s3 > lru, "and beats LRU on a scan-polluted workload: {s3} vs {lru}");
}
