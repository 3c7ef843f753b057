//! The REST server under load beside Redis, in one run on one machine.
//!
//! `cargo build --release -p omnicache-cli && cargo run --release -p omnicache-bench --bin server -- [--secs 10] [--connections 50]`
//!
//! Starts `target/release/omnicache serve` (or `$OMNICACHE_BIN`) on a free port with a fresh
//! data directory, stores 1,000 values of 100 bytes, and drives `GET` hits over 50 keep-alive
//! connections with `wrk` (apt-get install wrk), first as configured by default (a worker per
//! core, `wrk -t2`), then with one server thread against one client thread (`--workers 1`,
//! `wrk -t1`), as Redis and redis-benchmark are; then starts `redis-server` and runs
//! `redis-benchmark -t get -c 50 -d 100` (no pipelining) against it. Prints both throughputs,
//! their ratio and the latency percentiles. Also times the start-up of the embedded default to
//! its first answered `/ready`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn http(port: u16, method: &str, path: &str, key: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap_or(0);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |p| p + 4);
    (status, raw[split..].to_vec())
}

fn start_server(bin: &str, data: &std::path::Path, args: &[&str]) -> (Killed, u16, Duration) {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{bin}: {e}; build it with cargo build --release -p omnicache-cli")
        });
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
    // Ready = the first answered /ready.
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut r = Vec::new();
            let _ = s.read_to_end(&mut r);
            if r.starts_with(b"HTTP/1.1 200") {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not get ready");
        std::thread::sleep(Duration::from_micros(200));
    }
    (Killed(child), port, started.elapsed())
}

fn main() {
    let mut secs = 10u64;
    let mut conns = 50u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--connections" => {
                conns = args.next().and_then(|v| v.parse().ok()).expect("--connections N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let bin = std::env::var("OMNICACHE_BIN").unwrap_or_else(|_| "target/release/omnicache".into());

    // Start-up of the embedded default with an empty data directory, five times.
    let mut startups = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (_server, _, took) = start_server(&bin, dir.path(), &[]);
        startups.push(took);
    }
    startups.sort();
    println!(
        "start-up to ready (empty data dir), 5 runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        startups[0].as_secs_f64() * 1e3,
        startups[2].as_secs_f64() * 1e3,
        startups[4].as_secs_f64() * 1e3
    );

    // The default (a worker thread per core, wrk with two threads), then one server thread
    // against one client thread, as Redis and redis-benchmark are.
    let default = rest_gets(&bin, &[], 2, secs, conns);
    let single = rest_gets(&bin, &["--workers", "1"], 1, secs, conns);

    let rport = free_port();
    let _redis = Killed(
        Command::new("redis-server")
            .args(["--port", &rport.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)"),
    );
    wait_for(rport);
    let n = (default.rps * secs as f64).max(100_000.0) as u64;
    let rb = Command::new("redis-benchmark")
        .args(["-p", &rport.to_string(), "-t", "set,get", "-c", &conns.to_string()])
        .args(["-d", "100", "-r", "1000", "-n", &n.to_string(), "--csv"])
        .output()
        .expect("redis-benchmark");
    let rb_out = String::from_utf8_lossy(&rb.stdout).to_string();
    let get_row = rb_out.lines().find(|l| l.starts_with("\"GET\"")).expect("a GET row").to_string();
    let cols: Vec<String> = get_row.split(',').map(|c| c.trim_matches('"').to_string()).collect();
    let rps_redis: f64 = cols[1].parse().unwrap();

    for (what, run) in
        [("the default, one worker per core; wrk -t2", &default), ("--workers 1; wrk -t1", &single)]
    {
        println!(
            "REST GET hits (100-byte values, {conns} keep-alive connections, {secs} s), {what}:"
        );
        println!(
            "  {:.0} requests/s; latency p50 {}, p90 {}, p99 {} {}",
            run.rps, run.p50, run.p90, run.p99, run.non2xx
        );
    }
    println!("redis-benchmark -t get -c {conns} -d 100 (no pipelining), same machine, same run:");
    println!(
        "  {rps_redis:.0} requests/s; latency ms avg {} p50 {} p95 {} p99 {}",
        cols[2], cols[4], cols[5], cols[6]
    );
    println!(
        "ratio REST / redis-benchmark: {:.2}x (default), {:.2}x (one thread each)",
        default.rps / rps_redis,
        single.rps / rps_redis
    );
}

/// What wrk measured.
struct Measured {
    rps: f64,
    p50: String,
    p90: String,
    p99: String,
    non2xx: String,
}

/// Starts the server with `args`, stores 1,000 values of 100 bytes and drives GET hits at them
/// with `wrk -t THREADS`.
fn rest_gets(bin: &str, args: &[&str], threads: u32, secs: u64, conns: u32) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (server, port, _) = start_server(bin, dir.path(), args);
    let key = std::fs::read_to_string(dir.path().join("admin.key")).unwrap().trim().to_string();
    let value = "v".repeat(100);
    let entries: Vec<String> = (1..=1000)
        .map(|i| {
            format!("{{\"key\":\"k{i}\",\"value\":\"{value}\",\"content_type\":\"text/plain\"}}")
        })
        .collect();
    let body = format!("{{\"entries\":[{}]}}", entries.join(","));
    let (status, _) = http(port, "POST", "/caches/default/batch/set", &key, body.as_bytes());
    assert_eq!(status, 200, "storing the values");
    let (status, got) = http(port, "GET", "/caches/default/entries/k7", &key, b"");
    assert_eq!((status, got.len()), (200, 100));

    let script = dir.path().join("get.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {key}\"\nrequest = function()\n  return wrk.format(\"GET\", \"/caches/default/entries/k\" .. math.random(1000))\nend\n"
        ),
    )
    .unwrap();
    let wrk = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string()])
        .args(["-d", &format!("{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("wrk (apt-get install wrk)");
    let out = String::from_utf8_lossy(&wrk.stdout).to_string();
    drop(server);
    let rps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk printed Requests/sec");
    let pct = |p: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(p).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let non2xx = out.lines().find(|l| l.contains("Non-2xx")).unwrap_or("").trim().to_string();
    Measured { rps, p50: pct("50%"), p90: pct("90%"), p99: pct("99%"), non2xx }
}
