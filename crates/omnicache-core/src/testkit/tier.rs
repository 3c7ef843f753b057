use crate::clock::{MockClock, SharedClock};
use crate::invalidation::Invalidation;
use crate::meta::EntryMeta;
use crate::tier::{DynTier, Tier, TierEntry};
use std::collections::BTreeSet;
use std::time::Duration;

fn entry(value: &[u8], meta: EntryMeta) -> TierEntry {
    TierEntry::new(value.to_vec(), meta)
}

/// Runs the tier contract against fresh tiers made by `make`, each reading time from the given
/// mock clock: get/put/overwrite/remove, binary and empty keys and values, expiry (never served
/// once expired, served until then), invalidation by key, keys, tag, prefix, subject and all,
/// scans with pagination, batch reads, and the [`DynTier`] twin agreeing with the trait.
///
/// Await it on the runtime the tier needs.
pub async fn check_tier<T, F>(make: F)
where
    T: Tier,
    F: Fn(SharedClock) -> T,
{
    Box::pin(check(make, true)).await;
}

/// [`check_tier`] for a tier that orders writes by versions of its own (a tiered cache): the
/// version read back may be newer than the one written, never older; everything else is the
/// same contract.
pub async fn check_ordering_tier<T, F>(make: F)
where
    T: Tier,
    F: Fn(SharedClock) -> T,
{
    Box::pin(check(make, false)).await;
}

async fn check<T, F>(make: F, exact_version: bool)
where
    T: Tier,
    F: Fn(SharedClock) -> T,
{
    let clock = MockClock::default();
    let tier = make(clock.clone().into());
    let name = tier.name().to_string();
    let t0 = clock.now();
    let meta = |expires: Option<Duration>, tags: &[&str], subject: Option<&str>| EntryMeta {
        created: t0,
        expires: expires.map(|d| t0 + d.as_nanos() as u64),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        subject: subject.map(str::to_string),
        version: 1,
        weight: 1,
    };
    use crate::clock::Clock;

    // Basic round trip, overwrite, remove.
    assert_eq!(tier.get(b"a").await.unwrap(), None, "{name}: empty tier misses");
    tier.put(b"a", entry(b"1", meta(None, &[], None))).await.unwrap();
    let got = tier.get(b"a").await.unwrap().expect("stored entry is found");
    assert_eq!(got.value, b"1", "{name}: value round-trips");
    let expected = meta(None, &[], None);
    if exact_version {
        assert_eq!(got.meta, expected, "{name}: metadata round-trips");
    } else {
        assert!(got.meta.version >= expected.version, "{name}: the version never goes back");
        let same = EntryMeta { version: expected.version, ..got.meta.clone() };
        assert_eq!(same, expected, "{name}: metadata round-trips but for the version");
    }
    tier.put(b"a", entry(b"2", meta(None, &["t"], Some("s")))).await.unwrap();
    let got = tier.get(b"a").await.unwrap().unwrap();
    assert_eq!(got.value, b"2", "{name}: overwrite replaces the value");
    assert_eq!(got.meta.tags, vec!["t".to_string()], "{name}: overwrite replaces the tags");
    assert!(tier.remove(b"a").await.unwrap(), "{name}: remove reports presence");
    assert!(!tier.remove(b"a").await.unwrap(), "{name}: second remove finds nothing");
    assert_eq!(tier.get(b"a").await.unwrap(), None, "{name}: removed entry is gone");

    // Binary keys and empty values.
    let bin = [0u8, 255, 10, 13, 0];
    tier.put(&bin, entry(b"", meta(None, &[], None))).await.unwrap();
    assert_eq!(
        tier.get(&bin).await.unwrap().unwrap().value,
        b"",
        "{name}: empty value, binary key"
    );
    let big = vec![7u8; 300_000];
    tier.put(b"big", entry(&big, meta(None, &[], None))).await.unwrap();
    assert_eq!(tier.get(b"big").await.unwrap().unwrap().value, big, "{name}: 300 KB value");

    // Expiry.
    tier.put(b"ttl", entry(b"x", meta(Some(Duration::from_secs(10)), &[], None))).await.unwrap();
    clock.advance(Duration::from_secs(9));
    assert!(tier.get(b"ttl").await.unwrap().is_some(), "{name}: served before expiry");
    clock.advance(Duration::from_secs(1));
    assert_eq!(tier.get(b"ttl").await.unwrap(), None, "{name}: never served at or after expiry");

    // Invalidation.
    assert!(tier.invalidate(&Invalidation::All).await.is_ok());
    let fresh = |tags: &[&str], subject: Option<&str>| entry(b"v", meta(None, tags, subject));
    tier.put(b"user:1", fresh(&["users"], Some("alice"))).await.unwrap();
    tier.put(b"user:2", fresh(&["users"], Some("bob"))).await.unwrap();
    tier.put(b"order:1", fresh(&["orders"], Some("alice"))).await.unwrap();
    tier.put(b"order:2", fresh(&[], None)).await.unwrap();
    tier.put(b"misc", fresh(&[], None)).await.unwrap();
    assert_eq!(
        tier.invalidate(&Invalidation::Key(b"misc".to_vec())).await.unwrap(),
        1,
        "{name}: by key"
    );
    assert_eq!(
        tier.invalidate(&Invalidation::Tag("users".into())).await.unwrap(),
        2,
        "{name}: by tag"
    );
    assert!(
        tier.get(b"user:1").await.unwrap().is_none(),
        "{name}: tag invalidation removed user:1"
    );
    assert_eq!(
        tier.invalidate(&Invalidation::Subject("alice".into())).await.unwrap(),
        1,
        "{name}: by subject"
    );
    assert_eq!(
        tier.invalidate(&Invalidation::Prefix(b"order:".to_vec())).await.unwrap(),
        1,
        "{name}: by prefix"
    );
    tier.put(b"k1", fresh(&[], None)).await.unwrap();
    tier.put(b"k2", fresh(&[], None)).await.unwrap();
    assert_eq!(
        tier.invalidate(&Invalidation::Keys(vec![b"k1".to_vec(), b"k2".to_vec(), b"zz".to_vec()]))
            .await
            .unwrap(),
        2,
        "{name}: by keys"
    );
    tier.invalidate(&Invalidation::All).await.unwrap();
    assert!(tier.get(&bin).await.unwrap().is_none(), "{name}: all");

    // Scans with pagination: every key under the prefix exactly once, in order; expired skipped.
    let mut expected = BTreeSet::new();
    for i in 0..25u32 {
        let k = format!("scan:{i:03}").into_bytes();
        tier.put(&k, fresh(&[], None)).await.unwrap();
        expected.insert(k);
    }
    tier.put(b"scan:expired", entry(b"v", meta(Some(Duration::from_secs(1)), &[], None)))
        .await
        .unwrap();
    tier.put(b"other", fresh(&[], None)).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let mut seen = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = tier.scan(b"scan:", cursor.as_deref(), 10).await.unwrap();
        assert!(page.keys.len() <= 10, "{name}: scan respects the limit");
        seen.extend(page.keys);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, expected.iter().cloned().collect::<Vec<_>>(), "{name}: scan pages");

    // Batch reads keep order and report misses.
    let keys: Vec<&[u8]> = vec![b"scan:001", b"nope", b"scan:024"];
    let got = tier.get_many(&keys).await.unwrap();
    assert_eq!(
        got.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false, true],
        "{name}: get_many"
    );

    // Sweeping deletes what expired and keeps the rest.
    tier.put(b"sweep-old", entry(b"v", meta(Some(Duration::from_secs(1)), &[], None)))
        .await
        .unwrap();
    tier.put(b"sweep-new", entry(b"v", meta(Some(Duration::from_secs(3600)), &[], None)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2));
    tier.sweep_expired().await.unwrap();
    assert!(tier.get(b"sweep-new").await.unwrap().is_some(), "{name}: sweep keeps live entries");
    assert!(tier.get(b"sweep-old").await.unwrap().is_none(), "{name}: swept or expired");
    if let Some(u) = tier.usage().await.unwrap() {
        assert!(u.entries >= 1 && u.bytes > 0, "{name}: usage counts what is stored");
    }

    // Batch writes land like single ones.
    let batch: Vec<(Vec<u8>, TierEntry)> =
        (0..5u8).map(|i| (vec![b'b', i], entry(&[i], meta(None, &["batch"], None)))).collect();
    tier.put_many(batch).await.unwrap();
    for i in 0..5u8 {
        assert_eq!(tier.get(&[b'b', i]).await.unwrap().unwrap().value, vec![i], "{name}: put_many");
    }
    assert_eq!(
        tier.invalidate(&Invalidation::Tag("batch".into())).await.unwrap(),
        5,
        "{name}: batch tags"
    );

    // The object-safe twin behaves the same.
    let dynamic: &dyn DynTier = &tier;
    assert_eq!(DynTier::name(dynamic), name);
    dynamic.put(b"dyn", fresh(&[], None)).await.unwrap();
    assert!(dynamic.get(b"dyn").await.unwrap().is_some(), "{name}: DynTier get");
    assert!(dynamic.remove(b"dyn").await.unwrap(), "{name}: DynTier remove");
    let _ = Clock::now(&clock);
}
