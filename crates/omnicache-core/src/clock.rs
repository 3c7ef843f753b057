//! Time, only through a [`Clock`], so tests can move it by hand.
//!
//! OmniCache's timestamps are [`Timestamp`]s: nanoseconds since the Unix epoch. The
//! [`SystemClock`] anchors a monotonic reading to the wall clock once, so its timestamps never go
//! backwards within a process and still mean something across processes (a disk tier stores
//! absolute expiry times). The [`MockClock`] only moves when a test tells it to.

// The one place that reads the system's time; clippy refuses it everywhere else (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch. `u64` lasts until the year 2554.
pub type Timestamp = u64;

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (so `Duration::MAX` means never).
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, as nanoseconds since the Unix epoch. Never decreases between calls.
    fn now(&self) -> Timestamp;
}

/// The real clock: a monotonic reading anchored once to the wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

struct Anchor {
    instant: Instant,
    unix_nanos: u64,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        unix_nanos: SystemTime::now().duration_since(UNIX_EPOCH).map(duration_nanos).unwrap_or(0),
    })
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        let a = anchor();
        a.unix_nanos.saturating_add(duration_nanos(a.instant.elapsed()))
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Clone)]
pub struct MockClock {
    now: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock starting at `start` (nanoseconds since the Unix epoch).
    pub fn new(start: Timestamp) -> Self {
        MockClock { now: Arc::new(AtomicU64::new(start)) }
    }

    /// Moves time forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let step = duration_nanos(d);
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(step)));
    }

    /// Sets the time; ignored if it would move the clock backwards.
    pub fn set(&self, t: Timestamp) {
        self.now.fetch_max(t, Ordering::SeqCst);
    }
}

impl Default for MockClock {
    /// Starts at 2024-01-01T00:00:00Z, so timestamps look like real ones.
    fn default() -> Self {
        MockClock::new(1_704_067_200 * 1_000_000_000)
    }
}

impl fmt::Debug for MockClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockClock").field("now", &self.now.load(Ordering::Relaxed)).finish()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }
}

/// A cheap, cloneable handle to a clock. The system clock is read without dynamic dispatch, which
/// matters on the hot path of a memory cache.
#[derive(Clone, Debug, Default)]
pub enum SharedClock {
    /// [`SystemClock`].
    #[default]
    System,
    /// Any other clock, such as a [`MockClock`].
    Custom(Arc<dyn Clock>),
}

impl SharedClock {
    /// Wraps any clock.
    pub fn new(clock: impl Clock) -> Self {
        SharedClock::Custom(Arc::new(clock))
    }

    /// Now, as nanoseconds since the Unix epoch.
    #[inline]
    pub fn now(&self) -> Timestamp {
        match self {
            SharedClock::System => SystemClock.now(),
            SharedClock::Custom(c) => c.now(),
        }
    }
}

impl From<MockClock> for SharedClock {
    fn from(c: MockClock) -> Self {
        SharedClock::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(wall.abs_diff(b) < 5_000_000_000, "anchored to the wall clock");
    }

    #[test]
    fn mock_clock_moves_only_when_told() {
        let c = MockClock::new(10);
        let shared = SharedClock::from(c.clone());
        assert_eq!(shared.now(), 10);
        c.advance(Duration::from_nanos(5));
        assert_eq!(shared.now(), 15);
        c.set(3);
        assert_eq!(c.now(), 15, "never backwards");
        c.advance(Duration::MAX);
        assert_eq!(c.now(), u64::MAX, "saturates");
    }
}
