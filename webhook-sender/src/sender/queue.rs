//! The bounded intake queue of one endpoint and its overflow policy.
//!
//! [`Sender::send`](crate::Sender::send) pushes here; the endpoint's driver task drains it into
//! the core batcher only while the batcher has room, so a slow endpoint fills the batcher, then
//! this queue, and then the overflow policy applies: wait for space, drop the newest event or
//! drop the oldest one. A drop is never silent: the dropped event's receipt resolves to
//! [`Outcome::Dropped`](crate::Outcome::Dropped), the endpoint's `dropped` counter and metric
//! are incremented and a [`LifecycleEvent::Dropped`](crate::LifecycleEvent::Dropped) is
//! broadcast.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use webhook_core::Event;

use super::receipt::Slot;

/// What `send` does when an endpoint's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Wait for space ([`Sender::send`](crate::Sender::send) awaits;
    /// [`Sender::try_send`](crate::Sender::try_send) returns
    /// [`SendError::Full`](crate::SendError::Full)).
    #[default]
    Block,
    /// Drop the event being sent.
    DropNewest,
    /// Drop the oldest queued event to make room.
    DropOldest,
}

/// An event on its way to one endpoint, with its receipt slot.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) event: Event,
    pub(crate) slot: Slot,
}

/// Why a queue stopped accepting events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Shutdown or the last `Sender` handle was dropped.
    Shutdown,
    /// The endpoint was disabled.
    Disabled,
}

/// Result of offering an entry to a full-or-not queue without waiting.
pub(crate) enum Offer {
    /// Queued (with the entry dropped to make room, for `DropOldest`).
    Queued(Option<Entry>),
    /// Not queued: the entry was dropped (`DropNewest`).
    DroppedNewest(Entry),
    /// Not queued: full under `Block`.
    Full(Entry),
    /// Not queued: closed.
    Closed(Entry, Closed),
}

struct Inner {
    items: VecDeque<Entry>,
    closed: Option<Closed>,
    /// Closed for shutdown (even when it was already closed as disabled): never reopens.
    shut_down: bool,
}

/// Result of [`Queue::reopen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reopen {
    /// It was closed as disabled and accepts events again.
    Reopened,
    /// It was open.
    WasOpen,
    /// It was closed for shutdown: it stays closed.
    ShutDown,
}

/// A bounded multi-producer, single-consumer queue.
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    capacity: usize,
    policy: OverflowPolicy,
    /// Wakes the driver: entries arrived or the queue closed.
    pub(crate) readable: Notify,
    /// Wakes blocked senders: space was made or the queue closed.
    writable: Notify,
}

impl Queue {
    pub(crate) fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity.min(4096)),
                closed: None,
                shut_down: false,
            }),
            capacity,
            policy,
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Offers without waiting, applying the drop policies.
    pub(crate) fn offer(&self, entry: Entry) -> Offer {
        let mut inner = self.lock();
        if let Some(c) = inner.closed {
            return Offer::Closed(entry, c);
        }
        if inner.items.len() < self.capacity {
            let was_empty = inner.items.is_empty();
            inner.items.push_back(entry);
            drop(inner);
            // The driver drains everything it finds, so only the first entry after a drain
            // needs to wake it (a permit is kept if it is busy).
            if was_empty {
                self.readable.notify_one();
            }
            return Offer::Queued(None);
        }
        match self.policy {
            OverflowPolicy::Block => Offer::Full(entry),
            OverflowPolicy::DropNewest => Offer::DroppedNewest(entry),
            OverflowPolicy::DropOldest => {
                let old = inner.items.pop_front();
                inner.items.push_back(entry);
                drop(inner);
                self.readable.notify_one();
                Offer::Queued(old)
            }
        }
    }

    /// Notified when space is made or the queue closes (register before `offer`).
    pub(crate) fn writable(&self) -> &Notify {
        &self.writable
    }

    /// Moves up to `max` entries into `out`; wakes blocked senders if space was made.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<Entry>, max: usize) -> usize {
        let mut inner = self.lock();
        let n = inner.items.len().min(max);
        out.extend(inner.items.drain(..n));
        drop(inner);
        if n > 0 {
            self.writable.notify_waiters();
        }
        n
    }

    /// Stops intake (keeps the first reason) and returns what was still queued when `take`.
    pub(crate) fn close(&self, reason: Closed, take: bool) -> Vec<Entry> {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(reason);
        }
        inner.shut_down |= reason == Closed::Shutdown;
        let taken = if take {
            inner.items.drain(..).collect()
        } else {
            Vec::new()
        };
        drop(inner);
        self.writable.notify_waiters();
        self.readable.notify_one();
        taken
    }

    /// Accepts events again after a [`Closed::Disabled`] close, unless it was closed for
    /// shutdown (checked under the same lock as `close`, so a concurrent shutdown either sees
    /// the reopened queue and closes it, or makes this refuse).
    pub(crate) fn reopen(&self) -> Reopen {
        let mut inner = self.lock();
        if inner.shut_down {
            return Reopen::ShutDown;
        }
        match inner.closed.take() {
            Some(_) => Reopen::Reopened,
            None => Reopen::WasOpen,
        }
    }

    #[cfg(test)]
    pub(crate) fn closed(&self) -> Option<Closed> {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::receipt::{Outcome, Receipt, Tracker};
    use super::*;

    fn entry(id: &str) -> (Entry, Receipt) {
        let t = Tracker::new(Arc::from(vec![Arc::<str>::from("e")]));
        let event = Event::builder(id, "s").json_bytes(&b"{}"[..]).unwrap();
        (
            Entry {
                event,
                slot: Slot::new(t.clone(), 0),
            },
            Receipt::new(t),
        )
    }

    #[test]
    fn drop_policies() {
        let q = Queue::new(1, OverflowPolicy::DropOldest);
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a), Offer::Queued(None)));
        let Offer::Queued(Some(old)) = q.offer(b) else {
            panic!("expected the oldest to be displaced")
        };
        assert_eq!(old.event.id(), "a");

        let q = Queue::new(1, OverflowPolicy::DropNewest);
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a), Offer::Queued(None)));
        assert!(matches!(q.offer(b), Offer::DroppedNewest(e) if e.event.id() == "b"));

        let q = Queue::new(1, OverflowPolicy::Block);
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a), Offer::Queued(None)));
        assert!(matches!(q.offer(b), Offer::Full(_)));
    }

    #[test]
    fn close_returns_queued_and_refuses_more() {
        let q = Queue::new(4, OverflowPolicy::Block);
        let (a, _ra) = entry("a");
        let (b, rb) = entry("b");
        assert!(matches!(q.offer(a), Offer::Queued(None)));
        assert_eq!(q.close(Closed::Disabled, true).len(), 1);
        match q.offer(b) {
            Offer::Closed(e, Closed::Disabled) => e.slot.resolve(Outcome::Dropped),
            _ => panic!("expected closed"),
        }
        assert_eq!(
            rb.try_report().unwrap().outcomes()[0].outcome,
            Outcome::Dropped
        );
        // The first reason sticks.
        q.close(Closed::Shutdown, false);
        assert_eq!(q.closed(), Some(Closed::Disabled));
        // ... but a shutdown close is remembered: it never reopens.
        assert_eq!(q.reopen(), Reopen::ShutDown);
        assert_eq!(q.closed(), Some(Closed::Disabled));
    }

    #[test]
    fn reopen_after_disable_accepts_again() {
        let q = Queue::new(4, OverflowPolicy::Block);
        assert_eq!(q.reopen(), Reopen::WasOpen);
        q.close(Closed::Disabled, true);
        let (a, _ra) = entry("a");
        assert!(matches!(q.offer(a), Offer::Closed(_, Closed::Disabled)));
        assert_eq!(q.reopen(), Reopen::Reopened);
        assert_eq!(q.closed(), None);
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(b), Offer::Queued(None)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.reopen(), Reopen::WasOpen);
        q.close(Closed::Shutdown, false);
        assert_eq!(q.reopen(), Reopen::ShutDown);
        assert_eq!(q.closed(), Some(Closed::Shutdown));
    }
}
