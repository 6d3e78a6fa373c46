//! Request handlers, one file per Kafka API. Each handler turns a decoded request into its
//! response; [`dispatch`] picks the handler, encodes the response in the request's version
//! and records metrics. Kafka error codes are chosen here, at the handler boundary, from the
//! typed errors of the layers below.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_quorum;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ironlog_protocol::kafka_protocol::messages::{RequestHeader, RequestKind};
use ironlog_protocol::kafka_protocol::protocol::StrBytes;
use ironlog_protocol::legacy;
use ironlog_protocol::response::{encode_response, EncodeError};
use ironlog_protocol::{ApiKey, ResponseError};

use crate::broker::Broker;
use crate::net::session::Session;

/// Kafka's "authorized operations not requested" marker.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Handles one decoded request. `Ok(None)`: no response is owed (Produce with acks=0).
pub async fn dispatch(
    broker: &Arc<Broker>,
    session: &mut Session,
    api: ApiKey,
    header: &RequestHeader,
    body: RequestKind,
) -> Result<Option<Bytes>, EncodeError> {
    // A legacy version (ironlog_protocol::legacy) was decoded as a newer one, and is
    // handled and answered as that one; only DescribeConfigs v0's answer differs.
    let v = legacy::effective_version(api, header.request_api_version);
    let cid = header.correlation_id;
    let api = api_name(api);
    let started = Instant::now();
    broker.metrics.requests.with_label_values(&[api]).inc();
    let response = match body {
        RequestKind::ApiVersions(r) => Some(encode_response(cid, v, &api_versions::handle(&r, v))?),
        RequestKind::Metadata(r) => Some(encode_response(
            cid,
            v,
            &metadata::handle(broker, &session.listener.name, r, v).await,
        )?),
        RequestKind::Produce(r) => match produce::handle(broker, r, v).await {
            Some(resp) => Some(encode_response(cid, v, &resp)?),
            None => None,
        },
        RequestKind::Fetch(r) => Some(encode_response(cid, v, &fetch::handle(broker, r, v).await)?),
        RequestKind::OffsetForLeaderEpoch(r) => Some(encode_response(
            cid,
            v,
            &offset_for_leader_epoch::handle(broker, r, v),
        )?),
        RequestKind::ListOffsets(r) => Some(encode_response(
            cid,
            v,
            &list_offsets::handle(broker, r, v),
        )?),
        RequestKind::CreateTopics(r) => Some(encode_response(
            cid,
            v,
            &create_topics::handle(broker, r, v).await,
        )?),
        RequestKind::DeleteTopics(r) => Some(encode_response(
            cid,
            v,
            &delete_topics::handle(broker, r, v).await,
        )?),
        RequestKind::CreatePartitions(r) => Some(encode_response(
            cid,
            v,
            &create_partitions::handle(broker, r, v).await,
        )?),
        RequestKind::DescribeConfigs(r) => {
            let response = describe_configs::handle(broker, r, v);
            Some(if header.request_api_version == 0 {
                legacy::encode_describe_configs_v0(cid, &response)?
            } else {
                encode_response(cid, v, &response)?
            })
        }
        RequestKind::AlterConfigs(r) => Some(encode_response(
            cid,
            v,
            &alter_configs::handle(broker, r, v).await,
        )?),
        RequestKind::IncrementalAlterConfigs(r) => Some(encode_response(
            cid,
            v,
            &incremental_alter_configs::handle(broker, r, v).await,
        )?),
        RequestKind::DeleteRecords(r) => Some(encode_response(
            cid,
            v,
            &delete_records::handle(broker, r, v),
        )?),
        RequestKind::DescribeCluster(r) => Some(encode_response(
            cid,
            v,
            &describe_cluster::handle(broker, &session.listener.name, r, v),
        )?),
        RequestKind::InitProducerId(r) => Some(encode_response(
            cid,
            v,
            &init_producer_id::handle(broker, r, v).await,
        )?),
        RequestKind::FindCoordinator(r) => Some(encode_response(
            cid,
            v,
            &find_coordinator::handle(broker, &session.listener.name, r, v).await,
        )?),
        RequestKind::JoinGroup(r) => {
            let client_id = header
                .client_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            Some(encode_response(
                cid,
                v,
                &join_group::handle(broker, r, v, client_id).await,
            )?)
        }
        RequestKind::SyncGroup(r) => Some(encode_response(
            cid,
            v,
            &sync_group::handle(broker, r, v).await,
        )?),
        RequestKind::Heartbeat(r) => {
            Some(encode_response(cid, v, &heartbeat::handle(broker, r, v))?)
        }
        RequestKind::LeaveGroup(r) => {
            Some(encode_response(cid, v, &leave_group::handle(broker, r, v))?)
        }
        RequestKind::OffsetCommit(r) => Some(encode_response(
            cid,
            v,
            &offset_commit::handle(broker, r, v).await,
        )?),
        RequestKind::OffsetFetch(r) => Some(encode_response(
            cid,
            v,
            &offset_fetch::handle(broker, r, v),
        )?),
        RequestKind::ListGroups(r) => {
            Some(encode_response(cid, v, &list_groups::handle(broker, r, v))?)
        }
        RequestKind::DescribeGroups(r) => Some(encode_response(
            cid,
            v,
            &describe_groups::handle(broker, r, v),
        )?),
        RequestKind::DeleteGroups(r) => Some(encode_response(
            cid,
            v,
            &delete_groups::handle(broker, r, v),
        )?),
        RequestKind::OffsetDelete(r) => Some(encode_response(
            cid,
            v,
            &offset_delete::handle(broker, r, v),
        )?),
        RequestKind::DescribeQuorum(r) => Some(encode_response(
            cid,
            v,
            &describe_quorum::handle(broker, r, v),
        )?),
        RequestKind::AlterPartitionReassignments(r) => Some(encode_response(
            cid,
            v,
            &alter_partition_reassignments::handle(broker, r, v).await,
        )?),
        RequestKind::ListPartitionReassignments(r) => Some(encode_response(
            cid,
            v,
            &list_partition_reassignments::handle(broker, r, v),
        )?),
        RequestKind::ElectLeaders(r) => Some(encode_response(
            cid,
            v,
            &elect_leaders::handle(broker, r, v).await,
        )?),
        RequestKind::SaslHandshake(r) => Some(encode_response(
            cid,
            v,
            &sasl_handshake::handle(broker, session, r, v),
        )?),
        RequestKind::SaslAuthenticate(r) => Some(encode_response(
            cid,
            v,
            &sasl_authenticate::handle(broker, session, r, v),
        )?),
        RequestKind::DescribeUserScramCredentials(r) => Some(encode_response(
            cid,
            v,
            &describe_user_scram_credentials::handle(broker, r, v),
        )?),
        RequestKind::AlterUserScramCredentials(r) => Some(encode_response(
            cid,
            v,
            &alter_user_scram_credentials::handle(broker, r, v).await,
        )?),
        _ => {
            // decode_header only lets served APIs through, so this is a missing arm above.
            return Err(EncodeError {
                message: api,
                version: v,
                reason: "the API is advertised but has no handler".into(),
            });
        }
    };
    broker
        .metrics
        .request_duration
        .with_label_values(&[api])
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// The API's name as used in metric labels (`Produce`, `Fetch`, ...).
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        _ => "Other",
    }
}

/// Records `error` for `api` in the metrics and returns its code (0 for `None`).
pub fn error_code(broker: &Broker, api: &str, error: Option<ResponseError>) -> i16 {
    match error {
        Some(e) => {
            broker.metrics.record_error(api, e);
            e.code()
        }
        None => 0,
    }
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
