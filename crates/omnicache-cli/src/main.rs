//! `omnicache`: run the server, and (to come) drive it.
//!
//! ```text
//! omnicache serve                      # the embedded default: 127.0.0.1:7070, ./omnicache-data
//! omnicache serve --listen 0.0.0.0:8080 --data /var/lib/omnicache
//! omnicache warm entries.jsonl         # load a file into ./omnicache-data's default cache
//! ```

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "omnicache", version, about = "OmniCache: a caching platform for Rust services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (memory + disk by default; no external service needed).
    #[command(
        after_help = "Examples:\n  omnicache serve\n  omnicache serve --listen 0.0.0.0:8080 --data /var/lib/omnicache"
    )]
    Serve {
        /// Address to listen on.
        #[arg(long, env = "OMNICACHE_LISTEN", default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// Directory for the caches' data and the API keys.
        #[arg(long, env = "OMNICACHE_DATA", default_value = "omnicache-data")]
        data: PathBuf,
        /// Entries each cache keeps in memory.
        #[arg(long, env = "OMNICACHE_L1_CAPACITY", default_value_t = 100_000)]
        l1_capacity: u64,
    },
    /// Load entries from a JSON, JSONL or CSV file into a cache's data directory, with a
    /// progress bar. Invalid rows are skipped and reported with their line numbers.
    #[command(
        after_help = "Examples:\n  omnicache warm entries.jsonl\n  omnicache warm users.csv --cache users --ttl 3600\n\nRecords: {\"key\": \"...\", \"value\": ..., \"ttl_secs\": n, \"tags\": [...]}; CSV rows: key,value[,ttl_secs[,tags]]"
    )]
    Warm {
        /// The file to load (format by extension: .json, .jsonl/.ndjson, .csv).
        file: PathBuf,
        /// The cache to fill.
        #[arg(long, default_value = "default")]
        cache: String,
        /// The data directory (as given to `serve`).
        #[arg(long, env = "OMNICACHE_DATA", default_value = "omnicache-data")]
        data: PathBuf,
        /// The format, when the extension does not say: json, jsonl or csv.
        #[arg(long)]
        format: Option<String>,
        /// A TTL in seconds for every entry, replacing the file's.
        #[arg(long)]
        ttl: Option<f64>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Warm { file, cache, data, format, ttl } => {
            match warm(&file, &cache, &data, format.as_deref(), ttl).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("omnicache warm: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Serve { listen, data, l1_capacity } => {
            let config = omnicache_server::ServerConfig {
                listen,
                data_dir: data,
                l1_capacity,
                ..Default::default()
            };
            let running = match omnicache_server::start(config).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("omnicache: could not start: {e}");
                    return ExitCode::from(1);
                }
            };
            println!("OmniCache listening on http://{}", running.addr());
            println!("  data:      {}", running.data_dir().display());
            match running.new_admin_key() {
                Some(key) => println!(
                    "  admin key: {key}\n             (shown once; also in {}, readable by you only)\n  use it as: Authorization: Bearer <key>",
                    running.key_file().display()
                ),
                None => println!("  admin key: in {} (Authorization: Bearer <key>)", running.key_file().display()),
            }
            match running.wait().await {
                Ok(()) => {
                    println!("OmniCache stopped; every cache flushed.");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("omnicache: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn warm(
    file: &std::path::Path,
    cache: &str,
    data: &std::path::Path,
    format: Option<&str>,
    ttl: Option<f64>,
) -> omnicache_core::Result<ExitCode> {
    use omnicache_tiers::warm::{WarmFormat, WarmOptions};
    let format = match format {
        Some("json") => WarmFormat::Json,
        Some("jsonl") | Some("ndjson") => WarmFormat::Jsonl,
        Some("csv") => WarmFormat::Csv,
        Some(other) => {
            eprintln!("omnicache warm: --format {other:?}: expected json, jsonl or csv");
            return Ok(ExitCode::from(2));
        }
        None => {
            match WarmFormat::from_path(file) {
                Some(f) => f,
                None => {
                    eprintln!("omnicache warm: cannot tell the format of {}; pass --format json|jsonl|csv", file.display());
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    let ttl_override = match ttl {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(std::time::Duration::from_secs_f64(t)),
        Some(t) => {
            eprintln!("omnicache warm: --ttl must be a positive number of seconds, got {t}");
            return Ok(ExitCode::from(2));
        }
    };
    let bytes =
        std::fs::read(file).map_err(|e| omnicache_core::Error::from(e).context(file.display()))?;
    let total = bytecount_lines(&bytes);
    let disk = std::sync::Arc::new(omnicache_tiers::disk::DiskTier::open(
        omnicache_server::cache_db_path(data, cache),
    )?);
    let target = omnicache_tiers::tiered::TieredCache::builder()
        .l1_capacity(10_000)
        .tier(disk, omnicache_tiers::tiered::WritePolicy::Through)
        .sweep_interval(None)
        .build()?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut progress = |n: u64| bar.set_position(n);
    let report = omnicache_tiers::warm::warm(
        &target,
        bytes.as_slice(),
        format,
        WarmOptions { ttl_override, progress_every: 10_000, progress: Some(&mut progress) },
    )
    .await?;
    target.shutdown().await;
    bar.finish_and_clear();
    println!(
        "warmed cache {cache:?}: {} entries loaded, {} rows skipped, in {:.2} s",
        report.loaded,
        report.skipped.len(),
        started.elapsed().as_secs_f64()
    );
    for (line, reason) in report.skipped.iter().take(20) {
        println!("  line {line}: {reason}");
    }
    if report.skipped.len() > 20 {
        println!("  ... and {} more", report.skipped.len() - 20);
    }
    Ok(ExitCode::SUCCESS)
}

fn bytecount_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}
