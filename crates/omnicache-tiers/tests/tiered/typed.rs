//! The typed face: values through a codec over real tiers, keys shared with the byte API, the
//! codec recorded with each entry.

use super::rt;
use omnicache_core::testkit::MemoryTier;
use omnicache_core::{ErrorKind, PostcardCodec, Tier};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::tiered::{LoadError, PutOptions, TieredCache, TypedCache, WritePolicy};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    visits: u32,
    tags: Vec<String>,
}

fn ada() -> User {
    User { name: "Ada".into(), visits: 3, tags: vec!["admin".into()] }
}

#[test]
fn json_and_postcard_values_round_trip_through_a_disk_tier_and_say_which_codec_wrote_them() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskTier::builder(dir.path().join("t.db")).open().unwrap());
        let cache =
            TieredCache::builder().tier(disk.clone(), WritePolicy::Through).build().unwrap();
        let json: TypedCache<String, User> = TypedCache::new(cache.clone());
        let compact: TypedCache<u64, User, PostcardCodec> =
            TypedCache::with_codec(cache.clone(), PostcardCodec);
        json.put(&"user:1".to_string(), &ada(), PutOptions::default()).await.unwrap();
        compact.put(&1, &ada(), PutOptions::default()).await.unwrap();

        // String keys are the byte API's keys; others are their JSON text.
        let stored = disk.get(b"user:1").await.unwrap().unwrap();
        assert_eq!(stored.encoding.codec, 1);
        assert_eq!(serde_json::from_slice::<User>(&stored.value).unwrap(), ada());
        let stored = disk.get(b"1").await.unwrap().unwrap();
        assert_eq!(stored.encoding.codec, 2);
        assert!(
            stored.value.len() < serde_json::to_vec(&ada()).unwrap().len(),
            "postcard is compact"
        );

        cache.evict_from_l1(b"user:1");
        cache.evict_from_l1(b"1");
        assert_eq!(json.get(&"user:1".to_string()).await.unwrap(), Some(ada()));
        assert_eq!(compact.get(&1).await.unwrap(), Some(ada()));
        assert_eq!(compact.get(&2).await.unwrap(), None);

        // Reading with the other codec is a codec error, not garbage.
        let wrong: TypedCache<u64, User> = TypedCache::new(cache.clone());
        assert_eq!(wrong.get(&1).await.unwrap_err().kind(), ErrorKind::Codec);
        // So is a value of another type.
        let other: TypedCache<String, Vec<u64>> = TypedCache::new(cache.clone());
        assert_eq!(other.get(&"user:1".to_string()).await.unwrap_err().kind(), ErrorKind::Codec);
        assert!(json.remove(&"user:1".to_string()).await.unwrap());
        assert_eq!(json.get(&"user:1".to_string()).await.unwrap(), None);
    });
}

#[test]
fn typed_loads_run_once_and_keep_the_codec() {
    rt().block_on(async {
        let tier = Arc::new(MemoryTier::default());
        let cache =
            TieredCache::builder().tier(tier.clone(), WritePolicy::Through).build().unwrap();
        let users: TypedCache<u64, User, PostcardCodec> =
            TypedCache::with_codec(cache.clone(), PostcardCodec);
        let loaded = users
            .try_get_with(&9, PutOptions::default(), || async { Ok::<_, String>(ada()) })
            .await
            .unwrap();
        assert_eq!(loaded, ada());
        assert_eq!(tier.get(b"9").await.unwrap().unwrap().encoding.codec, 2);
        let again = users
            .try_get_with(&9, PutOptions::default(), || async {
                Err::<User, _>("not called".to_string())
            })
            .await
            .unwrap();
        assert_eq!(again, ada());
        let failed = users
            .try_get_with(&10, PutOptions::default(), || async {
                Err::<User, _>("down".to_string())
            })
            .await
            .unwrap_err();
        assert!(matches!(failed, LoadError::Loader(e) if *e == "down"));
    });
}
