//! Configuration: one YAML file, parsed into typed structs, validated into
//! ready values, with `file:line:col: key.path: message` errors.
//!
//! SKELETON NOTE: `load` is a minimal loader; validation with positions, `${ENV}`
//! expansion and the embedded default config are filled in by the config work.

mod types;
pub mod values;

pub use types::*;

use std::path::Path;

/// The config the daemon runs with when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.yml");

/// Every problem found in a config file, each locating itself.
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ConfigError {
    pub errors: Vec<String>,
}

/// Reads, parses and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        errors: vec![format!("{}: cannot read config file: {e}", path.display())],
    })?;
    load_str(&text, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in error messages.
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    serde_saphyr::from_str::<Config>(text).map_err(|e| ConfigError {
        errors: vec![format!("{origin}: {e}")],
    })
}
