//! What runs without a server: warming a data directory, the trace simulator, uploads with a
//! progress bar, and their shared helpers.

use super::*;

pub(super) fn warm_format(
    file: &Path,
    format: Option<&str>,
) -> Outcome<omnicache_tiers::warm::WarmFormat> {
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

pub(super) fn check_ttl(ttl: Option<f64>) -> Outcome<()> {
    match ttl {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            Err(Failure::usage(format!("--ttl must be a positive number of seconds, got {t}")))
        }
        _ => Ok(()),
    }
}

pub(super) fn bar(total: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub(super) fn print_skipped(skipped: &[(u64, String)]) {
    for (line, reason) in skipped.iter().take(20) {
        println!("  line {line}: {reason}");
    }
    if skipped.len() > 20 {
        println!("  ... and {} more", skipped.len() - 20);
    }
}

pub(super) async fn warm_offline(
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
pub(super) fn rows_skipped(n: usize) -> Outcome<()> {
    if n == 0 {
        Ok(())
    } else {
        Err(Failure::failed(format!("{n} rows were skipped (listed above); the rest were loaded")))
    }
}

pub(super) fn count_lines(mut f: std::fs::File) -> std::io::Result<u64> {
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
pub(super) struct Progress<R> {
    pub(super) inner: R,
    pub(super) bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

pub(super) fn upload(
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

pub(super) fn sim(
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
pub(super) fn clock_now() -> omnicache_core::Timestamp {
    omnicache_core::Clock::now(&omnicache_core::SystemClock)
}

/// Seconds since `started`, a [`clock_now`] reading.
pub(super) fn secs_since(started: omnicache_core::Timestamp) -> f64 {
    clock_now().saturating_sub(started) as f64 / 1e9
}

/// `omnicache security ...`: key files, offline.
pub(super) fn security_command(command: SecurityCommand) -> Outcome<()> {
    use omnicache_security::{KeyRing, KeyState};
    let failed = |e: omnicache_core::Error| Failure::failed(e.to_string());
    match command {
        SecurityCommand::Keygen { keys } => {
            if keys.exists() {
                return Err(Failure::usage(format!(
                    "{} exists; rotate it with `omnicache security rotate`",
                    keys.display()
                )));
            }
            let ring = KeyRing::generate().map_err(failed)?;
            ring.save(&keys).map_err(failed)?;
            println!("key file {} written (mode 0600) with key 1", keys.display());
        }
        SecurityCommand::Rotate { keys } => {
            let ring = KeyRing::load(&keys).map_err(failed)?;
            let id = ring.rotate().map_err(failed)?;
            ring.save(&keys).map_err(failed)?;
            println!("key {id} now encrypts new writes; older keys still decrypt");
        }
        SecurityCommand::Export { subject, output, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/subjects/{}/export", segment(&subject));
            let lines = download(&client, &path, output.as_deref())?;
            if let Some(p) = output {
                eprintln!("exported {lines} entries of subject {subject:?} to {}", p.display());
            }
        }
        SecurityCommand::Erase { subject, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/subjects/{}/erase", segment(&subject));
            let v = client.call("POST", &path, None)?.json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["caches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| vec![cell(&c["cache"]), cell(&c["memory"]), cell(&c["tiers"])])
                    .collect();
                table(&["CACHE", "MEMORY", "TIERS"], &rows);
            });
            if v["complete"] != Value::Bool(true) {
                return Err(Failure::failed(
                    "a tier could not be reached: the server keeps the erasure, serves nothing \
                     of the subject from that tier and applies it when the tier is back",
                ));
            }
        }
        SecurityCommand::Audit(AuditCommand::Verify { file, data }) => {
            let key = std::fs::read(data.join("audit.key")).map_err(|e| {
                Failure::usage(format!("{}: {e}", data.join("audit.key").display()))
            })?;
            let file = file.unwrap_or_else(|| data.join("audit.log"));
            match omnicache_security::audit::verify(&file, &key).map_err(failed)? {
                Ok(head) => {
                    println!("{}: intact, {} records, head {}", file.display(), head.seq, head.hash)
                }
                Err(broken) => {
                    return Err(Failure::failed(format!(
                        "{}: tampered at {broken}",
                        file.display()
                    )))
                }
            }
        }
        SecurityCommand::Scan { file, min_confidence } => scan(file, min_confidence)?,
        SecurityCommand::Retire { id, force, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/security/keys/{id}/retire?force={force}");
            let v = client.call("POST", &path, None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("key {} retired ({} entries still used it)", v["id"], v["left"]);
            });
        }
        SecurityCommand::Keys { keys, json } => {
            let ring = KeyRing::load(&keys).map_err(failed)?;
            let primary = ring.primary().map(|k| k.id());
            let state = |s: KeyState| match s {
                KeyState::Active => "active",
                KeyState::DecryptOnly => "decrypt_only",
                KeyState::Retired => "retired",
            };
            let list: Vec<Value> = ring
                .keys()
                .iter()
                .map(|k| {
                    json!({"id": k.id(), "state": state(k.state()), "primary": Some(k.id()) == primary})
                })
                .collect();
            if json {
                println!("{}", Value::Array(list));
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|k| vec![cell(&k["id"]), cell(&k["state"]), cell(&k["primary"])])
                    .collect();
                table(&["ID", "STATE", "PRIMARY"], &rows);
            }
        }
    }
    Ok(())
}

/// `omnicache security scan`: JSON Lines in, one line per finding out, streamed.
fn scan(file: Option<PathBuf>, min_confidence: f32) -> Outcome<()> {
    use omnicache_security::pii::jsonl::{scan_line, LineResult};
    use std::io::{BufRead, BufWriter, Write};
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(Failure::usage("--min-confidence must be between 0 and 1"));
    }
    let input: Box<dyn BufRead> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
        )),
    };
    let detector = omnicache_security::pii::Detector::new().min_confidence(min_confidence);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut records, mut findings, mut not_utf8, mut malformed) = (0u64, 0u64, 0u64, 0u64);
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|e| Failure::failed(format!("reading line {}: {e}", n + 1)))?;
        match scan_line(&detector, &line) {
            LineResult::Scanned(found) => {
                records += 1;
                for f in found {
                    findings += 1;
                    serde_json::to_writer(&mut out, &f)
                        .map_err(|e| Failure::failed(e.to_string()))?;
                    out.write_all(b"\n").map_err(|e| Failure::failed(e.to_string()))?;
                }
            }
            LineResult::Blank => {}
            LineResult::NotUtf8 => not_utf8 += 1,
            LineResult::Malformed(why) => {
                malformed += 1;
                eprintln!("line {}: {why}", n + 1);
            }
        }
    }
    out.flush().map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!(
        "scanned {records} records: {findings} findings; {not_utf8} lines not UTF-8 skipped; {malformed} lines not records"
    );
    if malformed > 0 {
        return Err(Failure::failed(format!("{malformed} lines were not records (see above)")));
    }
    Ok(())
}
