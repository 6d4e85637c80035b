//! The pricing table: per-token list prices of LLM models, read from a YAML
//! file (the default one, exporters/llm-pricing.yaml, is compiled in), and
//! the cost of one request computed from it in integer arithmetic.
//!
//! This module owns the file format, its checking (every problem at once, as
//! `file:line:col: key.path: message`, through the config's YAML machinery),
//! model lookup and the cost formula. It must not count, store or log usage.
//!
//! Units: a price is written in decimal US dollars per 1,000,000 tokens with
//! at most 9 decimal places, which is exactly an integer number of
//! femto-dollars (1e-15 USD) per token: `$2.50 / 1M tokens` = 2,500,000,000
//! fUSD per token. Costs are sums of `tokens × fUSD per token` in `u128` and
//! therefore exact; they are rounded once, where a person reads them (the
//! ledger's micro-dollars, the exported dollars).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::config::yaml::Finding;
use crate::model::Timestamp;

/// The pricing file shipped with bellwether, used unless `llm.pricing_file`
/// names another.
pub const DEFAULT_PRICING: &str = include_str!("../../exporters/llm-pricing.yaml");

/// Femto-dollars (1e-15 USD) in one micro-dollar.
pub const FEMTO_PER_MICRO: u128 = 1_000_000_000;
/// Femto-dollars in one dollar.
pub const FEMTO_PER_USD: u128 = 1_000_000_000_000_000;

/// A price in femto-dollars per token, parsed exactly from the decimal
/// dollars-per-million-tokens written in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(pub u64);

impl Price {
    /// Parses `2.50`, `0.075`, `15` (dollars per 1M tokens): digits, an
    /// optional `.` and up to 9 more digits. No sign, no exponent.
    pub fn parse(text: &str) -> Result<Price, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!("invalid price {text:?}: {why}; write decimal US dollars per 1M tokens such as 2.50")
        };
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(bad("empty"));
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("only digits and one `.` are allowed"));
        }
        if frac.len() > 9 {
            return Err(bad("more than 9 decimal places"));
        }
        if whole.len() > 6 {
            return Err(bad("over 999999 dollars per 1M tokens"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("not a number"))?
        };
        let mut frac_value: u64 = 0;
        for i in 0..9 {
            let digit = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
            frac_value = frac_value * 10 + digit;
        }
        Ok(Price(whole * 1_000_000_000 + frac_value))
    }
}

impl fmt::Display for Price {
    /// Dollars per 1M tokens, without trailing zeros: `2.5`, `0.075`, `15`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::values::deserialize_parsed(
            d,
            "a price in US dollars per 1M tokens",
            Price::parse,
        )
    }
}

/// The prices of one model over one span of time (or above an input size).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: Price,
    pub output: Price,
    /// Cache reads; `None` prices them as input.
    pub cache_read: Option<Price>,
    /// Cache writes with a 5-minute lifetime (the default write); `None`
    /// prices them as input (OpenAI, DeepSeek and Gemini bill no write premium).
    pub cache_write_5m: Option<Price>,
    /// Cache writes with a 1-hour lifetime; `None` prices them as 5-minute writes.
    pub cache_write_1h: Option<Price>,
}

/// Token counts of one request in the OpenTelemetry convention: cache reads
/// and writes are parts of `input`, reasoning is part of `output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    /// All cache writes, 1-hour ones included.
    pub cache_write: u64,
    /// The part of `cache_write` written with a 1-hour lifetime.
    pub cache_write_1h: u64,
    pub reasoning: u64,
}

impl Tokens {
    /// Normalises counts reported in a provider's own convention to the
    /// OpenTelemetry one. Providers whose `input` excludes cached tokens
    /// (Anthropic's `input_tokens`) get the cache reads and writes added.
    pub fn from_provider_convention(mut self, cache_in_input: bool) -> Tokens {
        if !cache_in_input {
            self.input = self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_write);
        }
        self
    }
}

impl Rates {
    /// Cost in femto-dollars of `tokens` (OpenTelemetry convention):
    /// `(input − cache_read − cache_write) × input + cache_read × cache_read +
    /// cache_write × cache_write + output × output`. Reasoning tokens are
    /// inside `output` and are not added again. Inconsistent counts (cache
    /// larger than input) are clamped, not wrapped; the API refuses them first.
    pub fn cost(&self, tokens: &Tokens) -> u128 {
        let uncached = tokens
            .input
            .saturating_sub(tokens.cache_read)
            .saturating_sub(tokens.cache_write);
        let write_1h = tokens.cache_write_1h.min(tokens.cache_write);
        let write_5m = tokens.cache_write - write_1h;
        let price_5m = self.cache_write_5m.unwrap_or(self.input);
        let price_1h = self.cache_write_1h.unwrap_or(price_5m);
        let term = |n: u64, p: Price| u128::from(n) * u128::from(p.0);
        term(uncached, self.input)
            + term(tokens.cache_read, self.cache_read.unwrap_or(self.input))
            + term(write_5m, price_5m)
            + term(write_1h, price_1h)
            + term(tokens.output, self.output)
    }
}

/// One dated price of a model: base rates and cliff tiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatedPrice {
    /// Milliseconds since the epoch from which this price applies (UTC
    /// midnight of `effective_from`); `i64::MIN` when not written.
    pub effective_from: Timestamp,
    pub base: Rates,
    /// Sorted by `above_input_tokens`, ascending.
    pub tiers: Vec<(u64, Rates)>,
}

impl DatedPrice {
    /// The rates for a request of `input` tokens: the highest tier whose
    /// threshold the request exceeds prices the whole request.
    pub fn rates_for(&self, input: u64) -> &Rates {
        self.tiers
            .iter()
            .rev()
            .find(|(above, _)| input > *above)
            .map_or(&self.base, |(_, rates)| rates)
    }
}

/// How an entry matches a name (a provider or a model).
#[derive(Clone, Debug)]
pub enum NameMatch {
    Any,
    Exact(String),
    Prefix(String),
    Regex(regex::Regex),
}

impl NameMatch {
    fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Any => true,
            NameMatch::Exact(e) => e == name,
            NameMatch::Prefix(p) => name.starts_with(p.as_str()),
            NameMatch::Regex(r) => r.is_match(name),
        }
    }

    /// Exact beats prefix (longer first) beats regex beats any.
    fn rank(&self) -> (u8, usize) {
        match self {
            NameMatch::Exact(_) => (3, 0),
            NameMatch::Prefix(p) => (2, p.len()),
            NameMatch::Regex(_) => (1, 0),
            NameMatch::Any => (0, 0),
        }
    }
}

/// A model entry of the table, checked.
#[derive(Clone, Debug)]
pub struct ModelPrices {
    pub provider: NameMatch,
    pub model: NameMatch,
    /// Sorted by `effective_from`, ascending.
    pub prices: Vec<DatedPrice>,
}

impl ModelPrices {
    /// The price in force at `t`: the last one whose `effective_from` is not
    /// after `t`. `None` when `t` is before the first one.
    pub fn price_at(&self, t: Timestamp) -> Option<&DatedPrice> {
        self.prices.iter().rev().find(|p| p.effective_from <= t)
    }
}

/// A provider's settings.
#[derive(Clone, Debug, Default)]
pub struct ProviderInfo {
    /// Whether the provider's own API counts cached tokens inside its input
    /// count (OpenAI, Gemini, DeepSeek: yes; Anthropic: no).
    pub cache_in_input: bool,
}

/// The checked pricing table.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    /// Canonical provider name → settings.
    pub providers: HashMap<String, ProviderInfo>,
    /// Alias (lowercase) → canonical provider name.
    aliases: HashMap<String, String>,
    pub models: Vec<ModelPrices>,
}

/// What pricing a request gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priced {
    /// Femto-dollars from the table.
    Table(u128),
    /// Femto-dollars the caller reported (`cost_usd`), which wins over the table.
    Reported(u128),
    /// No price for this model at this time.
    Unpriced,
}

impl Priced {
    pub fn femto(self) -> Option<u128> {
        match self {
            Priced::Table(f) | Priced::Reported(f) => Some(f),
            Priced::Unpriced => None,
        }
    }
}

/// Femto-dollars rounded to the nearest micro-dollar, halves up.
pub fn femto_to_micro(femto: u128) -> i64 {
    let micro = (femto + FEMTO_PER_MICRO / 2) / FEMTO_PER_MICRO;
    i64::try_from(micro).unwrap_or(i64::MAX)
}

/// Dollars (as sent in `cost_usd`) to femto-dollars, rounded to the nearest
/// femto-dollar. `None` for a negative, non-finite or absurd (≥ $1e9) value.
pub fn usd_to_femto(usd: f64) -> Option<u128> {
    if !usd.is_finite() || !(0.0..1e9).contains(&usd) {
        return None;
    }
    // 1e9 × 1e15 = 1e24 < 2^80: exact enough for an f64 product, and within u128.
    Some((usd * 1e15).round() as u128)
}

impl PriceTable {
    /// The canonical name of a provider as a record names it: lowercased,
    /// then mapped through the aliases of the `providers` section.
    pub fn canonical_provider(&self, provider: &str) -> String {
        let lower = provider.to_ascii_lowercase();
        match self.aliases.get(&lower) {
            Some(name) => name.clone(),
            None => lower,
        }
    }

    /// Whether the (canonical) provider's API counts cached tokens inside input.
    /// Unknown providers are assumed to follow the OpenTelemetry convention.
    pub fn cache_in_input(&self, provider: &str) -> bool {
        self.providers
            .get(provider)
            .is_none_or(|p| p.cache_in_input)
    }

    /// The best entry for a (canonical) provider and model: among the entries
    /// that match both, the one whose model match ranks highest (exact, then
    /// the longest prefix, then a regex), then whose provider match does;
    /// the first in the file among equals.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&ModelPrices> {
        self.lookup_index(provider, model).map(|i| &self.models[i])
    }

    /// [`Self::lookup`], as an index into `models` (for callers that cache it).
    pub fn lookup_index(&self, provider: &str, model: &str) -> Option<usize> {
        type Rank = ((u8, usize), (u8, usize));
        let mut best: Option<(usize, Rank)> = None;
        for (i, entry) in self.models.iter().enumerate() {
            if !entry.provider.matches(provider) || !entry.model.matches(model) {
                continue;
            }
            let rank = (entry.model.rank(), entry.provider.rank());
            if best.as_ref().is_none_or(|(_, r)| rank > *r) {
                best = Some((i, rank));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Prices one request at time `t`. A reported cost wins; otherwise the
    /// table's price in force at `t`, with the tier the input size selects.
    pub fn price(
        &self,
        provider: &str,
        model: &str,
        t: Timestamp,
        tokens: &Tokens,
        reported_femto: Option<u128>,
    ) -> Priced {
        if let Some(femto) = reported_femto {
            return Priced::Reported(femto);
        }
        match self.lookup(provider, model).and_then(|e| e.price_at(t)) {
            Some(price) => Priced::Table(price.rates_for(tokens.input).cost(tokens)),
            None => Priced::Unpriced,
        }
    }

    /// Parses and checks a pricing file; `origin` names it in the errors,
    /// which are rendered `origin:line:col: key.path: message`, all at once.
    pub fn parse(text: &str, origin: &str) -> Result<PriceTable, Vec<String>> {
        let (parsed, mut findings) = crate::config::parse_document::<PricingFile>(text);
        let table = parsed.map(|(file, root)| check(file, &root, &mut findings));
        match table {
            Some(table) if findings.is_empty() => Ok(table),
            _ => {
                if findings.is_empty() {
                    findings.push(Finding {
                        pos: None,
                        path: String::new(),
                        message: "not a pricing file (expected a mapping with `models`)".into(),
                    });
                }
                findings.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
                findings.dedup();
                Err(findings.iter().map(|f| f.render(origin)).collect())
            }
        }
    }

    /// The default table, compiled into the binary.
    pub fn default_table() -> PriceTable {
        PriceTable::parse(DEFAULT_PRICING, "exporters/llm-pricing.yaml")
            .expect("the shipped pricing file is checked by a unit test")
    }
}

// ---- the file format -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingFile {
    #[serde(default)]
    providers: Vec<ProviderEntry>,
    models: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    name: String,
    /// Other names records use for this provider (OpenTelemetry's
    /// `gen_ai.provider.name` and the older `gen_ai.system` values).
    #[serde(default)]
    aliases: Vec<String>,
    /// Whether the provider's API counts cached tokens inside input.
    cache_in_input: bool,
    /// Where the provider's prices come from (a URL); informational.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    provider: Option<String>,
    provider_prefix: Option<String>,
    provider_regex: Option<String>,
    model: Option<String>,
    model_prefix: Option<String>,
    model_regex: Option<String>,
    /// Where and when the price was read; informational.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    prices: Vec<PriceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    effective_from: Option<String>,
    input: Price,
    output: Price,
    cache_read: Option<Price>,
    cache_write_5m: Option<Price>,
    cache_write_1h: Option<Price>,
    #[serde(default)]
    tiers: Vec<TierEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierEntry {
    above_input_tokens: u64,
    input: Price,
    output: Price,
    cache_read: Option<Price>,
    cache_write_5m: Option<Price>,
    cache_write_1h: Option<Price>,
}

/// Parses `YYYY-MM-DD` (UTC midnight) to Unix milliseconds.
pub fn parse_date(text: &str) -> Result<Timestamp, String> {
    let ok = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let parsed = ok
        .then(|| crate::api::prometheus::parse_time(&format!("{text}T00:00:00Z")).ok())
        .flatten();
    parsed.ok_or_else(|| format!("invalid date {text:?}; expected YYYY-MM-DD such as 2025-06-01"))
}

struct Checker<'a> {
    root: &'a crate::config::yaml::Node,
    findings: &'a mut Vec<Finding>,
}

impl Checker<'_> {
    /// Reports `message` at the node `steps` lead to, or at the deepest
    /// written node on the way (a key left out is reported at its parent).
    fn error(&mut self, steps: &[Step<'_>], message: String) {
        let mut node = self.root;
        for step in steps {
            let next = match step {
                Step::Key(k) => node.get(k),
                Step::Index(i) => match &node.kind {
                    crate::config::yaml::Kind::Seq(items) => items.get(*i),
                    _ => None,
                },
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        self.findings.push(Finding {
            pos: Some(node.pos),
            path: node.path.clone(),
            message,
        });
    }
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn name_match(
    cx: &mut Checker<'_>,
    at: &[Step<'_>],
    what: &str,
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<String>,
) -> Option<NameMatch> {
    let given = [exact.is_some(), prefix.is_some(), regex.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given > 1 {
        cx.error(
            at,
            format!("at most one of {what}, {what}_prefix and {what}_regex may be set"),
        );
        return None;
    }
    if let Some(e) = exact {
        return Some(NameMatch::Exact(e));
    }
    if let Some(p) = prefix {
        return Some(NameMatch::Prefix(p));
    }
    if let Some(r) = regex {
        // Anchored at both ends, as Prometheus's label matchers are.
        return match regex::Regex::new(&format!("^(?:{r})$")) {
            Ok(re) => Some(NameMatch::Regex(re)),
            Err(e) => {
                let mut steps: Vec<Step<'_>> = at
                    .iter()
                    .map(|s| match s {
                        Step::Key(k) => Step::Key(k),
                        Step::Index(i) => Step::Index(*i),
                    })
                    .collect();
                let key = format!("{what}_regex");
                steps.push(Step::Key(&key));
                let message = e.to_string().replace('\n', " ");
                cx.error(&steps, format!("invalid regex {r:?}: {message}"));
                None
            }
        };
    }
    Some(NameMatch::Any)
}

fn rates(
    input: Price,
    output: Price,
    cache_read: Option<Price>,
    cache_write_5m: Option<Price>,
    cache_write_1h: Option<Price>,
) -> Rates {
    Rates {
        input,
        output,
        cache_read,
        cache_write_5m,
        cache_write_1h,
    }
}

fn check(
    file: PricingFile,
    root: &crate::config::yaml::Node,
    findings: &mut Vec<Finding>,
) -> PriceTable {
    let mut cx = Checker { root, findings };
    let mut table = PriceTable::default();
    for (i, provider) in file.providers.into_iter().enumerate() {
        let at = [Step::Key("providers"), Step::Index(i)];
        let name = provider.name.to_ascii_lowercase();
        if name.is_empty() {
            cx.error(&at, "provider `name` must not be empty".into());
            continue;
        }
        if table.providers.contains_key(&name) || table.aliases.contains_key(&name) {
            cx.error(&at, format!("provider {name:?} is listed twice"));
            continue;
        }
        for alias in provider.aliases {
            let alias = alias.to_ascii_lowercase();
            if table.aliases.contains_key(&alias) || table.providers.contains_key(&alias) {
                cx.error(&at, format!("alias {alias:?} is used twice"));
            }
            table.aliases.insert(alias, name.clone());
        }
        table.providers.insert(
            name,
            ProviderInfo {
                cache_in_input: provider.cache_in_input,
            },
        );
    }
    for (i, entry) in file.models.into_iter().enumerate() {
        let at = [Step::Key("models"), Step::Index(i)];
        let provider = name_match(
            &mut cx,
            &at,
            "provider",
            entry.provider.map(|p| p.to_ascii_lowercase()),
            entry.provider_prefix.map(|p| p.to_ascii_lowercase()),
            entry.provider_regex,
        );
        let model = name_match(
            &mut cx,
            &at,
            "model",
            entry.model,
            entry.model_prefix,
            entry.model_regex,
        );
        if matches!(model, Some(NameMatch::Any)) {
            cx.error(
                &at,
                "one of model, model_prefix or model_regex is required".into(),
            );
            continue;
        }
        let prices_failed = {
            let prefix = format!("models[{i}].prices");
            cx.findings.iter().any(|f| f.path.starts_with(&prefix))
        };
        if entry.prices.is_empty() && !prices_failed {
            cx.error(
                &[Step::Key("models"), Step::Index(i), Step::Key("prices")],
                "at least one price is required".into(),
            );
        }
        let mut prices = Vec::new();
        for (j, price) in entry.prices.into_iter().enumerate() {
            let at = [
                Step::Key("models"),
                Step::Index(i),
                Step::Key("prices"),
                Step::Index(j),
            ];
            let effective_from = match &price.effective_from {
                None => i64::MIN,
                Some(text) => match parse_date(text) {
                    Ok(t) => t,
                    Err(e) => {
                        cx.error(
                            &[
                                Step::Key("models"),
                                Step::Index(i),
                                Step::Key("prices"),
                                Step::Index(j),
                                Step::Key("effective_from"),
                            ],
                            e,
                        );
                        continue;
                    }
                },
            };
            if prices
                .iter()
                .any(|p: &DatedPrice| p.effective_from == effective_from)
            {
                cx.error(
                    &at,
                    "two prices with the same effective_from; each dated price needs its own date"
                        .into(),
                );
                continue;
            }
            let mut tiers = Vec::new();
            for (k, tier) in price.tiers.into_iter().enumerate() {
                if tiers
                    .iter()
                    .any(|(above, _)| *above == tier.above_input_tokens)
                {
                    cx.error(
                        &[
                            Step::Key("models"),
                            Step::Index(i),
                            Step::Key("prices"),
                            Step::Index(j),
                            Step::Key("tiers"),
                            Step::Index(k),
                        ],
                        format!("two tiers above {} input tokens", tier.above_input_tokens),
                    );
                    continue;
                }
                tiers.push((
                    tier.above_input_tokens,
                    rates(
                        tier.input,
                        tier.output,
                        tier.cache_read,
                        tier.cache_write_5m,
                        tier.cache_write_1h,
                    ),
                ));
            }
            tiers.sort_by_key(|(above, _)| *above);
            prices.push(DatedPrice {
                effective_from,
                base: rates(
                    price.input,
                    price.output,
                    price.cache_read,
                    price.cache_write_5m,
                    price.cache_write_1h,
                ),
                tiers,
            });
        }
        prices.sort_by_key(|p| p.effective_from);
        if let (Some(provider), Some(model)) = (provider, model) {
            table.models.push(ModelPrices {
                provider,
                model,
                prices,
            });
        }
    }
    table
}

#[cfg(test)]
mod tests;
