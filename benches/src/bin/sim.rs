//! The trace simulator with the peers: `omnicache sim`'s interface, plus `moka` and
//! `quick_cache` replayed in the same run.
//!
//! `cargo run --release -p omnicache-bench --bin sim -- TRACE... --policy default,lru,arc,s3fifo,sieve,wtinylfu,opt --size 1000,1% [--format table|csv] [--plot FILE.svg] [--trace-format lines|csv:COLUMN|arc|lirs|oracle] [--threads N]`
//!
//! Policies: every name in `omnicache::strategies::NAMES`, `opt` (Belady), and the peers `moka`
//! and `quick_cache`, measured in the same run.

use omnicache::strategies::sim::{
    parse_sizes, plot_svg, simulate, write_csv, write_table, Opt, PolicyReplayer, Replayer,
    TraceFormat,
};
use omnicache_bench::peers::{MokaReplayer, QuickCacheReplayer};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: sim TRACE... [--policy default,lru,arc,s3fifo,sieve,wtinylfu,opt,moka,quick_cache] \
[--size 1000,1%] [--format table|csv] [--plot FILE.svg] [--trace-format lines|csv:COLUMN|arc|lirs|oracle] [--threads N]";

fn replayer(name: &str) -> Option<Arc<dyn Replayer>> {
    match name {
        "opt" => Some(Arc::new(Opt)),
        "moka" => Some(Arc::new(MokaReplayer { strict: false })),
        "moka-strict" => Some(Arc::new(MokaReplayer { strict: true })),
        "quick_cache" | "quickcache" => Some(Arc::new(QuickCacheReplayer)),
        _ => omnicache::strategies::by_name_for_replay(name).map(|factory| {
            Arc::new(PolicyReplayer { name: name.to_string(), factory }) as Arc<dyn Replayer>
        }),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("sim: {msg}");
            ExitCode::from(code)
        }
    }
}

fn run() -> Result<(), (u8, String)> {
    let usage = |m: String| (2u8, format!("{m}\n{USAGE}"));
    let mut files: Vec<PathBuf> = Vec::new();
    let mut policies = "default,lru,arc,s3fifo,sieve,wtinylfu,opt".to_string();
    let mut sizes = "1%".to_string();
    let mut csv = false;
    let mut plot: Option<PathBuf> = None;
    let mut format: Option<TraceFormat> = None;
    let mut threads = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value =
            |flag: &str| args.next().ok_or_else(|| usage(format!("{flag} needs a value")));
        match a.as_str() {
            "--policy" | "-p" => policies = value("--policy")?,
            "--size" | "-s" => sizes = value("--size")?,
            "--format" => {
                csv = match value("--format")?.as_str() {
                    "csv" => true,
                    "table" => false,
                    other => {
                        return Err(usage(format!("--format {other:?}: expected table or csv")))
                    }
                }
            }
            "--plot" => plot = Some(value("--plot")?.into()),
            "--trace-format" => {
                let v = value("--trace-format")?;
                format = Some(
                    TraceFormat::from_flag(&v)
                        .ok_or_else(|| usage(format!("--trace-format {v:?} is not known")))?,
                );
            }
            "--threads" => {
                let v = value("--threads")?;
                threads =
                    v.parse().map_err(|_| usage(format!("--threads {v:?}: expected a number")))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            flag if flag.starts_with('-') => return Err(usage(format!("unknown option {flag}"))),
            file => files.push(file.into()),
        }
    }
    if files.is_empty() {
        return Err(usage("no trace given".into()));
    }
    let replayers = policies
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            replayer(p).ok_or_else(|| {
                usage(format!(
                    "unknown policy {p:?}; known: {}, opt, moka, quick_cache",
                    omnicache::strategies::NAMES.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sizes = parse_sizes(&sizes).map_err(|e| usage(e.to_string()))?;
    let rows = simulate(&files, format.as_ref(), &replayers, &sizes, threads)
        .map_err(|e| (1, e.to_string()))?;
    print!("{}", if csv { write_csv(&rows) } else { write_table(&rows) });
    if let Some(path) = plot {
        std::fs::write(&path, plot_svg(&rows))
            .map_err(|e| (1, format!("writing {}: {e}", path.display())))?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}
