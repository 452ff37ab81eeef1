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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// The endpoint was removed.
    Removed,
}

/// The driver tasks running (or about to be spawned) for one sender's endpoints; shutdown
/// waits for none to be left.
#[derive(Debug, Default)]
pub(crate) struct Drivers {
    running: AtomicUsize,
    idle: Notify,
}

impl Drivers {
    fn started(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A driver task ended.
    pub(crate) fn ended(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no driver runs.
    pub(crate) async fn all_ended(&self) {
        loop {
            let idle = self.idle.notified();
            let mut idle = std::pin::pin!(idle);
            idle.as_mut().enable();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Driver tasks running.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }
}

/// What the caller must do once the queue lock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Wake {
    /// Nothing.
    No,
    /// Wake the running driver.
    Driver,
    /// No driver runs: spawn one (it is already counted as running).
    Spawn,
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
    /// Not queued: the outbox holds it and the driver reads it from there (a durable queue
    /// that is full, or already behind). The slot is kept for the driver when its receipt is
    /// watched, otherwise forgotten.
    Spilled,
}

/// A durable queue's catch-up state: events at or past `next` are read from the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spill {
    /// The next seq the driver reads.
    pub(crate) next: u64,
    /// The highest seq spilled so far (reading ends once past it; nothing past it is read,
    /// so an event still being placed is never read as well as queued).
    pub(crate) max: u64,
    /// Bumped when `next` moves back (a restart's or a redelivery's events): the driver
    /// starts a new read cursor.
    pub(crate) epoch: u64,
}

struct Inner {
    items: VecDeque<Entry>,
    capacity: usize,
    policy: OverflowPolicy,
    /// A driver task runs (or is about to be spawned) for this queue.
    driver: bool,
    closed: Option<Closed>,
    /// Closed for shutdown (even when it was already closed as disabled): never reopens.
    shut_down: bool,
    /// Backed by the outbox: a full queue spills instead of applying the overflow policy.
    durable: bool,
    spill: Option<Spill>,
    epochs: u64,
    /// Watched receipts' slots of spilled events, by seq.
    spilled: std::collections::HashMap<u64, Slot>,
    /// `spilled`'s size at which slots of dropped receipts are forgotten.
    prune_at: usize,
}

/// One queue held locked by [`Queue::lock_for_offer`], so that
/// [`Sender::try_send`](crate::Sender::try_send) can check every selected queue and then offer
/// to all of them without a driver or another sender changing one in between.
///
/// Deadlock freedom: whoever holds several `Locked` at once takes them in endpoint index order,
/// and nothing else ever holds two queue locks (every other `Queue` method takes only its own
/// lock and releases it before returning). Nothing may be resolved, dropped with a slot, or
/// notified while locked: the caller releases every `Locked` with [`unlock`](Self::unlock)
/// (which wakes the driver if an offer requires it), then handles the [`Offer`]s. Dropping a
/// `Locked` without [`offer`](Self::offer)ing through it is fine.
pub(crate) struct Locked<'a> {
    queue: &'a Queue,
    inner: MutexGuard<'a, Inner>,
    /// What an offer made through this needs once the lock is released.
    wake: Wake,
}

impl Locked<'_> {
    /// Whether [`offer`](Self::offer) would return [`Offer::Full`]: open, at capacity and
    /// under [`OverflowPolicy::Block`].
    pub(crate) fn is_full(&self) -> bool {
        self.inner.policy == OverflowPolicy::Block
            && self.inner.closed.is_none()
            && self.inner.items.len() >= self.inner.capacity
    }

    /// Whether the queue was closed for shutdown (it never accepts events again).
    pub(crate) fn is_shut_down(&self) -> bool {
        self.inner.shut_down
    }

    /// [`Queue::offer`] under the held lock; the driver is woken by [`unlock`](Self::unlock).
    pub(crate) fn offer(&mut self, entry: Entry) -> Offer {
        let (offer, wake) = self.queue.offer_in(&mut self.inner, entry);
        self.wake = self.wake.max(wake);
        offer
    }

    /// Releases the lock, then wakes the driver if an offer made through this requires it
    /// (as [`Queue::offer`] does).
    /// Returns `true` when the caller must spawn the endpoint's driver.
    #[must_use]
    pub(crate) fn unlock(self) -> bool {
        let Locked { queue, inner, wake } = self;
        drop(inner);
        queue.wake(wake)
    }
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
    drivers: Arc<Drivers>,
    /// Wakes the driver: entries arrived or the queue closed.
    pub(crate) readable: Notify,
    /// Wakes blocked senders: space was made or the queue closed.
    writable: Notify,
}

impl Queue {
    pub(crate) fn new(capacity: usize, policy: OverflowPolicy, drivers: Arc<Drivers>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                // Grows with use and is released when the driver parks: an idle endpoint holds
                // no buffer.
                items: VecDeque::new(),
                capacity,
                policy,
                driver: false,
                closed: None,
                shut_down: false,
                durable: false,
                spill: None,
                epochs: 0,
                spilled: std::collections::HashMap::new(),
                prune_at: 1024,
            }),
            drivers,
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Offers without waiting, applying the drop policies.
    /// Offers an entry; the `bool` is `true` when the caller must spawn the driver.
    pub(crate) fn offer(&self, entry: Entry) -> (Offer, bool) {
        let mut inner = self.lock();
        let (offer, wake) = self.offer_in(&mut inner, entry);
        drop(inner);
        (offer, self.wake(wake))
    }

    fn wake(&self, wake: Wake) -> bool {
        match wake {
            Wake::No => false,
            Wake::Driver => {
                self.readable.notify_one();
                false
            }
            Wake::Spawn => true,
        }
    }

    /// Marks a driver running if none is, counted at once (so shutdown waits for it); `true`
    /// when the caller must spawn it.
    #[must_use]
    pub(crate) fn ensure_driver(&self) -> bool {
        let mut inner = self.lock();
        let spawn = !inner.driver;
        if spawn {
            inner.driver = true;
            self.drivers.started();
        }
        spawn
    }

    /// The driver parks: when nothing is queued, `park` runs under the lock (keeping the
    /// machine) and the queue forgets its driver, releasing its buffer; `false` when events
    /// arrived (keep running).
    pub(crate) fn try_park(&self, park: impl FnOnce()) -> bool {
        let mut inner = self.lock();
        if !inner.items.is_empty() || inner.spill.is_some() {
            return false;
        }
        park();
        inner.items = VecDeque::new();
        inner.driver = false;
        true
    }

    /// The driver ends for good (shutdown or removal): the queue forgets it.
    pub(crate) fn driver_ended(&self) {
        self.lock().driver = false;
    }

    /// New capacity and overflow policy (an update of the endpoint); events already queued
    /// stay, and senders waiting for room are woken to look again.
    pub(crate) fn set_limits(&self, capacity: usize, policy: OverflowPolicy) {
        let mut inner = self.lock();
        inner.capacity = capacity;
        inner.policy = policy;
        drop(inner);
        self.writable.notify_waiters();
    }

    /// Takes this queue's lock so that several queues can be checked and offered to as one
    /// step (see [`Locked`]).
    pub(crate) fn lock_for_offer(&self) -> Locked<'_> {
        Locked {
            queue: self,
            inner: self.lock(),
            wake: Wake::No,
        }
    }

    /// The body of [`offer`](Self::offer) under the caller's lock; the flag says whether the
    /// driver must be woken once the lock is released.
    #[inline]
    fn offer_in(&self, inner: &mut Inner, entry: Entry) -> (Offer, Wake) {
        if let Some(c) = inner.closed {
            return (Offer::Closed(entry, c), Wake::No);
        }
        let seq = entry.slot.seq();
        let spill = inner.durable && seq != 0 && {
            let full = inner.items.len() >= inner.capacity;
            match inner.spill.as_mut() {
                Some(s) if seq >= s.next => {
                    s.max = s.max.max(seq);
                    true
                }
                // Behind the reader's position: queued (a few over capacity at most).
                Some(_) => false,
                None if full => {
                    inner.epochs += 1;
                    inner.spill = Some(Spill {
                        next: seq,
                        max: seq,
                        epoch: inner.epochs,
                    });
                    true
                }
                None => false,
            }
        };
        let (offer, wake) = if spill {
            let Entry { event, slot } = entry;
            drop(event);
            if slot.is_watched() {
                inner.spilled.insert(seq, slot);
                if inner.spilled.len() >= inner.prune_at {
                    // Receipts dropped since: their slots are forgotten, so the map holds only
                    // what someone still awaits (amortized: at most twice what is watched).
                    for (_, s) in inner.spilled.extract_if(|_, s| !s.is_watched()) {
                        s.forget();
                    }
                    inner.prune_at = (inner.spilled.len() * 2).max(1024);
                }
            } else {
                slot.forget();
            }
            (Offer::Spilled, Wake::Driver)
        } else if inner.items.len() < inner.capacity || (inner.durable && seq != 0) {
            // The driver drains everything it finds, so only the first entry after a drain
            // needs to wake it (a permit is kept if it is busy).
            let was_empty = inner.items.is_empty();
            inner.items.push_back(entry);
            let wake = if was_empty { Wake::Driver } else { Wake::No };
            (Offer::Queued(None), wake)
        } else {
            match inner.policy {
                OverflowPolicy::Block => return (Offer::Full(entry), Wake::No),
                OverflowPolicy::DropNewest => return (Offer::DroppedNewest(entry), Wake::No),
                OverflowPolicy::DropOldest => {
                    let old = inner.items.pop_front();
                    inner.items.push_back(entry);
                    (Offer::Queued(old), Wake::Driver)
                }
            }
        };
        if inner.driver {
            (offer, wake)
        } else {
            // Counted under the lock, before anyone can see the event queued.
            inner.driver = true;
            self.drivers.started();
            (offer, Wake::Spawn)
        }
    }

    /// Makes the queue durable (the sender has an outbox).
    pub(crate) fn set_durable(&self) {
        self.lock().durable = true;
    }

    /// Starts (or widens) reading from the outbox: events from `from` to `max` are there
    /// (a restart, a redelivery); `true` when the caller must spawn the driver.
    #[must_use]
    pub(crate) fn spill_from(&self, from: u64, max: u64) -> bool {
        let mut inner = self.lock();
        let epochs = inner.epochs + 1;
        match inner.spill.as_mut() {
            Some(s) if from >= s.next => s.max = s.max.max(max),
            Some(s) => {
                s.next = from;
                s.max = s.max.max(max);
                s.epoch = epochs;
                inner.epochs = epochs;
            }
            None => {
                inner.epochs = epochs;
                inner.spill = Some(Spill {
                    next: from,
                    max,
                    epoch: epochs,
                });
            }
        }
        let spawn = !inner.driver;
        if spawn {
            inner.driver = true;
            self.drivers.started();
        }
        drop(inner);
        if !spawn {
            self.readable.notify_one();
        }
        spawn
    }

    /// The catch-up state, while reading from the outbox.
    pub(crate) fn spill(&self) -> Option<Spill> {
        self.lock().spill
    }

    /// The driver read up to (not including) `next` in `epoch`: later spills from `next` on;
    /// with `at_end`, reading ends when nothing at or past `next` was spilled. Returns the
    /// watched slots of the seqs read (`seqs`), and whether reading ended.
    pub(crate) fn advance_spill(
        &self,
        epoch: u64,
        next: u64,
        at_end: bool,
        seqs: &[u64],
    ) -> (Vec<Option<Slot>>, bool) {
        let mut inner = self.lock();
        let slots = seqs.iter().map(|q| inner.spilled.remove(q)).collect();
        let ended = match inner.spill.as_mut() {
            Some(s) if s.epoch == epoch => {
                s.next = s.next.max(next);
                if at_end && s.max < s.next {
                    inner.spill = None;
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        (slots, ended)
    }

    /// `true` while the driver has events to read from the outbox.
    pub(crate) fn is_spilling(&self) -> bool {
        self.lock().spill.is_some()
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
        // A removal overrides a disable (the endpoint never reopens); otherwise the first
        // reason sticks.
        if inner.closed.is_none() || reason == Closed::Removed {
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
        if inner.shut_down || inner.closed == Some(Closed::Removed) {
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
        let t = Tracker::new([Arc::<str>::from("e")].into_iter());
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
        let q = Queue::new(1, OverflowPolicy::DropOldest, Arc::default());
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a).0, Offer::Queued(None)));
        let Offer::Queued(Some(old)) = q.offer(b).0 else {
            panic!("expected the oldest to be displaced")
        };
        assert_eq!(old.event.id(), "a");

        let q = Queue::new(1, OverflowPolicy::DropNewest, Arc::default());
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a).0, Offer::Queued(None)));
        assert!(matches!(q.offer(b).0, Offer::DroppedNewest(e) if e.event.id() == "b"));

        let q = Queue::new(1, OverflowPolicy::Block, Arc::default());
        let (a, _ra) = entry("a");
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(a).0, Offer::Queued(None)));
        assert!(matches!(q.offer(b).0, Offer::Full(_)));
    }

    #[test]
    fn close_returns_queued_and_refuses_more() {
        let q = Queue::new(4, OverflowPolicy::Block, Arc::default());
        let (a, _ra) = entry("a");
        let (b, rb) = entry("b");
        assert!(matches!(q.offer(a).0, Offer::Queued(None)));
        assert_eq!(q.close(Closed::Disabled, true).len(), 1);
        match q.offer(b).0 {
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
        let q = Queue::new(4, OverflowPolicy::Block, Arc::default());
        assert_eq!(q.reopen(), Reopen::WasOpen);
        q.close(Closed::Disabled, true);
        let (a, _ra) = entry("a");
        assert!(matches!(q.offer(a).0, Offer::Closed(_, Closed::Disabled)));
        assert_eq!(q.reopen(), Reopen::Reopened);
        assert_eq!(q.closed(), None);
        let (b, _rb) = entry("b");
        assert!(matches!(q.offer(b).0, Offer::Queued(None)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.reopen(), Reopen::WasOpen);
        q.close(Closed::Shutdown, false);
        assert_eq!(q.reopen(), Reopen::ShutDown);
        assert_eq!(q.closed(), Some(Closed::Shutdown));
    }

    #[test]
    fn locked_checks_then_offers_to_several_queues_as_one_step() {
        let a = Queue::new(1, OverflowPolicy::Block, Arc::default());
        let b = Queue::new(1, OverflowPolicy::Block, Arc::default());
        // Drivers run for both (an offer to a queue without one asks for a spawn instead).
        assert!(a.ensure_driver() && b.ensure_driver());
        assert!(!a.ensure_driver());
        let (b0, _r) = entry("b0");
        assert!(matches!(b.offer(b0).0, Offer::Queued(None)));

        // `b` is full under `Block`: the caller sees it before offering anywhere.
        let (la, lb) = (a.lock_for_offer(), b.lock_for_offer());
        assert!(!la.is_full() && lb.is_full());
        assert!(!la.is_shut_down() && !lb.is_shut_down());
        drop((la, lb));
        assert_eq!((a.len(), b.len()), (0, 1));

        // With room in both, both take it; unlocking wakes each driver (stored permit).
        let mut out = VecDeque::new();
        assert_eq!(b.drain_into(&mut out, 8), 1);
        let (mut la, mut lb) = (a.lock_for_offer(), b.lock_for_offer());
        assert!(!la.is_full() && !lb.is_full());
        let (x, _rx) = entry("x");
        let (y, _ry) = entry("y");
        assert!(matches!(la.offer(x), Offer::Queued(None)));
        assert!(matches!(lb.offer(y), Offer::Queued(None)));
        let _ = la.unlock();
        let _ = lb.unlock();
        assert_eq!((a.len(), b.len()), (1, 1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            for q in [&a, &b] {
                tokio::time::timeout(std::time::Duration::from_secs(1), q.readable.notified())
                    .await
                    .expect("the driver is woken");
            }
        });

        // The drop policies are never "full"; a displaced entry comes back in the offer.
        let c = Queue::new(1, OverflowPolicy::DropOldest, Arc::default());
        let (c0, _r0) = entry("c0");
        let (c1, _r1) = entry("c1");
        assert!(matches!(c.offer(c0).0, Offer::Queued(None)));
        let mut lc = c.lock_for_offer();
        assert!(!lc.is_full());
        assert!(matches!(lc.offer(c1), Offer::Queued(Some(old)) if old.event.id() == "c0"));
        let _ = lc.unlock();

        // Closed queues are not full; a shutdown close is reported, a disable is not.
        a.close(Closed::Disabled, true);
        assert!(!a.lock_for_offer().is_full());
        assert!(!a.lock_for_offer().is_shut_down());
        b.close(Closed::Shutdown, true);
        assert!(!b.lock_for_offer().is_full());
        assert!(b.lock_for_offer().is_shut_down());
    }

    #[test]
    fn locked_holds_the_queue_lock_until_unlocked() {
        use std::sync::atomic::{AtomicBool, Ordering};

        let q = Arc::new(Queue::new(4, OverflowPolicy::Block, Arc::default()));
        let done = Arc::new(AtomicBool::new(false));
        let locked = q.lock_for_offer();
        let (e, _r) = entry("e");
        let worker = {
            let (q, done) = (q.clone(), done.clone());
            std::thread::spawn(move || {
                let queued = matches!(q.offer(e).0, Offer::Queued(None));
                done.store(true, Ordering::SeqCst);
                queued
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !done.load(Ordering::SeqCst),
            "offer went through a held lock"
        );
        let _ = locked.unlock();
        assert!(worker.join().unwrap());
        assert_eq!(q.len(), 1);
    }
}
