//! The parts of the Kubernetes v1 API bellwether reads: `PodList`, `Pod`,
//! watch events and `Status`, with serde. Only the fields the pod metrics
//! and discovery use are kept (a pod costs what those fields cost, not the
//! whole object); every field is optional, unknown fields are ignored.
//!
//! Pure: no I/O. [`parse_watch_event`] and [`parse_pod_list`] are fuzzed
//! (fuzz/fuzz_targets/kubernetes_watch.rs) and never panic.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListMeta {
    pub resource_version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PodList {
    pub metadata: ListMeta,
    pub items: Vec<Pod>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub resource_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    pub controller: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: String,
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub ports: Vec<ContainerPort>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: String,
    pub container_port: u32,
    /// Kubernetes defaults an unset protocol to TCP.
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: String,
    #[serde(rename = "podIP")]
    pub pod_ip: String,
    #[serde(rename = "hostIP")]
    pub host_ip: String,
    pub conditions: Vec<PodCondition>,
    pub container_statuses: Vec<ContainerStatus>,
    pub init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ready: bool,
    pub restart_count: u64,
}

/// An API error object (`kind: Status`), as a watch `ERROR` event carries
/// and as error responses have.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl Pod {
    /// `<namespace>/<name>`: identity within the watch.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// The Ready condition's status in lower case (`true`, `false`,
    /// `unknown`), `unknown` without one — as Prometheus reports it.
    pub fn ready(&self) -> String {
        self.status
            .conditions
            .iter()
            .find(|c| c.kind == "Ready")
            .map(|c| c.status.to_ascii_lowercase())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// The owner reference marked `controller: true`, if any.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.metadata
            .owner_references
            .iter()
            .find(|r| r.controller == Some(true))
    }
}

/// One line of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Pod),
    Modified(Pod),
    Deleted(Pod),
    /// Only `metadata.resourceVersion` is meaningful.
    Bookmark(String),
    Error(Status),
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

/// Why a line or body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON in a watch event: {0}")]
    Json(String),
    #[error(
        "unknown watch event type {0:?} (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)"
    )]
    UnknownType(String),
    #[error("a {kind} watch event whose object is not a Pod: {message}")]
    Object { kind: String, message: String },
    #[error("invalid PodList JSON: {0}")]
    List(String),
}

/// Parses one newline-delimited watch event.
pub fn parse_watch_event(line: &[u8]) -> Result<WatchEvent, ParseError> {
    let raw: RawEvent =
        serde_json::from_slice(line).map_err(|e| ParseError::Json(e.to_string()))?;
    let object_error = |kind: &str, e: serde_json::Error| ParseError::Object {
        kind: kind.to_string(),
        message: e.to_string(),
    };
    let pod = |kind: &str, object: serde_json::Value| {
        if !object.is_object() {
            return Err(ParseError::Object {
                kind: kind.to_string(),
                message: "not a JSON object".to_string(),
            });
        }
        serde_json::from_value::<Pod>(object).map_err(|e| object_error(kind, e))
    };
    match raw.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(pod("ADDED", raw.object)?)),
        "MODIFIED" => Ok(WatchEvent::Modified(pod("MODIFIED", raw.object)?)),
        "DELETED" => Ok(WatchEvent::Deleted(pod("DELETED", raw.object)?)),
        "BOOKMARK" => Ok(WatchEvent::Bookmark(
            pod("BOOKMARK", raw.object)?.metadata.resource_version,
        )),
        "ERROR" => Ok(WatchEvent::Error(
            serde_json::from_value(raw.object).map_err(|e| object_error("ERROR", e))?,
        )),
        other => Err(ParseError::UnknownType(other.to_string())),
    }
}

/// Parses a list response.
pub fn parse_pod_list(body: &[u8]) -> Result<PodList, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::List(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d4b9c","namespace":"shop","uid":"1f0c","resourceVersion":"812","labels":{"app.kubernetes.io/name":"web"},"annotations":{"prometheus.io/scrape":"true"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b","uid":"9","controller":true,"blockOwnerDeletion":true}]},"spec":{"nodeName":"node-1","containers":[{"name":"web","image":"web:1","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}]}]},"status":{"phase":"Running","hostIP":"10.0.0.5","podIP":"10.1.0.7","conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"web","ready":true,"restartCount":3,"containerID":"containerd://ab"}]}}"#;

    #[test]
    fn events_of_every_type() {
        let event = parse_watch_event(format!(r#"{{"type":"ADDED","object":{POD}}}"#).as_bytes())
            .expect("added");
        let WatchEvent::Added(pod) = event else {
            panic!("{event:?}")
        };
        assert_eq!(pod.key(), "shop/web-7d4b9c");
        assert_eq!(pod.ready(), "true");
        assert_eq!(pod.status.container_statuses[0].restart_count, 3);
        assert_eq!(
            pod.controller().map(|c| c.kind.as_str()),
            Some("ReplicaSet")
        );
        assert_eq!(pod.spec.containers[0].ports[0].container_port, 8080);
        let bookmark = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12746"}}}"#;
        assert_eq!(
            parse_watch_event(bookmark),
            Ok(WatchEvent::Bookmark("12746".into()))
        );
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (812)","reason":"Expired","code":410}}"#;
        let WatchEvent::Error(status) = parse_watch_event(gone).expect("error") else {
            panic!()
        };
        assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for line in [
            &b"{"[..],
            b"[]",
            b"null",
            br#"{"type":"ADDED","object":[1]}"#,
            br#"{"type":"ADDED","object":{"metadata":{"name":5}}}"#,
            br#"{"type":"RENAMED","object":{}}"#,
            br#"{"type":"MODIFIED","object":{"status":{"containerStatuses":[{"restartCount":-1}]}}}"#,
            b"\xff\xfe",
        ] {
            assert!(parse_watch_event(line).is_err(), "{:?}", String::from_utf8_lossy(line));
        }
        assert!(parse_pod_list(b"{\"items\": 3}").is_err());
        assert_eq!(parse_pod_list(b"{}").expect("empty").items, vec![]);
    }
}
