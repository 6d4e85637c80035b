//! LLM usage: prices requests, counts tokens and cost into series, and keeps
//! a per-request ledger. See docs/llm.md.

pub mod pricing;
