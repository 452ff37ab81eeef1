//! A `metrics` recorder for tests: every counter, gauge and histogram by `name{endpoint}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

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
pub(crate) struct TestRecorder {
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
    pub(crate) fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|m| m.get(name).map(|c| c.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }
    pub(crate) fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges.lock().ok().and_then(|m| {
            m.get(name)
                .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
        })
    }
    pub(crate) fn histogram(&self, name: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .ok()
            .and_then(|m| m.get(name).and_then(|h| h.0.lock().ok().map(|v| v.clone())))
            .unwrap_or_default()
    }
}
