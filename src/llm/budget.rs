//! Budgets (docs/llm.md, "Budgets"): per scope (global, org, team, user) and
//! period (day, week, month, in UTC), with the spend so far, a linear forecast
//! to the end of the period and an anomaly score of the last hour's spend
//! against the same hour on the previous days.
//!
//! Spend is kept in integer micro-dollars (the ledger's rounding of each
//! request) in two sparse maps per scope and subject (shared by the budgets on it): 5-minute buckets for the last
//! [`HISTORY_MS`] (forecast and anomaly) and UTC days for the current period
//! (spent). Both are filled from the ledger when the budgets are built (at
//! start and when a reload changes them) and then from each batch of rows the
//! writer saves, so they always equal what the ledger holds, across restarts.
//! Every UTC period boundary is a multiple of both, so spent is exact.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer};

use super::ledger::Ledger;
use crate::config::values::{deserialize_parsed, PromDuration};
use crate::config::yaml::{Finding, Node};
use crate::model::{civil_from_days, days_from_civil, days_in_month, Labels, Timestamp};

/// Width of a spend bucket.
pub const BUCKET_MS: i64 = 5 * 60 * 1000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Previous days the anomaly score compares with.
pub const ANOMALY_DAYS: i64 = 7;
/// Fewest previous days of history before the anomaly score is not 0.
pub const ANOMALY_MIN_DAYS: usize = 3;
/// How far back the 5-minute buckets reach: the anomaly's 7 days and an hour,
/// which also bounds `forecast_window`.
pub const HISTORY_MS: i64 = ANOMALY_DAYS * DAY_MS + HOUR_MS + BUCKET_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Org,
    Team,
    User,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Org => "org",
            Scope::Team => "team",
            Scope::User => "user",
        }
    }

    fn parse(text: &str) -> Result<Scope, String> {
        [Scope::Global, Scope::Org, Scope::Team, Scope::User]
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| format!("unknown scope {text:?}; expected global, org, team or user"))
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a scope (global, org, team, user)", Scope::parse)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    fn parse(text: &str) -> Result<Period, String> {
        [Period::Day, Period::Week, Period::Month]
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| format!("unknown period {text:?}; expected day, week or month"))
    }

    /// The default `forecast_window`: the last hour for a day, the last day
    /// for longer periods (so a daily cycle does not swing the forecast).
    pub fn default_forecast_window_ms(self) -> i64 {
        match self {
            Period::Day => HOUR_MS,
            Period::Week | Period::Month => DAY_MS,
        }
    }

    /// The UTC period containing `t`: `[start, end)` in milliseconds. Weeks
    /// start on Monday (ISO 8601).
    pub fn bounds(self, t: Timestamp) -> (Timestamp, Timestamp) {
        let day = t.div_euclid(DAY_MS);
        match self {
            Period::Day => (day * DAY_MS, (day + 1) * DAY_MS),
            Period::Week => {
                // 1970-01-01 was a Thursday: Monday is 3 days before it.
                let monday = day - (day + 3).rem_euclid(7);
                (monday * DAY_MS, (monday + 7) * DAY_MS)
            }
            Period::Month => {
                let (year, month, _) = civil_from_days(day);
                let first = days_from_civil(year, month, 1);
                (
                    first * DAY_MS,
                    (first + days_in_month(year, month)) * DAY_MS,
                )
            }
        }
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a period (day, week, month)", Period::parse)
    }
}

/// US dollars parsed exactly from decimal text into micro-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MicroUsd(pub i64);

impl MicroUsd {
    /// `500`, `500.00`, `0.25`: digits, an optional `.` and up to 6 more digits.
    pub fn parse(text: &str) -> Result<MicroUsd, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!("invalid amount {text:?}: {why}; write decimal US dollars such as 500.00")
        };
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad("empty"));
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits and one `.` are allowed"));
        }
        if frac.len() > 6 {
            return Err(bad("more than 6 decimal places"));
        }
        if whole.len() > 12 {
            return Err(bad("over 999999999999 dollars"));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("not a number"))?
        };
        let mut micro = 0i64;
        for i in 0..6 {
            micro = micro * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        }
        Ok(MicroUsd(whole * 1_000_000 + micro))
    }
}

impl<'de> Deserialize<'de> for MicroUsd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "an amount in US dollars", MicroUsd::parse)
    }
}

/// One entry of `llm.budgets`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// The `budget` label. Required, unique.
    pub name: String,
    /// Whose spend counts: `global` (all), `org`, `team` or `user`. Default `global`.
    #[serde(default = "default_scope")]
    pub scope: Scope,
    /// The org, team or user ID the budget is for (exact, case-sensitive).
    /// Required unless the scope is `global`, where it is refused.
    #[serde(default, rename = "match")]
    pub subject: Option<String>,
    /// `day`, `week` (from Monday) or `month`, in UTC. Default `month`.
    #[serde(default = "default_period")]
    pub period: Period,
    /// The limit in US dollars, decimal text (`"500.00"`); greater than 0.
    pub limit_usd: MicroUsd,
    /// The trailing window whose spend rate the forecast extrapolates.
    /// Default 1h for `day`, 1d for `week` and `month`; a multiple of 5m,
    /// at most 7d.
    #[serde(default)]
    pub forecast_window: Option<PromDuration>,
}

fn default_scope() -> Scope {
    Scope::Global
}

fn default_period() -> Period {
    Period::Month
}

impl BudgetConfig {
    fn forecast_window_ms(&self) -> i64 {
        self.forecast_window
            .map_or(self.period.default_forecast_window_ms(), |w| w.as_millis())
    }
}

/// Checks `llm.budgets`; `node` is the `budgets` node.
pub(crate) fn check_budgets(
    budgets: &[BudgetConfig],
    node: Option<&Node>,
    findings: &mut Vec<Finding>,
) {
    let mut seen = std::collections::HashSet::new();
    for (i, b) in budgets.iter().enumerate() {
        let item = node.and_then(|n| match &n.kind {
            crate::config::yaml::Kind::Seq(items) => items.get(i),
            _ => None,
        });
        let mut at = |key: &str, message: String| {
            findings.push(Finding {
                pos: item
                    .and_then(|n| n.get(key).or(Some(n)))
                    .or(node)
                    .map(|n| n.pos),
                path: format!("llm.budgets[{i}].{key}"),
                message,
            })
        };
        if b.name.is_empty() {
            at("name", "a budget needs a name".into());
        } else if !seen.insert(b.name.as_str()) {
            at("name", format!("budget name {:?} is used twice", b.name));
        }
        match (b.scope, &b.subject) {
            (Scope::Global, Some(_)) => at("match", "a global budget takes no match".into()),
            (Scope::Global, None) => {}
            (scope, None) => at(
                "match",
                format!(
                    "scope {} needs a match (the {} ID)",
                    scope.name(),
                    scope.name()
                ),
            ),
            (_, Some(s)) if s.is_empty() => at("match", "match must not be empty".into()),
            _ => {}
        }
        if b.limit_usd.0 <= 0 {
            at("limit_usd", "limit_usd must be greater than 0".into());
        }
        if let Some(w) = b.forecast_window {
            let ms = w.as_millis();
            if ms <= 0 || ms % BUCKET_MS != 0 || ms > ANOMALY_DAYS * DAY_MS {
                at(
                    "forecast_window",
                    format!("forecast_window must be a multiple of 5m between 5m and 7d (got {w})"),
                );
            }
        }
    }
}

/// What one request adds to the budgets: its time, attribution and cost.
#[derive(Clone, Copy, Debug)]
pub struct Spend<'a> {
    pub t: Timestamp,
    pub org: Option<&'a str>,
    pub team: Option<&'a str>,
    pub user: Option<&'a str>,
    pub micro_usd: i64,
}

#[derive(Debug, Default)]
struct Track {
    /// 5-minute bucket index → micro-dollars.
    buckets: BTreeMap<i64, i64>,
    /// UTC day index → micro-dollars.
    days: BTreeMap<i64, i64>,
}

impl Track {
    fn add(&mut self, t: Timestamp, micro_usd: i64) {
        *self.buckets.entry(t.div_euclid(BUCKET_MS)).or_insert(0) += micro_usd;
        *self.days.entry(t.div_euclid(DAY_MS)).or_insert(0) += micro_usd;
    }

    fn sum_buckets(&self, from: i64, to_inclusive: i64) -> i64 {
        if from > to_inclusive {
            return 0;
        }
        self.buckets
            .range(from..=to_inclusive)
            .map(|(_, v)| v)
            .sum()
    }
}

/// One budget's values at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetValues {
    pub name: String,
    pub scope: Scope,
    pub period: Period,
    pub limit_usd: f64,
    pub spent_micro_usd: i64,
    pub forecast_usd: f64,
    pub anomaly_score: f64,
}

/// The configured budgets and their spend. Budgets with the same scope and
/// subject share one [`Track`], so a request updates at most four tracks
/// (global, its org, team and user) however many budgets there are.
#[derive(Debug, Default)]
pub struct Budgets {
    configs: Vec<BudgetConfig>,
    /// Each config's track.
    track_of: Vec<usize>,
    tracks: Vec<Track>,
    global: Option<usize>,
    /// Subject → track, for `org`, `team` and `user`.
    subjects: [HashMap<String, usize>; 3],
    /// The earliest request time seen (the ledger's or a later row's): days
    /// before it have no history, so they do not count for the anomaly score.
    history_start: Option<Timestamp>,
}

/// The index of a non-global scope in [`Budgets::subjects`] and its ledger column.
fn scope_slot(scope: Scope) -> Option<(usize, &'static str)> {
    match scope {
        Scope::Global => None,
        Scope::Org => Some((0, "org")),
        Scope::Team => Some((1, "team")),
        Scope::User => Some((2, "user")),
    }
}

/// The earliest time whose spend budget `c` needs at `now`: the start of its
/// current period or of the 5-minute history.
fn needed_from(c: &BudgetConfig, now: Timestamp) -> Timestamp {
    c.period
        .bounds(now)
        .0
        .min(now.div_euclid(BUCKET_MS) * BUCKET_MS - HISTORY_MS)
}

impl Budgets {
    pub fn new(configs: &[BudgetConfig]) -> Budgets {
        let mut b = Budgets {
            configs: configs.to_vec(),
            ..Budgets::default()
        };
        for c in configs {
            let slot = match (scope_slot(c.scope), &c.subject) {
                (None, _) => &mut b.global,
                (Some((i, _)), Some(s)) => {
                    let next = b.tracks.len();
                    let track = *b.subjects[i].entry(s.clone()).or_insert(next);
                    if track == next {
                        b.tracks.push(Track::default());
                    }
                    b.track_of.push(track);
                    continue;
                }
                // Refused by check_budgets; counted as nothing.
                (Some(_), None) => {
                    b.track_of.push(b.tracks.len());
                    b.tracks.push(Track::default());
                    continue;
                }
            };
            let track = *slot.get_or_insert(b.tracks.len());
            if track == b.tracks.len() {
                b.tracks.push(Track::default());
            }
            b.track_of.push(track);
        }
        b
    }

    /// The budgets `configs` with their spend at `now` read from the ledger:
    /// at start (so spend survives a restart) and when a reload changes them.
    /// One query per scope in use, reading only its configured subjects.
    pub fn from_ledger(
        configs: &[BudgetConfig],
        ledger: &Ledger,
        now: Timestamp,
    ) -> Result<Budgets, String> {
        let started = std::time::Instant::now();
        let mut budgets = Budgets::new(configs);
        let mut groups = 0;
        for scope in [Scope::Global, Scope::Org, Scope::Team, Scope::User] {
            let Some(since) = configs
                .iter()
                .filter(|c| c.scope == scope)
                .map(|c| needed_from(c, now))
                .min()
            else {
                continue;
            };
            let (track_of, column) = match scope_slot(scope) {
                None => (None, None),
                Some((i, column)) => (Some(&budgets.subjects[i]), Some(column)),
            };
            let names: Vec<&str> =
                track_of.map_or(Vec::new(), |m| m.keys().map(String::as_str).collect());
            let rows = ledger.spend_by(column, &names, since, BUCKET_MS)?;
            groups += rows.len();
            let targets: Vec<(i64, usize, i64)> = rows
                .into_iter()
                .filter_map(|(t, subject, micro)| {
                    let track = match (track_of, subject) {
                        (None, _) => budgets.global?,
                        (Some(m), Some(s)) => *m.get(&s)?,
                        (Some(_), None) => return None,
                    };
                    Some((t, track, micro))
                })
                .collect();
            for (t, track, micro) in targets {
                budgets.tracks[track].add(t, micro);
            }
        }
        let earliest = ledger.earliest()?;
        budgets.history_from(earliest);
        budgets.prune(now);
        tracing::info!(budgets = configs.len(), groups, elapsed = ?started.elapsed(), "LLM budgets built from the ledger");
        Ok(budgets)
    }

    pub fn configs(&self) -> &[BudgetConfig] {
        &self.configs
    }

    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The earliest time whose spend a budget still needs at `now`: the
    /// start of its current period or of the 5-minute history. `None`
    /// without budgets.
    pub fn oldest_needed(&self, now: Timestamp) -> Option<Timestamp> {
        self.configs.iter().map(|c| needed_from(c, now)).min()
    }

    /// Notes that requests exist from `t` on (a request without a cost too).
    pub fn saw_request(&mut self, t: Timestamp) {
        self.history_start = Some(self.history_start.map_or(t, |h| h.min(t)));
    }

    /// Notes the earliest request in the ledger (history for the anomaly score).
    pub fn history_from(&mut self, earliest: Option<Timestamp>) {
        if let Some(t) = earliest {
            self.saw_request(t);
        }
    }

    /// Adds one request's cost to every budget whose scope it falls in.
    pub fn add(&mut self, s: Spend<'_>) {
        self.saw_request(s.t);
        if s.micro_usd == 0 {
            return;
        }
        if let Some(i) = self.global {
            self.tracks[i].add(s.t, s.micro_usd);
        }
        for (slot, subject) in [s.org, s.team, s.user].into_iter().enumerate() {
            if let Some(&i) = subject.and_then(|v| self.subjects[slot].get(v)) {
                self.tracks[i].add(s.t, s.micro_usd);
            }
        }
    }

    /// Forgets spend no budget needs any more at `now`.
    pub fn prune(&mut self, now: Timestamp) {
        let keep_bucket = (now - HISTORY_MS).div_euclid(BUCKET_MS);
        let mut keep_day = vec![i64::MAX; self.tracks.len()];
        for (c, &t) in self.configs.iter().zip(&self.track_of) {
            keep_day[t] = keep_day[t].min(c.period.bounds(now).0.div_euclid(DAY_MS));
        }
        for (track, keep_day) in self.tracks.iter_mut().zip(keep_day) {
            track.buckets = track.buckets.split_off(&keep_bucket);
            track.days = track.days.split_off(&keep_day);
        }
    }

    /// Every budget's limit, spend, forecast and anomaly score at `now`.
    pub fn evaluate(&self, now: Timestamp) -> Vec<BudgetValues> {
        self.configs
            .iter()
            .zip(&self.track_of)
            .map(|(c, &t)| {
                let track = &self.tracks[t];
                let (start, end) = c.period.bounds(now);
                let spent: i64 = track
                    .days
                    .range(start.div_euclid(DAY_MS)..end.div_euclid(DAY_MS))
                    .map(|(_, v)| v)
                    .sum();
                let current = now.div_euclid(BUCKET_MS);
                let window = c.forecast_window_ms();
                let window_spend = track.sum_buckets(current - window / BUCKET_MS, current);
                let forecast = forecast(
                    spent,
                    window_spend,
                    window + now.rem_euclid(BUCKET_MS),
                    end - now,
                );
                let hours = hourly_history(track, now, self.history_start);
                BudgetValues {
                    name: c.name.clone(),
                    scope: c.scope,
                    period: c.period,
                    limit_usd: c.limit_usd.0 as f64 / 1e6,
                    spent_micro_usd: spent,
                    forecast_usd: forecast,
                    anomaly_score: anomaly_score(hours.0, &hours.1, c.limit_usd.0),
                }
            })
            .collect()
    }
}

/// Dollars forecast for the end of the period: what is spent plus the
/// window's spend rate over the time left. `window_ms` is the window's
/// length (its whole buckets and the part of the current one elapsed).
pub fn forecast(spent_micro: i64, window_micro: i64, window_ms: i64, remaining_ms: i64) -> f64 {
    let rate = if window_ms > 0 {
        window_micro as f64 / window_ms as f64
    } else {
        0.0
    };
    (spent_micro as f64 + rate * remaining_ms.max(0) as f64) / 1e6
}

/// The last complete hour's spend (the 12 buckets before the current one)
/// and the same hour on each previous day that is inside the history.
fn hourly_history(
    track: &Track,
    now: Timestamp,
    history_start: Option<Timestamp>,
) -> (i64, Vec<i64>) {
    let per_hour = HOUR_MS / BUCKET_MS;
    let per_day = DAY_MS / BUCKET_MS;
    let end = now.div_euclid(BUCKET_MS); // exclusive: the current, partial bucket
    let hour = |shift_days: i64| {
        let to = end - shift_days * per_day;
        track.sum_buckets(to - per_hour, to - 1)
    };
    let previous = (1..=ANOMALY_DAYS)
        .take_while(|d| {
            let from = (end - d * per_day - per_hour) * BUCKET_MS;
            history_start.is_some_and(|h| h <= from)
        })
        .map(hour)
        .collect();
    (hour(0), previous)
}

/// The z-score of `current` against `previous` (micro-dollars per hour):
/// `(current − mean) / sd` with the sample standard deviation, taken as at
/// least 10 % of the mean and 1 % of the budget's limit so that a flat or
/// empty history does not turn cents into alarms. 0 with fewer than
/// [`ANOMALY_MIN_DAYS`] previous days.
pub fn anomaly_score(current: i64, previous: &[i64], limit_micro: i64) -> f64 {
    if previous.len() < ANOMALY_MIN_DAYS {
        return 0.0;
    }
    let n = previous.len() as f64;
    let mean = previous.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = previous
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let sd = var.sqrt().max(0.1 * mean).max(0.01 * limit_micro as f64);
    if sd <= 0.0 {
        return 0.0;
    }
    (current as f64 - mean) / sd
}

/// The store samples of `values`: `llm_budget_usd`, `llm_budget_spent_usd`,
/// `llm_budget_forecast_usd` (`budget`, `scope`, `period`) and
/// `llm_spend_anomaly_score` (`budget`), each with `base` labels.
pub fn samples(values: &[BudgetValues], base: &[(String, String)]) -> Vec<(Labels, f64)> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        let labels = |name: &str, full: bool| {
            let mut pairs: Vec<(String, String)> = base.to_vec();
            pairs.push(("__name__".into(), name.into()));
            pairs.push(("budget".into(), v.name.clone()));
            if full {
                pairs.push(("scope".into(), v.scope.name().into()));
                pairs.push(("period".into(), v.period.name().into()));
            }
            Labels::new(pairs)
        };
        out.push((labels("llm_budget_usd", true), v.limit_usd));
        out.push((
            labels("llm_budget_spent_usd", true),
            v.spent_micro_usd as f64 / 1e6,
        ));
        out.push((labels("llm_budget_forecast_usd", true), v.forecast_usd));
        out.push((labels("llm_spend_anomaly_score", false), v.anomaly_score));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        crate::api::prometheus::parse_time(text).expect("time")
    }

    fn budget(
        name: &str,
        scope: Scope,
        subject: Option<&str>,
        period: Period,
        limit: &str,
    ) -> BudgetConfig {
        BudgetConfig {
            name: name.into(),
            scope,
            subject: subject.map(String::from),
            period,
            limit_usd: MicroUsd::parse(limit).expect("amount"),
            forecast_window: None,
        }
    }

    /// Spend of `micro_usd` at `t` with no org, team or user.
    fn spend(t: Timestamp, micro_usd: i64) -> Spend<'static> {
        Spend {
            t,
            org: None,
            team: None,
            user: None,
            micro_usd,
        }
    }

    #[test]
    fn period_bounds_at_month_week_and_day_ends() {
        for (period, at, start, end) in [
            // Leap February: the last millisecond is still February.
            (
                Period::Month,
                "2024-02-29T23:59:59.999Z",
                "2024-02-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
            ),
            (
                Period::Month,
                "2024-03-01T00:00:00Z",
                "2024-03-01T00:00:00Z",
                "2024-04-01T00:00:00Z",
            ),
            (
                Period::Month,
                "2025-02-15T12:00:00Z",
                "2025-02-01T00:00:00Z",
                "2025-03-01T00:00:00Z",
            ),
            (
                Period::Month,
                "2025-12-31T23:59:59.999Z",
                "2025-12-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            ),
            (
                Period::Day,
                "2025-06-30T23:59:59.999Z",
                "2025-06-30T00:00:00Z",
                "2025-07-01T00:00:00Z",
            ),
            (
                Period::Day,
                "2025-07-01T00:00:00Z",
                "2025-07-01T00:00:00Z",
                "2025-07-02T00:00:00Z",
            ),
            // 2025-11-23 is a Sunday; 2025-11-24 a Monday.
            (
                Period::Week,
                "2025-11-23T23:59:59.999Z",
                "2025-11-17T00:00:00Z",
                "2025-11-24T00:00:00Z",
            ),
            (
                Period::Week,
                "2025-11-24T00:00:00Z",
                "2025-11-24T00:00:00Z",
                "2025-12-01T00:00:00Z",
            ),
            // Before 1970 too (negative timestamps).
            (
                Period::Day,
                "1969-12-31T12:00:00Z",
                "1969-12-31T00:00:00Z",
                "1970-01-01T00:00:00Z",
            ),
        ] {
            assert_eq!(
                period.bounds(ts(at)),
                (ts(start), ts(end)),
                "{period:?} at {at}"
            );
        }
    }

    #[test]
    fn spent_counts_exactly_the_period() {
        let mut b = Budgets::new(&[budget("m", Scope::Global, None, Period::Month, "100")]);
        let add = |b: &mut Budgets, t: &str, micro| b.add(spend(ts(t), micro));
        add(&mut b, "2025-10-31T23:59:59.999Z", 1_000_000); // October
        add(&mut b, "2025-11-01T00:00:00Z", 250_001);
        add(&mut b, "2025-11-30T23:59:59.999Z", 3);
        add(&mut b, "2025-12-01T00:00:00Z", 7_000_000); // December
        let v = &b.evaluate(ts("2025-11-30T23:59:59.999Z"))[0];
        assert_eq!(v.spent_micro_usd, 250_004);
        assert_eq!(
            b.evaluate(ts("2025-12-01T00:00:00Z"))[0].spent_micro_usd,
            7_000_000
        );
        assert_eq!(
            b.evaluate(ts("2025-10-31T12:00:00Z"))[0].spent_micro_usd,
            1_000_000
        );
    }

    #[test]
    fn scope_matching() {
        let mut b = Budgets::new(&[
            budget("all", Scope::Global, None, Period::Day, "10"),
            budget("acme", Scope::Org, Some("acme"), Period::Day, "10"),
            budget("acme-month", Scope::Org, Some("acme"), Period::Month, "10"),
            budget("search", Scope::Team, Some("search"), Period::Day, "10"),
            budget("alice", Scope::User, Some("alice"), Period::Day, "10"),
            // Case-sensitive and exact: "Acme" and "acme-labs" are not acme.
            budget("user-acme", Scope::User, Some("acme"), Period::Day, "10"),
        ]);
        let t = ts("2025-11-20T10:00:00Z");
        let add = |b: &mut Budgets, org, team, user, micro| {
            b.add(Spend {
                t,
                org,
                team,
                user,
                micro_usd: micro,
            })
        };
        add(&mut b, Some("acme"), Some("search"), Some("alice"), 1);
        add(&mut b, Some("Acme"), None, Some("bob"), 10);
        add(&mut b, Some("acme-labs"), Some("search"), None, 100);
        add(&mut b, None, None, None, 1000);
        let spent: Vec<(String, i64)> = b
            .evaluate(t + 1)
            .into_iter()
            .map(|v| (v.name, v.spent_micro_usd))
            .collect();
        let expect = [
            ("all", 1111),
            ("acme", 1),
            ("acme-month", 1),
            ("search", 101),
            ("alice", 1),
            ("user-acme", 0),
        ];
        assert_eq!(spent, expect.map(|(n, v)| (n.to_string(), v)));
    }

    /// Golden values: a day budget with the default 1h window and a month
    /// budget with a 1d window.
    #[test]
    fn forecast_golden_values() {
        let mut b = Budgets::new(&[
            budget("d", Scope::Global, None, Period::Day, "100"),
            budget("m", Scope::Global, None, Period::Month, "1000"),
        ]);
        // $1 at 03:00 (outside the 1h window at 12:30), $6 between 11:30 and
        // 12:30 ($3 at 11:30, $3 at 12:10).
        for (t, micro) in [
            ("2025-11-20T03:00:00Z", 1_000_000),
            ("2025-11-20T11:30:00Z", 3_000_000),
            ("2025-11-20T12:10:00Z", 3_000_000),
        ] {
            b.add(spend(ts(t), micro));
        }
        // At 12:32:30 the window is [11:30, 12:32:30): 62.5 minutes, $6.
        let now = ts("2025-11-20T12:32:30Z");
        let v = b.evaluate(now);
        assert_eq!(v[0].spent_micro_usd, 7_000_000);
        // 7 + 6/62.5 per minute × (11h 27.5m = 687.5 min) = 7 + 66 = 73.
        assert!(
            (v[0].forecast_usd - 73.0).abs() < 1e-9,
            "{}",
            v[0].forecast_usd
        );
        // Month: window [2025-11-19T12:30, now) = 1442.5 min, $7; remaining
        // to 2025-12-01 = 10 days 11h 27.5m = 15087.5 min.
        let expect = 7.0 + 7.0 / 1442.5 * 15087.5;
        assert!(
            (v[1].forecast_usd - expect).abs() < 1e-9,
            "{}",
            v[1].forecast_usd
        );
        assert!((v[1].forecast_usd - 80.214_904_679_376_08).abs() < 1e-9);
        // Nothing spent: the forecast is 0.
        let empty = Budgets::new(&[budget("e", Scope::Org, Some("x"), Period::Day, "1")]);
        assert_eq!(empty.evaluate(now)[0].forecast_usd, 0.0);
    }

    #[test]
    fn anomaly_score_on_known_data() {
        // Too little history: 0.
        assert_eq!(anomaly_score(1_000_000_000, &[1, 2], 1), 0.0);
        // Previous days 10, 12, 8, 10 dollars (mean 10, sample sd √(8/3)),
        // the last hour 20: (20 − 10) / 1.63299… = 6.1237….
        let usd = |v: f64| (v * 1e6) as i64;
        let prev = [usd(10.0), usd(12.0), usd(8.0), usd(10.0)];
        let z = anomaly_score(usd(20.0), &prev, usd(100.0));
        assert!((z - 10.0 / (8.0f64 / 3.0).sqrt()).abs() < 1e-9, "{z}");
        assert!((z - 6.123_724_356_957_945).abs() < 1e-9);
        // Below the mean: negative.
        assert!(anomaly_score(usd(5.0), &prev, usd(100.0)) < 0.0);
        // A flat history: the sd floor is 10 % of the mean (1.0) → z = 10.
        let flat = [usd(10.0); 7];
        assert!((anomaly_score(usd(20.0), &flat, usd(1.0)) - 10.0).abs() < 1e-9);
        // An empty history: the floor is 1 % of the limit ($5 of $500).
        assert!((anomaly_score(usd(15.0), &[0; 5], usd(500.0)) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn anomaly_from_buckets_uses_the_same_hour_on_previous_days() {
        let mut b = Budgets::new(&[budget("g", Scope::Global, None, Period::Month, "100")]);
        let now = ts("2025-11-20T12:02:00Z");
        // The last complete hour is 11:00–12:00 (the bucket 12:00–12:05 is
        // still open). $2 in it on each of the 5 previous days, $1 at other
        // hours (ignored), and $12 today.
        for d in 1..=5 {
            let day = now - d * DAY_MS;
            b.add(spend(day - 30 * 60_000, 2_000_000));
            b.add(spend(day - 3 * HOUR_MS, 1_000_000));
        }
        b.add(spend(now - 61 * 60_000, 12_000_000));
        b.add(spend(now - 60_000, 50_000_000)); // open bucket
        let v = &b.evaluate(now)[0];
        // mean 2, sd 0 → floor max(0.2, 1.0 (1 % of $100)) = 1 → z = 10.
        assert!((v.anomaly_score - 10.0).abs() < 1e-9, "{}", v.anomaly_score);
        // Only 2 days of history (the earliest request 2 days ago): 0.
        let mut short = Budgets::new(&[budget("g", Scope::Global, None, Period::Month, "100")]);
        short.add(spend(now - 2 * DAY_MS - 2 * HOUR_MS, 1));
        short.add(spend(now - 61 * 60_000, 12_000_000));
        assert_eq!(short.evaluate(now)[0].anomaly_score, 0.0);
    }

    #[test]
    fn prune_keeps_what_the_period_and_history_need() {
        let mut b = Budgets::new(&[budget("m", Scope::Global, None, Period::Month, "100")]);
        let now = ts("2025-11-29T00:00:00Z");
        b.add(spend(ts("2025-11-01T00:00:00Z"), 5));
        b.add(spend(ts("2025-10-31T00:00:00Z"), 7));
        b.prune(now);
        assert_eq!(b.evaluate(now)[0].spent_micro_usd, 5);
        assert_eq!(b.tracks[0].days.len(), 1);
        assert!(b.tracks[0].buckets.is_empty());
        assert_eq!(b.oldest_needed(now), Some(ts("2025-11-01T00:00:00Z")));
    }

    fn ledger_row(
        t: Timestamp,
        org: &str,
        user: &str,
        cost: Option<i64>,
    ) -> crate::llm::ledger::LedgerRow {
        crate::llm::ledger::LedgerRow {
            t,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            cost_micro_usd: cost,
            status: "ok".into(),
            user: Some(user.into()),
            org: Some(org.into()),
            ..Default::default()
        }
    }

    /// What the writer adds while running equals what a restart rebuilds
    /// from the ledger: spent, forecast and anomaly score alike.
    #[test]
    fn restart_keeps_spent() {
        let configs = [
            budget("all", Scope::Global, None, Period::Month, "100"),
            budget("acme", Scope::Org, Some("acme"), Period::Day, "10"),
            budget("alice", Scope::User, Some("alice"), Period::Month, "10"),
        ];
        let now = ts("2025-11-20T12:02:00Z");
        let mut rows = Vec::new();
        // 10 days of requests every 7 minutes, some unpriced, one before the month.
        let mut t = now - 10 * DAY_MS;
        let mut i = 0i64;
        while t < now {
            let (org, user) = if i % 3 == 0 {
                ("acme", "alice")
            } else {
                ("other", "bob")
            };
            rows.push(ledger_row(t, org, user, (i % 5 != 0).then_some(1_000 + i)));
            t += 7 * 60_000;
            i += 1;
        }
        rows.push(ledger_row(
            ts("2025-10-31T23:59:59.999Z"),
            "acme",
            "alice",
            Some(9_999_999),
        ));
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(dir.path()).expect("opened");
        let mut running =
            Budgets::from_ledger(&configs, &ledger, now - 11 * DAY_MS).expect("built");
        for chunk in rows.chunks(100) {
            ledger.write(chunk, None).expect("written");
            for r in chunk {
                running.add(Spend {
                    t: r.t,
                    org: r.org.as_deref(),
                    team: None,
                    user: r.user.as_deref(),
                    micro_usd: r.cost_micro_usd.unwrap_or(0),
                });
            }
        }
        running.prune(now);
        let before = running.evaluate(now);
        drop(ledger);
        let ledger = Ledger::open(dir.path()).expect("reopened");
        let after = Budgets::from_ledger(&configs, &ledger, now)
            .expect("rebuilt")
            .evaluate(now);
        assert_eq!(before, after);
        // The month's spend, summed independently: priced rows since November 1st.
        let month: i64 = rows
            .iter()
            .filter(|r| r.t >= ts("2025-11-01T00:00:00Z"))
            .filter_map(|r| r.cost_micro_usd)
            .sum();
        assert_eq!(after[0].spent_micro_usd, month);
        assert!(after[1].spent_micro_usd > 0 && after[1].anomaly_score != 0.0);
    }

    /// Measures the budgets' cost on a large ledger (`cargo test --lib
    /// budget_cost -- --ignored --nocapture`): numbers in docs/llm.md.
    #[test]
    #[ignore]
    fn budget_cost_on_a_large_ledger() {
        let now = ts("2025-11-30T12:00:00Z");
        let configs: Vec<BudgetConfig> = (0..100)
            .map(|i| match i % 4 {
                0 => budget(&format!("b{i}"), Scope::Global, None, Period::Month, "1000"),
                1 => budget(
                    &format!("b{i}"),
                    Scope::Org,
                    Some(&format!("org{}", i % 50)),
                    Period::Month,
                    "100",
                ),
                2 => budget(
                    &format!("b{i}"),
                    Scope::Team,
                    Some(&format!("team{}", i % 20)),
                    Period::Day,
                    "10",
                ),
                _ => budget(
                    &format!("b{i}"),
                    Scope::User,
                    Some(&format!("user{i}")),
                    Period::Day,
                    "1",
                ),
            })
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(dir.path()).expect("opened");
        let n = 1_000_000i64;
        let start = ts("2025-11-01T00:00:00Z");
        let step = (now - start) / n;
        let started = std::time::Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let mut r = ledger_row(
                        start + i * step,
                        &format!("org{}", i % 50),
                        &format!("user{}", i % 1000),
                        Some(1_000 + i % 777),
                    );
                    r.team = Some(format!("team{}", i % 20));
                    r
                })
                .collect();
            ledger.write(&rows, None).expect("written");
        }
        eprintln!("wrote {n} rows in {:?}", started.elapsed());
        let started = std::time::Instant::now();
        let mut budgets = Budgets::from_ledger(&configs, &ledger, now).expect("built");
        eprintln!("built 100 budgets from {n} rows in {:?}", started.elapsed());
        let rounds = 100;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(budgets.evaluate(now));
        }
        eprintln!(
            "evaluate (100 budgets): {:?} per tick",
            started.elapsed() / rounds
        );
        let started = std::time::Instant::now();
        for i in 0..10_000i64 {
            budgets.add(Spend {
                t: now,
                org: Some("org1"),
                team: Some("team1"),
                user: Some("user3"),
                micro_usd: i,
            });
        }
        eprintln!("add: {:?} per request", started.elapsed() / 10_000);
    }

    #[test]
    fn budgets_load_from_config_and_bad_ones_are_named() {
        let config = crate::config::load_str(
            "llm:\n  budgets:\n    - {name: all, limit_usd: \"1000\"}\n    - {name: acme, scope: org, match: acme, period: day, limit_usd: \"500.00\", forecast_window: 30m}\n",
            "b.yml",
        )
        .expect("loads");
        let b = &config.llm.budgets;
        assert_eq!(
            (b[0].scope, b[0].period, b[0].limit_usd),
            (Scope::Global, Period::Month, MicroUsd(1_000_000_000))
        );
        assert_eq!(
            (b[1].scope, b[1].subject.as_deref(), b[1].period),
            (Scope::Org, Some("acme"), Period::Day)
        );
        assert_eq!(b[1].forecast_window_ms(), 30 * 60_000);
        let err = crate::config::load_str(
            "llm:\n  budgets:\n    - {name: a, scope: org, limit_usd: \"1\"}\n    - {name: a, match: x, limit_usd: \"0\", forecast_window: 7m}\n    - {name: c, scope: planet, limit_usd: \"1\"}\n",
            "b.yml",
        )
        .expect_err("refused")
        .to_string();
        for needle in [
            "llm.budgets[0].match: scope org needs a match (the org ID)",
            "llm.budgets[1].name: budget name \"a\" is used twice",
            "llm.budgets[1].match: a global budget takes no match",
            "llm.budgets[1].limit_usd: limit_usd must be greater than 0",
            "llm.budgets[1].forecast_window: forecast_window must be a multiple of 5m",
            "unknown scope \"planet\"",
        ] {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(MicroUsd::parse("500.00"), Ok(MicroUsd(500_000_000)));
        assert_eq!(MicroUsd::parse("0.000001"), Ok(MicroUsd(1)));
        assert_eq!(MicroUsd::parse(".5"), Ok(MicroUsd(500_000)));
        assert!(MicroUsd::parse("1.0000001").is_err());
        assert!(MicroUsd::parse("-1").is_err());
        assert!(MicroUsd::parse("1e3").is_err());
    }
}
