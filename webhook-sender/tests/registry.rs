//! Endpoints as data: the runtime registry of a running `Sender` against real receivers on
//! 127.0.0.1 (issue 14).
//!
//! * 1,000 changes (add, update, rotate, pause, resume, remove) while a producer sends at full
//!   speed to about 200 endpoints: every event reaches exactly the endpoints its tenant and type
//!   selected when it was sent, none is lost or repeated, and the counts add up;
//! * secret rotation mid-stream, with receivers that accept only the live keys;
//! * enable after a passing test; removal policies; pause and resume; idle drivers park;
//! * the audit trail (every change, secrets redacted) and snapshots that round-trip.

#[path = "engine/server.rs"]
#[allow(
    dead_code,
    reason = "shared with the engine tests, which use all of it"
)]
mod server;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use server::{BoxError, Reply, Server};
use webhook_core::{
    Event, EventSet, HealthConfig, KeyRing, RetryPolicy, Scheme, Secret, Subscription, Verifier,
};
use webhook_sender::registry::{AuthSpec, BatchingSpec, KeySpec};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{
    AuditAction, AuditTarget, EndpointSpec, EndpointState, FailureReason, Outcome, RegistryError,
    RegistrySnapshot, RemovePolicy, Sender, SenderBuilder,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn builder() -> Result<SenderBuilder, BoxError> {
    Ok(Sender::builder()
        .transport_builder(
            TransportBuilder::new()
                .timeout(Duration::from_secs(5))
                .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
        )
        .park_after(ms(50)))
}

fn event(id: &str, tenant: &str, kind: &str) -> Result<Event, BoxError> {
    Ok(Event::builder(id, kind)
        .tenant(tenant)
        .json_bytes(format!(r#"{{"id":"{id}","type":"{kind}"}}"#))?)
}

fn whsec(n: u8) -> String {
    Secret::from_bytes(vec![n; 32])
        .map(|s| s.to_whsec().to_string())
        .unwrap_or_default()
}

fn spec(name: &str, url: String, tenant: &str, sets: &[&str], key: u8) -> EndpointSpec {
    let mut s = EndpointSpec::new(name, url);
    s.tenant = Some(tenant.into());
    s.event_sets = sets.iter().map(|s| (*s).to_owned()).collect();
    s.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![KeySpec::new(whsec(key))],
    };
    s.batching = Some(BatchingSpec {
        max_events: Some(50),
        max_bytes: None,
        linger_ms: Some(5),
    });
    s
}

/// The endpoint named in a request path `/ep/<name>/r<revision>`.
fn endpoint_of(path: &str) -> String {
    path.trim_start_matches("/ep/")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), BoxError> {
    for _ in 0..500 {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(ms(10)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

// ---- the model the test checks the sender against ----------------------------------------

const TYPES: [&str; 4] = ["alert.login", "alert.malware", "scan.done", "scan.failed"];

fn sets() -> Vec<EventSet> {
    vec![
        EventSet::new("alerts", ["alert.login", "alert.malware"]),
        EventSet::new("scans", ["scan.done", "scan.failed"]),
        EventSet::new("failures", ["scan.failed", "alert.malware"]),
        EventSet::new("logins", ["alert.login"]),
    ]
}

/// Which endpoints select an event, for one state of the registry.
#[derive(Clone, Default)]
struct Model {
    /// Endpoint → (tenant, types it selects).
    endpoints: HashMap<String, (String, BTreeSet<&'static str>)>,
}

impl Model {
    fn types_of(sets_used: &[&str]) -> BTreeSet<&'static str> {
        let all = sets();
        TYPES
            .iter()
            .copied()
            .filter(|t| {
                all.iter()
                    .filter(|s| sets_used.contains(&s.name.as_str()))
                    .any(|s| s.types.iter().any(|x| x == t))
            })
            .collect()
    }

    fn selected(&self, tenant: &str, kind: &str) -> BTreeSet<String> {
        self.endpoints
            .iter()
            .filter(|(_, (t, types))| t == tenant && types.contains(kind))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The models after each change (index = changes done). The changer pushes a change's model
/// *before* applying it, so the routes a send uses are those of a model in
/// `[done before the send - 1, done after it]`.
#[derive(Default)]
struct History {
    versions: Mutex<Vec<Arc<Model>>>,
    done: AtomicUsize,
}

impl History {
    fn push(&self, model: Model) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v.push(Arc::new(model));
        self.done.store(v.len() - 1, Ordering::SeqCst);
    }

    fn between(&self, from: usize, to: usize) -> Vec<Arc<Model>> {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v[from..=to.min(v.len() - 1)].to_vec()
    }
}

const SET_CHOICES: [&[&str]; 5] = [
    &["alerts"],
    &["scans"],
    &["failures"],
    &["logins", "scans"],
    &["alerts", "scans"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_while_events_flow() -> Result<(), BoxError> {
    let receivers = [
        Server::start(|_, _| Reply::ok()).await?,
        Server::start(|_, _| Reply::ok()).await?,
        Server::start(|_, _| Reply::ok()).await?,
        Server::start(|_, _| Reply::ok()).await?,
    ];
    let url =
        |name: &str, n: usize, rev: usize| receivers[n % 4].url(&format!("/ep/{name}/r{rev}"));
    let dead = Arc::new(AtomicUsize::new(0));
    let d = dead.clone();
    let mut b = builder()?.dead_letter(move |l| {
        d.fetch_add(l.events.len(), Ordering::SeqCst);
    });
    for s in sets() {
        b = b.event_set(s);
    }
    // 200 endpoints of 20 tenants.
    let mut model = Model::default();
    let mut specs: HashMap<String, EndpointSpec> = HashMap::new();
    let mut next = 0usize;
    for i in 0..200 {
        let name = format!("e{i}");
        let tenant = format!("t{}", i % 20);
        let used = SET_CHOICES[i % SET_CHOICES.len()];
        let s = spec(&name, url(&name, i, 0), &tenant, used, 1);
        b = b.endpoint(s.to_config()?);
        model
            .endpoints
            .insert(name.clone(), (tenant, Model::types_of(used)));
        specs.insert(name, s);
        next += 1;
    }
    let sender = b.build()?;
    let history = Arc::new(History::default());
    history.push(model.clone());

    // The producer: full speed until the changes are done, recording the change count before
    // and after each send.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (sender, history, stop) = (sender.clone(), history.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let tenant = format!("t{}", i % 20);
                let kind = TYPES[(i / 20) % TYPES.len()];
                let id = format!("ev{i}");
                let before = history.done.load(Ordering::SeqCst).saturating_sub(1);
                let receipt = sender
                    .send(event(&id, &tenant, kind).map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| e.to_string())?;
                let after = history.done.load(Ordering::SeqCst);
                sent.push((id, tenant, kind, before, after, receipt));
                i += 1;
                if i.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, String>(sent)
        })
    };

    // The changer: 1,000 changes.
    let mut removed_reports = Vec::new();
    let mut paused: Vec<String> = Vec::new();
    let mut rev = 0usize;
    for change in 0..1000usize {
        let names: Vec<String> = {
            let mut n: Vec<String> = model.endpoints.keys().cloned().collect();
            n.sort();
            n
        };
        let pick = names[(change * 7919) % names.len()].clone();
        match change % 6 {
            0 => {
                let policy = [
                    RemovePolicy::Deliver,
                    RemovePolicy::DeadLetter,
                    RemovePolicy::Drop,
                ][(change / 6) % 3];
                model.endpoints.remove(&pick);
                paused.retain(|p| p != &pick);
                specs.remove(&pick);
                history.push(model.clone());
                removed_reports.push(sender.remove_endpoint(&pick, policy, "changer").await?);
            }
            1 => {
                let name = format!("e{next}");
                let tenant = format!("t{}", next % 20);
                let used = SET_CHOICES[next % SET_CHOICES.len()];
                let s = spec(&name, url(&name, next, 0), &tenant, used, 1);
                next += 1;
                model
                    .endpoints
                    .insert(name.clone(), (tenant, Model::types_of(used)));
                history.push(model.clone());
                sender.add_endpoint(s.to_config()?, "changer")?;
                specs.insert(name, s);
            }
            2 => {
                // A new subscription and a new URL.
                rev += 1;
                let mut s = specs[&pick].clone();
                let used = SET_CHOICES[(change / 6 + rev) % SET_CHOICES.len()];
                s.event_sets = used.iter().map(|x| (*x).to_owned()).collect();
                s.url = url(&pick, change, rev);
                let tenant = s.tenant.clone().unwrap_or_default();
                model
                    .endpoints
                    .insert(pick.clone(), (tenant, Model::types_of(used)));
                history.push(model.clone());
                sender.update_endpoint(s.to_config()?, "changer")?;
                specs.insert(pick, s);
            }
            3 => {
                // Rotation: a new key first, the old one until it expires.
                let mut s = specs[&pick].clone();
                let expires = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 60;
                s.auth = AuthSpec::Signature {
                    scheme: "standard-webhooks".into(),
                    keys: vec![
                        KeySpec::new(whsec((change % 200) as u8 + 2)),
                        KeySpec::until(whsec(1), expires),
                    ],
                };
                history.push(model.clone());
                sender.update_endpoint(s.to_config()?, "changer")?;
                specs.insert(pick, s);
            }
            4 => {
                history.push(model.clone());
                sender.pause(&pick, "changer")?;
                if !paused.contains(&pick) {
                    paused.push(pick);
                }
            }
            _ => {
                history.push(model.clone());
                if let Some(p) = paused.pop() {
                    sender.resume(&p, "changer")?;
                }
            }
        }
        if change.is_multiple_of(50) {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sent = producer.await?.map_err(|e| -> BoxError { e.into() })?;
    let events_sent = sent.len();
    for p in &paused {
        sender.resume(p, "changer")?;
    }
    assert!(
        sent.len() > 1000,
        "the producer sent only {} events",
        sent.len()
    );

    // Every receipt resolves; each lists exactly the endpoints some registry state during its
    // send selected.
    let mut delivered_pairs: HashSet<(String, String)> = HashSet::new();
    let (mut removed_failed, mut delivered) = (0usize, 0usize);
    for (id, tenant, kind, before, after, receipt) in sent {
        let report = tokio::time::timeout(Duration::from_secs(30), receipt).await?;
        let listed: BTreeSet<String> = report
            .outcomes()
            .iter()
            .map(|o| o.endpoint.to_string())
            .collect();
        let candidates = history.between(before, after);
        assert!(
            candidates
                .iter()
                .any(|m| m.selected(&tenant, kind) == listed),
            "{id} ({tenant}, {kind}) went to {listed:?}, which no registry state between changes {before} and {after} selects"
        );
        for o in report.outcomes() {
            match &o.outcome {
                Outcome::Delivered { .. } => {
                    delivered += 1;
                    assert!(delivered_pairs.insert((o.endpoint.to_string(), id.clone())));
                }
                Outcome::Failed {
                    reason: FailureReason::EndpointRemoved,
                } => removed_failed += 1,
                other => panic!("{id} at {}: {other:?}", o.endpoint),
            }
        }
    }
    assert!(sender.shutdown(Duration::from_secs(10)).await.is_clean());

    // The receivers got exactly the delivered pairs, each once.
    let mut received: HashMap<(String, String), usize> = HashMap::new();
    for r in &receivers {
        for seen in r.seen() {
            let ep = endpoint_of(&seen.path);
            for id in seen.event_ids() {
                *received.entry((ep.clone(), id)).or_default() += 1;
            }
        }
    }
    assert!(received.values().all(|&n| n == 1), "an event arrived twice");
    let received: HashSet<(String, String)> = received.into_keys().collect();
    assert_eq!(received, delivered_pairs, "received and delivered differ");
    assert_eq!(received.len(), delivered);

    // The removals' counts add up with the receipts and the dead-letter hook.
    let dead_lettered: u64 = removed_reports.iter().map(|r| r.dead_lettered).sum();
    let dropped: u64 = removed_reports.iter().map(|r| r.dropped).sum();
    assert_eq!(dead.load(Ordering::SeqCst) as u64, dead_lettered);
    // A send that routed an event just before a removal may offer it just after: refused
    // (counted in the report while the removal settles, and by the queue after).
    let refused: u64 = removed_reports.iter().map(|r| r.refused).sum();
    assert!(dead_lettered + dropped + refused <= removed_failed as u64);
    assert_eq!(removed_reports.len(), 167);
    eprintln!(
        "{events_sent} events sent, {delivered} deliveries, {removed_failed} settled by removals, {} changes",
        history.versions.lock().map_or(0, |v| v.len()) - 1
    );
    Ok(())
}

/// A receiver verifying Standard Webhooks signatures with the keys it is given (live keys
/// only), answering 401 to anything else.
async fn verifying_receiver(
    keys: Arc<Mutex<Vec<String>>>,
    signatures: Arc<Mutex<Vec<usize>>>,
) -> Result<Server, BoxError> {
    Server::start(move |_, seen| {
        let keys = keys.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut ring = KeyRing::new();
        for k in &keys {
            if let Ok(secret) = Secret::from_whsec(k) {
                ring = ring.with_key(secret);
            }
        }
        let n = seen
            .header("webhook-signature")
            .map_or(0, |v| v.split(' ').count());
        signatures.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        let ok = Verifier::new(Scheme::standard_webhooks(), &ring)
            .map(|v| {
                v.verify(&seen.headers, &seen.body, SystemTime::now())
                    .is_ok()
            })
            .unwrap_or(false);
        if ok { Reply::ok() } else { Reply::status(401) }
    })
    .await
}

#[tokio::test]
async fn rotation_mid_stream_signs_with_both_keys_until_the_old_one_expires() -> Result<(), BoxError>
{
    let (old, new) = (whsec(7), whsec(8));
    let keys = Arc::new(Mutex::new(vec![old.clone()]));
    let signatures = Arc::new(Mutex::new(Vec::new()));
    let receiver = verifying_receiver(keys.clone(), signatures.clone()).await?;
    let mut s = spec("siem", receiver.url("/in"), "acme", &[], 7);
    s.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![KeySpec::new(old.clone())],
    };
    let sender = builder()?.endpoint(s.to_config()?).build()?;
    let send = |i: usize| event(&format!("r{i}"), "acme", "alert.login");
    for i in 0..5 {
        assert!(sender.send(send(i)?).await?.await.is_delivered());
    }

    // Rotate: the new key, and the old one for four more seconds (whole seconds: `expires_at`
    // is in unix seconds).
    let expires = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 4;
    s.auth = AuthSpec::Signature {
        scheme: "standard-webhooks".into(),
        keys: vec![
            KeySpec::new(new.clone()),
            KeySpec::until(old.clone(), expires),
        ],
    };
    let mut audit = sender.audit();
    sender.update_endpoint(s.to_config()?, "ops")?;
    // Receivers on the old key only, and receivers already on the new key only, both accept.
    for i in 5..10 {
        assert!(sender.send(send(i)?).await?.await.is_delivered());
    }
    *keys.lock().unwrap_or_else(|e| e.into_inner()) = vec![new.clone()];
    for i in 10..15 {
        assert!(sender.send(send(i)?).await?.await.is_delivered());
    }
    // After the expiry only the new key signs: a receiver still on the old key refuses.
    let wait = UNIX_EPOCH + Duration::from_secs(expires + 1);
    if let Ok(left) = wait.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    for i in 15..20 {
        assert!(sender.send(send(i)?).await?.await.is_delivered());
    }
    *keys.lock().unwrap_or_else(|e| e.into_inner()) = vec![old.clone()];
    let refused = sender.send(send(20)?).await?;
    drop(refused); // 401 is retried; the point is the answer, checked below.
    eventually("the old-key receiver to refuse", || {
        receiver.seen().iter().any(|s| s.event_ids() == ["r20"])
    })
    .await?;
    let counts = signatures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        counts[..5].iter().all(|&n| n == 1),
        "one key before: {counts:?}"
    );
    assert!(
        counts[5..15].iter().all(|&n| n == 2),
        "two during the overlap: {counts:?}"
    );
    assert!(
        counts[15..].iter().all(|&n| n == 1),
        "one after expiry: {counts:?}"
    );

    // The audit entry shows the rotation without either secret.
    let entry = audit.recv().await.ok_or("audit entry")?;
    assert_eq!(entry.action, AuditAction::Updated);
    assert!(entry.changes.iter().any(|c| c.field.starts_with("auth")));
    let text = serde_json::to_string(&entry)?;
    for secret in [&old, &new] {
        assert!(!text.contains(secret.trim_start_matches("whsec_")));
    }
    let _ = sender.shutdown(ms(100)).await;
    Ok(())
}

#[tokio::test]
async fn an_untested_endpoint_receives_nothing_until_its_test_passes() -> Result<(), BoxError> {
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let receiver = Server::start(move |_, _| {
        if h.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(500)
        }
    })
    .await?;
    let mut s = spec("new-siem", receiver.url("/in"), "acme", &[], 1);
    s.require_test = true;
    let sender = builder()?.build()?;
    let mut audit = sender.audit();
    sender.add_endpoint(s.to_config()?, "alice")?;
    assert_eq!(
        sender.status("new-siem").map(|s| s.state),
        Some(EndpointState::Untested)
    );
    // Not routed: the event's report does not list it, and nothing is sent.
    let report = sender.send(event("u1", "acme", "x")?).await?.await;
    assert!(report.outcomes().is_empty());
    // A failing test keeps it untested.
    let test = sender.test_integration("new-siem").await?;
    assert_eq!(test.status.as_u16(), 500);
    assert_eq!(
        sender.status("new-siem").map(|s| s.state),
        Some(EndpointState::Untested)
    );
    assert!(
        sender
            .send(event("u2", "acme", "x")?)
            .await?
            .await
            .outcomes()
            .is_empty()
    );
    // A passing test enables it.
    healthy.store(true, Ordering::SeqCst);
    assert!(sender.test_integration("new-siem").await?.is_success());
    assert_eq!(
        sender.status("new-siem").map(|s| s.state),
        Some(EndpointState::Connected)
    );
    assert!(
        sender
            .send(event("u3", "acme", "x")?)
            .await?
            .await
            .is_delivered()
    );
    let ids: Vec<String> = receiver
        .seen()
        .iter()
        .flat_map(|s| s.event_ids())
        .filter(|id| id.starts_with('u'))
        .collect();
    assert_eq!(ids, ["u3"], "only the event after the passing test");

    // Explicit enable is the other way in.
    let mut other = spec("other", receiver.url("/other"), "acme", &[], 1);
    other.require_test = true;
    sender.add_endpoint(other.to_config()?, "alice")?;
    sender.enable_by("other", "bob")?;
    assert_eq!(
        sender.status("other").map(|s| s.state),
        Some(EndpointState::Connected)
    );
    let actions: Vec<(AuditAction, String)> = std::iter::from_fn(|| audit.try_recv())
        .map(|e| (e.action, e.actor.to_string()))
        .collect();
    assert_eq!(
        actions,
        [
            (AuditAction::Added, "alice".into()),
            (
                AuditAction::Tested {
                    status: 500,
                    passed: false
                },
                "test_integration".into()
            ),
            (
                AuditAction::Tested {
                    status: 200,
                    passed: true
                },
                "test_integration".into()
            ),
            (AuditAction::Added, "alice".into()),
            (AuditAction::Enabled, "bob".into()),
        ]
    );
    let _ = sender.shutdown(ms(500)).await;
    Ok(())
}

/// A sender with one endpoint whose receiver answers 503 until `fixed`.
async fn stuck(
    fixed: &Arc<AtomicBool>,
) -> Result<(Server, Sender, Arc<Mutex<Vec<String>>>), BoxError> {
    let f = fixed.clone();
    let receiver = Server::start(move |_, _| {
        if f.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await?;
    let dead = Arc::new(Mutex::new(Vec::new()));
    let d = dead.clone();
    let cfg = webhook_sender::EndpointConfig::builder(
        "stuck",
        webhook_core::Endpoint::builder(receiver.url("/in")).build()?,
    )
    .retry(
        RetryPolicy::builder()
            .exponential(ms(20), 2.0, ms(50), false)
            .max_attempts(1000)
            .build()?,
    )
    .health(HealthConfig::default())
    .build()?;
    let sender = builder()?
        .dead_letter(move |l| {
            d.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(l.events.iter().map(|e| e.id().to_owned()));
        })
        .endpoint(cfg)
        .build()?;
    Ok((receiver, sender, dead))
}

#[tokio::test]
async fn removal_settles_what_the_endpoint_held_by_its_policy() -> Result<(), BoxError> {
    for policy in [
        RemovePolicy::DeadLetter,
        RemovePolicy::Drop,
        RemovePolicy::Deliver,
    ] {
        let fixed = Arc::new(AtomicBool::new(false));
        let (receiver, sender, dead) = stuck(&fixed).await?;
        let mut receipts = Vec::new();
        for i in 0..20 {
            receipts.push(sender.send(event(&format!("h{i}"), "t", "x")?).await?);
        }
        eventually("retries to start", || receiver.requests() >= 2).await?;
        if policy == RemovePolicy::Deliver {
            fixed.store(true, Ordering::SeqCst);
        }
        let report = sender.remove_endpoint("stuck", policy, "ops").await?;
        let mut outcomes = Vec::new();
        for r in receipts {
            outcomes.push(r.await.outcome("stuck").cloned().ok_or("listed")?);
        }
        let removed = Outcome::Failed {
            reason: FailureReason::EndpointRemoved,
        };
        match policy {
            RemovePolicy::DeadLetter => {
                assert!(outcomes.iter().all(|o| *o == removed));
                assert_eq!((report.dead_lettered, report.dropped), (20, 0));
                assert_eq!(dead.lock().unwrap_or_else(|e| e.into_inner()).len(), 20);
            }
            RemovePolicy::Drop => {
                assert!(outcomes.iter().all(|o| *o == removed));
                assert_eq!((report.dead_lettered, report.dropped), (0, 20));
                assert!(dead.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
            }
            _ => {
                assert!(outcomes.iter().all(Outcome::is_delivered));
                assert_eq!(report.delivered, 20);
            }
        }
        // Gone: unknown to every call, and new events are not routed to it.
        assert!(sender.status("stuck").is_none());
        assert!(matches!(
            sender.pause("stuck", "ops"),
            Err(RegistryError::Unknown(_))
        ));
        assert!(
            sender
                .send(event("after", "t", "x")?)
                .await?
                .await
                .outcomes()
                .is_empty()
        );
        assert!(sender.shutdown(ms(500)).await.is_clean());
    }
    Ok(())
}

#[tokio::test]
async fn pause_holds_events_resume_delivers_them_and_idle_drivers_park() -> Result<(), BoxError> {
    let receiver = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?
        .endpoint(spec("a", receiver.url("/a"), "t", &[], 1).to_config()?)
        .build()?;
    // Nothing sent yet: no driver task at all.
    assert_eq!(sender.running_drivers(), 0);
    assert!(
        sender
            .send(event("p0", "t", "x")?)
            .await?
            .await
            .is_delivered()
    );
    eventually("the idle driver to park", || sender.running_drivers() == 0).await?;

    sender.pause("a", "ops")?;
    assert_eq!(
        sender.status("a").map(|s| s.state),
        Some(EndpointState::Paused)
    );
    let receipts = [
        sender.send(event("p1", "t", "x")?).await?,
        sender.send(event("p2", "t", "x")?).await?,
    ];
    tokio::time::sleep(ms(200)).await;
    assert_eq!(receiver.requests(), 1, "nothing is sent while paused");
    assert!(receipts.iter().all(|r| r.try_report().is_none()));
    sender.resume("a", "ops")?;
    for r in receipts {
        assert!(r.await.is_delivered());
    }
    let status = sender.status("a").ok_or("status")?;
    assert_eq!(status.state, EndpointState::Connected);
    assert!(status.last_success.is_some());
    assert_eq!(status.counters.delivered, 3);
    eventually("the driver to park again", || sender.running_drivers() == 0).await?;
    assert!(sender.shutdown(ms(500)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn an_update_applies_to_events_sent_after_it() -> Result<(), BoxError> {
    let receiver = Server::start(|_, _| Reply::ok()).await?;
    let mut s = spec("a", receiver.url("/v1"), "t", &["alerts"], 1);
    let mut b = builder()?;
    for set in sets() {
        b = b.event_set(set);
    }
    let sender = b.endpoint(s.to_config()?).build()?;
    assert!(
        sender
            .send(event("before", "t", "alert.login")?)
            .await?
            .await
            .is_delivered()
    );
    s.url = receiver.url("/v2");
    s.event_sets = vec!["scans".into()];
    sender.update_endpoint(s.to_config()?, "ops")?;
    assert_eq!(sender.status("a").map(|s| s.revision), Some(1));
    // The new subscription routes, and the new URL receives.
    let alert = sender
        .send(event("alert", "t", "alert.login")?)
        .await?
        .await;
    assert!(alert.outcomes().is_empty());
    assert!(
        sender
            .send(event("after", "t", "scan.done")?)
            .await?
            .await
            .is_delivered()
    );
    let paths: Vec<(String, Vec<String>)> = receiver
        .seen()
        .iter()
        .map(|s| (s.path.clone(), s.event_ids()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/v1".to_owned(), vec!["before".to_owned()]),
            ("/v2".to_owned(), vec!["after".to_owned()])
        ]
    );
    // An event set changed at runtime re-routes its subscribers.
    sender.upsert_event_set(EventSet::new("scans", ["scan.*", "alert.login"]), "ops")?;
    assert!(
        sender
            .send(event("again", "t", "alert.login")?)
            .await?
            .await
            .is_delivered()
    );
    assert!(matches!(
        sender.remove_event_set("scans", "ops"),
        Err(RegistryError::EventSetInUse { .. })
    ));
    // Refusals are typed and change nothing.
    assert!(matches!(
        sender.add_endpoint(
            spec("a", receiver.url("/x"), "t", &[], 1).to_config()?,
            "ops"
        ),
        Err(RegistryError::Duplicate(_))
    ));
    assert!(matches!(
        sender.add_endpoint(
            spec("b", receiver.url("/x"), "t", &["nope"], 1).to_config()?,
            "ops"
        ),
        Err(RegistryError::Subscription(_))
    ));
    assert!(matches!(
        sender.update_endpoint(
            spec("zz", receiver.url("/x"), "t", &[], 1).to_config()?,
            "ops"
        ),
        Err(RegistryError::Unknown(_))
    ));
    assert_eq!(sender.endpoints().len(), 1);
    assert!(sender.shutdown(ms(500)).await.is_clean());
    Ok(())
}

#[tokio::test]
async fn the_audit_trail_lists_every_change_with_secrets_redacted() -> Result<(), BoxError> {
    let receiver = Server::start(|_, _| Reply::ok()).await?;
    let sender = builder()?.build()?;
    let mut audit = sender.audit();
    let mut s = spec("siem", receiver.url("/in"), "acme", &[], 3);
    s.headers = vec![webhook_sender::registry::HeaderSpec::new(
        "x-api-token",
        "tok-SECRET-123",
    )];
    sender.upsert_event_set(EventSet::new("alerts", ["alert.*"]), "alice")?;
    sender.add_endpoint(s.to_config()?, "alice")?;
    s.event_sets = vec!["alerts".into()];
    s.auth = AuthSpec::Basic {
        username: "u".into(),
        password: "pw-SECRET-456".into(),
    };
    sender.update_endpoint(s.to_config()?, "bob")?;
    sender.pause("siem", "carol")?;
    sender.resume("siem", "carol")?;
    sender
        .remove_endpoint("siem", RemovePolicy::Drop, "dave")
        .await?;
    sender.remove_event_set("alerts", "dave")?;
    let entries: Vec<_> = std::iter::from_fn(|| audit.try_recv()).collect();
    let summary: Vec<(u64, &str, AuditTarget, AuditAction)> = entries
        .iter()
        .map(|e| (e.seq, &*e.actor, e.target.clone(), e.action.clone()))
        .collect();
    let ep = || AuditTarget::Endpoint("siem".into());
    let set = || AuditTarget::EventSet("alerts".into());
    assert_eq!(
        summary,
        [
            (1, "alice", set(), AuditAction::Added),
            (2, "alice", ep(), AuditAction::Added),
            (3, "bob", ep(), AuditAction::Updated),
            (4, "carol", ep(), AuditAction::Paused),
            (5, "carol", ep(), AuditAction::Resumed),
            (6, "dave", ep(), AuditAction::Removed { policy: "drop" }),
            (7, "dave", set(), AuditAction::Removed { policy: "unused" }),
        ]
    );
    let update = &entries[2];
    let fields: Vec<&str> = update.changes.iter().map(|c| c.field.as_str()).collect();
    assert!(fields.contains(&"event_sets"), "{fields:?}");
    assert!(fields.iter().any(|f| f.starts_with("auth")), "{fields:?}");
    let text = serde_json::to_string(&entries)?;
    for secret in [
        "tok-SECRET-123",
        "pw-SECRET-456",
        whsec(3).trim_start_matches("whsec_"),
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the audit trail"
        );
    }
    assert!(text.contains("<redacted:sha256:"));
    Ok(())
}

#[tokio::test]
async fn a_snapshot_round_trips_through_json_and_yaml() -> Result<(), BoxError> {
    let receiver = Server::start(|_, _| Reply::ok()).await?;
    let mut snapshot = RegistrySnapshot {
        version: webhook_sender::registry::FORMAT_VERSION,
        event_sets: sets(),
        endpoints: vec![
            spec("a", receiver.url("/a"), "acme", &["alerts"], 1),
            spec("b", receiver.url("/b"), "globex", &["scans", "logins"], 2),
        ],
    };
    snapshot.endpoints[1].labels = vec!["prod".into()];
    let sender = snapshot.clone().apply(builder()?)?.build()?;
    // The running registry changes, and the snapshot follows.
    sender.pause("a", "ops")?;
    let mut c = spec("c", receiver.url("/c"), "acme", &[], 3);
    c.require_test = true;
    sender.add_endpoint(c.to_config()?, "ops")?;
    let taken = sender.snapshot();
    assert_eq!(taken.endpoints.len(), 3);
    assert!(taken.endpoints[0].paused);
    assert!(taken.endpoints[2].require_test);
    assert_eq!(
        RegistrySnapshot::from_json_str(&taken.to_json_string()?)?,
        taken
    );
    assert_eq!(
        RegistrySnapshot::from_yaml_str(&taken.to_yaml_string()?)?,
        taken
    );
    // Loaded into a new sender, it is the same registry.
    let again = RegistrySnapshot::from_json_str(&taken.to_json_string()?)?
        .apply(builder()?)?
        .build()?;
    assert_eq!(again.snapshot(), taken);
    assert_eq!(
        again.status("a").map(|s| s.state),
        Some(EndpointState::Paused)
    );
    assert_eq!(
        again.status("c").map(|s| s.state),
        Some(EndpointState::Untested)
    );
    let report = again
        .send(event("s1", "globex", "scan.done")?.clone())
        .await?;
    drop(report);
    let _ = sender.shutdown(ms(200)).await;
    let _ = again.shutdown(ms(200)).await;
    Ok(())
}

#[tokio::test]
async fn tenants_and_labels_select_endpoints() -> Result<(), BoxError> {
    let receiver = Server::start(|_, _| Reply::ok()).await?;
    let mut prod = spec("prod", receiver.url("/prod"), "acme", &[], 1);
    prod.labels = vec!["prod".into()];
    let sender = builder()?
        .endpoint(spec("acme", receiver.url("/acme"), "acme", &[], 1).to_config()?)
        .endpoint(prod.to_config()?)
        .endpoint(
            webhook_sender::EndpointConfig::builder(
                "archive",
                webhook_core::Endpoint::builder(receiver.url("/archive")).build()?,
            )
            .subscription(Subscription::all_tenants())
            .build()?,
        )
        .build()?;
    let names = |r: &webhook_sender::DeliveryReport| -> Vec<String> {
        r.outcomes()
            .iter()
            .map(|o| o.endpoint.to_string())
            .collect()
    };
    let r = sender.send(event("1", "acme", "x")?).await?.await;
    assert_eq!(names(&r), ["acme", "archive"]);
    let labelled = Event::builder("2", "x")
        .tenant("acme")
        .label("prod")
        .json_bytes(&br#"{"id":"2"}"#[..])?;
    let r = sender.send(labelled).await?.await;
    assert_eq!(names(&r), ["acme", "prod", "archive"]);
    let r = sender.send(event("3", "globex", "x")?).await?.await;
    assert_eq!(names(&r), ["archive"]);
    let untenanted = Event::builder("4", "x").json_bytes(&br#"{"id":"4"}"#[..])?;
    let r = sender.send(untenanted).await?.await;
    assert_eq!(names(&r), ["archive"]);
    assert!(sender.shutdown(ms(500)).await.is_clean());
    Ok(())
}
