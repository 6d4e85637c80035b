//! `bellwether test rules`: promtool's rule unit-test files, run with
//! promtool 2.42's semantics and verdicts.

pub mod file;
pub mod report;
pub mod series;
