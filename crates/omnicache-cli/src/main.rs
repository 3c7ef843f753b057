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

mod args;
mod client;
mod offline;
mod remote;

use args::*;
use clap::Parser;
use client::{cell, segment, table, Client, Connection, Failure, Outcome};
use offline::*;
use remote::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
        Command::Security(s) => security_command(s),
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
