#[omnicache::cached]
fn id<T: Clone>(t: T) -> T {
    t
}
fn main() {}
