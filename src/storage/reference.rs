//! The naive store the skeleton shipped with, kept as the model for the
//! model-based test in `tests.rs`: a `BTreeMap` from label set to samples with
//! the same append rules as the real engine and no durability.
//! Test-only; nothing in the daemon uses it.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Labels, Matcher, Sample, Timestamp};

use super::{AppendOutcome, Series};

#[derive(Default, Clone)]
pub struct Reference {
    pub series: BTreeMap<Labels, Vec<Sample>>,
}

impl Reference {
    /// Applies one batch like `Appender::commit`: samples older than
    /// `min_valid` are too old, new series past `max_series` (if > 0) refused.
    pub fn commit(
        &mut self,
        pending: &[(Labels, Sample)],
        min_valid: Timestamp,
        max_series: usize,
    ) -> AppendOutcome {
        let mut outcome = AppendOutcome::default();
        for (labels, sample) in pending {
            if sample.t < min_valid {
                outcome.too_old += 1;
                continue;
            }
            let known = self.series.contains_key(labels);
            if !known && max_series > 0 && self.series.len() >= max_series {
                outcome.series_limit += 1;
                continue;
            }
            let samples = self.series.entry(labels.clone()).or_default();
            if !known {
                outcome.series_added += 1;
            }
            match samples.last() {
                Some(last) if sample.t < last.t => outcome.out_of_order += 1,
                Some(last) if sample.t == last.t => {
                    if last.v.to_bits() != sample.v.to_bits() {
                        outcome.duplicate += 1;
                    }
                }
                _ => {
                    samples.push(*sample);
                    outcome.appended += 1;
                }
            }
        }
        outcome
    }

    pub fn select(&self, mint: Timestamp, maxt: Timestamp, matchers: &[Matcher]) -> Vec<Series> {
        let mut out = Vec::new();
        for (labels, samples) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let in_range: Vec<Sample> = samples
                .iter()
                .filter(|s| s.t >= mint && s.t <= maxt)
                .copied()
                .collect();
            if !in_range.is_empty() {
                out.push(Series {
                    labels: labels.clone(),
                    samples: in_range,
                });
            }
        }
        out
    }

    pub fn label_names(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
    ) -> Vec<String> {
        let mut names = BTreeSet::new();
        for s in self.select(mint, maxt, matchers) {
            names.extend(s.labels.iter().map(|l| l.name.clone()));
        }
        names.into_iter().collect()
    }

    pub fn label_values(
        &self,
        name: &str,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
    ) -> Vec<String> {
        let mut values = BTreeSet::new();
        for s in self.select(mint, maxt, matchers) {
            if let Some(v) = s.labels.get(name) {
                values.insert(v.to_string());
            }
        }
        values.into_iter().collect()
    }
}
