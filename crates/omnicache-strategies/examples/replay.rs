//! Replays the shared traces (`../shared/traces/*.keys.gz`, one key per line, gunzipped to a
//! file first) through each named policy at the given sizes and prints hit ratios.
//!
//! `cargo run --release -p omnicache-strategies --example replay -- FILE SIZE...`

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: replay FILE SIZE...");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("reading {path}: {e}");
            std::process::exit(1);
        }
    };
    let keys: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            l.trim().parse::<u64>().ok().or_else(|| l.trim().parse::<i64>().ok().map(|k| k as u64))
        })
        .collect();
    for size in args {
        let Ok(size) = size.parse::<u64>() else {
            eprintln!("not a size: {size}");
            std::process::exit(2);
        };
        for name in ["lru", "arc", "s3fifo", "sieve", "wtinylfu", "wtinylfu-fixed"] {
            let f = omnicache_strategies::by_name_for_replay(name).expect("known policy");
            let r = omnicache_strategies::sim::replay(&*f, &keys, size);
            println!("{path},{name},{size},{:.2}", 100.0 * r.hit_ratio());
        }
    }
}
