//! The field-level changes between two endpoint configurations, for the audit trail. Values
//! are rendered with the types' own `Debug`, which never shows a secret (auth, key rings and
//! custom header values print redacted); custom headers show their names only.

use std::fmt::Debug;

use super::endpoint::EndpointConfig;
use super::registry::FieldChange;

/// Every field of `cfg` rendered, as `(field, value)`.
fn fields(cfg: &EndpointConfig) -> Vec<(&'static str, String)> {
    fn d(v: &impl Debug) -> String {
        format!("{v:?}")
    }
    let e = &cfg.endpoint;
    let s = &cfg.subscription;
    vec![
        ("url", e.url().to_string()),
        ("method", e.method().to_string()),
        ("auth", d(e.auth())),
        ("encoding", d(&e.encoding())),
        ("gzip", d(&e.gzip())),
        ("request", d(e)),
        ("tenant", d(&s.tenant)),
        ("event_sets", d(&s.event_sets)),
        ("types", d(&s.types)),
        ("labels", d(&s.labels)),
        ("batching", d(&cfg.batcher)),
        ("retry", d(&cfg.retry)),
        ("health", d(&cfg.health)),
        ("breaker", d(&cfg.breaker)),
        ("concurrency", d(&cfg.concurrency)),
        ("rate_limit", d(&cfg.rate_limit)),
        (
            "queue",
            format!("{} {:?}", cfg.queue_capacity, cfg.overflow),
        ),
        ("request_timeout", d(&cfg.request_timeout)),
        ("token_provider", d(&cfg.tokens.is_some())),
    ]
}

/// The fields of an endpoint just added.
pub(crate) fn added(cfg: &EndpointConfig) -> Vec<FieldChange> {
    fields(cfg)
        .into_iter()
        .map(|(field, new)| FieldChange {
            field: field.into(),
            old: None,
            new: Some(new),
        })
        .collect()
}

/// The fields that differ from `old` to `new`.
pub(crate) fn changed(old: &EndpointConfig, new: &EndpointConfig) -> Vec<FieldChange> {
    fields(old)
        .into_iter()
        .zip(fields(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| FieldChange {
            field: field.into(),
            old: Some(a),
            new: Some(b),
        })
        .collect()
}
