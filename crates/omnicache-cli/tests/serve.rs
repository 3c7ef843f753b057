//! `omnicache serve` end to end: the real binary on a free port with a temporary data dir,
//! driven over raw HTTP: health, readiness, keys, entries, errors, limits, SIGTERM and restart.

mod common;

use common::{request, serve, serve_with};
use std::process::Command;

#[test]
fn the_embedded_default_serves_entries_behind_its_key_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    // One worker thread here; the restart below runs the default, one per core.
    let server = serve_with(data.path(), &["--workers", "1"], &[]);
    let key = server.key.clone().expect("the first start makes the admin key");
    let auth = format!("Bearer {key}");
    let a = server.addr.clone();
    let with_key = [("Authorization", auth.as_str())];

    assert_eq!(request(&a, "GET", "/health", &[], b"").status, 200);
    let anonymous = request(&a, "GET", "/ready", &[], b"").json();
    assert_eq!(anonymous, serde_json::json!({"status": "ready"}), "no cache names without a key");
    let ready = request(&a, "GET", "/ready", &with_key, b"");
    assert_eq!(ready.status, 200);
    let j = ready.json();
    assert_eq!(j["status"], "ready");
    assert_eq!(j["caches"]["default"][0]["tier"], "disk");
    assert_eq!(j["caches"]["default"][0]["breaker"], "closed");

    // Authentication.
    let r = request(&a, "GET", "/caches", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unauthorized");
    assert_eq!(
        request(&a, "GET", "/caches", &[("Authorization", "Bearer oc_wrong")], b"").status,
        401
    );
    assert_eq!(request(&a, "GET", "/caches", &[("X-Api-Key", &key)], b"").status, 200);

    // Entries, with their content type.
    let r = request(
        &a,
        "PUT",
        "/caches/default/entries/user%3A1?ttl=3600&tags=users",
        &[with_key[0], ("Content-Type", "application/json")],
        br#"{"name":"Ada"}"#,
    );
    assert_eq!(r.status, 204);
    let r = request(&a, "GET", "/caches/default/entries/user%3A1", &with_key, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"name":"Ada"}"#);
    assert!(
        r.headers.to_ascii_lowercase().contains("content-type: application/json"),
        "{}",
        r.headers
    );

    // Errors are JSON with the right status.
    let r = request(&a, "GET", "/caches/default/entries/nope", &with_key, b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "entry_not_found");
    let r = request(&a, "GET", "/caches/other/entries/k", &with_key, b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "cache_not_found");
    let long = "k".repeat(2_000);
    assert_eq!(
        request(&a, "PUT", &format!("/caches/default/entries/{long}"), &with_key, b"x").status,
        414
    );
    let r = request(&a, "PUT", "/caches/default/entries/t?ttl=-5", &with_key, b"x");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_ttl");
    let r = request(&a, "PUT", "/caches/default/entries/t?ttl=abc", &with_key, b"x");
    assert_eq!(r.status, 400, "a malformed query is a 400");
    let big = vec![b'x'; 17 << 20];
    assert_eq!(request(&a, "PUT", "/caches/default/entries/big", &with_key, &big).status, 413);
    assert_eq!(request(&a, "GET", "/nowhere", &with_key, b"").status, 404);
    assert_eq!(request(&a, "DELETE", "/caches/default/entries/nope", &with_key, b"").status, 404);

    // SIGTERM: a clean exit; the data and the key survive; the key is not shown again.
    let status = server.stop();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status}");
    let again = serve(data.path());
    assert!(again.key.is_none(), "the admin key is printed only on the first start");
    let r = request(&again.addr, "GET", "/caches/default/entries/user%3A1", &with_key, b"");
    assert_eq!(r.status, 200, "the entry is back after the restart");
    assert_eq!(r.body, br#"{"name":"Ada"}"#);
    assert_eq!(
        request(&again.addr, "DELETE", "/caches/default/entries/user%3A1", &with_key, b"").status,
        204
    );
    assert_eq!(
        request(&again.addr, "GET", "/caches/default/entries/user%3A1", &with_key, b"").status,
        404
    );
}

#[test]
fn a_bad_listen_address_or_data_dir_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_omnicache"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_omnicache"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not start"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (args, envs, want) in [
        (&["--workers", "0"][..], &[][..], "workers: must be at least 1"),
        (&[], &[("OMNICACHE_WORKERS", "many")][..], "OMNICACHE_WORKERS"),
        (&[], &[("OMNICACHE_WORKERS", "0")], "workers: must be at least 1"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_omnicache"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {err}");
        assert!(err.contains(want), "{args:?} {envs:?}: {err}");
    }
}

#[test]
fn named_caches_are_created_listed_invalidated_and_deleted_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path());
    let key = server.key.clone().unwrap();
    let auth = format!("Bearer {key}");
    let a = server.addr.clone();
    let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];

    let r = request(
        &a,
        "POST",
        "/caches",
        &h,
        br#"{"name":"sessions","l1_capacity":1000,"default_ttl_secs":600}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        request(&a, "POST", "/caches", &h, br#"{"name":"sessions"}"#).error_code(),
        "cache_exists"
    );
    assert_eq!(
        request(&a, "POST", "/caches", &h, br#"{"name":"Bad Name!"}"#).error_code(),
        "invalid_name"
    );
    let r = request(&a, "POST", "/caches", &h, br#"{"name":"#);
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_json"));
    assert_eq!(
        request(&a, "POST", "/caches", &h, br#"{"name":"z","l1_capacity":0}"#).error_code(),
        "invalid_spec"
    );

    for (k, tag) in
        [("user:1", "users"), ("user:2", "users"), ("user:3", "admins"), ("order:1", "orders")]
    {
        let path = format!("/caches/sessions/entries/{k}?tags={tag}");
        assert_eq!(request(&a, "PUT", &path, &h, b"v").status, 204);
    }
    let r = request(&a, "GET", "/caches/sessions/keys?prefix=user:&limit=2", &h, b"");
    let j = r.json();
    assert_eq!(j["keys"], serde_json::json!(["user:1", "user:2"]));
    assert_eq!(j["next"], "user:2");
    let r = request(&a, "GET", "/caches/sessions/keys?prefix=user:&limit=2&cursor=user:2", &h, b"");
    assert_eq!(r.json()["keys"], serde_json::json!(["user:3"]));
    assert!(r.json()["next"].is_null());

    let r =
        request(&a, "POST", "/caches/sessions/invalidate", &h, br#"{"by":"tag","value":"users"}"#);
    assert_eq!(r.json()["removed"], 2);
    assert_eq!(request(&a, "GET", "/caches/sessions/entries/user:1", &h, b"").status, 404);
    assert_eq!(request(&a, "GET", "/caches/sessions/entries/user:3", &h, b"").status, 200);
    let r = request(&a, "POST", "/caches/sessions/invalidate", &h, br#"{"by":"colour"}"#);
    assert_eq!(r.error_code(), "invalid_json");
    let info = request(&a, "GET", "/caches/sessions", &h, b"").json();
    assert_eq!(info["tiers"][0]["tier"], "disk");
    let list = request(&a, "GET", "/caches", &h, b"").json();
    assert_eq!(list["caches"].as_array().unwrap().len(), 2);

    assert!(server.stop().success());
    let again = serve(data.path());
    let b = again.addr.clone();
    assert_eq!(
        request(&b, "GET", "/caches/sessions/entries/order:1", &h, b"").status,
        200,
        "the named cache came back with its data"
    );
    assert_eq!(
        request(&b, "DELETE", "/caches/default", &h, b"").error_code(),
        "cannot_delete_default"
    );
    assert_eq!(request(&b, "DELETE", "/caches/sessions", &h, b"").status, 204);
    assert_eq!(
        request(&b, "GET", "/caches/sessions/entries/order:1", &h, b"").error_code(),
        "cache_not_found"
    );
    assert_eq!(request(&b, "DELETE", "/caches/sessions", &h, b"").status, 404);
}

#[test]
fn warm_loads_a_file_reports_bad_rows_by_line_and_the_server_serves_it() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("seed.jsonl");
    std::fs::write(&file, "{\"key\":\"a\",\"value\":\"1\"}\nnot json\n{\"key\":\"b\",\"value\":{\"n\":2},\"tags\":[\"t\"]}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_omnicache"))
        .args(["warm"])
        .arg(&file)
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a skipped row fails the load, after the report");
    assert!(stdout.contains("2 entries loaded, 1 rows skipped"), "{stdout}");
    assert!(stdout.contains("line 2:"), "the bad row is named by its line: {stdout}");
    let server = serve(data.path());
    let auth = format!("Bearer {}", server.key.clone().unwrap());
    let r =
        request(&server.addr, "GET", "/caches/default/entries/b", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"n":2}"#);
    assert!(r.headers.contains("content-type: application/json"), "{}", r.headers);
    let missing = Command::new(env!("CARGO_BIN_EXE_omnicache"))
        .args(["warm", "/nonexistent.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "a file that is not there is a usage error");
    let unknown =
        Command::new(env!("CARGO_BIN_EXE_omnicache")).args(["warm", "file.txt"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "an unknown format is a usage error");
}

/// The data directory is private and held by one server; a deleted cache leaves no data; a
/// tier's password never comes back from the API nor lands in a file others can read.
#[test]
fn the_data_directory_is_private_held_once_and_keeps_no_deleted_or_secret_data() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = serve(&dir);
    let key = server.key.clone().expect("the admin key");
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let a = server.addr.clone();

    let second = common::bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second server on the same data directory refuses");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("in use by omnicache pid {}", server.child.id())), "{err}");

    let secret = "hunter2-not-for-readers";
    let body = format!(
        r#"{{"name":"sessions","tiers":[{{"kind":"redis","url":"redis://app:{secret}@127.0.0.1:1/0","optional":true}}]}}"#
    );
    assert_eq!(request(&a, "POST", "/caches", &h, body.as_bytes()).status, 201);
    for path in ["/caches/sessions", "/caches", "/caches/sessions/stats", "/ready"] {
        let r = request(&a, "GET", path, &h, b"");
        assert!(!String::from_utf8_lossy(&r.body).contains(secret), "{path} shows the password");
    }
    let shown = request(&a, "GET", "/caches/sessions", &h, b"").json();
    assert_eq!(shown["spec"]["tiers"][0]["url"], "redis://app:***@127.0.0.1:1/0");

    assert_eq!(request(&a, "POST", "/caches", &h, br#"{"name":"gone"}"#).status, 201);
    assert_eq!(request(&a, "PUT", "/caches/gone/entries/k", &h, b"private value").status, 204);
    let db = dir.join("caches").join("gone.db");
    assert!(db.exists());
    assert_eq!(request(&a, "DELETE", "/caches/gone", &h, b"").status, 204);
    assert!(!db.exists(), "deleting a cache deletes its SQLite file");

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for f in ["caches.json", "keys.json", "admin.key", "default.db", "lock"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    server.stop();
}

/// The last admin key cannot be revoked, and `omnicache key reset-admin` on the server's
/// machine makes a new one (refusing while a server holds the data directory).
#[test]
fn the_last_admin_key_is_kept_and_a_lost_one_is_reset_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = serve(&dir);
    let key = server.key.clone().expect("the admin key");
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str())];
    let a = server.addr.clone();
    let keys = request(&a, "GET", "/keys", &h, b"").json();
    let admin = keys["keys"][0]["name"].as_str().unwrap().to_string();
    let r = request(&a, "DELETE", &format!("/keys/{admin}"), &h, b"");
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "last_admin_key");
    assert_eq!(request(&a, "GET", "/caches", &h, b"").status, 200, "still usable");

    let reset = || common::bin().args(["key", "reset-admin", "--data"]).arg(&dir).output().unwrap();
    let busy = reset();
    assert!(!busy.status.success(), "refused while the server runs");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use by"));
    server.stop();
    let done = reset();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let out = String::from_utf8_lossy(&done.stdout).to_string();
    let new_key = out.lines().find_map(|l| l.strip_prefix("admin key: ")).unwrap().to_string();
    assert_ne!(new_key, key);
    let again = serve(&dir);
    let auth = format!("Bearer {new_key}");
    let r = request(&again.addr, "GET", "/caches", &[("Authorization", auth.as_str())], b"");
    assert_eq!(r.status, 200, "the reset key is an admin key");
    again.stop();
}

/// A password-protected Redis (`requirepass`) behind a cache: the password is in no response
/// and nowhere in the server's whole log, for the right password (from the config) and a wrong
/// one (given over the API).
#[test]
fn a_redis_password_is_in_no_response_and_no_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let password = "pw-4f1c9e-requirepass";
    let wrong = "pw-wrong-77aa03";
    let (mut redis, port) = redis_with_password(password);
    let config = tmp.path().join("omnicache.toml");
    std::fs::write(
        &config,
        format!(
            "[caches.sessions]\n[[caches.sessions.tiers]]\nkind = \"redis\"\nurl = \"redis://:{password}@127.0.0.1:{port}/0\"\nwrite = \"behind\"\n"
        ),
    )
    .unwrap();
    let log = tmp.path().join("server.log");
    let data = tmp.path().join("data");
    let server =
        common::serve_logging(&data, &["--config", config.to_str().unwrap()], &[], Some(&log));
    let key = server.key.clone().expect("the admin key");
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let a = server.addr.clone();
    let mut bodies = Vec::new();
    let mut call = |method: &str, path: &str, body: &[u8]| {
        let r = request(&a, method, path, &h, body);
        bodies.push(format!(
            "{method} {path} -> {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
        r
    };
    assert_eq!(call("PUT", "/caches/sessions/entries/s1", b"alice").status, 204);
    assert_eq!(call("GET", "/caches/sessions/entries/s1", b"").status, 200);
    let bad = format!(
        r#"{{"name":"other","tiers":[{{"kind":"redis","url":"redis://:{wrong}@127.0.0.1:{port}/0"}}]}}"#
    );
    call("POST", "/caches", bad.as_bytes());
    call("PUT", "/caches/other/entries/k", b"v");
    call("GET", "/caches/other/entries/k", b"");
    for path in [
        "/caches",
        "/caches/sessions",
        "/caches/other",
        "/caches/sessions/stats",
        "/caches/other/stats",
        "/ready",
        "/openapi.json",
    ] {
        call("GET", path, b"");
    }
    server.stop();
    let _ = redis.kill();
    let _ = redis.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    for secret in [password, wrong] {
        for b in &bodies {
            assert!(!b.contains(secret), "a response shows a password: {b}");
        }
        assert!(!log.contains(secret), "the log shows a password:\n{log}");
    }
    let shown = bodies.iter().find(|b| b.starts_with("GET /caches/sessions ->")).unwrap();
    assert!(shown.contains(":***@127.0.0.1"), "the URL is shown, redacted: {shown}");
}

/// A `redis-server` with a password on a free port; killed by the caller.
fn redis_with_password(password: &str) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--requirepass", password])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not start redis-server ({e}): install it with `apt-get install redis-server` (cargo xtask ci does)")
        });
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, port)
}

/// A tier that cannot work is refused at creation with its reason, or, declared optional,
/// created degraded; `/ready` is 503 while a required tier is down, and says why.
#[test]
fn a_tier_that_cannot_work_is_refused_or_shown_degraded_and_ready_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut redis, port) = redis_with_password("right-pass");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = tmp.path().join("omnicache.toml");
    // Declared in the config and down at start: the server starts, degraded.
    std::fs::write(
        &config,
        format!("[caches.shared]\n[[caches.shared.tiers]]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{dead}/0\"\ntimeout_ms = 300\n"),
    )
    .unwrap();
    let server =
        common::serve_with(&tmp.path().join("data"), &["--config", config.to_str().unwrap()], &[]);
    let key = server.key.clone().unwrap();
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let a = server.addr.clone();

    let create = |name: &str, url: &str, optional: bool| {
        let body = format!(
            r#"{{"name":"{name}","tiers":[{{"kind":"redis","url":"{url}","optional":{optional},"timeout_ms":300}}]}}"#
        );
        request(&a, "POST", "/caches", &h, body.as_bytes())
    };
    let wrong = create("wrongpass", &format!("redis://:nope@127.0.0.1:{port}/0"), false);
    assert_eq!(wrong.status, 422, "{}", String::from_utf8_lossy(&wrong.body));
    assert_eq!(wrong.error_code(), "tier_unavailable");
    let reason = wrong.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(reason.contains("tiers[0]") && reason.to_uppercase().contains("PASS"), "{reason}");
    assert!(!reason.contains("nope"), "the password is not in the reason: {reason}");
    let refused = create("nobody", &format!("redis://127.0.0.1:{dead}/0"), false);
    assert_eq!(refused.status, 422);
    assert_eq!(request(&a, "GET", "/caches/nobody", &h, b"").status, 404, "not created");
    let good = create("good", &format!("redis://:right-pass@127.0.0.1:{port}/0"), false);
    assert_eq!(good.status, 201, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(create("maybe", &format!("redis://127.0.0.1:{dead}/0"), true).status, 201);

    // The required tier of `shared` is down: not ready, with the reason for a key holder.
    let ready = request(&a, "GET", "/ready", &h, b"");
    assert_eq!(ready.status, 503);
    let j = ready.json();
    assert_eq!(j["status"], "not_ready");
    assert_eq!(j["caches"]["shared"][0]["failing"], true);
    assert!(j["caches"]["shared"][0]["last_error"].as_str().is_some(), "{j}");
    assert_eq!(j["caches"]["maybe"][0]["required"], false);
    assert_eq!(j["caches"]["good"][0]["failing"], false);
    let stats = request(&a, "GET", "/caches/maybe/stats", &h, b"").json();
    assert!(stats.to_string().contains("last_error"), "{stats}");
    assert_eq!(
        request(&a, "GET", "/ready", &[], b"").json(),
        serde_json::json!({"status": "not_ready"})
    );
    server.stop();
    let _ = redis.kill();
    let _ = redis.wait();
}

/// The systemd unit in deploy/ is valid (`systemd-analyze verify`, with ExecStart pointing at
/// this build) and keeps its hardening.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/omnicache.service"
    ))
    .unwrap();
    for setting in [
        "DynamicUser=yes",
        "StateDirectory=omnicache",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "UMask=0077",
    ] {
        assert!(unit.lines().any(|l| l == setting), "the unit sets {setting}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnicache.service");
    let unit = unit.replace("/usr/local/bin/omnicache", env!("CARGO_BIN_EXE_omnicache"));
    std::fs::write(&path, unit).unwrap();
    let out =
        Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap_or_else(|e| {
            panic!("systemd-analyze is missing ({e}): apt-get install systemd")
        });
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// Cost models from the config price each tier in GET /caches/{name}/cost and `omnicache tiers
/// cost`, and a cold entry goes only to the tier with the cheapest storage, here with a real
/// disk tier and a real Redis.
#[test]
fn tier_costs_come_from_the_config_and_cold_entries_go_to_the_cheapest_tier() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut redis, port) = redis_with_password("cost-pass");
    let config = tmp.path().join("omnicache.toml");
    std::fs::write(
        &config,
        format!(
            "[caches.priced]\n\
             [[caches.priced.tiers]]\nkind = \"redis\"\nurl = \"redis://:cost-pass@127.0.0.1:{port}/0\"\n\
             cost = {{ usd_per_gb_month = 12.5, latency_ms = 0.4 }}\n\
             [[caches.priced.tiers]]\nkind = \"disk\"\ncost = {{ usd_per_gb_month = 0.05 }}\n"
        ),
    )
    .unwrap();
    let server =
        common::serve_with(&tmp.path().join("data"), &["--config", config.to_str().unwrap()], &[]);
    let key = server.key.clone().unwrap();
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str())];
    let a = server.addr.clone();
    for i in 0..20 {
        let path = format!("/caches/priced/entries/k{i}");
        assert_eq!(request(&a, "PUT", &path, &h, &[b'x'; 1000]).status, 204);
    }
    let cold = request(&a, "PUT", "/caches/priced/entries/archive?cold=true", &h, &[b'z'; 5000]);
    assert_eq!(cold.status, 204);
    let stats = request(&a, "GET", "/caches/priced/stats", &h, b"").json();
    assert_eq!(stats["tiers"][0]["writes"], 20, "the cold entry skipped Redis: {stats}");
    assert_eq!(stats["tiers"][1]["writes"], 21, "and went to the cheaper disk");
    assert_eq!(stats["l1_entries"], 20, "and not to memory");
    // Read, it is found on disk (and, read, promoted like any entry).
    assert_eq!(request(&a, "GET", "/caches/priced/entries/archive", &h, b"").body.len(), 5000);

    let cost = request(&a, "GET", "/caches/priced/cost", &h, b"").json();
    let tiers = cost["tiers"].as_array().unwrap();
    assert_eq!(
        (tiers[0]["tier"].as_str(), tiers[1]["tier"].as_str()),
        (Some("redis"), Some("disk"))
    );
    assert_eq!(tiers[0]["usd_per_gb_month"], 12.5);
    assert_eq!(tiers[0]["latency_ms"], 0.4);
    assert_eq!(tiers[1]["usd_per_gb_month"], 0.05);
    assert_eq!(tiers[1]["entries"], 21);
    let bytes = tiers[1]["bytes"].as_f64().unwrap();
    let storage = tiers[1]["storage_usd_month"].as_f64().unwrap();
    assert!((storage - bytes / 1e9 * 0.05).abs() < 1e-12, "{cost}");
    assert!(cost["total_usd_month"].as_f64().unwrap() >= storage);

    let out = common::bin()
        .args(["tiers", "cost", "priced"])
        .env("OMNICACHE_SERVER", format!("http://{a}"))
        .env("OMNICACHE_API_KEY", &key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("disk") && text.contains("total: $"), "{text}");
    assert_eq!(request(&a, "GET", "/caches/nope/cost", &h, b"").status, 404);
    server.stop();
    let _ = redis.kill();
    let _ = redis.wait();
}

/// Input a newcomer trips over gets a clear error: bad percent-encoding in a key, an absurd
/// TTL; and the auth scheme is case-insensitive.
#[test]
fn malformed_keys_and_ttls_are_rejected_and_bearer_is_case_insensitive() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path());
    let key = server.key.clone().unwrap();
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str())];
    let a = server.addr.clone();
    for path in [
        "/caches/default/entries/a%zz",
        "/caches/default/entries/trailing%",
        "/caches/default/entries/half%4",
        "/caches/default/entries/notutf8%ff",
    ] {
        let r = request(&a, "PUT", path, &h, b"v");
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.error_code(), "invalid_key", "{path}");
        assert_eq!(request(&a, "GET", path, &h, b"").error_code(), "invalid_key", "{path}");
    }
    assert_eq!(request(&a, "PUT", "/caches/default/entries/100%25", &h, b"v").status, 204);
    assert_eq!(request(&a, "GET", "/caches/default/entries/100%25", &h, b"").body, b"v");
    let r = request(&a, "PUT", "/caches/default/entries/t?ttl=1e300", &h, b"v");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_ttl");
    let lower = format!("bearer {key}");
    let r = request(
        &a,
        "GET",
        "/caches/default/entries/100%25",
        &[("Authorization", lower.as_str())],
        b"",
    );
    assert_eq!(r.status, 200, "a lower-case scheme is the same scheme");
    server.stop();
}
