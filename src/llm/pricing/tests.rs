//! Golden tests of the pricing table: each provider's counting convention,
//! cached and reasoning tokens, cliff tiers and dated prices, priced with the
//! shipped file. Expected costs are worked out by hand in the comments.

use super::*;

/// Unix milliseconds of a UTC date.
fn day(date: &str) -> Timestamp {
    parse_date(date).expect("test date")
}

fn micro(table: &PriceTable, provider: &str, model: &str, at: &str, tokens: Tokens) -> Option<i64> {
    let provider = table.canonical_provider(provider);
    table
        .price(&provider, model, day(at), &tokens, None)
        .femto()
        .map(femto_to_micro)
}

#[test]
fn prices_parse_exactly() {
    assert_eq!(Price::parse("2.50"), Ok(Price(2_500_000_000)));
    assert_eq!(Price::parse("0.075"), Ok(Price(75_000_000)));
    assert_eq!(Price::parse("15"), Ok(Price(15_000_000_000)));
    assert_eq!(Price::parse("0.000000001"), Ok(Price(1)));
    assert_eq!(Price::parse(".5"), Ok(Price(500_000_000)));
    for bad in [
        "",
        ".",
        "-1",
        "1e-3",
        "0.0000000001",
        "1.2.3",
        "NaN",
        "1 000",
        "1234567",
    ] {
        assert!(Price::parse(bad).is_err(), "{bad:?} was accepted");
    }
    assert_eq!(Price(2_500_000_000).to_string(), "2.5");
    assert_eq!(Price(75_000_000).to_string(), "0.075");
    assert_eq!(Price(15_000_000_000).to_string(), "15");
}

#[test]
fn the_shipped_table_loads_and_names_a_source_for_every_model() {
    let table = PriceTable::default_table();
    assert!(table.models.len() >= 30, "{} models", table.models.len());
    let entries = DEFAULT_PRICING.matches("\n  - provider:").count();
    let sources = DEFAULT_PRICING.matches("\n    source:").count();
    assert_eq!(entries, table.models.len());
    assert_eq!(
        sources,
        entries + table.providers.len(),
        "every provider and model entry names its source"
    );
}

/// OpenAI's usage: `prompt_tokens` 10,000 of which `cached_tokens` 8,000;
/// `completion_tokens` 500 of which `reasoning_tokens` 200. That is already
/// the OpenTelemetry convention. gpt-4o: 2,000 × $2.50 + 8,000 × $1.25 +
/// 500 × $10.00 per 1M = $0.005 + $0.010 + $0.005 = $0.020.
#[test]
fn openai_counts_cached_tokens_inside_prompt_tokens() {
    let table = PriceTable::default_table();
    assert!(table.cache_in_input("openai"));
    let native = Tokens {
        input: 10_000,
        cache_read: 8_000,
        output: 500,
        reasoning: 200,
        ..Tokens::default()
    };
    let tokens = native.from_provider_convention(table.cache_in_input("openai"));
    assert_eq!(tokens, native);
    assert_eq!(
        micro(&table, "openai", "gpt-4o", "2025-06-01", tokens),
        Some(20_000)
    );
    // The bug this guards against: cached tokens priced twice (as input and
    // as cache reads) would give $0.030.
}

/// Anthropic's usage: `input_tokens` 50 *excludes* `cache_read_input_tokens`
/// 100,000 and `cache_creation_input_tokens` 2,000; normalised input is
/// 102,050. claude-sonnet-4-5: 50 × $3 + 100,000 × $0.30 + 2,000 × $3.75 +
/// 1,000 × $15 per 1M = $0.00015 + $0.03 + $0.0075 + $0.015 = $0.05265.
#[test]
fn anthropic_input_excludes_cache_and_is_normalised() {
    let table = PriceTable::default_table();
    assert!(!table.cache_in_input("anthropic"));
    let native = Tokens {
        input: 50,
        cache_read: 100_000,
        cache_write: 2_000,
        output: 1_000,
        ..Tokens::default()
    };
    let tokens = native.from_provider_convention(false);
    assert_eq!(tokens.input, 102_050);
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "2025-11-01",
            tokens
        ),
        Some(52_650)
    );
    // Taken as if it were the OpenTelemetry convention, the counts are
    // inconsistent (cache > input) and the cache would be free: $0.0225.
}

/// 1-hour cache writes cost 2x input on Anthropic: 10,000 written for an hour
/// on claude-haiku-4-5 = 10,000 × $2 per 1M = $0.02; as 5-minute writes,
/// 10,000 × $1.25 = $0.0125.
#[test]
fn cache_write_lifetimes_have_their_own_prices() {
    let table = PriceTable::default_table();
    let mut tokens = Tokens {
        input: 10_000,
        cache_write: 10_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-haiku-4-5-20251001",
            "2025-11-01",
            tokens
        ),
        Some(12_500)
    );
    tokens.cache_write_1h = 10_000;
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-haiku-4-5-20251001",
            "2025-11-01",
            tokens
        ),
        Some(20_000)
    );
}

/// Reasoning tokens are inside output: o3 (after the June 2025 cut), 1,000
/// in, 5,000 out of which 4,000 reasoning: 1,000 × $2 + 5,000 × $8 = $0.042,
/// not $0.074 (reasoning counted twice).
#[test]
fn reasoning_tokens_are_not_counted_twice() {
    let table = PriceTable::default_table();
    let tokens = Tokens {
        input: 1_000,
        output: 5_000,
        reasoning: 4_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(&table, "openai", "o3", "2025-07-01", tokens),
        Some(42_000)
    );
}

/// Cliff tiers: over 200k input tokens the whole request is re-priced.
/// Gemini 2.5 Pro, 2,000 out: 150k in → 150,000 × $1.25 + 2,000 × $10 =
/// $0.2075; 250k in → 250,000 × $2.50 + 2,000 × $15 = $0.655; exactly 200k is
/// not over: 200,000 × $1.25 + $0.02 = $0.27.
#[test]
fn gemini_2_5_pro_reprices_the_whole_request_over_200k() {
    let table = PriceTable::default_table();
    let at = |input| Tokens {
        input,
        output: 2_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(
            &table,
            "gemini",
            "gemini-2.5-pro",
            "2025-11-01",
            at(150_000)
        ),
        Some(207_500)
    );
    assert_eq!(
        micro(
            &table,
            "gemini",
            "gemini-2.5-pro",
            "2025-11-01",
            at(250_000)
        ),
        Some(655_000)
    );
    assert_eq!(
        micro(
            &table,
            "gemini",
            "gemini-2.5-pro",
            "2025-11-01",
            at(200_000)
        ),
        Some(270_000)
    );
    // OpenTelemetry's provider names for Gemini are aliases.
    assert_eq!(
        micro(
            &table,
            "gcp.gemini",
            "gemini-2.5-pro",
            "2025-11-01",
            at(150_000)
        ),
        Some(207_500)
    );
}

/// Claude Sonnet 4.5 over 200k input tokens (cache reads included, as
/// Anthropic counts for the threshold): 150,000 cache read, 60,000 uncached
/// and 1,000 out take the long-context rates: 60,000 × $6 + 150,000 × $0.60 +
/// 1,000 × $22.50 = $0.36 + $0.09 + $0.0225 = $0.4725.
#[test]
fn claude_sonnet_long_context_tier_counts_cached_input() {
    let table = PriceTable::default_table();
    let native = Tokens {
        input: 60_000,
        cache_read: 150_000,
        output: 1_000,
        ..Tokens::default()
    };
    let tokens = native.from_provider_convention(false);
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-sonnet-4-20250514",
            "2025-11-01",
            tokens
        ),
        Some(472_500)
    );
}

/// Dated prices: o3 cost $10/$40 from its launch and $2/$8 from 2025-06-10;
/// DeepSeek's 2025-09-29 cut; before a model's first date it has no price.
#[test]
fn dated_prices_apply_from_their_day() {
    let table = PriceTable::default_table();
    let tokens = Tokens {
        input: 1_000,
        output: 5_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(&table, "openai", "o3", "2025-05-01", tokens),
        Some(210_000)
    );
    assert_eq!(
        micro(&table, "openai", "o3", "2025-06-09", tokens),
        Some(210_000)
    );
    assert_eq!(
        micro(&table, "openai", "o3-2025-04-16", "2025-06-10", tokens),
        Some(42_000)
    );
    assert_eq!(micro(&table, "openai", "o3", "2025-01-01", tokens), None);
    // DeepSeek, 1M in of which 600k cache hits, 100k out:
    // 2025-09-10: 400k × $0.56 + 600k × $0.07 + 100k × $1.68 = $0.434
    // 2025-10-01: 400k × $0.28 + 600k × $0.028 + 100k × $0.42 = $0.1708
    let tokens = Tokens {
        input: 1_000_000,
        cache_read: 600_000,
        output: 100_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(&table, "deepseek", "deepseek-chat", "2025-09-10", tokens),
        Some(434_000)
    );
    assert_eq!(
        micro(
            &table,
            "deepseek",
            "deepseek-reasoner",
            "2025-10-01",
            tokens
        ),
        Some(170_800)
    );
    // The gpt-4o alias moved to a cheaper snapshot on 2024-10-02.
    let small = Tokens {
        input: 1_000,
        output: 1_000,
        ..Tokens::default()
    };
    assert_eq!(
        micro(&table, "openai", "gpt-4o", "2024-09-01", small),
        Some(20_000)
    );
    assert_eq!(
        micro(&table, "openai", "gpt-4o", "2024-10-02", small),
        Some(12_500)
    );
}

#[test]
fn longest_prefix_and_exact_matches_win() {
    let table = PriceTable::default_table();
    let tokens = Tokens {
        input: 1_000_000,
        ..Tokens::default()
    };
    // claude-opus-4-5 ($5) is not claude-opus-4 ($15).
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-opus-4-5-20251101",
            "2025-12-01",
            tokens
        ),
        Some(5_000_000)
    );
    assert_eq!(
        micro(
            &table,
            "anthropic",
            "claude-opus-4-1-20250805",
            "2025-12-01",
            tokens
        ),
        Some(15_000_000)
    );
    // gpt-4o-mini is not gpt-4o; a regex is anchored at both ends.
    assert_eq!(
        micro(&table, "openai", "gpt-4o-mini", "2025-12-01", tokens),
        Some(150_000)
    );
    assert_eq!(
        micro(&table, "openai", "gpt-4o-mini-tts", "2025-12-01", tokens),
        None
    );
    // The same model under a provider without a price is unpriced.
    assert_eq!(micro(&table, "groq", "gpt-4o", "2025-12-01", tokens), None);
}

#[test]
fn a_reported_cost_wins_and_no_price_is_not_zero() {
    let table = PriceTable::default_table();
    let tokens = Tokens {
        input: 1_000,
        output: 1_000,
        ..Tokens::default()
    };
    let reported = usd_to_femto(0.5);
    assert_eq!(
        table.price("openai", "gpt-4o", day("2025-06-01"), &tokens, reported),
        Priced::Reported(500_000_000_000_000)
    );
    assert_eq!(
        table.price("openai", "gpt-9-preview", day("2025-06-01"), &tokens, None),
        Priced::Unpriced
    );
    // A reported cost prices even a model the table does not know.
    assert_eq!(
        table
            .price(
                "openai",
                "gpt-9-preview",
                day("2025-06-01"),
                &tokens,
                reported
            )
            .femto(),
        Some(500_000_000_000_000)
    );
    assert_eq!(usd_to_femto(-1.0), None);
    assert_eq!(usd_to_femto(f64::NAN), None);
}

/// Costs are exact integers until they are rounded: a million 10-token
/// gpt-5-nano requests cost exactly $0.50 (10 × $0.05 per 1M each), although
/// each one alone is 0.5 micro-dollars.
#[test]
fn tiny_costs_sum_exactly_and_round_half_up() {
    let table = PriceTable::default_table();
    let tokens = Tokens {
        input: 10,
        ..Tokens::default()
    };
    let one = table
        .price("openai", "gpt-5-nano", day("2025-10-01"), &tokens, None)
        .femto()
        .expect("priced");
    assert_eq!(one, 500_000_000);
    assert_eq!(femto_to_micro(one), 1);
    assert_eq!(femto_to_micro(one - 1), 0);
    assert_eq!(femto_to_micro(one * 1_000_000), 500_000);
}

#[test]
fn errors_are_positioned_and_all_reported() {
    let text = "\
providers:
  - name: openai
    cache_in_input: yes
models:
  - provider: openai
    model: a
    prices:
      - input: 2.5.0
        output: 1
  - provider: openai
    model: b
    model_regex: 'b'
    prices:
      - input: 1
        output: 1
  - provider: openai
    model_regex: '(unclosed'
    prices:
      - effective_from: 2025-13-01
        input: 1
        output: 1
        tiers:
          - above_input_tokens: 100
            input: 1
            outptu: 2
";
    let errors = PriceTable::parse(text, "p.yaml").expect_err("refused");
    let joined = errors.join("\n");
    for expected in [
        "p.yaml:8:16: models[0].prices[0].input: invalid price \"2.5.0\"",
        "p.yaml:10:5: models[1]: at most one of model, model_prefix and model_regex may be set",
        "p.yaml:17:18: models[2].model_regex: invalid regex \"(unclosed\"",
        "p.yaml:19:25: models[2].prices[0].effective_from: invalid date \"2025-13-01\"",
        "models[2].prices[0].tiers[0].outptu: unknown key",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
    assert!(errors.iter().all(|e| e.starts_with("p.yaml:")), "{joined}");
}

proptest::proptest! {
    /// Arbitrary text, and the shipped file with one byte changed: loaded or
    /// refused with positioned one-line errors, never a panic.
    #[test]
    fn pricing_files_never_panic(text in "\\PC{0,300}", at in 0usize..20_000, byte in proptest::num::u8::ANY) {
        for candidate in [text.clone(), {
            let mut bytes = DEFAULT_PRICING.as_bytes().to_vec();
            let i = at % bytes.len();
            bytes[i] = byte;
            String::from_utf8_lossy(&bytes).into_owned()
        }] {
            if let Err(errors) = PriceTable::parse(&candidate, "f.yaml") {
                proptest::prop_assert!(!errors.is_empty());
                for e in &errors {
                    proptest::prop_assert!(e.starts_with("f.yaml"), "{}", e);
                    proptest::prop_assert!(!e.contains('\n'), "{}", e);
                }
            }
        }
    }
}
