//! The endpoint registry shared through Redis, against a real `redis-server` on 127.0.0.1
//! (see `support`): two queue + sender pairs in one test stand for two processes. A change on
//! one reaches the other within a second (measured); concurrent changes of different
//! endpoints both survive; a removed endpoint's group is destroyed and not created again; bad
//! input gives typed errors.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Recorder, queue_name, redis};
use webhook_core::{Event, EventSet};
use webhook_redis::{RedisQueue, RedisQueueConfig, RegistrySyncError, SharedRegistry};
use webhook_sender::outbox::{Outbox, OutboxStore};
use webhook_sender::ssrf::SsrfPolicy;
use webhook_sender::transport::TransportBuilder;
use webhook_sender::{AuditTarget, EndpointSpec, EndpointState, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A process: a queue sharing its registry, a sender over it, seeded from Redis and watching.
struct Process {
    queue: RedisQueue,
    sender: Sender,
    watch: webhook_redis::RegistryWatch,
}

impl Process {
    async fn start(url: &str, q: &str) -> Result<Self, BoxError> {
        let cfg = RedisQueueConfig::new(url, q)
            .partitions(2)
            .shared_registry(true);
        let queue = RedisQueue::connect(cfg).await?;
        let seed = queue.load_registry()?.unwrap_or_default();
        let builder = Sender::builder()
            .transport_builder(
                TransportBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .ssrf(SsrfPolicy::default().allow("127.0.0.0/8".parse()?)),
            )
            .outbox_open(Outbox::from_store(Arc::new(queue.clone())));
        let sender = seed.apply(builder)?.build()?;
        let watch = SharedRegistry::new(&queue).watch(&sender)?;
        tokio::time::timeout(Duration::from_secs(5), watch.synced()).await?;
        Ok(Self {
            queue,
            sender,
            watch,
        })
    }

    async fn stop(self) {
        self.sender.shutdown(Duration::from_secs(5)).await;
        self.queue.close().await;
        drop(self.watch);
    }
}

/// Polls `f` every 2 ms until it holds; the time it took (panics after `limit`).
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn spec(name: &str, url: &str) -> EndpointSpec {
    EndpointSpec::new(name, url)
}

fn event(n: u64) -> Event {
    Event::builder(format!("evt_{n}"), "policy")
        .json_bytes(format!(r#"{{"n":{n}}}"#))
        .unwrap()
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_process_reaches_the_other_within_a_second() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-prop");
    let a = Process::start(&url, &q).await?;
    let b = Process::start(&url, &q).await?;
    let mut audit_b = b.sender.audit();
    let second = Duration::from_secs(1);
    let mut times = Vec::new();

    // Added on A.
    a.sender
        .add_endpoint(spec("siem", "http://127.0.0.1:9/in").to_config()?, "alice")?;
    let t = until("add reaches B", second, || {
        b.sender.status("siem").is_some()
    })
    .await;
    times.push(("add", t));

    // Paused on A.
    a.sender.pause("siem", "alice")?;
    let t = until("pause reaches B", second, || {
        b.sender.status("siem").map(|s| s.state) == Some(EndpointState::Paused)
    })
    .await;
    times.push(("pause", t));

    // Resumed on B (the other way).
    b.sender.resume("siem", "bob")?;
    let t = until("resume reaches A", second, || {
        a.sender
            .status("siem")
            .map(|s| s.state)
            .is_some_and(|s| s != EndpointState::Paused)
    })
    .await;
    times.push(("resume", t));

    // Updated on A: a new URL.
    let mut moved = spec("siem", "http://127.0.0.1:10/in");
    moved.labels = vec!["team-a".into()];
    a.sender.update_endpoint(moved.to_config()?, "alice")?;
    let t = until("update reaches B", second, || {
        b.sender
            .endpoint_config("siem")
            .is_some_and(|c| c.spec().is_some_and(|s| s.url.ends_with(":10/in")))
    })
    .await;
    times.push(("update", t));

    // An event set upserted on B.
    b.sender
        .upsert_event_set(EventSet::new("policies", ["policy.*"]), "bob")?;
    let t = until("event set reaches A", second, || {
        a.sender.event_sets().iter().any(|s| s.name == "policies")
    })
    .await;
    times.push(("event set", t));

    // Removed on A.
    a.sender
        .remove_endpoint("siem", webhook_sender::RemovePolicy::Drop, "alice")
        .await?;
    let t = until("removal reaches B", second, || {
        b.sender.status("siem").is_none()
    })
    .await;
    times.push(("remove", t));

    eprintln!("propagation: {times:?}");

    // B's audit trail names the watcher as the actor of what it applied.
    let mut actors = Vec::new();
    while let Some(e) = audit_b.try_recv() {
        if matches!(e.target, AuditTarget::Endpoint(_)) {
            actors.push((e.actor.to_string(), format!("{:?}", e.action)));
        }
    }
    let me = format!("redis:{}", b.queue.consumer());
    assert!(
        actors.iter().any(|(a, act)| *a == me && act == "Added"),
        "{actors:?}"
    );
    assert!(actors.iter().any(|(a, act)| *a == me && act == "Paused"));
    assert!(
        actors
            .iter()
            .any(|(a, act)| *a == "bob" && act == "Resumed")
    );

    // No echo: once settled, nothing is written any more.
    let reg = SharedRegistry::new(&a.queue);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let v1 = reg.version().await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        reg.version().await?,
        v1,
        "no change is echoed back and forth"
    );
    // Six changes plus the event set, each written once (not once per process).
    assert!(v1 <= 8, "version {v1}: changes were written more than once");

    a.stop().await;
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unannounced_change_arrives_by_the_version_poll_within_a_second() -> Result<(), BoxError>
{
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-poll");
    let b = Process::start(&url, &q).await?;
    let mut times = Vec::new();
    for i in 0..4 {
        // Written and counted but not announced (as by a writer that died before its
        // PUBLISH, or while the watcher's pub/sub connection was down): only the poll sees it.
        let name = format!("e{i}");
        let json = serde_json::to_string(&spec(&name, "http://127.0.0.1:9/in"))?;
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(format!("whk:{{{q}}}:reg:endpoints"))
            .arg(&name)
            .arg(json)
            .ignore()
            .cmd("INCR")
            .arg(format!("whk:{{{q}}}:reg:version"))
            .ignore()
            .query::<()>(&mut raw(&url))?;
        let t = until(
            "the change reaches B by polling",
            Duration::from_secs(1),
            || b.sender.status(&name).is_some(),
        )
        .await;
        times.push(t);
        tokio::time::sleep(Duration::from_millis(137)).await;
    }
    eprintln!("propagation by the poll alone: {times:?}");
    // A watcher whose pub/sub connection is killed subscribes again and is woken again.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut raw(&url))?;
    assert!(killed >= 1, "the watcher subscribes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reg = SharedRegistry::new(&b.queue);
    reg.add_endpoint(spec("after", "http://127.0.0.1:9/in"))
        .await?;
    let t = until(
        "announced change after the resubscription",
        Duration::from_secs(1),
        || b.sender.status("after").is_some(),
    )
    .await;
    eprintln!("after the resubscription: {t:?}");
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_to_different_endpoints_both_survive() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-conc");
    let a = Process::start(&url, &q).await?;
    let b = Process::start(&url, &q).await?;
    let (sa, sb) = (a.sender.clone(), b.sender.clone());
    let ta = tokio::task::spawn_blocking(move || {
        for i in 0..20 {
            sa.add_endpoint(
                spec(&format!("a{i}"), "http://127.0.0.1:9/a")
                    .to_config()
                    .unwrap(),
                "alice",
            )
            .unwrap();
        }
    });
    let tb = tokio::task::spawn_blocking(move || {
        for i in 0..20 {
            sb.add_endpoint(
                spec(&format!("b{i}"), "http://127.0.0.1:9/b")
                    .to_config()
                    .unwrap(),
                "bob",
            )
            .unwrap();
        }
    });
    ta.await?;
    tb.await?;
    let limit = Duration::from_secs(2);
    until("A has all 40", limit, || a.sender.statuses().len() == 40).await;
    until("B has all 40", limit, || b.sender.statuses().len() == 40).await;
    let n: u64 = redis::cmd("HLEN")
        .arg(format!("whk:{{{q}}}:reg:endpoints"))
        .query(&mut raw(&url))?;
    assert_eq!(n, 40);

    // The same endpoint changed on both at once: both converge on one of the two (the last
    // writer's).
    let (sa, sb) = (a.sender.clone(), b.sender.clone());
    let mut x = spec("a0", "http://127.0.0.1:11/x");
    x.labels = vec!["from-a".into()];
    let mut y = spec("a0", "http://127.0.0.1:12/y");
    y.labels = vec!["from-b".into()];
    let (cx, cy) = (x.to_config()?, y.to_config()?);
    let ja = tokio::task::spawn_blocking(move || sa.update_endpoint(cx, "alice"));
    let jb = tokio::task::spawn_blocking(move || sb.update_endpoint(cy, "bob"));
    ja.await??;
    jb.await??;
    let url_of = |s: &Sender| {
        s.endpoint_config("a0")
            .and_then(|c| c.spec().map(|s| s.url.clone()))
    };
    until("both agree on a0", limit, || {
        url_of(&a.sender) == url_of(&b.sender)
            && SharedRegistryUrl::get(&url, &q, "a0") == url_of(&a.sender)
    })
    .await;

    // A third process seeded from Redis starts with all of them.
    let c = Process::start(&url, &q).await?;
    assert_eq!(c.sender.statuses().len(), 40);
    a.stop().await;
    b.stop().await;
    c.stop().await;
    Ok(())
}

/// Reads an endpoint's URL straight from the hash.
struct SharedRegistryUrl;

impl SharedRegistryUrl {
    fn get(url: &str, q: &str, name: &str) -> Option<String> {
        let json: Option<String> = redis::cmd("HGET")
            .arg(format!("whk:{{{q}}}:reg:endpoints"))
            .arg(name)
            .query(&mut raw(url))
            .ok()?;
        serde_json::from_str::<EndpointSpec>(&json?)
            .ok()
            .map(|s| s.url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_added_in_redis_is_delivered_to_and_its_removal_drops_its_group()
-> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-deliver");
    let worker = Process::start(&url, &q).await?;
    let rec = Recorder::start(200, Duration::ZERO).await;
    let admin = RedisQueue::connect(RedisQueueConfig::new(&url, &q).partitions(2)).await?;
    let reg = SharedRegistry::new(&admin);
    reg.add_endpoint(spec("rec", &rec.url())).await?;
    until("the worker has it", Duration::from_secs(1), || {
        worker.sender.status("rec").is_some()
    })
    .await;
    for n in 0..50 {
        admin.enqueue(&event(n)).await?;
    }
    assert_eq!(rec.wait_distinct(50, Duration::from_secs(20)).await, 50);

    // Removed in Redis: the worker drops it, the groups are gone and stay gone.
    reg.remove_endpoint("rec").await?;
    until("the worker dropped it", Duration::from_secs(1), || {
        worker.sender.status("rec").is_none()
    })
    .await;
    for n in 50..60 {
        admin.enqueue(&event(n)).await?;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for p in 0..2 {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(format!("whk:{{{q}.{p}}}:s"))
            .query(&mut raw(&url))?;
        assert!(
            groups.is_empty(),
            "the removed endpoint's group is not created again: {groups:?}"
        );
    }
    assert_eq!(rec.distinct(), 50, "nothing delivered after the removal");

    // Back again: read from the start of what the streams hold (the 10 appended meanwhile).
    reg.add_endpoint(spec("rec", &rec.url())).await?;
    assert_eq!(rec.wait_distinct(60, Duration::from_secs(20)).await, 60);
    worker.stop().await;
    admin.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-bad");
    let queue = RedisQueue::connect(RedisQueueConfig::new(&url, &q)).await?;
    let reg = SharedRegistry::new(&queue);
    let sender = Sender::builder()
        .outbox_open(Outbox::from_store(Arc::new(queue.clone())))
        .build()?;
    assert!(matches!(
        reg.watch(&sender),
        Err(RegistrySyncError::NotShared)
    ));
    // Not shared: nothing loaded, nothing saved.
    assert_eq!(queue.load_registry()?, None);

    assert!(matches!(
        reg.add_endpoint(spec("x", "not a url")).await,
        Err(RegistrySyncError::Spec(_))
    ));
    let mut with_set = spec("x", "https://x.example/in");
    with_set.event_sets = vec!["nope".into()];
    assert!(matches!(
        reg.add_endpoint(with_set.clone()).await,
        Err(RegistrySyncError::UnknownEventSet { .. })
    ));
    reg.put_event_set(EventSet::new("nope", ["a.*"])).await?;
    reg.add_endpoint(with_set).await?;
    assert!(matches!(
        reg.add_endpoint(spec("x", "https://x.example/in")).await,
        Err(RegistrySyncError::Duplicate(_))
    ));
    assert!(matches!(
        reg.remove_event_set("nope").await,
        Err(RegistrySyncError::EventSetInUse { .. })
    ));
    assert!(matches!(
        reg.remove_endpoint("y").await,
        Err(RegistrySyncError::Unknown(_))
    ));
    assert!(matches!(
        reg.set_paused("y", true).await,
        Err(RegistrySyncError::Unknown(_))
    ));
    assert!(matches!(
        reg.put_event_set(EventSet::new("", ["a"])).await,
        Err(RegistrySyncError::Spec(_))
    ));

    // Garbage written by hand: skipped by readers, reported by `set_paused`.
    redis::cmd("HSET")
        .arg(format!("whk:{{{q}}}:reg:endpoints"))
        .arg("junk")
        .arg("{not json")
        .query::<()>(&mut raw(&url))?;
    let snap = reg.snapshot().await?;
    assert_eq!(snap.endpoints.len(), 1);
    assert!(matches!(
        reg.set_paused("junk", true).await,
        Err(RegistrySyncError::Corrupt { .. })
    ));
    // A watching process skips it and keeps the rest.
    let p = Process::start(&url, &q).await?;
    assert!(p.sender.status("x").is_some());
    assert!(p.sender.status("junk").is_none());
    p.stop().await;
    sender.shutdown(Duration::from_secs(1)).await;
    queue.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_the_registry_is_given_it_back_not_emptied() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-lost");
    let a = Process::start(&url, &q).await?;
    let b = Process::start(&url, &q).await?;
    for name in ["x", "y"] {
        a.sender
            .add_endpoint(spec(name, "http://127.0.0.1:9/in").to_config()?, "alice")?;
    }
    a.sender.pause("y", "alice")?;
    until("B has both", Duration::from_secs(1), || {
        b.sender.status("y").map(|s| s.state) == Some(EndpointState::Paused)
    })
    .await;
    // As a restart without persistence would: the registry's keys are gone.
    redis::cmd("DEL")
        .arg(format!("whk:{{{q}}}:reg:endpoints"))
        .arg(format!("whk:{{{q}}}:reg:sets"))
        .arg(format!("whk:{{{q}}}:reg:version"))
        .query::<()>(&mut raw(&url))?;
    let reg = SharedRegistry::new(&a.queue);
    let start = Instant::now();
    loop {
        let snap = reg.snapshot().await?;
        if snap.endpoints.len() == 2 && snap.endpoints.iter().any(|e| e.name == "y" && e.paused) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not written back: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("registry written back after {:?}", start.elapsed());
    tokio::time::sleep(Duration::from_millis(600)).await;
    for p in [&a, &b] {
        assert!(p.sender.status("x").is_some(), "not emptied");
        assert_eq!(
            p.sender.status("y").map(|s| s.state),
            Some(EndpointState::Paused)
        );
    }
    assert!(a.watch.restored() + b.watch.restored() >= 1);
    a.stop().await;
    b.stop().await;
    Ok(())
}

/// An endpoint removed while batches wait for their retry: its retry set goes with it, and the
/// partitions' counts of waiting events (what the length limit counts) lose them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoints_waiting_retries_go_with_it() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-retries");
    let worker = Process::start(&url, &q).await?;
    let down = Recorder::start(503, Duration::ZERO).await;
    let admin = RedisQueue::connect(RedisQueueConfig::new(&url, &q).partitions(2)).await?;
    let reg = SharedRegistry::new(&admin);
    reg.add_endpoint(spec("down", &down.url())).await?;
    until("the worker has it", Duration::from_secs(1), || {
        worker.sender.status("down").is_some()
    })
    .await;
    for n in 0..20 {
        admin.enqueue(&event(n)).await?;
    }
    let waiting = |url: &str| -> u64 {
        (0..2)
            .map(|p| {
                redis::cmd("GET")
                    .arg(format!("whk:{{{q}.{p}}}:r:events"))
                    .query::<Option<u64>>(&mut raw(url))
                    .unwrap()
                    .unwrap_or(0)
            })
            .sum()
    };
    // Attempted once each (503) and waiting for their retry (the default policy: seconds).
    until("all waiting for a retry", Duration::from_secs(15), || {
        waiting(&url) == 20
    })
    .await;
    reg.remove_endpoint("down").await?;
    until("the worker dropped it", Duration::from_secs(1), || {
        worker.sender.status("down").is_none()
    })
    .await;
    assert_eq!(waiting(&url), 0);
    for p in 0..2 {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("whk:{{{q}.{p}}}:r:down:*"))
            .query(&mut raw(&url))?;
        assert!(keys.is_empty(), "{keys:?}");
    }
    worker.stop().await;
    admin.close().await;
    Ok(())
}

/// `remove_endpoint_drained` removes an endpoint only once everything appended for it was
/// delivered: with 300 events in the queue and a receiver taking 20 ms per request, it returns
/// after the last one arrived, with nothing dropped. Against a receiver that answers 503 (its
/// batches wait in the retry set), the timeout passes first: a typed error, and the endpoint
/// stays and keeps delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_removed_once_drained_loses_nothing() -> Result<(), BoxError> {
    let Some(r) = redis() else { return Ok(()) };
    let url = r.url();
    let q = queue_name("reg-drain");
    let worker = Process::start(&url, &q).await?;
    let slow = Recorder::start(200, Duration::from_millis(20)).await;
    let admin = RedisQueue::connect(
        RedisQueueConfig::new(&url, &q)
            .partitions(2)
            .shared_registry(true),
    )
    .await?;
    let reg = SharedRegistry::new(&admin);
    let mut s = spec("slow", &slow.url());
    s.batching = Some(webhook_sender::registry::BatchingSpec {
        max_events: Some(10),
        ..Default::default()
    });
    reg.add_endpoint(s).await?;
    until("the worker has it", Duration::from_secs(1), || {
        worker.sender.status("slow").is_some()
    })
    .await;
    for n in 0..300 {
        admin.enqueue_nowait(&event(n))?;
    }
    admin.flush().await?;
    reg.remove_endpoint_drained("slow", Duration::from_secs(60))
        .await?;
    assert_eq!(
        slow.distinct(),
        300,
        "every event delivered before the removal"
    );
    assert!(reg.snapshot().await?.endpoints.is_empty());

    // Never drained: the typed error, and the endpoint stays.
    let down = Recorder::start(503, Duration::ZERO).await;
    reg.add_endpoint(spec("down", &down.url())).await?;
    until("the worker has it", Duration::from_secs(1), || {
        worker.sender.status("down").is_some()
    })
    .await;
    admin.enqueue(&event(1000)).await?;
    let e = reg
        .remove_endpoint_drained("down", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistrySyncError::NotDrained { endpoint, .. } if endpoint == "down"),
        "{e}"
    );
    eprintln!("{e}");
    assert_eq!(reg.snapshot().await?.endpoints.len(), 1, "not removed");
    assert!(matches!(
        reg.remove_endpoint_drained("nope", Duration::from_secs(1))
            .await,
        Err(RegistrySyncError::Unknown(_))
    ));
    worker.stop().await;
    admin.close().await;
    Ok(())
}
