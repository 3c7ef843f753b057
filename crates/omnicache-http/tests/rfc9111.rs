//! The cache layer against a real origin (an axum server on a free port that counts its
//! requests), through the proxy's upstream client, section by section of RFC 9111 and RFC 5861.
//! Time is a `MockClock`: nothing here sleeps for a TTL.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt, Empty};
use omnicache_core::testkit::MemoryTier;
use omnicache_core::{Clock, MockClock};
use omnicache_http::proxy::Upstream;
use omnicache_http::{CacheService, HttpCache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What the origin answers, changeable during a test.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Clone)]
struct Origin {
    hits: Arc<AtomicUsize>,
    reply: Arc<parking_lot::Mutex<Reply>>,
    seen: Arc<parking_lot::Mutex<Vec<(Method, String, HeaderMap)>>>,
    /// When set, each request waits for a permit (to hold requests in flight).
    gate: Arc<parking_lot::Mutex<Option<Arc<Semaphore>>>>,
}

impl Origin {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn reply(&self, status: u16, headers: &[(&'static str, &str)], body: &str) {
        *self.reply.lock() = Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            body: body.to_string(),
        };
    }
    fn last_request(&self) -> (Method, String, HeaderMap) {
        self.seen.lock().last().cloned().expect("the origin saw a request")
    }
}

async fn handle(
    State(o): State<Origin>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    o.hits.fetch_add(1, Ordering::SeqCst);
    o.seen.lock().push((method, uri.to_string(), headers.clone()));
    let gate = o.gate.lock().clone();
    if let Some(g) = gate {
        g.acquire().await.unwrap().forget();
    }
    let r = o.reply.lock().clone();
    // Conditional requests get a 304 when the ETag matches, like a real origin.
    let etag = r.headers.iter().find(|(k, _)| *k == "etag").map(|(_, v)| v.clone());
    if let (Some(inm), Some(etag)) = (headers.get("if-none-match"), &etag) {
        if inm.to_str().unwrap() == etag {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            for (k, v) in &r.headers {
                resp.headers_mut().append(*k, v.parse().unwrap());
            }
            return resp;
        }
    }
    let mut resp = (r.status, r.body).into_response();
    for (k, v) in &r.headers {
        resp.headers_mut().append(*k, v.parse().unwrap());
    }
    resp
}

struct Fixture {
    origin: Origin,
    cache: HttpCache,
    clock: MockClock,
    svc: CacheService<Upstream>,
    url: String,
}

fn wall_now() -> u64 {
    omnicache_core::Clock::now(&omnicache_core::SystemClock)
}

async fn fixture() -> Fixture {
    fixture_with(|b| b).await
}

async fn fixture_with(
    f: impl FnOnce(omnicache_http::HttpCacheBuilder) -> omnicache_http::HttpCacheBuilder,
) -> Fixture {
    let origin = Origin {
        hits: Arc::default(),
        reply: Arc::new(parking_lot::Mutex::new(Reply {
            status: StatusCode::OK,
            headers: vec![("cache-control", "max-age=60".into())],
            body: "v1".into(),
        })),
        seen: Arc::default(),
        gate: Arc::default(),
    };
    let app = Router::new().fallback(handle).with_state(origin.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The cache's clock starts at the wall time, so origin `Date`s agree with it.
    let clock = MockClock::new(wall_now());
    let store = Arc::new(MemoryTier::new(clock.clone().into()));
    let cache = f(HttpCache::builder(store).clock(clock.clone())).build();
    let svc = cache.layer().layer(Upstream::new(&url).unwrap());
    Fixture { origin, cache, clock, svc, url }
}

use tower::Layer;

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
    fn cache_status(&self) -> &str {
        self.header("cache-status")
    }
}

async fn send(
    svc: &CacheService<Upstream>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut req =
        axum::http::Request::builder().method(method).uri(path).header("host", "example.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Empty::<bytes::Bytes>::new()).unwrap();
    let resp = svc.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(f: &Fixture, path: &str) -> Got {
    send(&f.svc, "GET", path, &[]).await
}

// §3, §4: a fresh stored response is reused, with Age and Cache-Status; §4.2.3 Age grows.
#[tokio::test]
async fn fresh_responses_are_reused_with_a_growing_age() {
    let f = fixture().await;
    let first = get(&f, "/a").await;
    assert_eq!(first.body, "v1");
    assert!(first.cache_status().contains("fwd=uri-miss; stored"), "{}", first.cache_status());
    f.clock.advance(Duration::from_secs(30));
    let second = get(&f, "/a").await;
    assert_eq!((second.status, second.body.as_str()), (StatusCode::OK, "v1"));
    assert_eq!(f.origin.hits(), 1, "served from the cache");
    assert_eq!(second.header("age"), "30");
    assert!(second.cache_status().starts_with("omnicache; hit"), "{}", second.cache_status());
    assert_ne!(
        get(&f, "/a?x=1").await.cache_status(),
        second.cache_status(),
        "query is in the key"
    );
    assert_eq!(f.origin.hits(), 2);
    f.clock.advance(Duration::from_secs(31));
    get(&f, "/a").await;
    assert_eq!(f.origin.hits(), 3, "stale after max-age: fetched again");
    assert_eq!(f.cache.stats().hits, 1);
}

// §3: what must not be stored.
#[tokio::test]
async fn no_store_private_and_authorization_are_not_reused() {
    let f = fixture().await;
    for cc in ["no-store, max-age=60", "private, max-age=60"] {
        f.origin.reply(200, &[("cache-control", cc)], "x");
        let path = format!("/{}", cc.len());
        get(&f, &path).await;
        let before = f.origin.hits();
        get(&f, &path).await;
        assert_eq!(f.origin.hits(), before + 1, "{cc} is not reused");
    }
    f.origin.reply(200, &[("cache-control", "max-age=60")], "secret");
    send(&f.svc, "GET", "/auth", &[("authorization", "Bearer a")]).await;
    send(&f.svc, "GET", "/auth", &[("authorization", "Bearer a")]).await;
    assert_eq!(f.origin.hits(), 6, "responses to Authorization requests are not shared");
    f.origin.reply(200, &[("cache-control", "public, max-age=60")], "shared");
    send(&f.svc, "GET", "/pub", &[("authorization", "Bearer a")]).await;
    send(&f.svc, "GET", "/pub", &[("authorization", "Bearer b")]).await;
    assert_eq!(f.origin.hits(), 7, "public makes them shareable");
}

// §5.2.1: request directives.
#[tokio::test]
async fn request_directives() {
    let f = fixture().await;
    // With a validator, a stale response is kept (for revalidation, and for max-stale).
    f.origin.reply(200, &[("cache-control", "max-age=60"), ("etag", "\"r\"")], "r");
    get(&f, "/r").await;
    f.clock.advance(Duration::from_secs(10));
    send(&f.svc, "GET", "/r", &[("cache-control", "max-age=5")]).await;
    assert_eq!(f.origin.hits(), 2, "max-age=5 refuses a 10 s old response");
    send(&f.svc, "GET", "/r", &[("cache-control", "no-cache")]).await;
    send(&f.svc, "GET", "/r", &[("pragma", "no-cache")]).await;
    assert_eq!(f.origin.hits(), 4, "no-cache and Pragma: no-cache go to the origin");
    let miss = send(&f.svc, "GET", "/never", &[("cache-control", "only-if-cached")]).await;
    assert_eq!(miss.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(f.origin.hits(), 4, "only-if-cached never contacts the origin");
    f.clock.advance(Duration::from_secs(120));
    let stale = send(&f.svc, "GET", "/r", &[("cache-control", "max-stale=300")]).await;
    assert_eq!((stale.status, f.origin.hits()), (StatusCode::OK, 4), "max-stale accepts stale");
}

// §4.1: Vary selects variants; a missing header is its own variant; Vary: * never matches.
#[tokio::test]
async fn vary_separates_variants() {
    let f = fixture().await;
    f.origin.reply(200, &[("cache-control", "max-age=60"), ("vary", "Accept-Language")], "x");
    let en = [("accept-language", "en")];
    let fr = [("accept-language", "fr")];
    send(&f.svc, "GET", "/v", &en).await;
    send(&f.svc, "GET", "/v", &fr).await;
    assert_eq!(f.origin.hits(), 2);
    send(&f.svc, "GET", "/v", &en).await;
    send(&f.svc, "GET", "/v", &fr).await;
    assert_eq!(f.origin.hits(), 2, "each language from its own variant");
    let none = send(&f.svc, "GET", "/v", &[]).await;
    assert!(none.cache_status().contains("fwd=vary-miss"), "{}", none.cache_status());
    assert_eq!(f.origin.hits(), 3);
    f.origin.reply(200, &[("cache-control", "max-age=60"), ("vary", "*")], "x");
    get(&f, "/star").await;
    get(&f, "/star").await;
    assert_eq!(f.origin.hits(), 5, "Vary: * never matches");
}

// §4.3: validation; §4.3.4: a 304 freshens the stored headers, not the body or ETag.
#[tokio::test]
async fn a_304_updates_the_stored_headers() {
    let f = fixture().await;
    f.origin.reply(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"e1\""), ("x-version", "1")],
        "body",
    );
    get(&f, "/c").await;
    f.clock.advance(Duration::from_secs(20));
    f.origin.reply(
        200,
        &[("cache-control", "max-age=100"), ("etag", "\"e1\""), ("x-version", "2")],
        "new",
    );
    let got = get(&f, "/c").await;
    let (_, _, seen) = f.origin.last_request();
    assert_eq!(seen.get("if-none-match").unwrap(), "\"e1\"", "validated with the stored ETag");
    assert_eq!((got.status, got.body.as_str()), (StatusCode::OK, "body"), "the stored body");
    assert_eq!(got.header("x-version"), "2", "headers from the 304");
    assert!(got.cache_status().contains("fwd-status=304"), "{}", got.cache_status());
    assert_eq!(f.cache.stats().revalidated, 1);
    get(&f, "/c").await;
    assert_eq!(f.origin.hits(), 2, "fresh again for the 304's max-age");
    // The client's own validators are answered by the cache.
    let nm = send(&f.svc, "GET", "/c", &[("if-none-match", "\"e1\"")]).await;
    assert_eq!((nm.status, nm.body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(nm.header("etag"), "\"e1\"");
    assert_eq!(f.origin.hits(), 2);
}

// §4.4: unsafe methods invalidate the target URI and same-origin Location/Content-Location.
#[tokio::test]
async fn unsafe_methods_invalidate() {
    let f = fixture().await;
    get(&f, "/item").await;
    get(&f, "/other").await;
    get(&f, "/third").await;
    assert_eq!(f.origin.hits(), 3);
    f.origin.reply(
        201,
        &[("location", "/other"), ("content-location", "http://elsewhere.test/third")],
        "",
    );
    let posted = send(&f.svc, "POST", "/item", &[]).await;
    assert_eq!(posted.status, StatusCode::CREATED);
    f.origin.reply(200, &[("cache-control", "max-age=60")], "v2");
    assert_eq!(get(&f, "/item").await.body, "v2", "the target URI is invalidated");
    assert_eq!(get(&f, "/other").await.body, "v2", "so is the Location");
    assert_eq!(get(&f, "/third").await.body, "v1", "another origin's URI is left alone");
    f.origin.reply(500, &[], "");
    send(&f.svc, "DELETE", "/item", &[]).await;
    assert_eq!(get(&f, "/item").await.body, "v2", "a failed DELETE invalidates nothing");
}

// Coalescing: 100 concurrent misses for one resource make exactly one origin request.
#[test]
fn coalescing_makes_one_origin_request_for_100_concurrent_misses() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let f = fixture().await;
        let gate = Arc::new(Semaphore::new(0));
        *f.origin.gate.lock() = Some(gate.clone());
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let svc = f.svc.clone();
                tokio::spawn(async move { send(&svc, "GET", "/hot", &[]).await })
            })
            .collect();
        while f.origin.hits() == 0 {
            tokio::task::yield_now().await;
        }
        // Let every other request reach the cache and wait behind the first.
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1000);
        for t in tasks {
            let got = t.await.unwrap();
            assert_eq!((got.status, got.body.as_str()), (StatusCode::OK, "v1"));
        }
        assert_eq!(f.origin.hits(), 1, "one origin request");
        assert_eq!(f.cache.stats().coalesced, 99);
    });
}

// RFC 5861 §3: stale-while-revalidate serves stale while exactly one refresh runs.
#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let f = fixture().await;
        f.origin.reply(200, &[("cache-control", "max-age=1, stale-while-revalidate=60")], "old");
        get(&f, "/swr").await;
        f.clock.advance(Duration::from_secs(10));
        f.origin.reply(200, &[("cache-control", "max-age=100")], "new");
        let gate = Arc::new(Semaphore::new(0));
        *f.origin.gate.lock() = Some(gate.clone());
        for _ in 0..10 {
            let got = get(&f, "/swr").await;
            assert_eq!(got.body, "old", "stale served at once");
            assert!(
                got.cache_status().contains("stale-while-revalidate"),
                "{}",
                got.cache_status()
            );
        }
        gate.add_permits(10);
        f.cache.idle().await;
        assert_eq!(f.origin.hits(), 2, "the first fetch and exactly one refresh");
        assert_eq!(get(&f, "/swr").await.body, "new", "the refresh replaced it");
        f.clock.advance(Duration::from_secs(200));
        *f.origin.gate.lock() = None;
        f.origin.reply(200, &[("cache-control", "max-age=1, stale-while-revalidate=5")], "newer");
        assert_eq!(get(&f, "/swr").await.body, "newer", "past the window: fetched inline");
    });
}

// RFC 5861 §4: stale-if-error on 5xx and on connection refusal, within the window only.
#[tokio::test]
async fn stale_if_error_on_5xx_and_refused_connections_within_the_window() {
    let f = fixture().await;
    f.origin.reply(200, &[("cache-control", "max-age=1, stale-if-error=60")], "good");
    get(&f, "/e").await;
    f.clock.advance(Duration::from_secs(30));
    f.origin.reply(503, &[], "down");
    let got = get(&f, "/e").await;
    assert_eq!((got.status, got.body.as_str()), (StatusCode::OK, "good"));
    assert!(got.cache_status().contains("detail=stale-if-error"), "{}", got.cache_status());
    // The same cache in front of an origin that refuses connections.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let refused = f.cache.layer().layer(Upstream::new(&dead_url).unwrap());
    let got = send(&refused, "GET", "/e", &[]).await;
    assert_eq!((got.status, got.body.as_str()), (StatusCode::OK, "good"), "refused: stale");
    f.clock.advance(Duration::from_secs(40));
    assert_eq!(get(&f, "/e").await.status, StatusCode::SERVICE_UNAVAILABLE, "past the window");
    assert_eq!(send(&refused, "GET", "/e", &[]).await.status, StatusCode::BAD_GATEWAY);
    assert_eq!(f.cache.stats().errors_hidden, 2);
    // must-revalidate forbids it.
    f.origin.reply(200, &[("cache-control", "max-age=1, stale-if-error=60, must-revalidate")], "g");
    get(&f, "/m").await;
    f.clock.advance(Duration::from_secs(5));
    f.origin.reply(500, &[], "down");
    assert_eq!(get(&f, "/m").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    let _ = f.url;
}

// Tags: Surrogate-Key responses are purged by tag; the header is not sent on.
#[tokio::test]
async fn purge_by_tag_and_by_uri() {
    let f = fixture().await;
    f.origin.reply(200, &[("cache-control", "max-age=60"), ("surrogate-key", "user-1 users")], "u");
    let got = get(&f, "/u/1").await;
    assert_eq!(got.header("surrogate-key"), "", "tags stay in the cache");
    f.origin.reply(
        200,
        &[("cache-control", "max-age=60"), ("surrogate-key", "user-2, users")],
        "u",
    );
    get(&f, "/u/2").await;
    assert_eq!(f.origin.hits(), 2);
    assert!(f.cache.purge_tag("user-1").await >= 1);
    get(&f, "/u/1").await;
    get(&f, "/u/2").await;
    assert_eq!(f.origin.hits(), 3, "only the tagged response was purged");
    f.cache.purge("example.test", "/u/2").await;
    get(&f, "/u/2").await;
    assert_eq!(f.origin.hits(), 4);
    f.cache.purge_all().await;
    get(&f, "/u/1").await;
    assert_eq!(f.origin.hits(), 5);
}

// §4: HEAD is answered from a stored GET; large bodies stream through unstored.
#[tokio::test]
async fn head_from_a_stored_get_and_large_bodies_stream_through() {
    let f = fixture_with(|b| b.max_body_bytes(10)).await;
    f.origin.reply(200, &[("cache-control", "max-age=60")], "small");
    get(&f, "/h").await;
    let head = send(&f.svc, "HEAD", "/h", &[]).await;
    assert_eq!((head.status, head.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(head.header("content-length"), "5");
    assert_eq!(f.origin.hits(), 1, "HEAD from the stored GET");
    let big = "x".repeat(100);
    f.origin.reply(200, &[("cache-control", "max-age=60")], &big);
    assert_eq!(get(&f, "/big").await.body, big, "streamed whole");
    assert_eq!(get(&f, "/big").await.body, big);
    assert_eq!(f.origin.hits(), 3, "not stored");
}

#[tokio::test]
async fn the_surrogate_capability_is_announced_and_surrogate_control_obeyed() {
    let f = fixture().await;
    f.origin.reply(200, &[("cache-control", "no-store"), ("surrogate-control", "max-age=60")], "s");
    let got = get(&f, "/s").await;
    let (_, _, seen) = f.origin.last_request();
    assert_eq!(seen.get("surrogate-capability").unwrap(), "omnicache=\"Surrogate/1.0\"");
    assert_eq!(got.header("surrogate-control"), "", "consumed by the surrogate");
    get(&f, "/s").await;
    assert_eq!(f.origin.hits(), 1, "Surrogate-Control max-age overrides Cache-Control no-store");
    let _ = f.clock.now();
}
