//! The REST API and the CLI client end to end, against the real binary: scopes and per-cache
//! keys, the config file and environment overrides, stats/clear/set-policy, batches,
//! warm/export/import, limits, OpenAPI, TLS, exit codes, and SIGTERM during write-behind.

mod common;

use common::{bin, request, serve, serve_with, Reply, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn call(s: &Server, key: Option<&str>, method: &str, path: &str, body: &[u8]) -> Reply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    request(&s.addr, method, path, &headers, body)
}

fn cli(s: &Server, key: &str, args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("OMNICACHE_SERVER", format!("http://{}", s.addr))
        .env("OMNICACHE_API_KEY", key)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("omnicache.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn keys_have_scopes_and_caches_and_every_failure_is_401_or_403() {
    let data = tempfile::tempdir().unwrap();
    let config = write_config(
        data.path(),
        &format!(
            "[caches.users]\npolicy = \"lru\"\n[caches.orders]\n\n\
             [[keys]]\nname = \"users-reader\"\nsha256 = \"{}\"\nscopes = [\"read\"]\ncaches = [\"users\"]\n\n\
             [[keys]]\nname = \"writer\"\nsha256 = \"{}\"\nscopes = [\"write\"]\n",
            sha256_hex("reader-secret"),
            sha256_hex("writer-secret")
        ),
    );
    let s = serve_with(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let admin = s.key.clone().unwrap();
    let (r, w, a) = (Some("reader-secret"), Some("writer-secret"), Some(admin.as_str()));

    assert_eq!(call(&s, None, "GET", "/caches", b"").status, 401);
    assert_eq!(call(&s, Some("oc_wrong"), "GET", "/caches", b"").status, 401);
    let e = call(&s, None, "GET", "/caches", b"");
    assert_eq!(e.error_code(), "unauthorized");

    assert_eq!(call(&s, w, "PUT", "/caches/users/entries/u1", b"alice").status, 204);
    assert_eq!(call(&s, r, "GET", "/caches/users/entries/u1", b"").body, b"alice");
    let denied = call(&s, r, "PUT", "/caches/users/entries/u1", b"x");
    assert_eq!((denied.status, denied.error_code().as_str()), (403, "forbidden"));
    assert!(denied.json()["error"]["message"].as_str().unwrap().contains("write scope"));
    let other = call(&s, r, "GET", "/caches/orders/entries/o1", b"");
    assert_eq!(other.status, 403, "a key for users may not read orders");
    assert!(other.json()["error"]["message"].as_str().unwrap().contains("orders"));
    assert_eq!(
        call(&s, r, "GET", "/caches/nope/entries/x", b"").status,
        403,
        "no probing for other caches"
    );
    let listed = call(&s, r, "GET", "/caches", b"").json();
    let names: Vec<&str> =
        listed["caches"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["users"], "a key sees only its caches");
    assert_eq!(
        call(&s, w, "GET", "/caches/users/entries/u1", b"").status,
        403,
        "write is not read"
    );
    assert_eq!(call(&s, w, "POST", "/caches", br#"{"name":"x"}"#).status, 403);
    assert_eq!(call(&s, w, "PATCH", "/caches/users", br#"{"policy":"arc"}"#).status, 403);
    assert_eq!(call(&s, r, "GET", "/keys", b"").status, 403);
    let cfg = call(&s, a, "DELETE", "/caches/orders", b"");
    assert_eq!((cfg.status, cfg.error_code().as_str()), (409, "cache_in_config"));

    // Keys made over the API: shown once, scoped, revocable; config keys are not.
    let made = call(
        &s,
        a,
        "POST",
        "/keys",
        br#"{"name":"orders-ro","scopes":["read"],"caches":["orders"]}"#,
    );
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    let k = made.json()["key"].as_str().unwrap().to_string();
    assert_eq!(call(&s, Some(&k), "GET", "/caches/orders/keys", b"").status, 200);
    assert_eq!(call(&s, Some(&k), "GET", "/caches/users/keys", b"").status, 403);
    let bad = call(&s, a, "POST", "/keys", br#"{"name":"x","scopes":["root"]}"#);
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_json"));
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("root"));
    let dup = call(&s, a, "POST", "/keys", br#"{"name":"writer","scopes":["read"]}"#);
    assert_eq!((dup.status, dup.error_code().as_str()), (409, "key_exists"));
    let list = call(&s, a, "GET", "/keys", b"").json();
    assert_eq!(list["keys"].as_array().unwrap().len(), 4);
    assert!(!String::from_utf8_lossy(&call(&s, a, "GET", "/keys", b"").body).contains(&k[3..]));
    assert_eq!(call(&s, a, "DELETE", "/keys/writer", b"").status, 409, "config keys stay");
    assert_eq!(call(&s, a, "DELETE", "/keys/orders-ro", b"").status, 204);
    assert_eq!(call(&s, Some(&k), "GET", "/caches/orders/keys", b"").status, 401);
    assert_eq!(call(&s, a, "DELETE", "/keys/orders-ro", b"").status, 404);
    s.stop();
}

#[test]
fn stats_clear_set_policy_batches_and_limits() {
    let data = tempfile::tempdir().unwrap();
    let s = serve_with(data.path(), &[], &[("OMNICACHE_MAX_BODY_BYTES", "65536")]);
    let a = s.key.clone();
    let a = a.as_deref();

    // Batches: text and bytes, all or nothing.
    let set = json!({"entries": [
        {"key": "a", "value": "1", "content_type": "text/plain", "tags": ["t"]},
        {"key": "b", "value_base64": "AAH/", "ttl_secs": 100},
        {"key": "c", "value": "{}", "content_type": "application/json"},
    ]});
    let r = call(&s, a, "POST", "/caches/default/batch/set", set.to_string().as_bytes());
    assert_eq!((r.status, r.json()["stored"].clone()), (200, json!(3)));
    let got =
        call(&s, a, "POST", "/caches/default/batch/get", br#"{"keys":["a","b","zz"]}"#).json();
    assert_eq!(got["missing"], json!(["zz"]));
    assert_eq!(got["found"][0]["value"], "1");
    assert_eq!(got["found"][0]["content_type"], "text/plain");
    assert_eq!(got["found"][0]["tags"], json!(["t"]));
    assert_eq!(got["found"][1]["value_base64"], "AAH/");
    assert!(got["found"][1]["ttl_secs"].as_f64().unwrap() > 90.0);
    let raw = call(&s, a, "GET", "/caches/default/entries/b", b"");
    assert_eq!(raw.body, [0, 1, 255]);
    let bad = json!({"entries": [{"key": "ok", "value": "1"}, {"key": "x"}]});
    let r = call(&s, a, "POST", "/caches/default/batch/set", bad.to_string().as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("entries[1]"));
    assert_eq!(call(&s, a, "GET", "/caches/default/entries/ok", b"").status, 404, "all or none");
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let r = call(
        &s,
        a,
        "POST",
        "/caches/default/batch/get",
        json!({"keys": many}).to_string().as_bytes(),
    );
    assert_eq!(r.error_code(), "batch_too_large");

    // Stats add up: 2 hits (a, c), 1 miss.
    call(&s, a, "POST", "/caches", br#"{"name":"st"}"#);
    call(&s, a, "PUT", "/caches/st/entries/x", b"1");
    call(&s, a, "GET", "/caches/st/entries/x", b"");
    call(&s, a, "GET", "/caches/st/entries/x", b"");
    call(&s, a, "GET", "/caches/st/entries/nope", b"");
    let st = call(&s, a, "GET", "/caches/st/stats", b"").json();
    assert_eq!((st["hits"].clone(), st["misses"].clone()), (json!(2), json!(1)), "{st}");
    assert_eq!(st["policy"], "s3fifo");
    assert_eq!(st["tiers"][0]["tier"], "disk");
    assert!(st["tiers"][0]["writes"].as_u64().unwrap() >= 1);

    // Policy switch keeps entries; a bad name is a 400 naming the known ones.
    let p = call(&s, a, "PATCH", "/caches/st", br#"{"policy":"arc"}"#).json();
    assert_eq!((p["policy"].clone(), p["l1_entries"].clone()), (json!("arc"), json!(1)));
    let bad = call(&s, a, "PATCH", "/caches/st", br#"{"policy":"fifo"}"#);
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_json"));
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("wtinylfu"));

    // The learned policy end to end: a 50-entry memory layer evicts by LRB, the disk keeps
    // the rest, and every key still reads back.
    let r =
        call(&s, a, "POST", "/caches", br#"{"name":"learned","policy":"lrb","l1_capacity":50}"#);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for i in 0..200 {
        let path = format!("/caches/learned/entries/k{i}");
        assert!(call(&s, a, "PUT", &path, i.to_string().as_bytes()).status < 300);
    }
    for round in 0..3 {
        for i in (0..200).filter(|i| round == 0 || i % 4 == 0) {
            let r = call(&s, a, "GET", &format!("/caches/learned/entries/k{i}"), b"");
            assert_eq!((r.status, r.body), (200, i.to_string().into_bytes()), "k{i}");
        }
    }
    let info = call(&s, a, "GET", "/caches/learned", b"").json();
    assert_eq!(info["policy"], "lrb", "{info}");
    let held = info["l1_entries"].as_u64().unwrap();
    assert!((1..=50).contains(&held), "the memory layer keeps its bound: {held}");

    // Clear empties memory and the tiers.
    let c = call(&s, a, "POST", "/caches/st/clear", b"").json();
    assert!(c["removed"].as_u64().unwrap() >= 1);
    assert_eq!(call(&s, a, "GET", "/caches/st/entries/x", b"").status, 404);

    // Limits and malformed input: JSON errors with the right status, never a crash.
    let big = vec![b'x'; 70_000];
    let r = call(&s, a, "PUT", "/caches/default/entries/big", &big);
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    let long = format!("/caches/default/entries/{}", "k".repeat(1025));
    assert_eq!(call(&s, a, "GET", &long, b"").status, 414);
    // Past the HTTP layer's own line limit, the same kind of JSON error (hyper's is bodyless).
    let huge = format!("/caches/default/entries/{}", "k".repeat(100_000));
    let r = call(&s, a, "GET", &huge, b"");
    assert_eq!((r.status, r.error_code().as_str()), (414, "uri_too_long"));
    let r = call(&s, a, "POST", "/caches/default/invalidate", b"{\"by\":");
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_json"));
    let r = call(&s, a, "POST", "/caches/default/invalidate", br#"{"by":"colour","value":"red"}"#);
    assert_eq!(r.status, 400);
    let r = request(
        &s.addr,
        "POST",
        "/caches/default/batch/get",
        &[("Authorization", &format!("Bearer {}", a.unwrap())), ("Content-Type", "text/plain")],
        br#"{"keys":[]}"#,
    );
    assert_eq!(r.status, 400, "a wrong content type is a 400 in JSON: {}", r.error_code());
    let r = call(&s, a, "GET", "/caches/default/keys?limit=lots", b"");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    let r = call(&s, a, "DELETE", "/caches", b"");
    assert_eq!((r.status, r.error_code().as_str()), (405, "method_not_allowed"));
    assert_eq!(call(&s, a, "GET", "/nowhere", b"").error_code(), "not_found");
    assert_eq!(call(&s, a, "GET", "/caches/nope/stats", b"").error_code(), "cache_not_found");
    let r = call(&s, a, "POST", "/caches/default/invalidate", br#"{"by":"tag","value":"t"}"#);
    assert_eq!(r.json()["removed"], 1);

    // The served document is the checked-in one.
    let served = call(&s, None, "GET", "/openapi.json", b"").json();
    let docs: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(served, docs);
    s.stop();
}

#[test]
fn warm_export_and_import_over_http_keep_values_ttls_tags_and_content_types() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(data.path());
    let a = s.key.clone();
    let a = a.as_deref();
    let csv = b"key,value,ttl_secs,tags\nu1,alice,3600,users|vip\nu2,bob,,users\nbad-row\n";
    let r = request(
        &s.addr,
        "POST",
        "/caches/default/warm",
        &[("Authorization", &format!("Bearer {}", a.unwrap())), ("Content-Type", "text/csv")],
        csv,
    );
    let rep = r.json();
    assert_eq!((rep["loaded"].clone(), rep["skipped"][0]["line"].clone()), (json!(2), json!(4)));
    let jsonl = b"{\"key\":\"j\",\"value\":{\"n\":1}}\n{\"key\":\"h\",\"value_hex\":\"00ff\",\"content_type\":\"image/x\"}\n";
    let rep = call(&s, a, "POST", "/caches/default/warm?format=jsonl", jsonl).json();
    assert_eq!(rep["loaded"], 2);
    let j = call(&s, a, "GET", "/caches/default/entries/j", b"");
    assert!(j.headers.contains("content-type: application/json"), "{}", j.headers);
    let u1 = call(&s, a, "GET", "/caches/default/entries/u1", b"");
    assert!(u1.headers.contains("content-type: text/plain"), "{}", u1.headers);

    let export = call(&s, a, "GET", "/caches/default/export", b"");
    assert!(export.headers.contains("application/x-ndjson"));
    let text = String::from_utf8(export.body).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    let u1 = lines.iter().find(|l| l["key"] == "u1").unwrap();
    assert_eq!(u1["value"], "alice");
    assert_eq!(u1["tags"], json!(["users", "vip"]));
    assert!(u1["ttl_ms"].as_u64().unwrap() > 3_000_000);
    assert_eq!(u1["content_type"], "text/plain; charset=utf-8");
    let h = lines.iter().find(|l| l["key"] == "h").unwrap();
    assert_eq!(
        (h["value_hex"].clone(), h["content_type"].clone()),
        (json!("00ff"), json!("image/x"))
    );
    let only = call(&s, a, "GET", "/caches/default/export?prefix=u", b"");
    assert_eq!(String::from_utf8(only.body).unwrap().lines().count(), 2);

    call(&s, a, "POST", "/caches/default/clear", b"");
    let rep = call(&s, a, "POST", "/caches/default/import", text.as_bytes()).json();
    assert_eq!(rep["loaded"], 4);
    let h = call(&s, a, "GET", "/caches/default/entries/h", b"");
    assert_eq!(h.body, [0, 255]);
    assert!(h.headers.contains("content-type: image/x"));
    let r = call(&s, a, "POST", "/caches/default/invalidate", br#"{"by":"tag","value":"vip"}"#);
    assert_eq!(r.json()["removed"], 1, "tags survived the round trip");
    s.stop();
}

#[test]
fn the_cli_drives_a_server_with_tables_json_and_exit_codes() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(data.path());
    let key = s.key.clone().unwrap();
    let k = key.as_str();

    ok(cli(
        &s,
        k,
        &["cache", "create", "users", "--policy", "lru", "--capacity", "1000", "--ttl", "60"],
    ));
    let listed = ok(cli(&s, k, &["cache", "list"]));
    assert!(
        listed.contains("NAME") && listed.contains("users") && listed.contains("lru"),
        "{listed}"
    );
    let j: Value = serde_json::from_str(&ok(cli(&s, k, &["cache", "list", "--json"]))).unwrap();
    assert_eq!(j["caches"].as_array().unwrap().len(), 2);

    ok(cli(
        &s,
        k,
        &[
            "entry",
            "set",
            "users",
            "alice",
            "{\"plan\":\"pro\"}",
            "--content-type",
            "application/json",
            "--tags",
            "a,b",
        ],
    ));
    assert_eq!(ok(cli(&s, k, &["entry", "get", "users", "alice"])), "{\"plan\":\"pro\"}");
    let j: Value =
        serde_json::from_str(&ok(cli(&s, k, &["entry", "get", "users", "alice", "--json"])))
            .unwrap();
    assert_eq!(j["content_type"], "application/json");
    let file = data.path().join("bytes.bin");
    std::fs::write(&file, [0u8, 1, 2, 255]).unwrap();
    ok(cli(
        &s,
        k,
        &["entry", "set", "users", "a key/with spaces", "--file", file.to_str().unwrap()],
    ));
    let out = data.path().join("out.bin");
    ok(cli(&s, k, &["entry", "get", "users", "a key/with spaces", "-o", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), [0, 1, 2, 255]);
    let keys = ok(cli(&s, k, &["entry", "list", "users"]));
    assert_eq!(keys.lines().collect::<Vec<_>>(), ["a key/with spaces", "alice"]);

    let info = ok(cli(&s, k, &["cache", "info", "users"]));
    assert!(info.contains("policy:   lru") && info.contains("disk"), "{info}");
    let sp = ok(cli(&s, k, &["cache", "set-policy", "users", "wtinylfu"]));
    assert!(sp.contains("wtinylfu") && sp.contains("2 entries kept"), "{sp}");
    let stats = ok(cli(&s, k, &["cache", "stats", "users"]));
    assert!(stats.contains("hit ratio") && stats.contains("TIER"), "{stats}");

    let export = data.path().join("users.jsonl");
    ok(cli(&s, k, &["export", "users", "-o", export.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 2);
    let cleared = ok(cli(&s, k, &["cache", "clear", "users"]));
    assert!(cleared.contains("removed"), "{cleared}");
    let missing = cli(&s, k, &["entry", "get", "users", "alice"]);
    assert_eq!(missing.status.code(), Some(1), "not found is a failure");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("entry_not_found"));
    let imported = ok(cli(&s, k, &["import", export.to_str().unwrap(), "--cache", "users"]));
    assert!(imported.contains("2 entries loaded"), "{imported}");
    assert_eq!(ok(cli(&s, k, &["entry", "get", "users", "alice"])), "{\"plan\":\"pro\"}");
    let warm = data.path().join("w.csv");
    std::fs::write(&warm, "x,1\ny\n").unwrap();
    let partial = cli(&s, k, &["warm", warm.to_str().unwrap(), "--cache", "users"]);
    assert_eq!(partial.status.code(), Some(1), "skipped rows are a failure, after the report");
    let warmed = stdout(&partial);
    assert!(
        warmed.contains("1 entries loaded, 1 rows skipped") && warmed.contains("line 2"),
        "{warmed}"
    );
    assert!(String::from_utf8_lossy(&partial.stderr).contains("1 rows were skipped"));
    // --json: results and errors as JSON, on stdout.
    let set = ok(cli(&s, k, &["entry", "set", "users", "bob", "v", "--json"]));
    let set: Value = serde_json::from_str(&set).unwrap();
    assert_eq!((set["stored"].as_bool(), set["key"].as_str()), (Some(true), Some("bob")));
    let err = cli(&s, k, &["entry", "get", "nocache", "bob", "--json"]);
    assert_eq!(err.status.code(), Some(1));
    let err: Value = serde_json::from_str(&stdout(&err)).unwrap();
    assert_eq!(err["error"]["code"], "cache_not_found");
    let usage = cli(&s, k, &["sim", "/no/such/trace.gz", "--json"]);
    assert_ne!(usage.status.code(), Some(0));

    let made = ok(cli(&s, k, &["key", "create", "ro", "--scope", "read", "--cache", "users"]));
    let ro = made.trim();
    assert!(ro.starts_with("oc_"), "{made}");
    let keys = ok(cli(&s, k, &["key", "list"]));
    assert!(keys.contains("ro") && keys.contains("users"), "{keys}");
    let refused = cli(&s, ro, &["entry", "delete", "users", "alice"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));
    ok(cli(&s, k, &["key", "revoke", "ro"]));

    let bad = cli(&s, k, &["cache", "create", "Bad Name"]);
    assert_eq!(bad.status.code(), Some(2), "a request the server calls invalid exits 2");
    let fifo = cli(&s, k, &["cache", "create", "ok", "--policy", "fifo"]);
    assert_eq!(fifo.status.code(), Some(2));
    let said = String::from_utf8_lossy(&fifo.stderr);
    assert!(said.contains("unknown policy; expected one of s3fifo, lru"), "{said}");
    assert!(!said.contains("variant"), "not serde's words: {said}");
    let trace = data.path().join("t.keys");
    std::fs::write(&trace, "a\nb\na\n").unwrap();
    let zero = bin().args(["sim", trace.to_str().unwrap(), "--size", "0"]).output().unwrap();
    assert_eq!(zero.status.code(), Some(2), "a cache of no entries is a usage error");
    let moka = bin().args(["sim", trace.to_str().unwrap(), "--policy", "moka"]).output().unwrap();
    let said = String::from_utf8_lossy(&moka.stderr);
    assert!(said.matches("default").count() == 1 && said.contains("bench's sim"), "{said}");
    let bad_key = cli(&s, "oc_wrong", &["cache", "list"]);
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("OMNICACHE_API_KEY"));
    // Connection flags before the command work too.
    let server = format!("http://{}", s.addr);
    let mut first = bin();
    first.args(["--server", &server, "--api-key", k, "--json", "cache", "list"]);
    let first = ok(first.env_remove("OMNICACHE_SERVER").output().unwrap());
    assert!(serde_json::from_str::<Value>(&first).unwrap()["caches"].is_array(), "{first}");
    let usage = bin().args(["entry", "get"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let nowhere = bin()
        .args(["cache", "list", "--server", "http://127.0.0.1:9", "--api-key", "x"])
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("omnicache serve"));

    ok(cli(&s, k, &["entry", "delete", "users", "alice"]));
    ok(cli(&s, k, &["cache", "delete", "users"]));
    assert_eq!(cli(&s, k, &["cache", "info", "users"]).status.code(), Some(1));
    s.stop();
}

#[test]
fn a_bad_config_is_rejected_at_start_with_file_key_and_reason() {
    let data = tempfile::tempdir().unwrap();
    let config = write_config(data.path(), "[caches.users]\nl1_capacity = \"lots\"\n");
    let out = bin()
        .args(["serve", "--config", config.to_str().unwrap(), "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("omnicache.toml") && err.contains("caches.users.l1_capacity"), "{err}");
    let out = bin()
        .args(["serve", "--data"])
        .arg(data.path())
        .env("OMNICACHE_CACHES__USERS__POLICY", "fifo")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("caches.users.policy: unknown policy"), "{err}");
}

#[test]
fn tls_serves_https_to_a_client_that_trusts_the_certificate() {
    let data = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = data.path().join("cert.pem");
    let key_path = data.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = write_config(
        data.path(),
        &format!("[tls]\ncert = {:?}\nkey = {:?}\n", cert_path.display(), key_path.display()),
    );
    let s = serve_with(data.path(), &["--config", config.to_str().unwrap()], &[]);
    let key = s.key.clone().unwrap();
    let url = format!("https://{}", s.addr);
    let list = bin()
        .args(["cache", "list", "--json", "--server", &url, "--api-key", &key, "--ca-cert"])
        .arg(&cert_path)
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(stdout(&list).contains("default"));
    let untrusted =
        bin().args(["cache", "list", "--server", &url, "--api-key", &key]).output().unwrap();
    assert_eq!(untrusted.status.code(), Some(1), "an unknown certificate is refused");
    let mut plain = std::net::TcpStream::connect(&s.addr).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    plain.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "no plain HTTP on a TLS port");
    s.stop();
}

#[test]
fn sigterm_during_write_behind_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let config = write_config(
        data.path(),
        "[caches.wb]\nl1_capacity = 100000\n[[caches.wb.tiers]]\nkind = \"disk\"\nwrite = \"behind\"\n",
    );
    let args = ["--config", config.to_str().unwrap()];
    let s = serve_with(data.path(), &args, &[]);
    let a = s.key.clone();
    let a = a.as_deref();
    let mut acknowledged = Vec::new();
    for batch in 0..5 {
        let entries: Vec<Value> = (0..1000)
            .map(|i| json!({"key": format!("k{batch}-{i}"), "value": format!("v{i}")}))
            .collect();
        let r = call(
            &s,
            a,
            "POST",
            "/caches/wb/batch/set",
            json!({"entries": entries}).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200);
        acknowledged.extend((0..1000).map(|i| format!("k{batch}-{i}")));
    }
    for i in 0..300 {
        let r = call(&s, a, "PUT", &format!("/caches/wb/entries/single-{i}"), b"x");
        assert_eq!(r.status, 204);
        acknowledged.push(format!("single-{i}"));
    }
    assert!(s.stop().success(), "a clean exit after SIGTERM");
    let s = serve_with(data.path(), &args, &[]);
    let key = std::fs::read_to_string(data.path().join("admin.key")).unwrap();
    let k = Some(key.trim());
    let mut lost = 0;
    for chunk in acknowledged.chunks(1000) {
        let got = call(
            &s,
            k,
            "POST",
            "/caches/wb/batch/get",
            json!({"keys": chunk}).to_string().as_bytes(),
        )
        .json();
        lost += got["missing"].as_array().unwrap().len();
    }
    assert_eq!(lost, 0, "every acknowledged write reached the disk tier before exit");
    s.stop();
}

#[test]
fn sim_replays_traces_as_a_table_csv_and_svg_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("loop.txt");
    let keys: String = (0..2000).map(|i| format!("k{}\n", i % 50)).collect();
    std::fs::write(&trace, keys).unwrap();
    let plot = dir.path().join("hits.svg");
    let out = bin()
        .args(["sim", trace.to_str().unwrap(), "--policy", "lru,arc,opt", "--size", "10,100%"])
        .args(["--format", "csv", "--plot", plot.to_str().unwrap()])
        .output()
        .unwrap();
    let csv = ok(out);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("trace,policy,size,requests,hits,hit_ratio"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "3 policies x 2 sizes: {csv}");
    let at = |p: &str, size: &str| {
        rows.iter().find(|r| r[1] == p && r[2] == size).unwrap()[4].parse::<u64>().unwrap()
    };
    assert_eq!(at("lru", "10"), 0, "a 50-key loop thrashes a 10-entry LRU");
    assert_eq!(at("opt", "50"), 1950, "with room for all 50 keys only the first pass misses");
    assert!(at("opt", "10") > at("arc", "10"));
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    let table =
        ok(bin().args(["sim", trace.to_str().unwrap(), "--policy", "default"]).output().unwrap());
    assert!(table.contains("default"), "{table}");

    let bad = bin().args(["sim", trace.to_str().unwrap(), "--policy", "fifo"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown policy"));
    let lis = dir.path().join("bad.lis");
    std::fs::write(&lis, "1 2 0 0\nnot a row\n").unwrap();
    let bad = bin().args(["sim", lis.to_str().unwrap()]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let missing = bin().args(["sim", "/no/such/trace"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// Complaints over REST and the CLI: counted, forgotten by a write, and the third within the
/// window invalidates the entry everywhere.
#[test]
fn complaints_invalidate_an_entry_after_the_threshold_and_a_write_resets_them() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(data.path());
    let key = s.key.clone().unwrap();
    let a = Some(key.as_str());
    assert_eq!(call(&s, a, "PUT", "/caches/default/entries/profile", b"v1").status, 204);
    let out = ok(cli(&s, &key, &["entry", "complain", "default", "profile", "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!({"complaints": 1, "invalidated": false}));
    let r = call(&s, a, "POST", "/caches/default/entries/profile/complaints", b"");
    assert_eq!(r.json(), json!({"complaints": 2, "invalidated": false}));
    // A fresh write: its value has had no complaint yet.
    assert_eq!(call(&s, a, "PUT", "/caches/default/entries/profile", b"v2").status, 204);
    for n in 1..=2 {
        let r = call(&s, a, "POST", "/caches/default/entries/profile/complaints", b"");
        assert_eq!(r.json(), json!({"complaints": n, "invalidated": false}));
    }
    let out = ok(cli(&s, &key, &["entry", "complain", "default", "profile"]));
    assert!(out.contains("invalidated after 3 complaints"), "{out}");
    assert_eq!(call(&s, a, "GET", "/caches/default/entries/profile", b"").status, 404);
    let stats = call(&s, a, "GET", "/caches/default/stats", b"").json();
    assert_eq!(stats["removals"]["health"], 1, "{stats}");
    s.stop();
}
