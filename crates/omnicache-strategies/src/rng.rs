//! The policies' one source of randomness: xorshift64, seeded, so replays are reproducible.

/// Marsaglia's xorshift64 (shifts 13, 7, 17). Never seed it with zero: zero maps to itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XorShift64(u64);

impl XorShift64 {
    /// A generator starting from `seed` (non-zero).
    pub(crate) const fn new(seed: u64) -> Self {
        XorShift64(seed)
    }

    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift64;

    #[test]
    fn it_is_marsaglias_sequence() {
        // xorshift64 (13, 7, 17) from seed 1.
        let mut r = XorShift64::new(1);
        assert_eq!(r.next(), 1_082_269_761);
        assert_eq!(r.next(), 1_152_992_998_833_853_505);
    }
}
