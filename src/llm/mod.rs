//! LLM usage: the business metrics of services that call LLMs (docs/llm.md).
//!
//! This module owns the pricing table (`pricing.rs`), the `llm` config
//! section (`config.rs`), the JSON usage and event records (`record.rs`),
//! the usage counters and the series they become (`counters.rs`), the
//! per-request ledger in `llm.db` (`ledger.rs`), the service that ties them
//! together with its writer thread (`service.rs`), its HTTP endpoints
//! (`api.rs`) and the LiteLLM price importer (`litellm.rs`). It writes to the
//! store only through an `Appender` and must not read the store.
//!
//! Seams for what comes later (issue #6, second half): OTLP metrics and
//! GenAI spans become [`record::UsageRecord`]s and go through
//! [`service::UsageService::ingest_usage`] like the JSON API's records;
//! budgets, forecasts and the anomaly score read the ledger
//! ([`ledger::Ledger`]) and append their gauges beside the counters.

pub mod api;
pub mod budget;
pub mod config;
pub mod counters;
pub mod ledger;
pub mod litellm;
pub mod pricing;
pub mod record;
pub mod service;

pub use service::UsageService;
