//! The origin side of a caching reverse proxy: [`Upstream`] forwards every request to one origin
//! over HTTP/1.1. Put an [`HttpCache`](crate::HttpCache) layer in front of it and serve the pair
//! with hyper or axum, as `omnicache proxy` does.

use crate::body::{BoxError, CacheBody};
use crate::policy::strip_hop_by_hop;
use crate::OriginUnreachable;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use omnicache_core::{Error, Result};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// Forwards requests to one origin (`http://host:port[/base]`), keeping method, path, query,
/// headers (minus hop-by-hop ones) and body. A connection failure or timeout becomes a
/// `502 Bad Gateway` or `504 Gateway Timeout` response, so the cache in front can serve stale
/// (`stale-if-error`) instead. Idle connections to the origin are kept for at most 4 s.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpConnector, UnsyncBoxBody<Bytes, BoxError>>,
    scheme: Scheme,
    authority: Authority,
    base: String,
    timeout: Duration,
}

impl Upstream {
    /// An upstream at `url`; only `http://` origins (TLS terminates at the proxy's listener, not
    /// towards the origin). Requests time out after 30 s.
    pub fn new(url: &str) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid_input(format!("upstream `{url}` is not a URL: {e}")))?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        if scheme != Scheme::HTTP {
            return Err(Error::invalid_input(format!(
                "upstream `{url}`: only http:// origins are supported"
            )));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| Error::invalid_input(format!("upstream `{url}` has no host")))?;
        let base = uri.path().trim_end_matches('/').to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // Idle connections to the origin are reused for at most 4 s: under the 5 s keep-alive of
        // Node's and Apache's servers, so a request is not written to a connection the origin is
        // closing (hyper does not retry a request once written, and it would become a 502).
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(4))
            .build(connector);
        Ok(Upstream { client, scheme, authority, base, timeout: Duration::from_secs(30) })
    }

    /// How long to wait for the origin's response headers. Default 30 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    fn target(&self, uri: &Uri) -> Option<Uri> {
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{pq}", self.base))
            .build()
            .ok()
    }
}

fn text(status: StatusCode, why: String) -> Response<CacheBody> {
    let mut r = Response::new(CacheBody::full(Bytes::from(why)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

impl<B> Service<Request<B>> for Upstream
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<CacheBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Response<CacheBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let asked = parts.version;
            let Some(uri) = this.target(&parts.uri) else {
                return Ok(text(StatusCode::BAD_REQUEST, "bad request target\n".into()));
            };
            parts.uri = uri;
            parts.version = http::Version::HTTP_11;
            strip_hop_by_hop(&mut parts.headers);
            let req = Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());
            let unreachable = |status, why: String| {
                let mut r = text(status, why);
                r.extensions_mut().insert(OriginUnreachable);
                Ok(r)
            };
            match tokio::time::timeout(this.timeout, this.client.request(req)).await {
                Ok(Ok(mut resp)) => {
                    // Answer in the client's version, whatever the origin's (an HTTP/1.0
                    // origin must not turn a 1.1 client's reply into 1.0).
                    *resp.version_mut() = asked;
                    Ok(resp.map(CacheBody::stream))
                }
                Ok(Err(e)) => {
                    unreachable(StatusCode::BAD_GATEWAY, format!("upstream failed: {e}\n"))
                }
                Err(_) => unreachable(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n".into()),
            }
        })
    }
}
