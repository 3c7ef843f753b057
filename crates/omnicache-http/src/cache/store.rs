//! The store: reading, writing and invalidating stored responses and their `Vary` indexes through
//! the tier.

use super::*;

impl Shared {
    pub(super) fn count(&self, i: usize) {
        self.counters[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A stale response in place of an origin failure: within `stale-if-error` (RFC 5861 §4),
    /// or at any staleness when the origin is unreachable (`disconnected`, §4.2.4), unless the
    /// stored response forbids serving it stale.
    pub(super) fn stale_on_error(
        &self,
        found: &Found,
        asked: &Asked,
        now: Timestamp,
        status: &str,
        disconnected: bool,
    ) -> Option<Response<CacheBody>> {
        let f = &found.stored.freshness;
        let detail = if stale_if_error(f, &asked.directives, now) {
            "stale-if-error"
        } else if disconnected && self.grace.is_some() && may_serve_stale(f) {
            "origin-unreachable"
        } else {
            return None;
        };
        self.count(ERRORS_HIDDEN);
        self.count(STALE);
        let what = format!("fwd=stale; fwd-status={status}; detail={detail}");
        Some(self.serve(&found.stored, asked, now, &what))
    }

    pub(super) async fn invalidate(&self, what: Invalidation) -> u64 {
        self.count(INVALIDATED);
        self.store.invalidate(&what).await.unwrap_or(0)
    }

    /// The record under `key` and its tags.
    pub(super) async fn read(&self, key: &[u8]) -> Option<(Record, Vec<String>)> {
        let entry = self.store.get(key).await.ok()??;
        match Record::decode(entry.value) {
            Some(r) => Some((r, entry.meta.tags)),
            None => {
                // Not ours or damaged: drop it and miss.
                let _ = self.store.remove(key).await;
                None
            }
        }
    }

    pub(super) async fn lookup(&self, asked: &Asked) -> Lookup {
        match self.read(&asked.primary).await {
            None => Lookup::Miss,
            Some((Record::Response(stored), tags)) => {
                Lookup::Hit(Found { key: asked.primary.clone(), stored, tags })
            }
            Some((Record::Vary(names), _)) => {
                let key = variant(&asked.primary, &names, &asked.headers);
                match self.read(&key).await {
                    Some((Record::Response(stored), tags)) => {
                        Lookup::Hit(Found { key, stored, tags })
                    }
                    _ => Lookup::VaryMiss,
                }
            }
        }
    }

    pub(super) fn join_or_lead(self: &Arc<Self>, key: &[u8]) -> Flight {
        let mut flights = self.flights.lock();
        if let Some(tx) = flights.get(key) {
            return Flight::Follow(tx.subscribe());
        }
        let tx = Arc::new(watch::channel(false).0);
        flights.insert(key.to_vec(), tx.clone());
        Flight::Lead(FlightGuard { shared: self.clone(), key: key.to_vec(), tx })
    }

    /// A response built from a stored one (§4): its headers with a current `Age` and
    /// `Cache-Status`, `304` when the request's own validators match, no body for `HEAD`.
    pub(super) fn serve(
        &self,
        stored: &StoredResponse,
        asked: &Asked,
        now: Timestamp,
        what: &str,
    ) -> Response<CacheBody> {
        self.serve_owned(stored.clone(), asked, now, what)
    }

    /// [`Shared::serve`] taking the stored response, so its headers move instead of copying.
    pub(super) fn serve_owned(
        &self,
        stored: StoredResponse,
        asked: &Asked,
        now: Timestamp,
        what: &str,
    ) -> Response<CacheBody> {
        let f = &stored.freshness;
        let mut headers = stored.headers;
        headers.insert(header::AGE, HeaderValue::from(f.age_secs(now)));
        let ttl = f.remaining(now) / 1_000_000_000;
        if headers.contains_key(&CACHE_STATUS) {
            set_status(&mut headers, &self.name, &format!("{what}; ttl={ttl}"));
        } else {
            // The hit path: one allocation for the whole value.
            use std::io::Write;
            let mut v = Vec::with_capacity(self.name.len() + what.len() + 24);
            let _ = write!(v, "{}; {what}; ttl={ttl}", self.name);
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(v)) {
                headers.insert(CACHE_STATUS, v);
            }
        }
        let conditional_ok = stored.status.is_success()
            && (asked.headers.contains_key(header::IF_NONE_MATCH)
                || asked.headers.contains_key(header::IF_MODIFIED_SINCE));
        if conditional_ok && not_modified(&asked.headers, &headers) {
            let mut r = Response::new(CacheBody::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = not_modified_headers(&headers);
            return r;
        }
        let body =
            if asked.head() { CacheBody::empty() } else { CacheBody::full(stored.body.clone()) };
        let mut r = Response::new(body);
        *r.status_mut() = stored.status;
        *r.headers_mut() = headers;
        r
    }

    /// A response passed through uncached.
    pub(super) fn pass<RB>(&self, resp: Response<RB>, what: &str) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        let (mut parts, body) = resp.into_parts();
        self.clean(&mut parts.headers);
        set_status(&mut parts.headers, &self.name, what);
        Response::from_parts(parts, CacheBody::stream(body))
    }

    /// Removes what must not travel on: hop-by-hop headers, and headers meant for this cache.
    pub(super) fn clean(&self, headers: &mut HeaderMap) {
        strip_hop_by_hop(headers);
        if self.rules.surrogate.is_some() {
            headers.remove(SURROGATE_CONTROL);
        }
        if let Some(t) = &self.tag_header {
            headers.remove(t);
        }
    }

    /// Takes a response from the origin: stores it if allowed, and answers the client with it.
    pub(super) async fn admit<RB>(
        &self,
        asked: &Asked,
        resp: Response<RB>,
        request_time: Timestamp,
        response_time: Timestamp,
        fwd: &str,
    ) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        let has_auth = asked.headers.contains_key(header::AUTHORIZATION);
        let analysis = if asked.method == Method::GET {
            analyze(
                resp.status(),
                resp.headers(),
                has_auth,
                asked.directives.no_store,
                request_time,
                response_time,
                &self.rules,
            )
        } else {
            Err("method")
        };
        let freshness = match analysis {
            Ok(f) => f,
            Err(why) => {
                if why == "vary-star" {
                    // The newest response varies on everything: older variants must not answer.
                    self.store.remove(&asked.primary).await.ok();
                }
                return self.answer_uncached(asked, resp, &format!("{fwd}; detail={why}"));
            }
        };
        let (mut parts, body) = resp.into_parts();
        let tags = self.tags(&parts.headers);
        let withheld = withheld_fields(&parts.headers);
        self.clean(&mut parts.headers);
        parts.headers.remove(CACHE_STATUS);
        let body = match collect(body, self.max_body).await {
            Collected::Full(b) => b,
            Collected::TooLarge(body) => {
                set_status(&mut parts.headers, &self.name, &format!("{fwd}; detail=too-large"));
                return Response::from_parts(parts, body);
            }
            Collected::Failed => {
                let mut r = Response::new(CacheBody::empty());
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                set_status(r.headers_mut(), &self.name, &format!("{fwd}; detail=body-failed"));
                return r;
            }
        };
        let mut stored =
            StoredResponse { status: parts.status, headers: parts.headers, body, freshness };
        let now = self.clock.now();
        let what = format!("{fwd}; stored");
        if withheld.is_empty() {
            self.write(asked, &stored, tags).await;
            return self.serve(&stored, asked, now, &what);
        }
        // This client may see every field; the stored copy keeps none of the withheld ones.
        let answer = self.serve(&stored, asked, now, &what);
        for f in &withheld {
            stored.headers.remove(f.as_str());
        }
        self.write(asked, &stored, tags).await;
        answer
    }

    /// An origin response that is not stored, answered to the client (with `304` when the
    /// client's validators match what the origin sent).
    pub(super) fn answer_uncached<RB>(
        &self,
        asked: &Asked,
        resp: Response<RB>,
        what: &str,
    ) -> Response<CacheBody>
    where
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Into<BoxError>,
    {
        if resp.status() == StatusCode::OK
            && (asked.headers.contains_key(header::IF_NONE_MATCH)
                || asked.headers.contains_key(header::IF_MODIFIED_SINCE))
            && not_modified(&asked.headers, resp.headers())
        {
            let (mut parts, _) = resp.into_parts();
            self.clean(&mut parts.headers);
            parts.headers = not_modified_headers(&parts.headers);
            parts.status = StatusCode::NOT_MODIFIED;
            set_status(&mut parts.headers, &self.name, what);
            return Response::from_parts(parts, CacheBody::empty());
        }
        self.pass(resp, what)
    }

    pub(super) fn tags(&self, headers: &HeaderMap) -> Vec<String> {
        let Some(name) = &self.tag_header else { return Vec::new() };
        let mut tags: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(|c: char| c.is_whitespace() || c == ','))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    /// Writes a response under the request's primary key, or under its variant key with a Vary
    /// index at the primary key.
    pub(super) async fn write(&self, asked: &Asked, stored: &StoredResponse, tags: Vec<String>) {
        let names = vary_names(&stored.headers).unwrap_or_default();
        if names.is_empty() {
            self.write_at(&asked.primary, stored, tags).await;
        } else {
            let key = variant(&asked.primary, &names, &asked.headers);
            let meta = self.meta(stored, Vec::new());
            let index = TierEntry::new(Record::Vary(names).encode(), meta);
            let _ = self.store.put(&asked.primary, index).await;
            self.write_at(&key, stored, tags).await;
        }
        self.count(STORED);
    }

    /// The store metadata of a response: kept while fresh, plus its stale windows, plus the
    /// keep time when it can be revalidated.
    pub(super) fn meta(&self, stored: &StoredResponse, tags: Vec<String>) -> EntryMeta {
        let now = self.clock.now();
        let validator = stored.headers.contains_key(header::ETAG)
            || stored.headers.contains_key(header::LAST_MODIFIED);
        let keep = if validator { self.keep } else { self.grace.unwrap_or_default() };
        let keep = stored.freshness.retention(now, keep);
        EntryMeta {
            created: now,
            expires: Some(now.saturating_add(keep.max(1))),
            tags,
            subject: None,
            version: 0,
            weight: u32::try_from(stored.body.len()).unwrap_or(u32::MAX),
        }
    }

    /// Applies a `304` to a stored response and stores the result (§4.3.4).
    pub(super) async fn freshen(
        &self,
        asked: &Asked,
        found: &Found,
        not_modified_headers: &HeaderMap,
        request_time: Timestamp,
        response_time: Timestamp,
    ) -> StoredResponse {
        self.count(REVALIDATED);
        let mut updated = found.stored.clone();
        let mut h304 = not_modified_headers.clone();
        self.clean(&mut h304);
        h304.remove(CACHE_STATUS);
        // The old Age described the old response.
        updated.headers.remove(header::AGE);
        freshen(&mut updated.headers, &h304);
        let has_auth = asked.headers.contains_key(header::AUTHORIZATION);
        match analyze(
            updated.status,
            &updated.headers,
            has_auth,
            false,
            request_time,
            response_time,
            &self.rules,
        ) {
            Ok(f) => {
                updated.freshness = f;
                let tags = self.tags(not_modified_headers);
                let tags = if tags.is_empty() { found.tags.clone() } else { tags };
                self.write_at(&found.key, &updated, tags).await;
            }
            Err(_) => {
                // The origin no longer allows storing it: answer this once, then forget it.
                let _ = self.store.remove(&found.key).await;
                updated.freshness = Freshness { response_time, ..updated.freshness };
            }
        }
        updated
    }

    pub(super) async fn write_at(&self, key: &[u8], stored: &StoredResponse, tags: Vec<String>) {
        let meta = self.meta(stored, tags);
        let entry = TierEntry::new(Record::Response(stored.clone()).encode(), meta);
        let _ = self.store.put(key, entry).await;
    }
}
