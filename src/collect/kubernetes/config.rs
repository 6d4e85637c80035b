//! The `collectors.kubernetes` section and a scrape job's
//! `kubernetes_sd_configs`. Field docs here are the user docs: keep
//! docs/configuration.md and docs/kubernetes.md in step with them.
//!
//! This file owns the types and how the section resolves against the
//! environment ([`KubernetesConfig::resolve`]); it does no network I/O.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::values::{ByteSize, PromDuration};

/// Where a pod's service-account token and the cluster CA are mounted.
pub const IN_CLUSTER_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// `collectors.kubernetes.enabled`: `auto`, `true` or `false`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// On when running in a pod: `KUBERNETES_SERVICE_HOST` is set and the
    /// token and CA files exist.
    #[default]
    Auto,
    On,
    Off,
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ActivationVisitor;
        impl serde::de::Visitor<'_> for ActivationVisitor {
            type Value = Activation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`auto`, `true` or `false`")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Activation, E> {
                Ok(if b { Activation::On } else { Activation::Off })
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Activation, E> {
                match s.to_ascii_lowercase().as_str() {
                    "auto" => Ok(Activation::Auto),
                    "true" => Ok(Activation::On),
                    "false" => Ok(Activation::Off),
                    _ => Err(E::custom(format!(
                        "`{s}` is not a valid value for enabled: use auto, true or false"
                    ))),
                }
            }
        }
        d.deserialize_any(ActivationVisitor)
    }
}

/// The Kubernetes collector (src/collect/kubernetes): lists and watches the
/// pods of this node, stores pod metrics, and feeds `kubernetes_sd_configs`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// `auto` (default): on when running in a pod (`KUBERNETES_SERVICE_HOST`
    /// set, token and CA files present); `true`: always on; `false`: off.
    pub enabled: Activation,
    /// The API server's URL. Default
    /// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub api_server: Option<String>,
    /// Bearer token file, re-read on every (re)connect. Default the pod's
    /// service-account token.
    pub token_file: String,
    /// CA bundle (PEM) the API server's certificate is verified with.
    /// Default the pod's service-account `ca.crt`.
    pub ca_file: String,
    /// The node whose pods are watched. Default `$NODE_NAME` (set it from
    /// `spec.nodeName` with the downward API).
    pub node_name: Option<String>,
    /// The `job` label of the pod metrics. Default `kubernetes`; must not be
    /// the `job_name` of a scrape job.
    pub job_name: String,
    /// The built-in scrape job for pods annotated `prometheus.io/scrape:
    /// "true"` (Prometheus's example relabeling). Default `kubernetes-pods`;
    /// empty turns it off; a scrape job of the same name replaces it.
    pub pods_job: String,
    /// How often the pod metrics are stored. Default `global.scrape_interval`.
    pub interval: Option<PromDuration>,
    /// Timeout of connecting and of a list request. Default 30s.
    pub request_timeout: PromDuration,
    /// How long one watch request lasts (`timeoutSeconds`) before it is
    /// renewed. Default 5m.
    pub watch_timeout: PromDuration,
    /// Longest wait between reconnection attempts (the backoff starts at
    /// 500ms and doubles). Default 30s.
    pub backoff_max: PromDuration,
    /// Largest list response accepted. Default 64MB.
    pub max_list_size: ByteSize,
    /// Largest single watch event accepted. Default 4MB.
    pub max_event_size: ByteSize,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            enabled: Activation::Auto,
            api_server: None,
            token_file: format!("{IN_CLUSTER_DIR}/token"),
            ca_file: format!("{IN_CLUSTER_DIR}/ca.crt"),
            node_name: None,
            job_name: "kubernetes".to_string(),
            pods_job: "kubernetes-pods".to_string(),
            interval: None,
            request_timeout: PromDuration::from_secs(30),
            watch_timeout: PromDuration::from_secs(300),
            backoff_max: PromDuration::from_secs(30),
            max_list_size: ByteSize(64 * 1024 * 1024),
            max_event_size: ByteSize(4 * 1024 * 1024),
        }
    }
}

/// The section resolved against the environment: everything the watcher
/// needs, or why it cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Without a trailing slash.
    pub api_server: String,
    pub token_file: String,
    pub ca_file: String,
    pub node_name: String,
    pub request_timeout: Duration,
    pub watch_timeout: Duration,
    pub backoff_max: Duration,
    pub max_list_size: u64,
    pub max_event_size: u64,
}

impl KubernetesConfig {
    /// `Ok(None)` when the collector is off (explicitly, or `auto` outside a
    /// pod); an error naming the missing setting when it should run but cannot.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        exists: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Settings>, String> {
        let service_host = env("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty());
        match self.enabled {
            Activation::Off => return Ok(None),
            Activation::Auto => {
                if service_host.is_none() || !exists(&self.token_file) || !exists(&self.ca_file) {
                    return Ok(None);
                }
            }
            Activation::On => {}
        }
        let api_server = match (&self.api_server, &service_host) {
            (Some(url), _) => url.clone(),
            (None, Some(host)) => {
                let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".to_string());
                // An IPv6 service address needs brackets in a URL.
                if host.contains(':') {
                    format!("https://[{host}]:{port}")
                } else {
                    format!("https://{host}:{port}")
                }
            }
            (None, None) => {
                return Err("collectors.kubernetes.api_server is not set and KUBERNETES_SERVICE_HOST is empty: set api_server".to_string())
            }
        };
        if !(api_server.starts_with("https://") || api_server.starts_with("http://")) {
            return Err(format!(
                "collectors.kubernetes.api_server {api_server:?} must be an http:// or https:// URL"
            ));
        }
        let node_name = match self.node_name.clone().or_else(|| env("NODE_NAME")) {
            Some(name) if !name.is_empty() => name,
            _ => return Err("collectors.kubernetes.node_name is not set and NODE_NAME is empty: set NODE_NAME from spec.nodeName with the downward API (see docs/kubernetes.md)".to_string()),
        };
        Ok(Some(Settings {
            api_server: api_server.trim_end_matches('/').to_string(),
            token_file: self.token_file.clone(),
            ca_file: self.ca_file.clone(),
            node_name,
            request_timeout: self.request_timeout.0.max(Duration::from_millis(100)),
            watch_timeout: self.watch_timeout.0.max(Duration::from_secs(1)),
            backoff_max: self.backoff_max.0.max(Duration::from_millis(500)),
            max_list_size: self.max_list_size.0,
            max_event_size: self.max_event_size.0,
        }))
    }
}

/// The one discovery role bellwether supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Pod,
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::values::deserialize_parsed(d, "a Kubernetes SD role", |role| {
            match role {
            "pod" => Ok(Role::Pod),
            "node" | "service" | "endpoints" | "endpointslice" | "ingress" => Err(format!(
                "role `{role}` is not supported by bellwether's kubernetes_sd_configs: only `pod` (the pods of this node, from collectors.kubernetes)"
            )),
            _ => Err(format!(
                "unknown role `{role}`: bellwether's kubernetes_sd_configs supports `pod` only"
            )),
        }
        })
    }
}

/// One `kubernetes_sd_configs` entry of a scrape job: Prometheus's syntax,
/// restricted to the pods of this node, reached through `collectors.kubernetes`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    /// Required; only `pod`.
    pub role: Role,
    /// Only pods in these namespaces. Default all.
    #[serde(default)]
    pub namespaces: NamespaceFilter,
}

/// `kubernetes_sd_configs[].namespaces`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFilter {
    /// Namespace names; empty means all.
    #[serde(default)]
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> KubernetesConfig {
        serde_json::from_value(serde_json::from_str(yaml).expect("json")).expect("config")
    }

    #[test]
    fn auto_needs_the_service_host_and_both_files() {
        let c = KubernetesConfig::default();
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.0.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("6443".to_string()),
            "NODE_NAME" => Some("node-a".to_string()),
            _ => None,
        };
        let settings = c.resolve(&env, &|_| true).expect("ok").expect("on");
        assert_eq!(settings.api_server, "https://10.0.0.1:6443");
        assert_eq!(settings.node_name, "node-a");
        assert_eq!(settings.token_file, format!("{IN_CLUSTER_DIR}/token"));
        assert_eq!(c.resolve(&env, &|p| !p.ends_with("ca.crt")), Ok(None));
        assert_eq!(c.resolve(&|_| None, &|_| true), Ok(None));
    }

    #[test]
    fn explicit_settings_and_missing_node_name() {
        let c = config(
            r#"{"enabled": true, "api_server": "https://127.0.0.1:8443/", "node_name": "n1"}"#,
        );
        let s = c.resolve(&|_| None, &|_| false).expect("ok").expect("on");
        assert_eq!(s.api_server, "https://127.0.0.1:8443");
        assert_eq!(s.node_name, "n1");
        let c = config(r#"{"enabled": true, "api_server": "https://127.0.0.1:8443"}"#);
        let error = c.resolve(&|_| None, &|_| true).unwrap_err();
        assert!(error.contains("NODE_NAME"), "{error}");
        let c = config(r#"{"enabled": "false"}"#);
        assert_eq!(c.resolve(&|_| Some("x".into()), &|_| true), Ok(None));
    }

    #[test]
    fn roles_other_than_pod_are_refused_by_name() {
        let ok: KubernetesSdConfig = serde_json::from_str(r#"{"role": "pod"}"#).expect("pod");
        assert_eq!(ok.role, Role::Pod);
        let error = serde_json::from_str::<KubernetesSdConfig>(r#"{"role": "node"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("role `node` is not supported"), "{error}");
    }
}
