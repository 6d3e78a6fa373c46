//! The brokers' listener layout, from `spec.listeners`, `spec.tls` and `spec.authorization`.
//!
//! Every user listener becomes a Kafka listener named as its upper-case name, on its port on
//! every broker and on the bootstrap Service. A secured cluster (see
//! [`KafkaClusterSpec::secured`]) adds the internal listener `REPLICATION` on
//! [`INTERNAL_PORT`], SASL_PLAINTEXT with SCRAM-SHA-512: followers fetch from it as
//! [`BROKER_USER`] and the operator calls the admin APIs on it as [`OPERATOR_USER`], both
//! super users, their passwords in the Secret `NAME-internal-users` that the operator
//! generates once. An unsecured cluster replicates over its first listener, as before.

use crate::crd::{AuthenticationType, KafkaClusterSpec, ListenerSpec};

use super::INTERNAL_PORT;

/// Kafka name of the internal listener.
pub const INTERNAL_LISTENER: &str = "REPLICATION";
/// Port name of the internal listener on pods and Services.
pub const INTERNAL_PORT_NAME: &str = "replication";
/// The principal followers fetch as, on a secured cluster.
pub const BROKER_USER: &str = "ironlog-broker";
/// The principal the operator calls the admin APIs as, on a secured cluster.
pub const OPERATOR_USER: &str = "ironlog-operator";
/// SASL mechanism of the internal users and of `scram-sha-512` listeners.
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";

/// One Kafka listener of every broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerListener {
    /// Kafka listener name (`PLAIN`, `REPLICATION`).
    pub kafka_name: String,
    /// Port name on the pod and the Services (the spec's lower-case name).
    pub port_name: String,
    pub port: i32,
    /// Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    pub protocol: &'static str,
    /// The operator's internal listener, not one of `spec.listeners`.
    pub internal: bool,
}

/// The security protocol a listener spec asks for.
pub fn security_protocol(l: &ListenerSpec) -> &'static str {
    let sasl = l.authentication.as_ref().map(|a| a.type_) == Some(AuthenticationType::ScramSha512);
    match (l.tls, sasl) {
        (false, false) => "PLAINTEXT",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// Every listener of a broker, `spec.listeners` in order, then the internal one when secured.
pub fn broker_listeners(spec: &KafkaClusterSpec) -> Vec<BrokerListener> {
    let mut out: Vec<BrokerListener> = spec
        .listeners
        .iter()
        .map(|l| BrokerListener {
            kafka_name: l.name.to_ascii_uppercase(),
            port_name: l.name.clone(),
            port: l.port,
            protocol: security_protocol(l),
            internal: false,
        })
        .collect();
    if spec.secured() {
        out.push(BrokerListener {
            kafka_name: INTERNAL_LISTENER.to_string(),
            port_name: INTERNAL_PORT_NAME.to_string(),
            port: INTERNAL_PORT,
            protocol: "SASL_PLAINTEXT",
            internal: true,
        });
    }
    out
}

/// The listener brokers replicate over (and the operator talks to): the internal one when
/// secured, else the first.
pub fn inter_broker_listener(spec: &KafkaClusterSpec) -> BrokerListener {
    let all = broker_listeners(spec);
    all.iter()
        .find(|l| l.internal)
        .or_else(|| all.first())
        .cloned()
        .unwrap_or(BrokerListener {
            kafka_name: "PLAIN".to_string(),
            port_name: "plain".to_string(),
            port: super::KAFKA_PORT,
            protocol: "PLAINTEXT",
            internal: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;
    use crate::crd::{AuthorizationSpec, AuthorizationType, ListenerAuthentication};

    fn listener(
        name: &str,
        port: i32,
        tls: bool,
        auth: Option<AuthenticationType>,
    ) -> ListenerSpec {
        ListenerSpec {
            name: name.into(),
            port,
            tls,
            authentication: auth.map(|type_| ListenerAuthentication { type_ }),
        }
    }

    #[test]
    fn the_default_is_one_plaintext_listener_without_internal_one() {
        let kc = cluster(3);
        let all = broker_listeners(&kc.spec);
        assert_eq!(
            all,
            [BrokerListener {
                kafka_name: "PLAIN".into(),
                port_name: "plain".into(),
                port: 9092,
                protocol: "PLAINTEXT",
                internal: false,
            }]
        );
        assert_eq!(inter_broker_listener(&kc.spec).kafka_name, "PLAIN");
        assert!(!kc.spec.secured());
    }

    #[test]
    fn protocols_and_the_internal_listener_of_a_secured_cluster() {
        let mut kc = cluster(3);
        kc.spec.listeners = vec![
            listener("plain", 9092, false, None),
            listener("tls", 9094, true, None),
            listener("scram", 9095, false, Some(AuthenticationType::ScramSha512)),
            listener("secure", 9096, true, Some(AuthenticationType::ScramSha512)),
            listener("mtls", 9097, true, Some(AuthenticationType::Tls)),
        ];
        let got: Vec<_> = broker_listeners(&kc.spec)
            .into_iter()
            .map(|l| (l.kafka_name, l.port, l.protocol, l.internal))
            .collect();
        assert_eq!(
            got,
            [
                ("PLAIN".to_string(), 9092, "PLAINTEXT", false),
                ("TLS".to_string(), 9094, "SSL", false),
                ("SCRAM".to_string(), 9095, "SASL_PLAINTEXT", false),
                ("SECURE".to_string(), 9096, "SASL_SSL", false),
                ("MTLS".to_string(), 9097, "SSL", false),
                ("REPLICATION".to_string(), 9091, "SASL_PLAINTEXT", true),
            ]
        );
        assert_eq!(inter_broker_listener(&kc.spec).kafka_name, "REPLICATION");
    }

    #[test]
    fn authorization_alone_secures_the_internal_listener() {
        let mut kc = cluster(1);
        kc.spec.authorization = Some(AuthorizationSpec {
            type_: AuthorizationType::Simple,
            super_users: vec![],
        });
        assert!(kc.spec.secured());
        assert_eq!(inter_broker_listener(&kc.spec).port, 9091);
    }
}
