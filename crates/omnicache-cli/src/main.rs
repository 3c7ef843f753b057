//! `omnicache`: run the server, drive it, and replay traces.
//!
//! ```text
//! omnicache serve                              # 127.0.0.1:7070, data in ./omnicache-data
//! omnicache serve --config deploy/omnicache.toml
//! omnicache cache create users --policy lru --capacity 50000
//! omnicache entry set users alice '{"plan":"pro"}' --ttl 3600 --content-type application/json
//! omnicache entry get users alice
//! omnicache export users > users.jsonl && omnicache import users.jsonl --cache users
//! omnicache sim trace.gz --policy default,lru,arc,opt --size 1000,1%
//! ```
//!
//! Exit codes: 0 done; 1 the operation failed (server unreachable, not found, refused key,
//! server error); 2 the arguments or the request are wrong.

mod client;

use clap::{Args, Parser, Subcommand};
use client::{cell, segment, table, Client, Connection, Failure, Outcome};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "omnicache",
    version,
    about = "OmniCache: a caching platform for Rust services",
    after_help = "Exit codes: 0 done; 1 the operation failed; 2 the arguments or the request are wrong.\n\nStart with `omnicache serve`, then for example `omnicache cache list`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (memory + disk by default; no external service needed).
    #[command(
        after_help = "Examples:\n  omnicache serve\n  omnicache serve --listen 0.0.0.0:8080 --data /var/lib/omnicache\n  omnicache serve --config deploy/omnicache.toml\n\nEvery config key can be set as OMNICACHE_<KEY> (nested keys joined by __), e.g. OMNICACHE_CACHES__USERS__L1_CAPACITY=50000. Flags win over the environment, which wins over the file."
    )]
    Serve {
        /// A TOML config file (see deploy/omnicache.toml).
        #[arg(long, env = "OMNICACHE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on. Default: 127.0.0.1:7070.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the caches' data and the API keys. Default: ./omnicache-data.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Entries a cache keeps in memory unless it says otherwise. Default: 100,000.
        #[arg(long)]
        l1_capacity: Option<u64>,
        /// Threads serving requests. Default: one per core.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Run a caching reverse proxy (RFC 9111) in front of an HTTP origin, with the server's
    /// REST API beside it for stats and purges.
    #[command(
        after_help = "Examples:\n  omnicache proxy --upstream http://127.0.0.1:3000\n  omnicache proxy --listen 0.0.0.0:80 --upstream http://app:3000 --config deploy/omnicache.toml\n\nResponses live in the named cache --cache (declare it in the config file to give it Redis or S3 tiers; by default memory over disk). Purge by tag (Surrogate-Key) or by path prefix with POST /caches/http/invalidate on the API address, e.g. {\"by\": \"prefix\", \"value\": \"/products/\"}."
    )]
    Proxy {
        /// The origin to forward to: http://host:port[/base].
        #[arg(long)]
        upstream: String,
        /// Address the proxy listens on. Default: 127.0.0.1:8080.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Address of the REST API (stats, invalidation, health). Default: the config's, 127.0.0.1:7070.
        #[arg(long)]
        api: Option<SocketAddr>,
        /// The cache holding responses.
        #[arg(long, default_value = "http")]
        cache: String,
        /// Largest response body stored, in bytes; larger ones stream through.
        #[arg(long, default_value_t = 8 << 20)]
        max_body_bytes: usize,
        /// A TOML config file (see deploy/omnicache.toml).
        #[arg(long, env = "OMNICACHE_CONFIG")]
        config: Option<PathBuf>,
        /// Directory for the caches' data and the API keys. Default: ./omnicache-data.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Manage caches on a server.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Read and write entries on a server.
    #[command(subcommand)]
    Entry(EntryCommand),
    /// Manage API keys on a server (needs an admin key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// A cache's tiers: what they cost.
    #[command(subcommand)]
    Tiers(TiersCommand),
    /// Load entries from a JSON, JSONL or CSV file into a cache, with a progress bar. Invalid
    /// rows are skipped and reported with their line numbers.
    #[command(
        after_help = "Examples:\n  omnicache warm entries.jsonl\n  omnicache warm users.csv --cache users --ttl 3600\n  omnicache warm entries.jsonl --data ./omnicache-data   # offline, into a stopped server's data\n\nRecords: {\"key\": \"...\", \"value\": ..., \"ttl_secs\": n, \"tags\": [...], \"content_type\": \"...\"}; CSV rows: key,value[,ttl_secs[,tags]]"
    )]
    Warm {
        /// The file to load (format by extension: .json, .jsonl/.ndjson, .csv).
        file: PathBuf,
        /// The cache to fill.
        #[arg(long, default_value = "default")]
        cache: String,
        /// Write into this data directory instead of sending to a server.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The format, when the extension does not say: json, jsonl or csv.
        #[arg(long)]
        format: Option<String>,
        /// A TTL in seconds for every entry, replacing the file's.
        #[arg(long)]
        ttl: Option<f64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Write every live entry of a cache as JSONL (to a file or stdout).
    #[command(
        after_help = "Examples:\n  omnicache export users -o users.jsonl\n  omnicache export users --prefix session: > sessions.jsonl"
    )]
    Export {
        /// The cache.
        cache: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// The file to write. Default: stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Load an export back into a cache.
    #[command(after_help = "Example:\n  omnicache import users.jsonl --cache users")]
    Import {
        /// The JSONL file written by `omnicache export`.
        file: PathBuf,
        /// The cache to fill.
        #[arg(long, default_value = "default")]
        cache: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Replay access traces against eviction policies and print hit ratios (all cores).
    #[command(
        after_help = "Examples:\n  omnicache sim trace.gz --policy default,lru,arc,s3fifo,sieve,lirs,wtinylfu,opt --size 1000,1%\n  omnicache sim a.lis b.gz --format csv --plot hits.svg\n\nTrace formats: lines (one key per line, optionally gzip), csv:COLUMN, arc (.lis), lirs, oracle (libCacheSim oracleGeneral); guessed from the file name."
    )]
    Sim {
        /// Trace files.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// Policies: any of the strategies, `default` and `opt` (Belady's bound).
        #[arg(long, short, default_value = "default,lru,arc,s3fifo,sieve,lirs,wtinylfu,opt")]
        policy: String,
        /// Cache sizes: entries, or a percentage of the trace's distinct keys.
        #[arg(long, short, default_value = "1%")]
        size: String,
        /// table or csv (`trace,policy,size,requests,hits,hit_ratio`).
        #[arg(long, default_value = "table")]
        format: String,
        /// Draw hit ratio against size as SVG, OPT as the ceiling.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// The trace format when the name does not say.
        #[arg(long)]
        trace_format: Option<String>,
        /// Threads. Default: all cores.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Create a cache (needs admin).
    #[command(
        after_help = "Examples:\n  omnicache cache create users\n  omnicache cache create sessions --policy wtinylfu --max-bytes 268435456 --ttl 3600"
    )]
    Create {
        /// 1 to 64 of a-z, 0-9, '-' and '_'.
        name: String,
        /// The eviction policy (s3fifo, lru, lfu, ttl, gdsf, arc, lirs, lrb, selector, sieve,
        /// wtinylfu, wtinylfu-fixed).
        #[arg(long)]
        policy: Option<String>,
        /// Entries kept in memory.
        #[arg(long)]
        capacity: Option<u64>,
        /// Bound memory by value bytes instead.
        #[arg(long)]
        max_bytes: Option<u64>,
        /// Default TTL in seconds.
        #[arg(long)]
        ttl: Option<f64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the caches.
    List(ConnOnly),
    /// A cache's policy, configuration and tiers.
    Info(Named),
    /// Switch a cache's eviction policy live, keeping every entry (needs admin).
    #[command(after_help = "Example:\n  omnicache cache set-policy users arc")]
    SetPolicy {
        /// The cache.
        name: String,
        /// The new policy.
        policy: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete a cache and its data (needs admin).
    Delete(Named),
    /// Hit ratio, removals and per-tier counters.
    Stats(Named),
    /// Remove every entry.
    Clear(Named),
}

#[derive(Debug, Args)]
struct ConnOnly {
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, Args)]
struct Named {
    /// The cache.
    name: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, Subcommand)]
enum EntryCommand {
    /// Print a value (raw bytes to stdout or --output).
    #[command(after_help = "Example:\n  omnicache entry get users alice")]
    Get {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        /// Write the value here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Store a value (from the argument, --file, or stdin).
    #[command(
        after_help = "Examples:\n  omnicache entry set users alice '{\"plan\":\"pro\"}' --content-type application/json --ttl 3600\n  omnicache entry set images logo --file logo.png --content-type image/png\n  echo hi | omnicache entry set default greeting"
    )]
    Set {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        /// The value. Default: --file, else stdin.
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Time to live in seconds.
        #[arg(long)]
        ttl: Option<f64>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        /// The content type to keep with it.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete an entry.
    Delete {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Report that an entry's value is bad; enough complaints within the cache's window
    /// invalidate it everywhere.
    #[command(after_help = "Example:\n  omnicache entry complain users alice")]
    Complain {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// List keys by prefix (every page).
    List {
        /// The cache.
        cache: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Stop after this many keys.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
enum TiersCommand {
    /// The estimated monthly cost of what each tier holds, and of its requests at the rate seen
    /// since the server started, by each tier's cost model (config `cost`).
    #[command(after_help = "Example:\n  omnicache tiers cost users")]
    Cost(Named),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a key; it is printed once.
    #[command(
        after_help = "Example:\n  omnicache key create users-reader --scope read --cache users"
    )]
    Create {
        /// A unique name.
        name: String,
        /// read, write or admin; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Limit the key to this cache; repeat for several. Default: all caches.
        #[arg(long = "cache")]
        caches: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List keys (never the keys themselves).
    List(ConnOnly),
    /// Revoke a key made with `key create` (never the last admin key).
    Revoke {
        /// Its name.
        name: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Make a new admin key when every admin key is lost: run on the server's machine, with
    /// the server stopped, against its data directory. Prints the key and writes it to
    /// DATA/admin.key (0600).
    #[command(after_help = "Example:\n  omnicache key reset-admin --data /var/lib/omnicache")]
    ResetAdmin {
        /// The server's data directory.
        #[arg(long, default_value = "omnicache-data")]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(hoist_connection_flags(std::env::args_os().collect()));
    let outcome = match cli.command {
        Command::Serve { config, listen, data, l1_capacity, workers } => {
            server_config(config.as_deref(), listen, data, workers).and_then(|mut config| {
                if let Some(c) = l1_capacity {
                    config.l1_capacity = c;
                }
                runtime(config.workers)?.block_on(serve(config))
            })
        }
        Command::Proxy { upstream, listen, api, cache, max_body_bytes, config, data } => {
            let proxy = omnicache_server::ProxyConfig { listen, upstream, cache, max_body_bytes };
            server_config(config.as_deref(), api, data, None)
                .and_then(|config| runtime(config.workers)?.block_on(run_proxy(config, proxy)))
        }
        Command::Warm { file, cache, data: Some(data), format, ttl, .. } => runtime(None)
            .and_then(|rt| rt.block_on(warm_offline(&file, &cache, &data, format.as_deref(), ttl))),
        Command::Sim { traces, policy, size, format, plot, trace_format, threads } => {
            sim(&traces, &policy, &size, &format, plot.as_deref(), trace_format.as_deref(), threads)
        }
        other => remote(other),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // With --json, errors are JSON too, in the server's shape, on stdout where scripts read.
        Err(f) if std::env::args().any(|a| a == "--json") => {
            let kind = f
                .kind
                .clone()
                .unwrap_or_else(|| if f.code == 2 { "usage" } else { "failed" }.to_string());
            println!("{}", serde_json::json!({"error": {"code": kind, "message": f.message}}));
            ExitCode::from(f.code)
        }
        Err(f) => {
            eprintln!("omnicache: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The connection flags (`--server`, `--api-key`, `--ca-cert`, `--json`) are accepted before
/// the command too (`omnicache --server URL cache list`): they are moved after it, where each
/// client command reads them.
fn hoist_connection_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const WITH_VALUE: &[&str] = &["--server", "--api-key", "--ca-cert"];
    let mut out = Vec::with_capacity(args.len());
    let mut moved = Vec::new();
    let mut it = args.into_iter();
    out.extend(it.next()); // the program
    while let Some(a) = it.next() {
        let text = a.to_string_lossy();
        if text == "--json" || WITH_VALUE.iter().any(|f| text.starts_with(&format!("{f}="))) {
            moved.push(a);
        } else if WITH_VALUE.contains(&text.as_ref()) {
            moved.push(a);
            moved.extend(it.next());
        } else {
            // The command: everything from here stays in place, the flags follow it.
            out.push(a);
            out.extend(it.by_ref());
        }
    }
    out.extend(moved);
    out
}

/// The file's configuration under the environment's, under the flags.
fn server_config(
    file: Option<&Path>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    workers: Option<usize>,
) -> Outcome<omnicache_server::ServerConfig> {
    for name in omnicache_server::ServerConfig::unknown_env(std::env::vars()) {
        eprintln!(
            "warning: {name} is not a setting and is ignored (settings: OMNICACHE_ and a config key in upper case, e.g. OMNICACHE_LISTEN, OMNICACHE_CACHES__USERS__L1_CAPACITY)"
        );
    }
    let mut config = omnicache_server::ServerConfig::load(file, std::env::vars())
        .map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(l) = listen {
        config.listen = l;
    }
    if let Some(d) = data {
        config.data_dir = d;
    }
    if let Some(w) = workers {
        config.workers = Some(w);
    }
    config.validate().map_err(Failure::usage)?;
    Ok(config)
}

/// The runtime serving requests: `workers` threads, by default one per core.
fn runtime(workers: Option<usize>) -> Outcome<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().build().map_err(|e| Failure::failed(format!("could not start the runtime: {e}")))
}

async fn serve(config: omnicache_server::ServerConfig) -> Outcome<()> {
    let running = omnicache_server::start(config)
        .await
        .map_err(|e| Failure::failed(format!("could not start: {e}")))?;
    println!("OmniCache listening on {}", running.url());
    println!("  data:      {}", running.data_dir().display());
    print_admin_key(running.new_admin_key(), running.key_file());
    println!("  use it as: Authorization: Bearer <key>");
    running.wait().await.map_err(|e| Failure::failed(e.to_string()))?;
    println!("OmniCache stopped; every cache flushed.");
    Ok(())
}

/// Shows a new admin key once, on a terminal only: when stdout is a log (systemd's journal, a
/// container's log, a file), the key stays in its 0600 file and the line says where.
fn print_admin_key(new: Option<&str>, file: &std::path::Path) {
    use std::io::IsTerminal;
    match new {
        Some(key) if std::io::stdout().is_terminal() => println!(
            "  admin key: {key}\n             (shown once; also in {}, readable by you only)",
            file.display()
        ),
        Some(_) => println!(
            "  admin key: created in {} (readable by you only; not printed, as this output is not a terminal)",
            file.display()
        ),
        None => println!("  admin key: in {}", file.display()),
    }
}

async fn run_proxy(
    config: omnicache_server::ServerConfig,
    proxy: omnicache_server::ProxyConfig,
) -> Outcome<()> {
    let (upstream, cache) = (proxy.upstream.clone(), proxy.cache.clone());
    let running = omnicache_server::start_proxy(config, proxy).await.map_err(|e| {
        let message = format!("could not start: {e}");
        if e.kind() == omnicache_core::ErrorKind::InvalidInput {
            Failure::usage(message)
        } else {
            Failure::failed(message)
        }
    })?;
    if let Some(addr) = running.proxy_addr() {
        println!("OmniCache proxy listening on http://{addr} -> {upstream}");
    }
    println!("  API:       {} (cache {cache:?})", running.url());
    println!("  data:      {}", running.data_dir().display());
    print_admin_key(running.new_admin_key(), running.key_file());
    running.wait().await.map_err(|e| Failure::failed(e.to_string()))?;
    println!("OmniCache proxy stopped; the cache is flushed.");
    Ok(())
}

fn warm_format(file: &Path, format: Option<&str>) -> Outcome<omnicache_tiers::warm::WarmFormat> {
    use omnicache_tiers::warm::WarmFormat;
    match format {
        Some("json") => Ok(WarmFormat::Json),
        Some("jsonl") | Some("ndjson") => Ok(WarmFormat::Jsonl),
        Some("csv") => Ok(WarmFormat::Csv),
        Some(other) => {
            Err(Failure::usage(format!("--format {other:?}: expected json, jsonl or csv")))
        }
        None => WarmFormat::from_path(file).ok_or_else(|| {
            Failure::usage(format!(
                "cannot tell the format of {}; pass --format json|jsonl|csv",
                file.display()
            ))
        }),
    }
}

fn check_ttl(ttl: Option<f64>) -> Outcome<()> {
    match ttl {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            Err(Failure::usage(format!("--ttl must be a positive number of seconds, got {t}")))
        }
        _ => Ok(()),
    }
}

fn bar(total: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn print_skipped(skipped: &[(u64, String)]) {
    for (line, reason) in skipped.iter().take(20) {
        println!("  line {line}: {reason}");
    }
    if skipped.len() > 20 {
        println!("  ... and {} more", skipped.len() - 20);
    }
}

async fn warm_offline(
    file: &Path,
    cache: &str,
    data: &Path,
    format: Option<&str>,
    ttl: Option<f64>,
) -> Outcome<()> {
    use omnicache_tiers::warm::WarmOptions;
    let format = warm_format(file, format)?;
    check_ttl(ttl)?;
    let open = || {
        std::fs::File::open(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))
    };
    // Counted in one streaming pass, then read again a line at a time: never held whole.
    let total =
        count_lines(open()?).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let failed = |e: omnicache_core::Error| Failure::failed(e.to_string());
    // A running server holds the data directory: writing under it would go unseen by its memory.
    let _lock = omnicache_server::datadir::open(data).map_err(failed)?;
    let disk = std::sync::Arc::new(
        omnicache_tiers::disk::DiskTier::open(omnicache_server::cache_db_path(data, cache))
            .map_err(failed)?,
    );
    let target = omnicache_tiers::tiered::TieredCache::builder()
        .l1_capacity(10_000)
        .tier(disk, omnicache_tiers::tiered::WritePolicy::Through)
        .sweep_interval(None)
        .build()
        .map_err(failed)?;
    let bar = bar(total, "rows");
    let started = clock_now();
    let mut progress = |n: u64| bar.set_position(n);
    let pack = |ct: &str, v: Vec<u8>| omnicache_server::pack_value(ct, &v);
    let report = omnicache_tiers::warm::warm(
        &target,
        std::io::BufReader::with_capacity(1 << 20, open()?),
        format,
        WarmOptions {
            ttl_override: ttl.map(std::time::Duration::from_secs_f64),
            progress_every: 10_000,
            progress: Some(&mut progress),
            pack: Some(&pack),
        },
    )
    .await
    .map_err(|e| Failure::usage(e.to_string()))?;
    target.shutdown().await;
    bar.finish_and_clear();
    println!(
        "warmed cache {cache:?}: {} entries loaded, {} rows skipped, in {:.2} s",
        report.loaded,
        report.skipped.len(),
        secs_since(started)
    );
    print_skipped(&report.skipped);
    rows_skipped(report.skipped.len())
}

/// A load that skipped rows did not do all it was asked: exit 1, after the report.
fn rows_skipped(n: usize) -> Outcome<()> {
    if n == 0 {
        Ok(())
    } else {
        Err(Failure::failed(format!("{n} rows were skipped (listed above); the rest were loaded")))
    }
}

fn count_lines(mut f: std::fs::File) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        n += buf[..got].iter().filter(|&&c| c == b'\n').count() as u64;
    }
}

/// A reader that advances a progress bar.
struct Progress<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn upload(
    client: &Client,
    path: &str,
    file: &Path,
    content_type: &str,
    cache: &str,
    verb: &str,
) -> Outcome<()> {
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = bar(len, "bytes");
    let reader = Progress { inner: std::io::BufReader::new(f), bar: bar.clone() };
    let started = clock_now();
    let reply = client.call("POST", path, Some((content_type, Box::new(reader))))?;
    bar.finish_and_clear();
    let v = reply.json()?;
    let skipped: Vec<(u64, String)> = v["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["line"].as_u64().unwrap_or(0), cell(&s["reason"])))
        .collect();
    if client.json {
        println!("{v}");
    } else {
        println!(
            "{verb} cache {cache:?}: {} entries loaded, {} rows skipped, in {:.2} s",
            v["loaded"],
            skipped.len(),
            secs_since(started)
        );
        print_skipped(&skipped);
    }
    rows_skipped(skipped.len())
}

fn remote(command: Command) -> Outcome<()> {
    match command {
        Command::Cache(c) => cache_command(c),
        Command::Entry(e) => entry_command(e),
        Command::Key(k) => key_command(k),
        Command::Tiers(t) => tiers_command(t),
        Command::Warm { file, cache, format, ttl, conn, .. } => {
            let format = warm_format(&file, format.as_deref())?;
            check_ttl(ttl)?;
            let client = Client::new(&conn)?;
            let fmt = match format {
                omnicache_tiers::warm::WarmFormat::Json => "json",
                omnicache_tiers::warm::WarmFormat::Jsonl => "jsonl",
                omnicache_tiers::warm::WarmFormat::Csv => "csv",
            };
            let mut path = format!("/caches/{}/warm?format={fmt}", segment(&cache));
            if let Some(t) = ttl {
                path.push_str(&format!("&ttl={t}"));
            }
            upload(&client, &path, &file, "application/octet-stream", &cache, "warmed")
        }
        Command::Import { file, cache, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/caches/{}/import", segment(&cache));
            upload(&client, &path, &file, "application/x-ndjson", &cache, "imported")
        }
        Command::Export { cache, prefix, output, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/caches/{}/export?prefix={}", segment(&cache), segment(&prefix));
            let resp = client.send("GET", &path, None)?;
            if resp.status().as_u16() >= 400 {
                let reply = client::read_reply(resp)?;
                return Err(client.failure(&reply));
            }
            let mut reader = resp.into_body().into_reader();
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes} exported  {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut buf = vec![0u8; 64 << 10];
            let mut lines = 0u64;
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| Failure::failed(format!("reading the export: {e}")))?;
                if n == 0 {
                    break;
                }
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                out.write_all(&buf[..n])
                    .map_err(|e| Failure::failed(format!("writing the export: {e}")))?;
                if output.is_some() {
                    spinner.inc(n as u64);
                }
            }
            out.flush().map_err(|e| Failure::failed(format!("writing the export: {e}")))?;
            spinner.finish_and_clear();
            if let Some(p) = output {
                eprintln!("exported {lines} entries of cache {cache:?} to {}", p.display());
            }
            Ok(())
        }
        Command::Serve { .. } | Command::Sim { .. } | Command::Proxy { .. } => {
            Err(Failure::failed("internal: not a client command"))
        }
    }
}

/// `name` if the server knows it as a policy (in lower case), else a usage error listing them.
fn known_policy(name: &str) -> Outcome<String> {
    let lower = name.to_ascii_lowercase();
    if omnicache_strategies::NAMES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Failure::usage(format!(
            "--policy {name:?}: unknown policy; expected one of {}",
            omnicache_strategies::NAMES.join(", ")
        )))
    }
}

fn tiers_command(t: TiersCommand) -> Outcome<()> {
    match t {
        TiersCommand::Cost(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("GET", &format!("/caches/{}/cost", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                let money = |x: &Value| format!("${:.4}", x.as_f64().unwrap_or(0.0));
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        vec![
                            cell(&t["tier"]),
                            cell(&t["entries"]),
                            cell(&t["bytes"]),
                            format!("${}/GB-mo", cell(&t["usd_per_gb_month"])),
                            money(&t["storage_usd_month"]),
                            money(&t["requests_usd_month"]),
                        ]
                    })
                    .collect();
                client::table(
                    &["tier", "entries", "bytes", "price", "storage/month", "requests/month"],
                    &rows,
                );
                println!("total: {} a month", money(&v["total_usd_month"]));
            });
        }
    }
    Ok(())
}

fn print_json_or(client: &Client, v: &Value, human: impl FnOnce(&Value)) {
    if client.json {
        println!("{v}");
    } else {
        human(v);
    }
}

fn cache_command(c: CacheCommand) -> Outcome<()> {
    match c {
        CacheCommand::Create { name, policy, capacity, max_bytes, ttl, conn } => {
            let client = Client::new(&conn)?;
            let mut body = json!({ "name": name });
            if let Some(p) = policy {
                body["policy"] = json!(known_policy(&p)?);
            }
            if let Some(c) = capacity {
                body["l1_capacity"] = json!(c);
            }
            if let Some(b) = max_bytes {
                body["l1_max_bytes"] = json!(b);
            }
            if let Some(t) = ttl {
                body["default_ttl_secs"] = json!(t);
            }
            let v = client.call_json("POST", "/caches", &body)?.json()?;
            print_json_or(&client, &v, |_| println!("created cache {name:?}"));
        }
        CacheCommand::List(ConnOnly { conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", "/caches", None)?.json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["caches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| vec![cell(&c["name"]), cell(&c["policy"]), cell(&c["l1_entries"])])
                    .collect();
                table(&["NAME", "POLICY", "ENTRIES IN MEMORY"], &rows);
            });
        }
        CacheCommand::Info(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", &format!("/caches/{}", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cache:    {}", cell(&v["name"]));
                println!("policy:   {}", cell(&v["policy"]));
                println!("memory:   {} entries", cell(&v["l1_entries"]));
                println!("spec:     {}", v["spec"]);
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| vec![cell(&t["tier"]), cell(&t["health"]), cell(&t["breaker"])])
                    .collect();
                table(&["TIER", "HEALTH", "BREAKER"], &rows);
            });
        }
        CacheCommand::SetPolicy { name, policy, conn } => {
            let client = Client::new(&conn)?;
            let v = client
                .call_json(
                    "PATCH",
                    &format!("/caches/{}", segment(&name)),
                    &json!({ "policy": known_policy(&policy)? }),
                )?
                .json()?;
            print_json_or(&client, &v, |v| {
                println!(
                    "cache {name:?} now evicts by {}, {} entries kept",
                    cell(&v["policy"]),
                    cell(&v["l1_entries"])
                )
            });
        }
        CacheCommand::Delete(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &format!("/caches/{}", segment(&name)), None)?;
            if !client.json {
                println!("deleted cache {name:?}");
            }
        }
        CacheCommand::Stats(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("GET", &format!("/caches/{}/stats", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cache:      {} ({})", cell(&v["name"]), cell(&v["policy"]));
                println!(
                    "memory:     {} entries, weighted size {}",
                    cell(&v["l1_entries"]),
                    cell(&v["l1_weighted_size"])
                );
                println!(
                    "lookups:    {} hits, {} misses, hit ratio {:.4}",
                    cell(&v["hits"]),
                    cell(&v["misses"]),
                    v["hit_ratio"].as_f64().unwrap_or(0.0)
                );
                println!(
                    "promotions: {}, demotions: {}",
                    cell(&v["promotions"]),
                    cell(&v["demotions"])
                );
                if let Some(r) = v["removals"].as_object() {
                    let parts: Vec<String> = r.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    println!("removals:   {}", parts.join(", "));
                }
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        ["tier", "health", "breaker", "hits", "misses", "errors", "writes"]
                            .iter()
                            .map(|k| cell(&t[*k]))
                            .collect()
                    })
                    .collect();
                table(&["TIER", "HEALTH", "BREAKER", "HITS", "MISSES", "ERRORS", "WRITES"], &rows);
            });
        }
        CacheCommand::Clear(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("POST", &format!("/caches/{}/clear", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cleared cache {name:?}: {} entries removed", cell(&v["removed"]))
            });
        }
    }
    Ok(())
}

fn entry_path(cache: &str, key: &str) -> String {
    format!("/caches/{}/entries/{}", segment(cache), segment(key))
}

fn entry_command(e: EntryCommand) -> Outcome<()> {
    match e {
        EntryCommand::Get { cache, key, output, conn } => {
            let client = Client::new(&conn)?;
            let reply = client.call("GET", &entry_path(&cache, &key), None)?;
            if client.json {
                let v = match std::str::from_utf8(&reply.body) {
                    Ok(s) => json!({ "key": key, "value": s, "content_type": reply.content_type }),
                    Err(_) => json!({
                        "key": key,
                        "value_hex": reply.body.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                        "content_type": reply.content_type,
                    }),
                };
                println!("{v}");
                return Ok(());
            }
            match output {
                Some(p) => std::fs::write(&p, &reply.body)
                    .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&reply.body)
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure::failed(format!("writing stdout: {e}")))?;
                }
            }
        }
        EntryCommand::Set { cache, key, value, file, ttl, tags, content_type, conn } => {
            check_ttl(ttl)?;
            let client = Client::new(&conn)?;
            let bytes = match (value, file) {
                (Some(v), None) => v.into_bytes(),
                (None, Some(f)) => std::fs::read(&f)
                    .map_err(|e| Failure::usage(format!("{}: {e}", f.display())))?,
                (None, None) => {
                    let mut b = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut b)
                        .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
                    b
                }
                (Some(_), Some(_)) => {
                    return Err(Failure::usage("give the value or --file, not both"))
                }
            };
            let mut path = entry_path(&cache, &key);
            let mut query = Vec::new();
            if let Some(t) = ttl {
                query.push(format!("ttl={t}"));
            }
            if let Some(t) = tags {
                query.push(format!("tags={}", segment(&t)));
            }
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            client.call("PUT", &path, Some((&content_type, Box::new(bytes.as_slice()))))?;
            let v = json!({"cache": cache, "key": key, "stored": true, "bytes": bytes.len()});
            print_json_or(&client, &v, |_| {
                println!("stored {key:?} in cache {cache:?} ({} bytes)", bytes.len());
            });
        }
        EntryCommand::Complain { cache, key, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("{}/complaints", entry_path(&cache, &key));
            let v = client.call("POST", &path, None)?.json()?;
            print_json_or(&client, &v, |v| {
                if v["invalidated"] == true {
                    println!("{key:?} invalidated after {} complaints", v["complaints"]);
                } else {
                    println!("{key:?}: {} complaint(s) so far", v["complaints"]);
                }
            });
        }
        EntryCommand::Delete { cache, key, conn } => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &entry_path(&cache, &key), None)?;
            if !client.json {
                println!("deleted {key:?} from cache {cache:?}");
            }
        }
        EntryCommand::List { cache, prefix, limit, conn } => {
            let client = Client::new(&conn)?;
            let mut cursor: Option<String> = None;
            let mut all: Vec<String> = Vec::new();
            loop {
                let mut path = format!(
                    "/caches/{}/keys?limit=1000&prefix={}",
                    segment(&cache),
                    segment(&prefix)
                );
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", segment(c)));
                }
                let v = client.call("GET", &path, None)?.json()?;
                all.extend(v["keys"].as_array().into_iter().flatten().map(cell));
                cursor = v["next"].as_str().map(str::to_string);
                if cursor.is_none() || limit.is_some_and(|l| all.len() >= l) {
                    break;
                }
            }
            if let Some(l) = limit {
                all.truncate(l);
            }
            if client.json {
                println!("{}", json!({ "keys": all }));
            } else {
                for k in all {
                    println!("{k}");
                }
            }
        }
    }
    Ok(())
}

fn key_command(k: KeyCommand) -> Outcome<()> {
    match k {
        KeyCommand::Create { name, scopes, caches, conn } => {
            let client = Client::new(&conn)?;
            let mut body = json!({ "name": name, "scopes": scopes });
            if !caches.is_empty() {
                body["caches"] = json!(caches);
            }
            let v = client.call_json("POST", "/keys", &body)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("{}", cell(&v["key"]));
                eprintln!("key {name:?} created; it is shown only now");
            });
        }
        KeyCommand::List(ConnOnly { conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", "/keys", None)?.json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        vec![
                            cell(&k["name"]),
                            cell(&k["scopes"]),
                            if k["caches"].is_null() { "all".into() } else { cell(&k["caches"]) },
                            if k["from_config"].as_bool() == Some(true) { "config" } else { "api" }
                                .into(),
                        ]
                    })
                    .collect();
                table(&["NAME", "SCOPES", "CACHES", "FROM"], &rows);
            });
        }
        KeyCommand::ResetAdmin { data } => {
            let key = omnicache_server::ApiKeys::reset_admin(&data)
                .map_err(|e| Failure::failed(e.to_string()))?;
            println!("admin key: {key}");
            println!("(also in {}, readable by you only)", data.join("admin.key").display());
        }
        KeyCommand::Revoke { name, conn } => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &format!("/keys/{}", segment(&name)), None)?;
            if !client.json {
                println!("revoked key {name:?}");
            }
        }
    }
    Ok(())
}

fn sim(
    traces: &[PathBuf],
    policy: &str,
    size: &str,
    format: &str,
    plot: Option<&Path>,
    trace_format: Option<&str>,
    threads: usize,
) -> Outcome<()> {
    use omnicache_strategies::sim::{
        parse_sizes, plot_svg, simulate, write_csv, write_table, Opt, PolicyReplayer, Replayer,
        TraceFormat,
    };
    use std::sync::Arc;
    let csv = match format {
        "csv" => true,
        "table" => false,
        other => return Err(Failure::usage(format!("--format {other:?}: expected table or csv"))),
    };
    let replayers = policy
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == "opt" {
                return Ok(Arc::new(Opt) as Arc<dyn Replayer>);
            }
            omnicache_strategies::by_name_for_replay(p)
                .map(|factory| {
                    Arc::new(PolicyReplayer { name: p.to_string(), factory }) as Arc<dyn Replayer>
                })
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "unknown policy {p:?}; known: {}, opt (moka and quick_cache are in the bench's sim: cargo run --release -p omnicache-bench --bin sim)",
                        omnicache_strategies::NAMES.join(", ")
                    ))
                })
        })
        .collect::<Outcome<Vec<_>>>()?;
    let sizes = parse_sizes(size).map_err(|e| Failure::usage(format!("--size: {e}")))?;
    let forced = match trace_format {
        Some(f) => Some(TraceFormat::from_flag(f).ok_or_else(|| {
            Failure::usage(format!(
                "--trace-format {f:?}: expected lines, csv:COLUMN, arc, lirs or oracle"
            ))
        })?),
        None => None,
    };
    let rows = simulate(traces, forced.as_ref(), &replayers, &sizes, threads)
        .map_err(|e| Failure::usage(e.to_string()))?;
    print!("{}", if csv { write_csv(&rows) } else { write_table(&rows) });
    if let Some(path) = plot {
        std::fs::write(path, plot_svg(&rows))
            .map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

/// Now, by core's system clock (time is read through core's `Clock` everywhere).
fn clock_now() -> omnicache_core::Timestamp {
    omnicache_core::Clock::now(&omnicache_core::SystemClock)
}

/// Seconds since `started`, a [`clock_now`] reading.
fn secs_since(started: omnicache_core::Timestamp) -> f64 {
    clock_now().saturating_sub(started) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::hoist_connection_flags;

    fn hoisted(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(std::ffi::OsString::from).collect();
        hoist_connection_flags(args).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn connection_flags_before_the_command_move_after_it() {
        assert_eq!(
            hoisted(&["omnicache", "--server", "http://h:1", "--json", "cache", "list"]),
            ["omnicache", "cache", "list", "--server", "http://h:1", "--json"]
        );
        assert_eq!(
            hoisted(&["omnicache", "--api-key=k", "entry", "get", "c", "--json"]),
            ["omnicache", "entry", "get", "c", "--json", "--api-key=k"]
        );
        // After the command nothing moves, not even a value that looks like a flag.
        assert_eq!(
            hoisted(&["omnicache", "entry", "set", "c", "k", "--json"]),
            ["omnicache", "entry", "set", "c", "k", "--json"]
        );
        assert_eq!(hoisted(&["omnicache", "--help"]), ["omnicache", "--help"]);
    }
}
