//! `bellwether pricing import litellm FILE`: LiteLLM's
//! `model_prices_and_context_window.json` → bellwether's pricing format.
//!
//! LiteLLM writes prices as floating-point dollars per token (`2.5e-06`);
//! ours are exact decimals per 1M tokens. The conversion works on the float's
//! shortest decimal text (Rust prints the shortest string that reads back as
//! the same float, as JSON writers do), moving the decimal point six places,
//! so `2.5e-06` becomes exactly `2.5` with no binary rounding. A price with
//! more than 9 decimal places per 1M tokens is rounded half up to 9.
//!
//! Read from each entry: `litellm_provider`, `input_cost_per_token`,
//! `output_cost_per_token`, `cache_read_input_token_cost`,
//! `cache_creation_input_token_cost` (a 5-minute write),
//! `cache_creation_input_token_cost_above_1hr`, and the tiered
//! `<price>_above_<N>k_tokens` keys (a cliff tier over N×1000 input tokens;
//! a price a tier does not name is the base price). Entries without
//! `input_cost_per_token`, and the `sample_spec` entry, are skipped.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Map, Value};

/// The result of an import: the pricing file text and what was left out.
#[derive(Debug)]
pub struct Imported {
    pub yaml: String,
    pub models: usize,
    /// (model, why) of the entries left out.
    pub skipped: Vec<(String, String)>,
}

/// Dollars per token (as LiteLLM writes them) to exact decimal dollars per
/// 1M tokens, as text. `None` for a negative or non-finite number.
pub fn per_million(per_token: f64) -> Option<String> {
    if !per_token.is_finite() || per_token < 0.0 {
        return None;
    }
    if per_token == 0.0 {
        return Some("0".into());
    }
    // `{:e}` is the shortest round-trip form: "2.5e-6", "1e-5", "3.75e-6".
    let text = format!("{per_token:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{frac}");
    // value = 0.digits × 10^(point), with `point` the position of the decimal
    // point in `digits` after scaling by 1e6.
    let point = whole.len() as i32 + exponent + 6;
    let (int_part, frac_part) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let (int_part, frac_part) = round_to_nine(int_part, frac_part);
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    Some(if frac_part.is_empty() {
        int_part.to_string()
    } else {
        format!("{int_part}.{frac_part}")
    })
}

/// Rounds a decimal (integer and fraction digits) to 9 fraction digits, halves up.
fn round_to_nine(int_part: String, frac_part: String) -> (String, String) {
    if frac_part.len() <= 9 {
        return (int_part, frac_part);
    }
    let round_up = frac_part.as_bytes()[9] >= b'5';
    let mut digits: Vec<u8> = format!("{int_part}{}", &frac_part[..9]).into_bytes();
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - 9;
    let text = String::from_utf8(digits).expect("ASCII digits");
    (text[..split].to_string(), text[split..].to_string())
}

/// The four prices of a rate set, by LiteLLM key stem and our key.
const PRICE_KEYS: [(&str, &str); 5] = [
    ("input_cost_per_token", "input"),
    ("output_cost_per_token", "output"),
    ("cache_read_input_token_cost", "cache_read"),
    ("cache_creation_input_token_cost", "cache_write_5m"),
    (
        "cache_creation_input_token_cost_above_1hr",
        "cache_write_1h",
    ),
];

fn quote(text: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(text).expect("a string serializes")
}

/// Converts the JSON text of LiteLLM's price file.
pub fn import(json: &str) -> Result<Imported, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| format!("not a LiteLLM price file: {e}"))?;
    let Value::Object(entries) = root else {
        return Err("not a LiteLLM price file: expected a JSON object of models".into());
    };
    let tier_key = regex::Regex::new(r"^(.+)_above_(\d+)k_tokens$").expect("static regex");
    let mut out = String::new();
    let mut skipped = Vec::new();
    let mut models = 0;
    let mut seen: BTreeMap<(String, String), ()> = BTreeMap::new();
    for (name, entry) in &entries {
        if name == "sample_spec" {
            continue;
        }
        let Value::Object(entry) = entry else {
            skipped.push((name.clone(), "not an object".into()));
            continue;
        };
        let provider = match entry.get("litellm_provider").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => p.to_ascii_lowercase(),
            _ => {
                skipped.push((name.clone(), "no litellm_provider".into()));
                continue;
            }
        };
        let Some(base) = rates(entry, "") else {
            skipped.push((name.clone(), "no input_cost_per_token".into()));
            continue;
        };
        if let Some(bad) = base.iter().find(|(_, v)| v.is_none()) {
            skipped.push((name.clone(), format!("{} is not a price", bad.0)));
            continue;
        }
        // "gemini/gemini-2.5-pro" is gemini's "gemini-2.5-pro".
        let model = name
            .strip_prefix(&format!("{provider}/"))
            .unwrap_or(name)
            .to_string();
        if seen.insert((provider.clone(), model.clone()), ()).is_some() {
            skipped.push((name.clone(), "the same provider and model again".into()));
            continue;
        }
        let mut thresholds: Vec<u64> = entry
            .keys()
            .filter_map(|k| tier_key.captures(k))
            .filter_map(|c| c.get(2)?.as_str().parse::<u64>().ok())
            .collect();
        thresholds.sort_unstable();
        thresholds.dedup();
        models += 1;
        let _ = writeln!(out, "  - provider: {}", quote(&provider));
        let _ = writeln!(out, "    model: {}", quote(&model));
        let _ = writeln!(
            out,
            "    source: \"LiteLLM model_prices_and_context_window.json, key {}\"",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let _ = writeln!(out, "    prices:");
        let mut first = true;
        for (key, value) in &base {
            let prefix = if first { "      - " } else { "        " };
            first = false;
            let _ = writeln!(out, "{prefix}{key}: {}", value.as_deref().unwrap_or("0"));
        }
        if !thresholds.is_empty() {
            let _ = writeln!(out, "        tiers:");
            for k in thresholds {
                let suffix = format!("_above_{k}k_tokens");
                let tier = rates(entry, &suffix).unwrap_or_default();
                let _ = writeln!(out, "          - above_input_tokens: {}", k * 1000);
                for (key, base_value) in &base {
                    let value = tier
                        .iter()
                        .find(|(k, _)| k == key)
                        .and_then(|(_, v)| v.clone())
                        .or_else(|| base_value.clone());
                    if let Some(value) = value {
                        let _ = writeln!(out, "            {key}: {value}");
                    }
                }
            }
        }
    }
    let yaml = format!(
        "# Imported from LiteLLM's model_prices_and_context_window.json by\n\
         # `bellwether pricing import litellm`: {models} models, {} entries skipped.\n\
         # Prices are LiteLLM's, not checked against the providers' pages.\n\
         models:\n{out}",
        skipped.len()
    );
    // What we write must load.
    super::pricing::PriceTable::parse(&yaml, "<imported>").map_err(|errors| {
        format!(
            "the converted table does not load (a bug in the importer):\n{}",
            errors.join("\n")
        )
    })?;
    Ok(Imported {
        yaml,
        models,
        skipped,
    })
}

/// The rates of one entry with key `suffix` (`""` for the base rates):
/// (our key, price text) for each price present; `None` when `input` is
/// missing (for the base) or no price has the suffix (for a tier). A
/// present but unusable value is `Some((key, None))`.
type RateList = Vec<(&'static str, Option<String>)>;

fn rates(entry: &Map<String, Value>, suffix: &str) -> Option<RateList> {
    let mut list = Vec::new();
    for (litellm, ours) in PRICE_KEYS {
        // The 1-hour write key has no tiered form in LiteLLM.
        if !suffix.is_empty() && ours == "cache_write_1h" {
            continue;
        }
        let Some(value) = entry.get(&format!("{litellm}{suffix}")) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        list.push((ours, value.as_f64().and_then(per_million)));
    }
    let has_input = list.iter().any(|(k, _)| *k == "input");
    if suffix.is_empty() {
        if !has_input {
            return None;
        }
        if !list.iter().any(|(k, _)| *k == "output") {
            list.insert(1, ("output", Some("0".into())));
        }
    } else if list.is_empty() {
        return None;
    }
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::pricing::{femto_to_micro, PriceTable, Tokens};

    #[test]
    fn float_per_token_prices_become_exact_decimals() {
        assert_eq!(per_million(2.5e-6).as_deref(), Some("2.5"));
        assert_eq!(per_million(1e-5).as_deref(), Some("10"));
        assert_eq!(per_million(3.75e-6).as_deref(), Some("3.75"));
        assert_eq!(per_million(7.5e-8).as_deref(), Some("0.075"));
        assert_eq!(per_million(1.25e-7).as_deref(), Some("0.125"));
        assert_eq!(per_million(0.00015).as_deref(), Some("150"));
        assert_eq!(per_million(0.0).as_deref(), Some("0"));
        assert_eq!(per_million(1.234567891e-12).as_deref(), Some("0.000001235"));
        assert_eq!(per_million(9.9999999999e-7).as_deref(), Some("1"));
        assert_eq!(per_million(-1e-6), None);
    }

    #[test]
    fn the_fixture_imports_and_prices_like_the_shipped_table() {
        let imported =
            import(include_str!("testdata/litellm_model_prices.json")).expect("imported");
        let table = PriceTable::parse(&imported.yaml, "imported").expect("loads");
        assert_eq!(imported.models, table.models.len());
        let skipped: Vec<&str> = imported.skipped.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            skipped,
            ["dall-e-3", "text-embedding-broken"],
            "{:?}",
            imported.skipped
        );
        let shipped = PriceTable::default_table();
        let cases: [(&str, &str, &str, Tokens); 4] = [
            (
                "openai",
                "openai",
                "gpt-4o",
                Tokens {
                    input: 10_000,
                    cache_read: 8_000,
                    output: 500,
                    ..Tokens::default()
                },
            ),
            (
                "anthropic",
                "anthropic",
                "claude-sonnet-4-5-20250929",
                Tokens {
                    input: 102_050,
                    cache_read: 100_000,
                    cache_write: 2_000,
                    output: 1_000,
                    ..Tokens::default()
                },
            ),
            (
                "gemini",
                "gemini",
                "gemini-2.5-pro",
                Tokens {
                    input: 250_000,
                    output: 2_000,
                    ..Tokens::default()
                },
            ),
            (
                "anthropic",
                "anthropic",
                "claude-sonnet-4-5-20250929",
                Tokens {
                    input: 250_000,
                    output: 1_000,
                    ..Tokens::default()
                },
            ),
        ];
        let now = crate::model::now_millis();
        for (ours, theirs, model, tokens) in cases {
            let a = shipped
                .price(ours, model, now, &tokens, None)
                .femto()
                .map(femto_to_micro);
            let b = table
                .price(theirs, model, now, &tokens, None)
                .femto()
                .map(femto_to_micro);
            assert!(a.is_some(), "{model} has a shipped price");
            assert_eq!(a, b, "{model} {tokens:?}");
        }
    }

    #[test]
    fn not_a_price_file() {
        assert!(import("[1]").is_err());
        assert!(import("{").is_err());
        let empty = import("{}").expect("empty object");
        assert_eq!(empty.models, 0);
    }
}
