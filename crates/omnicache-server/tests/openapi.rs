//! The OpenAPI document is generated from the handlers; `docs/openapi.json` is its checked-in
//! copy. This fails when they drift: run with `OMNICACHE_BLESS=1` to rewrite the copy.

#[test]
fn docs_openapi_json_matches_the_code() {
    let generated = serde_json::to_string_pretty(&omnicache_server::openapi()).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("OMNICACHE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not what the code generates; run `OMNICACHE_BLESS=1 cargo test -p omnicache-server --test openapi` and commit it"
    );
}

#[test]
fn every_route_is_documented_with_its_errors() {
    let spec = serde_json::to_value(omnicache_server::openapi()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/caches",
        "/caches/{name}",
        "/caches/{name}/stats",
        "/caches/{name}/clear",
        "/caches/{name}/invalidate",
        "/caches/{name}/keys",
        "/caches/{name}/batch/get",
        "/caches/{name}/batch/set",
        "/caches/{name}/entries/{key}",
        "/caches/{name}/warm",
        "/caches/{name}/import",
        "/caches/{name}/export",
        "/keys",
        "/keys/{key_name}",
        "/health",
        "/ready",
    ] {
        let ops = paths.get(p).unwrap_or_else(|| panic!("{p} is not in the spec"));
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if p != "/health" && p != "/ready" {
                assert!(responses.contains_key("401"), "{method} {p} documents 401");
                assert!(responses.contains_key("403"), "{method} {p} documents 403");
            }
        }
    }
}
