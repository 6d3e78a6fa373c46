//! DescribeCluster (key 60): the cluster id, the controller (the Raft leader) and the
//! brokers that are not fenced, from this broker's metadata image.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use ironlog_protocol::kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    listener: &str,
    _request: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let image = broker.replicas.metadata();
    let brokers = image
        .live_brokers()
        .filter_map(|b| {
            // Brokers without this listener are left out, as in Kafka.
            let (host, port) = b.endpoint(listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(b.id.into())
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(broker.cluster.controller_id().unwrap_or(-1).into())
        .with_brokers(brokers)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
