//! Load driver for scripts/bench-notify-vs-alertmanager.sh: sends the same
//! alert stream to an Alertmanager API v2 (bellwether's or Alertmanager's)
//! and records, on its own webhook receiver, when each group's first
//! notification arrives.
//!
//!     bench_notify --target http://127.0.0.1:PORT --receiver-port P \
//!         [--groups 1000] [--per-group 10] [--batch 500] [--refresh 5] [--group-wait-ms 1000]
//!
//! Phase 1 posts GROUPS x PER_GROUP new alerts (label `group` = g0…, one
//! group's alerts in the same POST) in bodies of BATCH alerts, one POST at a
//! time, and waits until every group's notification has reached the
//! receiver. The delay of a group is its arrival minus the end of the POST
//! that carried its alerts minus `group_wait`: the routing, grouping and
//! delivery overhead. Phase 2 re-posts the whole set REFRESH times (what
//! Prometheus does on every evaluation): alerts/s through the API, the
//! merge and the routing of already-active alerts. Prints one JSON line.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use parking_lot::Mutex;

struct Args {
    target: String,
    receiver_port: u16,
    groups: usize,
    per_group: usize,
    batch: usize,
    refresh: usize,
    group_wait: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        target: String::new(),
        receiver_port: 0,
        groups: 1000,
        per_group: 10,
        batch: 500,
        refresh: 5,
        group_wait: Duration::from_millis(1000),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--target" => a.target = value.trim_end_matches('/').to_string(),
            "--receiver-port" => a.receiver_port = n()? as u16,
            "--groups" => a.groups = n()?,
            "--per-group" => a.per_group = n()?,
            "--batch" => a.batch = n()?,
            "--refresh" => a.refresh = n()?,
            "--group-wait-ms" => a.group_wait = Duration::from_millis(n()? as u64),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.target.is_empty() || a.receiver_port == 0 {
        return Err("--target and --receiver-port are required".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Seen {
    /// Group label → first arrival.
    first: HashMap<String, Instant>,
    requests: usize,
    alerts: usize,
}

fn alerts_body(groups: std::ops::Range<usize>, per_group: usize, ends_at: &str) -> String {
    let mut out = String::from("[");
    for g in groups {
        for i in 0..per_group {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&format!(
                r#"{{"labels":{{"alertname":"BenchAlert","group":"g{g}","instance":"i{i}","severity":"warning"}},"annotations":{{"summary":"bench alert {i} of group {g}"}},"endsAt":"{ends_at}"}}"#
            ));
        }
    }
    out.push(']');
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_notify: {e}");
            std::process::exit(2);
        }
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let record = Arc::clone(&record);
            async move {
                let now = Instant::now();
                let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    return "bad json";
                };
                let mut s = record.lock();
                s.requests += 1;
                if let Some(alerts) = msg["alerts"].as_array() {
                    s.alerts += alerts.len();
                    for a in alerts {
                        if let Some(g) = a["labels"]["group"].as_str() {
                            s.first.entry(g.to_string()).or_insert(now);
                        }
                    }
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.receiver_port))
        .await
        .unwrap_or_else(|e| panic!("binding the receiver port {}: {e}", args.receiver_port));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let client = reqwest::Client::new();
    let ready = Instant::now();
    loop {
        let ok = client
            .get(format!("{}/-/ready", args.target))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(60),
            "target not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Alerts end in an hour: none resolves during the run.
    let ends_at = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
            + 3600;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = bellwether::model::civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    };
    let groups_per_post = (args.batch / args.per_group).max(1);
    let bodies: Vec<(std::ops::Range<usize>, String)> = (0..args.groups)
        .step_by(groups_per_post)
        .map(|start| {
            let range = start..(start + groups_per_post).min(args.groups);
            let body = alerts_body(range.clone(), args.per_group, &ends_at);
            (range, body)
        })
        .collect();
    let post = |body: String| {
        let client = client.clone();
        let url = format!("{}/api/v2/alerts", args.target);
        async move {
            let r = client
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST /api/v2/alerts");
            assert!(r.status().is_success(), "POST answered {}", r.status());
        }
    };

    // Phase 1: new alerts, until every group has been notified.
    let mut posted_at: HashMap<String, Instant> = HashMap::new();
    let start = Instant::now();
    for (range, body) in &bodies {
        post(body.clone()).await;
        let done = Instant::now();
        for g in range.clone() {
            posted_at.insert(format!("g{g}"), done);
        }
    }
    let post_secs = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen.lock().first.len() < args.groups && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_notified_secs = start.elapsed().as_secs_f64();
    let mut delays: Vec<f64> = {
        let s = seen.lock();
        s.first
            .iter()
            .filter_map(|(g, at)| {
                let posted = posted_at.get(g)?;
                Some(
                    (at.saturating_duration_since(*posted).as_secs_f64()
                        - args.group_wait.as_secs_f64())
                        * 1000.0,
                )
            })
            .collect()
    };
    delays.sort_by(f64::total_cmp);

    // Phase 2: the same alerts again, REFRESH times.
    let refresh_start = Instant::now();
    for _ in 0..args.refresh {
        for (_, body) in &bodies {
            post(body.clone()).await;
        }
    }
    let refresh_secs = refresh_start.elapsed().as_secs_f64();
    let total = args.groups * args.per_group;
    let s = seen.lock();
    println!(
        "{}",
        serde_json::json!({
            "alerts": total,
            "groups": args.groups,
            "groups_notified": s.first.len(),
            "webhook_requests": s.requests,
            "webhook_alerts": s.alerts,
            "new_alerts_per_sec": total as f64 / post_secs,
            "all_notified_secs": all_notified_secs,
            "delay_ms_p50": percentile(&delays, 50.0),
            "delay_ms_p99": percentile(&delays, 99.0),
            "delay_ms_max": delays.last().copied().unwrap_or(f64::NAN),
            "refresh_alerts_per_sec": (total * args.refresh) as f64 / refresh_secs,
        })
    );
}
