use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretKeySelector,
    SecretVolumeSource, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    broker_listeners, config_hash, labels, owned_meta, selector_labels, BrokerConfig, Capabilities,
    Names, BROKER_USER, CLIENT_CA_DIR, CONFIG_DIR, CONTROLLER_PORT, DATA_DIR, METRICS_PORT,
    OPERATOR_USER, PROPERTIES_FILE, SCRAM_MECHANISM, TLS_DIR,
};
use crate::crd::KafkaCluster;

/// Pod template annotation carrying [`config_hash`]; a change makes a new revision to roll.
pub const CONFIG_HASH_ANNOTATION: &str = "ironlog.dev/config-hash";

/// The broker StatefulSet.
///
/// `replicas` is decided by the scale logic (it lags `spec.replicas` while brokers are drained
/// before a scale-down). Pods start in parallel (voters must find each other to become ready) and
/// the update strategy is OnDelete: the operator restarts brokers itself, one at a time, only
/// when no partition is under-replicated.
pub fn build_statefulset(
    kc: &KafkaCluster,
    replicas: i32,
    config: &BrokerConfig,
    caps: Capabilities,
) -> StatefulSet {
    let names = Names::of(kc);
    let overrides = kc.spec.pod_template.clone().unwrap_or_default();

    let mut annotations = overrides.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), config_hash(config));

    let retention = caps.pvc_retention_policy.then(|| {
        let policy = if kc.spec.storage.delete_claim {
            "Delete"
        } else {
            "Retain"
        };
        StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some(policy.to_string()),
            when_scaled: Some(policy.to_string()),
        }
    });

    StatefulSet {
        metadata: owned_meta(kc, names.statefulset()),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names.headless_service()),
            pod_management_policy: Some("Parallel".to_string()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(kc)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(kc)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(kc, &names)),
            },
            volume_claim_templates: Some(vec![data_claim(kc)]),
            persistent_volume_claim_retention_policy: retention,
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn pod_spec(kc: &KafkaCluster, names: &Names) -> PodSpec {
    let overrides = kc.spec.pod_template.clone().unwrap_or_default();
    PodSpec {
        service_account_name: Some(names.service_account()),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(60),
        // The broker image runs as uid 1000; fsGroup makes the data volume writable for it.
        security_context: Some(PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            run_as_non_root: Some(true),
            fs_group: Some(1000),
            ..PodSecurityContext::default()
        }),
        affinity: affinity(kc, overrides.affinity),
        tolerations: (!overrides.tolerations.is_empty()).then_some(overrides.tolerations),
        node_selector: (!overrides.node_selector.is_empty()).then_some(overrides.node_selector),
        containers: vec![broker_container(kc, names)],
        volumes: Some(volumes(kc, names)),
        ..PodSpec::default()
    }
}

/// The ConfigMap, and the certificate Secrets of `spec.tls`. Kubernetes updates a mounted
/// Secret in place when it changes (a cert-manager renewal): the broker notices the new files
/// and serves the new certificate without a restart.
fn volumes(kc: &KafkaCluster, names: &Names) -> Vec<Volume> {
    let mut volumes = vec![Volume {
        name: "config".to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: names.config_map(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if let Some(tls) = &kc.spec.tls {
        volumes.push(secret_volume("tls", &tls.certificate.secret_name));
        if let Some(ca) = &tls.client_ca {
            volumes.push(secret_volume("client-ca", &ca.secret_name));
        }
    }
    volumes
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// User affinity, plus (with `rack.topologyKey`) a preference to spread brokers across racks.
fn affinity(kc: &KafkaCluster, user: Option<Affinity>) -> Option<Affinity> {
    let Some(rack) = &kc.spec.rack else {
        return user;
    };
    let mut affinity = user.unwrap_or_default();
    let anti = affinity
        .pod_anti_affinity
        .get_or_insert_with(PodAntiAffinity::default);
    anti.preferred_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: PodAffinityTerm {
                topology_key: rack.topology_key.clone(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector_labels(kc)),
                    ..LabelSelector::default()
                }),
                ..PodAffinityTerm::default()
            },
        });
    Some(affinity)
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    }
}

/// The broker container. It reads the cluster's `server.properties` (`IRONLOG_CONFIG`, the
/// ConfigMap mounted at [`CONFIG_DIR`]); the per-broker settings come from the environment,
/// which the broker ranks above the file: the advertised listeners from the pod name, and the
/// node id, the pod ordinal, taken from the pod name by the shell (`events-2` → 2) because
/// Kubernetes before 1.28 has no pod-index label to read through the downward API. On a
/// secured cluster the internal users' passwords come from their Secret: the broker's own for
/// replication, and both for `--add-scram`, which creates them at the first start.
fn broker_container(kc: &KafkaCluster, names: &Names) -> Container {
    let listeners = broker_listeners(&kc.spec);
    let advertised: Vec<String> = listeners
        .iter()
        .map(|l| {
            format!(
                "{}://$(POD_NAME).{}.{}.svc:{}",
                l.kafka_name,
                names.headless_service(),
                names.namespace,
                l.port
            )
        })
        .collect();
    let mut env_vars = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        env("IRONLOG_ADVERTISED_LISTENERS", advertised.join(",")),
        env("IRONLOG_CONFIG", format!("{CONFIG_DIR}/{PROPERTIES_FILE}")),
    ];
    if kc.spec.secured() {
        let secret = names.internal_users_secret();
        env_vars.push(secret_env(
            "IRONLOG_INTER_BROKER_SASL_PASSWORD",
            &secret,
            BROKER_USER,
        ));
        env_vars.push(secret_env("OPERATOR_PASSWORD", &secret, OPERATOR_USER));
        env_vars.push(env(
            "IRONLOG_ADD_SCRAM",
            format!(
                "{SCRAM_MECHANISM}=[name={BROKER_USER},password=$(IRONLOG_INTER_BROKER_SASL_PASSWORD)];\
                 {SCRAM_MECHANISM}=[name={OPERATOR_USER},password=$(OPERATOR_PASSWORD)]"
            ),
        ));
    }
    let mut ports: Vec<ContainerPort> = listeners
        .iter()
        .map(|l| container_port(&l.port_name, l.port))
        .collect();
    ports.push(container_port("controller", CONTROLLER_PORT));
    ports.push(container_port("metrics", METRICS_PORT));
    let mut mounts = vec![
        VolumeMount {
            name: "data".to_string(),
            mount_path: DATA_DIR.to_string(),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "config".to_string(),
            mount_path: CONFIG_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
    ];
    if let Some(tls) = &kc.spec.tls {
        mounts.push(VolumeMount {
            name: "tls".to_string(),
            mount_path: TLS_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        if tls.client_ca.is_some() {
            mounts.push(VolumeMount {
                name: "client-ca".to_string(),
                mount_path: CLIENT_CA_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
    }

    Container {
        name: "broker".to_string(),
        image: Some(kc.spec.image.clone()),
        command: Some(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "export IRONLOG_NODE_ID=\"${POD_NAME##*-}\"; exec ironlog broker".to_string(),
        ]),
        env: Some(env_vars),
        ports: Some(ports),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health".to_string()),
                port: IntOrString::String("metrics".to_string()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Liveness only asks whether the process serves at all: a broker that is alive but not
        // yet healthy (recovering its log, waiting for quorum) must not be killed.
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("metrics".to_string()),
                host: None,
            }),
            initial_delay_seconds: Some(30),
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..Probe::default()
        }),
        resources: kc.spec.resources.clone(),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn data_claim(kc: &KafkaCluster) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: kc.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(kc.spec.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;
    use crate::crd::{PodTemplateOverrides, RackSpec};

    fn env_of(sts: &StatefulSet) -> BTreeMap<String, Option<String>> {
        let c = &sts
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0];
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect()
    }

    fn no_config() -> BrokerConfig {
        BrokerConfig::of(&cluster(3))
    }

    #[test]
    fn statefulset_wires_identity_listeners_and_voters() {
        let kc = cluster(3);
        let sts = build_statefulset(&kc, 3, &no_config(), Capabilities::MODERN);
        assert_eq!(sts.metadata.name.as_deref(), Some("events"));
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("events-brokers"));
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
        assert_eq!(
            spec.update_strategy.as_ref().unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        let env = env_of(&sts);
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            [
                "IRONLOG_ADVERTISED_LISTENERS",
                "IRONLOG_CONFIG",
                "POD_NAME",
                "POD_NAMESPACE"
            ]
        );
        assert_eq!(
            env["IRONLOG_ADVERTISED_LISTENERS"].as_deref(),
            Some("PLAIN://$(POD_NAME).events-brokers.prod.svc:9092")
        );
        assert_eq!(
            env["IRONLOG_CONFIG"].as_deref(),
            Some("/etc/ironlog/server.properties")
        );
        let c = &spec.template.spec.as_ref().unwrap().containers[0];
        assert!(c.command.as_ref().unwrap()[2].contains("IRONLOG_NODE_ID=\"${POD_NAME##*-}\""));
        assert_eq!(c.image.as_deref(), Some(crate::crd::DEFAULT_IMAGE));
    }

    #[test]
    fn readiness_comes_from_broker_health_on_metrics_port() {
        let sts = build_statefulset(&cluster(1), 1, &no_config(), Capabilities::MODERN);
        let c = &sts.spec.unwrap().template.spec.unwrap().containers[0];
        let get = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(get.path.as_deref(), Some("/health"));
        assert_eq!(get.port, IntOrString::String("metrics".into()));
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.container_port)
            .collect();
        assert_eq!(ports, [9092, 9093, 9644]);
    }

    #[test]
    fn replicas_come_from_the_caller_not_the_spec() {
        let sts = build_statefulset(&cluster(5), 3, &no_config(), Capabilities::MODERN);
        assert_eq!(sts.spec.unwrap().replicas, Some(3));
    }

    #[test]
    fn config_change_changes_template_hash() {
        let kc = cluster(3);
        let a = build_statefulset(&kc, 3, &no_config(), Capabilities::MODERN);
        let mut changed = cluster(3);
        changed
            .spec
            .config
            .insert("num.partitions".to_string(), "12".to_string());
        let b = build_statefulset(&kc, 3, &BrokerConfig::of(&changed), Capabilities::MODERN);
        let hash = |s: &StatefulSet| {
            s.spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(
            env_of(&a),
            env_of(&b),
            "the config reaches brokers as a file"
        );
    }

    #[test]
    fn storage_claim_and_retention_policy() {
        let mut kc = cluster(3);
        kc.spec.storage.size = "50Gi".into();
        kc.spec.storage.storage_class_name = Some("fast".into());
        kc.spec.storage.delete_claim = true;
        let sts = build_statefulset(&kc, 3, &no_config(), Capabilities::MODERN);
        let spec = sts.spec.unwrap();
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("data"));
        let cspec = claim.spec.as_ref().unwrap();
        assert_eq!(cspec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            cspec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
            "50Gi"
        );
        let retention = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(retention.when_scaled.as_deref(), Some("Delete"));

        // Kubernetes 1.20 rejects the unknown field under server-side apply: leave it out.
        let old = Capabilities {
            pdb_v1: false,
            pvc_retention_policy: false,
        };
        let sts = build_statefulset(&kc, 3, &no_config(), old);
        assert!(sts
            .spec
            .unwrap()
            .persistent_volume_claim_retention_policy
            .is_none());
    }

    #[test]
    fn pod_template_overrides_and_rack_spread() {
        let mut kc = cluster(3);
        kc.spec.rack = Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".into(),
        });
        kc.spec.pod_template = Some(PodTemplateOverrides {
            annotations: BTreeMap::from([("a".to_string(), "b".to_string())]),
            node_selector: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
            ..PodTemplateOverrides::default()
        });
        let sts = build_statefulset(&kc, 3, &no_config(), Capabilities::MODERN);
        let tpl = sts.spec.unwrap().template;
        assert_eq!(tpl.metadata.unwrap().annotations.unwrap()["a"], "b");
        let pod = tpl.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["disk"], "ssd");
        let terms = pod
            .affinity
            .unwrap()
            .pod_anti_affinity
            .unwrap()
            .preferred_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(
            terms[0].pod_affinity_term.topology_key,
            "topology.kubernetes.io/zone"
        );
        assert_eq!(pod.service_account_name.as_deref(), Some("events-broker"));
        assert_eq!(pod.security_context.unwrap().fs_group, Some(1000));
    }
}
