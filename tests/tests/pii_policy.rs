//! A cache's PII policy end to end, over the real disk tier: each action does what it says in
//! L1 and in the SQLite files, and a refused value is stored nowhere.

use omnicache::core::{ErrorKind, ENCRYPT_TAG};
use omnicache::security::pii::{Detector, PiiAction, PiiGuard, PiiKind, PiiPolicy};
use omnicache::security::{Encrypt, KeyRing};
use omnicache::tiers::disk::DiskTier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::path::Path;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        if let Ok(bytes) = std::fs::read(entry.unwrap().path()) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const EMAIL: &str = "ana.lima@example.org";
const CARD: &str = "4111 1111 1111 1111";
const PHONE: &str = "+44 20 7946 0958";
const SSN: &str = "536-90-4399";

#[test]
fn allow_tag_redact_encrypt_and_reject_over_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let policy = PiiPolicy::new(PiiAction::Allow)
        .action(PiiKind::Email, PiiAction::Tag)
        .action(PiiKind::Phone, PiiAction::Redact)
        .action(PiiKind::CreditCard, PiiAction::Encrypt)
        .action(PiiKind::UsSsn, PiiAction::Reject);
    let guard = Arc::new(PiiGuard::new(Detector::new(), policy));
    let ring = Arc::new(KeyRing::generate().unwrap());
    rt().block_on(async {
        let disk = Arc::new(DiskTier::open(dir.path().join("c.db")).unwrap());
        let cache = TieredCache::builder()
            .tier(disk, WritePolicy::Through)
            .write_guard(guard.clone())
            .encrypt_on_demand(Arc::new(Encrypt::new(ring, "c")))
            .build()
            .unwrap();
        let put = |k: &'static str, v: String| {
            let cache = cache.clone();
            async move { cache.put(k.as_bytes(), v.into_bytes(), PutOptions::default()).await }
        };
        put("tagged", format!("write to {EMAIL}")).await.unwrap();
        put("redacted", format!("call {PHONE} now")).await.unwrap();
        put("encrypted", format!("card {CARD} on file")).await.unwrap();
        put("plain", "nothing personal here".into()).await.unwrap();
        let err = put("refused", format!("SSN {SSN}, mail {EMAIL}")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(err.to_string().contains("us_ssn") && !err.to_string().contains(SSN), "{err}");
        assert!(cache.get(b"refused").await.is_none(), "a refused value is stored nowhere");

        let tagged = cache.get(b"tagged").await.unwrap();
        assert_eq!(tagged.meta.tags, ["pii:email"]);
        assert_eq!(cache.get(b"redacted").await.unwrap().value, b"call **************** now");
        let encrypted = cache.get(b"encrypted").await.unwrap();
        assert_eq!(
            encrypted.value,
            format!("card {CARD} on file").as_bytes(),
            "L1 holds plaintext"
        );
        assert!(encrypted.meta.tags.iter().any(|t| t == ENCRYPT_TAG));
        // Read back from the disk tier: decrypted on the way up.
        cache.evict_from_l1(b"encrypted");
        assert_eq!(
            cache.get(b"encrypted").await.unwrap().value,
            format!("card {CARD} on file").as_bytes()
        );
        cache.shutdown().await;
    });
    let raw = raw_bytes(dir.path());
    assert!(contains(&raw, b"nothing personal here"), "the raw read can see plaintext");
    assert!(contains(&raw, EMAIL.as_bytes()), "tagging stores the value as it is");
    assert!(!contains(&raw, PHONE.as_bytes()), "redacted before any copy was made");
    assert!(
        !contains(&raw, CARD.as_bytes()),
        "encrypted in the tier though the cache does not encrypt"
    );
    assert!(!contains(&raw, SSN.as_bytes()), "refused values reach no file");
    let stats = guard.stats();
    assert_eq!((stats.rejected, stats.redacted, stats.encrypted), (1, 1, 1));
    assert_eq!(stats.kinds.get("us_ssn"), Some(&1));
}

#[test]
fn a_batch_with_one_refused_value_stores_none_of_it() {
    let guard = Arc::new(PiiGuard::new(Detector::new(), PiiPolicy::new(PiiAction::Reject)));
    rt().block_on(async {
        let cache = TieredCache::builder().write_guard(guard).build().unwrap();
        let items = vec![
            (b"a".to_vec(), b"fine".to_vec(), PutOptions::default()),
            (b"b".to_vec(), format!("mail {EMAIL}").into_bytes(), PutOptions::default()),
        ];
        let err = cache.put_many(items).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(err.to_string().contains("item 1"), "{err}");
        assert!(cache.get(b"a").await.is_none());
        // Binary values are not text: stored unscanned, counted.
        cache.put(b"bin", vec![0xff, 0xfe, 0x00, 0x41], PutOptions::default()).await.unwrap();
        assert!(cache.get(b"bin").await.is_some());
    });
}
