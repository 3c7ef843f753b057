//! A circuit breaker per remote tier: after `threshold` consecutive failures the tier is skipped
//! (open); after `cooldown` one call is let through (half-open); its success closes the breaker,
//! its failure opens it again.

use omnicache_core::{SharedClock, Timestamp};
use parking_lot::Mutex;
use std::time::Duration;

/// The breaker's state, for health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are skipped until the cooldown ends.
    Open,
    /// One trial call is in flight.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Timestamp,
    trial_in_flight: bool,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Breaker {
    inner: Mutex<Inner>,
    threshold: u32,
    cooldown: u64,
    clock: SharedClock,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration, clock: SharedClock) -> Self {
        Breaker {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: 0,
                trial_in_flight: false,
            }),
            threshold: threshold.max(1),
            cooldown: omnicache_core::clock::duration_nanos(cooldown),
            clock,
        }
    }

    /// Whether a call may go to the tier now.
    pub(crate) fn allow(&self) -> bool {
        let mut s = self.inner.lock();
        match s.state {
            BreakerState::Closed => true,
            BreakerState::Open => {
                if self.clock.now().saturating_sub(s.opened_at) >= self.cooldown {
                    s.state = BreakerState::HalfOpen;
                    s.trial_in_flight = true;
                    true
                } else {
                    false
                }
            }
            BreakerState::HalfOpen => {
                if s.trial_in_flight {
                    false
                } else {
                    s.trial_in_flight = true;
                    true
                }
            }
        }
    }

    pub(crate) fn success(&self) {
        let mut s = self.inner.lock();
        s.state = BreakerState::Closed;
        s.failures = 0;
        s.trial_in_flight = false;
    }

    pub(crate) fn failure(&self) {
        let mut s = self.inner.lock();
        s.failures = s.failures.saturating_add(1);
        s.trial_in_flight = false;
        if s.state == BreakerState::HalfOpen || s.failures >= self.threshold {
            s.state = BreakerState::Open;
            s.opened_at = self.clock.now();
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.inner.lock().state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnicache_core::MockClock;

    #[test]
    fn opens_after_threshold_half_opens_after_cooldown_and_closes_on_success() {
        let clock = MockClock::default();
        let b = Breaker::new(3, Duration::from_secs(60), clock.clone().into());
        for _ in 0..2 {
            assert!(b.allow());
            b.failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(), "open: skipped");
        clock.advance(Duration::from_secs(59));
        assert!(!b.allow());
        clock.advance(Duration::from_secs(1));
        assert!(b.allow(), "cooldown over: one trial");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(), "only one trial at a time");
        b.failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed trial reopens");
        clock.advance(Duration::from_secs(60));
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }
}
