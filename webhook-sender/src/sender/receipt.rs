//! Receipts: one per event given to [`Sender::send`](crate::Sender::send), resolving to the
//! outcome at every endpoint.
//!
//! A receipt is a future. Each endpoint whose subscription selected the event when it was sent
//! owns one *slot* of it; the slot travels with the event through the endpoint's queue, batcher,
//! requests and retries, and is resolved exactly once: delivered, failed with a reason, or
//! dropped by the overflow policy. A slot that is dropped unresolved (a driver task that
//! ended abnormally) resolves itself as failed with [`FailureReason::SenderStopped`], so a
//! receipt always completes and no event is ever lost silently.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use http::StatusCode;

pub use webhook_core::{AttemptError, FailureReason};

/// What happened to an event at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Acknowledged with a 2xx (its batch was acknowledged as a whole).
    Delivered {
        /// Attempts made for its batch, the successful one included.
        attempts: u32,
        /// The 2xx status.
        status: StatusCode,
    },
    /// Not delivered, for this reason.
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// Dropped by the queue's overflow policy (counted, and reported on the lifecycle stream).
    Dropped,
    /// Stored in a shared queue ([`OutboxStore::is_shared`](crate::outbox::OutboxStore::is_shared)):
    /// whichever process reads it from there delivers it; this sender does not learn the
    /// outcome.
    Enqueued,
}

impl Outcome {
    /// `true` for [`Outcome::Delivered`].
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered { .. })
    }
}

/// The outcome of one event at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointOutcome {
    /// The endpoint's name.
    pub endpoint: Arc<str>,
    /// What happened there.
    pub outcome: Outcome,
}

/// What a [`Receipt`] resolves to: the outcome at each endpoint whose subscription selected the
/// event when it was sent (tenant, event sets, types, labels), in the order the endpoints were
/// added. Endpoints that did not select it are not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    outcomes: Vec<EndpointOutcome>,
}

impl DeliveryReport {
    /// All outcomes, one per selecting endpoint.
    #[must_use]
    pub fn outcomes(&self) -> &[EndpointOutcome] {
        &self.outcomes
    }

    /// The outcome at the endpoint named `endpoint` (`None` when it did not select the event).
    #[must_use]
    pub fn outcome(&self, endpoint: &str) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|o| &*o.endpoint == endpoint)
            .map(|o| &o.outcome)
    }

    /// `true` when every endpoint that selected the event acknowledged it (and at least one
    /// did).
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.outcome.is_delivered())
    }
}

struct State {
    outcomes: Outcomes,
    remaining: usize,
    waker: Option<Waker>,
}

/// The selecting endpoints' names and outcomes: inline for the common single endpoint, so a
/// receipt costs one allocation.
enum Outcomes {
    One(Arc<str>, Option<Outcome>),
    Many(Vec<(Arc<str>, Option<Outcome>)>),
}

impl Outcomes {
    fn get_mut(&mut self, index: usize) -> Option<&mut Option<Outcome>> {
        match self {
            Self::One(_, o) => (index == 0).then_some(o),
            Self::Many(v) => v.get_mut(index).map(|(_, o)| o),
        }
    }

    fn as_slice(&self) -> &[(Arc<str>, Option<Outcome>)] {
        match self {
            Self::One(..) => &[],
            Self::Many(v) => v,
        }
    }
}

/// Shared state of one receipt.
pub(crate) struct Tracker {
    state: Mutex<State>,
    /// The [`Receipt`] is still held: an outcome may be observed.
    watched: std::sync::atomic::AtomicBool,
}

impl Tracker {
    /// A receipt for the endpoints `names` (slot `i` is `names[i]`).
    pub(crate) fn new(mut names: impl ExactSizeIterator<Item = Arc<str>>) -> Arc<Self> {
        let n = names.len();
        let outcomes = match (n, names.next()) {
            (1, Some(name)) => Outcomes::One(name, None),
            (_, first) => {
                Outcomes::Many(first.into_iter().chain(names).map(|n| (n, None)).collect())
            }
        };
        Arc::new(Self {
            state: Mutex::new(State {
                outcomes,
                remaining: n,
                waker: None,
            }),
            watched: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// `false` once the receipt was dropped: nobody can observe an outcome any more.
    pub(crate) fn is_watched(&self) -> bool {
        self.watched.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data: a panic while holding the lock cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, index: usize, outcome: Outcome) {
        let waker = {
            let mut state = self.lock();
            let Some(cell) = state.outcomes.get_mut(index) else {
                return;
            };
            if cell.is_some() {
                return;
            }
            *cell = Some(outcome);
            state.remaining -= 1;
            if state.remaining == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// One endpoint's share of a receipt; resolved exactly once (on drop: `SenderStopped`).
pub(crate) struct Slot {
    tracker: Option<Arc<Tracker>>,
    index: usize,
    /// The event's seq in the outbox (0: none).
    seq: u64,
}

impl Slot {
    pub(crate) fn new(tracker: Arc<Tracker>, index: usize) -> Self {
        Self {
            tracker: Some(tracker),
            index,
            seq: 0,
        }
    }

    /// A slot for an event the outbox holds at `seq`.
    pub(crate) fn stored(tracker: Arc<Tracker>, index: usize, seq: u64) -> Self {
        Self {
            tracker: Some(tracker),
            index,
            seq,
        }
    }

    /// A slot nobody observes (an event read back from the outbox).
    pub(crate) fn detached(seq: u64) -> Self {
        Self {
            tracker: None,
            index: 0,
            seq,
        }
    }

    /// The event's seq in the outbox (0: none).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// `true` while the receipt it belongs to is held.
    pub(crate) fn is_watched(&self) -> bool {
        self.tracker.as_ref().is_some_and(|t| t.is_watched())
    }

    /// Disarms the slot without an outcome (nobody observes it).
    pub(crate) fn forget(mut self) {
        self.tracker = None;
    }

    pub(crate) fn resolve(mut self, outcome: Outcome) {
        if let Some(t) = self.tracker.take() {
            t.set(self.index, outcome);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(t) = self.tracker.take() {
            t.set(
                self.index,
                Outcome::Failed {
                    reason: FailureReason::SenderStopped,
                },
            );
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").field("index", &self.index).finish()
    }
}

/// A future resolving to the [`DeliveryReport`] of one event once every endpoint has an
/// outcome. Dropping it does not cancel delivery.
///
/// ```no_run
/// # async fn run(sender: webhook_sender::Sender, event: webhook_core::Event)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// let receipt = sender.send(event).await?;
/// let report = receipt.await;
/// for o in report.outcomes() {
///     println!("{}: {:?}", o.endpoint, o.outcome);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a receipt does nothing unless awaited; dropping it does not cancel delivery"]
pub struct Receipt {
    tracker: Arc<Tracker>,
}

impl Receipt {
    pub(crate) fn new(tracker: Arc<Tracker>) -> Self {
        Self { tracker }
    }

    /// The report if every endpoint already has an outcome.
    #[must_use]
    pub fn try_report(&self) -> Option<DeliveryReport> {
        let state = self.tracker.lock();
        (state.remaining == 0).then(|| self.report(&state))
    }

    fn report(&self, state: &State) -> DeliveryReport {
        let entry = |name: &Arc<str>, o: &Option<Outcome>| EndpointOutcome {
            endpoint: name.clone(),
            outcome: o.clone().unwrap_or(Outcome::Failed {
                reason: FailureReason::SenderStopped,
            }),
        };
        let outcomes = match &state.outcomes {
            Outcomes::One(name, o) => vec![entry(name, o)],
            many => many.as_slice().iter().map(|(n, o)| entry(n, o)).collect(),
        };
        DeliveryReport { outcomes }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        self.tracker
            .watched
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remaining = self.tracker.lock().remaining;
        f.debug_struct("Receipt")
            .field("pending_endpoints", &remaining)
            .finish()
    }
}

impl Future for Receipt {
    type Output = DeliveryReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryReport> {
        let mut state = self.tracker.lock();
        if state.remaining == 0 {
            return Poll::Ready(self.report(&state));
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> impl ExactSizeIterator<Item = Arc<str>> {
        [Arc::<str>::from("a"), Arc::<str>::from("b")].into_iter()
    }

    #[tokio::test]
    async fn resolves_when_every_slot_is_set() {
        let t = Tracker::new(names());
        let receipt = Receipt::new(t.clone());
        let a = Slot::new(t.clone(), 0);
        let b = Slot::new(t, 1);
        assert!(receipt.try_report().is_none());
        a.resolve(Outcome::Dropped);
        assert!(receipt.try_report().is_none());
        let handle = tokio::spawn(receipt);
        b.resolve(Outcome::Delivered {
            attempts: 1,
            status: StatusCode::OK,
        });
        let report = handle.await.unwrap();
        assert!(!report.is_delivered());
        assert_eq!(report.outcome("a"), Some(&Outcome::Dropped));
        assert!(report.outcome("b").is_some_and(Outcome::is_delivered));
        assert_eq!(report.outcome("c"), None);
    }

    #[test]
    fn dropped_slot_fails_instead_of_hanging() {
        let t = Tracker::new(names());
        let receipt = Receipt::new(t.clone());
        Slot::new(t.clone(), 0).resolve(Outcome::Dropped);
        drop(Slot::new(t, 1));
        let report = receipt.try_report().unwrap();
        assert!(!report.is_delivered());
        assert_eq!(
            report.outcome("b"),
            Some(&Outcome::Failed {
                reason: FailureReason::SenderStopped
            })
        );
    }
}
