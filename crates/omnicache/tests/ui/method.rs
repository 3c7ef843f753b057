struct S;
impl S {
    #[omnicache::cached]
    fn get(&self, n: u64) -> u64 {
        n
    }
}
fn main() {}
