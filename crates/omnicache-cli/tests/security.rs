//! Encryption at rest through the real binary: a key file made and rotated by `omnicache
//! security`, a cache with `encrypt` and `compress` in the config, no plaintext in its SQLite
//! file, values served across a rotation and a restart, and no key material in any response,
//! listing or log line.

mod common;

use common::{bin, contains, raw, request, serve_logging, Reply, Server};

fn call(s: &Server, method: &str, path: &str, body: &[u8]) -> Reply {
    // A restarted server prints no key: it is in the data directory's admin.key.
    let key = s.key.clone().unwrap_or_else(|| ADMIN.with(|k| k.borrow().clone()));
    let auth = format!("Bearer {key}");
    let json = ("Content-Type", "application/json");
    request(&s.addr, method, path, &[("Authorization", &auth), json], body)
}

thread_local! {
    static ADMIN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn security(args: &[&str]) -> std::process::Output {
    bin().arg("security").args(args).output().unwrap()
}

#[test]
fn an_encrypted_cache_keeps_ciphertext_on_disk_and_serves_across_rotation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let keys_arg = keys.to_str().unwrap();
    let out = security(&["keygen", "--keys", keys_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(security(&["keygen", "--keys", keys_arg]).status.code(), Some(2), "no overwrite");
    let material: String =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&keys).unwrap()).unwrap()
            ["keys"][0]["key"]
            .as_str()
            .unwrap()
            .to_string();

    let config = dir.path().join("omnicache.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nkey_file = {keys:?}\n\n[caches.vault]\nencrypt = true\ncompress = true\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let args = ["--config", config.to_str().unwrap()];
    let s = serve_logging(&data, &args, &[], Some(&log));
    ADMIN.with(|k| *k.borrow_mut() = s.key.clone().unwrap());
    let secret = b"account 4711: balance confidential-figure-9931".repeat(20);
    assert!(call(&s, "PUT", "/caches/vault/entries/acct", &secret).status < 300);
    let info = call(&s, "GET", "/caches/vault", b"");
    assert_eq!(info.json()["spec"]["encrypt"], true, "{}", String::from_utf8_lossy(&info.body));
    let vault_dir = omnicache_server::cache_db_path(&data, "vault");
    let on_disk = raw(vault_dir.parent().unwrap());
    assert!(!contains(&on_disk, b"confidential-figure"), "no plaintext in the cache's files");
    assert_eq!(call(&s, "GET", "/caches/vault/entries/acct", b"").body, secret);
    let mut responses = info.body.clone();
    responses.extend(call(&s, "GET", "/caches", b"").body);
    s.stop();

    // Rotate offline; after a restart old entries still read, new ones use key 2.
    let out = security(&["rotate", "--keys", keys_arg]);
    assert!(out.status.success());
    let listed = security(&["keys", "--keys", keys_arg, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[1]["primary"], true);
    assert_eq!(list[0]["state"], "decrypt_only");
    let log2 = dir.path().join("server2.log");
    let s = serve_logging(&data, &args, &[], Some(&log2));
    assert_eq!(call(&s, "GET", "/caches/vault/entries/acct", b"").body, secret, "key 1 decrypts");
    assert!(call(&s, "PUT", "/caches/vault/entries/new", b"fresh value").status < 300);
    assert_eq!(call(&s, "GET", "/caches/vault/entries/new", b"").body, b"fresh value");
    // At start the server rewrites what is stored under key 1 in the background.
    let rewritten = (0..1_000).any(|_| {
        let text = std::fs::read_to_string(&log2).unwrap_or_default();
        let done = text.contains("cache \"vault\": 1 of ");
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        done
    });
    assert!(rewritten, "{}", std::fs::read_to_string(&log2).unwrap_or_default());

    // So key 1 can be retired (the command runs a pass first, then writes the key file); the
    // primary cannot.
    let retire = |id: &str| {
        bin()
            .args(["security", "retire", id, "--json"])
            .env("OMNICACHE_SERVER", format!("http://{}", s.addr))
            .env("OMNICACHE_API_KEY", ADMIN.with(|k| k.borrow().clone()))
            .output()
            .unwrap()
    };
    let out = retire("1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((done["left"].clone(), done["forced"].clone()), (0.into(), false.into()));
    let refused = retire("2");
    assert!(!refused.status.success());
    let why = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stderr),
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(why.contains("rotate first"), "{why}");
    let listed = security(&["keys", "--keys", keys_arg, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list[0]["state"], "retired", "written back to the key file");
    s.stop();
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    assert!(audit.contains("\"key.retire\""), "retirement is audited");
    assert!(audit.contains("\"key.rotate\""), "the offline rotation is audited at the next start");
    assert!(audit.contains("primary 1 -> 2"), "{audit}");

    // Everything still reads after a restart with key 1 retired.
    let s = serve_logging(&data, &args, &[], Some(&log2));
    assert_eq!(call(&s, "GET", "/caches/vault/entries/acct", b"").body, secret, "under key 2 now");
    s.stop();

    // The key material is nowhere but the key file.
    let mut everything = std::fs::read(&log).unwrap();
    everything.extend(std::fs::read(&log2).unwrap());
    everything.extend(responses);
    everything.extend(listed.stdout);
    everything.extend(raw(&data));
    assert!(!contains(&everything, material.as_bytes()), "key material leaked");
}

#[test]
fn a_bad_key_file_stops_the_server_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, "{\"primary\": 1, \"keys\": []}").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let config = dir.path().join("omnicache.toml");
    std::fs::write(
        &config,
        format!("[security]\nkey_file = {keys:?}\n\n[caches.vault]\nencrypt = true\n"),
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.key_file") && err.contains("0600"), "{err}");
}

#[test]
fn the_audit_log_records_admin_actions_and_failed_logins_and_verify_catches_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let s = serve_logging(&data, &[], &[], Some(&log));
    ADMIN.with(|k| *k.borrow_mut() = s.key.clone().unwrap());
    let made = call(&s, "POST", "/keys", br#"{"name":"reader","scopes":["read"]}"#);
    assert_eq!(made.status, 201);
    let secret = made.json()["key"].as_str().unwrap().to_string();
    assert_eq!(call(&s, "POST", "/caches", br#"{"name":"t1"}"#).status, 201);
    assert!(call(&s, "POST", "/caches/t1/clear", b"").status < 300);
    assert_eq!(call(&s, "DELETE", "/caches/t1", b"").status, 204);
    assert_eq!(call(&s, "DELETE", "/caches/nope", b"").status, 404);
    let bad = request(&s.addr, "GET", "/caches", &[("Authorization", "Bearer wrong")], b"");
    assert_eq!(bad.status, 401);
    let head = call(&s, "GET", "/security/audit/head", b"").json();
    s.stop();

    let text = std::fs::read_to_string(data.join("audit.log")).unwrap();
    let actions: Vec<(String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| (r["action"].as_str().unwrap().into(), r["outcome"].as_str().unwrap().into()))
        .collect();
    let has = |a: &str, o: &str| actions.iter().any(|(x, y)| x == a && y == o);
    assert!(
        has("key.create", "ok") && has("cache.create", "ok") && has("cache.clear", "ok"),
        "{actions:?}"
    );
    assert!(has("cache.delete", "ok") && has("cache.delete", "cache_not_found"), "{actions:?}");
    assert!(has("auth.invalid_key", "unauthorized"), "{actions:?}");
    assert_eq!(head["seq"].as_u64().unwrap() as usize, actions.len());
    assert!(!text.contains(&secret), "an API key's secret is never audited");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("audit.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let verify =
        || bin().args(["security", "audit", "verify", "--data"]).arg(&data).output().unwrap();
    let ok = verify();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(head["hash"].as_str().unwrap()));
    let edited = text.replacen("\"cache.clear\"", "\"cache.stats\"", 1);
    std::fs::write(data.join("audit.log"), edited).unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("tampered at line 3"), "{err}");
}

#[test]
fn erasing_a_subject_leaves_nothing_of_it_in_memory_or_in_the_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve_logging(&data, &[], &[], None);
    ADMIN.with(|k| *k.borrow_mut() = s.key.clone().unwrap());
    for i in 0..50 {
        let (who, marker) =
            if i % 2 == 0 { ("alice", "alice-private") } else { ("bob", "bob-private") };
        let path = format!("/caches/default/entries/k{i}?subject={who}");
        let body = format!("{marker}-record-{i:03}").repeat(10);
        assert!(call(&s, "PUT", &path, body.as_bytes()).status < 300);
    }
    // The header works too.
    let auth = format!("Bearer {}", s.key.as_deref().unwrap());
    let r = request(
        &s.addr,
        "PUT",
        "/caches/default/entries/h1",
        &[("Authorization", &auth), ("X-Data-Subject", "alice")],
        b"alice-private-by-header",
    );
    assert!(r.status < 300);

    // Export first: every entry of alice, from every cache, and nothing of bob.
    let exported = bin()
        .args(["security", "export", "alice"])
        .env("OMNICACHE_SERVER", format!("http://{}", s.addr))
        .env("OMNICACHE_API_KEY", s.key.as_deref().unwrap())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let records: Vec<serde_json::Value> = String::from_utf8(exported.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 26, "25 by query, 1 by header");
    assert!(records.iter().all(|r| r["subject"] == "alice" && r["cache"] == "default"));
    assert!(records.iter().any(|r| r["value"].as_str().unwrap().starts_with("alice-private")));

    let out = bin()
        .args(["security", "erase", "alice", "--json"])
        .env("OMNICACHE_SERVER", format!("http://{}", s.addr))
        .env("OMNICACHE_API_KEY", s.key.as_deref().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let default =
        report["caches"].as_array().unwrap().iter().find(|c| c["cache"] == "default").unwrap();
    assert_eq!(default["tiers"][0], 26, "{report}");
    assert_eq!(default["memory"], 26);
    assert_eq!(report["complete"], true);
    assert_eq!(call(&s, "GET", "/caches/default/entries/k0", b"").status, 404);
    assert_eq!(call(&s, "GET", "/caches/default/entries/h1", b"").status, 404);
    assert_eq!(call(&s, "GET", "/caches/default/entries/k1", b"").status, 200, "bob stays");
    s.stop();

    let db = omnicache_server::cache_db_path(&data, "default");
    let on_disk = raw(db.parent().unwrap());
    assert!(!contains(&on_disk, b"alice-private"), "nothing of the erased subject on disk");
    assert!(contains(&on_disk, b"bob-private"), "the raw read does see what is there");
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    assert!(audit.contains("\"subject.erase\"") && audit.contains("\"alice\""));
    assert!(audit.contains("\"subject.export\""));
}

#[test]
fn a_broken_audit_log_is_kept_aside_and_a_new_chain_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve_logging(&data, &[], &[], None);
    ADMIN.with(|k| *k.borrow_mut() = s.key.clone().unwrap());
    assert_eq!(call(&s, "POST", "/caches", br#"{"name":"t1"}"#).status, 201);
    s.stop();
    // A crash mid-record: half a line at the end.
    let mut text = std::fs::read(data.join("audit.log")).unwrap();
    text.extend_from_slice(br#"{"seq":2,"time_ms":"#);
    std::fs::write(data.join("audit.log"), text).unwrap();
    let log = dir.path().join("server.log");
    let s = serve_logging(&data, &[], &[], Some(&log));
    assert_eq!(call(&s, "GET", "/health", b"").status, 200, "the server still starts");
    s.stop();
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("audit.log.broken-"));
    assert!(kept, "the broken log is kept as evidence");
    let fresh = std::fs::read_to_string(data.join("audit.log")).unwrap();
    assert!(fresh.lines().next().unwrap().contains(r#""audit.restart""#), "{fresh}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("line 2"));
}
