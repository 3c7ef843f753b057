//! Secrets stay secret, end to end through the real binary: a server with an encryption key
//! file, a cache encrypting over a password-protected Redis, an API key created, failed logins,
//! personal data written, Redis killed mid-run, the key file rotated offline and the old key
//! retired after a restart. Its whole log, every API response (but the one that hands out the
//! new key, and the reads that return the value to its owner) and every file of the data
//! directory an operator might share (audit log, journals, specs) are searched for each secret.

mod common;

use common::{bin, request, serve_logging};
use std::process::{Command, Stdio};

fn redis_with_password(password: &str) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--requirepass", password])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start redis-server ({e}): install it with `apt-get install redis-server` (cargo xtask ci does)"));
    let mut child = child;
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not listen on {port}");
}

#[test]
fn no_secret_reaches_a_log_line_a_response_or_a_shared_file() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys.json");
    let keys_arg = keys.to_str().unwrap();
    assert!(bin().args(["security", "keygen", "--keys", keys_arg]).status().unwrap().success());
    let password = "pw-redis-9c1e77";
    let (mut redis, port) = redis_with_password(password);
    let config = tmp.path().join("omnicache.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nkey_file = {keys:?}\n\n[caches.vault]\nencrypt = true\n\
             [[caches.vault.tiers]]\nkind = \"disk\"\n\
             [[caches.vault.tiers]]\nkind = \"redis\"\nurl = \"redis://:{password}@127.0.0.1:{port}/0\"\nwrite = \"behind\"\ntimeout_ms = 200\n"
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let log1 = tmp.path().join("server1.log");
    let s = serve_logging(&data, &args, &[], Some(&log1));
    let admin = s.key.clone().expect("the admin key");
    let value = "ssn 536-90-4399, card 4111 1111 1111 1111, the-cached-value-b7e2";
    let mut shown = Vec::new(); // every response an operator or client could see
    let mut call = |addr: &str, method: &str, path: &str, auth: &str, body: &[u8], keep: bool| {
        let bearer = format!("Bearer {auth}");
        let h = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
        let r = request(addr, method, path, &h, body);
        if keep {
            shown.push(format!(
                "{method} {path} -> {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        r
    };
    let a = s.addr.clone();
    // An API key made: its secret is in this one response only.
    let made = call(
        &a,
        "POST",
        "/keys",
        &admin,
        br#"{"name": "svc", "scopes": ["read", "write"]}"#,
        false,
    );
    assert_eq!(made.status, 201);
    let api_key = made.json()["key"].as_str().unwrap().to_string();
    // Failed logins, one with a key that looks real.
    let wrong = "oc_0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(call(&a, "GET", "/caches", wrong, b"", true).status, 401);
    assert_eq!(call(&a, "GET", "/caches", "not-even-a-key", b"", true).status, 401);
    // Personal data written and read back by its owner.
    assert!(
        call(&a, "PUT", "/caches/vault/entries/p1", &api_key, value.as_bytes(), true).status < 300
    );
    assert_eq!(
        call(&a, "GET", "/caches/vault/entries/p1", &api_key, b"", false).body,
        value.as_bytes()
    );
    // Redis goes away: writes and reads go on, /ready says so.
    let _ = redis.kill();
    let _ = redis.wait();
    assert!(
        call(&a, "PUT", "/caches/vault/entries/p2", &api_key, value.as_bytes(), true).status < 300
    );
    for path in [
        "/ready",
        "/caches",
        "/caches/vault",
        "/caches/vault/stats",
        "/keys",
        "/security/audit/head",
    ] {
        call(&a, "GET", path, &admin, b"", true);
    }
    s.stop();

    // Rotate offline, restart, retire the old key through the API.
    assert!(bin().args(["security", "rotate", "--keys", keys_arg]).status().unwrap().success());
    let log2 = tmp.path().join("server2.log");
    let s = serve_logging(&data, &args, &[], Some(&log2));
    let a = s.addr.clone();
    assert_eq!(
        call(&a, "GET", "/caches/vault/entries/p1", &admin, b"", false).body,
        value.as_bytes()
    );
    call(&a, "POST", "/security/keys/1/retire?force=true", &admin, b"", true);
    call(&a, "GET", "/caches/vault/stats", &admin, b"", true);
    s.stop();

    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&keys).unwrap()).unwrap();
    let materials: Vec<String> = file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(materials.len(), 2);
    let mut seen = std::fs::read_to_string(&log1).unwrap();
    seen.push_str(&std::fs::read_to_string(&log2).unwrap());
    seen.push_str(&shown.join("\n"));
    for name in std::fs::read_dir(&data).unwrap() {
        let p = name.unwrap().path();
        let file = p.file_name().unwrap().to_string_lossy().to_string();
        // The admin key's own file holds it by design (owner-only); SQLite holds ciphertext.
        if file == "admin.key" || file.ends_with(".db") || file.contains(".db-") {
            continue;
        }
        if p.is_file() {
            seen.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    let mut secrets: Vec<(&str, &str)> = vec![
        ("the admin key", admin.as_str()),
        ("the created API key", api_key.as_str()),
        ("a key presented at a failed login", wrong),
        ("the Redis password", password),
        ("a cached value", "the-cached-value-b7e2"),
        ("an SSN in a value", "536-90-4399"),
    ];
    for m in &materials {
        secrets.push(("encryption key material", m.as_str()));
    }
    for (what, secret) in secrets {
        assert!(
            !seen.contains(secret),
            "{what} leaked into a log line, a response or a file:\n{seen}"
        );
    }
    assert!(seen.contains("key.retire"), "the audit log was searched too");
}
