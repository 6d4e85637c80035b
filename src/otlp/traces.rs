//! OTLP spans → usage records. Spans are not stored; a span that carries
//! GenAI token usage (`gen_ai.usage.input_tokens` or `output_tokens`, or the
//! older `prompt_tokens`/`completion_tokens`) becomes one usage record, which
//! goes through the same path as `POST /api/v1/usage`: priced per request,
//! added to the `llm_*` counters and written to the ledger. Spans without
//! usage (agent and workflow spans, HTTP spans, …) are ignored, not refused.
//!
//! Each attribute is looked up on the span first, then on its resource.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use crate::llm::record::{RecordError, TokenNames, UsageRecord, MAX_FUTURE_MS, MAX_STRING};
use crate::model::Timestamp;

/// The usage records of one request.
#[derive(Debug, Default)]
pub struct SpanUsage {
    /// Spans in the request.
    pub spans: usize,
    /// `(span index in the request, record)`.
    pub records: Vec<(usize, UsageRecord)>,
    /// Spans with usage that were refused, by span index.
    pub errors: Vec<RecordError>,
}

pub fn usage_records(request: &ExportTraceServiceRequest, now: Timestamp) -> SpanUsage {
    let mut out = SpanUsage::default();
    for rs in &request.resource_spans {
        let resource = super::resource_attributes(&rs.resource);
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let index = out.spans;
                out.spans += 1;
                match span_record(span, resource, now) {
                    Ok(None) => {}
                    Ok(Some(r)) => out.records.push((index, r)),
                    Err((field, error)) => out.errors.push(RecordError {
                        index,
                        field,
                        error: format!("span {:?}: {error}", span.name),
                    }),
                }
            }
        }
    }
    out
}

struct Attrs<'a> {
    span: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&'a any_value::Value> {
        self.span
            .iter()
            .chain(self.resource.iter())
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// The first of `keys` present, as a string.
    fn string(&self, keys: &[&str]) -> Result<Option<String>, (String, String)> {
        for key in keys {
            match self.get(key) {
                None => continue,
                Some(any_value::Value::StringValue(s)) if s.is_empty() => continue,
                Some(any_value::Value::StringValue(s)) => {
                    if s.len() > MAX_STRING {
                        return Err((key.to_string(), format!("longer than {MAX_STRING} bytes")));
                    }
                    return Ok(Some(s.clone()));
                }
                Some(any_value::Value::IntValue(i)) => return Ok(Some(i.to_string())),
                Some(_) => return Err((key.to_string(), "must be a string".into())),
            }
        }
        Ok(None)
    }

    /// The first of `keys` present, as a token count.
    fn count(&self, keys: &[&str]) -> Result<Option<u64>, (String, String)> {
        for key in keys {
            let err = |why: String| Err((key.to_string(), why));
            match self.get(key) {
                None => continue,
                Some(any_value::Value::IntValue(i)) => {
                    if *i < 0 {
                        return err(format!("must not be negative, got {i}"));
                    }
                    return Ok(Some(*i as u64));
                }
                Some(any_value::Value::DoubleValue(d)) => {
                    if !(d.is_finite() && *d >= 0.0 && d.fract() == 0.0 && *d < 9.0e15) {
                        return err(format!("must be a non-negative whole number, got {d}"));
                    }
                    return Ok(Some(*d as u64));
                }
                Some(any_value::Value::StringValue(s)) => {
                    return match s.parse::<u64>() {
                        Ok(n) => Ok(Some(n)),
                        Err(_) => err(format!("must be a non-negative whole number, got {s:?}")),
                    }
                }
                Some(_) => return err("must be an integer".into()),
            }
        }
        Ok(None)
    }
}

/// The usage record of one span; `Ok(None)` when it carries no usage.
fn span_record(
    span: &Span,
    resource: &[KeyValue],
    now: Timestamp,
) -> Result<Option<UsageRecord>, (String, String)> {
    let a = Attrs {
        span: &span.attributes,
        resource,
    };
    let input = a.count(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"])?;
    let output = a.count(&[
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
    ])?;
    if input.is_none() && output.is_none() {
        return Ok(None);
    }
    let provider = a
        .string(&["gen_ai.provider.name", "gen_ai.system"])?
        .ok_or_else(|| {
            (
                "gen_ai.provider.name".to_string(),
                "is required on a span with token usage (or the deprecated gen_ai.system)"
                    .to_string(),
            )
        })?;
    let model = a
        .string(&["gen_ai.response.model", "gen_ai.request.model"])?
        .ok_or_else(|| {
            (
                "gen_ai.request.model".to_string(),
                "is required on a span with token usage (or gen_ai.response.model)".to_string(),
            )
        })?;
    let r = UsageRecord {
        provider,
        model,
        input_tokens: input.unwrap_or(0),
        output_tokens: output.unwrap_or(0),
        cache_read_tokens: a
            .count(&[
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
            ])?
            .unwrap_or(0),
        cache_write_tokens: a
            .count(&[
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
            ])?
            .unwrap_or(0),
        cache_write_1h_tokens: 0,
        reasoning_tokens: a
            .count(&[
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
            ])?
            .unwrap_or(0),
        cost_usd: None,
        duration_seconds: duration(span),
        status: Some(status(span, &a)),
        user: a.string(&["user.id", "enduser.id"])?,
        org: a.string(&["bellwether.org"])?,
        team: a.string(&["bellwether.team"])?,
        agent: a.string(&["gen_ai.agent.name"])?,
        workflow: a.string(&["gen_ai.workflow.name"])?,
        session: a.string(&["session.id", "gen_ai.conversation.id"])?,
        timestamp: end_time(span, now)?,
        provider_counting: false,
    };
    r.check_token_subsets(&SPAN_TOKEN_NAMES, true)?;
    Ok(Some(r))
}

/// The GenAI semantic conventions' names of the token counts.
const SPAN_TOKEN_NAMES: TokenNames = TokenNames {
    input: "gen_ai.usage.input_tokens",
    output: "gen_ai.usage.output_tokens",
    cache_read: "gen_ai.usage.cache_read.input_tokens",
    cache_write: "gen_ai.usage.cache_creation.input_tokens",
    reasoning: "gen_ai.usage.reasoning.output_tokens",
    cache_hint: "in the GenAI conventions cached tokens are part of the input tokens",
};

fn duration(span: &Span) -> Option<f64> {
    (span.start_time_unix_nano > 0 && span.end_time_unix_nano >= span.start_time_unix_nano)
        .then(|| (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9)
}

/// `error` for a span with status ERROR or an `error.type`, else `ok`.
fn status(span: &Span, a: &Attrs<'_>) -> String {
    let error_status = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    let error_type = span.attributes.iter().any(|kv| kv.key == "error.type");
    if error_status || error_type {
        "error".into()
    } else {
        let _ = a;
        "ok".into()
    }
}

fn end_time(span: &Span, now: Timestamp) -> Result<Option<Timestamp>, (String, String)> {
    if span.end_time_unix_nano == 0 {
        return Ok(None);
    }
    let t = (span.end_time_unix_nano / 1_000_000).min(i64::MAX as u64) as i64;
    if t > now.saturating_add(MAX_FUTURE_MS) {
        return Err((
            "endTimeUnixNano".into(),
            "is more than an hour in the future".into(),
        ));
    }
    Ok(Some(t))
}
