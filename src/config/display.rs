//! The config as `/api/v1/status/config` shows it: the loaded text, parsed
//! and written out again as plain block YAML with every secret replaced by
//! `<secret>`, as Prometheus shows its config.
//!
//! Re-emitting the parsed tree (rather than editing the text) is what makes
//! masking reliable: flow mappings (`basic_auth: {password: x}`), block
//! scalars and aliases all come out as one scalar per secret key. The price:
//! comments and the original quoting style are not kept. Unlike Prometheus,
//! defaults are not filled in — the YAML is what the file says, with
//! `${VAR}` references shown unexpanded (so values from the environment never
//! appear either).

use super::yaml::{self, Kind, Node};

/// Keys whose values are secrets wherever they appear: the fields of type
/// [`super::values::Secret`]. Masking by key name may also mask a label that
/// happens to be called `password`; showing less is the safe mistake.
const SECRET_KEYS: &[&str] = &[
    "password",
    "credentials",
    "bearer_token",
    "write_token",
    // A probe's HTTP headers often carry an `Authorization` value.
    "headers",
    // The `notify` section's secrets (receiver keys and webhook URLs).
    "routing_key",
    "service_key",
    "api_url",
    "slack_api_url",
    "auth_password",
    "auth_secret",
    "smtp_auth_password",
    "smtp_auth_secret",
    "opsgenie_api_key",
    "wechat_api_secret",
    "victorops_api_key",
    "api_key",
    "api_secret",
];

const MASK: &str = "<secret>";

/// The config text re-emitted with secrets masked. Text that does not parse
/// or has findings (it cannot have been loaded) yields an empty string rather than the raw text.
pub fn masked_yaml(text: &str) -> String {
    let (Some(root), findings) = yaml::parse(text) else {
        return String::new();
    };
    if !findings.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    match &root.kind {
        Kind::Map(_) | Kind::Seq(_) => write_block(&root, 0, &mut out),
        _ => {
            write_inline(&root, false, &mut out);
            out.push('\n');
        }
    }
    out
}

/// One top-level section of the config text (such as `notify`) re-emitted
/// with secrets masked, as a document of its own; empty when the section is
/// absent, not a mapping, or the text has findings.
pub fn masked_yaml_section(text: &str, key: &str) -> String {
    let (Some(root), findings) = yaml::parse(text) else {
        return String::new();
    };
    if !findings.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    if let Some(section) = root.get(key) {
        if matches!(&section.kind, Kind::Map(_)) {
            write_block(section, 0, &mut out);
        }
    }
    out
}

/// Writes a mapping or sequence at `indent`, each entry on its own line.
/// Sequence items sit at their key's indentation, as Prometheus writes them.
fn write_block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match &node.kind {
        Kind::Map(entries) => {
            for entry in entries {
                out.push_str(&pad);
                write_entry(&entry.key, &entry.value, indent, out);
            }
        }
        Kind::Seq(items) => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match &item.kind {
                    Kind::Map(entries) if !entries.is_empty() => {
                        // The first entry follows the dash; the rest align with it.
                        let inner = indent + 2;
                        for (i, entry) in entries.iter().enumerate() {
                            if i > 0 {
                                out.push_str(&" ".repeat(inner));
                            }
                            write_entry(&entry.key, &entry.value, inner, out);
                        }
                    }
                    Kind::Seq(inner) if !inner.is_empty() => {
                        out.push('\n');
                        write_block(item, indent + 2, out);
                    }
                    _ => {
                        write_inline(item, false, out);
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&pad);
            write_inline(node, false, out);
            out.push('\n');
        }
    }
}

/// `key: value` for scalars and empty collections, else `key:` and a block below.
fn write_entry(key: &str, value: &Node, indent: usize, out: &mut String) {
    write_scalar(key, true, out);
    out.push(':');
    let secret = SECRET_KEYS.contains(&key);
    match &value.kind {
        Kind::Map(entries) if !entries.is_empty() && !secret => {
            out.push('\n');
            write_block(value, indent + 2, out);
        }
        Kind::Seq(items) if !items.is_empty() && !secret => {
            out.push('\n');
            write_block(value, indent, out);
        }
        Kind::Null => out.push('\n'),
        _ => {
            out.push(' ');
            write_inline(value, secret, out);
            out.push('\n');
        }
    }
}

fn write_inline(node: &Node, secret: bool, out: &mut String) {
    if secret {
        out.push_str(MASK);
        return;
    }
    match &node.kind {
        Kind::Null => out.push_str("null"),
        Kind::Scalar { text, plain } => write_scalar(text, *plain, out),
        Kind::Map(_) => out.push_str("{}"),
        Kind::Seq(_) => out.push_str("[]"),
    }
}

/// A plain scalar stays plain when it reads back the same in block context;
/// anything else (and every quoted scalar, so `'15'` stays a string) is
/// written double-quoted with JSON's escapes, which YAML reads alike.
fn write_scalar(text: &str, plain: bool, out: &mut String) {
    if plain && is_safe_plain(text) {
        out.push_str(text);
    } else {
        out.push_str(&serde_json::Value::String(text.to_string()).to_string());
    }
}

fn is_safe_plain(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let starts_ok = !"-?:,[]{}#&*!|>'\"%@`".contains(first) || {
        // `-5`, `:x` style starts are fine when followed by a non-space.
        matches!(first, '-' | '?' | ':') && text.chars().nth(1).is_some_and(|c| c != ' ')
    };
    starts_ok
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains(": ")
        && !text.ends_with(':')
        && !text.contains(" #")
        && !text.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::masked_yaml;

    #[test]
    fn secrets_are_masked_in_every_syntax() {
        let text = r#"# a comment
global:
  scrape_interval: 15s # trailing comment
scrape_configs:
  - job_name: node
    basic_auth: {username: u, password: "hunter2"}
    static_configs:
      - targets: ['a:9100', "b:9100"]
        labels:
          env: "15"
  - job_name: api
    authorization:
      credentials: |
        multi
        line
    bearer_token: &tok plain-token
web:
  write_token: *tok
  listen_address: "0.0.0.0:9090"
"#;
        assert_eq!(
            masked_yaml(text),
            r#"global:
  scrape_interval: 15s
scrape_configs:
- job_name: node
  basic_auth:
    username: u
    password: <secret>
  static_configs:
  - targets:
    - "a:9100"
    - "b:9100"
    labels:
      env: "15"
- job_name: api
  authorization:
    credentials: <secret>
  bearer_token: <secret>
web:
  write_token: <secret>
  listen_address: "0.0.0.0:9090"
"#
        );
        assert!(!masked_yaml(text).contains("hunter2"));
        assert!(!masked_yaml(text).contains("plain-token"));
        assert!(!masked_yaml(text).contains("multi"));
    }

    #[test]
    fn notify_receiver_secrets_are_masked() {
        let text = "notify:\n  global:\n    slack_api_url: https://hooks.slack.com/T/B/secret1\n    smtp_auth_password: secret2\n  receivers:\n    - name: p\n      pagerduty_configs: [{routing_key: secret3, service_key: secret4}]\n      slack_configs: [{api_url: secret5, channel: '#c'}]\n      email_configs: [{to: a@b, auth_password: secret6, auth_secret: secret7}]\n";
        let masked = masked_yaml(text);
        for n in 1..=7 {
            assert!(!masked.contains(&format!("secret{n}")), "{masked}");
        }
        assert!(masked.contains("channel: \"#c\""), "{masked}");
    }

    #[test]
    fn awkward_scalars_are_quoted_and_empty_values_kept() {
        let text = "a: 'x: y'\nb:\nc: []\nd: {}\ne: '- x'\nf: \"\"\n";
        assert_eq!(
            masked_yaml(text),
            "a: \"x: y\"\nb:\nc: []\nd: {}\ne: \"- x\"\nf: \"\"\n"
        );
    }

    #[test]
    fn unparsable_text_shows_nothing() {
        assert_eq!(masked_yaml("a: [\npassword: x"), "");
    }
}
