//! Virtual time: a base `Instant` plus offsets, and a driver that jumps to the next wakeup.

use std::time::{Duration, Instant};

use webhook_core::{Batch, Batcher};

/// A virtual clock; `now` only moves when a test moves it.
pub(crate) struct Clock {
    base: Instant,
    now: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let base = Instant::now();
        Self { base, now: base }
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    pub(crate) fn at(&self, offset: Duration) -> Instant {
        self.base + offset
    }

    pub(crate) fn ms(&self, ms: u64) -> Instant {
        self.at(Duration::from_millis(ms))
    }

    pub(crate) fn set(&mut self, t: Instant) {
        assert!(t >= self.now, "virtual time never goes backwards");
        self.now = t;
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.base
    }
}

/// Drains every batch ready at the clock's `now`.
pub(crate) fn drain(batcher: &mut Batcher, clock: &Clock) -> Vec<Batch> {
    std::iter::from_fn(|| batcher.poll_batch(clock.now())).collect()
}

/// Jumps the clock to the batcher's next wakeup, handles it and returns what became ready.
/// Returns `None` if the batcher has no timer.
pub(crate) fn step(batcher: &mut Batcher, clock: &mut Clock) -> Option<Vec<Batch>> {
    let wake = batcher.poll_timeout()?;
    clock.set(wake.max(clock.now()));
    batcher.handle_timeout(clock.now());
    Some(drain(batcher, clock))
}
