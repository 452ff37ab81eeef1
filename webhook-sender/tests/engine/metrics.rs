//! Metrics through the `metrics` facade: a local recorder sees sent, retried, requests, batch
//! size, latency and queue depth for the endpoint label.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use webhook_core::Encoding;
use webhook_core::Endpoint;
use webhook_sender::{EndpointConfig, Sender};

use super::server::{BoxError, Reply, Server};

#[derive(Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        if let Ok(mut v) = self.0.lock() {
            v.push(value);
        }
    }
}

#[derive(Default)]
struct TestRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Values>>>,
}

fn label(key: &Key) -> String {
    let endpoint = key
        .labels()
        .find(|l| l.key() == "endpoint")
        .map(|l| l.value().to_owned())
        .unwrap_or_default();
    format!("{}{{{endpoint}}}", key.name())
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut m = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        Counter::from_arc(m.entry(label(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut m = self.gauges.lock().unwrap_or_else(|e| e.into_inner());
        Gauge::from_arc(m.entry(label(key)).or_default().clone())
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut m = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        Histogram::from_arc(m.entry(label(key)).or_default().clone())
    }
}

impl TestRecorder {
    fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|m| m.get(name).map(|c| c.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }
    fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges.lock().ok().and_then(|m| {
            m.get(name)
                .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
        })
    }
    fn histogram(&self, name: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .ok()
            .and_then(|m| m.get(name).and_then(|h| h.0.lock().ok().map(|v| v.clone())))
            .unwrap_or_default()
    }
}

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
