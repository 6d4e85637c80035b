//! The `postgres` prober: connect with tokio-postgres (no TLS: the probe
//! connects with `sslmode=disable`), `SELECT 1`, the connections in use
//! against `max_connections`, and the custom queries of
//! exporters/postgres.yaml. Metric names follow postgres_exporter where it
//! has them (`pg_up`); the connection gauges are the ones the default rules
//! read. It owns one probe of one target and must not touch the store.

use std::collections::BTreeMap;

use serde::Deserialize;
use tokio_postgres::NoTls;

use super::config::PostgresProbe;
use super::{split_host_port, Failure, Reason, Recorder};

/// The custom queries shipped with the binary.
pub const SHIPPED_QUERIES: &str = include_str!("../../../exporters/postgres.yaml");

/// Names the probe writes itself, which a custom query may not produce.
const RESERVED: [&str; 3] = ["pg_up", "pg_connections_in_use", "pg_max_connections"];

/// What a column of a custom query becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Usage {
    Label,
    Gauge,
    Counter,
    Discard,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnDef {
    usage: Usage,
    #[serde(default)]
    description: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryDef {
    query: String,
    metrics: Vec<BTreeMap<String, ColumnDef>>,
}

/// One column of a custom query.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub usage: Usage,
    pub description: String,
}

/// A custom query, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomQuery {
    pub name: String,
    pub query: String,
    pub columns: Vec<Column>,
}

/// Parses a queries file; errors are `origin:line:col: key: message`.
pub fn parse_queries(text: &str, origin: &str) -> Result<Vec<CustomQuery>, Vec<String>> {
    let (parsed, findings) = crate::config::parse_document::<BTreeMap<String, QueryDef>>(text);
    let mut errors: Vec<String> = findings.iter().map(|f| f.render(origin)).collect();
    let Some((defs, _)) = parsed else {
        if errors.is_empty() {
            errors.push(format!("{origin}: not a mapping of queries"));
        }
        return Err(errors);
    };
    let mut queries = Vec::new();
    for (name, def) in defs {
        let mut columns = Vec::new();
        for entry in def.metrics {
            for (column, spec) in entry {
                let metric = format!("{name}_{column}");
                if spec.usage != Usage::Label
                    && spec.usage != Usage::Discard
                    && !crate::model::is_valid_metric_name(&metric)
                {
                    errors.push(format!(
                        "{origin}: {name}.metrics: {metric:?} is not a valid metric name"
                    ));
                }
                let value_column = matches!(spec.usage, Usage::Gauge | Usage::Counter);
                if value_column
                    && (RESERVED.contains(&metric.as_str()) || metric.starts_with("probe_"))
                {
                    errors.push(format!(
                        "{origin}: {name}.metrics: {metric:?} is a metric the probe itself writes; rename the query or the column"
                    ));
                }
                if spec.usage == Usage::Label && !crate::config::is_valid_label_name(&column) {
                    errors.push(format!(
                        "{origin}: {name}.metrics: {column:?} is not a valid label name"
                    ));
                }
                columns.push(Column {
                    name: column,
                    usage: spec.usage,
                    description: spec.description,
                });
            }
        }
        if !columns
            .iter()
            .any(|c| matches!(c.usage, Usage::Gauge | Usage::Counter))
        {
            errors.push(format!(
                "{origin}: {name}.metrics: no GAUGE or COUNTER column"
            ));
        }
        queries.push(CustomQuery {
            name,
            query: def.query,
            columns,
        });
    }
    if errors.is_empty() {
        Ok(queries)
    } else {
        Err(errors)
    }
}

/// Aborts the connection task when the probe ends (or is dropped on timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn probe(
    settings: &PostgresProbe,
    target: &str,
    timeout: std::time::Duration,
    rec: &mut Recorder,
) -> Result<(), Failure> {
    rec.gauge("pg_up", PG_UP_HELP, 0.0);
    let mut config = tokio_postgres::Config::new();
    if target.starts_with('/') {
        config.host_path(target);
    } else {
        let (host, port) = split_host_port(target, Some(5432))
            .map_err(|e| Failure::new(Reason::Connect, format!("{target:?}: {e}")))?;
        config.host(&host).port(port);
    }
    config
        .user(&settings.user)
        .dbname(&settings.dbname)
        .application_name("bellwether-probe")
        .connect_timeout(timeout);
    match (&settings.password, &settings.password_file) {
        (Some(p), _) => {
            config.password(p.expose());
        }
        (None, Some(file)) => {
            let password = std::fs::read_to_string(file).map_err(|e| {
                Failure::new(
                    Reason::Credentials,
                    format!("postgres.password_file {file}: {e}"),
                )
            })?;
            config.password(password.trim_end_matches(['\n', '\r']));
        }
        (None, None) => {}
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        Failure::new(
            Reason::Connect,
            format!("connecting to PostgreSQL: {}", chain(&e)),
        )
    })?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let query_error = |what: &str, e: tokio_postgres::Error| {
        Failure::new(Reason::Query, format!("{what}: {}", chain(&e)))
    };
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| query_error("SELECT 1", e))?;
    rec.gauge("pg_up", PG_UP_HELP, 1.0);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8, \
             current_setting('max_connections')::float8",
            &[],
        )
        .await
        .map_err(|e| query_error("reading the connection count", e))?;
    let in_use: f64 = row
        .try_get(0)
        .map_err(|e| query_error("connection count", e))?;
    let max: f64 = row
        .try_get(1)
        .map_err(|e| query_error("max_connections", e))?;
    rec.gauge(
        "pg_connections_in_use",
        "Client backends connected (pg_stat_activity rows of type client backend), the probe's own included",
        in_use,
    );
    rec.gauge(
        "pg_max_connections",
        "The server's max_connections setting",
        max,
    );

    for query in &settings.loaded_queries {
        if let Err(e) = run_custom(&client, query, rec).await {
            // A broken custom query does not make the database down.
            rec.error(Failure::new(
                Reason::Query,
                format!("custom query {}: {e}", query.name),
            ));
        }
    }
    Ok(())
}

const PG_UP_HELP: &str = "Whether the probe could connect and run SELECT 1 (1) or not (0)";

async fn run_custom(
    client: &tokio_postgres::Client,
    query: &CustomQuery,
    rec: &mut Recorder,
) -> Result<(), String> {
    let rows = client
        .query(query.query.as_str(), &[])
        .await
        .map_err(|e| chain(&e))?;
    for row in rows {
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut values: Vec<(&Column, f64)> = Vec::new();
        for (index, column) in query.columns.iter().enumerate() {
            let Some(position) = row.columns().iter().position(|c| c.name() == column.name) else {
                return Err(format!("the query returns no column {:?}", column.name));
            };
            let _ = index;
            match column.usage {
                Usage::Discard => {}
                Usage::Label => labels.push((column.name.clone(), label_value(&row, position))),
                Usage::Gauge | Usage::Counter => {
                    let value = number_value(&row, position).ok_or_else(|| {
                        format!(
                            "column {:?} is not a number (cast it to float8 or bigint)",
                            column.name
                        )
                    })?;
                    values.push((column, value));
                }
            }
        }
        let label_refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        for (column, value) in values {
            let kind = if column.usage == Usage::Counter {
                "counter"
            } else {
                "gauge"
            };
            rec.sample(
                &format!("{}_{}", query.name, column.name),
                &column.description,
                kind,
                &label_refs,
                value,
            );
        }
    }
    Ok(())
}

fn label_value(row: &tokio_postgres::Row, i: usize) -> String {
    if let Ok(v) = row.try_get::<_, Option<String>>(i) {
        return v.unwrap_or_default();
    }
    if let Some(v) = number_value(row, i) {
        return format!("{v}");
    }
    String::new()
}

fn number_value(row: &tokio_postgres::Row, i: usize) -> Option<f64> {
    let null_is_nan = |v: Option<f64>| Some(v.unwrap_or(f64::NAN));
    if let Ok(v) = row.try_get::<_, Option<f64>>(i) {
        return null_is_nan(v);
    }
    if let Ok(v) = row.try_get::<_, Option<i64>>(i) {
        return null_is_nan(v.map(|v| v as f64));
    }
    if let Ok(v) = row.try_get::<_, Option<i32>>(i) {
        return null_is_nan(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<_, Option<i16>>(i) {
        return null_is_nan(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<_, Option<f32>>(i) {
        return null_is_nan(v.map(f64::from));
    }
    if let Ok(v) = row.try_get::<_, Option<bool>>(i) {
        return null_is_nan(v.map(|b| if b { 1.0 } else { 0.0 }));
    }
    None
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_queries_parse() {
        let queries = parse_queries(SHIPPED_QUERIES, "exporters/postgres.yaml").expect("valid");
        let names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pg_database",
                "pg_replication_slots",
                "pg_stat_activity",
                "pg_stat_database"
            ]
        );
    }

    #[test]
    fn bad_query_files_are_refused_with_positions() {
        let errors = parse_queries(
            "q:\n  query: SELECT 1\n  metrics:\n    - x: {usage: LABLE}\n",
            "f.yaml",
        )
        .expect_err("bad usage");
        assert!(errors[0].starts_with("f.yaml:4:"), "{errors:?}");
        let errors = parse_queries(
            "q:\n  query: SELECT 1\n  metrics:\n    - x: {usage: LABEL}\n",
            "f.yaml",
        )
        .expect_err("no value column");
        assert!(errors[0].contains("no GAUGE or COUNTER"), "{errors:?}");
        let errors = parse_queries(
            "q:\n  query: SELECT 1\n  metrics:\n    - 'a-b': {usage: GAUGE}\n",
            "f.yaml",
        )
        .expect_err("bad name");
        assert!(errors[0].contains("not a valid metric name"), "{errors:?}");
        let errors = parse_queries(
            "pg:\n  query: SELECT 1\n  metrics:\n    - up: {usage: GAUGE}\n",
            "f.yaml",
        )
        .expect_err("reserved name");
        assert!(
            errors[0].contains("\"pg_up\" is a metric the probe itself writes"),
            "{errors:?}"
        );
    }
}
