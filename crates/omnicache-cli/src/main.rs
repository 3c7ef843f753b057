//! `omnicache`: run the server, and (to come) drive it.
//!
//! ```text
//! omnicache serve                      # the embedded default: 127.0.0.1:7070, ./omnicache-data
//! omnicache serve --listen 0.0.0.0:8080 --data /var/lib/omnicache
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
