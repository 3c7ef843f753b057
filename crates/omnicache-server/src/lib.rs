//! # omnicache-server
//!
//! The OmniCache server: named caches over a JSON REST API, behind API keys. The embedded
//! default ([`ServerConfig::default`]) listens on `127.0.0.1:7070` and keeps a `default` cache
//! in memory over a SQLite disk tier in `./omnicache-data`, so it needs no external service.
//!
//! | route | what | scope |
//! |---|---|---|
//! | `GET /health`, `GET /ready` | liveness; readiness with every cache's tiers and breakers | none |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of all this (also `docs/openapi.json`) | none |
//! | `GET /caches`, `POST /caches` | list (those the key covers); create from a spec | read; admin |
//! | `GET`, `PATCH`, `DELETE /caches/{name}` | info; switch the policy live; drop with its data | read; admin; admin |
//! | `GET /caches/{name}/stats`, `POST /caches/{name}/clear` | hit ratio, removals, tiers; empty it | read; write |
//! | `POST /caches/{name}/invalidate` | `{"by": "key"\|"keys"\|"tag"\|"prefix"\|"subject"\|"all", "value": ...}` | write |
//! | `GET /caches/{name}/keys` | keys by `?prefix=`, paginated with `?limit=&cursor=` | read |
//! | `PUT`, `GET`, `DELETE /caches/{name}/entries/{key}` | the body as is, with `?ttl=&tags=` and its content type | write; read; write |
//! | `POST /caches/{name}/batch/get`, `.../batch/set` | up to 1,000 keys or entries at once | read; write |
//! | `POST /caches/{name}/warm`, `.../import`; `GET .../export` | JSON/JSONL/CSV in (bad rows by line), JSONL out | write; write; read |
//! | `GET`, `POST /keys`, `DELETE /keys/{name}` | API keys: list, make (shown once), revoke | admin |
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with its HTTP status (401 without
//! a valid key, 403 without the scope or for another cache, 413/414/400 past the limits; a request
//! line over 65,534 bytes, HTTP/1's own limit, is 414 `uri_too_long` on a connection's first
//! request and hyper's bodyless 414 on later ones).
//! Requests send `Authorization: Bearer KEY` (or `X-Api-Key: KEY`). On first start the server
//! makes an admin key, keeps only its SHA-256 in `keys.json`, writes the key itself to
//! `admin.key` (mode 0600) next to the data, and prints it once; more keys come from the config
//! file (by hash) or `POST /keys`. The configuration ([`ServerConfig::load`]) is a TOML file
//! (`deploy/omnicache.toml`) whose every key an `OMNICACHE_...` variable overrides; with a
//! `[tls]` certificate the server speaks HTTPS (rustls).
//!
//! ## Features
//!
//! - `redis`: Redis tiers in the config and the create-cache API.
//! - `s3`: S3 tiers likewise.
//!
//! The memory cache and the disk tier are always there.
//!
//! ## Example
//!
//! ```no_run
//! # async fn run() -> omnicache_core::Result<()> {
//! let running = omnicache_server::start(omnicache_server::ServerConfig::default()).await?;
//! println!("listening on http://{}", running.addr());
//! running.wait().await
//! # }
//! ```

mod api;
pub mod config;
pub mod datadir;
mod keys;
mod line_guard;
mod tls;
mod value;

pub use api::{cache_db_path, openapi, AppState};
pub use config::ServerConfig;
pub use keys::{ApiKeys, Grant, RevokeError, Scope};
pub use value::{pack_value, unpack_value};

use omnicache_core::{Error, ErrorKind, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A started server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    data_dir: PathBuf,
    new_admin_key: Option<String>,
    key_file: PathBuf,
    proxy_addr: Option<SocketAddr>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The base URL: `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
    /// Where the data lives.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
    /// The admin key, if this start created it (shown once).
    pub fn new_admin_key(&self) -> Option<&str> {
        self.new_admin_key.as_deref()
    }
    /// The file holding the admin key.
    pub fn key_file(&self) -> &std::path::Path {
        &self.key_file
    }
    /// The caching proxy's address, for a [`start_proxy`] start.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy_addr
    }
    /// Serves until SIGINT or SIGTERM, then drains requests and flushes every cache.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Other, "server task failed").with_source(e))?
    }
}

/// What every start opens: the data directory, the caches and the keys.
struct Opened {
    state: Arc<AppState>,
    new_admin_key: Option<String>,
    key_file: PathBuf,
    addr: SocketAddr,
}

/// A listener for the API, with its TLS configuration when there is one.
type ApiListener = (tokio::net::TcpListener, Option<rustls::ServerConfig>);

/// Opens what every start needs, and binds the API's listener.
async fn open(config: &ServerConfig) -> Result<(Opened, ApiListener)> {
    let lock = datadir::open(&config.data_dir)?;
    config.validate().map_err(Error::invalid_input)?;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let (keys, new_admin_key) = ApiKeys::load_or_create(&config.data_dir, &config.keys)?;
    let key_file = keys::admin_key_file(&config.data_dir);
    let state = Arc::new(AppState::open(config.clone(), keys, lock).await?);
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    Ok((Opened { state, new_admin_key, key_file, addr }, (listener, tls)))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::from(e).context(format!("binding {addr}")))
}

/// Serves the REST API (over TLS when configured) until `stop` completes, then drains.
async fn serve_api(
    listener: tokio::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
    app: api::ApiService,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use axum::ServiceExt as _;
    use line_guard::Guarded;
    let app = app.into_make_service();
    let served = match tls {
        None => axum::serve(Guarded(listener), app).with_graceful_shutdown(stop).await,
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls)?;
            axum::serve(Guarded(listener), app).with_graceful_shutdown(stop).await
        }
    };
    served.map_err(|e| Error::from(e).context("serving the API"))
}

impl Opened {
    /// The handle of a start whose serving `task` runs.
    fn running(self, config: ServerConfig, proxy_addr: Option<SocketAddr>, task: Task) -> Running {
        Running {
            addr: self.addr,
            scheme: if config.tls.is_some() { "https" } else { "http" },
            data_dir: config.data_dir,
            new_admin_key: self.new_admin_key,
            key_file: self.key_file,
            proxy_addr,
            task,
        }
    }
}

type Task = tokio::task::JoinHandle<Result<()>>;

/// Opens the data directory, the caches and the keys, binds, and starts serving.
pub async fn start(config: ServerConfig) -> Result<Running> {
    let (o, (listener, tls)) = open(&config).await?;
    let state = o.state.clone();
    let app = api::service(state.clone());
    let task = tokio::spawn(async move {
        serve_api(listener, tls, app, shutdown_signal()).await?;
        state.shutdown().await;
        Ok(())
    });
    Ok(o.running(config, None, task))
}

/// What `omnicache proxy` adds to a server configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where the proxy listens.
    pub listen: SocketAddr,
    /// The origin, `http://host:port[/base]`.
    pub upstream: String,
    /// The named cache holding the responses (declared in the config file with its tiers, or
    /// memory over disk by default).
    pub cache: String,
    /// The largest response body stored.
    pub max_body_bytes: usize,
}

/// Starts a caching reverse proxy in front of `proxy.upstream` (RFC 9111, see
/// `omnicache-http`), storing in the named cache `proxy.cache`, and the REST API on
/// `config.listen` for the same caches: stats, invalidation by key, prefix or tag
/// (`Surrogate-Key`), health. SIGINT/SIGTERM drain both, finish background revalidations and
/// flush the caches.
pub async fn start_proxy(config: ServerConfig, proxy: ProxyConfig) -> Result<Running> {
    use tower_layer::Layer;
    let upstream = omnicache_http::proxy::Upstream::new(&proxy.upstream)?;
    let (o, (admin, tls)) = open(&config).await?;
    let state = o.state.clone();
    let store = state.cache_or_default(&proxy.cache).await?;
    let http = omnicache_http::HttpCache::builder(Arc::new(store))
        .max_body_bytes(proxy.max_body_bytes)
        .build();
    state.serve_http(&proxy.cache, http.clone());
    let proxy_app = axum::Router::new().fallback_service(http.layer().layer(upstream));
    let front = bind(proxy.listen).await?;
    let proxy_addr = front.local_addr()?;
    let app = api::service(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(async move {
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let admin_task = serve_api(admin, tls, app, stopped(stop_rx.clone()));
        let front_task =
            axum::serve(front, proxy_app).with_graceful_shutdown(stopped(stop_rx.clone()));
        let (a, b) = tokio::join!(admin_task, async move { front_task.await });
        a?;
        b.map_err(|e| Error::from(e).context("serving the proxy"))?;
        http.idle().await;
        state.shutdown().await;
        Ok(())
    });
    Ok(o.running(config, Some(proxy_addr), task))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
