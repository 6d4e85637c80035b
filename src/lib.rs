//! bellwether: one binary per node that collects metrics, stores them, evaluates
//! rules and routes alerts. See docs/ARCHITECTURE.md for how a sample travels.

pub mod api;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod llm;
pub mod model;
pub mod notify;
pub mod otlp;
pub mod promql;
pub mod rules;
pub mod storage;
pub mod telemetry;
pub mod template;

/// The version reported by `bellwether version` and `/api/v1/status/buildinfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
