//! The JSON bodies of `POST /api/v1/usage` and `POST /api/v1/events`:
//! arrays of records, each checked on its own so that one bad record is
//! refused with a message naming its index and field while the rest is kept.
//!
//! Parsing is one streaming pass with serde_json: every field value is read
//! as a loose [`Value`] and converted here, so a wrong type is this module's
//! message about that field, not a serde error that would end the array.
//! Only a body that is not JSON, or not an array, is refused as a whole.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::Timestamp;

/// Longest accepted string field, in bytes.
pub const MAX_STRING: usize = 256;
/// How far in the future a record's `timestamp` may be (clock skew).
pub const MAX_FUTURE_MS: i64 = 3_600_000;

/// One usage record, checked. Token counts are in the OpenTelemetry
/// convention (normalised when the record said `"counting": "provider"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageRecord {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_write_1h_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub status: Option<String>,
    pub user: Option<String>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub workflow: Option<String>,
    pub session: Option<String>,
    /// Milliseconds since the epoch; `None` means "when received".
    pub timestamp: Option<Timestamp>,
    /// `"counting": "provider"`: token counts are in the provider's own
    /// convention and are normalised with the pricing table's flag.
    pub provider_counting: bool,
}

/// How a source names the token counts, for the subset checks' errors.
pub struct TokenNames {
    pub input: &'static str,
    pub output: &'static str,
    pub cache_read: &'static str,
    pub cache_write: &'static str,
    pub reasoning: &'static str,
    /// Why cached tokens must fit in the input, in the source's terms.
    pub cache_hint: &'static str,
}

/// The names of `POST /api/v1/usage`.
const API_TOKEN_NAMES: TokenNames = TokenNames {
    input: "input_tokens",
    output: "output_tokens",
    cache_read: "cache_read_tokens",
    cache_write: "cache_write_tokens",
    reasoning: "reasoning_tokens",
    cache_hint: "in the OpenTelemetry convention cached tokens are part of input_tokens; for counts where input excludes the cache (Anthropic's usage object) send \"counting\": \"provider\"",
};

impl UsageRecord {
    /// The OpenTelemetry convention every record is held in: cache reads and
    /// writes are part of the input tokens, reasoning part of the output.
    /// The error (field, reason) names the counts as the source does.
    /// `check_cache` false skips the cache check (counts not yet normalised).
    pub fn check_token_subsets(
        &self,
        names: &TokenNames,
        check_cache: bool,
    ) -> Result<(), (String, String)> {
        let cached = self
            .cache_read_tokens
            .saturating_add(self.cache_write_tokens);
        if check_cache && cached > self.input_tokens {
            return Err((
                names.cache_read.into(),
                format!(
                    "{} + {} ({cached}) exceed {} ({}): {}",
                    names.cache_read,
                    names.cache_write,
                    names.input,
                    self.input_tokens,
                    names.cache_hint
                ),
            ));
        }
        if self.reasoning_tokens > self.output_tokens {
            return Err((
                names.reasoning.into(),
                format!(
                    "{} exceeds {} ({}): reasoning tokens are part of {}",
                    self.reasoning_tokens, names.output, self.output_tokens, names.output
                ),
            ));
        }
        Ok(())
    }
}

/// A business event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `{"type":"agent_invocation","agent":…,"status":…}`
    AgentInvocation { agent: String, status: String },
    /// `{"type":"workflow_completion","workflow":…,"status":…}`
    WorkflowCompletion { workflow: String, status: String },
    /// `{"type":"session_start","session":…}`
    SessionStart { session: String },
    /// `{"type":"session_end","session":…}`
    SessionEnd { session: String },
}

/// Why one record was refused: its index in the array, the field, the reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordError {
    pub index: usize,
    /// Empty when the record as a whole is wrong (not an object).
    pub field: String,
    pub error: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "record {}: {}", self.index, self.error)
        } else {
            write!(f, "record {}: {}: {}", self.index, self.field, self.error)
        }
    }
}

/// A field value as JSON gave it.
#[derive(Debug)]
enum Value {
    Null,
    Bool,
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(String),
    Array,
    Object,
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool => "a boolean".into(),
            Value::Unsigned(n) => format!("the number {n}"),
            Value::Signed(n) => format!("the number {n}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Str(s) if s.len() > 40 => "a string".into(),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Array => "an array".into(),
            Value::Object => "an object".into(),
        }
    }
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
                Ok(Value::Bool)
            }
            fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
                Ok(Value::Unsigned(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
                Ok(Value::Signed(n))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value::Object)
            }
        }
        d.deserialize_any(V)
    }
}

fn token_count(v: Value) -> Result<u64, String> {
    match v {
        Value::Unsigned(n) => Ok(n),
        Value::Signed(n) => Err(format!("must not be negative (got {n})")),
        // 1.0 from a client that writes every number as a float is fine;
        // 2^53 and above are not exact in a float.
        Value::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0 => {
            Ok(f as u64)
        }
        Value::Float(f) if f < 0.0 => Err(format!("must not be negative (got {f})")),
        other => Err(format!(
            "must be a non-negative integer, got {}",
            other.describe()
        )),
    }
}

fn number(v: Value) -> Result<Option<f64>, String> {
    let f = match v {
        Value::Null => return Ok(None),
        Value::Unsigned(n) => n as f64,
        Value::Signed(n) => n as f64,
        Value::Float(f) => f,
        other => return Err(format!("must be a number, got {}", other.describe())),
    };
    if f < 0.0 {
        return Err(format!("must not be negative (got {f})"));
    }
    Ok(Some(f))
}

fn string(v: Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Str(s) if s.len() > MAX_STRING => Err(format!(
            "longer than {MAX_STRING} bytes ({} bytes)",
            s.len()
        )),
        Value::Str(s) if s.is_empty() => Ok(None),
        Value::Str(s) => Ok(Some(s)),
        other => Err(format!("must be a string, got {}", other.describe())),
    }
}

fn timestamp(v: Value, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let t = match v {
        Value::Null => return Ok(None),
        Value::Unsigned(_) | Value::Signed(_) | Value::Float(_) => {
            let seconds = number(v)?.unwrap_or(0.0);
            if !seconds.is_finite() || seconds > 1e11 {
                return Err(format!("{seconds} is not a time in Unix seconds"));
            }
            (seconds * 1000.0).round() as i64
        }
        Value::Str(s) => {
            match s.parse::<f64>() {
                // Numbers in strings are not accepted: "1" could be seconds or ms.
                Ok(_) => return Err(format!("{s:?}: write Unix seconds as a JSON number, or an RFC 3339 time such as 2025-06-01T12:00:00Z")),
                Err(_) => crate::api::prometheus::parse_time(&s).map_err(|_| {
                    format!("{s:?} is not an RFC 3339 time such as 2025-06-01T12:00:00Z")
                })?,
            }
        }
        other => {
            return Err(format!(
                "must be Unix seconds or an RFC 3339 string, got {}",
                other.describe()
            ))
        }
    };
    if t > now.saturating_add(MAX_FUTURE_MS) {
        return Err("is more than an hour in the future".into());
    }
    Ok(Some(t))
}

/// The fields a usage record may have, in the order the docs list them.
pub const USAGE_FIELDS: [&str; 20] = [
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "cost_usd",
    "duration_seconds",
    "status",
    "user",
    "org",
    "team",
    "agent",
    "workflow",
    "session",
    "timestamp",
    "counting",
    "operation",
];

/// Builds one usage record from its fields; the first problem refuses it.
struct UsageBuilder {
    record: UsageRecord,
    seen: u32,
    error: Option<(String, String)>,
    now: Timestamp,
}

impl UsageBuilder {
    fn field(&mut self, key: &str, value: Value) {
        if self.error.is_some() {
            return;
        }
        let Some(slot) = USAGE_FIELDS.iter().position(|f| *f == key) else {
            let hint = crate::config::did_you_mean(key, &USAGE_FIELDS)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.error = Some((key.to_string(), format!("unknown field{hint}")));
            return;
        };
        if self.seen & (1 << slot) != 0 {
            self.error = Some((key.to_string(), "given twice".into()));
            return;
        }
        self.seen |= 1 << slot;
        let r = &mut self.record;
        let result: Result<(), String> = (|| {
            match key {
                "provider" => r.provider = string(value)?.unwrap_or_default(),
                "model" => r.model = string(value)?.unwrap_or_default(),
                "input_tokens" => r.input_tokens = token_count(value)?,
                "output_tokens" => r.output_tokens = token_count(value)?,
                "cache_read_tokens" => r.cache_read_tokens = optional_count(value)?,
                "cache_write_tokens" => r.cache_write_tokens = optional_count(value)?,
                "cache_write_1h_tokens" => r.cache_write_1h_tokens = optional_count(value)?,
                "reasoning_tokens" => r.reasoning_tokens = optional_count(value)?,
                "cost_usd" => {
                    r.cost_usd = number(value)?;
                    if r.cost_usd.is_some_and(|c| c >= 1e9 || c.is_nan()) {
                        return Err("must be below 1e9 dollars".into());
                    }
                }
                "duration_seconds" => {
                    r.duration_seconds = number(value)?;
                    if r.duration_seconds.is_some_and(|d| d >= 1e7 || d.is_nan()) {
                        return Err("must be below 1e7 seconds".into());
                    }
                }
                "status" => r.status = string(value)?,
                "user" => r.user = string(value)?,
                "org" => r.org = string(value)?,
                "team" => r.team = string(value)?,
                "agent" => r.agent = string(value)?,
                "workflow" => r.workflow = string(value)?,
                "session" => r.session = string(value)?,
                "timestamp" => r.timestamp = timestamp(value, self.now)?,
                "counting" => {
                    r.provider_counting = match string(value)?.as_deref() {
                        None | Some("otel") => false,
                        Some("provider") => true,
                        Some(other) => {
                            return Err(format!("{other:?} is not `otel` or `provider`"))
                        }
                    }
                }
                // Accepted for OpenTelemetry's gen_ai.operation.name; not used yet.
                "operation" => {
                    string(value)?;
                }
                _ => unreachable!("USAGE_FIELDS lists every field matched here"),
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.error = Some((key.to_string(), e));
        }
    }

    fn finish(self) -> Result<UsageRecord, (String, String)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let r = self.record;
        let missing = |field: &str| Err((field.to_string(), "is required".to_string()));
        for (i, field) in ["provider", "model", "input_tokens", "output_tokens"]
            .iter()
            .enumerate()
        {
            if self.seen & (1 << i) == 0 {
                return missing(field);
            }
        }
        if r.provider.is_empty() {
            return Err(("provider".into(), "must not be empty".into()));
        }
        if r.model.is_empty() {
            return Err(("model".into(), "must not be empty".into()));
        }
        if r.cache_write_1h_tokens > r.cache_write_tokens {
            return Err((
                "cache_write_1h_tokens".into(),
                format!(
                    "{} exceeds cache_write_tokens ({}): 1-hour writes are part of cache_write_tokens",
                    r.cache_write_1h_tokens, r.cache_write_tokens
                ),
            ));
        }
        // Provider-convention counts are normalised later, with the pricing
        // table's flag: only reasoning ⊆ output holds for them already.
        r.check_token_subsets(&API_TOKEN_NAMES, !r.provider_counting)?;
        Ok(r)
    }
}

fn optional_count(v: Value) -> Result<u64, String> {
    match v {
        Value::Null => Ok(0),
        v => token_count(v),
    }
}

/// The fields an event may have.
pub const EVENT_FIELDS: [&str; 9] = [
    "type",
    "agent",
    "workflow",
    "session",
    "status",
    "user",
    "org",
    "team",
    "timestamp",
];

struct EventBuilder {
    kind: Option<String>,
    agent: Option<String>,
    workflow: Option<String>,
    session: Option<String>,
    status: Option<String>,
    error: Option<(String, String)>,
    now: Timestamp,
}

impl EventBuilder {
    fn field(&mut self, key: &str, value: Value) {
        if self.error.is_some() {
            return;
        }
        let result = match key {
            "type" => string(value).map(|v| self.kind = v),
            "agent" => string(value).map(|v| self.agent = v),
            "workflow" => string(value).map(|v| self.workflow = v),
            "session" => string(value).map(|v| self.session = v),
            "status" => string(value).map(|v| self.status = v),
            "user" | "org" | "team" => string(value).map(drop),
            "timestamp" => timestamp(value, self.now).map(drop),
            _ => {
                let hint = crate::config::did_you_mean(key, &EVENT_FIELDS)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Err(format!("unknown field{hint}"))
            }
        };
        if let Err(e) = result {
            self.error = Some((key.to_string(), e));
        }
    }

    fn finish(self) -> Result<Event, (String, String)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let required = |field: &str, value: Option<String>| {
            value.ok_or_else(|| (field.to_string(), "is required for this type".to_string()))
        };
        let status = || self.status.clone().unwrap_or_else(|| "ok".to_string());
        match self.kind.as_deref() {
            Some("agent_invocation") => Ok(Event::AgentInvocation {
                status: status(),
                agent: required("agent", self.agent)?,
            }),
            Some("workflow_completion") => Ok(Event::WorkflowCompletion {
                status: status(),
                workflow: required("workflow", self.workflow)?,
            }),
            Some("session_start") => Ok(Event::SessionStart {
                session: required("session", self.session)?,
            }),
            Some("session_end") => Ok(Event::SessionEnd {
                session: required("session", self.session)?,
            }),
            Some(other) => Err((
                "type".into(),
                format!("{other:?} is not one of agent_invocation, workflow_completion, session_start, session_end"),
            )),
            None => Err(("type".into(), "is required".into())),
        }
    }
}

/// What a parse gave: the good records and the refused ones.
#[derive(Debug, Default)]
pub struct Parsed<T> {
    /// Accepted records with their index in the array.
    pub records: Vec<(usize, T)>,
    pub errors: Vec<RecordError>,
}

/// A body that is not a JSON array of values.
#[derive(Debug, thiserror::Error)]
#[error("the body is not a JSON array of records: {0}")]
pub struct BodyError(String);

trait Builder: Sized {
    type Output;
    fn new(now: Timestamp) -> Self;
    fn field(&mut self, key: &str, value: Value);
    fn finish(self) -> Result<Self::Output, (String, String)>;
}

impl Builder for UsageBuilder {
    type Output = UsageRecord;
    fn new(now: Timestamp) -> Self {
        UsageBuilder {
            record: UsageRecord::default(),
            seen: 0,
            error: None,
            now,
        }
    }
    fn field(&mut self, key: &str, value: Value) {
        UsageBuilder::field(self, key, value)
    }
    fn finish(self) -> Result<UsageRecord, (String, String)> {
        UsageBuilder::finish(self)
    }
}

impl Builder for EventBuilder {
    type Output = Event;
    fn new(now: Timestamp) -> Self {
        EventBuilder {
            kind: None,
            agent: None,
            workflow: None,
            session: None,
            status: None,
            error: None,
            now,
        }
    }
    fn field(&mut self, key: &str, value: Value) {
        EventBuilder::field(self, key, value)
    }
    fn finish(self) -> Result<Event, (String, String)> {
        EventBuilder::finish(self)
    }
}

/// Reads one array element: `Ok(record)` or `Err((field, why))`.
struct ElementSeed<B>(Timestamp, std::marker::PhantomData<B>);

impl<'de, B: Builder> DeserializeSeed<'de> for ElementSeed<B> {
    type Value = Result<B::Output, (String, String)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<B>(Timestamp, std::marker::PhantomData<B>);
        impl<'de, B: Builder> Visitor<'de> for V<B> {
            type Value = Result<B::Output, (String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut builder = B::new(self.0);
                while let Some(key) = map.next_key::<KeyName<'de>>()? {
                    let value: Value = map.next_value()?;
                    builder.field(key.as_str(), value);
                }
                Ok(builder.finish())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_object("an array"))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(not_object("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(not_object("a boolean"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(not_object("a number"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(not_object("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(not_object("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(not_object("a string"))
            }
        }
        d.deserialize_any(V::<B>(self.0, std::marker::PhantomData))
    }
}

fn not_object<T>(what: &str) -> Result<T, (String, String)> {
    Err((String::new(), format!("must be a JSON object, got {what}")))
}

/// A key, borrowed from the body when it has no escapes.
enum KeyName<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl KeyName<'_> {
    fn as_str(&self) -> &str {
        match self {
            KeyName::Borrowed(s) => s,
            KeyName::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for KeyName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<KeyName<'de>, E> {
                Ok(KeyName::Borrowed(s))
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyName<'de>, E> {
                Ok(KeyName::Owned(s.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

fn parse_array<B: Builder>(body: &[u8], now: Timestamp) -> Result<Parsed<B::Output>, BodyError> {
    struct ArrayVisitor<B>(Timestamp, std::marker::PhantomData<B>);
    impl<'de, B: Builder> Visitor<'de> for ArrayVisitor<B> {
        type Value = Parsed<B::Output>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut parsed = Parsed {
                records: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
                errors: Vec::new(),
            };
            let mut index = 0;
            while let Some(element) =
                seq.next_element_seed(ElementSeed::<B>(self.0, std::marker::PhantomData))?
            {
                match element {
                    Ok(record) => parsed.records.push((index, record)),
                    Err((field, error)) => parsed.errors.push(RecordError {
                        index,
                        field,
                        error,
                    }),
                }
                index += 1;
            }
            Ok(parsed)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de
        .deserialize_seq(ArrayVisitor::<B>(now, std::marker::PhantomData))
        .map_err(|e| BodyError(e.to_string()))?;
    de.end().map_err(|e| BodyError(e.to_string()))?;
    Ok(parsed)
}

/// Parses a `POST /api/v1/usage` body; `now` is the receive time (for the
/// future-timestamp check).
pub fn parse_usage(body: &[u8], now: Timestamp) -> Result<Parsed<UsageRecord>, BodyError> {
    parse_array::<UsageBuilder>(body, now)
}

/// Parses a `POST /api/v1/events` body.
pub fn parse_events(body: &[u8], now: Timestamp) -> Result<Parsed<Event>, BodyError> {
    parse_array::<EventBuilder>(body, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_750_000_000_000;

    fn errors(body: &str) -> Vec<String> {
        parse_usage(body.as_bytes(), NOW)
            .expect("an array")
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_minimal_and_a_full_record() {
        let body = r#"[
            {"provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":5},
            {"provider":"anthropic","model":"claude-sonnet-4-5","input_tokens":100,"output_tokens":50,
             "cache_read_tokens":60,"cache_write_tokens":20,"cache_write_1h_tokens":5,"reasoning_tokens":10,
             "cost_usd":0.25,"duration_seconds":1.5,"status":"error","user":"alice","org":"acme",
             "team":"search","agent":"planner","workflow":"triage","session":"s-1",
             "timestamp":"2025-06-15T15:06:40Z","counting":"otel","operation":"chat"}
        ]"#;
        let parsed = parse_usage(body.as_bytes(), NOW).expect("parsed");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.records.len(), 2);
        let full = &parsed.records[1].1;
        assert_eq!(full.cache_write_1h_tokens, 5);
        assert_eq!(full.cost_usd, Some(0.25));
        assert_eq!(full.timestamp, Some(NOW));
        assert_eq!(full.org.as_deref(), Some("acme"));
        assert_eq!(parsed.records[0].1.timestamp, None);
    }

    #[test]
    fn each_bad_record_is_named_by_index_and_field_and_the_rest_kept() {
        let body = r#"[
            {"provider":"openai","model":"m","input_tokens":-1,"output_tokens":5},
            {"provider":"openai","model":"m","input_tokens":1.5,"output_tokens":5},
            {"provider":"openai","model":"m","input_tokens":10,"output_tokens":5,"cache_read_tokens":11},
            {"provider":"openai","model":"m","input_tokens":10,"output_tokens":5,"reasoning_tokens":6},
            {"provider":"openai","model":"m","input_tokens":10,"output_tokens":5,"input_token":3},
            {"provider":"openai","model":"m","input_tokens":10,"output_tokens":5,"timestamp":"yesterday"},
            {"provider":"openai","input_tokens":10,"output_tokens":5},
            "not an object",
            {"provider":"openai","model":"m","input_tokens":"10","output_tokens":5},
            {"provider":"openai","model":"m","input_tokens":10,"output_tokens":5,"timestamp":4102444800},
            {"provider":"openai","model":"ok","input_tokens":10,"output_tokens":5}
        ]"#;
        let parsed = parse_usage(body.as_bytes(), NOW).expect("an array");
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].1.model, "ok");
        let errors: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "record 0: input_tokens: must not be negative (got -1)",
                "record 1: input_tokens: must be a non-negative integer, got the number 1.5",
                "record 2: cache_read_tokens: cache_read_tokens + cache_write_tokens (11) exceed input_tokens (10): in the OpenTelemetry convention cached tokens are part of input_tokens; for counts where input excludes the cache (Anthropic's usage object) send \"counting\": \"provider\"",
                "record 3: reasoning_tokens: 6 exceeds output_tokens (5): reasoning tokens are part of output_tokens",
                "record 4: input_token: unknown field; did you mean `input_tokens`?",
                "record 5: timestamp: \"yesterday\" is not an RFC 3339 time such as 2025-06-01T12:00:00Z",
                "record 6: model: is required",
                "record 7: must be a JSON object, got a string",
                "record 8: input_tokens: must be a non-negative integer, got the string \"10\"",
                "record 9: timestamp: is more than an hour in the future",
            ]
        );
    }

    #[test]
    fn provider_counting_allows_cache_beyond_input() {
        let body = r#"[{"provider":"anthropic","model":"m","input_tokens":5,"output_tokens":5,
                        "cache_read_tokens":100,"counting":"provider"}]"#;
        assert!(errors(body).is_empty());
        assert_eq!(
            errors(
                r#"[{"provider":"a","model":"m","input_tokens":5,"output_tokens":5,"counting":"native"}]"#
            ),
            ["record 0: counting: \"native\" is not `otel` or `provider`"]
        );
    }

    #[test]
    fn a_body_that_is_not_an_array_is_refused_whole() {
        for body in ["", "{}", "[1,", "[{\"provider\":}]", "[] x", "null"] {
            assert!(
                parse_usage(body.as_bytes(), NOW).is_err(),
                "{body:?} accepted"
            );
        }
        assert!(parse_usage(b"[]", NOW).expect("empty").records.is_empty());
    }

    #[test]
    fn events() {
        let body = r#"[
            {"type":"agent_invocation","agent":"planner","status":"ok"},
            {"type":"workflow_completion","workflow":"triage","status":"failed"},
            {"type":"session_start","session":"s1","user":"alice"},
            {"type":"session_end","session":"s1"},
            {"type":"agent_invocation"},
            {"type":"lunch"},
            {"agent":"x"}
        ]"#;
        let parsed = parse_events(body.as_bytes(), NOW).expect("an array");
        assert_eq!(parsed.records.len(), 4);
        assert_eq!(
            parsed.records[1].1,
            Event::WorkflowCompletion {
                workflow: "triage".into(),
                status: "failed".into()
            }
        );
        let errors: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "record 4: agent: is required for this type",
                "record 5: type: \"lunch\" is not one of agent_invocation, workflow_completion, session_start, session_end",
                "record 6: type: is required",
            ]
        );
    }

    proptest::proptest! {
        /// Any bytes: an error or a parse, never a panic; every refusal names
        /// an index inside the array.
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(parsed) = parse_usage(&body, NOW) {
                let n = parsed.records.len() + parsed.errors.len();
                proptest::prop_assert!(parsed.errors.iter().all(|e| e.index < n));
            }
            let _ = parse_events(&body, NOW);
        }

        /// Records built from arbitrary field values: never a panic, and a
        /// record is accepted only if its counts are consistent.
        #[test]
        fn consistent_counts_only(
            input in proptest::option::of(-5i64..1000),
            output in 0u64..1000,
            cache in 0u64..1000,
            reasoning in 0u64..1000,
            model in "[a-z0-9.\\-]{0,8}",
        ) {
            let input_field = input.map(|i| format!(",\"input_tokens\":{i}")).unwrap_or_default();
            let body = format!(
                "[{{\"provider\":\"p\",\"model\":{model:?}{input_field},\"output_tokens\":{output},\"cache_read_tokens\":{cache},\"reasoning_tokens\":{reasoning}}}]"
            );
            let parsed = parse_usage(body.as_bytes(), NOW).expect("an array");
            for (_, r) in &parsed.records {
                proptest::prop_assert!(r.cache_read_tokens <= r.input_tokens);
                proptest::prop_assert!(r.reasoning_tokens <= r.output_tokens);
                proptest::prop_assert!(!r.model.is_empty());
            }
            proptest::prop_assert_eq!(parsed.records.len() + parsed.errors.len(), 1);
        }
    }
}
