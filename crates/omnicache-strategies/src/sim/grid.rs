//! A grid of replayers by sizes over traces, on all cores, and its table and CSV output.

use super::{replay_trace, Replay, Trace};
use omnicache_core::{Error, PolicyFactory, Result};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Anything that can replay a trace at a capacity: a policy, OPT, or a peer cache.
pub trait Replayer: Send + Sync {
    /// The column name in reports.
    fn name(&self) -> String;
    /// Replays `trace` in a cache of `capacity` entries.
    fn replay(&self, trace: &Trace, capacity: u64) -> Replay;
}

/// A policy as a [`Replayer`], under the name given.
#[derive(Debug, Clone)]
pub struct PolicyReplayer {
    /// The name in reports.
    pub name: String,
    /// The policy.
    pub factory: Arc<dyn PolicyFactory>,
}

impl Replayer for PolicyReplayer {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn replay(&self, trace: &Trace, capacity: u64) -> Replay {
        replay_trace(&*self.factory, trace, capacity)
    }
}

/// A cache size: entries, or a percentage of the trace's distinct keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeSpec {
    /// This many entries.
    Entries(u64),
    /// This percentage of the trace's distinct keys (rounded, at least 1).
    Percent(f64),
}

impl SizeSpec {
    /// The size in entries for `trace`.
    pub fn resolve(self, trace: &Trace) -> u64 {
        match self {
            SizeSpec::Entries(n) => n,
            SizeSpec::Percent(p) => ((trace.unique() as f64 * p / 100.0).round() as u64).max(1),
        }
    }
}

/// Parses `1000,1%,0.5%` into sizes.
pub fn parse_sizes(s: &str) -> Result<Vec<SizeSpec>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            if let Some(p) = x.strip_suffix('%') {
                match p.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => Ok(SizeSpec::Percent(v)),
                    _ => Err(Error::invalid_input(format!(
                        "size {x:?}: a percentage must be a number in (0, 100]"
                    ))),
                }
            } else {
                match x.parse::<u64>() {
                    Ok(0) => Err(Error::invalid_input(format!(
                        "size {x:?}: a cache holds at least one entry"
                    ))),
                    Ok(n) => Ok(SizeSpec::Entries(n)),
                    Err(_) => Err(Error::invalid_input(format!(
                        "size {x:?}: expected a number of entries or a percentage like 1%"
                    ))),
                }
            }
        })
        .collect::<Result<Vec<_>>>()
        .and_then(
            |v| {
                if v.is_empty() {
                    Err(Error::invalid_input("no sizes given"))
                } else {
                    Ok(v)
                }
            },
        )
}

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Trace name.
    pub trace: String,
    /// Replayer name.
    pub policy: String,
    /// Cache size in entries.
    pub size: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Hits.
    pub hits: u64,
}

impl Row {
    /// Hits over requests.
    pub fn hit_ratio(&self) -> f64 {
        Replay { requests: self.requests, hits: self.hits }.hit_ratio()
    }
}

/// The simulator's whole run, as `omnicache sim` does it: opens each of `paths` (in `format`,
/// or guessed from its name), runs the grid, and logs the traces and the replay speed to
/// stderr. Errors are the traces' (unreadable file, malformed row by line or offset).
pub fn simulate(
    paths: &[std::path::PathBuf],
    format: Option<&super::TraceFormat>,
    replayers: &[Arc<dyn Replayer>],
    sizes: &[SizeSpec],
    threads: usize,
) -> Result<Vec<Row>> {
    let mut traces = Vec::with_capacity(paths.len());
    for path in paths {
        let guessed = super::TraceFormat::guess(path);
        let t = Trace::open(path, format.unwrap_or(&guessed))?;
        eprintln!("{}: {} requests, {} distinct keys", t.name, t.len(), t.unique());
        traces.push(t);
    }
    let clock = omnicache_core::SystemClock;
    let started = omnicache_core::Clock::now(&clock);
    let rows = run_grid(&traces, replayers, sizes, threads);
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let secs = (omnicache_core::Clock::now(&clock).saturating_sub(started) as f64 / 1e9).max(1e-9);
    eprintln!(
        "{} replays, {requests} requests in {secs:.2} s ({:.1} M requests/s on all threads)",
        rows.len(),
        requests as f64 / secs / 1e6
    );
    Ok(rows)
}

/// Runs every replayer at every size on every trace, on `threads` threads (all cores if 0).
/// Rows come back in trace, size, replayer order, whatever the threads' timing.
pub fn run_grid(
    traces: &[Trace],
    replayers: &[Arc<dyn Replayer>],
    sizes: &[SizeSpec],
    threads: usize,
) -> Vec<Row> {
    let mut jobs = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        // Smallest first, each once: `1000,1%` may resolve to 1,000 and 120.
        let mut resolved: Vec<u64> = sizes.iter().map(|s| s.resolve(trace)).collect();
        resolved.sort_unstable();
        resolved.dedup();
        for size in resolved {
            for r in 0..replayers.len() {
                jobs.push((t, size, r));
            }
        }
    }
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Row>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.min(jobs.len()).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(t, size, r)) = jobs.get(i) else { break };
                let out = replayers[r].replay(&traces[t], size);
                let row = Row {
                    trace: traces[t].name.clone(),
                    policy: replayers[r].name(),
                    size,
                    requests: out.requests,
                    hits: out.hits,
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

/// CSV with the header `trace,policy,size,requests,hits,hit_ratio`.
pub fn write_csv(rows: &[Row]) -> String {
    let mut out = String::from("trace,policy,size,requests,hits,hit_ratio\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.6}",
            r.trace,
            r.policy,
            r.size,
            r.requests,
            r.hits,
            r.hit_ratio()
        );
    }
    out
}

/// A table per trace: sizes down, policies across, hit ratios in percent.
pub fn write_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut traces: Vec<&str> = Vec::new();
    for r in rows {
        if !traces.contains(&r.trace.as_str()) {
            traces.push(&r.trace);
        }
    }
    for t in traces {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.trace == t).collect();
        let mut policies: Vec<&str> = Vec::new();
        let mut sizes: Vec<u64> = Vec::new();
        for r in &mine {
            if !policies.contains(&r.policy.as_str()) {
                policies.push(&r.policy);
            }
            if !sizes.contains(&r.size) {
                sizes.push(r.size);
            }
        }
        let requests = mine.first().map_or(0, |r| r.requests);
        let _ = writeln!(out, "{t} ({requests} requests), hit ratio %");
        let _ = write!(out, "{:>10}", "size");
        for p in &policies {
            let _ = write!(out, " {p:>14}");
        }
        out.push('\n');
        for s in sizes {
            let _ = write!(out, "{s:>10}");
            for p in &policies {
                match mine.iter().find(|r| r.size == s && r.policy == *p) {
                    Some(r) => {
                        let _ = write!(out, " {:>14.2}", 100.0 * r.hit_ratio());
                    }
                    None => {
                        let _ = write!(out, " {:>14}", "-");
                    }
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Opt;

    #[test]
    fn sizes_parse_and_reject_nonsense() {
        assert_eq!(
            parse_sizes("1000, 1%,0.5%").unwrap(),
            vec![SizeSpec::Entries(1000), SizeSpec::Percent(1.0), SizeSpec::Percent(0.5)]
        );
        assert!(parse_sizes("0").is_err(), "a cache of no entries");
        assert!(parse_sizes("10,0").is_err());
        for bad in ["", "x", "0%", "101%", "-5", "1e3%x"] {
            assert!(parse_sizes(bad).is_err(), "{bad:?}");
        }
        let t = Trace::from_keys("t", 0..1_000u64);
        assert_eq!(SizeSpec::Percent(1.0).resolve(&t), 10);
        assert_eq!(SizeSpec::Percent(0.01).resolve(&t), 1, "at least one entry");
    }

    #[test]
    fn grid_is_ordered_and_complete_whatever_the_threads() {
        let traces = vec![
            Trace::from_keys("a", (0..3_000u64).map(|i| i % 97)),
            Trace::from_keys("b", (0..3_000u64).map(|i| i * 7 % 13)),
        ];
        let replayers: Vec<Arc<dyn Replayer>> = vec![
            Arc::new(PolicyReplayer {
                name: "lru".into(),
                factory: crate::by_name("lru").unwrap(),
            }),
            Arc::new(Opt),
        ];
        let sizes = parse_sizes("10,50%").unwrap();
        let one = run_grid(&traces, &replayers, &sizes, 1);
        let many = run_grid(&traces, &replayers, &sizes, 4);
        assert_eq!(one, many);
        assert_eq!(one.len(), 2 * 2 * 2);
        assert_eq!((one[0].trace.as_str(), one[0].policy.as_str(), one[0].size), ("a", "lru", 10));
        let csv = write_csv(&one);
        assert!(csv.starts_with("trace,policy,size,requests,hits,hit_ratio\na,lru,10,3000,"));
        assert_eq!(csv.lines().count(), 9);
        let table = write_table(&one);
        assert!(table.contains("a (3000 requests)") && table.contains("opt"));
        // Sizes come out smallest first, whatever their order on the command line.
        let reversed = run_grid(&traces, &replayers, &parse_sizes("50%,10").unwrap(), 1);
        assert_eq!(reversed, one);
    }
}
