//! What a tiered cache tells about itself: statistics, each tier's state and probes, the cost
//! report, L1's size and policy, and key listings.

use super::stats::*;
use super::*;

impl TieredCache {
    /// The estimated monthly cost of what every tier holds now, and of its requests if the rate
    /// seen since the cache started lasts a month.
    pub async fn cost_report(&self) -> CostReport {
        const MONTH_NANOS: f64 = 30.0 * 24.0 * 3600.0 * 1e9;
        let inner = &self.inner;
        let elapsed = inner.clock.now().saturating_sub(inner.started).max(1_000_000_000) as f64;
        let mut tiers = Vec::new();
        for i in 0..inner.slots.len() {
            let slot = &inner.slots[i];
            let tier = slot.tier.clone();
            let usage = match inner.call(i, tier.usage()).await {
                Some(Ok(u)) => u,
                _ => None,
            };
            let storage = usage.map_or(0.0, |u| u.bytes as f64 / 1e9 * slot.cost.usd_per_gb_month);
            let calls = slot.stats.snapshot().calls as f64;
            let requests =
                calls * (MONTH_NANOS / elapsed) / 1e6 * slot.cost.usd_per_million_requests;
            tiers.push(TierCost {
                name: tier.name().to_string(),
                usage,
                storage_usd_month: storage,
                requests_usd_month: requests,
                model: slot.cost,
            });
        }
        let total_usd_month =
            tiers.iter().map(|t| t.storage_usd_month + t.requests_usd_month).sum();
        CostReport { tiers, total_usd_month }
    }

    /// The state of every tier, in order.
    pub fn tiers(&self) -> Vec<TierStatus> {
        self.inner
            .slots
            .iter()
            .map(|s| {
                let reach = s.reach.lock();
                TierStatus {
                    name: s.tier.name().to_string(),
                    health: s.tier.health(),
                    breaker: s.breaker.state(),
                    stats: s.stats.snapshot(),
                    failing: reach.failing,
                    last_error: reach.last_error.clone(),
                }
            })
            .collect()
    }

    /// Calls every tier once (a read of a key no one writes), behind its breaker and timeout,
    /// and returns each one's failure, if any. A tier that cannot work (a wrong password, a
    /// port nobody listens on) shows up here, and in [`TieredCache::tiers`] as `failing`,
    /// before any entry needs it.
    pub async fn probe(&self) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(self.inner.slots.len());
        for i in 0..self.inner.slots.len() {
            out.push(self.probe_one(i).await);
        }
        out
    }

    /// Probes again the tiers whose last call failed (an open breaker lets a probe through
    /// only after its cooldown); for readiness checks.
    pub async fn probe_failing(&self) {
        for i in 0..self.inner.slots.len() {
            if self.inner.slots[i].reach.lock().failing {
                self.probe_one(i).await;
            }
        }
        // A tier back from an outage takes what it missed.
        self.retry_missed().await;
    }

    async fn probe_one(&self, i: usize) -> Option<String> {
        let tier = self.inner.slots[i].tier.clone();
        match self.inner.call(i, tier.get(PROBE_KEY)).await {
            Some(Ok(_)) => None,
            Some(Err(e)) if e.kind() == ErrorKind::Corrupt => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some(
                self.inner.slots[i]
                    .reach
                    .lock()
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "its breaker is open".into()),
            ),
        }
    }

    /// Lookups, hits and removals across the whole cache: L1's counters, with `misses` counting
    /// lookups that no tier answered (an L1 miss served by a tier is a promotion, not a miss).
    pub fn stats(&self) -> StatsSnapshot {
        let inner = &self.inner;
        let mut s = inner.l1.stats().unwrap_or_default();
        let l1_misses = s.misses;
        s.misses = inner.misses.load(Ordering::Relaxed).min(l1_misses);
        s.promotions = l1_misses - s.misses;
        s.hits += s.promotions;
        s.demotions = inner.slots.iter().map(|t| t.stats.snapshot().demotions).sum();
        let loads = inner.loads.snapshot();
        s.loads_ok += loads.loads_ok;
        s.loads_failed += loads.loads_failed;
        s.load_nanos += loads.load_nanos;
        s
    }

    /// Values kept out of the tiers because a transform failed on them (L1 still held them).
    pub fn transform_errors(&self) -> u64 {
        self.inner.transform_errors.load(Ordering::Relaxed)
    }

    /// What fetching ahead did so far; all zero without an advisor.
    pub fn prefetch_stats(&self) -> PrefetchStats {
        self.inner.prefetch.as_ref().map(|p| p.stats()).unwrap_or_default()
    }

    /// The name of L1's eviction policy.
    pub fn l1_policy_name(&self) -> String {
        self.inner.l1.policy_name()
    }

    /// Switches L1's eviction policy on the live cache; every entry is kept.
    pub fn set_l1_policy(&self, factory: Arc<dyn PolicyFactory>) {
        self.inner.l1.set_policy_arc(factory);
    }

    /// L1's weighted size: entries, or value bytes when bounded by
    /// [`TieredCacheBuilder::l1_max_bytes`].
    pub fn l1_weighted_size(&self) -> u64 {
        self.inner.l1.weighted_size()
    }

    /// Writes waiting in the write-behind queue (the queue's depth).
    pub fn queued_writes(&self) -> usize {
        self.inner.queue.lock().as_ref().map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// Entries in L1.
    pub fn l1_entry_count(&self) -> u64 {
        self.inner.l1.entry_count()
    }

    /// Keys in L1 under `prefix`.
    pub fn l1_keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.inner.l1.iter().map(|(k, _)| k).filter(|k| k.starts_with(prefix)).collect()
    }

    /// The number of tiers below L1.
    pub fn tier_count(&self) -> usize {
        self.inner.slots.len()
    }

    /// One page of tier `i`'s keys under `prefix`, after `cursor`, behind its breaker and
    /// timeout; `None` when the tier failed or was skipped.
    pub async fn tier_scan(
        &self,
        i: usize,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Option<ScanPage> {
        let tier = self.inner.slots.get(i)?.tier.clone();
        match self.inner.call(i, tier.scan(prefix, cursor, limit)).await {
            Some(Ok(page)) => Some(page),
            _ => None,
        }
    }

    /// Keys under `prefix` in every tier that answers (failing tiers are skipped).
    pub async fn tier_keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let inner = &self.inner;
        let mut keys = Vec::new();
        for i in 0..inner.slots.len() {
            let tier = inner.slots[i].tier.clone();
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let page = match inner.call(i, tier.scan(prefix, cursor.as_deref(), 1_000)).await {
                    Some(Ok(p)) => p,
                    _ => break,
                };
                keys.extend(page.keys);
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        keys
    }

    /// Now, by the cache's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Drops `key` from L1 only (for tests and for memory pressure), leaving the tiers.
    pub fn evict_from_l1(&self, key: &[u8]) {
        self.inner.l1.invalidate(key);
    }
}
