//! Delivery against real HTTP peers on 127.0.0.1: retries, Retry-After,
//! refusals, expiry, resuming the outbox after reopening the store, dedup
//! through the notification log, HMAC signatures.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use super::store::{EntryState, IntegrationKey};
use super::*;
use crate::config::values::PromDuration;
use crate::model::Labels;
use crate::notify::types::Alert;

/// A scripted receiver: answers with the queued (status, headers) in order,
/// then 200; records every request.
type Script = VecDeque<(u16, Vec<(String, String)>)>;

#[derive(Clone, Default)]
struct Peer {
    script: Arc<Mutex<Script>>,
    requests: Arc<Mutex<Vec<(Instant, HeaderMap, Bytes)>>>,
}

impl Peer {
    async fn start(script: Vec<(u16, Vec<(&str, &str)>)>) -> (Peer, String) {
        let peer = Peer::default();
        *peer.script.lock() = script
            .into_iter()
            .map(|(s, h)| {
                (
                    s,
                    h.into_iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                )
            })
            .collect();
        let p = peer.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let p = p.clone();
                async move {
                    p.requests.lock().push((Instant::now(), headers, body));
                    let (status, extra) = p.script.lock().pop_front().unwrap_or((200, vec![]));
                    let mut response = (
                        StatusCode::from_u16(status).unwrap(),
                        format!("answer {status}"),
                    )
                        .into_response();
                    for (k, v) in extra {
                        response.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (peer, url)
    }

    fn count(&self) -> usize {
        self.requests.lock().len()
    }
}

fn config(url: &str, extra: &str) -> NotifyConfig {
    let text = format!(
        "route: {{receiver: hook}}\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {url}\n{extra}"
    );
    let mut c = crate::notify::config::load_str(&text, "test", None).unwrap();
    // Long enough that retries (1 s, then 2 s, ±50 %) on a loaded CI
    // machine never reach it; the expiry test sets its own.
    c.delivery.expiry = PromDuration(Duration::from_secs(30));
    c
}

fn alert(name: &str, ends_at: i64) -> Alert {
    Alert {
        labels: Labels::new([("alertname", name), ("severity", "critical")]),
        annotations: BTreeMap::from([("summary".to_string(), format!("{name} <is> down"))]),
        starts_at: 1_700_000_000_000,
        ends_at,
        generator_url: "http://prom/graph".into(),
        updated_at: 0,
        timeout: false,
    }
}

fn flush(alerts: Vec<Alert>, now: i64) -> Notification {
    Notification {
        receiver: "hook".into(),
        group_key: "{}:{alertname=\"A\"}".into(),
        group_labels: Labels::new([("alertname", "A")]),
        alerts,
        now,
        repeat_interval: Duration::from_secs(3600),
        group_interval: Duration::from_secs(1),
    }
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn states(d: &Deliverer) -> Vec<EntryState> {
    d.store()
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.state)
        .collect()
}

fn key() -> IntegrationKey {
    IntegrationKey {
        receiver: "hook".into(),
        integration: "webhook".into(),
        index: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_then_delivered_and_logged() {
    let (peer, url) = Peer::start(vec![(500, vec![]), (503, vec![])]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::open(
        dir.path(),
        &config(&url, ""),
        "http://bw",
        &mut Registry::default(),
    )
    .unwrap();
    let worker = d.spawn();
    let now = now_millis();
    d.notify(flush(vec![alert("A", 0)], now));
    wait_for(
        || states(&d) == [EntryState::Delivered],
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(peer.count(), 3);
    let entry = &d.store().entries().unwrap()[0];
    assert_eq!(entry.attempts, 3);
    assert!(entry.last_error.is_empty());
    let log = d
        .store()
        .log_entry(&key(), &entry.group_key, now_millis())
        .unwrap()
        .unwrap();
    assert_eq!(log.firing.len(), 1);
    // The same flush again: nothing new, nothing sent.
    d.notify(flush(vec![alert("A", 0)], now_millis()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count(), 3);
    assert_eq!(d.store().entries().unwrap().len(), 1);
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after() {
    let (peer, url) = Peer::start(vec![(429, vec![("Retry-After", "2")])]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    d.notify(flush(vec![alert("A", 0)], now_millis()));
    wait_for(
        || states(&d) == [EntryState::Delivered],
        Duration::from_secs(15),
    )
    .await;
    let times: Vec<Instant> = peer.requests.lock().iter().map(|r| r.0).collect();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_error_is_not_retried() {
    let (peer, url) = Peer::start(vec![(400, vec![])]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    d.notify(flush(vec![alert("A", 0)], now_millis()));
    wait_for(
        || states(&d) == [EntryState::Failed],
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(peer.count(), 1);
    let entry = &d.store().entries().unwrap()[0];
    assert_eq!(entry.last_error, "unexpected status code 400: answer 400");
    // Not delivered, so not in the notification log.
    assert!(d
        .store()
        .log_entry(&key(), &entry.group_key, now_millis())
        .unwrap()
        .is_none());
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_notification_expires() {
    let (peer, url) = Peer::start(vec![(500, vec![]); 100]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&url, "");
    c.delivery.expiry = PromDuration(Duration::from_secs(2));
    let d = Deliverer::open(dir.path(), &c, "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    d.notify(flush(vec![alert("A", 0)], now_millis()));
    wait_for(
        || states(&d) == [EntryState::Expired],
        Duration::from_secs(10),
    )
    .await;
    assert!(peer.count() >= 1);
    let entry = &d.store().entries().unwrap()[0];
    assert!(
        entry.last_error.starts_with("unexpected status code 500"),
        "{}",
        entry.last_error
    );
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_resume_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver that is down: nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (peer, url) = Peer::start(vec![]).await;
    let now = now_millis();
    {
        let d =
            Deliverer::open(dir.path(), &config(&down, ""), "", &mut Registry::default()).unwrap();
        // No worker: recorded, never attempted (as if killed right after).
        d.notify(flush(vec![alert("A", 0)], now));
        assert_eq!(states(&d), [EntryState::Pending]);
    }
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    wait_for(
        || states(&d) == [EntryState::Delivered],
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count(), 1);
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_flush_supersedes_undelivered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, url) = Peer::start(vec![]).await;
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let now = now_millis();
    d.notify(flush(vec![alert("A", 0)], now));
    d.notify(flush(vec![alert("A", 0), alert("B", 0)], now + 1));
    assert_eq!(states(&d), [EntryState::Superseded, EntryState::Pending]);
    let worker = d.spawn();
    wait_for(|| peer.count() == 1, Duration::from_secs(10)).await;
    let body: serde_json::Value = serde_json::from_slice(&peer.requests.lock()[0].2).unwrap();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
    // Both resolved: sent (send_resolved defaults to true for webhooks).
    wait_for(
        || states(&d)[1] == EntryState::Delivered,
        Duration::from_secs(5),
    )
    .await;
    d.notify(flush(vec![alert("A", now), alert("B", now)], now + 2));
    wait_for(|| peer.count() == 2, Duration::from_secs(10)).await;
    let body: serde_json::Value = serde_json::from_slice(&peer.requests.lock()[1].2).unwrap();
    assert_eq!(body["status"], "resolved");
    d.stop();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_verifies_with_the_secret() {
    let (peer, url) = Peer::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(&url, "        hmac_secret: s3cret\n");
    let d = Deliverer::open(dir.path(), &c, "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    d.notify(flush(vec![alert("A", 0)], now_millis()));
    wait_for(|| peer.count() == 1, Duration::from_secs(10)).await;
    let (_, headers, body) = peer.requests.lock()[0].clone();
    let ts = headers[webhook::TIMESTAMP_HEADER]
        .to_str()
        .unwrap()
        .to_string();
    let sig = headers[webhook::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_string();
    let age = now_millis() / 1000 - ts.parse::<i64>().unwrap();
    assert!((0..=5).contains(&age));
    // Verify as a receiving end would: HMAC over "<ts>.<body>".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    let mut message = format!("{ts}.").into_bytes();
    message.extend_from_slice(&body);
    let tag: Vec<u8> = (0..sig.len() - 7)
        .step_by(2)
        .map(|i| u8::from_str_radix(&sig[7 + i..9 + i], 16).unwrap())
        .collect();
    assert!(sig.starts_with("sha256="));
    ring::hmac::verify(&key, &message, &tag).unwrap();
    // A changed body does not verify.
    message.push(b' ');
    assert!(ring::hmac::verify(&key, &message, &tag).is_err());
    d.stop();
    worker.await.unwrap();
}

#[test]
fn dedup_decisions_are_alertmanagers() {
    let set = |v: &[u64]| v.iter().copied().collect::<FingerprintSet>();
    let hour = Duration::from_secs(3600);
    let last = LogEntry {
        firing: set(&[1, 2]),
        resolved: set(&[]),
        timestamp: 1_000_000,
    };
    // Never notified: only when something fires.
    assert!(needs_update(
        None,
        &set(&[1]),
        &set(&[]),
        true,
        hour,
        1_000_000
    ));
    assert!(!needs_update(
        None,
        &set(&[]),
        &set(&[1]),
        true,
        hour,
        1_000_000
    ));
    // A new firing alert.
    assert!(needs_update(
        Some(&last),
        &set(&[1, 3]),
        &set(&[]),
        true,
        hour,
        1_000_001
    ));
    // Fewer firing, same otherwise: nothing (until the repeat interval).
    assert!(!needs_update(
        Some(&last),
        &set(&[1]),
        &set(&[]),
        false,
        hour,
        1_000_001
    ));
    // A resolved alert: only with send_resolved.
    assert!(needs_update(
        Some(&last),
        &set(&[1]),
        &set(&[2]),
        true,
        hour,
        1_000_001
    ));
    assert!(!needs_update(
        Some(&last),
        &set(&[1]),
        &set(&[2]),
        false,
        hour,
        1_000_001
    ));
    // All resolved: always (the log must forget the firing alerts).
    assert!(needs_update(
        Some(&last),
        &set(&[]),
        &set(&[1, 2]),
        false,
        hour,
        1_000_001
    ));
    let quiet = LogEntry {
        firing: set(&[]),
        resolved: set(&[1]),
        timestamp: 1_000_000,
    };
    assert!(!needs_update(
        Some(&quiet),
        &set(&[]),
        &set(&[1, 5]),
        true,
        hour,
        1_000_001
    ));
    // The repeat interval.
    assert!(!needs_update(
        Some(&last),
        &set(&[1, 2]),
        &set(&[]),
        true,
        hour,
        1_000_000 + 3_600_000
    ));
    assert!(needs_update(
        Some(&last),
        &set(&[1, 2]),
        &set(&[]),
        true,
        hour,
        1_000_001 + 3_600_000
    ));
}

#[test]
fn backoff_grows_with_jitter_and_is_capped() {
    for n in 1..20 {
        let d = backoff(n, 7);
        let base = INITIAL_BACKOFF
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_BACKOFF);
        assert!(d >= base / 2 && d <= base * 3 / 2, "{n}: {d:?}");
    }
}

/// A receiver that accepts connections and never answers holds only its
/// own attempt slots (32 per receiver, each bounded by the timeout): another
/// receiver's notification goes out at once, and the hanging attempts end
/// by timeout and are retried, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_stall_the_others() {
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/hook", hang.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = hang.accept().await {
            held.lock().push(stream); // kept open, never answered
        }
    });
    let (peer, url) = Peer::start(vec![]).await;
    let text = format!(
        "route: {{receiver: slow}}\nreceivers:\n  - name: slow\n    webhook_configs: [{{url: '{hang_url}'}}]\n  - name: fast\n    webhook_configs: [{{url: '{url}'}}]\n"
    );
    let mut c = crate::notify::config::load_str(&text, "test", None).unwrap();
    c.delivery.timeout = PromDuration(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::open(dir.path(), &c, "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    let now = now_millis();
    let slow_flushes = PER_RECEIVER_CONCURRENCY + 8;
    for i in 0..slow_flushes {
        let mut n = flush(vec![alert(&format!("S{i}"), 0)], now);
        n.receiver = "slow".into();
        n.group_key = format!("{{}}:{{alertname=\"S{i}\"}}");
        d.notify(n);
    }
    wait_for(
        || accepted.lock().len() >= PER_RECEIVER_CONCURRENCY,
        Duration::from_secs(5),
    )
    .await;
    let mut n = flush(vec![alert("F", 0)], now_millis());
    n.receiver = "fast".into();
    let sent = Instant::now();
    d.notify(n);
    wait_for(|| peer.count() == 1, Duration::from_secs(5)).await;
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "the fast receiver waited {:?} behind the hanging one",
        sent.elapsed()
    );
    // At most PER_RECEIVER_CONCURRENCY attempts of the hanging receiver at once.
    assert_eq!(accepted.lock().len(), PER_RECEIVER_CONCURRENCY);
    // They time out (2 s) and are retried: still pending, with an error.
    wait_for(
        || {
            d.store()
                .entries()
                .unwrap()
                .iter()
                .any(|e| e.key.receiver == "slow" && e.attempts >= 1)
        },
        Duration::from_secs(10),
    )
    .await;
    let entries = d.store().entries().unwrap();
    let slow: Vec<_> = entries
        .iter()
        .filter(|e| e.key.receiver == "slow")
        .collect();
    assert_eq!(slow.len(), slow_flushes);
    assert!(
        slow.iter().all(|e| e.state == EntryState::Pending),
        "{slow:?}"
    );
    let tried = slow.iter().find(|e| e.attempts >= 1).unwrap();
    assert!(!tried.last_error.is_empty());
    d.stop();
    worker.await.unwrap();
}

/// `n` flushes of different groups, as one dispatcher round.
fn round(n: usize, now: i64) -> Vec<Notification> {
    (0..n)
        .map(|i| {
            let mut f = flush(vec![alert(&format!("A{i}"), 0)], now);
            f.group_key = format!("{{}}:{{alertname=\"A{i}\"}}");
            f
        })
        .collect()
}

/// A round's notifications are written in one transaction: the receiver,
/// reading the outbox through its own connection while each request is
/// made, always finds every entry of the round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_is_durable_before_any_attempt() {
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bellwether.db");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let record = Arc::clone(&record);
            let db = db.clone();
            async move {
                let conn = rusqlite::Connection::open(&db).unwrap();
                let rows: i64 = conn
                    .query_row("SELECT COUNT(*) FROM notify_outbox", [], |r| r.get(0))
                    .unwrap();
                record.lock().push(rows);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    let batch = round(N, now_millis());
    let handed = Arc::clone(&d);
    tokio::task::spawn_blocking(move || handed.notify_all(batch))
        .await
        .unwrap();
    wait_for(
        || states(&d) == vec![EntryState::Delivered; N],
        Duration::from_secs(20),
    )
    .await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), N, "one request per notification");
    assert!(seen.iter().all(|&rows| rows == N as i64), "{seen:?}");
    for i in 0..N {
        let group = format!("{{}}:{{alertname=\"A{i}\"}}");
        assert!(d
            .store()
            .log_entry(&key(), &group, now_millis())
            .unwrap()
            .is_some());
    }
    d.stop();
    worker.await.unwrap();
}

/// A crash after the receivers answered but before the outcomes were
/// committed: after the restart every notification is sent again (at least
/// once), then recorded, and not sent a third time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_lost_in_a_crash_are_sent_again_after_restart() {
    const N: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let (peer, url) = Peer::start(vec![]).await;
    let now = now_millis();
    {
        let d =
            Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
        d.forget_outcomes.store(true, Ordering::SeqCst);
        let worker = d.spawn();
        d.notify_all(round(N, now));
        wait_for(|| peer.count() == N, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(states(&d), vec![EntryState::Pending; N]);
        d.stop();
        worker.await.unwrap();
    }
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let worker = d.spawn();
    wait_for(
        || states(&d) == vec![EntryState::Delivered; N],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(peer.count(), 2 * N);
    // The same round again: the notification log has them, nothing is sent.
    d.notify_all(round(N, now_millis()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count(), 2 * N);
    assert_eq!(d.store().entries().unwrap().len(), N);
    d.stop();
    worker.await.unwrap();
}

/// Many rounds at once, more than a receiver's slots: each notification
/// is sent exactly once, and a newer flush of a group still queued
/// replaces the older one in the queue as in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_entries_are_sent_once_and_superseded_in_the_queue() {
    let (peer, url) = Peer::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = Deliverer::open(dir.path(), &config(&url, ""), "", &mut Registry::default()).unwrap();
    let now = now_millis();
    // No worker yet: everything waits in the queue.
    d.notify_all(round(300, now));
    let mut newer = round(1, now + 1);
    newer[0].alerts.push(alert("B", 0));
    d.notify_all(newer);
    let worker = d.spawn();
    wait_for(|| peer.count() == 300, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count(), 300);
    let bodies: Vec<Bytes> = peer.requests.lock().iter().map(|r| r.2.clone()).collect();
    let mut groups = std::collections::HashSet::new();
    for body in &bodies {
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert!(groups.insert(body["groupKey"].as_str().unwrap().to_string()));
        if body["groupKey"] == "{}:{alertname=\"A0\"}" {
            assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
        }
    }
    let states = states(&d);
    assert_eq!(states[0], EntryState::Superseded);
    assert!(states[1..].iter().all(|s| *s == EntryState::Delivered));
    d.stop();
    worker.await.unwrap();
}
