//! The Redis tier against a real `redis-server` started on a free loopback port: the tier
//! conformance suite, batch reads, corruption, a hung server, and killing Redis in the middle of
//! 100,000 mixed operations on a tiered cache.

// Waiting for real server processes to listen takes real time.
#![allow(clippy::disallowed_methods)]

use omnicache_core::testkit::check_tier;
use omnicache_core::{EntryMeta, ErrorKind, MockClock, Tier, TierEntry};
use omnicache_tiers::disk::DiskTier;
use omnicache_tiers::redis::RedisTier;
use omnicache_tiers::tiered::{PutOptions, TieredCache, WritePolicy};
use omnicache_tiers::BreakerState;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../common/transform.rs"]
mod transform;

/// A `redis-server` child process on a free port, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut s = RedisServer { child: None, port };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start redis-server ({e}): install it with `apt-get install redis-server` (cargo xtask ci does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start listening on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stays, the port stays open, nothing answers.
    fn pause(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    }

    fn resume(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
        }
        self.kill();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn passes_the_tier_conformance_suite() {
    let server = RedisServer::start();
    rt().block_on(async {
        let url = server.url();
        check_tier(|clock| {
            // The suite makes its tier synchronously; connect on this runtime, so the
            // connection's background task lives as long as the test.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(
                    RedisTier::builder(url.clone()).namespace("conformance").clock(clock).connect(),
                )
            })
            .expect("connect")
        })
        .await;
    });
}

#[test]
fn batch_reads_expiry_and_namespaces() {
    let server = RedisServer::start();
    rt().block_on(async {
        let a = RedisTier::builder(server.url()).namespace("a").connect().await.unwrap();
        let b = RedisTier::builder(server.url()).namespace("b").connect().await.unwrap();
        let e = |v: &[u8]| TierEntry::new(v.to_vec(), EntryMeta::new(1));
        a.put_many(vec![(b"x".to_vec(), e(b"1")), (b"y".to_vec(), e(b"2"))]).await.unwrap();
        let got = a.get_many(&[b"x", b"nope", b"y"]).await.unwrap();
        assert_eq!(
            got.iter().map(|g| g.as_ref().map(|t| t.value.clone())).collect::<Vec<_>>(),
            vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]
        );
        assert!(b.get(b"x").await.unwrap().is_none(), "namespaces do not see each other");
        assert_eq!(b.invalidate(&omnicache_core::Invalidation::All).await.unwrap(), 0);
        assert!(a.get(b"x").await.unwrap().is_some(), "clearing b leaves a alone");
        // Redis's own TTL: an entry that expires in 50 ms is gone from Redis itself.
        let mut meta = EntryMeta::new(1);
        meta.expires = Some(omnicache_core::SystemClock.now_ns() + 50_000_000);
        a.put(b"short", TierEntry::new(b"s".to_vec(), meta)).await.unwrap();
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let pttl: i64 = redis::cmd("PTTL").arg("a:e:short").query_async(&mut conn).await.unwrap();
        assert!(pttl > 0 && pttl <= 50, "native TTL set: {pttl} ms");
    });
}

trait NowNs {
    fn now_ns(&self) -> u64;
}
impl NowNs for omnicache_core::SystemClock {
    fn now_ns(&self) -> u64 {
        omnicache_core::Clock::now(self)
    }
}

#[test]
fn flipped_bytes_in_redis_are_detected_and_deleted() {
    let server = RedisServer::start();
    rt().block_on(async {
        let tier = RedisTier::builder(server.url()).namespace("c").connect().await.unwrap();
        tier.put(b"k", TierEntry::new(b"value".to_vec(), EntryMeta::new(1))).await.unwrap();
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut raw: Vec<u8> = redis::cmd("GET").arg("c:e:k").query_async(&mut conn).await.unwrap();
        let last = raw.len() - 5;
        raw[last] ^= 1;
        let _: () = redis::cmd("SET").arg("c:e:k").arg(raw).query_async(&mut conn).await.unwrap();
        assert_eq!(tier.get(b"k").await.unwrap_err().kind(), ErrorKind::Corrupt);
        let exists: i64 = redis::cmd("EXISTS").arg("c:e:k").query_async(&mut conn).await.unwrap();
        assert_eq!(exists, 0, "the corrupt entry was deleted");
    });
}

#[test]
fn a_hung_redis_times_out() {
    let server = RedisServer::start();
    rt().block_on(async {
        let tier = RedisTier::builder(server.url())
            .timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        tier.put(b"k", TierEntry::new(b"v".to_vec(), EntryMeta::new(1))).await.unwrap();
        server.pause();
        let started = Instant::now();
        let err = tier.get(b"k").await.unwrap_err();
        let waited = started.elapsed();
        server.resume();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(waited < Duration::from_secs(5), "the get did not hang ({waited:?})");
        assert_eq!(omnicache_core::Tier::health(&tier), omnicache_core::TierHealth::Degraded);
    });
}

#[test]
fn killing_redis_during_100k_operations_loses_nothing_and_returns_no_error() {
    let mut server = RedisServer::start();
    let clock = MockClock::default();
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let redis = Arc::new(
            RedisTier::builder(server.url())
                .timeout(Duration::from_millis(300))
                .connect()
                .await
                .unwrap(),
        );
        let disk = Arc::new(DiskTier::open(dir.path().join("below.db")).unwrap());
        let cache = TieredCache::builder()
            .clock(clock.clone())
            .l1_capacity(1_000)
            .tier(redis.clone(), WritePolicy::Through)
            .tier(disk.clone(), WritePolicy::Through)
            .build()
            .unwrap();
        let mut written = std::collections::HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..100_000u64 {
            if i == 30_000 {
                server.kill();
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("key:{}", x % 20_000);
            if i % 4 == 0 {
                let v = format!("v{i}");
                // `put` returns Ok whatever Redis does: the entry is in L1 and on disk.
                cache
                    .put(k.as_bytes(), v.clone().into_bytes(), PutOptions::default())
                    .await
                    .expect("no error for a dead tier");
                written.insert(k, v);
            } else if let Some(e) = cache.get(k.as_bytes()).await {
                assert_eq!(
                    Some(&String::from_utf8(e.value.to_vec()).unwrap()),
                    written.get(&k),
                    "never a stale or foreign value"
                );
            }
        }
        let status = &cache.tiers()[0];
        assert_eq!(status.breaker, BreakerState::Open, "the breaker opened when Redis died");
        assert!(
            status.stats.skipped > 10_000,
            "and calls skipped the dead tier: {:?}",
            status.stats
        );
        // Nothing acknowledged is lost: every last write is served (from L1 or disk).
        for (k, v) in &written {
            let e = cache.get(k.as_bytes()).await.expect("acknowledged write present");
            assert_eq!(&e.value, v.as_bytes());
        }
        // Redis comes back on the same port; after the cooldown the breaker closes.
        server.spawn();
        clock.advance(Duration::from_secs(61));
        let mut closed = false;
        for _ in 0..50 {
            cache.put(b"probe", b"p".to_vec(), PutOptions::default()).await.unwrap();
            if cache.tiers()[0].breaker == BreakerState::Closed {
                closed = true;
                break;
            }
            clock.advance(Duration::from_secs(61));
            tokio::time::sleep(Duration::from_millis(100)).await; // let the connection manager reconnect
        }
        assert!(closed, "the breaker closed once Redis was back: {:?}", cache.tiers()[0]);
        assert!(redis.get(b"probe").await.unwrap().is_some(), "and writes reach Redis again");
    });
}

fn cluster_port() -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if p <= 55_000 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
}

/// Three `redis-server` nodes joined into a cluster with `redis-cli --cluster create`.
struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        // A cluster node also listens on port + 10000 for its bus: pick ports where both are free.
        RedisCluster::start_on((0..3).map(|_| cluster_port()).collect())
    }

    fn start_on(ports: Vec<u16>) -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes = ports
            .iter()
            .map(|p| {
                Command::new("redis-server")
                    .args([
                        "--port",
                        &p.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{p}.conf"),
                    ])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server (apt-get install redis-server)")
            })
            .collect();
        for p in &ports {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
                assert!(Instant::now() < deadline, "cluster node on {p} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli (apt-get install redis-server)");
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &ports[0].to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes, ports, _dir: dir }
    }

    fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

#[test]
fn a_redis_cluster_passes_the_tier_conformance_suite() {
    let cluster = RedisCluster::start();
    rt().block_on(async {
        let urls = cluster.urls();
        check_tier(|clock| {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(
                    RedisTier::builder("cluster")
                        .cluster(urls.clone())
                        .namespace("conf")
                        .clock(clock)
                        .connect(),
                )
            })
            .expect("connect to the cluster")
        })
        .await;
        // Keys really are spread over the nodes.
        let tier = RedisTier::builder("cluster")
            .cluster(urls.clone())
            .namespace("spread")
            .connect()
            .await
            .unwrap();
        for i in 0..300u32 {
            tier.put(format!("k{i}").as_bytes(), TierEntry::new(vec![1], EntryMeta::new(1)))
                .await
                .unwrap();
        }
        let mut holding = 0;
        for p in &cluster.ports {
            let out =
                Command::new("redis-cli").args(["-p", &p.to_string(), "dbsize"]).output().unwrap();
            let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
            holding += u64::from(n > 0);
        }
        assert_eq!(holding, 3, "every node holds some of the keys");
    });
}

/// Retries a write to a lazy tier for up to five seconds while its Redis comes up (a real
/// process starting, not a TTL), then reads it back.
async fn stores_once_up(tier: &RedisTier, entry: TierEntry) {
    let mut stored = false;
    for _ in 0..50 {
        if Tier::put(tier, b"k", entry.clone()).await.is_ok() {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the tier connects once Redis is up");
    assert_eq!(Tier::get(tier, b"k").await.unwrap().unwrap().value, entry.value);
}

#[test]
fn a_lazy_cluster_tier_starts_without_the_cluster_and_serves_once_it_is_up() {
    let ports: Vec<u16> = (0..3).map(|_| cluster_port()).collect();
    let urls: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    rt().block_on(async {
        let builder = RedisTier::builder("cluster")
            .cluster(urls)
            .namespace("lazy")
            .timeout(Duration::from_millis(300));
        assert!(builder.clone().connect().await.is_err(), "an eager tier needs the cluster up");
        let tier = builder.lazy(true).connect().await.expect("a lazy tier starts without it");
        let entry = TierEntry::new(b"v".to_vec(), EntryMeta::new(1));
        assert!(Tier::put(&tier, b"k", entry.clone()).await.is_err(), "calls fail while down");
        let _cluster =
            tokio::task::spawn_blocking(move || RedisCluster::start_on(ports)).await.unwrap();
        stores_once_up(&tier, entry).await;
    });
}

#[test]
fn a_lazy_tier_starts_without_redis_and_serves_once_it_is_up() {
    rt().block_on(async {
        let mut server = RedisServer::start();
        server.kill();
        let tier = omnicache_tiers::redis::RedisTier::builder(server.url())
            .lazy(true)
            .timeout(Duration::from_millis(300))
            .connect()
            .await
            .expect("a lazy tier starts while Redis is down");
        let entry = TierEntry::new(b"v".to_vec(), omnicache_core::EntryMeta::new(1));
        assert!(Tier::put(&tier, b"k", entry.clone()).await.is_err(), "calls fail while down");
        server.spawn();
        stores_once_up(&tier, entry).await;
    });
}

#[test]
fn transforms_apply_over_the_redis_tier() {
    let server = RedisServer::start();
    rt().block_on(async {
        let tier = RedisTier::builder(server.url()).namespace("transform").connect().await.unwrap();
        transform::check_transforms_over(Arc::new(tier)).await;
    });
}

#[test]
fn erasing_a_subject_leaves_nothing_of_it_in_redis_or_on_disk() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let redis =
            Arc::new(RedisTier::builder(server.url()).namespace("gdpr").connect().await.unwrap());
        let disk = Arc::new(DiskTier::open(dir.path().join("gdpr.db")).unwrap());
        let cache = TieredCache::builder()
            .tier(redis.clone(), WritePolicy::Through)
            .tier(disk, WritePolicy::Through)
            .build()
            .unwrap();
        for i in 0..40 {
            let who = if i % 2 == 0 { "alice" } else { "bob" };
            let opts = PutOptions { subject: Some(who.into()), ..Default::default() };
            let value = format!("{who}-private-{i:03}").repeat(8).into_bytes();
            cache.put(format!("k{i}").as_bytes(), value, opts).await.unwrap();
        }
        let report = cache.erase("alice").await;
        assert_eq!(report.l1, 20);
        assert_eq!(
            report.tiers.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            vec![Some(20), Some(20)]
        );
        assert!(cache.get(b"k0").await.is_none());
        assert!(cache.get(b"k1").await.is_some(), "bob stays");
        cache.shutdown().await;

        // Every key Redis holds, and every value: nothing of alice.
        let all = redis_bytes(&server.url()).await;
        let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"alice-private"), "no value of alice in Redis");
        assert!(has(b"bob-private"), "the raw read sees what is there");
    });
    let mut raw = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        if let Ok(b) = std::fs::read(e.unwrap().path()) {
            raw.extend(b);
        }
    }
    assert!(!raw.windows(13).any(|w| w == b"alice-private"), "nothing of alice on disk");
}

/// Every key and value Redis holds, as bytes.
async fn redis_bytes(url: &str) -> Vec<u8> {
    let mut conn =
        redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    let mut all = Vec::new();
    for k in &keys {
        all.extend_from_slice(k);
        let kind: String = redis::cmd("TYPE").arg(k).query_async(&mut conn).await.unwrap();
        if kind == "string" {
            let v: Vec<u8> = redis::cmd("GET").arg(k).query_async(&mut conn).await.unwrap();
            all.extend(v);
        } else if kind == "set" {
            let members: Vec<Vec<u8>> =
                redis::cmd("SMEMBERS").arg(k).query_async(&mut conn).await.unwrap();
            members.into_iter().for_each(|m| all.extend(m));
        }
    }
    all
}

#[test]
fn an_erase_redis_missed_while_down_is_kept_across_a_restart_and_applied_when_it_is_back() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("missed.json");
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    rt().block_on(async {
        let open = || async {
            let redis = Arc::new(
                RedisTier::builder(server.url())
                    .namespace("outage")
                    .timeout(Duration::from_millis(200))
                    .connect()
                    .await
                    .unwrap(),
            );
            let disk = Arc::new(DiskTier::open(dir.path().join("outage.db")).unwrap());
            TieredCache::builder()
                .tier(redis, WritePolicy::Through)
                .tier(disk, WritePolicy::Through)
                .journal(&journal)
                .sweep_interval(None)
                .build()
                .unwrap()
        };
        let cache = open().await;
        for i in 0..40 {
            let who = if i % 2 == 0 { "alice" } else { "bob" };
            let opts = PutOptions { subject: Some(who.into()), ..Default::default() };
            let value = format!("{who}-private-{i:03}").into_bytes();
            cache.put(format!("k{i}").as_bytes(), value, opts).await.unwrap();
        }
        // Redis stops answering during the erase: disk and memory take it, Redis misses it.
        server.pause();
        let report = cache.erase("alice").await;
        assert_eq!(report.l1, 20);
        assert_eq!(report.tiers.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [None, Some(20)]);
        assert_eq!(cache.missed_invalidations(), 1);
        cache.shutdown().await;
        drop(cache);
        server.resume();
        assert!(has(&redis_bytes(&server.url()).await, b"alice-private"), "Redis kept its copies");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the journal names a data subject: owner-only");
        }

        // A restarted cache: the journal says what Redis missed, so nothing of alice is served
        // from it, and the next retry applies the erase there.
        let cache = open().await;
        assert_eq!(cache.missed_invalidations(), 1);
        assert!(cache.get(b"k0").await.is_none(), "alice's copy in Redis is not served");
        assert_eq!(cache.get(b"k1").await.unwrap().value, b"bob-private-001");
        assert_eq!(cache.retry_missed().await, 1);
        assert_eq!(cache.missed_invalidations(), 0);
        let raw = redis_bytes(&server.url()).await;
        assert!(!has(&raw, b"alice-private"), "nothing of alice left in Redis");
        assert!(has(&raw, b"bob-private"), "the raw read sees what is there");
        assert!(!has(&std::fs::read(&journal).unwrap(), b"alice"), "the journal let go of her");
        cache.shutdown().await;
    });
}
