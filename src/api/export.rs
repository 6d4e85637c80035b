//! `GET|POST /api/v1/export`: the raw samples the store holds for the series
//! matching `match[]` in `[start, end]`, for backups, debugging and tests that
//! must see every stored sample (PromQL's range selectors resample nothing but
//! do apply lookback and drop stale markers; this endpoint does neither).
//!
//! The answer is a Prometheus range-query "matrix" envelope, so existing JSON
//! tooling reads it: `{"status":"success","data":{"resultType":"matrix",
//! "result":[{"metric":{...},"values":[[<unix seconds>,"<value>"],...]}]}}`.
//! Staleness markers are omitted, as from every Prometheus query answer.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::prometheus::Params;
use super::{ApiError, AppState};
use crate::model::{is_stale_nan, Labels, Sample};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/export", get(export).post(export))
}

async fn export(State(state): State<AppState>, request: Request) -> Result<Json<Value>, ApiError> {
    let params = Params::from_request(request).await?;
    let (matcher_sets, start, end) = params.required_matcher_sets()?;
    // Reading chunks from SQLite blocks: keep it off the async workers.
    let storage = state.storage.clone();
    let found = tokio::task::spawn_blocking(move || {
        let querier = storage.querier(start, end);
        let mut found: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for matchers in &matcher_sets {
            for series in querier.select(matchers)? {
                found.entry(series.labels).or_insert(series.samples);
            }
        }
        Ok::<_, crate::storage::StorageError>(found)
    })
    .await
    .map_err(ApiError::internal)??;

    let result: Vec<Value> = found
        .into_iter()
        .map(|(labels, samples)| {
            let metric: Map<String, Value> = labels
                .iter()
                .map(|l| (l.name.clone(), Value::String(l.value.clone())))
                .collect();
            let values: Vec<Value> = samples
                .iter()
                .filter(|s| !is_stale_nan(s.v))
                .map(|s| json!([s.t as f64 / 1000.0, super::query::format_sample_value(s.v)]))
                .collect();
            json!({ "metric": metric, "values": values })
        })
        .collect();
    Ok(Json(json!({
        "status": "success",
        "data": { "resultType": "matrix", "result": result },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    use crate::storage::{Storage, StorageOptions};

    #[tokio::test]
    async fn exports_raw_samples_without_stale_markers() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(StorageOptions::new(dir.path())).unwrap();
        let now = crate::model::now_millis();
        let mut app = storage.appender();
        let labels = Labels::new([("__name__", "m"), ("job", "a")]);
        app.add(labels.clone(), now - 2000, 1.5);
        app.add(labels.clone(), now - 1000, crate::model::stale_nan());
        app.add(labels, now, 2.0);
        app.commit().unwrap();

        let router = crate::api::router(crate::api::test_state(storage));
        let response = router
            .oneshot(
                HttpRequest::get("/api/v1/export?match[]=m")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let result = &v["data"]["result"];
        assert_eq!(result.as_array().unwrap().len(), 1);
        assert_eq!(result[0]["metric"], json!({"__name__": "m", "job": "a"}));
        let t0 = (now - 2000) as f64 / 1000.0;
        let t2 = now as f64 / 1000.0;
        assert_eq!(result[0]["values"], json!([[t0, "1.5"], [t2, "2"]]));
    }
}
