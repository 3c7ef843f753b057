//! Crypto-shredding end to end: a tiered cache over the real disk tier encrypting each data
//! subject's entries under its own key. A backup of the SQLite file taken before an erase
//! (standing in for any copy the erase cannot reach: an export of the tier's files, a replica,
//! a tier that was down) no longer decrypts the erased subject once its key is destroyed, and
//! still serves everyone else.

use omnicache::security::{Encrypt, KeyRing, SubjectKeys};
use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::path::Path;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn cache_over(db: &Path, ring: &Arc<KeyRing>, keys: &Arc<SubjectKeys>) -> TieredCache {
    let disk = Arc::new(DiskTier::open(db).unwrap());
    TieredCache::builder()
        .transform(Arc::new(Encrypt::new(ring.clone(), "records").subject_keys(keys.clone())))
        .tier(disk, WritePolicy::Through)
        .sweep_interval(None)
        .build()
        .unwrap()
}

#[test]
fn after_an_erase_a_backup_taken_before_it_no_longer_decrypts_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(&backup).unwrap();
    let ring = Arc::new(KeyRing::generate().unwrap());
    let keys =
        Arc::new(SubjectKeys::open(dir.path().join("subject-keys.json"), ring.clone()).unwrap());
    rt().block_on(async {
        let cache = cache_over(&live.join("records.db"), &ring, &keys);
        for i in 0..20 {
            let who = if i % 2 == 0 { "alice" } else { "bob" };
            let opts = PutOptions { subject: Some(who.into()), ..Default::default() };
            cache
                .put(format!("r{i}").as_bytes(), format!("{who}-record-{i}").into_bytes(), opts)
                .await
                .unwrap();
        }
        cache.shutdown().await;
    });
    // The backup: a copy of the files, as an operator's nightly job would take.
    for e in std::fs::read_dir(&live).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, backup.join(p.file_name().unwrap())).unwrap();
    }
    rt().block_on(async {
        let cache = cache_over(&live.join("records.db"), &ring, &keys);
        let report = cache.erase("alice").await;
        assert_eq!(report.tiers[0].1, Some(10));
        assert!(keys.destroy("alice").unwrap(), "the erase ends by destroying her key");
        cache.shutdown().await;

        // The backup still holds alice's ciphertext, but nothing opens it.
        let restored = cache_over(&backup.join("records.db"), &ring, &keys);
        for i in 0..20 {
            let got = restored.get(format!("r{i}").as_bytes()).await;
            if i % 2 == 0 {
                assert!(got.is_none(), "r{i}: alice's entry decrypted from the backup");
            } else {
                assert_eq!(got.unwrap().value, format!("bob-record-{i}").as_bytes());
            }
        }
        restored.shutdown().await;
    });
}
