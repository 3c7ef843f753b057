//! The cache registry: the server's caches by name, opened from the config and `caches.json`,
//! built from their specs, saved back. Its errors are core's; handlers turn them into HTTP
//! errors.

use super::*;
use omnicache_security::pii::PiiAction;

/// The SQLite file of cache `name` under `data_dir`.
pub fn cache_db_path(data_dir: &std::path::Path, name: &str) -> PathBuf {
    if name == "default" {
        data_dir.join("default.db")
    } else {
        data_dir.join("caches").join(format!("{name}.db"))
    }
}

pub(super) struct Named {
    pub(super) spec: CacheSpec,
    pub(super) cache: TieredCache,
    /// Declared in the config file rather than created over the API.
    pub(super) from_config: bool,
    /// The HTTP response cache storing in it, when it serves `omnicache proxy`.
    pub(super) http: Option<omnicache_http::HttpCache>,
}

/// The server's state: its caches and keys.
pub struct AppState {
    pub(super) caches: RwLock<BTreeMap<String, Named>>,
    pub(super) keys: ApiKeys,
    pub(super) config: ServerConfig,
    /// Held for as long as the state lives: no second server on this data directory.
    pub(super) _lock: crate::datadir::DataDirLock,
    /// The encryption keys, loaded when the first encrypting cache is opened.
    pub(super) ring: std::sync::OnceLock<Arc<omnicache_security::KeyRing>>,
    /// The tamper-evident record of what operators and clients did (`audit.log`).
    pub(super) audit: omnicache_security::audit::AuditLog,
    /// Authentication failures audited in the current second, and which second: at most
    /// [`AUTH_FAILURES_PER_SECOND`] are written, so a flood cannot fill the disk.
    auth_failures: std::sync::Mutex<(u64, u32)>,
    /// Finds personal data for `POST /security/scan` and the caches' PII policies.
    pub(super) detector: omnicache_security::pii::Detector,
    /// The server's own metrics: request durations, authentication failures.
    pub(super) server_metrics: omnicache_analytics::server::ServerMetrics,
    /// Reads served, for sampling the top keys.
    pub(super) reads: std::sync::atomic::AtomicU64,
    /// The most requested keys of each cache (REST reads), in bounded memory.
    pub(super) top_keys: std::sync::Mutex<BTreeMap<String, omnicache_analytics::top::TopKeys>>,
    /// The data keys of data subjects, for caches with `subject_keys`.
    pub(super) subject_keys: std::sync::OnceLock<Arc<omnicache_security::SubjectKeys>>,
    /// The PII guard of each cache that has a policy, for its stats.
    pub(super) pii_guards:
        std::sync::Mutex<BTreeMap<String, Arc<omnicache_security::pii::PiiGuard>>>,
}

/// Counters of each cache's top-keys sketch: 256 keep the true top 20 of a Zipf(1.0) trace
/// of 10 million requests over a million keys in about 33 KiB (docs/BENCHMARKS.md).
pub(super) const TOP_KEYS_TRACKED: usize = 256;
/// Reads counted one by one before sampling starts.
const TOP_KEYS_EXACT: u64 = 4_096;
/// Past that, one read in this many is counted, for this many.
const TOP_KEYS_SAMPLE: u64 = 8;

/// True with probability `1 / every`, from a per-thread xorshift generator.
fn sampled(every: u64) -> bool {
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9E37_79B9_7F4A_7C15) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x % every == 0
    })
}

/// The most authentication failures the audit log records in one second.
const AUTH_FAILURES_PER_SECOND: u32 = 10;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("caches", &self.read().keys().collect::<Vec<_>>())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the caches of the config (`default` always, memory over a disk tier unless the
    /// config says otherwise) and every cache created over the API before, from `caches.json`.
    pub async fn open(
        config: ServerConfig,
        keys: ApiKeys,
        lock: crate::datadir::DataDirLock,
    ) -> Result<AppState> {
        let audit = crate::datadir::open_audit(&config.data_dir)?;
        let state = AppState {
            caches: RwLock::default(),
            keys,
            config,
            audit,
            auth_failures: std::sync::Mutex::new((0, 0)),
            _lock: lock,
            ring: std::sync::OnceLock::new(),
            detector: omnicache_security::pii::Detector::new(),
            pii_guards: Default::default(),
            subject_keys: std::sync::OnceLock::new(),
            top_keys: Default::default(),
            server_metrics: Default::default(),
            reads: Default::default(),
        };
        let mut specs: Vec<(String, CacheSpec, bool)> = Vec::new();
        if !state.config.caches.contains_key("default") {
            specs.push(("default".into(), CacheSpec::default(), true));
        }
        for (name, spec) in &state.config.caches {
            specs.push((name.clone(), spec.clone(), true));
        }
        let file = state.specs_file();
        if file.exists() {
            let text = std::fs::read_to_string(&file)?;
            let saved: BTreeMap<String, CacheSpec> = serde_json::from_str(&text).map_err(|e| {
                Error::invalid_input(format!("{}: not a map of caches: {e}", file.display()))
            })?;
            for (name, spec) in saved {
                if !specs.iter().any(|(n, _, _)| *n == name) {
                    specs.push((name, spec, false));
                }
            }
        }
        for (name, spec, from_config) in specs {
            let cache = state
                .build_cache(&name, &spec)
                .await
                .map_err(|e| e.context(format!("opening cache {name:?}")))?;
            // A tier down at start degrades the cache (and `/ready`) instead of failing it.
            for (i, failure) in cache.probe().await.into_iter().enumerate() {
                if let Some(reason) = failure {
                    eprintln!("warning: cache {name:?}: tiers[{i}] is down: {reason}");
                }
            }
            if spec.encrypt == Some(true) || spec.compress == Some(true) {
                state.retransform_in_background(&name, &cache);
            }
            state.write().insert(name, Named { spec, cache, from_config, http: None });
        }
        Ok(state)
    }

    /// Rewrites, in the background and at `security.reencrypt_per_second`, what the cache's
    /// tiers hold under older keys or without its transforms (after a rotation, or after
    /// encryption was turned on), while the cache serves.
    fn retransform_in_background(&self, name: &str, cache: &TieredCache) {
        let rate = self.config.security.reencrypt_per_second.unwrap_or(10_000);
        if rate == 0 {
            return;
        }
        let (cache, name) = (cache.clone(), name.to_string());
        tokio::spawn(async move {
            match cache.retransform(1_000, Some(rate)).await {
                Ok(r) => eprintln!(
                    "cache {name:?}: {} of {} stored entries rewritten under the current keys \
                     ({} unreadable, {} newer)",
                    r.rewritten, r.scanned, r.unreadable, r.superseded
                ),
                Err(e) => eprintln!("warning: cache {name:?}: re-encryption stopped: {e}"),
            }
        });
    }

    /// Counts a read of `key` in cache `name` for its top keys: every read while the server
    /// has served few, then one read in [`TOP_KEYS_SAMPLE`] chosen at random, counted for that
    /// many (so the sketch's lock and upkeep stay off most requests).
    pub(super) fn count_read(&self, name: &str, key: &str) {
        let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let weight = if n < TOP_KEYS_EXACT { 1 } else { TOP_KEYS_SAMPLE };
        if weight > 1 && !sampled(TOP_KEYS_SAMPLE) {
            return;
        }
        let mut top = self.top_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match top.get_mut(name) {
            Some(t) => t.offer_weighted(key.as_bytes(), weight),
            None => {
                let mut t = omnicache_analytics::top::TopKeys::new(TOP_KEYS_TRACKED);
                t.offer_weighted(key.as_bytes(), weight);
                top.insert(name.to_string(), t);
            }
        }
    }

    /// Records an action in the audit log: who (an API key's name), what, on which cache and
    /// target, and its outcome (`ok` or the error's code). A failure to write is reported on
    /// stderr; the action itself stands.
    pub(super) fn audit<T>(
        &self,
        actor: &str,
        action: &str,
        cache: Option<&str>,
        target: Option<&str>,
        result: &std::result::Result<T, ApiError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        let entry = omnicache_security::audit::AuditEntry {
            actor: actor.to_string(),
            action: action.to_string(),
            cache: cache.map(str::to_string),
            target: target.map(str::to_string),
            outcome,
        };
        let now_ms = omnicache_core::Clock::now(&omnicache_core::SystemClock) / 1_000_000;
        if let Err(e) = self.audit.append(entry, now_ms) {
            eprintln!("warning: the audit log could not be written: {e}");
        }
    }

    /// Records a failed authentication, at most [`AUTH_FAILURES_PER_SECOND`] a second.
    pub(super) fn audit_auth_failure(&self, reason: &str) {
        self.server_metrics.auth_failure();
        let second = omnicache_core::Clock::now(&omnicache_core::SystemClock) / 1_000_000_000;
        {
            let mut window = self.auth_failures.lock().unwrap_or_else(|e| e.into_inner());
            if window.0 != second {
                *window = (second, 0);
            }
            if window.1 >= AUTH_FAILURES_PER_SECOND {
                return;
            }
            window.1 += 1;
        }
        let result: ApiResult<()> =
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", ""));
        self.audit("-", reason, None, None, &result);
    }

    pub(super) fn specs_file(&self) -> PathBuf {
        self.config.data_dir.join("caches.json")
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Named>> {
        self.caches.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Named>> {
        self.caches.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn open_tier(&self, cache: &str, t: &TierSpec) -> Result<Arc<dyn DynTier>> {
        match t.kind {
            TierKind::Disk => {
                let path = t.path.clone().unwrap_or_else(|| cache_db_path(&self.config.data_dir, cache));
                let mut b = DiskTier::builder(path);
                if let Some(max) = t.max_bytes {
                    b = b.max_bytes(max);
                }
                Ok(Arc::new(b.open()?))
            }
            #[cfg(feature = "redis")]
            TierKind::Redis => {
                let mut b = omnicache_tiers::redis::RedisTier::builder(
                    t.url.clone().unwrap_or_default(),
                )
                .namespace(t.namespace.clone().unwrap_or_else(|| format!("omnicache:{cache}")));
                // Redis down at start degrades the cache instead of failing the start.
                b = b.lazy(true);
                if let Some(nodes) = &t.cluster {
                    b = b.cluster(nodes.clone());
                }
                if let Some(ms) = t.timeout_ms {
                    b = b.timeout(Duration::from_millis(ms));
                }
                Ok(Arc::new(b.connect().await?))
            }
            #[cfg(feature = "s3")]
            TierKind::S3 => {
                let mut b = omnicache_tiers::s3::S3Tier::builder(
                    t.url.clone().unwrap_or_default(),
                    t.bucket.clone().unwrap_or_default(),
                )
                .prefix(t.prefix.clone().unwrap_or_else(|| format!("omnicache/{cache}/")));
                if let Some(r) = &t.region {
                    b = b.region(r.clone());
                }
                if let Some(ms) = t.timeout_ms {
                    b = b.timeout(Duration::from_millis(ms));
                }
                Ok(Arc::new(b.build()?))
            }
            #[allow(unreachable_patterns)]
            other => Err(Error::invalid_input(format!(
                "this omnicache was built without {other:?} tiers; rebuild omnicache-cli with --features {}",
                if other == TierKind::Redis { "redis" } else { "s3" }
            ))),
        }
    }

    pub(super) async fn build_cache(&self, name: &str, spec: &CacheSpec) -> Result<TieredCache> {
        let mut b =
            TieredCache::builder().l1_capacity(spec.l1_capacity.unwrap_or(self.config.l1_capacity));
        if let Some(bytes) = spec.l1_max_bytes {
            b = b.l1_max_bytes(bytes);
        }
        if let Some(p) = &spec.policy {
            let factory = omnicache_strategies::by_name(p)
                .ok_or_else(|| Error::invalid_input(format!("unknown policy {p:?}")))?;
            b = b.l1_policy(factory);
        }
        if let Some(t) = spec.default_ttl_secs {
            b = b.default_ttl(Duration::from_secs_f64(t));
        }
        if let Some(t) = spec.subject_retention_secs {
            b = b.subject_retention(Duration::from_secs_f64(t));
        }
        if spec.compress == Some(true) {
            b = b.transform(Arc::new(omnicache_security::Compress::default()));
        }
        if spec.encrypt == Some(true) {
            let ring = self.key_ring()?;
            let mut encrypt = omnicache_security::Encrypt::new(ring, name);
            if spec.subject_keys == Some(true) {
                encrypt = encrypt.subject_keys(self.subject_keys()?);
            }
            b = b.transform(Arc::new(encrypt));
        }
        if let Some(pii) = &spec.pii {
            let policy = pii.policy();
            let (default, named) = policy.actions();
            let encrypts =
                default == PiiAction::Encrypt || named.values().any(|a| *a == PiiAction::Encrypt);
            if encrypts && spec.encrypt != Some(true) {
                let ring = self.key_ring()?;
                b = b.encrypt_on_demand(Arc::new(omnicache_security::Encrypt::new(ring, name)));
            }
            let detector = self.detector.clone().min_confidence(pii.min_confidence.unwrap_or(0.5));
            let guard = Arc::new(omnicache_security::pii::PiiGuard::new(detector, policy));
            b = b.write_guard(Arc::new(crate::value::PackedPiiGuard(guard.clone())));
            self.pii_guards
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_string(), guard);
        }
        // What a tier misses while down (an erasure above all) is kept here across restarts.
        b = b.journal(self.config.data_dir.join(format!("missed-{name}.json")));
        let default_tiers = [TierSpec::disk()];
        for t in spec.tiers.as_deref().unwrap_or(&default_tiers) {
            let tier = self.open_tier(name, t).await?;
            let write = match t.write {
                WriteMode::Through => WritePolicy::Through,
                WriteMode::Behind => WritePolicy::Behind,
                WriteMode::OnEvict => WritePolicy::OnEvict,
            };
            let (ttl_cap, timeout, max_value) = (t.ttl_cap_secs, t.timeout_ms, t.max_value_bytes);
            let cost = t.cost_model();
            b = b.tier_with(tier, write, move |s| TierSettings {
                ttl_cap: ttl_cap.map(Duration::from_secs_f64),
                timeout: timeout.map_or(s.timeout, Duration::from_millis),
                max_value_bytes: max_value,
                cost,
                ..s
            });
        }
        b.build()
    }

    /// The data keys of data subjects (`DATA/subject-keys.json`), opened with the key ring
    /// when the first cache with `subject_keys` is.
    pub(super) fn subject_keys(&self) -> Result<Arc<omnicache_security::SubjectKeys>> {
        if let Some(keys) = self.subject_keys.get() {
            return Ok(keys.clone());
        }
        let path = self.config.data_dir.join("subject-keys.json");
        let keys = Arc::new(omnicache_security::SubjectKeys::open(path, self.key_ring()?)?);
        Ok(self.subject_keys.get_or_init(|| keys).clone())
    }

    /// The encryption keys: the `security.key_file` ring, else one key from the variable
    /// `security.key_env`, else a development key made now (with a warning: what it encrypts
    /// is unreadable after a restart).
    pub(super) fn key_ring(&self) -> Result<Arc<omnicache_security::KeyRing>> {
        if let Some(ring) = self.ring.get() {
            return Ok(ring.clone());
        }
        let sec = &self.config.security;
        let ring = match (&sec.key_file, &sec.key_env) {
            (Some(path), _) => omnicache_security::KeyRing::load(path)
                .map_err(|e| e.context("security.key_file"))?,
            (None, Some(var)) => omnicache_security::KeyRing::from_env(var)
                .map_err(|e| e.context("security.key_env"))?,
            (None, None) => {
                eprintln!(
                    "WARNING: a cache encrypts but no key is configured (security.key_file or \
                     security.key_env): using a development key made now. What it encrypts \
                     cannot be read after a restart. Make a key file with `omnicache security \
                     keygen`."
                );
                omnicache_security::KeyRing::generate()?
            }
        };
        if ring.primary().is_none() {
            return Err(Error::invalid_input("security: the key ring has no active key"));
        }
        if sec.key_file.is_some() {
            self.audit_key_changes(&ring);
        }
        Ok(self.ring.get_or_init(|| Arc::new(ring)).clone())
    }

    /// Rotations and retirements happen to the key file (`omnicache security rotate`, or an
    /// edit), not through the server; so at start the server compares the ring with what it
    /// saw last time (`DATA/keyring.seen`: ids, states and the primary, never key material)
    /// and records each change in the audit log, as the key file's doing.
    fn audit_key_changes(&self, ring: &omnicache_security::KeyRing) {
        let state_name = |s: omnicache_security::KeyState| match s {
            omnicache_security::KeyState::Active => "active",
            omnicache_security::KeyState::DecryptOnly => "decrypt_only",
            omnicache_security::KeyState::Retired => "retired",
        };
        let now: BTreeMap<String, String> = ring
            .keys()
            .iter()
            .map(|k| (k.id().to_string(), state_name(k.state()).to_string()))
            .collect();
        let primary = ring.primary().map(|k| k.id()).unwrap_or(0);
        let seen_file = self.config.data_dir.join("keyring.seen");
        let seen: Option<(u32, BTreeMap<String, String>)> =
            std::fs::read(&seen_file).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let ok: std::result::Result<(), ApiError> = Ok(());
        match &seen {
            None => {
                self.audit("key-file", "key.load", None, Some(&format!("primary {primary}")), &ok)
            }
            Some((old_primary, old)) => {
                if *old_primary != primary {
                    self.audit(
                        "key-file",
                        "key.rotate",
                        None,
                        Some(&format!("primary {old_primary} -> {primary}")),
                        &ok,
                    );
                }
                for (id, state) in &now {
                    if old.get(id) != Some(state) && state == "retired" {
                        self.audit("key-file", "key.retire", None, Some(&format!("key {id}")), &ok);
                    }
                }
            }
        }
        if seen.as_ref() != Some(&(primary, now.clone())) {
            let bytes = serde_json::to_vec(&(primary, now)).unwrap_or_default();
            if let Err(e) = crate::keys::replace_private(&seen_file, &bytes) {
                eprintln!("warning: could not write {}: {e}", seen_file.display());
            }
        }
    }

    pub(super) fn save_specs(&self) -> Result<()> {
        let specs: BTreeMap<String, CacheSpec> = self
            .read()
            .iter()
            .filter(|(_, n)| !n.from_config)
            .map(|(name, n)| (name.clone(), n.spec.clone()))
            .collect();
        crate::keys::replace_private(
            &self.specs_file(),
            &serde_json::to_vec_pretty(&specs).unwrap_or_default(),
        )
    }

    /// Records that `http` stores its responses in the cache `name`, so the cache's stats
    /// include the HTTP cache's counters.
    pub(crate) fn serve_http(&self, name: &str, http: omnicache_http::HttpCache) {
        if let Some(n) = self.write().get_mut(name) {
            n.http = Some(http);
        }
    }

    pub(super) fn cache(&self, name: &str) -> Result<TieredCache> {
        self.read().get(name).map(|n| n.cache.clone()).ok_or_else(|| {
            Error::new(omnicache_core::ErrorKind::NotFound, format!("no cache named {name:?}"))
        })
    }

    /// The cache `name`, opened with the default spec (memory over a disk tier) when neither
    /// the config nor the API declared it. Such a cache belongs to the process that asked for it
    /// (the proxy), like one from the config: it cannot be deleted over the API.
    pub async fn cache_or_default(&self, name: &str) -> Result<TieredCache> {
        if let Some(n) = self.read().get(name) {
            return Ok(n.cache.clone());
        }
        let spec = CacheSpec::default();
        let cache = self.build_cache(name, &spec).await?;
        self.write().insert(
            name.to_string(),
            Named { spec, cache: cache.clone(), from_config: true, http: None },
        );
        Ok(cache)
    }

    /// Flushes and stops every cache's background work.
    pub async fn shutdown(&self) {
        let caches: Vec<TieredCache> = self.read().values().map(|n| n.cache.clone()).collect();
        for c in caches {
            c.shutdown().await;
        }
    }
}

impl TierSpec {
    pub(super) fn disk() -> TierSpec {
        TierSpec {
            kind: TierKind::Disk,
            write: WriteMode::Through,
            ttl_cap_secs: None,
            max_value_bytes: None,
            timeout_ms: None,
            path: None,
            max_bytes: None,
            url: None,
            cluster: None,
            namespace: None,
            bucket: None,
            prefix: None,
            region: None,
            optional: false,
            cost: None,
        }
    }

    /// The cost model: the spec's figures over the kind's list prices.
    pub(super) fn cost_model(&self) -> CostModel {
        let base = match self.kind {
            TierKind::Disk => CostModel::local_disk(),
            TierKind::Redis => CostModel::redis(),
            TierKind::S3 => CostModel::s3_standard(),
        };
        let c = self.cost.unwrap_or_default();
        CostModel {
            usd_per_gb_month: c.usd_per_gb_month.unwrap_or(base.usd_per_gb_month),
            usd_per_million_requests: c
                .usd_per_million_requests
                .unwrap_or(base.usd_per_million_requests),
            typical_latency: c
                .latency_ms
                .map_or(base.typical_latency, |ms| Duration::from_secs_f64(ms / 1e3)),
        }
    }
}
