#[omnicache::cached(size = 10)]
fn twice(n: u64) -> u64 {
    n * 2
}
fn main() {}
