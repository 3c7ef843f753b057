#[omnicache::cached(key = n % 10)]
fn digit(n: u64) -> u64 {
    n % 10
}
fn main() {}
