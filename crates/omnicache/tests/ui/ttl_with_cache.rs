static C: std::sync::LazyLock<omnicache::sync::Cache<u64, u64>> =
    std::sync::LazyLock::new(|| omnicache::sync::Cache::builder().max_capacity(10).build());
#[omnicache::cached(cache = C, ttl = 5)]
fn twice(n: u64) -> u64 {
    n * 2
}
fn main() {}
