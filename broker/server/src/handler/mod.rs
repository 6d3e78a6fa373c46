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

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironlog_protocol::kafka_protocol::messages::{
    FetchRequest, FetchResponse, RequestHeader, RequestKind,
};
use ironlog_protocol::kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use ironlog_protocol::legacy;
use ironlog_protocol::response::{
    encode_fetch_response, encode_response, EncodeError, ResponseFrame,
};
use ironlog_protocol::{ApiKey, ResponseError};

use crate::authorizer::Access;
use crate::broker::Broker;
use crate::net::session::Session;
use crate::quota::QuotaType;
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
) -> Result<Option<ResponseFrame>, EncodeError> {
    // A legacy version (ironlog_protocol::legacy) was decoded as a newer one, and is
    // handled and answered as that one; only DescribeConfigs v0's answer differs.
    let v = legacy::effective_version(api, header.request_api_version);
    let cid = header.correlation_id;
    let api = api_name(api);
    let started = Instant::now();
    broker.metrics.requests.with_label_values(&[api]).inc();
    let request_quota = RequestQuota::of(broker, session, header, &body);
    let request_throttle = request_quota
        .as_ref()
        .map_or(Duration::ZERO, |q| q.throttle(broker, started));
    let access = Access::new(broker, session);
    let out = Reply {
        cid,
        v,
        throttle_ms: millis(request_throttle),
    };
    // The request quota counts the time the handler is polled (works), not the time it
    // waits (a long poll, acks=all, a group join), as Kafka counts I/O thread time and not
    // time in purgatory.
    let (response, busy) =
        busy_time(handle(broker, session, &access, header, body, api, out)).await;
    let response = response?;
    if let Some(quota) = &request_quota {
        let now = Instant::now();
        session.throttle(quota.record(broker, busy, now).max(request_throttle), now);
    }
    broker
        .metrics
        .request_duration
        .with_label_values(&[api])
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Handles one decoded request and encodes its response (`out`: the request's correlation id
/// and version, and the request-quota throttle to answer).
async fn handle(
    broker: &Arc<Broker>,
    session: &mut Session,
    access: &Access,
    header: &RequestHeader,
    body: RequestKind,
    api: &'static str,
    out: Reply,
) -> Result<Option<ResponseFrame>, EncodeError> {
    let Reply { cid, v, .. } = out;
    let response = match body {
        RequestKind::ApiVersions(r) => Some(out.encode(api_versions::handle(&r, v))?),
        RequestKind::Metadata(r) => {
            Some(out.encode(metadata::handle(broker, access, &session.listener.name, r, v).await)?)
        }
        RequestKind::Produce(r) => {
            let bytes: usize = r
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            let response = produce::handle(broker, access, r, v).await;
            let throttle = quota(broker, session, header, QuotaType::Produce, bytes);
            match response {
                Some(resp) => Some(out.encode_with(throttle, resp)?),
                None => None,
            }
        }
        RequestKind::Fetch(r) => {
            // Followers' fetches are replication, not a client's consumption.
            let from_replica = is_replica_fetch(&r);
            let response = fetch::handle(broker, access, r, v).await;
            let bytes: usize = response
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            let throttle = if from_replica {
                0
            } else {
                quota(broker, session, header, QuotaType::Fetch, bytes)
            };
            Some(out.encode_fetch(throttle, response)?)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            Some(out.encode(offset_for_leader_epoch::handle(broker, access, r, v))?)
        }
        RequestKind::ListOffsets(r) => {
            Some(out.encode(list_offsets::handle(broker, access, r, v))?)
        }
        RequestKind::CreateTopics(r) => {
            Some(out.encode(create_topics::handle(broker, access, r, v).await)?)
        }
        RequestKind::DeleteTopics(r) => {
            Some(out.encode(delete_topics::handle(broker, access, r, v).await)?)
        }
        RequestKind::CreatePartitions(r) => {
            Some(out.encode(create_partitions::handle(broker, access, r, v).await)?)
        }
        RequestKind::DescribeConfigs(r) => {
            let mut response = describe_configs::handle(broker, access, r, v);
            Some(if header.request_api_version == 0 {
                response.throttle_time_ms = out.throttle_ms;
                legacy::encode_describe_configs_v0(cid, &response)?.into()
            } else {
                out.encode(response)?
            })
        }
        RequestKind::AlterConfigs(r) => {
            Some(out.encode(alter_configs::handle(broker, access, r, v).await)?)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            Some(out.encode(incremental_alter_configs::handle(broker, access, r, v).await)?)
        }
        RequestKind::DeleteRecords(r) => {
            Some(out.encode(delete_records::handle(broker, access, r, v))?)
        }
        RequestKind::DescribeCluster(r) => {
            Some(out.encode(if access.cluster(AclOperation::Describe) {
                describe_cluster::handle(broker, &session.listener.name, r, v)
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::InitProducerId(r) => {
            Some(out.encode(init_producer_id::handle(broker, access, r, v).await)?)
        }
        RequestKind::FindCoordinator(r) => Some(out.encode(
            find_coordinator::handle(broker, access, &session.listener.name, r, v).await,
        )?),
        RequestKind::JoinGroup(r) => {
            let client_id = header
                .client_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            Some(
                out.encode(if access.group(AclOperation::Read, &r.group_id.0) {
                    join_group::handle(broker, r, v, client_id).await
                } else {
                    group_refused(broker, api)
                })?,
            )
        }
        RequestKind::SyncGroup(r) => Some(out.encode(
            if access.group(AclOperation::Read, &r.group_id.0) {
                sync_group::handle(broker, r, v).await
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::Heartbeat(r) => Some(out.encode(
            if access.group(AclOperation::Read, &r.group_id.0) {
                heartbeat::handle(broker, r, v)
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::LeaveGroup(r) => Some(out.encode(
            if access.group(AclOperation::Read, &r.group_id.0) {
                leave_group::handle(broker, r, v)
            } else {
                group_refused(broker, api)
            },
        )?),
        RequestKind::OffsetCommit(r) => {
            Some(out.encode(offset_commit::handle(broker, access, r, v).await)?)
        }
        RequestKind::OffsetFetch(r) => {
            Some(out.encode(offset_fetch::handle(broker, access, r, v))?)
        }
        RequestKind::ListGroups(r) => Some(out.encode(list_groups::handle(broker, access, r, v))?),
        RequestKind::DescribeGroups(r) => {
            Some(out.encode(describe_groups::handle(broker, access, r, v))?)
        }
        RequestKind::DeleteGroups(r) => {
            Some(out.encode(delete_groups::handle(broker, access, r, v))?)
        }
        RequestKind::OffsetDelete(r) => {
            Some(out.encode(offset_delete::handle(broker, access, r, v))?)
        }
        RequestKind::DescribeQuorum(r) => {
            Some(out.encode(if access.cluster(AclOperation::Describe) {
                describe_quorum::handle(broker, r, v)
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            Some(out.encode(if access.cluster(AclOperation::Alter) {
                alter_partition_reassignments::handle(broker, r, v).await
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::ListPartitionReassignments(r) => {
            Some(out.encode(if access.cluster(AclOperation::Describe) {
                list_partition_reassignments::handle(broker, r, v)
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::ElectLeaders(r) => {
            Some(out.encode(if access.cluster(AclOperation::Alter) {
                elect_leaders::handle(broker, r, v).await
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::SaslHandshake(r) => {
            Some(encode_response(cid, v, &sasl_handshake::handle(broker, session, r, v))?.into())
        }
        RequestKind::SaslAuthenticate(r) => {
            Some(encode_response(cid, v, &sasl_authenticate::handle(broker, session, r, v))?.into())
        }
        RequestKind::DescribeUserScramCredentials(r) => {
            Some(out.encode(if access.cluster(AclOperation::Describe) {
                describe_user_scram_credentials::handle(broker, r, v)
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::AlterUserScramCredentials(r) => {
            Some(out.encode(alter_user_scram_credentials::handle(broker, access, r, v).await)?)
        }
        RequestKind::DescribeAcls(r) => {
            Some(out.encode(if access.cluster(AclOperation::Describe) {
                describe_acls::handle(broker, r, v)
            } else {
                refused(broker, api)
            })?)
        }
        RequestKind::DescribeClientQuotas(r) => Some(out.encode(
            if access.cluster(AclOperation::DescribeConfigs) {
                describe_client_quotas::handle(broker, r, v)
            } else {
                refused(broker, api)
            },
        )?),
        RequestKind::AlterClientQuotas(r) => {
            Some(out.encode(if access.cluster(AclOperation::AlterConfigs) {
                alter_client_quotas::handle(broker, r, v).await
            } else {
                alter_client_quotas_refused(broker, api, r)
            })?)
        }
        RequestKind::CreateAcls(r) => {
            Some(out.encode(create_acls::handle(broker, access, r, v).await)?)
        }
        RequestKind::DeleteAcls(r) => {
            Some(out.encode(delete_acls::handle(broker, access, r, v).await)?)
        }
        _ => {
            // decode_header only lets served APIs through, so this is a missing arm above.
            return Err(EncodeError {
                message: api,
                version: v,
                reason: "the API is advertised but has no handler".into(),
            });
        }
    };
    Ok(response)
}

/// Runs `work` and measures the time spent polling it (working), not waiting.
async fn busy_time<F: Future>(work: F) -> (F::Output, Duration) {
    let mut work = std::pin::pin!(work);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let polled = Instant::now();
        let result = work.as_mut().poll(cx);
        busy += polled.elapsed();
        result
    })
    .await;
    (output, busy)
}

/// Whether a Fetch comes from a follower (replication, not a client's consumption).
fn is_replica_fetch(r: &FetchRequest) -> bool {
    r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0
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
    kind: QuotaType,
    bytes: usize,
) -> i32 {
    let user = session.quota_user();
    let client_id = header.client_id.as_deref().unwrap_or("");
    let limit = broker
        .replicas
        .metadata()
        .client_quota(&user, client_id, kind.key());
    let now = Instant::now();
    let throttle = broker
        .quotas
        .record(&user, client_id, kind, bytes as f64, limit, now);
    session.throttle(throttle, now);
    millis(throttle)
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The client's request quota (`request_percentage`), when it has one and the request counts
/// against it: everything but ApiVersions, SASL authentication and followers' fetches.
struct RequestQuota {
    user: String,
    client_id: String,
    percent: f64,
}

impl RequestQuota {
    fn of(
        broker: &Broker,
        session: &Session,
        header: &RequestHeader,
        body: &RequestKind,
    ) -> Option<Self> {
        let exempt = match body {
            RequestKind::ApiVersions(_)
            | RequestKind::SaslHandshake(_)
            | RequestKind::SaslAuthenticate(_) => true,
            RequestKind::Fetch(r) => is_replica_fetch(r),
            _ => false,
        };
        let image = broker.replicas.metadata();
        // Asked for every request: without quotas, allocate nothing.
        if exempt || image.client_quotas.is_empty() {
            return None;
        }
        let user = session.quota_user();
        let client_id = header.client_id.as_deref().unwrap_or("").to_string();
        let percent = image.client_quota(&user, &client_id, QuotaType::Request.key())?;
        Some(RequestQuota {
            user,
            client_id,
            percent,
        })
    }

    /// How long the client is throttled for the thread time its requests used so far.
    fn throttle(&self, broker: &Broker, now: Instant) -> Duration {
        broker.quotas.throttle(
            &self.user,
            &self.client_id,
            QuotaType::Request,
            Some(self.percent),
            now,
        )
    }

    /// Counts `busy` thread time; returns the throttle it brings.
    fn record(&self, broker: &Broker, busy: Duration, now: Instant) -> Duration {
        broker.quotas.record(
            &self.user,
            &self.client_id,
            QuotaType::Request,
            QuotaType::amount_of(busy),
            Some(self.percent),
            now,
        )
    }
}

/// A response with Kafka's `throttle_time_ms`.
trait Throttled {
    fn set_throttle_time_ms(&mut self, ms: i32);
}

macro_rules! throttled {
    ($($response:ident),* $(,)?) => {
        $(impl Throttled for ironlog_protocol::kafka_protocol::messages::$response {
            fn set_throttle_time_ms(&mut self, ms: i32) {
                self.throttle_time_ms = ms;
            }
        })*
    };
}

throttled!(
    ApiVersionsResponse,
    MetadataResponse,
    ProduceResponse,
    FetchResponse,
    OffsetForLeaderEpochResponse,
    ListOffsetsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    CreatePartitionsResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    IncrementalAlterConfigsResponse,
    DeleteRecordsResponse,
    DescribeClusterResponse,
    InitProducerIdResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    ListGroupsResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    OffsetDeleteResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    ElectLeadersResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeAclsResponse,
    CreateAclsResponse,
    DeleteAclsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
);

/// DescribeQuorum answers have no throttle time: the connection is still muted.
impl Throttled for DescribeQuorumResponse {
    fn set_throttle_time_ms(&mut self, _ms: i32) {}
}

/// How a response is encoded: the request's correlation id and version, and how long the
/// client's request quota throttles it.
#[derive(Clone, Copy)]
struct Reply {
    cid: i32,
    v: i16,
    throttle_ms: i32,
}

impl Reply {
    /// Encodes `body` answering the request-quota throttle.
    fn encode<R: Encodable + HeaderVersion + Throttled>(
        self,
        body: R,
    ) -> Result<ResponseFrame, EncodeError> {
        self.encode_with(0, body)
    }

    /// Encodes `body` answering the longer of the request-quota throttle and `throttle_ms`
    /// (a byte-rate quota's).
    fn encode_with<R: Encodable + HeaderVersion + Throttled>(
        self,
        throttle_ms: i32,
        mut body: R,
    ) -> Result<ResponseFrame, EncodeError> {
        body.set_throttle_time_ms(throttle_ms.max(self.throttle_ms));
        encode_response(self.cid, self.v, &body).map(ResponseFrame::from)
    }

    /// [`Reply::encode_with`] for Fetch: the records stay in the buffers the log read them
    /// into and are written from there (see [`encode_fetch_response`]).
    fn encode_fetch(
        self,
        throttle_ms: i32,
        mut body: FetchResponse,
    ) -> Result<ResponseFrame, EncodeError> {
        body.set_throttle_time_ms(throttle_ms.max(self.throttle_ms));
        encode_fetch_response(self.cid, self.v, body)
    }
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
