//! `omnicache proxy` end to end: the real binary in front of a real origin (a counting HTTP
//! server on a free port), purged through the REST API beside it, stopped with SIGTERM, and
//! restarted on the same data.

mod common;

use common::{bin, request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An origin answering every request with a cacheable, tagged response, counting them.
fn origin() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            if head.starts_with(b"GET /old") {
                // An origin that answers in HTTP/1.0.
                let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 4\r\n\r\ngone");
                continue;
            }
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!("v{n}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nSurrogate-Key: items\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (addr, hits)
}

struct Proxy {
    child: Child,
    front: String,
    api: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn proxy(upstream: &str, listen: &str, data: &std::path::Path) -> (Proxy, Option<String>) {
    let mut child = bin()
        .args(["proxy", "--upstream", &format!("http://{upstream}")])
        .args(["--listen", listen, "--api", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the omnicache binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut front, mut api, mut key) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("OmniCache proxy listening on http://") {
            front = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.trim().strip_prefix("API:") {
            api = rest
                .trim()
                .strip_prefix("http://")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string);
        }
        if let Some(k) = line.trim().strip_prefix("admin key: ") {
            // Not a terminal: a new key is not printed, only where it is.
            assert!(!k.starts_with("oc_"), "the key is printed only on a terminal: {line}");
            key = k.strip_prefix("created in ").map(|rest| {
                let file = rest.split(" (").next().unwrap();
                std::fs::read_to_string(file).unwrap().trim().to_string()
            });
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let p = Proxy { child, front: front.expect("proxy address"), api: api.expect("API address") };
    (p, key)
}

/// `POST /caches/http/invalidate` on the proxy's API with `body`, as an operator would.
fn purge(p: &Proxy, key: &str, body: &[u8]) -> common::Reply {
    let auth = format!("Bearer {key}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    request(&p.api, "POST", "/caches/http/invalidate", &headers, body)
}

#[test]
fn the_proxy_caches_purges_by_tag_stops_cleanly_and_keeps_its_cache() {
    let (upstream, hits) = origin();
    let data = tempfile::tempdir().unwrap();
    let (p, key) = proxy(&upstream, "127.0.0.1:0", data.path());
    let key = key.expect("a first start makes the admin key");

    let first = request(&p.front, "GET", "/item", &[], b"");
    assert_eq!((first.status, first.body.as_slice()), (200, &b"v1"[..]));
    let second = request(&p.front, "GET", "/item", &[], b"");
    assert_eq!(second.body, b"v1");
    assert!(
        second.headers.to_ascii_lowercase().contains("cache-status: omnicache; hit"),
        "{}",
        second.headers
    );
    assert!(!second.headers.to_ascii_lowercase().contains("surrogate-key"), "tags stay inside");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the second GET was a hit");

    // Purge by tag through the REST API, as an operator would.
    let auth = format!("Bearer {key}");
    let purge = purge(&p, &key, br#"{"by": "tag", "value": "items"}"#);
    assert_eq!(purge.status, 200, "{}", String::from_utf8_lossy(&purge.body));
    assert_eq!(request(&p.front, "GET", "/item", &[], b"").body, b"v2", "purged");
    let stats = request(&p.api, "GET", "/caches/http/stats", &[("Authorization", &auth)], b"");
    assert_eq!(stats.status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    let http = &stats["http"];
    assert_eq!(
        (&http["hits"], &http["misses"], &http["stored"]),
        (&serde_json::json!(1), &serde_json::json!(2), &serde_json::json!(2)),
        "one hit, then a miss after the purge, as the HTTP cache counted them: {stats}"
    );
    let other = request(&p.api, "GET", "/caches/default/stats", &[("Authorization", &auth)], b"");
    let other: serde_json::Value = serde_json::from_slice(&other.body).unwrap();
    assert!(other["http"].is_null(), "a cache the proxy does not use has no HTTP counters");

    // SIGTERM: drains, flushes, exits 0.
    let front = p.front.clone();
    Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap();
    let mut p = p;
    assert!(p.child.wait().unwrap().success());
    drop(p);

    // The cache lives on disk: a restart (same address, so the same Host and keys) serves it
    // without asking the origin.
    let (p, _) = proxy(&upstream, &front, data.path());
    let again = request(&p.front, "GET", "/item", &[], b"");
    assert_eq!(again.body, b"v2");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "served from the disk tier after a restart");
}

#[test]
fn a_bad_upstream_is_a_usage_error() {
    let data = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["proxy", "--upstream", "https://example.test", "--listen", "127.0.0.1:0"])
        .args(["--api", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only http:// origins"), "{err}");
}

/// A client speaking HTTP/1.1 gets HTTP/1.1 back, even from an origin that answers in 1.0.
#[test]
fn the_proxy_answers_in_the_clients_http_version() {
    let (upstream, _) = origin();
    let data = tempfile::tempdir().unwrap();
    let (p, _) = proxy(&upstream, "127.0.0.1:0", data.path());
    let mut s = std::net::TcpStream::connect(&p.front).unwrap();
    s.write_all(b"GET /old/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
}

/// Purging by a path prefix, as an operator writes it (`/products/`), drops those responses
/// and keeps the rest; no internal key format needed.
#[test]
fn the_proxy_purges_by_path_prefix() {
    let (upstream, hits) = origin();
    let data = tempfile::tempdir().unwrap();
    let (p, key) = proxy(&upstream, "127.0.0.1:0", data.path());
    let key = key.expect("a first start makes the admin key");
    for path in ["/products/1", "/products/2", "/about", "/products/1"] {
        assert_eq!(request(&p.front, "GET", path, &[], b"").status, 200);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the second /products/1 was a hit");
    let purge = purge(&p, &key, br#"{"by": "prefix", "value": "/products/"}"#);
    assert_eq!(purge.status, 200, "{}", String::from_utf8_lossy(&purge.body));
    assert_eq!(purge.json()["removed"], 2, "the two products");
    request(&p.front, "GET", "/about", &[], b"");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "/about is still cached");
    request(&p.front, "GET", "/products/2", &[], b"");
    request(&p.front, "GET", "/products/1", &[], b"");
    assert_eq!(hits.load(Ordering::SeqCst), 5, "the products were purged");
}
