//! What tiers cost, for placement and the monthly estimate, and each tier's settings.

use std::time::Duration;

/// What storing in and reading from a tier costs, for placement and the monthly estimate.
/// The presets are list prices at the time of writing, to be overridden with your own.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CostModel {
    /// Storage, in US dollars per GB-month.
    pub usd_per_gb_month: f64,
    /// Requests, in US dollars per million.
    pub usd_per_million_requests: f64,
    /// A typical request's latency.
    pub typical_latency: Duration,
}

impl CostModel {
    /// A local SSD: about $0.08 per GB-month, requests free, ~50 µs.
    pub fn local_disk() -> Self {
        CostModel {
            usd_per_gb_month: 0.08,
            usd_per_million_requests: 0.0,
            typical_latency: Duration::from_micros(50),
        }
    }
    /// Managed Redis memory: about $10 per GB-month, requests free, ~0.5 ms.
    pub fn redis() -> Self {
        CostModel {
            usd_per_gb_month: 10.0,
            usd_per_million_requests: 0.0,
            typical_latency: Duration::from_micros(500),
        }
    }
    /// S3 Standard: $0.023 per GB-month, $0.40 per million GETs, ~20 ms.
    pub fn s3_standard() -> Self {
        CostModel {
            usd_per_gb_month: 0.023,
            usd_per_million_requests: 0.4,
            typical_latency: Duration::from_millis(20),
        }
    }
}

/// The estimated monthly cost of one tier's current contents and request rate.
#[derive(Debug, Clone, PartialEq)]
pub struct TierCost {
    /// The tier's name.
    pub name: String,
    /// What it holds, if it could tell.
    pub usage: Option<omnicache_core::TierUsage>,
    /// Storage cost of the current contents for a month.
    pub storage_usd_month: f64,
    /// Request cost if the request rate seen so far lasts a month.
    pub requests_usd_month: f64,
    /// The cost model used.
    pub model: CostModel,
}

/// The estimated monthly cost of a tiered cache; see [`TieredCache::cost_report`](super::TieredCache::cost_report).
#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    /// Per tier, in order.
    pub tiers: Vec<TierCost>,
    /// The sum.
    pub total_usd_month: f64,
}

/// Settings of one tier; see [`TieredCacheBuilder::tier_with`](super::TieredCacheBuilder::tier_with).
#[derive(Debug, Clone, Copy)]
pub struct TierSettings {
    /// The longest this tier keeps an entry. Default: as long as the entry's TTL.
    pub ttl_cap: Option<Duration>,
    /// Each call's time limit. Default: 1 s.
    pub timeout: Duration,
    /// Consecutive failures that open the breaker. Default: 5.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before a trial call. Default: 60 s.
    pub breaker_cooldown: Duration,
    /// Values larger than this skip the tier. Default: no limit.
    pub max_value_bytes: Option<usize>,
    /// The tier's cost model. Default: free.
    pub cost: CostModel,
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings {
            ttl_cap: None,
            timeout: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(60),
            max_value_bytes: None,
            cost: CostModel::default(),
        }
    }
}
