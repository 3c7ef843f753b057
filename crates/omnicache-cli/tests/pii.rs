//! PII detection through the real binary: `omnicache security scan` on files and standard
//! input, `POST /security/scan`, and a cache's PII policy on writes (422 naming the kinds,
//! redaction, encryption below memory, counters), proven on the SQLite file.

mod common;

use common::{bin, contains, raw, request, serve, Reply, Server};
use std::io::Write;
use std::process::Stdio;

fn call(s: &Server, method: &str, path: &str, body: &[u8]) -> Reply {
    let auth = format!("Bearer {}", s.key.as_deref().unwrap());
    request(
        &s.addr,
        method,
        path,
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body,
    )
}

fn scan_stdin(input: &[u8], args: &[&str]) -> std::process::Output {
    let mut child = bin()
        .args(["security", "scan"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const INPUT: &str = concat!(
    r#"{"id": "m1", "text": "Write to ana.lima@example.org or call +44 20 7946 0958."}"#,
    "\n",
    r#"{"id": "m2", "text": "Order 4111 1111 1111 1112 shipped 2024-03-15, tracking 1Z999AA10123456784."}"#,
    "\n",
    r#"{"id": "m3", "text": "IBAN DE89 3704 0044 0532 0130 00, SSN 536-90-4399"}"#,
    "\n"
);

#[test]
fn scan_reads_json_lines_and_prints_one_line_per_finding() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, INPUT).unwrap();
    let out = bin().args(["security", "scan"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found = lines(&out.stdout);
    let kinds: Vec<(&str, &str)> =
        found.iter().map(|f| (f["id"].as_str().unwrap(), f["kind"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("m1", "email"), ("m1", "phone"), ("m3", "iban"), ("m3", "us_ssn")]);
    let text = "Write to ana.lima@example.org or call +44 20 7946 0958.";
    let email = &found[0];
    let (start, end) =
        (email["start"].as_u64().unwrap() as usize, email["end"].as_u64().unwrap() as usize);
    assert_eq!(&text[start..end], "ana.lima@example.org", "byte offsets into the text");
    assert!(email["confidence"].as_f64().unwrap() >= 0.5);
    // Standard input, `-` or nothing: the same.
    let stdin = scan_stdin(INPUT.as_bytes(), &["-"]);
    assert_eq!(lines(&stdin.stdout), found);
}

#[test]
fn scan_skips_what_is_not_utf8_and_names_lines_that_are_not_records() {
    let mut input = b"{\"id\":\"a\",\"text\":\"ok ana@example.org\"}\n".to_vec();
    input.extend_from_slice(b"{\"id\":\"b\",\"text\":\"\xff\xfe\"}\n");
    input.extend_from_slice(b"{\"id\":\"c\",\"body\":\"4111 1111 1111 1111\"}\n");
    let out = scan_stdin(&input, &[]);
    assert_eq!(out.status.code(), Some(1), "a line that is not a record fails the run");
    assert_eq!(lines(&out.stdout).len(), 1, "the good line was still scanned");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("1 lines not UTF-8 skipped"), "{err}");
    assert!(!err.contains("4111"), "the text is never echoed: {err}");
    let missing = bin().args(["security", "scan", "/nonexistent/in.jsonl"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn the_server_scans_and_applies_a_cache_policy_on_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve(&data);

    // The scan route: JSON Lines in and out, and an array in and out.
    let r = call(&s, "POST", "/security/scan", INPUT.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.body_text().lines().count(), 4);
    let one: serde_json::Value =
        serde_json::from_str(r.body_text().lines().next().unwrap()).unwrap();
    assert_eq!(one["kind"], "email");
    let r = call(&s, "POST", "/security/scan", br#"[{"id": 7, "text": "ana@example.org"}]"#);
    assert_eq!(
        r.json(),
        serde_json::json!([{"id": 7, "kind": "email", "start": 0, "end": 15, "confidence": 0.97}])
    );
    let r = call(&s, "POST", "/security/scan", b"{\"id\": 1}\n");
    assert_eq!((r.status, r.error_code()), (400, "bad_record".to_string()));

    // A cache with a policy.
    let spec = serde_json::json!({"name": "profiles", "pii": {
        "default": "tag", "credit_card": "reject", "us_ssn": "reject", "phone": "redact", "email": "encrypt"}});
    let r = call(&s, "POST", "/caches", spec.to_string().as_bytes());
    assert!(r.status < 300, "{}", r.body_text());
    let r = call(
        &s,
        "PUT",
        "/caches/profiles/entries/p1",
        b"{\"card\": \"4111 1111 1111 1111\", \"ssn\": \"536-90-4399\"}",
    );
    assert_eq!((r.status, r.error_code()), (422, "rejected".to_string()), "{}", r.body_text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("credit_card") && msg.contains("us_ssn") && !msg.contains("4111"),
        "{msg}"
    );
    assert_eq!(call(&s, "GET", "/caches/profiles/entries/p1", b"").status, 404, "nothing stored");

    assert!(
        call(&s, "PUT", "/caches/profiles/entries/p2", b"call +44 20 7946 0958 today").status < 300
    );
    assert_eq!(
        call(&s, "GET", "/caches/profiles/entries/p2", b"").body_text(),
        "call **************** today"
    );
    assert!(
        call(&s, "PUT", "/caches/profiles/entries/p3", b"mail ana.lima@example.org").status < 300
    );
    assert_eq!(
        call(&s, "GET", "/caches/profiles/entries/p3", b"").body_text(),
        "mail ana.lima@example.org"
    );
    assert!(call(&s, "PUT", "/caches/profiles/entries/p4", b"from 203.0.113.9").status < 300);
    let stats = call(&s, "GET", "/caches/profiles/stats", b"").json();
    assert_eq!(stats["pii"]["rejected"], 1, "{stats}");
    assert_eq!(stats["pii"]["redacted"], 1);
    assert_eq!(stats["pii"]["encrypted"], 1);
    assert_eq!(stats["pii"]["kinds"]["ip_address"], 1);
    s.stop();

    let files = raw(omnicache_server::cache_db_path(&data, "profiles").parent().unwrap());
    assert!(!contains(&files, b"ana.lima@example.org"), "encrypted below memory");
    assert!(!contains(&files, b"7946 0958"), "redacted before storing");
    assert!(!contains(&files, b"536-90-4399"), "refused values are stored nowhere");
    assert!(contains(&files, b"203.0.113.9"), "tagged values are stored as they are");
}

#[test]
fn erasing_a_subject_destroys_its_data_key_in_a_cache_with_subject_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = serve(&data);
    let spec = r#"{"name": "records", "encrypt": true, "subject_keys": true}"#;
    let r = call(&s, "POST", "/caches", spec.as_bytes());
    assert!(r.status < 300, "{}", r.body_text());
    let bad = call(&s, "POST", "/caches", br#"{"name": "x", "subject_keys": true}"#);
    assert_eq!(bad.status, 400, "subject keys need encryption: {}", bad.body_text());
    for (k, who) in [("a1", "alice"), ("b1", "bob")] {
        let path = format!("/caches/records/entries/{k}?subject={who}");
        assert!(call(&s, "PUT", &path, format!("{who}-secret-record").as_bytes()).status < 300);
    }
    let store = std::fs::read_to_string(data.join("subject-keys.json")).unwrap();
    assert!(!store.contains("alice") && !store.contains("bob"), "the store lists no subject");
    let erased = call(&s, "POST", "/subjects/alice/erase", b"").json();
    assert_eq!(erased["key_destroyed"], true, "{erased}");
    assert_eq!(call(&s, "POST", "/subjects/alice/erase", b"").json()["key_destroyed"], false);
    assert_eq!(call(&s, "GET", "/caches/records/entries/b1", b"").body_text(), "bob-secret-record");
    s.stop();
    let files = raw(omnicache_server::cache_db_path(&data, "records").parent().unwrap());
    assert!(!contains(&files, b"secret-record"), "ciphertext only on disk");
}
