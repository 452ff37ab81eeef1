//! Metrics through the `metrics` facade: a local recorder sees sent, retried, requests, batch
//! size, latency and queue depth for the endpoint label.

use std::time::Duration;
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_sender::{EndpointConfig, Sender};

use super::server::{BoxError, Reply, Server};

#[path = "../support/recorder.rs"]
#[allow(dead_code, reason = "shared with the outbox tests")]
mod recorder;

use recorder::TestRecorder;

#[test]
fn counters_gauges_and_histograms_are_recorded() -> Result<(), BoxError> {
    let recorder = TestRecorder::default();
    // A current-thread runtime keeps every task on this thread, where the local recorder is.
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let server = Server::start(|n, _| {
                if n == 0 {
                    Reply::status(503)
                } else {
                    Reply::ok()
                }
            })
            .await?;
            let sender = Sender::builder()
                .transport(super::transport(Duration::from_secs(5))?)
                .endpoint(
                    EndpointConfig::builder("m", Endpoint::builder(server.url("/in")).build()?)
                        .batching(super::batching(
                            Encoding::JsonArray,
                            Duration::from_millis(50),
                            100,
                        )?)
                        .retry(super::retry(3, Duration::from_millis(10))?)
                        .build()?,
                )
                .build()?;
            let mut receipts = Vec::new();
            for i in 0..10 {
                receipts.push(sender.send(super::event(i)?).await?);
            }
            for r in super::all(receipts).await {
                assert!(r.is_delivered());
            }
            assert!(sender.shutdown(Duration::from_secs(1)).await.is_clean());
            Ok::<(), BoxError>(())
        })
    })?;
    assert_eq!(recorder.counter("webhook_sender_events_sent_total{m}"), 10);
    assert_eq!(recorder.counter("webhook_sender_requests_total{m}"), 2);
    assert_eq!(
        recorder.counter("webhook_sender_requests_retried_total{m}"),
        1
    );
    assert_eq!(recorder.counter("webhook_sender_events_failed_total{m}"), 0);
    assert_eq!(
        recorder.counter("webhook_sender_events_dropped_total{m}"),
        0
    );
    assert_eq!(recorder.histogram("webhook_sender_batch_size{m}"), [10.0]);
    assert_eq!(
        recorder
            .histogram("webhook_sender_request_duration_seconds{m}")
            .len(),
        2
    );
    assert_eq!(recorder.gauge("webhook_sender_queue_depth{m}"), Some(0.0));
    assert_eq!(recorder.gauge("webhook_sender_in_flight{m}"), Some(0.0));
    Ok(())
}
