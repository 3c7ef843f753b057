//! A count-min sketch of 4-bit counters with a doorkeeper and periodic halving: the frequency
//! estimate behind TinyLFU admission (Einziger, Friedman & Manes, 2017).

/// Estimates how often each hash was seen recently.
///
/// - Four counters per hash in one table of 64-bit words (16 four-bit counters each); the
///   estimate is their minimum, saturating at 15.
/// - A doorkeeper (a Bloom filter) absorbs the first occurrence of each hash, so one-hit wonders
///   never reach the counters.
/// - After `sample` increments every counter is halved and the doorkeeper cleared: old
///   popularity decays.
pub(crate) struct Sketch {
    table: Vec<u64>,
    door: Vec<u64>,
    additions: u64,
    sample: u64,
    doorkeeper: bool,
}

const SEEDS: [u64; 4] =
    [0xC3A5_C85C_97CB_3127, 0xB492_B66F_BE98_F273, 0x9AE1_6A3B_2F90_404F, 0xCBF2_9CE4_8422_2325];

fn rehash(h: u64, seed: u64) -> u64 {
    let mut z = h ^ seed;
    z = (z ^ (z >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^ (z >> 32)
}

impl Sketch {
    /// A sketch for a cache of about `entries` entries.
    pub(crate) fn new(entries: u64, doorkeeper: bool) -> Self {
        let words = entries.clamp(8, 1 << 24).next_power_of_two() as usize;
        Sketch {
            table: vec![0; words],
            door: vec![0; (words / 2).max(4)],
            additions: 0,
            sample: 10 * words as u64,
            doorkeeper,
        }
    }

    fn counter(&self, h: u64, i: usize) -> (usize, u32) {
        let r = rehash(h, SEEDS[i]);
        let word = (r as usize) & (self.table.len() - 1);
        let nibble = ((r >> 40) & 15) as u32;
        (word, nibble * 4)
    }

    fn door_bits(&self, h: u64) -> [(usize, u64); 2] {
        let bits = self.door.len() * 64;
        let a = (rehash(h, 0x2545_F491_4F6C_DD1D) as usize) & (bits - 1);
        let b = (rehash(h, 0x9E37_79B9_7F4A_7C15) as usize) & (bits - 1);
        [(a / 64, 1 << (a % 64)), (b / 64, 1 << (b % 64))]
    }

    fn in_door(&self, h: u64) -> bool {
        self.doorkeeper && self.door_bits(h).iter().all(|&(w, m)| self.door[w] & m != 0)
    }

    /// Counts one occurrence of `h`.
    pub(crate) fn increment(&mut self, h: u64) {
        if self.doorkeeper && !self.in_door(h) {
            for (w, m) in self.door_bits(h) {
                self.door[w] |= m;
            }
        } else {
            for i in 0..4 {
                let (w, shift) = self.counter(h, i);
                if (self.table[w] >> shift) & 15 < 15 {
                    self.table[w] += 1 << shift;
                }
            }
        }
        self.additions += 1;
        if self.additions >= self.sample {
            self.halve();
        }
    }

    /// The estimated recent frequency of `h` (0..=16).
    pub(crate) fn frequency(&self, h: u64) -> u32 {
        let mut f = 15u32;
        for i in 0..4 {
            let (w, shift) = self.counter(h, i);
            f = f.min(((self.table[w] >> shift) & 15) as u32);
        }
        f + u32::from(self.in_door(h))
    }

    fn halve(&mut self) {
        for w in &mut self.table {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
        self.door.iter_mut().for_each(|w| *w = 0);
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_decays() {
        let mut s = Sketch::new(64, true);
        assert_eq!(s.frequency(7), 0);
        s.increment(7);
        assert_eq!(s.frequency(7), 1, "first sight is absorbed by the doorkeeper");
        for _ in 0..5 {
            s.increment(7);
        }
        assert_eq!(s.frequency(7), 6);
        for _ in 0..40 {
            s.increment(9);
        }
        assert_eq!(s.frequency(9), 16, "saturates at 15 plus the doorkeeper");
        // Enough other traffic to reach the sample size halves everything.
        for k in 0..s.sample {
            s.increment(1_000_000 + k);
        }
        assert!(s.frequency(9) < 16, "decayed: {}", s.frequency(9));
        assert!(s.frequency(7) < 6, "decayed: {}", s.frequency(7));
    }
}
