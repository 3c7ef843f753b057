//! `GET /metrics` of the real server after scripted operations: exact counts, both text
//! formats, `promtool check metrics` (Debian's `prometheus` package) on what it serves.

mod common;

use common::{request, serve};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn metrics_count_what_happened_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("data"));
    let auth = format!("Bearer {}", s.key.as_deref().unwrap());
    let call = |method: &str, path: &str, body: &[u8], accept: &str| {
        request(&s.addr, method, path, &[("Authorization", &auth), ("Accept", accept)], body)
    };
    for k in ["a", "b", "c"] {
        assert!(call("PUT", &format!("/caches/default/entries/{k}"), b"value", "*/*").status < 300);
    }
    for k in ["a", "b", "nope"] {
        call("GET", &format!("/caches/default/entries/{k}"), b"", "*/*");
    }
    assert_eq!(call("DELETE", "/caches/default/entries/c", b"", "*/*").status, 204);
    let anonymous = request(&s.addr, "GET", "/metrics", &[], b"");
    assert_eq!(anonymous.status, 401, "behind the API key");

    let r = call("GET", "/metrics", b"", "*/*");
    assert_eq!(r.status, 200);
    assert!(
        r.headers.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    let text = String::from_utf8(r.body).unwrap();
    let m = parse(&text);
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(v(r#"omnicache_cache_gets_total{cache="default",result="hit"}"#), 2.0);
    assert_eq!(v(r#"omnicache_cache_gets_total{cache="default",result="miss"}"#), 1.0);
    assert_eq!(v(r#"omnicache_cache_removals_total{cache="default",cause="explicit"}"#), 1.0);
    assert_eq!(v(r#"omnicache_cache_entries{cache="default"}"#), 2.0);
    assert_eq!(v(r#"omnicache_tier_writes_total{cache="default",tier="disk"}"#), 3.0);
    assert_eq!(v(r#"omnicache_tier_up{cache="default",tier="disk"}"#), 1.0);
    assert!(!text.contains("nope"), "a key is never a label");
    let route = r#"route="/caches/{name}/entries/{key}""#;
    assert_eq!(
        v(&format!(
            r#"omnicache_server_request_duration_seconds_count{{{route},method="GET",status="200"}}"#
        )),
        2.0
    );
    assert_eq!(
        v(&format!(
            r#"omnicache_server_request_duration_seconds_count{{{route},method="GET",status="404"}}"#
        )),
        1.0
    );
    assert_eq!(
        v(&format!(
            r#"omnicache_server_request_duration_seconds_count{{{route},method="PUT",status="204"}}"#
        )),
        3.0
    );
    assert_eq!(v("omnicache_server_auth_failures_total"), 1.0);

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool ({e}): install it with `apt-get install prometheus` (cargo xtask ci does)"));
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let open = call("GET", "/metrics", b"", "application/openmetrics-text;version=1.0.0");
    assert!(open.headers.contains("application/openmetrics-text"), "{}", open.headers);
    assert!(String::from_utf8(open.body).unwrap().ends_with("# EOF\n"));
    s.stop();
}

#[test]
fn the_most_read_keys_are_listed_by_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("data"));
    let key = s.key.clone().unwrap();
    let auth = format!("Bearer {key}");
    let call = |method: &str, path: &str| {
        request(&s.addr, method, path, &[("Authorization", &auth)], b"v")
    };
    for k in ["hot", "warm", "cold"] {
        call("PUT", &format!("/caches/default/entries/{k}"));
    }
    for (k, n) in [("hot", 30), ("warm", 10), ("cold", 1), ("missing", 5)] {
        for _ in 0..n {
            call("GET", &format!("/caches/default/entries/{k}"));
        }
    }
    let top = call("GET", "/caches/default/top?n=2").json();
    assert_eq!(top["total"], 46, "{top}");
    assert_eq!(top["keys"][0], serde_json::json!({"key": "hot", "count": 30, "error": 0}));
    assert_eq!(top["keys"][1]["key"], "warm");
    assert_eq!(top["keys"].as_array().unwrap().len(), 2);
    assert_eq!(call("GET", "/caches/default/top?n=0").status, 400);
    assert_eq!(call("GET", "/caches/nope/top").status, 404);
    let out = common::bin()
        .args(["analytics", "top", "default", "-n", "3"])
        .env("OMNICACHE_SERVER", format!("http://{}", s.addr))
        .env("OMNICACHE_API_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("hot") && rows[1].starts_with("warm") && rows[2].starts_with("missing"),
        "{table}"
    );
    s.stop();
}

/// Every metric name in a PromQL text.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("omnicache_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_of_the_grafana_dashboard_is_in_a_live_scrape() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("deploy/grafana/omnicache.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut used = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            used.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        used.extend(var["query"].as_str().map(metric_names).unwrap_or_default());
    }
    assert!(used.len() >= 10, "{used:?}");

    let dir = tempfile::tempdir().unwrap();
    let s = serve(&dir.path().join("data"));
    let auth = format!("Bearer {}", s.key.as_deref().unwrap());
    request(&s.addr, "PUT", "/caches/default/entries/k", &[("Authorization", &auth)], b"v");
    request(&s.addr, "GET", "/caches/default/entries/k", &[("Authorization", &auth)], b"");
    let scrape = String::from_utf8(
        request(&s.addr, "GET", "/metrics", &[("Authorization", &auth)], b"").body,
    )
    .unwrap();
    s.stop();
    let series: std::collections::BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for metric in &used {
        assert!(
            series.contains(metric.as_str()),
            "the dashboard uses {metric}, which the server does not export"
        );
    }
}
