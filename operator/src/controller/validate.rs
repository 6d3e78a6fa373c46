//! Validation of a KafkaCluster beyond what the CRD schema can express. Pure.
//!
//! The schema already rejects out-of-range numbers and malformed sizes at admission; what is
//! left (cross-field rules, reserved config keys, name lengths) is reported here and ends up
//! as a `Degraded` condition with reason `InvalidSpec`.

use kube::ResourceExt;

use crate::crd::KafkaCluster;

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
];

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
    problems
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

    #[test]
    fn zero_replicas_is_rejected() {
        let mut kc = cluster(1);
        kc.spec.replicas = 0;
        assert!(!validate_cluster(&kc).is_empty());
    }
}
