//! DescribeCluster (key 60): the cluster id, the controller and the brokers.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use ironlog_protocol::kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::broker::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    _request: DescribeClusterRequest,
    _version: i16,
) -> DescribeClusterResponse {
    let c = &broker.config;
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.replicas.metadata().cluster_id.clone()))
        .with_controller_id(c.node_id.into())
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(c.node_id.into())
            .with_host(str_bytes(c.advertised_host.clone()))
            .with_port(c.advertised_port)
            .with_rack(None)])
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
