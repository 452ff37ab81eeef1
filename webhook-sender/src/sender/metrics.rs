//! Metrics through the [`metrics`] facade (0.24), labelled `endpoint = <name>`.
//!
//! Install any recorder (Prometheus exporter, StatsD, ...) in the application; without one the
//! calls are no-ops. Handles are registered once per endpoint, so the hot path only updates
//! atomics.
//!
//! | name | kind | meaning |
//! | --- | --- | --- |
//! | `webhook_sender_events_sent_total` | counter | events acknowledged with a 2xx |
//! | `webhook_sender_events_failed_total` | counter | events given up on (dead-lettered, disabled, rejected) |
//! | `webhook_sender_events_dropped_total` | counter | events dropped by the overflow policy |
//! | `webhook_sender_requests_total` | counter | requests sent (attempts) |
//! | `webhook_sender_requests_retried_total` | counter | attempts scheduled for retry |
//! | `webhook_sender_queue_depth` | gauge | events queued or buffered in the batcher |
//! | `webhook_sender_in_flight` | gauge | requests in flight |
//! | `webhook_sender_batch_size` | histogram | events per sent batch |
//! | `webhook_sender_request_duration_seconds` | histogram | latency of each attempt |

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram};

/// Counter of delivered events.
pub const EVENTS_SENT: &str = "webhook_sender_events_sent_total";
/// Counter of events given up on.
pub const EVENTS_FAILED: &str = "webhook_sender_events_failed_total";
/// Counter of events dropped by the overflow policy.
pub const EVENTS_DROPPED: &str = "webhook_sender_events_dropped_total";
/// Counter of requests (attempts).
pub const REQUESTS: &str = "webhook_sender_requests_total";
/// Counter of attempts scheduled for retry.
pub const RETRIES: &str = "webhook_sender_requests_retried_total";
/// Gauge of queued plus batcher-buffered events.
pub const QUEUE_DEPTH: &str = "webhook_sender_queue_depth";
/// Gauge of in-flight requests.
pub const IN_FLIGHT: &str = "webhook_sender_in_flight";
/// Histogram of events per batch.
pub const BATCH_SIZE: &str = "webhook_sender_batch_size";
/// Histogram of attempt latency in seconds.
pub const LATENCY: &str = "webhook_sender_request_duration_seconds";

/// The registered handles of one endpoint.
#[derive(Clone)]
pub(crate) struct EndpointMetrics {
    pub(crate) sent: Counter,
    pub(crate) failed: Counter,
    pub(crate) dropped: Counter,
    pub(crate) requests: Counter,
    pub(crate) retried: Counter,
    pub(crate) queue_depth: Gauge,
    pub(crate) in_flight: Gauge,
    pub(crate) batch_size: Histogram,
    pub(crate) latency: Histogram,
}

impl EndpointMetrics {
    pub(crate) fn new(endpoint: &Arc<str>) -> Self {
        let label = || [("endpoint", endpoint.to_string())];
        Self {
            sent: metrics::counter!(EVENTS_SENT, &label()),
            failed: metrics::counter!(EVENTS_FAILED, &label()),
            dropped: metrics::counter!(EVENTS_DROPPED, &label()),
            requests: metrics::counter!(REQUESTS, &label()),
            retried: metrics::counter!(RETRIES, &label()),
            queue_depth: metrics::gauge!(QUEUE_DEPTH, &label()),
            in_flight: metrics::gauge!(IN_FLIGHT, &label()),
            batch_size: metrics::histogram!(BATCH_SIZE, &label()),
            latency: metrics::histogram!(LATENCY, &label()),
        }
    }
}
