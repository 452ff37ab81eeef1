//! Hooks for the fuzz targets in `fuzz/` (feature `fuzzing`): not a stable API.

use serde::Deserialize;

use crate::fast::{FastRead, read_all};

/// Whether the fast reader answered `text` as a `T`; panics when it answered a value that
/// `serde_json` does not return for the same text.
fn agrees<'a, T>(text: &'a str) -> bool
where
    T: FastRead<'a> + Deserialize<'a> + PartialEq + std::fmt::Debug,
{
    let Some(fast) = read_all::<T>(text) else {
        return false;
    };
    let slow: Result<T, _> = serde_json::from_str(text);
    match slow {
        Ok(slow) => assert_eq!(
            slow,
            fast,
            "fast reader and serde_json differ on {text:?} as {}",
            std::any::type_name::<T>()
        ),
        Err(e) => panic!(
            "fast reader accepted what serde_json refuses ({e}) on {text:?} as {}",
            std::any::type_name::<T>()
        ),
    }
    true
}

/// Reads `text` with the fast reader as every payload type that has one and, wherever it
/// returns a value, checks that `serde_json` returns the same value (it may give up: then
/// `serde_json` alone decides). Returns how many types it answered.
///
/// # Panics
///
/// When the fast reader and `serde_json` disagree: the bug this hook is for.
pub fn fast_reader_agrees(text: &str) -> usize {
    use crate::sysdig::{
        Action, AuditTrailContent, AuditTrailEvent, BenchmarkEvent, CommandEvent, ConnectionEvent,
        FileAccessEvent, HostScanningEvent, KeyValue, KubernetesArgs, KubernetesEvent,
        KubernetesUser, LegacyPolicyEvent, PolicyContent, PolicyEvent,
    };
    [
        agrees::<PolicyEvent<'_>>(text),
        agrees::<PolicyContent<'_>>(text),
        agrees::<Action<'_>>(text),
        agrees::<LegacyPolicyEvent<'_>>(text),
        agrees::<KeyValue>(text),
        agrees::<CommandEvent<'_>>(text),
        agrees::<ConnectionEvent<'_>>(text),
        agrees::<FileAccessEvent<'_>>(text),
        agrees::<KubernetesEvent<'_>>(text),
        agrees::<KubernetesUser>(text),
        agrees::<KubernetesArgs>(text),
        agrees::<AuditTrailEvent<'_>>(text),
        agrees::<AuditTrailContent>(text),
        agrees::<BenchmarkEvent<'_>>(text),
        agrees::<HostScanningEvent<'_>>(text),
        agrees::<crate::connectsecure::ConnectSecureAlert>(text),
        agrees::<crate::soveren::SoverenEvent>(text),
        agrees::<crate::soveren::Asset>(text),
        agrees::<crate::soveren::SoverenEndpoint>(text),
        agrees::<crate::soveren::Link>(text),
        agrees::<crate::standard::StandardWebhook>(text),
        agrees::<crate::cloudevents::CloudEvent>(text),
        agrees::<crate::falco::FalcoEvent>(text),
        agrees::<crate::alertmanager::AlertmanagerPayload>(text),
        agrees::<crate::alertmanager::Alert>(text),
    ]
    .into_iter()
    .filter(|answered| *answered)
    .count()
}
