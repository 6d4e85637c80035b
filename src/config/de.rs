//! A serde `Deserializer` over the positioned [`Node`] tree.
//!
//! Serde's derived code stops at the first error. To report every error, the
//! loader runs [`deserialize_all`]: deserialize, and on an error record it
//! (with the path and position of the node it happened at), remove that node
//! from the tree, and try again, until the rest deserializes. Removal lets
//! defaults stand in for the bad value, so what follows is still checked.
//!
//! Scalars are typed by what the target asks for, as go-yaml (Prometheus's
//! parser) does: any scalar can be a string; `yes`/`no`/`on`/`off` are booleans.

use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::keys;
use super::yaml::{join_key, Entry, Finding, Kind, Node, NodeId, Pos};

/// Where an error happened.
#[derive(Clone, Debug)]
pub(crate) struct At {
    id: NodeId,
    /// The error is about a mapping key (unknown key): remove the whole entry.
    key_of: bool,
    path: String,
    pos: Pos,
}

#[derive(Debug)]
pub(crate) enum DeErrorKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    Message(String),
}

#[derive(Debug)]
pub(crate) struct DeError {
    pub(crate) kind: DeErrorKind,
    at: Option<At>,
}

impl DeError {
    fn msg(message: impl Into<String>) -> DeError {
        DeError {
            kind: DeErrorKind::Message(message.into()),
            at: None,
        }
    }

    /// Attaches the innermost location: the first node to see the error wins.
    fn located(mut self, node: &Node) -> DeError {
        if self.at.is_none() {
            self.at = Some(At {
                id: node.id,
                key_of: false,
                path: node.path.clone(),
                pos: node.pos,
            });
        }
        self
    }

    fn message(&self) -> String {
        match &self.kind {
            DeErrorKind::UnknownField { field, expected } => {
                keys::unknown_key_message(field, expected)
            }
            DeErrorKind::MissingField(field) => format!("missing required key `{field}`"),
            DeErrorKind::Message(m) => m.clone(),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::msg(msg.to_string().replace('\n', " "))
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::msg(format!("expected {exp}, found {unexp}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            kind: DeErrorKind::UnknownField {
                field: field.to_string(),
                expected,
            },
            at: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            kind: DeErrorKind::MissingField(field),
            at: None,
        }
    }
}

/// Deserializes `T` from the tree, collecting every error (see module docs).
/// Returns `None` when even the root could not be read. The tree is left
/// without the nodes that failed, so it still describes what `T` holds.
pub(crate) fn deserialize_all<T: DeserializeOwned>(
    root: &mut Node,
    findings: &mut Vec<Finding>,
    mut removed: HashSet<(NodeId, String)>,
) -> Option<T> {
    // Each pass removes one node, so this ends. Each pass also deserializes
    // the tree again, so the cap keeps a file with thousands of bad values
    // from costing (values x tree) work; past it the rest is not reported.
    for _ in 0..MAX_PASSES {
        let err = match T::deserialize(NodeDe(root)) {
            Ok(value) => return Some(value),
            Err(err) => err,
        };
        let at = err.at.clone().unwrap_or(At {
            id: root.id,
            key_of: false,
            path: root.path.clone(),
            pos: root.pos,
        });
        // A required key whose bad value was already removed and reported:
        // don't report it missing again, drop its parent instead.
        let already_reported = matches!(
            &err.kind,
            DeErrorKind::MissingField(field) if removed.contains(&(at.id, field.to_string()))
        );
        if !already_reported {
            findings.push(Finding {
                pos: Some(at.pos),
                path: at.path.clone(),
                message: err.message(),
            });
        }
        if at.id == root.id {
            return None;
        }
        match root.remove(at.id, at.key_of) {
            Some(Some(entry)) => {
                removed.insert(entry);
            }
            Some(None) => {}
            None => return None,
        }
    }
    findings.push(Finding {
        pos: None,
        path: String::new(),
        message: format!(
            "more than {MAX_PASSES} problems in the config; the rest are not reported"
        ),
    });
    None
}

/// Problems reported by [`deserialize_all`] before it gives up.
const MAX_PASSES: usize = 100;

/// Serde's view of one node.
pub(crate) struct NodeDe<'a>(pub &'a Node);

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.kind {
        Kind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn describe(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar { text, .. } if text.chars().count() > 60 => {
            format!("`{}…`", text.chars().take(60).collect::<String>())
        }
        Kind::Scalar { text, .. } => format!("`{text}`"),
        _ => node.kind_name().to_string(),
    }
}

/// YAML 1.1 booleans, as go-yaml v2 reads them.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.replace('_', "");
    if let Some(hex) = t.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16).ok();
    }
    t.parse::<i128>().ok()
}

macro_rules! deserialize_integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let node = self.0;
            let result = match (&node.kind, scalar_text(node).and_then(parse_int)) {
                (Kind::Scalar { plain: true, .. }, Some(n)) => {
                    if let Ok(n) = u64::try_from(n) {
                        visitor.visit_u64(n)
                    } else if let Ok(n) = i64::try_from(n) {
                        visitor.visit_i64(n)
                    } else {
                        Err(DeError::msg(format!("number {} is out of range", describe(node))))
                    }
                }
                _ => Err(DeError::msg(format!("expected an integer, found {}", describe(node)))),
            };
            result.map_err(|e| e.located(node))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Scalar { text, plain: false } => visitor.visit_str(text),
            Kind::Scalar { text, plain: true } => {
                if let Some(b) = matches!(
                    text.as_str(),
                    "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                )
                .then(|| parse_bool(text))
                .flatten()
                {
                    visitor.visit_bool(b)
                } else if let Some(n) = parse_int(text).filter(|_| {
                    text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
                }) {
                    match (u64::try_from(n), i64::try_from(n)) {
                        (Ok(u), _) => visitor.visit_u64(u),
                        (_, Ok(i)) => visitor.visit_i64(i),
                        _ => visitor.visit_str(text),
                    }
                } else if let Some(f) = text.parse::<f64>().ok().filter(|f| {
                    f.is_finite()
                        && text.starts_with(|c: char| {
                            c.is_ascii_digit() || c == '-' || c == '+' || c == '.'
                        })
                }) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Kind::Seq(items) => visitor.visit_seq(SeqDe(items.iter())),
            Kind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &node.path,
            }),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match (&node.kind, scalar_text(node).and_then(parse_bool)) {
            (Kind::Scalar { plain: true, .. }, Some(b)) => visitor.visit_bool(b),
            _ => Err(DeError::msg(format!(
                "expected a boolean (true or false), found {}",
                describe(node)
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    deserialize_integer! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match (&node.kind, scalar_text(node).map(str::parse::<f64>)) {
            (Kind::Scalar { plain: true, .. }, Some(Ok(f))) => visitor.visit_f64(f),
            _ => Err(DeError::msg(format!(
                "expected a number, found {}",
                describe(node)
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            // go-yaml leaves a string empty for `key:` and `key: ~`.
            Kind::Null => visitor.visit_str(""),
            Kind::Scalar { text, .. } => visitor.visit_str(text),
            _ => Err(DeError::msg(format!(
                "expected a string, found {}",
                node.kind_name()
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            // go-yaml reads `key:` as an empty list.
            Kind::Null => visitor.visit_seq(SeqDe([].iter())),
            Kind::Seq(items) => visitor.visit_seq(SeqDe(items.iter())),
            _ => Err(DeError::msg(format!(
                "expected a list, found {}",
                describe(node)
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match &node.kind {
            Kind::Null => visitor.visit_map(MapDe {
                entries: [].iter(),
                value: None,
                path: &node.path,
            }),
            Kind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &node.path,
            }),
            _ => Err(DeError::msg(format!(
                "expected a mapping of keys to values, found {}",
                describe(node)
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.0;
        let result = match scalar_text(node) {
            Some(text) => visitor.visit_enum(text.into_deserializer()),
            None => Err(DeError::msg(format!(
                "expected a string, found {}",
                node.kind_name()
            ))),
        };
        result.map_err(|e| e.located(node))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.0.next() {
            Some(node) => seed.deserialize(NodeDe(node)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, Entry>,
    value: Option<&'a Node>,
    path: &'a str,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(&entry.value);
        seed.deserialize(KeyDe(&entry.key))
            .map(Some)
            .map_err(|mut e| {
                if e.at.is_none() {
                    e.at = Some(At {
                        id: entry.key_id,
                        key_of: true,
                        path: join_key(self.path, &entry.key),
                        pos: entry.key_pos,
                    });
                }
                e
            })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => seed.deserialize(NodeDe(node)),
            None => Err(DeError::msg("value without a key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Serde's view of a mapping key: always a string.
struct KeyDe<'a>(&'a str);

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
