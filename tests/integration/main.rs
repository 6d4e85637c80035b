//! Integration tests: each starts the real `bellwether` binary (and, where the
//! contract names one, the real reference program) on 127.0.0.1.

mod util;

mod api;
mod cli;
mod crash;
mod dashboards;
mod default_rules;
mod host_parity;
mod kubernetes;
mod lifecycle;
mod llm_usage;
mod notify_delivery;
mod notify_dispatch;
mod notify_e2e;
mod notify_history;
mod notify_routes;
mod otlp;
mod probes;
mod promql;
mod remote_write;
mod rule_tests;
mod rules;
mod scrape;
mod silences;
mod templates;
