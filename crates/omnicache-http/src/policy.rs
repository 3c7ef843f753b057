//! The rules of RFC 9111 as pure functions: whether a response may be stored (§3), how long it
//! stays fresh (§4.2.1, heuristics §4.2.2), its age (§4.2.3), which headers a cache keeps (§3.1)
//! and how a `304` freshens a stored response (§3.2, §4.3.4), and how a cache answers a
//! conditional request itself (§4.3.2).

use crate::directives::{Delta, Directives, DELTA_MAX, SURROGATE_CONTROL};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use omnicache_core::Timestamp;
use std::time::{Duration, UNIX_EPOCH};

const NANOS: u64 = 1_000_000_000;

/// What the cache remembers about a stored response's freshness, decided once when it is
/// stored or freshened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Freshness {
    /// Freshness lifetime in seconds.
    pub(crate) lifetime: u64,
    /// Age when received, in nanoseconds (corrected initial age, §4.2.3).
    pub(crate) initial_age: u64,
    /// When the response was received (cache clock).
    pub(crate) response_time: Timestamp,
    /// `stale-while-revalidate` window, seconds (0: none).
    pub(crate) swr: u64,
    /// `stale-if-error` window, seconds (0: none).
    pub(crate) sie: u64,
    /// Bits, see the `F_` constants.
    pub(crate) flags: u8,
}

/// `no-cache`: validate before every use.
pub(crate) const F_NO_CACHE: u8 = 1;
/// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never serve stale.
pub(crate) const F_MUST_REVALIDATE: u8 = 2;
/// `public`, `must-revalidate` or `s-maxage`: may answer requests with `Authorization`.
pub(crate) const F_AUTH_OK: u8 = 4;
/// `immutable`.
pub(crate) const F_IMMUTABLE: u8 = 8;
/// The lifetime came from the heuristic, not the origin.
pub(crate) const F_HEURISTIC: u8 = 16;

impl Freshness {
    /// Current age in nanoseconds at `now`.
    pub(crate) fn age(&self, now: Timestamp) -> u64 {
        self.initial_age.saturating_add(now.saturating_sub(self.response_time))
    }

    /// Current age in whole seconds, as the `Age` header carries it.
    pub(crate) fn age_secs(&self, now: Timestamp) -> u64 {
        (self.age(now) / NANOS).min(DELTA_MAX)
    }

    /// Freshness left at `now` in nanoseconds; negative when stale (by that much).
    pub(crate) fn remaining(&self, now: Timestamp) -> i128 {
        i128::from(self.lifetime) * i128::from(NANOS) - i128::from(self.age(now))
    }

    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// How long the entry is worth keeping from now: fresh time plus the longest of its stale
    /// windows and `keep` (the time a stale entry stays for revalidation and for outages).
    pub(crate) fn retention(&self, now: Timestamp, keep: Duration) -> u64 {
        let fresh = u64::try_from(self.remaining(now).max(0)).unwrap_or(u64::MAX);
        let stale = self.swr.max(self.sie).saturating_mul(NANOS);
        let keep = u64::try_from(keep.as_nanos()).unwrap_or(u64::MAX);
        fresh.saturating_add(stale.max(keep))
    }
}

/// How the cache reads responses; the part of the layer's options the rules need.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Share of `Date - Last-Modified` used as heuristic freshness.
    pub(crate) heuristic_fraction: f64,
    /// Cap on heuristic freshness, seconds.
    pub(crate) heuristic_max: u64,
    /// Device token for `Surrogate-Control` targeting; `None` ignores the header.
    pub(crate) surrogate: Option<String>,
}

/// Why a response was not stored (for `Cache-Status: detail=`).
pub(crate) type NotStored = &'static str;

/// Status codes whose responses are heuristically cacheable (RFC 9110 §15.1).
pub(crate) fn heuristic_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

/// Status codes whose caching requirements this cache understands (for `must-understand`).
fn understood(s: StatusCode) -> bool {
    matches!(
        s.as_u16(),
        200..=205 | 300..=305 | 307 | 308 | 400..=417 | 421..=426 | 428 | 429 | 431 | 451
            | 500..=505 | 511
    )
}

/// Headers a cache never stores or forwards (§3.1, RFC 9110 §7.6.1).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authentication-info"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers and the ones `Connection` lists.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in listed {
        headers.remove(n);
    }
    let hop: Vec<HeaderName> = headers.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    for n in hop {
        headers.remove(n);
    }
}

/// An HTTP date as a timestamp; `None` when it does not parse.
pub(crate) fn http_date(v: &HeaderValue) -> Option<Timestamp> {
    let s = v.to_str().ok()?;
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A timestamp as an HTTP date.
#[cfg(test)]
pub(crate) fn fmt_http_date(t: Timestamp) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_nanos(t))
}

fn first_date(headers: &HeaderMap, name: HeaderName) -> Option<Option<Timestamp>> {
    headers.get(name).map(http_date)
}

/// The `Age` header's value: `Ok(0)` when absent, `Err` when it cannot be trusted (a cache
/// then treats the response as stale). Several `Age` values (several field lines, or one line
/// that looks like lines combined, `0, 0`) are untrustworthy; otherwise the leading
/// delta-seconds are read, as deployed caches do (`0,7200` reads 0, `7200;x` reads 7200), and
/// a value without leading digits (`abc`, `-5`) is untrustworthy.
fn age_value(headers: &HeaderMap) -> Result<u64, ()> {
    let mut it = headers.get_all(header::AGE).iter();
    match (it.next(), it.next()) {
        (None, _) => Ok(0),
        (Some(v), None) => {
            let s = v.as_bytes().trim_ascii();
            if s.windows(2).any(|w| w[0] == b',' && (w[1] == b' ' || w[1] == b'\t')) {
                return Err(());
            }
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let lead = std::str::from_utf8(&s[..digits]).map_err(|_| ())?;
            crate::directives::parse_delta(lead).ok_or(())
        }
        _ => Err(()),
    }
}

/// The names a `Vary` header lists, lower-cased, sorted and deduplicated; `None` for `Vary: *`.
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for v in headers.get_all(header::VARY) {
        for n in String::from_utf8_lossy(v.as_bytes()).split(',') {
            let n = n.trim().to_ascii_lowercase();
            if n == "*" {
                return None;
            }
            if !n.is_empty() {
                names.push(n);
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    Some(names)
}

/// Decides whether a response to a `GET` may be stored by a shared cache, and if so its
/// freshness. `request_time` and `response_time` are when the request went out and the response
/// came back (cache clock).
pub(crate) fn analyze(
    status: StatusCode,
    headers: &HeaderMap,
    request_has_auth: bool,
    request_no_store: bool,
    request_time: Timestamp,
    response_time: Timestamp,
    rules: &Rules,
) -> Result<Freshness, NotStored> {
    if status.is_informational() || status == StatusCode::PARTIAL_CONTENT {
        return Err("status");
    }
    if status == StatusCode::NOT_MODIFIED {
        return Err("status");
    }
    let cc = Directives::from_headers(headers, &header::CACHE_CONTROL);
    let sc = match &rules.surrogate {
        Some(token) if headers.contains_key(SURROGATE_CONTROL) => {
            Directives::surrogate(headers, token)
        }
        _ => Directives::default(),
    };
    let must_understand = cc.has("must-understand");
    if must_understand && !understood(status) {
        return Err("must-understand");
    }
    if sc.has("no-store") {
        return Err("no-store");
    }
    let surrogate_age = sc.delta("max-age");
    // A Surrogate-Control max-age speaks for surrogates and overrides Cache-Control's storage
    // restrictions; otherwise `no-store` and `private` forbid storing.
    if surrogate_age == Delta::None {
        if (cc.has("no-store") && !(must_understand && understood(status))) || request_no_store {
            return Err("no-store");
        }
        if cc.has("private") && cc.fields("private").is_empty() {
            return Err("private");
        }
    }
    let public = cc.has("public");
    let s_maxage = cc.delta("s-maxage");
    let must_revalidate =
        cc.has("must-revalidate") || cc.has("proxy-revalidate") || s_maxage != Delta::None;
    let auth_ok = public || cc.has("must-revalidate") || s_maxage != Delta::None;
    if request_has_auth && !auth_ok {
        return Err("authorization");
    }
    if vary_names(headers).is_none() {
        return Err("vary-star");
    }
    let date = first_date(headers, header::DATE).flatten().unwrap_or(response_time);
    let secs = |d: Delta| match d {
        Delta::Secs(n) => n,
        _ => 0,
    };
    let mut flags = 0;
    let lifetime = if surrogate_age != Delta::None {
        secs(surrogate_age)
    } else if s_maxage != Delta::None {
        secs(s_maxage)
    } else if cc.delta("max-age") != Delta::None {
        secs(cc.delta("max-age"))
    } else if let Some(expires) = first_date(headers, header::EXPIRES) {
        expires.map_or(0, |e| e.saturating_sub(date) / NANOS)
    } else if heuristic_status(status) || public {
        match first_date(headers, header::LAST_MODIFIED).flatten() {
            Some(lm) if lm < date => {
                flags |= F_HEURISTIC;
                let span = (date - lm) as f64 / NANOS as f64;
                ((span * rules.heuristic_fraction) as u64).min(rules.heuristic_max)
            }
            _ => 0,
        }
    } else {
        return Err("no-freshness");
    };
    let (lifetime, age_value) = match age_value(headers) {
        Ok(a) => (lifetime.min(DELTA_MAX), a),
        Err(()) => (0, 0),
    };
    let apparent_age = response_time.saturating_sub(date);
    let response_delay = response_time.saturating_sub(request_time);
    let corrected_age = age_value.saturating_mul(NANOS).saturating_add(response_delay);
    // `no-cache="field"` only withholds those fields (they are not stored, see
    // `withheld_fields`); the bare form forbids use without validation.
    if cc.has("no-cache") && cc.fields("no-cache").is_empty() {
        flags |= F_NO_CACHE;
    }
    if must_revalidate {
        flags |= F_MUST_REVALIDATE;
    }
    if auth_ok {
        flags |= F_AUTH_OK;
    }
    if cc.has("immutable") {
        flags |= F_IMMUTABLE;
    }
    let f = Freshness {
        lifetime,
        initial_age: apparent_age.max(corrected_age),
        response_time,
        swr: secs(cc.delta("stale-while-revalidate")),
        sie: secs(cc.delta("stale-if-error")),
        flags,
    };
    // A response that is stale on arrival, has no validator and no stale window can never be
    // used: storing it would only displace something useful.
    let validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    if f.remaining(response_time) <= 0 && !validator && f.swr == 0 && f.sie == 0 {
        return Err("stale");
    }
    Ok(f)
}

/// Fields a response withholds from reuse without validation (`no-cache="a, b"`) or from shared
/// caches (`private="a"`, §5.2.2.4, §5.2.2.7): the cache stores the response without them.
pub(crate) fn withheld_fields(headers: &HeaderMap) -> Vec<String> {
    let cc = Directives::from_headers(headers, &header::CACHE_CONTROL);
    let mut f = cc.fields("no-cache");
    f.extend(cc.fields("private"));
    f
}

/// Headers a `304` must not change in the stored response (§3.2, and what caches agree on).
fn keep_on_update(name: &HeaderName) -> bool {
    is_hop_by_hop(name)
        || matches!(
            name.as_str(),
            "content-length" | "content-encoding" | "content-md5" | "content-range" | "etag"
        )
}

/// Freshens stored headers with those of a `304` (§3.2): each header the `304` carries replaces
/// the stored one, except the ones describing the stored body.
pub(crate) fn freshen(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    let mut names: Vec<&HeaderName> = not_modified.keys().collect();
    names.retain(|n| !keep_on_update(n));
    for n in names {
        stored.remove(n);
        for v in not_modified.get_all(n) {
            stored.append(n.clone(), v.clone());
        }
    }
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// Weak comparison of two entity tags (RFC 9110 §8.8.3.2).
fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    strip_weak(a.trim_ascii()) == strip_weak(b.trim_ascii())
}

/// Whether a stored response with `headers` satisfies the request's preconditions, so the
/// cache answers `304 Not Modified` (§4.3.2). `If-None-Match` takes precedence over
/// `If-Modified-Since`.
pub(crate) fn not_modified(request: &HeaderMap, headers: &HeaderMap) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = headers.get(header::ETAG) else { return false };
        return request.get_all(header::IF_NONE_MATCH).iter().any(|v| {
            v.as_bytes().split(|&c| c == b',').any(|t| {
                let t = t.trim_ascii();
                t == b"*" || weak_eq(t, etag.as_bytes())
            })
        });
    }
    if let Some(ims) = request.get(header::IF_MODIFIED_SINCE).and_then(http_date) {
        let modified = headers
            .get(header::LAST_MODIFIED)
            .or_else(|| headers.get(header::DATE))
            .and_then(http_date);
        return modified.is_some_and(|m| m <= ims);
    }
    false
}

/// The headers of a `304` built from a stored response: everything but the ones describing
/// the body (RFC 9110 §15.4.5).
pub(crate) fn not_modified_headers(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    for n in [header::CONTENT_LENGTH, header::CONTENT_RANGE, header::TRANSFER_ENCODING] {
        h.remove(n);
    }
    h
}

/// What a request asks of the cache (§5.2.1).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestDirectives {
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) only_if_cached: bool,
    /// `max-age`: the oldest response acceptable, seconds.
    pub(crate) max_age: Option<u64>,
    /// `max-stale`: `Some(None)` accepts any staleness.
    pub(crate) max_stale: Option<Option<u64>>,
    pub(crate) min_fresh: Option<u64>,
    pub(crate) stale_if_error: Option<u64>,
}

impl RequestDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let cc = Directives::from_headers(headers, &header::CACHE_CONTROL);
        let pragma_no_cache = cc.is_empty()
            && headers
                .get_all(header::PRAGMA)
                .iter()
                .any(|v| v.as_bytes().eq_ignore_ascii_case(b"no-cache"));
        let delta = |name| match cc.delta(name) {
            Delta::Secs(n) => Some(n),
            // An invalid max-age asks for a revalidation, the safe reading.
            Delta::Invalid | Delta::Bare if name == "max-age" => Some(0),
            _ => None,
        };
        RequestDirectives {
            no_cache: cc.has("no-cache") || pragma_no_cache,
            no_store: cc.has("no-store"),
            only_if_cached: cc.has("only-if-cached"),
            max_age: delta("max-age"),
            max_stale: match cc.delta("max-stale") {
                Delta::None => None,
                Delta::Secs(n) => Some(Some(n)),
                Delta::Bare | Delta::Invalid => Some(None),
            },
            min_fresh: delta("min-fresh"),
            stale_if_error: delta("stale-if-error"),
        }
    }
}

/// How a stored response may be used for a request at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usable {
    /// Fresh enough for this request: serve it.
    Fresh,
    /// Stale, but the request accepts it (`max-stale`): serve it.
    StaleAccepted,
    /// Stale within `stale-while-revalidate`: serve it and refresh in the background.
    StaleWhileRevalidate,
    /// Must be validated with the origin first.
    Validate,
}

/// Decides how the stored response with freshness `f` answers a request with directives `rd`.
pub(crate) fn usable(f: &Freshness, rd: &RequestDirectives, now: Timestamp) -> Usable {
    if f.has(F_NO_CACHE) || (rd.no_cache && !(f.has(F_IMMUTABLE) && f.remaining(now) > 0)) {
        return Usable::Validate;
    }
    let age = f.age_secs(now);
    if rd.max_age.is_some_and(|m| age > m) {
        return Usable::Validate;
    }
    let remaining = f.remaining(now);
    let min_fresh = i128::from(rd.min_fresh.unwrap_or(0)) * i128::from(NANOS);
    if remaining > 0 && remaining >= min_fresh.max(1) {
        return Usable::Fresh;
    }
    if f.has(F_MUST_REVALIDATE) {
        return Usable::Validate;
    }
    let stale_by = u64::try_from(-remaining).unwrap_or(0);
    if remaining <= 0 {
        match rd.max_stale {
            Some(None) => return Usable::StaleAccepted,
            Some(Some(s)) if stale_by <= s.saturating_mul(NANOS) => return Usable::StaleAccepted,
            _ => {}
        }
        if f.swr > 0 && stale_by <= f.swr.saturating_mul(NANOS) && rd.min_fresh.is_none() {
            return Usable::StaleWhileRevalidate;
        }
    }
    Usable::Validate
}

/// Whether the stored response allows serving it stale at all (§4.2.4): not with `no-cache`,
/// `must-revalidate`, `proxy-revalidate` or `s-maxage`.
pub(crate) fn may_serve_stale(f: &Freshness) -> bool {
    !f.has(F_NO_CACHE) && !f.has(F_MUST_REVALIDATE)
}

/// Whether a stale response may answer when the origin failed (RFC 5861 §4, RFC 9111 §4.2.4).
pub(crate) fn stale_if_error(f: &Freshness, rd: &RequestDirectives, now: Timestamp) -> bool {
    if !may_serve_stale(f) {
        return false;
    }
    let window = rd.stale_if_error.unwrap_or(0).max(f.sie);
    let stale_by = u64::try_from(-f.remaining(now)).unwrap_or(0);
    window > 0 && stale_by <= window.saturating_mul(NANOS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = 1_704_067_200 * NANOS;

    fn rules() -> Rules {
        Rules {
            heuristic_fraction: 0.1,
            heuristic_max: 86_400,
            surrogate: Some("omnicache".into()),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn analyze_at(status: u16, pairs: &[(&str, &str)]) -> Result<Freshness, NotStored> {
        analyze(
            StatusCode::from_u16(status).unwrap(),
            &headers(pairs),
            false,
            false,
            T0,
            T0,
            &rules(),
        )
    }

    fn date(t: Timestamp) -> String {
        fmt_http_date(t)
    }

    // §5.2.2.1, §5.2.2.10: s-maxage beats max-age beats Expires in a shared cache.
    #[test]
    fn freshness_lifetime_precedence() {
        let d = date(T0);
        let later = date(T0 + 100 * NANOS);
        assert_eq!(analyze_at(200, &[("cache-control", "max-age=60")]).unwrap().lifetime, 60);
        let f = analyze_at(200, &[("cache-control", "max-age=60, s-maxage=5")]).unwrap();
        assert_eq!(f.lifetime, 5);
        assert!(f.has(F_MUST_REVALIDATE), "s-maxage implies proxy-revalidate");
        let f = analyze_at(200, &[("expires", &later), ("date", &d)]).unwrap();
        assert_eq!(f.lifetime, 100);
        let f =
            analyze_at(200, &[("expires", &later), ("date", &d), ("cache-control", "max-age=7")]);
        assert_eq!(f.unwrap().lifetime, 7, "max-age beats Expires");
        // Invalid Expires means already expired; without a validator it is not worth storing.
        assert_eq!(analyze_at(200, &[("expires", "0")]), Err("stale"));
        let f = analyze_at(200, &[("expires", "0"), ("etag", "\"a\"")]).unwrap();
        assert_eq!(f.lifetime, 0);
    }

    // §4.2.2: heuristics only with Last-Modified, for heuristically cacheable codes or public.
    #[test]
    fn heuristic_freshness() {
        let d = date(T0);
        let lm = date(T0 - 1000 * NANOS);
        let f = analyze_at(200, &[("date", &d), ("last-modified", &lm)]).unwrap();
        assert_eq!(f.lifetime, 100);
        assert!(f.has(F_HEURISTIC));
        assert_eq!(analyze_at(201, &[("date", &d), ("last-modified", &lm)]), Err("no-freshness"));
        assert_eq!(analyze_at(599, &[("date", &d), ("last-modified", &lm)]), Err("no-freshness"));
        let f =
            analyze_at(599, &[("date", &d), ("last-modified", &lm), ("cache-control", "public")]);
        assert_eq!(f.unwrap().lifetime, 100);
        assert_eq!(analyze_at(200, &[]), Err("stale"), "no freshness, no validator");
    }

    // §3, §5.2.2: what may not be stored.
    #[test]
    fn storability() {
        let cc = |v: &str| analyze_at(200, &[("cache-control", v)]);
        assert_eq!(cc("max-age=60, no-store"), Err("no-store"));
        assert_eq!(cc("max-age=60, nO-StOrE"), Err("no-store"));
        assert_eq!(cc("max-age=60, private"), Err("private"));
        let q = cc("max-age=60, private=\"x-user\", no-cache=\"set-cookie\"").unwrap();
        assert!(!q.has(F_NO_CACHE), "qualified forms withhold fields, not the response");
        let h = headers(&[(
            "cache-control",
            "max-age=60, private=\"X-User\", no-cache=\"set-cookie\"",
        )]);
        assert_eq!(withheld_fields(&h), ["set-cookie", "x-user"]);
        assert_eq!(analyze_at(206, &[("cache-control", "max-age=60")]), Err("status"));
        assert_eq!(
            analyze_at(200, &[("cache-control", "max-age=60"), ("vary", "Foo, *")]),
            Err("vary-star")
        );
        assert_eq!(
            analyze_at(599, &[("cache-control", "max-age=60, must-understand")]),
            Err("must-understand")
        );
        assert!(cc("max-age=60, no-store, must-understand").is_ok(), "understood status");
        let auth = |v: &str| {
            analyze(
                StatusCode::OK,
                &headers(&[("cache-control", v)]),
                true,
                false,
                T0,
                T0,
                &rules(),
            )
        };
        assert_eq!(auth("max-age=60"), Err("authorization"));
        assert!(auth("max-age=60, public").is_ok());
        assert!(auth("s-maxage=60").is_ok());
        // Surrogate-Control speaks for surrogates.
        let sc = analyze_at(
            200,
            &[("cache-control", "no-store"), ("surrogate-control", "max-age=100;omnicache")],
        );
        assert_eq!(sc.unwrap().lifetime, 100);
        let sc =
            analyze_at(200, &[("cache-control", "max-age=100"), ("surrogate-control", "no-store")]);
        assert_eq!(sc, Err("no-store"));
    }

    // §4.2.3 and the Age parsing the test suites expect.
    #[test]
    fn age_calculation_and_malformed_age() {
        let f = analyze_at(200, &[("cache-control", "max-age=100"), ("age", "30")]).unwrap();
        assert_eq!(f.age_secs(T0), 30);
        assert_eq!(f.age_secs(T0 + 5 * NANOS), 35);
        assert_eq!(f.remaining(T0 + 70 * NANOS), 0);
        for bad in ["abc", "-5", "0, 0", "3600, 3600", " x"] {
            let f = analyze_at(
                200,
                &[("cache-control", "max-age=100"), ("age", bad), ("etag", "\"x\"")],
            );
            assert_eq!(f.unwrap().lifetime, 0, "Age: {bad} makes it stale");
        }
        let f = analyze_at(
            200,
            &[("cache-control", "max-age=100"), ("age", "0"), ("age", "0"), ("etag", "\"x\"")],
        );
        assert_eq!(f.unwrap().lifetime, 0, "two Age lines");
        // Apparent age from a Date in the past, and response delay.
        let d = date(T0 - 10 * NANOS);
        for (lenient, age) in [("0,7200", 0), ("30;foo=bar", 30), ("40.0", 40)] {
            let f = analyze_at(200, &[("cache-control", "max-age=100"), ("age", lenient)]);
            assert_eq!(f.unwrap().age_secs(T0), age, "Age: {lenient} reads its leading number");
        }
        let f = analyze(
            StatusCode::OK,
            &headers(&[("cache-control", "max-age=100"), ("date", &d)]),
            false,
            false,
            T0 - 2 * NANOS,
            T0,
            &rules(),
        )
        .unwrap();
        assert_eq!(f.age_secs(T0), 10);
    }

    // §5.2.1 request directives and §4.2.4 serving stale.
    #[test]
    fn request_directives_and_stale_use() {
        let f = analyze_at(
            200,
            &[("cache-control", "max-age=10, stale-while-revalidate=20, stale-if-error=60")],
        )
        .unwrap();
        let rd = |v: &str| RequestDirectives::parse(&headers(&[("cache-control", v)]));
        let none = RequestDirectives::default();
        assert_eq!(usable(&f, &none, T0 + 5 * NANOS), Usable::Fresh);
        assert_eq!(usable(&f, &rd("max-age=3"), T0 + 5 * NANOS), Usable::Validate);
        assert_eq!(usable(&f, &rd("min-fresh=6"), T0 + 5 * NANOS), Usable::Validate);
        assert_eq!(usable(&f, &rd("no-cache"), T0 + 5 * NANOS), Usable::Validate);
        assert_eq!(usable(&f, &none, T0 + 15 * NANOS), Usable::StaleWhileRevalidate);
        assert_eq!(usable(&f, &none, T0 + 31 * NANOS), Usable::Validate);
        assert_eq!(usable(&f, &rd("max-stale"), T0 + 1000 * NANOS), Usable::StaleAccepted);
        assert_eq!(usable(&f, &rd("max-stale=5"), T0 + 16 * NANOS), Usable::StaleWhileRevalidate);
        assert!(stale_if_error(&f, &none, T0 + 70 * NANOS));
        assert!(!stale_if_error(&f, &none, T0 + 71 * NANOS));
        let mr =
            analyze_at(200, &[("cache-control", "max-age=10, must-revalidate, stale-if-error=60")])
                .unwrap();
        assert_eq!(usable(&mr, &rd("max-stale"), T0 + 11 * NANOS), Usable::Validate);
        assert!(!stale_if_error(&mr, &none, T0 + 11 * NANOS));
        let pragma = RequestDirectives::parse(&headers(&[("pragma", "no-cache")]));
        assert!(pragma.no_cache);
        let both = RequestDirectives::parse(&headers(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-stale"),
        ]));
        assert!(!both.no_cache, "Pragma is ignored when Cache-Control is present");
    }

    // §3.2: a 304 freshens everything but the body's description.
    #[test]
    fn freshening_keeps_body_headers() {
        let mut stored = headers(&[
            ("etag", "\"a\""),
            ("content-length", "5"),
            ("content-type", "text/plain"),
            ("x-test", "1"),
            ("content-encoding", "gzip"),
        ]);
        let nm = headers(&[
            ("etag", "\"b\""),
            ("content-length", "0"),
            ("content-type", "text/html"),
            ("x-test", "2"),
            ("content-encoding", "br"),
            ("connection", "close"),
        ]);
        freshen(&mut stored, &nm);
        assert_eq!(stored["etag"], "\"a\"");
        assert_eq!(stored["content-length"], "5");
        assert_eq!(stored["content-encoding"], "gzip");
        assert_eq!(stored["content-type"], "text/html");
        assert_eq!(stored["x-test"], "2");
        assert!(!stored.contains_key("connection"));
    }

    // §4.3.2: answering conditionals from the cache.
    #[test]
    fn conditional_requests() {
        let lm = date(T0);
        let stored = headers(&[("etag", "W/\"v1\""), ("last-modified", &lm)]);
        let req = |pairs: &[(&str, &str)]| not_modified(&headers(pairs), &stored);
        assert!(req(&[("if-none-match", "\"v1\"")]), "weak comparison");
        assert!(req(&[("if-none-match", "\"x\", W/\"v1\"")]));
        assert!(req(&[("if-none-match", "*")]));
        assert!(!req(&[("if-none-match", "\"v2\"")]));
        assert!(req(&[("if-modified-since", &lm)]));
        assert!(!req(&[("if-modified-since", &date(T0 - NANOS))]));
        assert!(
            !req(&[("if-none-match", "\"v2\""), ("if-modified-since", &lm)]),
            "If-None-Match takes precedence"
        );
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_stripped() {
        let mut h = headers(&[
            ("connection", "x-a, close"),
            ("x-a", "1"),
            ("keep-alive", "timeout=5"),
            ("x-b", "2"),
            ("transfer-encoding", "chunked"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-b"], "2");
    }
}
