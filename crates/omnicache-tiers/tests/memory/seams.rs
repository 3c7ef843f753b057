//! The engine's seams: the admission step (what an `AdmissionPolicy` is asked, what a refusal
//! does, a frequency filter keeping a hot set against a scan of one-off keys) and events.

use omnicache_core::{AdmissionPolicy, EntryInfo, RemovalCause};
use omnicache_tiers::memory::sync::Cache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Refuses every candidate, remembering what it was asked.
#[derive(Debug, Default)]
struct Refuse {
    asked: Mutex<Vec<(u64, Vec<u64>)>>,
    records: Mutex<u64>,
}

impl AdmissionPolicy for Refuse {
    fn record(&self, _hash: u64) {
        *self.records.lock().unwrap() += 1;
    }
    fn admit(&self, candidate: &EntryInfo, victims: &[EntryInfo]) -> bool {
        let weights = victims.iter().map(|v| v.weight).collect();
        self.asked.lock().unwrap().push((candidate.weight, weights));
        false
    }
}

#[test]
fn a_refused_candidate_leaves_and_the_victims_stay() {
    let refuse = Arc::new(Refuse::default());
    let gone = Arc::new(Mutex::new(Vec::new()));
    let log = gone.clone();
    let cache: Cache<&str, u32> = Cache::builder()
        .max_weight(10)
        .weigher(|_k, v: &u32| *v)
        .shards(1)
        .admission(refuse.clone())
        .eviction_listener(move |k, _v, cause| log.lock().unwrap().push((k, cause)))
        .build();
    cache.insert("a", 4);
    cache.insert("b", 4);
    assert!(refuse.asked.lock().unwrap().is_empty(), "no admission step while there is room");
    cache.insert("c", 6); // needs at least one victim of weight 4 to fit
    let asked = refuse.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].0, 6, "the candidate's weight");
    assert!(asked[0].1.iter().sum::<u64>() >= 4, "enough victims to make room: {asked:?}");
    assert_eq!(cache.get(&"c"), None);
    assert_eq!((cache.get(&"a"), cache.get(&"b")), (Some(4), Some(4)));
    assert_eq!(gone.lock().unwrap().clone(), vec![("c", RemovalCause::Capacity)]);
    assert_eq!(cache.weighted_size(), 8);
    // Replacing a resident key is not an admission question.
    cache.insert("a", 5);
    assert_eq!(cache.get(&"a"), Some(5));
    assert_eq!(refuse.asked.lock().unwrap().len(), 1);
    assert!(*refuse.records.lock().unwrap() >= 8, "lookups and writes are recorded");
    cache.check_invariants().unwrap();
}

/// Admits a candidate only if it was seen more often than every victim (TinyLFU's rule, with
/// an exact count instead of a sketch).
#[derive(Debug, Default)]
struct Frequency(Mutex<HashMap<u64, u32>>);

impl AdmissionPolicy for Frequency {
    fn record(&self, hash: u64) {
        *self.0.lock().unwrap().entry(hash).or_default() += 1;
    }
    fn admit(&self, candidate: &EntryInfo, victims: &[EntryInfo]) -> bool {
        let seen = self.0.lock().unwrap();
        let f = |h: &u64| seen.get(h).copied().unwrap_or(0);
        victims.iter().all(|v| f(&candidate.hash) > f(&v.hash))
    }
}

#[test]
fn a_frequency_filter_keeps_a_hot_set_through_a_scan() {
    let run = |admission: Option<Arc<dyn AdmissionPolicy>>| {
        let mut b = Cache::<u64, u64>::builder().max_capacity(100).shards(1);
        if let Some(a) = admission {
            b = b.admission(a);
        }
        let cache = b.build();
        for round in 0..5 {
            for k in 0..100 {
                cache.get(&k).unwrap_or_else(|| {
                    cache.insert(k, k);
                    k
                });
            }
            // A scan of keys seen once.
            for k in 0..1_000 {
                let k = 1_000_000 + round * 1_000 + k;
                if cache.get(&k).is_none() {
                    cache.insert(k, k);
                }
            }
        }
        (0..100).filter(|k| cache.get(k).is_some()).count()
    };
    let without = run(None);
    let with = run(Some(Arc::new(Frequency::default())));
    assert_eq!(with, 100, "the filter keeps every hot key");
    assert!(without < 50, "without it the scan flushes the hot set: {without} kept");
}

#[test]
fn the_memory_cache_reports_writes_and_removals_as_events() {
    use omnicache_core::event::EventLog;
    use omnicache_core::CacheEvent;
    let log = Arc::new(EventLog::default());
    let cache: Cache<String, u32> = Cache::builder()
        .max_capacity(2)
        .shards(1)
        .event_listener(log.clone(), |k: &String| k.clone().into_bytes())
        .build();
    cache.insert("a".into(), 1);
    cache.insert("a".into(), 2);
    cache.insert("b".into(), 3);
    cache.invalidate("b");
    let ins = |k: &str| CacheEvent::Inserted { key: k.as_bytes().to_vec(), weight: 1 };
    let rem = |k: &str, cause| CacheEvent::Removed { key: k.as_bytes().to_vec(), cause };
    assert_eq!(
        log.events(),
        vec![
            ins("a"),
            ins("a"),
            rem("a", RemovalCause::Replaced),
            ins("b"),
            rem("b", RemovalCause::Explicit),
        ]
    );
}
