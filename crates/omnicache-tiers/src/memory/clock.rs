//! The engine's clock. With the system clock, reads go through the CPU's time-stamp counter
//! (`quanta`), a few nanoseconds instead of the tens a `std::time::Instant` costs here, which
//! matters because every read of an entry with a deadline looks at the time. Readings are
//! anchored to the core clock once, so deadlines mean the same as `omnicache_core::SystemClock`'s.

use omnicache_core::{SharedClock, Timestamp};

pub(crate) enum EngineClock {
    Fast { clock: quanta::Clock, start_raw: u64, start: Timestamp },
    Shared(SharedClock),
}

impl EngineClock {
    pub(crate) fn new(shared: SharedClock) -> Self {
        match shared {
            #[cfg(not(loom))]
            SharedClock::System => {
                let clock = quanta::Clock::new();
                let start_raw = clock.raw();
                EngineClock::Fast { clock, start_raw, start: shared.now() }
            }
            other => EngineClock::Shared(other),
        }
    }

    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        match self {
            EngineClock::Fast { clock, start_raw, start } => {
                start.saturating_add(clock.delta_as_nanos(*start_raw, clock.raw()))
            }
            EngineClock::Shared(c) => c.now(),
        }
    }
}
