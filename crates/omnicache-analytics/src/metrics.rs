//! Prometheus metrics of caches and their tiers, read at scrape time.
//!
//! The caches already count what an operator needs (hits, misses, removals by cause, each
//! tier's calls and failures) in their own atomics; a [`Source`] hands those counts over as
//! plain [`CacheSample`]s when Prometheus scrapes, and [`CacheCollector`] writes them out as
//! OpenMetrics families. Nothing is added to the hot path: an L1 hit costs what it did.
//!
//! The three families every cache dashboard starts from read as Micrometer's cache metrics do,
//! so existing dashboards translate: `omnicache_cache_gets_total{cache, result="hit"|"miss"}`,
//! `omnicache_cache_evictions_total{cache, cause}` and `omnicache_cache_entries{cache}`. Keys are
//! never labels. Every family is listed in `docs/metrics.md`.

use std::fmt;

use omnicache_core::RemovalCause;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerState {
    /// Calls go through.
    #[default]
    Closed,
    /// Calls are skipped until the cooldown passes.
    Open,
    /// One call is let through to probe.
    HalfOpen,
}

impl BreakerState {
    const ALL: [BreakerState; 3] =
        [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];

    fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What one tier below memory has done, for one cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierSample {
    /// The tier's name (`disk`, `redis`, ...).
    pub tier: String,
    /// Lookups it answered.
    pub hits: u64,
    /// Lookups it did not have.
    pub misses: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// Calls skipped because its breaker was open.
    pub skipped: u64,
    /// Entries that failed their checks and were deleted.
    pub corrupt: u64,
    /// Entries written.
    pub writes: u64,
    /// Writes dropped (the write-behind queue was full and the inline write failed).
    pub dropped: u64,
    /// Entries removed, by cause.
    pub removals: Vec<(RemovalCause, u64)>,
    /// Calls made, and their total duration in seconds.
    pub calls: u64,
    /// The total duration of those calls, in seconds.
    pub call_seconds: f64,
    /// Its breaker.
    pub breaker: BreakerState,
    /// Whether its last call succeeded.
    pub up: bool,
}

/// What the HTTP response cache in front of an origin has done (`omnicache proxy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpSample {
    /// Answered from the cache.
    pub hits: u64,
    /// Of those, answered stale.
    pub stale: u64,
    /// Forwarded to the origin.
    pub misses: u64,
    /// Responses stored.
    pub stored: u64,
    /// Stored responses freshened by a 304.
    pub revalidated: u64,
    /// Requests that waited for another to the same resource.
    pub coalesced: u64,
    /// Invalidations after unsafe methods and purges.
    pub invalidated: u64,
    /// Origin errors hidden by serving stale.
    pub errors_hidden: u64,
}

/// What one cache has done since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheSample {
    /// The cache's name.
    pub cache: String,
    /// Lookups answered (from memory or a tier).
    pub hits: u64,
    /// Lookups nothing answered.
    pub misses: u64,
    /// Loader calls that succeeded and failed.
    pub loads_ok: u64,
    /// Loader calls that failed.
    pub loads_failed: u64,
    /// The total time loaders took, in seconds.
    pub load_seconds: f64,
    /// Entries removed from memory, by cause.
    pub removals: Vec<(RemovalCause, u64)>,
    /// Entries in memory.
    pub entries: u64,
    /// Their weight (bytes when the cache is bounded by bytes, else entries).
    pub weight: u64,
    /// Entries promoted from a tier into memory.
    pub promotions: u64,
    /// Entries demoted from memory into a tier.
    pub demotions: u64,
    /// Writes waiting in the write-behind queue.
    pub queued_writes: u64,
    /// Invalidations and erasures tiers missed while down and have not taken yet.
    pub missed_invalidations: u64,
    /// Each tier below memory.
    pub tiers: Vec<TierSample>,
    /// The HTTP response cache's counters, when the cache serves `omnicache proxy`.
    pub http: Option<HttpSample>,
}

/// Where a [`CacheCollector`] gets its samples, at each scrape.
pub trait Source: Send + Sync + 'static {
    /// The samples of every cache, now.
    fn samples(&self) -> Vec<CacheSample>;
}

impl<F> Source for F
where
    F: Fn() -> Vec<CacheSample> + Send + Sync + 'static,
{
    fn samples(&self) -> Vec<CacheSample> {
        self()
    }
}

/// Writes a [`Source`]'s samples as OpenMetrics families at each scrape. Register it into a
/// registry of your own with [`Registry::register_collector`], or use [`registry`].
pub struct CacheCollector<S> {
    source: S,
}

impl<S> fmt::Debug for CacheCollector<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheCollector").finish_non_exhaustive()
    }
}

impl<S: Source> CacheCollector<S> {
    /// A collector reading `source`.
    pub fn new(source: S) -> Self {
        CacheCollector { source }
    }
}

/// A registry holding one [`CacheCollector`] over `source`.
pub fn registry<S: Source>(source: S) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(CacheCollector::new(source)));
    registry
}

/// The registry's OpenMetrics text (what `GET /metrics` answers).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; a collector's error would be a bug in it.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The registry in Prometheus's classic text format (`text/plain; version=0.0.4`), for
/// scrapers and tools that predate OpenMetrics (`promtool check metrics` among them): counter
/// families named with their `_total`, no `# UNIT` lines, no `# EOF`.
pub fn render_classic(registry: &Registry) -> String {
    let open = render(registry);
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len() + 64 * counters.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One family: its descriptor, then each sample with its labels.
fn family<'s, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (Labels<'s>, M)>,
) -> fmt::Result {
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else { return Ok(()) };
    let mut family = encoder.encode_descriptor(name, help, unit, first.metric_type())?;
    for (labels, metric) in samples {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn c(s: &CacheSample) -> &str {
    &s.cache
}

fn one(s: &CacheSample) -> Labels<'_> {
    vec![("cache", &s.cache)]
}

fn two<'a>(s: &'a CacheSample, t: &'a TierSample) -> Labels<'a> {
    vec![("cache", &s.cache), ("tier", &t.tier)]
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn seconds(v: f64) -> ConstCounter<f64> {
    ConstCounter::new(v)
}

fn gauge(v: i64) -> ConstGauge<i64> {
    ConstGauge::new(v)
}

fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl<S: Source> Collector for CacheCollector<S> {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let caches = self.source.samples();
        let by_cache =
            |f: fn(&CacheSample) -> u64| caches.iter().map(move |s| (one(s), counter(f(s))));

        family(
            &mut e,
            "omnicache_cache_gets",
            "Lookups of a cache, by result (hit: memory or a tier answered).",
            None,
            caches.iter().flat_map(|s| {
                [
                    (vec![("cache", c(s)), ("result", "hit")], counter(s.hits)),
                    (vec![("cache", c(s)), ("result", "miss")], counter(s.misses)),
                ]
            }),
        )?;
        family(
            &mut e,
            "omnicache_cache_evictions",
            "Entries the cache removed from memory on its own, by cause (capacity, expired).",
            None,
            caches.iter().flat_map(|s| {
                s.removals
                    .iter()
                    .filter(|(k, _)| k.was_evicted())
                    .map(move |(k, n)| (vec![("cache", c(s)), ("cause", k.as_str())], counter(*n)))
            }),
        )?;
        family(
            &mut e,
            "omnicache_cache_removals",
            "Entries removed from memory, by cause.",
            None,
            caches.iter().flat_map(|s| {
                s.removals
                    .iter()
                    .map(move |(k, n)| (vec![("cache", c(s)), ("cause", k.as_str())], counter(*n)))
            }),
        )?;
        family(
            &mut e,
            "omnicache_cache_entries",
            "Entries in memory.",
            None,
            caches.iter().map(|s| (one(s), gauge(sat(s.entries)))),
        )?;
        family(&mut e, "omnicache_cache_weight", "The weight of the entries in memory (bytes when the cache is bounded by bytes, else entries).", None,
            caches.iter().map(|s| (one(s), gauge(sat(s.weight)))))?;
        family(
            &mut e,
            "omnicache_cache_loads",
            "Loader calls, by result (success, failure).",
            None,
            caches.iter().flat_map(|s| {
                [
                    (vec![("cache", c(s)), ("result", "success")], counter(s.loads_ok)),
                    (vec![("cache", c(s)), ("result", "failure")], counter(s.loads_failed)),
                ]
            }),
        )?;
        family(
            &mut e,
            "omnicache_cache_load_duration",
            "Total time loaders took.",
            Some(&Unit::Seconds),
            caches.iter().map(|s| (one(s), seconds(s.load_seconds))),
        )?;
        family(
            &mut e,
            "omnicache_cache_promotions",
            "Entries promoted from a tier into memory.",
            None,
            by_cache(|s| s.promotions),
        )?;
        family(
            &mut e,
            "omnicache_cache_demotions",
            "Entries demoted from memory into a tier.",
            None,
            by_cache(|s| s.demotions),
        )?;
        family(
            &mut e,
            "omnicache_cache_write_queue_depth",
            "Writes waiting in the write-behind queue.",
            None,
            caches.iter().map(|s| (one(s), gauge(sat(s.queued_writes)))),
        )?;
        family(
            &mut e,
            "omnicache_cache_missed_invalidations",
            "Invalidations and erasures tiers missed while down, not yet applied.",
            None,
            caches.iter().map(|s| (one(s), gauge(sat(s.missed_invalidations)))),
        )?;

        let tiers: Vec<(&CacheSample, &TierSample)> =
            caches.iter().flat_map(|s| s.tiers.iter().map(move |t| (s, t))).collect();
        family(
            &mut e,
            "omnicache_tier_requests",
            "Calls to a tier, by result (hit, miss, error, timeout, skipped: breaker open).",
            None,
            tiers.iter().flat_map(|(s, t)| {
                [
                    ("hit", t.hits),
                    ("miss", t.misses),
                    ("error", t.errors),
                    ("timeout", t.timeouts),
                    ("skipped", t.skipped),
                ]
                .map(|(r, n)| {
                    (vec![("cache", c(s)), ("tier", t.tier.as_str()), ("result", r)], counter(n))
                })
            }),
        )?;
        family(
            &mut e,
            "omnicache_tier_writes",
            "Entries written to a tier.",
            None,
            tiers.iter().map(|(s, t)| (two(s, t), counter(t.writes))),
        )?;
        family(
            &mut e,
            "omnicache_tier_dropped_writes",
            "Writes a tier never received.",
            None,
            tiers.iter().map(|(s, t)| (two(s, t), counter(t.dropped))),
        )?;
        family(
            &mut e,
            "omnicache_tier_corrupt_entries",
            "Entries a tier returned that failed their checks (deleted).",
            None,
            tiers.iter().map(|(s, t)| (two(s, t), counter(t.corrupt))),
        )?;
        family(
            &mut e,
            "omnicache_tier_removals",
            "Entries removed from a tier, by cause.",
            None,
            tiers.iter().flat_map(|(s, t)| {
                t.removals.iter().map(move |(k, n)| {
                    (
                        vec![("cache", c(s)), ("tier", t.tier.as_str()), ("cause", k.as_str())],
                        counter(*n),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "omnicache_tier_operations",
            "Calls made to a tier.",
            None,
            tiers.iter().map(|(s, t)| (two(s, t), counter(t.calls))),
        )?;
        family(
            &mut e,
            "omnicache_tier_operation_duration",
            "Total time of the calls made to a tier.",
            Some(&Unit::Seconds),
            tiers.iter().map(|(s, t)| (two(s, t), seconds(t.call_seconds))),
        )?;
        family(
            &mut e,
            "omnicache_tier_breaker_state",
            "1 for the state a tier's circuit breaker is in, 0 for the others.",
            None,
            tiers.iter().flat_map(|(s, t)| {
                BreakerState::ALL.map(|b| {
                    (
                        vec![("cache", c(s)), ("tier", t.tier.as_str()), ("state", b.label())],
                        gauge(i64::from(t.breaker == b)),
                    )
                })
            }),
        )?;
        family(
            &mut e,
            "omnicache_tier_up",
            "1 when a tier's last call succeeded.",
            None,
            tiers.iter().map(|(s, t)| (two(s, t), gauge(i64::from(t.up)))),
        )?;

        let http: Vec<(&CacheSample, &HttpSample)> =
            caches.iter().filter_map(|s| s.http.as_ref().map(|h| (s, h))).collect();
        family(
            &mut e,
            "omnicache_http_requests",
            "Requests to the HTTP cache in front of an origin, by result (hit, stale, miss).",
            None,
            http.iter().flat_map(|(s, h)| {
                [("hit", h.hits - h.stale.min(h.hits)), ("stale", h.stale), ("miss", h.misses)]
                    .map(|(r, n)| (vec![("cache", c(s)), ("result", r)], counter(n)))
            }),
        )?;
        for (name, help, f) in [
            (
                "omnicache_http_stored",
                "Responses the HTTP cache stored.",
                (|h: &HttpSample| h.stored) as fn(&HttpSample) -> u64,
            ),
            (
                "omnicache_http_revalidated",
                "Stored responses freshened by a 304 Not Modified.",
                |h| h.revalidated,
            ),
            (
                "omnicache_http_coalesced",
                "Requests that waited for another request to the same resource.",
                |h| h.coalesced,
            ),
            ("omnicache_http_invalidated", "Invalidations after unsafe methods and purges.", |h| {
                h.invalidated
            }),
            (
                "omnicache_http_errors_hidden",
                "Origin errors hidden by serving a stale response.",
                |h| h.errors_hidden,
            ),
        ] {
            family(&mut e, name, help, None, http.iter().map(|(s, h)| (one(s), counter(f(h)))))?;
        }
        Ok(())
    }
}
