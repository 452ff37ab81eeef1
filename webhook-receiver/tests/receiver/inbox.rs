//! Inbox mode over real sockets on 127.0.0.1: answers at once whatever the handlers do, every
//! stored id succeeds exactly once, duplicates across restarts, a full inbox, dead letters,
//! per-key order, refusals that store nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use tokio::sync::Notify;
use webhook_receiver::inbox::{Filter, InboxConfig};
use webhook_receiver::{Context, HandlerOutcome, Receiver, handler_fn};

use crate::common::{Alert, alert_json, signed, verified_config};
use crate::inbox_support::{Client, Served, coin, fast_retry, status_of, temp_dir};

type Successes = Arc<Mutex<HashMap<String, u32>>>;

fn counting_receiver(dir: &PathBuf, runs: Arc<AtomicUsize>) -> Receiver<Alert> {
    Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |_a: Alert, _cx: Context| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                HandlerOutcome::Accepted
            }
        }))
        .build_inbox(InboxConfig::new(dir).retry(fast_retry(5)))
        .expect("inbox receiver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_restart_is_still_a_duplicate() {
    let dir = temp_dir("restart-dup");
    let runs = Arc::new(AtomicUsize::new(0));
    let receiver = counting_receiver(&dir, runs.clone());
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    let body = alert_json("Login Failure", "x");
    let (status, _, b) = client
        .send(signed("msg_dup", "application/json", body.clone()))
        .await;
    assert_eq!((status, status_of(&b).as_str()), (StatusCode::OK, "queued"));
    inbox.idle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);

    // The same directory, a new receiver: the id is remembered on disk.
    let receiver = counting_receiver(&dir, runs.clone());
    let inbox = receiver.inbox().expect("inbox");
    assert!(inbox.stats().remembered_ids >= 1);
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    let (status, _, b) = client
        .send(signed("msg_dup", "application/json", body))
        .await;
    assert_eq!(
        (status, status_of(&b).as_str()),
        (StatusCode::OK, "duplicate")
    );
    inbox.idle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never run twice");
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_messages_are_processed_after_a_restart() {
    let dir = temp_dir("restart");
    // First life: the handler never finishes; the receiver closes with everything pending.
    let hang = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(|_a: Alert, _cx: Context| async {
            std::future::pending::<()>().await;
            HandlerOutcome::Accepted
        }))
        .build_inbox(InboxConfig::new(&dir).concurrency(2))
        .expect("inbox receiver");
    let inbox = hang.inbox().expect("inbox");
    let served = Served::start(hang).await;
    let mut client = Client::connect(served.addr).await;
    for i in 0..50 {
        let id = format!("r_{i}");
        let (status, _, _) = client
            .send(signed(
                &id,
                "application/json",
                alert_json("Login Failure", &id),
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    served.stop().await;
    inbox.close(Duration::from_millis(50)).await;
    assert_eq!(inbox.stats().depth, 50);
    drop(inbox);
    // Let the hung tasks notice the close and drop their hold on the store.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Second life: every stored message runs; the two that were running count a second run.
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let s2 = seen.clone();
    let receiver = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, cx: Context| {
            let seen = s2.clone();
            async move {
                seen.lock().unwrap().push((a.body, cx.attempt()));
                HandlerOutcome::Accepted
            }
        }))
        .build_inbox(InboxConfig::new(&dir))
        .expect("reopened");
    let inbox = receiver.inbox().expect("inbox");
    tokio::time::timeout(Duration::from_secs(20), inbox.idle())
        .await
        .expect("drains");
    let mut got: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(b, _)| b.clone())
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 50);
    inbox.close(Duration::from_secs(1)).await;
    drop((receiver, inbox));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_answers_503_with_retry_after_and_loses_nothing_it_accepted() {
    let dir = temp_dir("full");
    let open = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Notify::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (o2, g2, r2) = (open.clone(), gate.clone(), runs.clone());
    let receiver = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |_a: Alert, _cx: Context| {
            let (open, gate, runs) = (o2.clone(), g2.clone(), r2.clone());
            async move {
                while !open.load(Ordering::SeqCst) {
                    let wait = gate.notified();
                    if open.load(Ordering::SeqCst) {
                        break;
                    }
                    wait.await;
                }
                runs.fetch_add(1, Ordering::SeqCst);
                HandlerOutcome::Accepted
            }
        }))
        .build_inbox(
            InboxConfig::new(&dir)
                .max_bytes(1 << 20)
                .segment_bytes(64 << 10)
                .retry_after_when_full(Duration::from_secs(7)),
        )
        .expect("inbox receiver");
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    let filler = "x".repeat(16 << 10);
    let mut accepted = 0usize;
    let mut refused = None;
    for i in 0..200 {
        let id = format!("f_{i}");
        let (status, headers, _) = client
            .send(signed(
                &id,
                "application/json",
                alert_json("Login Failure", &filler),
            ))
            .await;
        match status {
            StatusCode::OK => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(headers);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let headers = refused.expect("the inbox filled up");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert!(accepted > 10, "{accepted} accepted before full");
    assert_eq!(inbox.stats().refused, 1);
    // Release the handlers: everything accepted runs, then the inbox takes messages again.
    open.store(true, Ordering::SeqCst);
    gate.notify_waiters();
    tokio::time::timeout(Duration::from_secs(30), inbox.idle())
        .await
        .expect("drains");
    assert_eq!(runs.load(Ordering::SeqCst), accepted);
    let (status, _, _) = client
        .send(signed(
            "after",
            "application/json",
            alert_json("Login Failure", "y"),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_inspected_requeued_and_purged() {
    let dir = temp_dir("dead");
    let broken = Arc::new(AtomicBool::new(true));
    let runs: Successes = Arc::default();
    let (b2, r2) = (broken.clone(), runs.clone());
    let receiver = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, _cx: Context| {
            let (broken, runs) = (b2.clone(), r2.clone());
            async move {
                if broken.load(Ordering::SeqCst) {
                    return HandlerOutcome::failed("database down");
                }
                *runs.lock().unwrap().entry(a.body).or_default() += 1;
                HandlerOutcome::Accepted
            }
        }))
        .build_inbox(InboxConfig::new(&dir).retry(fast_retry(3)))
        .expect("inbox receiver");
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    for i in 0..3 {
        let id = format!("d_{i}");
        let (status, _, _) = client
            .send(signed(
                &id,
                "application/json",
                alert_json("Login Failure", &id),
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    tokio::time::timeout(Duration::from_secs(10), inbox.idle())
        .await
        .expect("drains");
    let dead = inbox.dead_letters(&Filter::all(), 10);
    assert_eq!(dead.len(), 3);
    assert_eq!(inbox.stats().dead_lettered, 3);
    let first = dead.iter().find(|d| d.event_id == "d_0").expect("d_0 dead");
    assert!(first.reason.contains("database down"), "{}", first.reason);
    assert_eq!(first.attempt_count, 3);
    let full = inbox.dead_letter(first.id).expect("read").expect("present");
    assert_eq!(full.attempts.len(), 3);
    let cx = inbox
        .dead_letter_context(first.id)
        .expect("read")
        .expect("present");
    assert_eq!(cx.message_id(), Some("d_0"));
    assert_eq!(
        &cx.body()[..],
        alert_json("Login Failure", "d_0").as_bytes()
    );

    // Fixed: requeue one, purge the others.
    broken.store(false, Ordering::SeqCst);
    assert_eq!(
        inbox
            .requeue(&Filter::all().event_ids(["d_0"]))
            .expect("requeue"),
        1
    );
    tokio::time::timeout(Duration::from_secs(10), inbox.idle())
        .await
        .expect("drains");
    assert_eq!(runs.lock().unwrap().get("d_0"), Some(&1));
    assert_eq!(inbox.purge(&Filter::all()).expect("purge"), 2);
    assert!(inbox.dead_letters(&Filter::all(), 10).is_empty());
    // A requeued message's id is still deduplicated.
    let (status, _, b) = client
        .send(signed(
            "d_0",
            "application/json",
            alert_json("Login Failure", "d_0"),
        ))
        .await;
    assert_eq!(
        (status, status_of(&b).as_str()),
        (StatusCode::OK, "duplicate")
    );
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_one_key_run_in_order_through_failures() {
    let dir = temp_dir("ordered");
    let order: Arc<Mutex<HashMap<String, Vec<u32>>>> = Arc::default();
    let o2 = order.clone();
    let receiver = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, cx: Context| {
            let order = o2.clone();
            async move {
                let id = cx.message_id().unwrap_or_default().to_owned();
                if coin(&id, cx.attempt(), 9) < 30 {
                    return HandlerOutcome::failed("flaky");
                }
                let (key, n) = a.body.split_once(':').expect("key:n");
                order
                    .lock()
                    .unwrap()
                    .entry(key.to_owned())
                    .or_default()
                    .push(n.parse().expect("n"));
                HandlerOutcome::Accepted
            }
        }))
        .build_inbox(
            InboxConfig::new(&dir)
                .retry(fast_retry(40))
                .concurrency(8)
                .order_by(|cx| {
                    cx.headers()
                        .get("x-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                }),
        )
        .expect("inbox receiver");
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    for n in 0..60u32 {
        for key in ["a", "b", "c", "d"] {
            let id = format!("o_{key}_{n}");
            let mut req = signed(
                &id,
                "application/json",
                alert_json("Login Failure", &format!("{key}:{n}")),
            );
            req.headers_mut()
                .insert("x-key", key.parse().expect("header"));
            let (status, _, _) = client.send(req).await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    tokio::time::timeout(Duration::from_secs(60), inbox.idle())
        .await
        .expect("drains");
    let order = order.lock().unwrap().clone();
    for key in ["a", "b", "c", "d"] {
        let got = &order[key];
        assert_eq!(got, &(0..60).collect::<Vec<u32>>(), "key {key} in order");
    }
    assert!(inbox.stats().retries > 0);
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_store_nothing() {
    let dir = temp_dir("refused");
    let runs = Arc::new(AtomicUsize::new(0));
    let receiver = counting_receiver(&dir, runs.clone());
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    let mut client = Client::connect(served.addr).await;
    // Malformed JSON, correctly signed: 400.
    let (status, _, _) = client
        .send(signed("bad_1", "application/json", "{\"subject\":"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The wrong shape: 422.
    let (status, _, _) = client
        .send(signed("bad_2", "application/json", "[1,2]"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A forged signature: 401.
    let mut forged = signed(
        "bad_3",
        "application/json",
        alert_json("Login Failure", "x"),
    );
    *forged.body_mut() = Full::new(Bytes::from(alert_json("Login Failure", "tampered")));
    let (status, _, _) = client.send(forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stats = inbox.stats();
    assert_eq!((stats.accepted, stats.depth, stats.refused), (0, 0, 0));
    // The refused ids were not remembered: a good copy is accepted.
    let (status, _, b) = client
        .send(signed(
            "bad_1",
            "application/json",
            alert_json("Login Failure", "ok"),
        ))
        .await;
    assert_eq!((status, status_of(&b).as_str()), (StatusCode::OK, "queued"));
    inbox.idle().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_receiver_on_the_same_directory_is_refused() {
    let dir = temp_dir("locked");
    let runs = Arc::new(AtomicUsize::new(0));
    let first = counting_receiver(&dir, runs.clone());
    let second = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(|_a: Alert, _cx: Context| async {
            HandlerOutcome::Accepted
        }))
        .build_inbox(InboxConfig::new(&dir));
    assert!(matches!(
        second,
        Err(webhook_receiver::inbox::InboxError::Store(
            webhook_receiver::inbox::OutboxError::Locked { .. }
        ))
    ));
    let inbox = first.inbox().expect("inbox");
    drop(first);
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_beyond_the_memory_window_are_read_back_once_each() {
    let dir = temp_dir("window");
    let runs: Successes = Arc::default();
    let r2 = runs.clone();
    let receiver = Receiver::<Alert>::builder(verified_config())
        .fallback(handler_fn(move |a: Alert, _cx: Context| {
            let runs = r2.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                *runs.lock().unwrap().entry(a.body).or_default() += 1;
                HandlerOutcome::Accepted
            }
        }))
        // Four messages in memory at most: the rest are left in the log and read back, then
        // the inbox hands messages over from memory again once it has caught up.
        .build_inbox(InboxConfig::new(&dir).max_in_flight(4).concurrency(2))
        .expect("inbox receiver");
    let inbox = receiver.inbox().expect("inbox");
    let served = Served::start(receiver).await;
    for round in 0..3 {
        let mut clients = Vec::new();
        for c in 0..4 {
            let addr = served.addr;
            clients.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                for i in 0..50 {
                    let id = format!("w_{round}_{c}_{i}");
                    let (status, _, _) = client
                        .send(signed(
                            &id,
                            "application/json",
                            alert_json("Login Failure", &id),
                        ))
                        .await;
                    assert_eq!(status, StatusCode::OK);
                }
            }));
        }
        for c in clients {
            c.await.expect("client");
        }
        tokio::time::timeout(Duration::from_secs(30), inbox.idle())
            .await
            .expect("drains");
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 600);
    assert!(runs.values().all(|&n| n == 1), "each message handled once");
    served.stop().await;
    inbox.close(Duration::from_secs(1)).await;
    drop(inbox);
    std::fs::remove_dir_all(&dir).ok();
}
