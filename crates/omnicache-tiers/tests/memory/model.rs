//! Property tests against a reference model: a plain map with deadlines.
//!
//! The cache may hold less than the model (it evicts), never more and never different:
//! - a value the cache returns is the model's live value for that key;
//! - weight and entry bounds hold after every operation;
//! - every value ever inserted is reported to the listener exactly once by the end, with a cause
//!   the model agrees with (Replaced only when overwritten while live, Explicit only when
//!   removed by the caller, Expired only when past its deadline, Capacity only while live);
//! - the statistics add up to the operations performed.

use omnicache_core::{MockClock, RemovalCause};
use omnicache_tiers::memory::sync::Cache;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8),
    InsertTtl(u8, u8),
    Get(u8),
    Remove(u8),
    InvalidateOdd,
    Advance(u8),
    Maintain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(|k| Op::Insert(k % 40)),
        2 => (any::<u8>(), 1u8..20).prop_map(|(k, t)| Op::InsertTtl(k % 40, t)),
        4 => any::<u8>().prop_map(|k| Op::Get(k % 40)),
        1 => any::<u8>().prop_map(|k| Op::Remove(k % 40)),
        1 => Just(Op::InvalidateOdd),
        1 => (1u8..10).prop_map(Op::Advance),
        1 => Just(Op::Maintain),
    ]
}

#[derive(Clone, Copy)]
struct Live {
    value: u64,
    deadline: u64,
}

fn run(ops: Vec<Op>, capacity: u64, ttl: Option<u64>, weighted: bool) -> Result<(), TestCaseError> {
    let clock = MockClock::new(1_000);
    let events: Arc<Mutex<Vec<(u8, u64, RemovalCause)>>> = Arc::default();
    let e = events.clone();
    let mut b = Cache::builder()
        .max_capacity(capacity)
        .clock(clock.clone())
        .stats(true)
        .eviction_listener(move |k, v, c| e.lock().unwrap().push((k, v, c)));
    if let Some(t) = ttl {
        b = b.time_to_live(Duration::from_nanos(t));
    }
    if weighted {
        b = b.weigher(|k: &u8, _v: &u64| u32::from(*k % 4));
    }
    let cache: Cache<u8, u64> = b.build();

    let mut model: HashMap<u8, Live> = HashMap::new();
    let mut next_value = 0u64;
    let mut inserted = 0u64;
    let (mut hits, mut misses) = (0u64, 0u64);

    for op in ops {
        let now = clock.now_ns();
        let before = model.clone();
        let mut caller_removed: Vec<u8> = Vec::new();
        let mut replaced_key: Option<u8> = None;
        match op {
            Op::Insert(k) | Op::InsertTtl(k, _) => {
                next_value += 1;
                inserted += 1;
                let deadline = match op {
                    Op::InsertTtl(_, t) => now + u64::from(t),
                    _ => ttl.map_or(u64::MAX, |t| now + t),
                };
                match op {
                    Op::InsertTtl(_, t) => {
                        cache.insert_with_ttl(k, next_value, Duration::from_nanos(u64::from(t)))
                    }
                    _ => cache.insert(k, next_value),
                }
                model.insert(k, Live { value: next_value, deadline });
                replaced_key = Some(k);
            }
            Op::Get(k) => {
                let got = cache.get(&k);
                if let Some(v) = got {
                    let live = model.get(&k).filter(|l| now < l.deadline);
                    prop_assert_eq!(
                        Some(v),
                        live.map(|l| l.value),
                        "get({}) returned a value the model does not have",
                        k
                    );
                    hits += 1;
                } else {
                    misses += 1;
                }
            }
            Op::Remove(k) => {
                let got = cache.remove(&k);
                if let Some(v) = got {
                    prop_assert_eq!(
                        Some(v),
                        model.get(&k).filter(|l| now < l.deadline).map(|l| l.value)
                    );
                }
                model.remove(&k);
                caller_removed.push(k);
            }
            Op::InvalidateOdd => {
                cache.invalidate_if(|k, _| k % 2 == 1);
                model.retain(|k, _| {
                    if k % 2 == 1 {
                        caller_removed.push(*k);
                        false
                    } else {
                        true
                    }
                });
            }
            Op::Advance(d) => clock.advance(Duration::from_nanos(u64::from(d))),
            Op::Maintain => cache.run_pending_tasks(),
        }
        // Check the events this operation produced against the model as it was before it.
        let now_after = clock.now_ns();
        for (k, v, cause) in events.lock().unwrap().iter() {
            let was = before.get(k).filter(|l| l.value == *v);
            match cause {
                RemovalCause::Replaced => {
                    prop_assert_eq!(
                        replaced_key,
                        Some(*k),
                        "Replaced outside an insert of the key"
                    );
                    let l = was.ok_or_else(|| {
                        TestCaseError::fail("Replaced a value the model did not hold")
                    })?;
                    prop_assert!(now < l.deadline, "Replaced an expired value");
                }
                RemovalCause::Explicit => {
                    prop_assert!(
                        caller_removed.contains(k),
                        "Explicit for key {} not removed by caller",
                        k
                    );
                }
                RemovalCause::Expired => {
                    let deadline = was.map(|l| l.deadline).or_else(|| {
                        // The value of this very insert, rejected at once (zero TTL) is not possible here.
                        model.get(k).filter(|l| l.value == *v).map(|l| l.deadline)
                    });
                    let d = deadline
                        .ok_or_else(|| TestCaseError::fail("Expired a value never live"))?;
                    prop_assert!(now_after >= d, "Expired before its deadline");
                }
                RemovalCause::Capacity => {}
                other => prop_assert!(false, "unexpected cause {:?}", other),
            }
        }
        let n = events.lock().unwrap().len();
        // Values that left for capacity or expiry are no longer in the model.
        for (k, v, _) in events.lock().unwrap().drain(..n) {
            if model.get(&k).is_some_and(|l| l.value == v) {
                model.remove(&k);
            }
            REPORTED.with(|r| r.borrow_mut().push(v));
        }
        cache.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert!(cache.weighted_size() <= capacity);
    }
    cache.invalidate_all();
    for (_, v, _) in events.lock().unwrap().drain(..) {
        REPORTED.with(|r| r.borrow_mut().push(v));
    }
    let mut reported = REPORTED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    reported.sort_unstable();
    let expected: Vec<u64> = (1..=inserted).collect();
    prop_assert_eq!(reported, expected, "every value is reported exactly once");
    let s = cache.stats().unwrap();
    prop_assert_eq!((s.hits, s.misses), (hits, misses));
    prop_assert_eq!(s.removals.iter().sum::<u64>(), inserted);
    Ok(())
}

thread_local! {
    static REPORTED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

trait NowNs {
    fn now_ns(&self) -> u64;
}
impl NowNs for MockClock {
    fn now_ns(&self) -> u64 {
        omnicache_core::Clock::now(self)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matches_the_model(ops in proptest::collection::vec(op(), 1..200), cap in 0u64..30) {
        REPORTED.with(|r| r.borrow_mut().clear());
        run(ops, cap, None, false)?;
    }

    #[test]
    fn matches_the_model_with_ttl(ops in proptest::collection::vec(op(), 1..200), cap in 1u64..30, ttl in 1u64..30) {
        REPORTED.with(|r| r.borrow_mut().clear());
        run(ops, cap, Some(ttl), false)?;
    }

    #[test]
    fn matches_the_model_weighted(ops in proptest::collection::vec(op(), 1..200), cap in 0u64..40) {
        REPORTED.with(|r| r.borrow_mut().clear());
        run(ops, cap, None, true)?;
    }
}
