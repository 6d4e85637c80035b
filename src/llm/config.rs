//! The `llm` section of bellwether's config. Field docs here are the user
//! docs: keep docs/configuration.md and docs/llm.md in step with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::config::values::PromDuration;
use crate::config::yaml::{Finding, Node};

use super::pricing::PriceTable;

/// bellwether's own: LLM usage, pricing and the usage ledger (docs/llm.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// A pricing file replacing the shipped table (exporters/llm-pricing.yaml,
    /// compiled in). Relative to the config file. Re-read on every reload; a
    /// bad file refuses the config. Default none (the shipped table).
    pub pricing_file: Option<String>,
    /// How often the usage counters are written to the store as samples.
    /// Default 15s; must be greater than 0.
    pub interval: PromDuration,
    /// How often accepted usage is written to the ledger and the counters
    /// saved (both in one transaction in `llm.db`): a crash loses at most this
    /// much accepted usage. Default 1s; must be greater than 0.
    pub flush_interval: PromDuration,
    /// Distinct `org` label values kept on the series; further orgs are
    /// counted under `org="other"` (the ledger keeps the real name). Default 100.
    pub max_orgs: usize,
    /// Distinct `team` label values kept; then `team="other"`. Default 100.
    pub max_teams: usize,
    /// Distinct values kept for each other label a client chooses (`model`,
    /// `provider`, `status`, `agent`, `workflow`); then `other`. Default 1000.
    pub max_label_values: usize,
    /// Ledger rows older than this (by the request's time) are deleted.
    /// Default 30d; must be greater than 0.
    pub ledger_retention: PromDuration,
    /// A session with no event or usage record for this long stops counting
    /// in `user_sessions_active`. Default 30m; must be greater than 0.
    pub session_timeout: PromDuration,
    /// `llm_rate_limit_requests{scope="user"}` is exported for users with at
    /// least this many requests in the trailing hour. Default 50 (half the
    /// default rule's 100/h).
    pub rate_limit_user_floor: u64,
    /// As `rate_limit_user_floor`, for orgs. Default 500 (half of 1000/h).
    pub rate_limit_org_floor: u64,
    /// At most this many subjects per scope are exported (highest counts
    /// first). Default 100.
    pub rate_limit_max_subjects: usize,
    /// Spending limits per scope and period (`budget.rs`, docs/llm.md
    /// "Budgets"). Default none.
    pub budgets: Vec<super::budget::BudgetConfig>,
    /// The checked pricing table, filled in by the loader.
    #[serde(skip)]
    pub pricing: Option<Arc<PriceTable>>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            pricing_file: None,
            interval: PromDuration::from_secs(15),
            flush_interval: PromDuration::from_secs(1),
            max_orgs: 100,
            max_teams: 100,
            max_label_values: 1000,
            ledger_retention: PromDuration::from_secs(30 * 24 * 3600),
            session_timeout: PromDuration::from_secs(30 * 60),
            rate_limit_user_floor: 50,
            rate_limit_org_floor: 500,
            rate_limit_max_subjects: 100,
            budgets: Vec::new(),
            pricing: None,
        }
    }
}

impl LlmConfig {
    /// The pricing table in force: the loaded one, else the shipped one.
    pub fn price_table(&self) -> Arc<PriceTable> {
        self.pricing
            .clone()
            .unwrap_or_else(|| Arc::new(PriceTable::default_table()))
    }
}

/// Checks the section and loads its pricing file. `node` is the `llm` node
/// (absent when the section is not written); findings of the pricing file are
/// reported at `llm.pricing_file`, each naming the file's own line and column.
pub(crate) fn check_section(
    section: &mut LlmConfig,
    node: Option<&Node>,
    base_dir: Option<&Path>,
    findings: &mut Vec<Finding>,
) {
    let at = |key: &str, message: String| Finding {
        pos: node.and_then(|n| n.get(key).or(Some(n))).map(|n| n.pos),
        path: format!("llm.{key}"),
        message,
    };
    for (key, value) in [
        ("interval", section.interval),
        ("flush_interval", section.flush_interval),
        ("ledger_retention", section.ledger_retention),
        ("session_timeout", section.session_timeout),
    ] {
        if value.0.is_zero() {
            findings.push(at(key, format!("{key} must be greater than 0")));
        }
    }
    super::budget::check_budgets(
        &section.budgets,
        node.and_then(|n| n.get("budgets")),
        findings,
    );
    let table = match &section.pricing_file {
        None => PriceTable::default_table(),
        Some(file) => {
            let path = match base_dir {
                Some(dir) if Path::new(file).is_relative() => dir.join(file),
                _ => PathBuf::from(file),
            };
            match load_pricing_file(&path) {
                Ok(table) => {
                    section.pricing_file = Some(path.display().to_string());
                    table
                }
                Err(errors) => {
                    findings.extend(errors.into_iter().map(|e| at("pricing_file", e)));
                    return;
                }
            }
        }
    };
    section.pricing = Some(Arc::new(table));
}

/// Reads and checks a pricing file (`bellwether pricing check`); errors are
/// rendered `file:line:col: key.path: message`.
pub fn load_pricing_file(path: &Path) -> Result<PriceTable, Vec<String>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{origin}: cannot read pricing file: {e}")])?;
    PriceTable::parse(&text, &origin)
}
