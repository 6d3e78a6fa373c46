use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{broker_listeners, owned_meta, selector_labels, Names, CONTROLLER_PORT};
use crate::crd::KafkaCluster;

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    }
}

/// Headless Service giving each broker a stable DNS name. Not-ready addresses are published so
/// Raft voters can find each other before any of them is ready.
pub fn build_headless_service(kc: &KafkaCluster) -> Service {
    Service {
        metadata: owned_meta(kc, Names::of(kc).headless_service()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(kc)),
            ports: Some(
                broker_listeners(&kc.spec)
                    .iter()
                    .map(|l| port(&l.port_name, l.port))
                    .chain([port("controller", CONTROLLER_PORT)])
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// ClusterIP Service clients bootstrap from, on every listener (and the operator on the
/// internal one); only ready brokers receive traffic.
pub fn build_bootstrap_service(kc: &KafkaCluster) -> Service {
    Service {
        metadata: owned_meta(kc, Names::of(kc).bootstrap_service()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector_labels(kc)),
            ports: Some(
                broker_listeners(&kc.spec)
                    .iter()
                    .map(|l| port(&l.port_name, l.port))
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    #[test]
    fn headless_publishes_not_ready_addresses() {
        let svc = build_headless_service(&cluster(3));
        assert_eq!(svc.metadata.name.as_deref(), Some("events-brokers"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let ports: Vec<_> = spec.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, [9092, 9093]);
        assert_eq!(
            spec.selector.unwrap()["app.kubernetes.io/instance"],
            "events"
        );
    }

    #[test]
    fn bootstrap_is_cluster_ip_on_kafka_port() {
        let svc = build_bootstrap_service(&cluster(3));
        assert_eq!(svc.metadata.name.as_deref(), Some("events-bootstrap"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.publish_not_ready_addresses, None);
        assert_eq!(spec.ports.unwrap()[0].port, 9092);
    }
}
