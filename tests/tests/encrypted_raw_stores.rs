//! An encrypting cache over Redis and over S3 (real `redis-server` and `s3s-fs` on free
//! loopback ports): what the stores hold, read raw (every Redis key and value; every file of the
//! bucket), contains no byte sequence of the values written, and the cache serves them back.

// Waiting for server processes to listen takes real time.
#![allow(clippy::disallowed_methods)]

use omnicache::security::{Encrypt, KeyRing};
use omnicache::tiers::redis::RedisTier;
use omnicache::tiers::s3::S3Tier;
use omnicache::tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn value(i: u32) -> Vec<u8> {
    format!("medical record {i:03}: diagnosis plaintext-marker-{i:03}").into_bytes()
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Writes 50 values through an encrypting cache over `tier`, reads them back from the tier.
async fn write_and_read_back(cache: &TieredCache) {
    for i in 0..50 {
        let opts = PutOptions { subject: Some(format!("patient-{i}")), ..Default::default() };
        cache.put(format!("rec:{i}").as_bytes(), value(i), opts).await.unwrap();
    }
    for i in [0, 17, 49] {
        let k = format!("rec:{i}");
        cache.evict_from_l1(k.as_bytes());
        assert_eq!(
            cache.get(k.as_bytes()).await.unwrap().value,
            value(i),
            "decrypted from the tier"
        );
    }
}

#[test]
fn redis_holds_only_ciphertext_of_an_encrypted_cache() {
    let port = free_port();
    let _redis = Proc(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start redis-server ({e}): install it with `apt-get install redis-server` (cargo xtask ci does)")),
    );
    wait_for(port, "redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let ring = Arc::new(KeyRing::generate().unwrap());
    rt().block_on(async {
        let tier = Arc::new(RedisTier::builder(url.clone()).connect().await.unwrap());
        let cache = TieredCache::builder()
            .transform(Arc::new(Encrypt::new(ring, "records")))
            .tier(tier, WritePolicy::Through)
            .build()
            .unwrap();
        write_and_read_back(&cache).await;
        cache.shutdown().await;
        let mut conn =
            redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
        assert!(!keys.is_empty());
        let mut raw = Vec::new();
        for k in &keys {
            let kind: String = redis::cmd("TYPE").arg(k).query_async(&mut conn).await.unwrap();
            if kind == "string" {
                let v: Vec<u8> = redis::cmd("GET").arg(k).query_async(&mut conn).await.unwrap();
                raw.extend(v);
            }
        }
        assert!(raw.len() > 50 * 40, "the values are there, {} bytes", raw.len());
        assert!(!has(&raw, b"plaintext-marker"), "a value in the clear in Redis");
        assert!(!has(&raw, b"medical record"), "a value in the clear in Redis");
    });
}

/// Where `cargo xtask ci` installs `s3s-fs`, or anywhere on PATH.
fn s3s_fs() -> PathBuf {
    let tools = std::env::var_os("OMNICACHE_TOOLS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/omnicache-tools")
    });
    let installed = tools.join("bin/s3s-fs");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("s3s-fs")
    }
}

fn files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                all.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    all
}

#[test]
fn s3_objects_hold_only_ciphertext_of_an_encrypted_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cache")).unwrap();
    let port = free_port();
    let _s3 = Proc(
        Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "ak-test", "--secret-key", "sk-test-secret"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start s3s-fs ({e}): install it with `cargo install s3s-fs --version 0.14.1 --locked --features binary` (cargo xtask ci does, into ~/.cache/omnicache-tools)")),
    );
    wait_for(port, "s3s-fs");
    let ring = Arc::new(KeyRing::generate().unwrap());
    rt().block_on(async {
        let tier = S3Tier::builder(format!("http://127.0.0.1:{port}"), "cache")
            .credentials("ak-test", "sk-test-secret")
            .build()
            .unwrap();
        let cache = TieredCache::builder()
            .transform(Arc::new(Encrypt::new(ring, "records")))
            .tier(Arc::new(tier), WritePolicy::Through)
            .build()
            .unwrap();
        write_and_read_back(&cache).await;
        cache.shutdown().await;
    });
    let raw = files(dir.path());
    assert!(raw.len() > 50 * 40, "the objects are there, {} bytes", raw.len());
    assert!(!has(&raw, b"plaintext-marker"), "a value in the clear in the bucket");
    assert!(!has(&raw, b"medical record"), "a value in the clear in the bucket");
}
