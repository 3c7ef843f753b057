//! The server's own metrics: request duration by route, method and status (a histogram, so
//! dashboards and alerts get percentiles), and authentication failures. Recorded on the request
//! path; cheap next to a request (a labeled histogram observation is a map lookup and a few
//! atomic adds).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(&'static str, String)>;

/// Buckets from 50 us to 10 s: a memory hit answers in tens of microseconds, a tier call in
/// milliseconds, a timeout in seconds.
const BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's metrics. Clones share their values.
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    requests: Family<Labels, Histogram, fn() -> Histogram>,
    auth_failures: Counter,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            requests: Family::new_with_constructor(histogram as fn() -> Histogram),
            auth_failures: Counter::default(),
        }
    }
}

impl ServerMetrics {
    /// Counts a request to `route` (its template, never its path: keys stay out of labels).
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = vec![
            ("route", route.to_string()),
            ("method", method.to_string()),
            ("status", status.to_string()),
        ];
        self.requests.get_or_create(&labels).observe(seconds);
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
        m.observe("/caches/{name}/entries/{key}", "GET", 200, 0.000_03);
        m.observe("/caches/{name}/entries/{key}", "GET", 200, 0.3);
        m.observe("/caches/{name}/entries/{key}", "GET", 404, 0.000_2);
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
        assert!(line("omnicache_server_auth_failures_total 1"), "{text}");
    }
}
