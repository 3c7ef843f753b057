#[omnicache::cached]
fn log(n: u64) {
    let _ = n;
}
fn main() {}
