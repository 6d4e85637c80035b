//! LLM usage end to end on the real binary: `POST /api/v1/usage` and
//! `/api/v1/events`, the series they produce read back through
//! `/api/v1/query`, the ledger's top/summary endpoints, refusals and their
//! counters, the default business rule on an unpriced model, and a restart
//! that keeps counters and ledger.

use std::time::Duration;

use crate::util::{metric_value, wait_for, TestDaemon};

const CONFIG: &str = "\
global:
  evaluation_interval: 1s
rule_files: [business.yml]
web:
  write_token: s3cret
llm:
  interval: 1s
  flush_interval: 200ms
  max_orgs: 2
  rate_limit_user_floor: 2
";

const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a query that answers one sample, if it answers one.
fn query_value(daemon: &TestDaemon, expr: &str) -> Option<f64> {
    let body = daemon.get_json(&format!("/api/v1/query?query={}", url_encode(expr)), 200);
    let result = body["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

pub(crate) fn wait_value(daemon: &TestDaemon, expr: &str, want: f64) {
    let ok = wait_for(Duration::from_secs(20), || {
        query_value(daemon, expr).is_some_and(|v| (v - want).abs() < 1e-9)
    });
    assert!(
        ok,
        "{expr} never became {want} (last: {:?})\n{}",
        query_value(daemon, expr),
        daemon.log()
    );
}

fn post_json(daemon: &TestDaemon, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = daemon.post(path, "application/json", body.as_bytes().to_vec(), &[AUTH]);
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, json)
}

/// Four good records (OpenAI convention, Anthropic's own convention, an
/// unpriced model, a third org past `max_orgs`) and one bad one.
const USAGE: &str = r#"[
  {"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,
   "output_tokens":500,"reasoning_tokens":0,"user":"alice","org":"acme","duration_seconds":0.7},
  {"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,
   "output_tokens":500,"user":"bob","org":"globex","session":"s-1"},
  {"provider":"anthropic","model":"claude-sonnet-4-5-20250929","input_tokens":50,
   "cache_read_tokens":100000,"cache_write_tokens":2000,"output_tokens":1000,
   "counting":"provider","user":"bob","org":"initech","agent":"planner"},
  {"provider":"openai","model":"gpt-4o","input_tokens":-3,"output_tokens":1},
  {"provider":"openai","model":"gpt-9-preview","input_tokens":100,"output_tokens":10,"user":"carol","org":"acme"}
]"#;

#[test]
fn usage_becomes_series_ledger_rows_and_alerts_and_survives_a_restart() {
    let mut daemon = TestDaemon::start_with_files(
        CONFIG,
        &[("business.yml", include_str!("../../rules/business.yml"))],
    );

    // The write token is required.
    let (status, _) = daemon.post("/api/v1/usage", "application/json", b"[]".to_vec(), &[]);
    assert_eq!(status, 401);

    // Partial success: four accepted, the bad one named by index and field.
    let (status, answer) = post_json(&daemon, "/api/v1/usage", USAGE);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["data"]["accepted"], 4);
    assert_eq!(answer["data"]["rejected"], 1);
    assert_eq!(answer["data"]["errors"][0]["index"], 3);
    assert_eq!(answer["data"]["errors"][0]["field"], "input_tokens");
    assert_eq!(
        answer["data"]["errors"][0]["error"],
        "must not be negative (got -3)"
    );

    // Every record bad, and a body that is not an array: 400.
    let (status, answer) = post_json(
        &daemon,
        "/api/v1/usage",
        r#"[{"provider":"openai","model":"m","input_tokens":1,"output_tokens":1,"colour":"red"}]"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errorType"], "bad_data");
    assert_eq!(answer["data"]["rejected"], 1);
    assert_eq!(answer["data"]["errors"][0]["field"], "colour");
    let (status, answer) = post_json(&daemon, "/api/v1/usage", r#"{"provider":"openai"}"#);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("not a JSON array"),
        "{answer}"
    );

    let (status, answer) = post_json(
        &daemon,
        "/api/v1/events",
        r#"[{"type":"agent_invocation","agent":"planner","status":"ok"},
            {"type":"workflow_completion","workflow":"triage","status":"failed"},
            {"type":"session_start","session":"s-2"},
            {"type":"session_end","session":"s-1"},
            {"type":"session_start"}]"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["accepted"], 4);
    assert_eq!(answer["data"]["errors"][0]["index"], 4);
    assert_eq!(answer["data"]["errors"][0]["field"], "session");

    // Costs, worked out in src/llm/pricing/tests.rs: each gpt-4o request
    // $0.02; the Anthropic one, normalised to 102,050 input tokens, $0.05265
    // under org "other" (max_orgs is 2). The unpriced one adds no cost.
    wait_value(&daemon, "sum(llm_cost_usd_total)", 0.09265);
    wait_value(&daemon, "llm_cost_usd_total{org=\"acme\"}", 0.02);
    wait_value(&daemon, "llm_cost_usd_total{org=\"other\"}", 0.05265);
    wait_value(&daemon, "sum(llm_tokens_total{type=\"input\"})", 122_150.0);
    wait_value(
        &daemon,
        "sum(llm_tokens_total{type=\"cache_read\"})",
        116_000.0,
    );
    wait_value(&daemon, "sum(llm_requests_total{status=\"ok\"})", 4.0);
    wait_value(
        &daemon,
        "llm_unpriced_requests_total{provider=\"openai\",model=\"gpt-9-preview\"}",
        1.0,
    );
    wait_value(
        &daemon,
        "llm_request_duration_seconds_bucket{le=\"0.64\"}",
        0.0,
    );
    wait_value(
        &daemon,
        "llm_request_duration_seconds_bucket{le=\"1.28\"}",
        1.0,
    );
    wait_value(
        &daemon,
        "agent_invocations_total{agent=\"planner\",status=\"ok\"}",
        1.0,
    );
    wait_value(
        &daemon,
        "workflow_completions_total{workflow=\"triage\",status=\"failed\"}",
        1.0,
    );
    // s-1 (from a usage record) ended, s-2 started.
    wait_value(&daemon, "user_sessions_active", 1.0);
    wait_value(
        &daemon,
        "count(llm_cost_usd_total{job=\"bellwether\"})",
        3.0,
    );
    // Only bob reached the (lowered) per-user export floor of 2 requests/h.
    wait_value(
        &daemon,
        "llm_rate_limit_requests{scope=\"user\",subject=\"bob\",window=\"1h\"}",
        2.0,
    );
    wait_value(
        &daemon,
        "count(llm_rate_limit_requests{scope=\"user\"})",
        1.0,
    );

    // The default rule sees the unpriced model.
    let fired = wait_for(Duration::from_secs(20), || {
        let alerts = daemon.get_json("/api/v1/alerts", 200);
        alerts["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|alert| {
                alert["labels"]["alertname"] == "LLMUnpricedModel"
                    && alert["labels"]["model"] == "gpt-9-preview"
                    && alert["state"] == "firing"
            })
        })
    });
    assert!(fired, "LLMUnpricedModel did not fire\n{}", daemon.log());

    // The ledger: per-user detail that is not a label anywhere.
    let top = daemon.get_json("/api/v1/usage/top?by=user&window=1h", 200);
    assert_eq!(top["status"], "success");
    let users: Vec<&str> = top["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|g| g["key"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(users, ["bob", "alice", "carol"], "{top}");
    assert_eq!(top["data"]["result"][0]["cost_micro_usd"], 72_650);
    assert_eq!(top["data"]["result"][2]["unpriced_requests"], 1);
    let top_orgs = daemon.get_json("/api/v1/usage/top?by=org&order=requests&limit=1", 200);
    assert_eq!(top_orgs["data"]["result"][0]["key"], "acme");
    assert_eq!(top_orgs["data"]["result"].as_array().map(Vec::len), Some(1));
    let summary = daemon.get_json("/api/v1/usage/summary?window=1h", 200);
    assert_eq!(summary["data"]["requests"], 4, "{summary}");
    assert_eq!(summary["data"]["cost_micro_usd"], 92_650);
    assert_eq!(summary["data"]["unpriced_requests"], 1);
    assert_eq!(summary["data"]["users"], 3);
    assert_eq!(summary["data"]["orgs"], 3);
    let (status, body) = daemon.get("/api/v1/usage/top?by=colour");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not one of user, org"), "{body}");

    // The service's own counters.
    let (_, metrics) = daemon.get("/metrics");
    assert_eq!(
        metric_value(
            &metrics,
            "bellwether_llm_usage_records_total{outcome=\"accepted\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "bellwether_llm_usage_records_total{outcome=\"refused\"}"
        ),
        Some(2.0)
    );

    // A restart keeps the counters (no reset) and the ledger.
    daemon.stop();
    daemon.spawn();
    let (status, answer) = post_json(
        &daemon,
        "/api/v1/usage",
        r#"[{"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,"output_tokens":500,"user":"alice","org":"acme"}]"#,
    );
    assert_eq!(status, 200, "{answer}");
    wait_value(&daemon, "llm_cost_usd_total{org=\"acme\"}", 0.04);
    wait_value(&daemon, "sum(llm_unpriced_requests_total)", 1.0);
    wait_value(&daemon, "agent_invocations_total{agent=\"planner\"}", 1.0);
    let summary = daemon.get_json("/api/v1/usage/summary", 200);
    assert_eq!(summary["data"]["requests"], 5, "{summary}");
    assert_eq!(summary["data"]["cost_micro_usd"], 112_650);
    // The counter never went backwards across the restart.
    wait_value(&daemon, "resets(llm_cost_usd_total{org=\"acme\"}[5m])", 0.0);
}

fn bellwether(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(args)
        .output()
        .expect("running bellwether");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pricing_check_and_litellm_import() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/exporters/llm-pricing.yaml");
    let (code, stdout, stderr) = bellwether(&["pricing", "check", shipped]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("pricing file is valid"), "{stdout}");

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "models:\n  - provider: openai\n    model: x\n    prices:\n      - input: 1,5\n        output: 2\n",
    )
    .expect("writing");
    let bad = bad.to_str().expect("UTF-8 path");
    let (code, _, stderr) = bellwether(&["pricing", "check", bad]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        format!("{bad}:5:16: models[0].prices[0].input: invalid price \"1,5\": only digits and one `.` are allowed; write decimal US dollars per 1M tokens such as 2.50")
    );

    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/llm/testdata/litellm_model_prices.json"
    );
    let (code, imported, stderr) = bellwether(&["pricing", "import", "litellm", fixture]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("imported 6 models, skipped 2"), "{stderr}");
    let out = dir.path().join("imported.yaml");
    std::fs::write(&out, &imported).expect("writing");
    let (code, stdout, stderr) = bellwether(&["pricing", "check", out.to_str().expect("path")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(6 models)"), "{stdout}");
}

/// A pricing override file is re-read on reload: a model unpriced before the
/// reload is priced after it; a broken file refuses the reload and the old
/// table stays in force.
#[test]
fn pricing_file_reloads_with_the_config() {
    let before = "models:\n  - provider: acme\n    model: known\n    prices:\n      - input: 1\n        output: 1\n";
    let daemon = TestDaemon::start_with_files(
        "llm:\n  pricing_file: prices.yaml\n  interval: 1s\n  flush_interval: 100ms\n",
        &[("prices.yaml", before)],
    );
    let record =
        r#"[{"provider":"acme","model":"new-model","input_tokens":1000000,"output_tokens":0}]"#;
    let post = |body: &str| {
        daemon.post(
            "/api/v1/usage",
            "application/json",
            body.as_bytes().to_vec(),
            &[],
        )
    };
    assert_eq!(post(record).0, 200);
    wait_value(
        &daemon,
        "llm_unpriced_requests_total{model=\"new-model\"}",
        1.0,
    );

    let prices = daemon.dir.path().join("prices.yaml");
    std::fs::write(&prices, "models:\n  - provider: acme\n    model: new-model\n    prices:\n      - input: 0.5\n        output: 1\n").expect("writing");
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(post(record).0, 200);
    wait_value(&daemon, "llm_cost_usd_total{model=\"new-model\"}", 0.5);

    std::fs::write(&prices, "models: [").expect("writing");
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("llm.pricing_file"), "{body}");
    assert_eq!(post(record).0, 200);
    wait_value(&daemon, "llm_cost_usd_total{model=\"new-model\"}", 1.0);
}

/// Budgets on the real binary: spent, limit and forecast read back through
/// the query API, `LLMBudgetExceeded` firing, spent kept across a restart
/// (rebuilt from the ledger), and a budget removed by a reload going stale.
#[test]
fn budgets_are_exported_alert_and_survive_a_restart() {
    let budgets = concat!(
        "  budgets:\n",
        "    - {name: all, limit_usd: \"100\"}\n",
        "    - {name: acme-day, scope: org, match: acme, period: day, limit_usd: \"0.03\"}\n",
        "    - {name: bob, scope: user, match: bob, period: month, limit_usd: \"1\"}\n",
    );
    let mut daemon = TestDaemon::start_with_files(
        &format!("{CONFIG}{budgets}"),
        &[("business.yml", include_str!("../../rules/business.yml"))],
    );
    // Two gpt-4o requests for acme/alice ($0.02 each), one unpriced for acme,
    // one for another org.
    let usage = r#"[
      {"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,"output_tokens":500,"user":"alice","org":"acme"},
      {"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,"output_tokens":500,"user":"alice","org":"acme"},
      {"provider":"openai","model":"gpt-9-preview","input_tokens":100,"output_tokens":10,"user":"alice","org":"acme"},
      {"provider":"openai","model":"gpt-4o","input_tokens":1000000,"output_tokens":0,"user":"carol","org":"globex"}
    ]"#;
    let (status, answer) = post_json(&daemon, "/api/v1/usage", usage);
    assert_eq!(status, 200, "{answer}");
    let acme = "{budget=\"acme-day\",scope=\"org\",period=\"day\",job=\"bellwether\"}";
    wait_value(&daemon, &format!("llm_budget_spent_usd{acme}"), 0.04);
    wait_value(&daemon, &format!("llm_budget_usd{acme}"), 0.03);
    wait_value(
        &daemon,
        "llm_budget_spent_usd{budget=\"all\",scope=\"global\",period=\"month\"}",
        2.54,
    );
    wait_value(&daemon, "llm_budget_spent_usd{budget=\"bob\"}", 0.0);
    // No history: the anomaly score is 0; the forecast is at least what is spent.
    wait_value(&daemon, "llm_spend_anomaly_score{budget=\"acme-day\"}", 0.0);
    let forecast =
        query_value(&daemon, &format!("llm_budget_forecast_usd{acme}")).expect("forecast");
    assert!(forecast >= 0.04, "forecast {forecast}");
    wait_value(&daemon, "count(ALERTS{alertname=\"LLMBudgetExceeded\", budget=\"acme-day\", alertstate=\"firing\"})", 1.0);
    assert_eq!(
        query_value(
            &daemon,
            "count(ALERTS{alertname=\"LLMBudgetExceeded\", budget=\"all\"})"
        ),
        None
    );

    // A restart rebuilds the spend from the ledger.
    daemon.stop();
    daemon.spawn();
    wait_value(&daemon, &format!("llm_budget_spent_usd{acme}"), 0.04);
    let (status, answer) = post_json(
        &daemon,
        "/api/v1/usage",
        r#"[{"provider":"openai","model":"gpt-4o","input_tokens":10000,"cache_read_tokens":8000,"output_tokens":500,"user":"bob","org":"acme"}]"#,
    );
    assert_eq!(status, 200, "{answer}");
    wait_value(&daemon, &format!("llm_budget_spent_usd{acme}"), 0.06);
    wait_value(&daemon, "llm_budget_spent_usd{budget=\"bob\"}", 0.02);

    // A reload without the "bob" budget: its series go stale, the others stay.
    std::fs::write(
        daemon.config_path(),
        format!("{CONFIG}  budgets:\n    - {{name: all, limit_usd: \"100\"}}\n"),
    )
    .expect("writing");
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[AUTH]);
    assert_eq!(status, 200, "{body}");
    let gone = wait_for(Duration::from_secs(20), || {
        query_value(&daemon, "llm_budget_usd{budget=\"bob\"}").is_none()
    });
    assert!(gone, "the removed budget's series did not go stale");
    wait_value(&daemon, "llm_budget_spent_usd{budget=\"all\"}", 2.56);
}
