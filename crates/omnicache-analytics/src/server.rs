//! The server's own metrics: request duration by route, method and status (a histogram, so
//! dashboards and alerts get percentiles), and authentication failures. Recorded on the request
//! path, so kept cheap: labels are static strings where they can be (no allocation), and the
//! hot route's histograms are resolved once ([`ServerMetrics::observe_entry_get`]).

use std::borrow::Cow;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// route, method, status.
type Labels = [(&'static str, Cow<'static, str>); 3];

/// The route template of entry reads and writes.
pub const ENTRY_ROUTE: &str = "/caches/{name}/entries/{key}";

/// Buckets from 50 us to 10 s: a memory hit answers in tens of microseconds, a tier call in
/// milliseconds, a timeout in seconds.
const BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The status codes the API answers with, as static label values.
fn status_label(status: u16) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        413 => "413",
        414 => "414",
        422 => "422",
        500 => "500",
        503 => "503",
        other => return Cow::Owned(other.to_string()),
    })
}

/// The methods, as static label values.
fn method_label(method: &str) -> Cow<'static, str> {
    Cow::Borrowed(match method {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        other => return Cow::Owned(other.to_string()),
    })
}

/// The server's metrics. Clones share their values.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    requests: Family<Labels, Histogram, fn() -> Histogram>,
    auth_failures: Counter,
    /// Entry reads answered 200 and 404, resolved once: the hot route skips the family's map.
    entry_hit: Histogram,
    entry_miss: Histogram,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let requests: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram as fn() -> Histogram);
        let entry = |status: u16| {
            let labels = [
                ("route", Cow::Borrowed(ENTRY_ROUTE)),
                ("method", method_label("GET")),
                ("status", status_label(status)),
            ];
            requests.get_or_create(&labels).clone()
        };
        let (entry_hit, entry_miss) = (entry(200), entry(404));
        ServerMetrics { requests, auth_failures: Counter::default(), entry_hit, entry_miss }
    }
}

impl ServerMetrics {
    /// Counts a request to `route` (its template, never its path: keys stay out of labels).
    pub fn observe(&self, route: Cow<'static, str>, method: &str, status: u16, seconds: f64) {
        let labels =
            [("route", route), ("method", method_label(method)), ("status", status_label(status))];
        self.requests.get_or_create(&labels).observe(seconds);
    }

    /// Counts an entry read (`GET` on [`ENTRY_ROUTE`]), the hot path: hits and misses go
    /// straight to their histograms.
    pub fn observe_entry_get(&self, status: u16, seconds: f64) {
        match status {
            200 => self.entry_hit.observe(seconds),
            404 => self.entry_miss.observe(seconds),
            other => self.observe(Cow::Borrowed(ENTRY_ROUTE), "GET", other, seconds),
        }
    }

    /// Counts a request refused for its credentials.
    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Adds these metrics to `registry` (they keep counting; the registry reads them).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "omnicache_server_request_duration",
            "Requests to the REST API by route template, method and status, and their duration",
            Unit::Seconds,
            self.requests.clone(),
        );
        registry.register(
            "omnicache_server_auth_failures",
            "Requests refused for a missing, unknown or revoked API key",
            self.auth_failures.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_buckets_by_route_and_status() {
        let m = ServerMetrics::default();
        m.observe_entry_get(200, 0.000_03);
        m.observe(Cow::Borrowed(ENTRY_ROUTE), "GET", 200, 0.3);
        m.observe_entry_get(404, 0.000_2);
        m.observe(Cow::Owned("/caches".into()), "POST", 201, 0.01);
        m.auth_failure();
        let mut r = Registry::default();
        m.register(&mut r);
        let text = crate::metrics::render(&r);
        let line = |s: &str| text.lines().any(|l| l == s);
        let labels = r#"route="/caches/{name}/entries/{key}",method="GET",status="200""#;
        assert!(
            line(&format!(r#"omnicache_server_request_duration_seconds_count{{{labels}}} 2"#)),
            "{text}"
        );
        assert!(
            line(&format!(
                r#"omnicache_server_request_duration_seconds_bucket{{le="0.00005",{labels}}} 1"#
            )),
            "{text}"
        );
        assert!(
            line(&format!(
                r#"omnicache_server_request_duration_seconds_bucket{{le="0.5",{labels}}} 2"#
            )),
            "{text}"
        );
        assert!(
            line(
                r#"omnicache_server_request_duration_seconds_count{route="/caches",method="POST",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(line("omnicache_server_auth_failures_total 1"), "{text}");
    }
}
