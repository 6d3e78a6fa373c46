//! Request handlers, one file per Kafka API. Each handler turns a decoded request into its
//! response; [`dispatch`] picks the handler, encodes the response in the request's version
//! and records metrics. Kafka error codes are chosen here, at the handler boundary, from the
//! typed errors of the layers below.

pub mod acl_codes;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
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

use crate::authorizer::Access;
use crate::broker::Broker;
use crate::net::session::Session;
use crate::quota::Direction;
use ironlog_metadata::acl::AclOperation;
use ironlog_protocol::kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, AlterPartitionReassignmentsResponse,
    DescribeAclsResponse, DescribeClientQuotasResponse, DescribeClusterResponse,
    DescribeQuorumResponse, DescribeUserScramCredentialsResponse, ElectLeadersResponse,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, ListPartitionReassignmentsResponse,
    SyncGroupResponse,
};

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
    let access = Access::new(broker, session);
    let access = &access;
    let response = match body {
        RequestKind::ApiVersions(r) => Some(encode_response(cid, v, &api_versions::handle(&r, v))?),
        RequestKind::Metadata(r) => Some(encode_response(
            cid,
            v,
            &metadata::handle(broker, access, &session.listener.name, r, v).await,
        )?),
        RequestKind::Produce(r) => {
            let bytes: usize = r
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            let response = produce::handle(broker, access, r, v).await;
            let throttle = quota(broker, session, header, Direction::Produce, bytes);
            match response {
                Some(mut resp) => {
                    resp.throttle_time_ms = throttle;
                    Some(encode_response(cid, v, &resp)?)
                }
                None => None,
            }
        }
        RequestKind::Fetch(r) => {
            // Followers' fetches are replication, not a client's consumption.
            let from_replica = r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0;
            let mut response = fetch::handle(broker, access, r, v).await;
            let bytes: usize = response
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            if !from_replica {
                response.throttle_time_ms = quota(broker, session, header, Direction::Fetch, bytes);
            }
            Some(encode_response(cid, v, &response)?)
        }
        RequestKind::OffsetForLeaderEpoch(r) => Some(encode_response(
            cid,
            v,
            &offset_for_leader_epoch::handle(broker, access, r, v),
        )?),
        RequestKind::ListOffsets(r) => Some(encode_response(
            cid,
            v,
            &list_offsets::handle(broker, access, r, v),
        )?),
        RequestKind::CreateTopics(r) => Some(encode_response(
            cid,
            v,
            &create_topics::handle(broker, access, r, v).await,
        )?),
        RequestKind::DeleteTopics(r) => Some(encode_response(
            cid,
            v,
            &delete_topics::handle(broker, access, r, v).await,
        )?),
        RequestKind::CreatePartitions(r) => Some(encode_response(
            cid,
            v,
            &create_partitions::handle(broker, access, r, v).await,
        )?),
        RequestKind::DescribeConfigs(r) => {
            let response = describe_configs::handle(broker, access, r, v);
            Some(if header.request_api_version == 0 {
                legacy::encode_describe_configs_v0(cid, &response)?
            } else {
                encode_response(cid, v, &response)?
            })
        }
        RequestKind::AlterConfigs(r) => Some(encode_response(
            cid,
            v,
            &alter_configs::handle(broker, access, r, v).await,
        )?),
        RequestKind::IncrementalAlterConfigs(r) => Some(encode_response(
            cid,
            v,
            &incremental_alter_configs::handle(broker, access, r, v).await,
        )?),
        RequestKind::DeleteRecords(r) => Some(encode_response(
            cid,
            v,
            &delete_records::handle(broker, access, r, v),
        )?),
        RequestKind::DescribeCluster(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Describe) {
                describe_cluster::handle(broker, &session.listener.name, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::InitProducerId(r) => Some(encode_response(
            cid,
            v,
            &init_producer_id::handle(broker, access, r, v).await,
        )?),
        RequestKind::FindCoordinator(r) => Some(encode_response(
            cid,
            v,
            &find_coordinator::handle(broker, access, &session.listener.name, r, v).await,
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
                &if access.group(AclOperation::Read, &r.group_id.0) {
                    join_group::handle(broker, r, v, client_id).await
                } else {
                    group_refused(broker, api)
                },
            )?)
        }
        RequestKind::SyncGroup(r) => Some(encode_response(
            cid,
            v,
            &if access.group(AclOperation::Read, &r.group_id.0) {
                sync_group::handle(broker, r, v).await
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::Heartbeat(r) => Some(encode_response(
            cid,
            v,
            &if access.group(AclOperation::Read, &r.group_id.0) {
                heartbeat::handle(broker, r, v)
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::LeaveGroup(r) => Some(encode_response(
            cid,
            v,
            &if access.group(AclOperation::Read, &r.group_id.0) {
                leave_group::handle(broker, r, v)
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::OffsetCommit(r) => Some(encode_response(
            cid,
            v,
            &offset_commit::handle(broker, access, r, v).await,
        )?),
        RequestKind::OffsetFetch(r) => Some(encode_response(
            cid,
            v,
            &offset_fetch::handle(broker, access, r, v),
        )?),
        RequestKind::ListGroups(r) => Some(encode_response(
            cid,
            v,
            &list_groups::handle(broker, access, r, v),
        )?),
        RequestKind::DescribeGroups(r) => Some(encode_response(
            cid,
            v,
            &describe_groups::handle(broker, access, r, v),
        )?),
        RequestKind::DeleteGroups(r) => Some(encode_response(
            cid,
            v,
            &delete_groups::handle(broker, access, r, v),
        )?),
        RequestKind::OffsetDelete(r) => Some(encode_response(
            cid,
            v,
            &offset_delete::handle(broker, access, r, v),
        )?),
        RequestKind::DescribeQuorum(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Describe) {
                describe_quorum::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::AlterPartitionReassignments(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Alter) {
                alter_partition_reassignments::handle(broker, r, v).await
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::ListPartitionReassignments(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Describe) {
                list_partition_reassignments::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::ElectLeaders(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Alter) {
                elect_leaders::handle(broker, r, v).await
            } else {
                refused(broker, api)
            },
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
            &if access.cluster(AclOperation::Describe) {
                describe_user_scram_credentials::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::AlterUserScramCredentials(r) => Some(encode_response(
            cid,
            v,
            &alter_user_scram_credentials::handle(broker, access, r, v).await,
        )?),
        RequestKind::DescribeAcls(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::Describe) {
                describe_acls::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::DescribeClientQuotas(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::DescribeConfigs) {
                describe_client_quotas::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::AlterClientQuotas(r) => Some(encode_response(
            cid,
            v,
            &if access.cluster(AclOperation::AlterConfigs) {
                alter_client_quotas::handle(broker, r, v).await
            } else {
                alter_client_quotas_refused(broker, api, r)
            },
        )?),
        RequestKind::CreateAcls(r) => Some(encode_response(
            cid,
            v,
            &create_acls::handle(broker, access, r, v).await,
        )?),
        RequestKind::DeleteAcls(r) => Some(encode_response(
            cid,
            v,
            &delete_acls::handle(broker, access, r, v).await,
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
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        ApiKey::DescribeClientQuotas => "DescribeClientQuotas",
        ApiKey::AlterClientQuotas => "AlterClientQuotas",
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

/// Counts a client's produced or fetched bytes against its quota; returns the throttle time
/// to answer (ms) and mutes the connection for it. Replica fetches are not limited.
fn quota(
    broker: &Broker,
    session: &mut Session,
    header: &RequestHeader,
    direction: Direction,
    bytes: usize,
) -> i32 {
    let user = session.quota_user();
    let client_id = header.client_id.as_deref().unwrap_or("");
    let limit = broker
        .replicas
        .metadata()
        .client_quota(&user, client_id, direction.key());
    let now = std::time::Instant::now();
    let throttle = broker
        .quotas
        .record(&user, client_id, direction, bytes, limit, now);
    session.throttle(throttle, now);
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

/// A response that refuses a whole request in its top-level error code.
trait Refusable: Default {
    fn set_error_code(&mut self, code: i16);
}

macro_rules! refusable {
    ($($response:ty),* $(,)?) => {
        $(impl Refusable for $response {
            fn set_error_code(&mut self, code: i16) {
                self.error_code = code;
            }
        })*
    };
}

refusable!(
    DescribeClientQuotasResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    DescribeClusterResponse,
    DescribeQuorumResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    ElectLeadersResponse,
    DescribeUserScramCredentialsResponse,
    DescribeAclsResponse,
);

/// CLUSTER_AUTHORIZATION_FAILED for the whole request.
fn refused<R: Refusable>(broker: &Broker, api: &str) -> R {
    let mut response = R::default();
    response.set_error_code(error_code(
        broker,
        api,
        Some(ResponseError::ClusterAuthorizationFailed),
    ));
    response
}

/// CLUSTER_AUTHORIZATION_FAILED for each entry of an AlterClientQuotas.
fn alter_client_quotas_refused(
    broker: &Broker,
    api: &str,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    use ironlog_protocol::kafka_protocol::messages::alter_client_quotas_response::{
        EntityData, EntryData,
    };
    let code = error_code(broker, api, Some(ResponseError::ClusterAuthorizationFailed));
    AlterClientQuotasResponse::default().with_entries(
        request
            .entries
            .into_iter()
            .map(|e| {
                EntryData::default().with_error_code(code).with_entity(
                    e.entity
                        .into_iter()
                        .map(|d| {
                            EntityData::default()
                                .with_entity_type(d.entity_type)
                                .with_entity_name(d.entity_name)
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// GROUP_AUTHORIZATION_FAILED for the whole request.
fn group_refused<R: Refusable>(broker: &Broker, api: &str) -> R {
    let mut response = R::default();
    response.set_error_code(error_code(
        broker,
        api,
        Some(ResponseError::GroupAuthorizationFailed),
    ));
    response
}

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
