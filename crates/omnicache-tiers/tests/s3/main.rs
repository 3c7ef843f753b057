//! The S3 tier against a real S3-compatible server (`s3s-fs`, which checks SigV4 signatures)
//! started on a free loopback port: the tier conformance suite, flipped bytes in a stored
//! object, wrong credentials, a server that is gone, and S3 under a tiered cache.

// Waiting for real server processes to listen takes real time.
#![allow(clippy::disallowed_methods)]

use omnicache_core::testkit::check_tier;
use omnicache_core::{EntryMeta, ErrorKind, Tier, TierEntry};
use omnicache_tiers::s3::S3Tier;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../common/transform.rs"]
mod transform;

const AK: &str = "omnicache-test-ak";
const SK: &str = "omnicache-test-secret-key";
const BUCKET: &str = "cache";

/// Where `cargo xtask ci` installs `s3s-fs`, or anywhere on PATH.
fn s3s_fs() -> PathBuf {
    let tools = std::env::var_os("OMNICACHE_TOOLS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/omnicache-tools")
    });
    let installed = tools.join("bin/s3s-fs");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("s3s-fs")
}

/// An `s3s-fs` child process serving a temporary directory, killed on drop.
struct S3Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Server {
    fn start() -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", AK, "--secret-key", SK])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start s3s-fs ({e}): install it with `cargo install s3s-fs --version 0.14.1 --locked --features binary` (cargo xtask ci does, into ~/.cache/omnicache-tools)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server { child, port, dir }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn tier(&self, prefix: &str) -> S3Tier {
        S3Tier::builder(self.endpoint(), BUCKET).credentials(AK, SK).prefix(prefix).build().unwrap()
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn passes_the_tier_conformance_suite() {
    let server = S3Server::start();
    rt().block_on(check_tier(|clock| {
        S3Tier::builder(server.endpoint(), BUCKET)
            .credentials(AK, SK)
            .prefix("conformance/")
            .clock(clock)
            .build()
            .unwrap()
    }));
}

#[test]
fn a_flipped_byte_in_a_stored_object_is_detected_and_deleted() {
    let server = S3Server::start();
    rt().block_on(async {
        let tier = server.tier("flip/");
        tier.put(b"k", TierEntry::new(vec![42; 1000], EntryMeta::new(1))).await.unwrap();
        // s3s-fs keeps each object as a file: flip a byte in it, as bit rot would.
        let file = walk(server.root())
            .into_iter()
            .find(|p| p.ends_with("flip/k"))
            .expect("the object's file");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[500] ^= 0x10;
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(tier.get(b"k").await.unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(tier.get(b"k").await.unwrap(), None, "the corrupt object was deleted");
    });
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn wrong_credentials_and_a_dead_server_are_errors_not_panics() {
    let server = S3Server::start();
    rt().block_on(async {
        let bad =
            S3Tier::builder(server.endpoint(), BUCKET).credentials(AK, "wrong").build().unwrap();
        let e = bad.put(b"k", TierEntry::new(vec![1], EntryMeta::new(1))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dead = S3Tier::builder(format!("http://127.0.0.1:{port}"), BUCKET)
            .credentials(AK, SK)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let e = dead.get(b"k").await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout), "{e}");
        assert!(
            S3Tier::builder(server.endpoint(), "").credentials(AK, SK).build().is_err(),
            "empty bucket refused"
        );
    });
}

#[test]
fn s3_under_a_tiered_cache_serves_after_l1_loses_the_entry() {
    let server = S3Server::start();
    rt().block_on(async {
        let s3 = Arc::new(server.tier("tiered/"));
        let cache = TieredCache::builder().tier(s3.clone(), WritePolicy::Through).build().unwrap();
        cache
            .put(
                b"doc:1",
                b"big document".to_vec(),
                PutOptions { tags: vec!["docs".into()], ..Default::default() },
            )
            .await
            .unwrap();
        cache.evict_from_l1(b"doc:1");
        assert_eq!(cache.get(b"doc:1").await.unwrap().value, b"big document");
        assert_eq!(cache.tiers()[0].stats.promotions, 1);
        assert_eq!(cache.invalidate(&omnicache_core::Invalidation::Tag("docs".into())).await, 1);
        cache.evict_from_l1(b"doc:1");
        assert!(cache.get(b"doc:1").await.is_none());
    });
}

#[test]
fn transforms_apply_over_the_s3_tier() {
    let server = S3Server::start();
    rt().block_on(transform::check_transforms_over(Arc::new(server.tier("transform/"))));
}

/// Every file name and byte under `dir`.
fn raw_tree(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in walk(dir) {
        all.extend_from_slice(f.to_string_lossy().as_bytes());
        all.extend(std::fs::read(&f).unwrap_or_default());
    }
    all
}

#[test]
fn erasing_a_subject_goes_through_the_index_and_leaves_nothing_of_it_in_the_bucket() {
    let server = S3Server::start();
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    rt().block_on(async {
        let s3 = Arc::new(server.tier("gdpr/"));
        let cache = TieredCache::builder().tier(s3.clone(), WritePolicy::Through).build().unwrap();
        for i in 0..30 {
            let who = if i % 3 == 0 { "alice" } else { "bob" };
            let opts = PutOptions { subject: Some(who.into()), ..Default::default() };
            let key = format!("{who}-doc-{i:02}");
            cache
                .put(key.as_bytes(), format!("{who}-private-{i:02}").into_bytes(), opts)
                .await
                .unwrap();
        }
        // A key of alice's written since for bob: her marker for it must not erase it.
        let opts = PutOptions { subject: Some("bob".into()), ..Default::default() };
        cache.put(b"alice-doc-00", b"now bob's".to_vec(), opts).await.unwrap();
        // The index is not data: scans and usage see entries only.
        let page = s3.scan(b"", None, 1_000).await.unwrap();
        assert_eq!(page.keys.len(), 30, "{:?}", page.keys);
        assert_eq!(s3.usage().await.unwrap().unwrap().entries, 30);

        let report = cache.erase("alice").await;
        assert_eq!(report.tiers[0].1, Some(9), "alice's 10 keys but one is bob's now");
        cache.evict_from_l1(b"alice-doc-00");
        assert_eq!(cache.get(b"alice-doc-00").await.unwrap().value, b"now bob's");
        cache.evict_from_l1(b"alice-doc-03");
        assert!(cache.get(b"alice-doc-03").await.is_none());
    });
    let raw = raw_tree(server.root());
    assert!(!has(&raw, b"alice-private"), "no value of alice in the bucket");
    let hex_alice: String = "alice".bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!has(&raw, hex_alice.as_bytes()), "no index marker of alice left");
    assert!(!has(&raw, b"alice-doc-03"), "no object named after her keys");
    assert!(has(&raw, b"bob-private"), "the raw read sees what is there");
}
