//! Rules: rule files, evaluation, alert state. (The rule engine core lands
//! separately; this file only declares the unit-test runner until then.)

pub mod unittest;
