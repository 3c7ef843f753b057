//! Encryption at rest end to end: a tiered cache with the AES-256-GCM transform over the real
//! disk tier. The SQLite files hold no byte of the values; the cache reads them back after L1
//! loses them and after a restart with the same key file; a cache without the key, or with the
//! entry's key retired, serves nothing and deletes what it cannot read.

use omnicache::security::{Encrypt, KeyRing, KeyState};
use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::path::Path;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn value(i: u32) -> Vec<u8> {
    format!("patient {i:04}: diagnosis confidential-marker-{i:04}").into_bytes()
}

/// Every byte the disk tier wrote: the database, its WAL and shared memory (the last two
/// may vanish while a closing tier checkpoints; what is left is read).
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        if let Ok(bytes) = std::fs::read(entry.unwrap().path()) {
            all.extend(bytes);
        }
    }
    all
}

async fn encrypted_cache(db: &Path, ring: &Arc<KeyRing>) -> TieredCache {
    let disk = Arc::new(DiskTier::open(db).unwrap());
    TieredCache::builder()
        .transform(Arc::new(Encrypt::new(ring.clone(), "records")))
        .tier(disk, WritePolicy::Through)
        .build()
        .unwrap()
}

#[test]
fn the_disk_holds_ciphertext_and_the_cache_serves_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("records.db");
    let keys = dir.path().join("keys.json");
    let ring = Arc::new(KeyRing::generate().unwrap());
    ring.save(&keys).unwrap();
    rt().block_on(async {
        let cache = encrypted_cache(&db, &ring).await;
        for i in 0..200 {
            let k = format!("record:{i}");
            cache.put(k.as_bytes(), value(i), PutOptions::default()).await.unwrap();
        }
        cache.evict_from_l1(b"record:7");
        assert_eq!(cache.get(b"record:7").await.unwrap().value, value(7), "decrypted from disk");
        cache.shutdown().await;
    });
    let raw = raw_bytes(&data);
    assert!(raw.len() > 200 * 40, "the values are on disk");
    assert!(
        !raw.windows(b"confidential-marker".len()).any(|w| w == b"confidential-marker"),
        "no plaintext in the SQLite files"
    );

    // Restart with the key file: everything reads back.
    let ring = Arc::new(KeyRing::load(&keys).unwrap());
    rt().block_on(async {
        let cache = encrypted_cache(&db, &ring).await;
        for i in [0, 99, 199] {
            let k = format!("record:{i}");
            assert_eq!(cache.get(k.as_bytes()).await.unwrap().value, value(i));
        }
        cache.shutdown().await;
    });

    // Another key: nothing is served, and what cannot be read is counted and deleted.
    let stranger = Arc::new(KeyRing::generate().unwrap());
    rt().block_on(async {
        let cache = encrypted_cache(&db, &stranger).await;
        assert!(cache.get(b"record:1").await.is_none());
        assert_eq!(cache.tiers()[0].stats.corrupt, 1);
        cache.shutdown().await;
    });

    // The entries' key retired: the same.
    let ring = Arc::new(KeyRing::load(&keys).unwrap());
    ring.rotate().unwrap();
    ring.set_state(1, KeyState::Retired).unwrap();
    rt().block_on(async {
        let cache = encrypted_cache(&db, &ring).await;
        assert!(cache.get(b"record:2").await.is_none(), "its key is retired");
        cache.put(b"record:2", value(2), PutOptions::default()).await.unwrap();
        cache.evict_from_l1(b"record:2");
        assert_eq!(cache.get(b"record:2").await.unwrap().value, value(2), "rewritten, new key");
        cache.shutdown().await;
    });
}

#[test]
fn compression_stacks_before_encryption_and_shrinks_what_the_disk_holds() {
    use omnicache::security::Compress;
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(KeyRing::generate().unwrap());
    let text =
        "quarterly report, region north, all figures in thousands; ".repeat(200).into_bytes();
    rt().block_on(async {
        let disk = Arc::new(DiskTier::open(dir.path().join("c.db")).unwrap());
        let cache = TieredCache::builder()
            .transform(Arc::new(Compress::default()))
            .transform(Arc::new(Encrypt::new(ring.clone(), "reports")))
            .tier(disk.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        cache.put(b"report", text.clone(), PutOptions::default()).await.unwrap();
        let stored = omnicache::core::Tier::get(&*disk, b"report").await.unwrap().unwrap();
        assert!(
            stored.value.len() < text.len() / 5,
            "compressed, then encrypted: {}",
            stored.value.len()
        );
        assert_eq!(stored.encoding.flags, 0b11, "both transforms recorded");
        cache.evict_from_l1(b"report");
        assert_eq!(cache.get(b"report").await.unwrap().value, text);
        cache.shutdown().await;
    });
}

#[test]
fn after_a_rotation_a_pass_rewrites_every_entry_under_the_new_key_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("r.db");
    rt().block_on(async {
        // Written in the clear first: turning encryption on is the same pass.
        let disk = Arc::new(DiskTier::open(&db).unwrap());
        let plain =
            TieredCache::builder().tier(disk.clone(), WritePolicy::Through).build().unwrap();
        for i in 0..300 {
            plain
                .put(format!("record:{i}").as_bytes(), value(i), PutOptions::default())
                .await
                .unwrap();
        }
        plain.shutdown().await;

        let ring = Arc::new(KeyRing::generate().unwrap());
        let cache = TieredCache::builder()
            .l1_capacity(16)
            .transform(Arc::new(Encrypt::new(ring.clone(), "records")))
            .tier(disk.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        let first = cache.retransform(64, None).await.unwrap();
        assert_eq!((first.scanned, first.rewritten), (300, 300), "{first:?}");
        // Every live entry is now ciphertext. (Pages SQLite freed may still hold the old
        // bytes until reused: erasure, with secure_delete, is the GDPR part's.)
        let page = omnicache::core::Tier::scan(&*disk, b"", None, 1_000).await.unwrap();
        assert_eq!(page.keys.len(), 300);
        for k in &page.keys {
            let stored = omnicache::core::Tier::get(&*disk, k).await.unwrap().unwrap();
            assert_eq!(stored.encoding.flags, 0b10, "encrypted");
            assert!(!stored.value.windows(19).any(|w| w == b"confidential-marker"));
        }

        // Rotate; a reader runs through the pass and must see every value right.
        let new_id = ring.rotate().unwrap();
        let reader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                for round in 0..3 {
                    for i in (round..300).step_by(7) {
                        let k = format!("record:{i}");
                        cache.evict_from_l1(k.as_bytes());
                        let got = cache.get(k.as_bytes()).await.expect("never a miss");
                        assert_eq!(got.value, value(i));
                    }
                }
            })
        };
        let second = cache.retransform(32, None).await.unwrap();
        reader.await.unwrap();
        assert_eq!(second.scanned, 300);
        assert_eq!(second.rewritten + second.superseded, 300, "{second:?}");
        let again = cache.retransform(64, None).await.unwrap();
        assert_eq!(again.rewritten, 0, "nothing left under the old key: {again:?}");
        for i in [0u32, 150, 299] {
            let stored = omnicache::core::Tier::get(&*disk, format!("record:{i}").as_bytes())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.encoding.key_id, new_id);
        }
        // The old key can go: everything reads without it.
        ring.set_state(1, KeyState::Retired).unwrap();
        for i in 0..300 {
            let k = format!("record:{i}");
            cache.evict_from_l1(k.as_bytes());
            assert_eq!(cache.get(k.as_bytes()).await.unwrap().value, value(i));
        }
        cache.shutdown().await;
    });
}
