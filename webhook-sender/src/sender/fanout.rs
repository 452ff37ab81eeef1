//! Fan-out: routing an event with the handle's current routes and offering it to the queue of
//! every endpoint that selected it ([`Sender::send`], [`Sender::try_send`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use webhook_core::Event;

use super::driver::{self, GaveUpAs};
use super::lifecycle::Shared;
use super::queue::{Closed, Entry, Locked, Offer};
use super::receipt::{Slot, Tracker};
use super::registry::{Picks, Routes};
use super::{FailureReason, LifecycleEvent, Outcome, Receipt, SendError, Sender};
use crate::outbox::{Appended, Durability, Outbox, OutboxError};

impl Sender {
    /// Queues `event` for every endpoint whose filter selects its subject, waiting for space
    /// in full queues under [`OverflowPolicy::Block`](super::OverflowPolicy::Block) (the drop policies never wait).
    ///
    /// # Errors
    /// [`SendError::Closed`] after [`shutdown`](Self::shutdown) started.
    pub async fn send(&self, event: Event) -> Result<Receipt, SendError> {
        let Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        }) = self.route(&event)
        else {
            return Err(SendError::Closed(event));
        };
        let picks = picks.as_slice();
        if let Some(outbox) = &self.inner.common.outbox
            && !picks.is_empty()
        {
            let mut space = None;
            let seq = loop {
                match self.store(outbox, &routes, picks, &event) {
                    Ok(Appended::Written { seq, ticket: pos }) => {
                        if outbox.store.durability() == Durability::Sync
                            && let Err(e) = outbox.store.synced(pos).await
                        {
                            // Written but not synced: it may still be delivered (from the
                            // outbox after a restart); the caller learns it is not durable.
                            return Err(SendError::Outbox(event, Box::new(e)));
                        }
                        break seq;
                    }
                    // At the limit: registered for space first, then looked at again (space
                    // freed in between is not missed); only this path pays for a waiter.
                    Ok(Appended::Full) => match space.take() {
                        None => {
                            let mut waiter = Box::pin(outbox.store.space().notified());
                            waiter.as_mut().enable();
                            space = Some(waiter);
                        }
                        Some(waiter) => waiter.await,
                    },
                    Ok(Appended::Dropped) => {
                        self.dropped_by_outbox(&routes, picks, event, &tracker);
                        return Ok(receipt);
                    }
                    Err(e) => return Err(SendError::Outbox(event, Box::new(e))),
                }
            };
            self.place_stored(&routes, picks, event, &tracker, seq)?;
            return Ok(receipt);
        }
        let mut event = Some(event);
        let mut accepted = false;
        for (slot, &pos) in picks.iter().enumerate() {
            let ep = &routes.endpoints[pos as usize];
            // The last selecting endpoint takes the event, the others a copy.
            let copy = if slot + 1 == picks.len() {
                event.take()
            } else {
                event.clone()
            };
            let Some(copy) = copy else { break };
            let mut entry = Entry {
                event: copy,
                slot: Slot::new(tracker.clone(), slot),
            };
            // While there is room, no waiter is registered (a lock and an unlink per event).
            entry = match self.place(ep, entry, accepted)? {
                Placed::Done => {
                    accepted = true;
                    continue;
                }
                Placed::Full(e) => e,
            };
            loop {
                let notified = ep.queue.writable().notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before offering, so space made in between is not missed.
                notified.as_mut().enable();
                match self.place(ep, entry, accepted)? {
                    Placed::Done => break,
                    Placed::Full(e) => {
                        entry = e;
                        notified.await;
                    }
                }
            }
            accepted = true;
        }
        Ok(receipt)
    }

    /// Like [`send`](Self::send) without waiting, and all or nothing for the endpoints under
    /// [`OverflowPolicy::Block`](super::OverflowPolicy::Block): the event is queued for every selecting endpoint, or for
    /// none.
    ///
    /// When it is queued, each selecting endpoint applies its policy as `send` does: a full
    /// [`OverflowPolicy::DropNewest`](super::OverflowPolicy::DropNewest) or [`OverflowPolicy::DropOldest`](super::OverflowPolicy::DropOldest) queue drops an event
    /// ([`Outcome::Dropped`], counted and broadcast) and a disabled endpoint fails it
    /// ([`FailureReason::EndpointDisabled`]). Every selected queue is checked and offered to
    /// under its lock, all locks held at once, so concurrent senders and the endpoint drivers
    /// never see the event on some `Block` endpoints only. With one selecting endpoint this
    /// costs what [`send`](Self::send) costs when there is room.
    ///
    /// ```no_run
    /// use webhook_core::Event;
    /// use webhook_core::Endpoint;
    /// use webhook_sender::{EndpointConfig, OverflowPolicy, SendError, Sender};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = |name: &str, url: &str| -> Result<EndpointConfig, Box<dyn std::error::Error>> {
    ///     Ok(EndpointConfig::builder(name, Endpoint::builder(url).build()?)
    ///         .queue(1024, OverflowPolicy::Block)
    ///         .build()?)
    /// };
    /// let sender = Sender::builder()
    ///     .endpoint(endpoint("siem", "https://siem.example.com/in")?)
    ///     .endpoint(endpoint("archive", "https://archive.example.com/in")?)
    ///     .build()?;
    /// let event = Event::builder("evt_1", "policy.created").json_bytes(&br#"{"a":1}"#[..])?;
    /// match sender.try_send(event) {
    ///     Ok(receipt) => drop(receipt), // queued for both endpoints
    ///     Err(SendError::Full(event)) => {
    ///         // Queued for neither: wait for room at both with `send`.
    ///         let _receipt = sender.send(event).await?;
    ///     }
    ///     Err(e) => return Err(e.into()),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SendError::Closed`] after shutdown started; [`SendError::Full`] when the queue of any
    /// selecting endpoint under [`OverflowPolicy::Block`](super::OverflowPolicy::Block) is full. Either way the event is
    /// handed back intact, queued nowhere, and no counter, metric or lifecycle event of any
    /// endpoint changed.
    pub fn try_send(&self, event: Event) -> Result<Receipt, SendError> {
        let Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        }) = self.route(&event)
        else {
            return Err(SendError::Closed(event));
        };
        let picks = picks.as_slice();
        if let Some(outbox) = &self.inner.common.outbox
            && !picks.is_empty()
        {
            let seq = match self.store(outbox, &routes, picks, &event) {
                Ok(Appended::Written { seq, .. }) => {
                    if outbox.store.durability() == Durability::Sync
                        && let Err(e) = outbox.store.sync_now()
                    {
                        return Err(SendError::Outbox(event, Box::new(e)));
                    }
                    seq
                }
                Ok(Appended::Full) => return Err(SendError::Full(event)),
                Ok(Appended::Dropped) => {
                    self.dropped_by_outbox(&routes, picks, event, &tracker);
                    return Ok(receipt);
                }
                Err(e) => return Err(SendError::Outbox(event, Box::new(e))),
            };
            self.place_stored(&routes, picks, event, &tracker, seq)?;
            return Ok(receipt);
        }
        match picks {
            [] => Ok(receipt),
            [only] => {
                // One selecting endpoint: one offer (one lock).
                let entry = Entry {
                    event,
                    slot: Slot::new(tracker, 0),
                };
                let ep = &routes.endpoints[*only as usize];
                if let Placed::Full(Entry { event, slot }) = self.place(ep, entry, false)? {
                    // Nobody holds the receipt: resolving this slot is not observable.
                    slot.resolve(Outcome::Dropped);
                    return Err(SendError::Full(event));
                }
                Ok(receipt)
            }
            many => {
                self.try_send_all(&routes, many, event, tracker)?;
                Ok(receipt)
            }
        }
    }

    /// [`try_send`](Self::try_send) to the selecting endpoints at `picks` (at least two,
    /// ascending).
    fn try_send_all(
        &self,
        routes: &Routes,
        picks: &[u32],
        event: Event,
        tracker: Arc<Tracker>,
    ) -> Result<(), SendError> {
        // Copies first, without any lock held; the original goes to the last lane.
        let last = picks.len() - 1;
        let mut lanes: Vec<Lane<'_>> = picks
            .iter()
            .enumerate()
            .map(|(slot, &pos)| Lane {
                slot,
                ep: &routes.endpoints[pos as usize],
                event: (slot != last).then(|| event.clone()),
                queue: None,
                offer: None,
            })
            .collect();
        // Every lock in the order endpoints were added (the only place holding two queue
        // locks; every version of the routes keeps that order).
        for lane in &mut lanes {
            lane.queue = Some(lane.ep.queue.lock_for_offer());
        }
        let locked = || lanes.iter().filter_map(|l| l.queue.as_ref());
        let refused = if locked().any(|q| q.is_shut_down()) {
            Some(SendError::Closed as fn(Event) -> SendError)
        } else if locked().any(|q| q.is_full()) {
            Some(SendError::Full as fn(Event) -> SendError)
        } else {
            None
        };
        if let Some(refused) = refused {
            self.unlock_all(&mut lanes);
            return Err(refused(event));
        }
        let mut event = Some(event);
        // Every lane has its lock and exactly one event (a copy, or the original for the
        // last), so each gets an offer and a slot.
        for lane in &mut lanes {
            let (Some(queue), Some(event)) = (
                lane.queue.as_mut(),
                lane.event.take().or_else(|| event.take()),
            ) else {
                continue;
            };
            lane.offer = Some(queue.offer(Entry {
                event,
                slot: Slot::new(tracker.clone(), lane.slot),
            }));
        }
        self.unlock_all(&mut lanes);
        // Outcomes (drops, disabled endpoints) only once every lock is released.
        for lane in lanes {
            let Some(offer) = lane.offer else { continue };
            // Every `Block` queue had room and none was shut down, under the same locks as
            // the offers: `Full` cannot happen; were it to, the event is dropped, not lost.
            if let Placed::Full(e) = self.settle(lane.ep, offer, true)? {
                self.dropped(lane.ep, e);
            }
        }
        Ok(())
    }

    /// Writes the event to the outbox for the selecting endpoints at `picks`.
    fn store(
        &self,
        outbox: &Outbox,
        routes: &Routes,
        picks: &[u32],
        event: &Event,
    ) -> Result<Appended, OutboxError> {
        let names: Vec<&str> = picks
            .iter()
            .map(|&p| &*routes.endpoints[p as usize].name)
            .collect();
        outbox.store.append(&names, event, SystemTime::now())
    }

    /// Offers a stored event to every selecting endpoint's queue (a full queue leaves it to
    /// be read from the outbox).
    fn place_stored(
        &self,
        routes: &Routes,
        picks: &[u32],
        event: Event,
        tracker: &Arc<Tracker>,
        seq: u64,
    ) -> Result<(), SendError> {
        if self
            .inner
            .common
            .outbox
            .as_ref()
            .is_some_and(|o| o.store.is_shared())
        {
            // A shared queue: whichever process reads the event delivers it (queueing it here
            // as well would deliver it twice).
            for slot in 0..picks.len() {
                Slot::stored(tracker.clone(), slot, seq).resolve(Outcome::Enqueued);
            }
            return Ok(());
        }
        let mut event = Some(event);
        for (slot, &pos) in picks.iter().enumerate() {
            let ep = &routes.endpoints[pos as usize];
            let copy = if slot + 1 == picks.len() {
                event.take()
            } else {
                event.clone()
            };
            let Some(copy) = copy else { break };
            let entry = Entry {
                event: copy,
                slot: Slot::stored(tracker.clone(), slot, seq),
            };
            // Stored: a shutdown fails the receipt's slot only (the outbox keeps the event).
            if let Placed::Full(e) = self.place(ep, entry, true)? {
                // Durable queues spill rather than refuse; were one to refuse, the event is
                // still in the outbox and delivered after a restart.
                e.slot.forget();
            }
        }
        Ok(())
    }

    /// The outbox dropped the event (its byte limit under `DropNewest`): every slot resolves
    /// as dropped, counted at each endpoint.
    fn dropped_by_outbox(
        &self,
        routes: &Routes,
        picks: &[u32],
        event: Event,
        tracker: &Arc<Tracker>,
    ) {
        for (slot, &pos) in picks.iter().enumerate() {
            let ep = &routes.endpoints[pos as usize];
            self.dropped(
                ep,
                Entry {
                    event: event.clone(),
                    slot: Slot::new(tracker.clone(), slot),
                },
            );
        }
    }

    /// Releases every lane's lock, waking (or spawning) the drivers that need it.
    fn unlock_all(&self, lanes: &mut [Lane<'_>]) {
        for lane in lanes {
            if let Some(queue) = lane.queue.take()
                && queue.unlock()
            {
                driver::spawn(&self.inner.common, lane.ep);
            }
        }
    }

    /// Routes `event` with this handle's current routes: the selecting endpoints, and the
    /// receipt with one slot each. `None` once shutdown started.
    fn route(&self, event: &Event) -> Option<Routed> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let routes = self.current();
        let picks = routes.pick(event);
        let tracker = Tracker::new(
            picks
                .as_slice()
                .iter()
                .map(|&p| routes.endpoints[p as usize].name.clone()),
        );
        let receipt = Receipt::new(tracker.clone());
        Some(Routed {
            routes,
            picks,
            tracker,
            receipt,
        })
    }

    /// Offers one endpoint's entry; `Full` only under `Block`.
    fn place(&self, ep: &Arc<Shared>, entry: Entry, accepted: bool) -> Result<Placed, SendError> {
        let (offer, spawn) = ep.queue.offer(entry);
        if spawn {
            driver::spawn(&self.inner.common, ep);
        }
        self.settle(ep, offer, accepted)
    }

    /// Acts on an offer's result (drops, disabled or removed endpoint, shutdown); `accepted`
    /// says whether an earlier endpoint took the event (then a shutdown fails this slot only).
    fn settle(&self, ep: &Shared, offer: Offer, accepted: bool) -> Result<Placed, SendError> {
        match offer {
            Offer::Queued(None) | Offer::Spilled => {}
            Offer::Queued(Some(old)) => self.dropped(ep, old),
            Offer::DroppedNewest(e) => self.dropped(ep, e),
            Offer::Full(e) => return Ok(Placed::Full(e)),
            Offer::Closed(e, closed @ (Closed::Disabled | Closed::Removed)) => {
                ep.failed.fetch_add(1, Ordering::Relaxed);
                ep.metrics.failed.increment(1);
                let reason = if closed == Closed::Removed {
                    ep.refused.fetch_add(1, Ordering::Relaxed);
                    FailureReason::EndpointRemoved
                } else {
                    FailureReason::EndpointDisabled
                };
                self.inner.common.outbox_gave_up(
                    &ep.name,
                    None,
                    std::slice::from_ref(&e.event),
                    &[e.slot.seq()],
                    GaveUpAs::Dead {
                        reason: &reason,
                        last: None,
                    },
                );
                e.slot.resolve(Outcome::Failed { reason });
            }
            Offer::Closed(e, Closed::Shutdown) => {
                let Entry { event, slot } = e;
                slot.resolve(Outcome::Failed {
                    reason: FailureReason::Shutdown,
                });
                if !accepted {
                    return Err(SendError::Closed(event));
                }
            }
        }
        Ok(Placed::Done)
    }

    fn dropped(&self, ep: &Shared, entry: Entry) {
        let Entry { event, slot } = entry;
        slot.resolve(Outcome::Dropped);
        ep.dropped.fetch_add(1, Ordering::Relaxed);
        ep.metrics.dropped.increment(1);
        tracing::debug!(endpoint = %ep.name, event_id = %event.id(), "event dropped by the overflow policy");
        let _ = self.inner.common.lifecycle.send(LifecycleEvent::Dropped {
            endpoint: ep.name.clone(),
            event_id: Arc::from(event.id()),
        });
    }
}

/// An event routed by [`Sender::route`].
struct Routed {
    routes: Arc<Routes>,
    picks: Picks,
    tracker: Arc<Tracker>,
    receipt: Receipt,
}

enum Placed {
    Done,
    Full(Entry),
}

/// One selecting endpoint of a multi-endpoint [`Sender::try_send`].
struct Lane<'a> {
    /// Its slot in the receipt.
    slot: usize,
    ep: &'a Arc<Shared>,
    /// Its copy of the event (`None` for the last lane, which takes the original).
    event: Option<Event>,
    /// Its queue, locked from the check until every offer is made.
    queue: Option<Locked<'a>>,
    /// What its queue answered.
    offer: Option<Offer>,
}
