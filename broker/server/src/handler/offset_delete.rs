//! OffsetDelete (key 47): removes committed offsets of partitions whose topic the group
//! does not currently subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use ironlog_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use ironlog_protocol::kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use ironlog_protocol::schema;

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;
use crate::replica_manager::now_ms;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::ResponseError;

const API: &str = "OffsetDelete";

/// Topics in a consumer-protocol subscription (empty if it does not decode).
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    let layout = &schema::tables::consumer_protocol_subscription::CONSUMER_PROTOCOL_SUBSCRIPTION;
    schema::decode::<ConsumerProtocolSubscription>(layout, &mut buf, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

pub fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    if !access.group(AclOperation::Delete, &request.group_id.0) {
        return OffsetDeleteResponse::default().with_error_code(error_code(
            broker,
            API,
            Some(ResponseError::GroupAuthorizationFailed),
        ));
    }
    // Partitions of topics the principal may not read are answered
    // TOPIC_AUTHORIZATION_FAILED and left alone.
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| access.topic(AclOperation::Read, &t.name.0))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let result = broker.groups.delete_offsets(
        &broker.replicas,
        &request.group_id.0,
        &partitions,
        subscribed_topics,
        now_ms(),
    );
    let results = match result {
        Err(e) => {
            return OffsetDeleteResponse::default().with_error_code(error_code(
                broker,
                API,
                Some(e.response_error()),
            ))
        }
        Ok(r) => r,
    };
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let err = if access.topic(AclOperation::Read, &t.name.0) {
                        results
                            .iter()
                            .find(|((name, i), _)| *name == *t.name.0 && *i == p.partition_index)
                            .and_then(|(_, r)| r.as_ref().err().map(|e| e.response_error()))
                    } else {
                        Some(ResponseError::TopicAuthorizationFailed)
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(broker, API, err))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
