//! Validation of a KafkaCluster beyond what the CRD schema can express. Pure.
//!
//! The schema already rejects out-of-range numbers and malformed sizes at admission; what is
//! left (cross-field rules, reserved config keys, name lengths) is reported here and ends up
//! as a `Degraded` condition with reason `InvalidSpec`.

use kube::ResourceExt;

use super::build::{CONTROLLER_PORT, INTERNAL_PORT, METRICS_PORT};
use crate::crd::{AuthenticationType, KafkaCluster};

/// Config keys derived from the cluster layout; setting them would break broker identity.
pub const RESERVED_CONFIG_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "controller.quorum.voters",
    "controller.listener.names",
    "process.roles",
    "ironlog.metrics.listen",
    "ironlog.controller.advertised.listener",
    // Security: from spec.listeners, spec.tls and spec.authorization.
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "ironlog.tls.cert",
    "ironlog.tls.key",
    "ironlog.tls.client.ca",
    "ironlog.inter.broker.tls.ca",
    "ironlog.inter.broker.sasl.username",
    "ironlog.inter.broker.sasl.password",
    "ironlog.add.scram",
    "ironlog.authorizer",
    "super.users",
];

/// Ports the operator's own listeners take on every broker.
pub const RESERVED_PORTS: &[(i32, &str)] = &[
    (INTERNAL_PORT, "the internal listener"),
    (CONTROLLER_PORT, "the controller listener"),
    (METRICS_PORT, "the metrics endpoint"),
];

/// Listener names the operator's own listeners take.
pub const RESERVED_LISTENER_NAMES: &[&str] = &["controller", "replication"];

/// Longest cluster name: pod names `NAME-<ordinal>` must stay DNS labels and the StatefulSet's
/// `controller-revision-hash` label value (`NAME-<10 chars>`) at most 63 characters.
pub const MAX_NAME_LEN: usize = 52;

/// Every problem found, as human-readable sentences; empty means valid.
pub fn validate_cluster(kc: &KafkaCluster) -> Vec<String> {
    let spec = &kc.spec;
    let mut problems = Vec::new();
    let name = kc.name_any();
    if name.len() > MAX_NAME_LEN {
        problems.push(format!(
            "name {name:?} is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if spec.replicas < 1 {
        problems.push(format!(
            "replicas must be at least 1, got {}",
            spec.replicas
        ));
    }
    let controllers = spec.effective_controllers();
    if controllers < 1 || controllers > spec.replicas.max(1) {
        problems.push(format!(
            "controllers ({controllers}) must be between 1 and replicas ({})",
            spec.replicas
        ));
    }
    for key in spec.config.keys() {
        if RESERVED_CONFIG_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "config key {key:?} is set by the operator and cannot be overridden"
            ));
        }
    }
    for (key, value) in &spec.config {
        if key.is_empty() || key.contains(['=', '\n', ' ']) || value.contains('\n') {
            problems.push(format!("config entry {key:?} is not a valid property"));
        } else if !RESERVED_CONFIG_KEYS.contains(&key.as_str()) {
            // The broker refuses to start on a key or value it doesn't know: refuse it here,
            // before it reaches a single broker.
            if let Err(e) = ironlog_broker_config::check(key, value) {
                problems.push(format!("config: {e}"));
            }
        }
    }
    for key in [
        "default.replication.factor",
        "min.insync.replicas",
        "offsets.topic.replication.factor",
    ] {
        if let Some(value) = spec.config.get(key) {
            match value.parse::<i32>() {
                Ok(n) if n >= 1 && n <= spec.replicas => {}
                Ok(n) => problems.push(format!(
                    "config {key}={n} needs between 1 and replicas ({}) brokers",
                    spec.replicas
                )),
                // Reported by the key check above.
                Err(_) => {}
            }
        }
    }
    validate_listeners(kc, &mut problems);
    problems
}

/// Listener rules: unique names and ports clear of the operator's, TLS only with a
/// certificate, certificate authentication only on TLS listeners with a client CA, and, since
/// a client CA makes every TLS listener without SASL ask for a certificate, no such listener
/// left without authentication then.
fn validate_listeners(kc: &KafkaCluster, problems: &mut Vec<String>) {
    let spec = &kc.spec;
    let mut names = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for l in &spec.listeners {
        if !names.insert(l.name.as_str()) {
            problems.push(format!("listener name {:?} is used twice", l.name));
        }
        if RESERVED_LISTENER_NAMES.contains(&l.name.as_str()) {
            problems.push(format!(
                "listener name {:?} is reserved for the operator's own listener",
                l.name
            ));
        }
        if !ports.insert(l.port) {
            problems.push(format!("listener port {} is used twice", l.port));
        }
        if let Some((_, what)) = RESERVED_PORTS.iter().find(|(p, _)| *p == l.port) {
            problems.push(format!(
                "listener {} cannot use port {}: it is {what}'s",
                l.name, l.port
            ));
        }
        if l.tls && spec.tls.is_none() {
            problems.push(format!(
                "listener {} has tls: true but spec.tls.certificate names no certificate",
                l.name
            ));
        }
        if l.authentication.as_ref().map(|a| a.type_) == Some(AuthenticationType::Tls) {
            if !l.tls {
                problems.push(format!(
                    "listener {} authenticates with client certificates, which needs tls: true",
                    l.name
                ));
            }
            if spec
                .tls
                .as_ref()
                .and_then(|t| t.client_ca.as_ref())
                .is_none()
            {
                problems.push(format!(
                    "listener {} authenticates with client certificates, which needs spec.tls.clientCa",
                    l.name
                ));
            }
        }
    }
    if spec.tls.as_ref().is_some_and(|t| t.client_ca.is_some()) {
        for l in spec
            .listeners
            .iter()
            .filter(|l| l.tls && l.authentication.is_none())
        {
            problems.push(format!(
                "listener {} is TLS without authentication, but with spec.tls.clientCa every TLS \
                 listener without SASL asks for a client certificate: give it authentication type tls or scram-sha-512",
                l.name
            ));
        }
    }
    if let Some(authz) = &spec.authorization {
        for user in &authz.super_users {
            match user.split_once(':') {
                Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
                _ => problems.push(format!(
                    "super user {user:?} is not a principal like User:admin"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    #[test]
    fn defaults_are_valid() {
        assert!(validate_cluster(&cluster(1)).is_empty());
        assert!(validate_cluster(&cluster(5)).is_empty());
    }

    #[test]
    fn controllers_cannot_exceed_replicas() {
        let mut kc = cluster(2);
        kc.spec.controllers = Some(3);
        let p = validate_cluster(&kc);
        assert_eq!(p, ["controllers (3) must be between 1 and replicas (2)"]);
    }

    #[test]
    fn reserved_keys_are_rejected() {
        let mut kc = cluster(3);
        kc.spec.config.insert("node.id".into(), "7".into());
        kc.spec.config.insert("log.retention.ms".into(), "7".into());
        let p = validate_cluster(&kc);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("\"node.id\""));
    }

    #[test]
    fn keys_and_values_the_broker_would_refuse_are_rejected() {
        let mut kc = cluster(3);
        kc.spec.config.insert("retention.ms".into(), "7".into());
        kc.spec
            .config
            .insert("auto.create.topics.enable".into(), "yes".into());
        let p = validate_cluster(&kc);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("auto.create.topics.enable") && p[0].contains("true or false"),
            "{p:?}"
        );
        assert!(
            p[1].contains("\"retention.ms\"") && p[1].contains("log.retention.ms"),
            "{p:?}"
        );
    }

    #[test]
    fn replication_settings_must_fit_the_cluster() {
        let mut kc = cluster(2);
        kc.spec
            .config
            .insert("min.insync.replicas".into(), "3".into());
        kc.spec
            .config
            .insert("default.replication.factor".into(), "x".into());
        let p = validate_cluster(&kc);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().any(|m| m.contains("min.insync.replicas=3")));
        assert!(p.iter().any(|m| m.contains("not a whole number")));
    }

    #[test]
    fn malformed_entries_and_long_names() {
        let mut kc = cluster(1);
        kc.spec.config.insert("a b".into(), "1".into());
        kc.metadata.name = Some("x".repeat(60));
        let p = validate_cluster(&kc);
        assert_eq!(p.len(), 2, "{p:?}");
    }

    fn with_listeners(listeners: serde_json::Value, tls: serde_json::Value) -> KafkaCluster {
        let mut kc = cluster(3);
        kc.spec.listeners = serde_json::from_value(listeners).unwrap();
        kc.spec.tls = serde_json::from_value(tls).unwrap();
        kc
    }

    #[test]
    fn listener_rules() {
        use serde_json::json;
        let p = validate_cluster(&with_listeners(
            json!([
                {"name": "a", "port": 9092},
                {"name": "a", "port": 9092},
                {"name": "replication", "port": 9091},
                {"name": "secure", "port": 9094, "tls": true},
                {"name": "mtls", "port": 9095, "authentication": {"type": "tls"}},
            ]),
            json!(null),
        ));
        assert_eq!(
            p,
            [
                "listener name \"a\" is used twice",
                "listener port 9092 is used twice",
                "listener name \"replication\" is reserved for the operator's own listener",
                "listener replication cannot use port 9091: it is the internal listener's",
                "listener secure has tls: true but spec.tls.certificate names no certificate",
                "listener mtls authenticates with client certificates, which needs tls: true",
                "listener mtls authenticates with client certificates, which needs spec.tls.clientCa",
            ]
        );
        // A client CA makes every TLS listener without SASL ask for a certificate.
        let p = validate_cluster(&with_listeners(
            json!([
                {"name": "tls", "port": 9093 + 1, "tls": true},
                {"name": "mtls", "port": 9095, "tls": true, "authentication": {"type": "tls"}},
                {"name": "scram", "port": 9096, "tls": true, "authentication": {"type": "scram-sha-512"}},
            ]),
            json!({"certificate": {"secretName": "c"}, "clientCa": {"secretName": "ca"}}),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("listener tls is TLS without authentication"),
            "{p:?}"
        );
        let mut kc = cluster(1);
        kc.spec.authorization = serde_json::from_value(
            json!({"type": "simple", "superUsers": ["User:admin", "admin"]}),
        )
        .unwrap();
        assert_eq!(
            validate_cluster(&kc),
            ["super user \"admin\" is not a principal like User:admin"]
        );
    }

    #[test]
    fn security_keys_are_the_operators() {
        let mut kc = cluster(1);
        kc.spec
            .config
            .insert("ironlog.authorizer".into(), "acl".into());
        assert_eq!(
            validate_cluster(&kc),
            ["config key \"ironlog.authorizer\" is set by the operator and cannot be overridden"]
        );
    }

    #[test]
    fn zero_replicas_is_rejected() {
        let mut kc = cluster(1);
        kc.spec.replicas = 0;
        assert!(!validate_cluster(&kc).is_empty());
    }
}
