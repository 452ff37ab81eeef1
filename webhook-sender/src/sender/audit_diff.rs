//! The field-level changes between two endpoint configurations, for the audit trail.
//!
//! Configurations built from an [`EndpointSpec`](crate::EndpointSpec) are compared field by
//! field through [`EndpointSpec::changes`](crate::EndpointSpec::changes) (secrets as
//! redaction markers, so a rotation shows). Those built in code are compared through the
//! types' own `Debug`, which never shows a secret (auth and key rings print redacted, custom
//! headers their names only): a change of secret value alone does not show there.

use std::fmt::Debug;

use super::endpoint::EndpointConfig;
use crate::registry::FieldChange;

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
    if let Some(spec) = &cfg.spec {
        let empty = crate::EndpointSpec::new(String::new(), String::new());
        return empty.changes(spec);
    }
    fields(cfg)
        .into_iter()
        .map(|(field, new)| FieldChange::new(field, None, Some(new)))
        .collect()
}

/// The fields that differ from `old` to `new`.
pub(crate) fn changed(old: &EndpointConfig, new: &EndpointConfig) -> Vec<FieldChange> {
    if let (Some(a), Some(b)) = (&old.spec, &new.spec) {
        return a.changes(b);
    }
    fields(old)
        .into_iter()
        .zip(fields(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| FieldChange::new(field, Some(a), Some(b)))
        .collect()
}
