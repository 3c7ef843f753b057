//! # omnicache-server
//!
//! The OmniCache server: named caches over a JSON REST API, behind API keys. The embedded
//! default ([`ServerConfig::default`]) listens on `127.0.0.1:7070` and keeps a `default` cache
//! in memory over a SQLite disk tier in `./omnicache-data`, so it needs no external service.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness, no key needed |
//! | `GET /ready` | readiness with every cache's tiers, their health and breaker, no key needed |
//! | `GET /caches` | the caches and their entry counts |
//! | `POST /caches` | create `{"name": "...", "l1_capacity": n, "default_ttl_secs": s}` (kept across restarts) |
//! | `GET /caches/{name}` | a cache's tiers, health, breakers and counters |
//! | `DELETE /caches/{name}` | drop a cache and its data (not `default`) |
//! | `POST /caches/{name}/invalidate` | `{"by": "key"\|"keys"\|"tag"\|"prefix"\|"subject"\|"all", "value": ...}` |
//! | `GET /caches/{name}/keys` | keys by `?prefix=`, paginated with `?limit=&cursor=` |
//! | `PUT /caches/{name}/entries/{key}` | store the body; `?ttl=SECONDS&tags=a,b`; the `Content-Type` is kept |
//! | `GET /caches/{name}/entries/{key}` | the body as stored, with its content type |
//! | `DELETE /caches/{name}/entries/{key}` | remove |
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with its HTTP status. Requests
//! need `Authorization: Bearer KEY` (or `X-Api-Key: KEY`). On first start the server makes an
//! admin key, keeps only its SHA-256 in `keys.json`, writes the key itself to `admin.key`
//! (mode 0600) next to the data, and prints it once.
//!
//! ## Features
//!
//! None; the server always has the memory cache and the disk tier.
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
mod keys;
mod tls;
mod value;

pub use api::{cache_db_path, openapi, AppState};
pub use config::ServerConfig;
pub use keys::{ApiKeys, Grant, Scope};
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
    /// Serves until SIGINT or SIGTERM, then drains requests and flushes every cache.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Other, "server task failed").with_source(e))?
    }
}

/// Opens the data directory, the caches and the keys, binds, and starts serving.
pub async fn start(config: ServerConfig) -> Result<Running> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Error::from(e).context(format!("creating the data directory {}", config.data_dir.display()))
    })?;
    config.validate().map_err(Error::invalid_input)?;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let (keys, new_admin_key) = ApiKeys::load_or_create(&config.data_dir, &config.keys)?;
    let key_file = keys::admin_key_file(&config.data_dir);
    let state = Arc::new(AppState::open(config.clone(), keys).await?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::from(e).context(format!("binding {}", config.listen)))?;
    let addr = listener.local_addr()?;
    let app = api::router(state.clone());
    let task = tokio::spawn(async move {
        let served = match tls {
            None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await,
            Some(tls) => {
                let listener = tls::TlsListener::new(listener, tls)?;
                axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
            }
        };
        served.map_err(|e| Error::from(e).context("serving"))?;
        state.shutdown().await;
        Ok(())
    });
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    Ok(Running { addr, scheme, data_dir: config.data_dir, new_admin_key, key_file, task })
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
