//! Publishing the delivery machine's outputs: receipts, counters, metrics, dead letters and
//! lifecycle events. What the machine decided, told to the application.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use webhook_core::{BatchId, Delivery, DeliveryEvent, Event, HealthChange, Settled, Settlement};

use super::driver::{Driver, GaveUpAs};
use super::lifecycle::{DeadLetter, LastError, LifecycleEvent, Undelivered};
use super::queue::{Closed, Entry};
use super::receipt::{FailureReason, Outcome, Slot};
use super::registry::RemovePolicy;
use crate::outbox::log::wall_ms;
use crate::outbox::{AttemptInfo, BatchRecord, SettleKind};

impl Driver {
    /// Publishes the machine's outputs: receipts, counters, metrics, dead letters, lifecycle.
    pub(crate) fn publish(
        &mut self,
        machine: &mut Delivery<Slot>,
        intake: &mut VecDeque<Entry>,
        out: &mut Vec<Undelivered>,
        wall: SystemTime,
    ) {
        let name = self.shared.name.clone();
        let endpoint = || name.clone();
        while let Some(event) = machine.poll_event() {
            match event {
                DeliveryEvent::Sent { .. } => {}
                DeliveryEvent::RetryScheduled {
                    batch_id,
                    attempts,
                    delay,
                    error,
                    ..
                } => {
                    if let Some(outbox) = &self.common.outbox {
                        let (status, latency) = self
                            .answers
                            .remove(&batch_id)
                            .unwrap_or((None, Duration::ZERO));
                        let due = wall_ms(wall)
                            .saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                        outbox.store.batch(
                            &self.shared.name,
                            batch_id.as_str(),
                            BatchRecord {
                                first: None,
                                attempts,
                                first_ms: 0,
                                due_ms: due,
                                attempt: Some(AttemptInfo {
                                    at_ms: wall_ms(wall),
                                    status,
                                    latency,
                                    error: error.to_string(),
                                }),
                            },
                        );
                    }
                    if self
                        .common
                        .outbox
                        .as_ref()
                        .is_some_and(|o| o.store.schedules_retries())
                    {
                        // The store keeps it until it is due (any process may send it then).
                        let _ = machine.hand_over(&batch_id);
                    }
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    self.shared.metrics.retried.increment(1);
                    self.shared.published().last_error = Some(LastError {
                        at: wall,
                        error: error.to_string(),
                    });
                    tracing::debug!(%batch_id, attempts, delay_ms = delay.as_millis() as u64, %error, "retry scheduled");
                }
                DeliveryEvent::Settled(s) => self.settled(s, out, wall),
                DeliveryEvent::Health(change) => {
                    let event = match change {
                        HealthChange::Failing { since } => {
                            tracing::warn!("endpoint failing");
                            LifecycleEvent::Failing {
                                endpoint: endpoint(),
                                since,
                            }
                        }
                        HealthChange::Failed { since } => {
                            tracing::error!(
                                "endpoint failed: no success within the failure window"
                            );
                            LifecycleEvent::Failed {
                                endpoint: endpoint(),
                                since,
                            }
                        }
                        HealthChange::Recovered { after } => {
                            tracing::info!(
                                after_ms = after.as_millis() as u64,
                                "endpoint recovered"
                            );
                            LifecycleEvent::Recovered {
                                endpoint: endpoint(),
                                after,
                            }
                        }
                        HealthChange::Disabled { reason } => {
                            tracing::warn!(reason = ?reason, "endpoint disabled");
                            let _ = self.common.lifecycle.send(LifecycleEvent::Disabled {
                                endpoint: endpoint(),
                                reason,
                            });
                            // Announced first; then what waits in the queue fails, then what
                            // the machine held (the settlements that follow).
                            let queued = self.shared.queue.close(Closed::Disabled, true);
                            let (events, slots) = intake.drain(..).chain(queued).fold(
                                (Vec::new(), Vec::new()),
                                |(mut e, mut s), entry| {
                                    e.push(entry.event);
                                    s.push(entry.slot);
                                    (e, s)
                                },
                            );
                            if !events.is_empty() {
                                self.fail(events, slots, None, FailureReason::EndpointDisabled);
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    let _ = self.common.lifecycle.send(event);
                }
                _ => {}
            }
        }
    }

    fn settled(&mut self, s: Settlement<Slot>, out: &mut Vec<Undelivered>, wall: SystemTime) {
        let Settlement {
            batch_id,
            events,
            tags: slots,
            outcome,
            ..
        } = s;
        let answer = batch_id.as_ref().and_then(|b| self.answers.remove(b));
        match outcome {
            Settled::Delivered { status, attempts } => {
                if let Some(outbox) = &self.common.outbox {
                    let seqs: Vec<u64> = slots.iter().map(Slot::seq).filter(|&q| q != 0).collect();
                    outbox.store.settle(
                        &self.shared.name,
                        SettleKind::Delivered,
                        batch_id.as_ref().map(BatchId::as_str),
                        &seqs,
                    );
                }
                // Counters first: whoever sees a receipt resolve sees them counted.
                let n = events.len() as u64;
                self.shared.delivered.fetch_add(n, Ordering::Relaxed);
                self.shared
                    .batches_delivered
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.metrics.sent.increment(n);
                self.shared.published().last_success = Some(wall);
                for slot in slots {
                    slot.resolve(Outcome::Delivered { attempts, status });
                }
            }
            Settled::GaveUp(reason)
                if reason == FailureReason::EndpointRemoved
                    && self.removal == Some(RemovePolicy::Drop) =>
            {
                // Removed under the drop policy: counted, no dead letter.
                let n = events.len() as u64;
                let seqs: Vec<u64> = slots.iter().map(Slot::seq).collect();
                self.common.outbox_gave_up(
                    &self.shared.name,
                    batch_id.as_ref(),
                    &events,
                    &seqs,
                    GaveUpAs::Dropped,
                );
                self.shared.dropped.fetch_add(n, Ordering::Relaxed);
                self.shared.metrics.dropped.increment(n);
                resolve_failed(slots, &reason);
            }
            Settled::GaveUp(reason) => {
                if reason != FailureReason::EndpointRemoved {
                    self.shared.published().last_error = Some(LastError {
                        at: wall,
                        error: reason.to_string(),
                    });
                }
                if let Some(batch_id) = &batch_id {
                    tracing::warn!(%batch_id, reason = %reason, "giving up on batch");
                    let _ = self.common.lifecycle.send(LifecycleEvent::Exhausted {
                        endpoint: self.shared.name.clone(),
                        batch_id: batch_id.clone(),
                        events: events.len(),
                        reason: reason.clone(),
                    });
                } else if reason == FailureReason::Oversize {
                    tracing::warn!("event larger than the batch byte limit; not sent");
                }
                let last = answer.map(|(status, latency)| AttemptInfo {
                    at_ms: wall_ms(wall),
                    status,
                    latency,
                    error: reason.to_string(),
                });
                self.fail_with(events, slots, batch_id, reason, last);
            }
            Settled::Abandoned(stage) => {
                for slot in slots {
                    slot.resolve(Outcome::Failed {
                        reason: FailureReason::Shutdown,
                    });
                }
                if !events.is_empty() {
                    out.push(Undelivered {
                        endpoint: self.shared.name.clone(),
                        events,
                        stage,
                    });
                }
            }
            _ => {}
        }
    }

    /// Fails events: receipts, counters, dead letter.
    fn fail(
        &self,
        events: Vec<Event>,
        slots: Vec<Slot>,
        batch_id: Option<BatchId>,
        reason: FailureReason,
    ) {
        self.fail_with(events, slots, batch_id, reason, None);
    }

    /// [`fail`](Self::fail) with the last attempt, for the outbox's attempt log.
    fn fail_with(
        &self,
        events: Vec<Event>,
        slots: Vec<Slot>,
        batch_id: Option<BatchId>,
        reason: FailureReason,
        last: Option<AttemptInfo>,
    ) {
        let seqs: Vec<u64> = slots.iter().map(Slot::seq).collect();
        self.common.outbox_gave_up(
            &self.shared.name,
            batch_id.as_ref(),
            &events,
            &seqs,
            GaveUpAs::Dead {
                reason: &reason,
                last,
            },
        );
        let n = events.len() as u64;
        self.shared.failed.fetch_add(n, Ordering::Relaxed);
        self.shared.metrics.failed.increment(n);
        resolve_failed(slots, &reason);
        if let Some(hook) = &self.common.dead_letter {
            self.shared.dead_lettered.fetch_add(n, Ordering::Relaxed);
            hook(DeadLetter {
                endpoint: self.shared.name.clone(),
                batch_id,
                events,
                reason,
            });
        }
    }
}

/// Resolves every slot as failed for `reason`.
fn resolve_failed(slots: Vec<Slot>, reason: &FailureReason) {
    for slot in slots {
        slot.resolve(Outcome::Failed {
            reason: reason.clone(),
        });
    }
}
