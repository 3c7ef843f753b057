//! Coalescing: one request per key goes to the origin while the others wait for it, and
//! background revalidations are counted until they end.

use super::*;

/// Decrements the background count and ends the refresh of `key` when dropped.
pub(super) struct Background {
    pub(super) shared: Arc<Shared>,
    pub(super) key: Vec<u8>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shared.refreshing.lock().remove(&self.key);
        self.shared.background.fetch_sub(1, Ordering::SeqCst);
        self.shared.idle.notify_waiters();
    }
}

/// Leading a flight, or following one.
pub(super) enum Flight {
    Lead(FlightGuard),
    Follow(watch::Receiver<bool>),
}

/// Ends a flight (releasing its followers) when the leader is done or gone.
pub(super) struct FlightGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) key: Vec<u8>,
    pub(super) tx: Arc<watch::Sender<bool>>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut flights = self.shared.flights.lock();
        if flights.get(&self.key).is_some_and(|t| Arc::ptr_eq(t, &self.tx)) {
            flights.remove(&self.key);
        }
        drop(flights);
        let _ = self.tx.send(true);
    }
}
