//! Prometheus metrics, served on `GET /metrics`. Names use base units (`_seconds`,
//! `_bytes`, `_total`); labels are low-cardinality (API name, error name) except the
//! per-partition log gauges, which Kafka users expect.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::replica_manager::ReplicaManager;

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub errors: IntCounterVec,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    pub records_in: IntCounter,
    pub produced_bytes: IntCounter,
    pub connections_open: IntGauge,
    pub connections_total: IntCounter,
    /// `refused_frames_total{reason}`: requests and connections the broker refused and closed.
    pub refused: IntCounterVec,
    /// `queued_request_bytes`: request bytes currently held against `queued.max.request.bytes`.
    pub queued_request_bytes: IntGauge,
    /// `queued_request_max_bytes`: the configured `queued.max.request.bytes`.
    pub queued_request_max_bytes: IntGauge,
    /// `queued_request_waits_total`: requests that had to wait for that budget.
    pub queued_request_waits: IntCounter,
    /// `throttled_requests_total`: times a connection was muted by a quota.
    pub throttled_requests: IntCounter,
    log_start_offset: IntGaugeVec,
    log_end_offset: IntGaugeVec,
    log_size: IntGaugeVec,
    pub groups: GroupMetrics,
    pub cleaner: CleanerMetrics,
    pub cluster: ClusterMetrics,
    pub replication: ReplicationMetrics,
    pub fetch_sessions: FetchSessionMetrics,
}

/// Fetch sessions (KIP-227; Kafka's `kafka.server:type=FetchSessionCache` metrics).
pub struct FetchSessionMetrics {
    /// `incremental_fetch_sessions`: sessions in the cache (NumIncrementalFetchSessions).
    pub sessions: IntGauge,
    /// `incremental_fetch_partitions_cached`: partitions across those sessions
    /// (NumIncrementalFetchPartitionsCached).
    pub partitions_cached: IntGauge,
    /// `incremental_fetch_sessions_created_total`: sessions opened.
    pub created: IntCounter,
    /// `incremental_fetch_session_evictions_total`: sessions evicted to make room for new
    /// ones (IncrementalFetchSessionEvictionsPerSec).
    pub evictions: IntCounter,
    /// `incremental_fetches_total`: incremental Fetch requests answered.
    pub incremental_fetches: IntCounter,
}

impl FetchSessionMetrics {
    /// Sets the gauges from the cache.
    pub fn observe(&self, cache: &crate::fetch_session::FetchSessionCache) {
        self.sessions.set(cache.len() as i64);
        self.partitions_cached.set(cache.cached_partitions() as i64);
    }
}

/// Replication as seen by this broker's leaderships (Kafka's ReplicaManager metrics).
pub struct ReplicationMetrics {
    /// `isr_shrinks_total`, `isr_expands_total`: ISR changes this broker committed.
    pub isr_shrinks: IntCounter,
    pub isr_expands: IntCounter,
    /// `under_replicated_partitions`: partitions led here whose ISR is smaller than their
    /// replica set.
    pub under_replicated: IntGauge,
    /// `under_min_isr_partitions`: partitions led here whose ISR is below
    /// `min.insync.replicas` (acks=all is refused).
    pub under_min_isr: IntGauge,
    /// `replica_lag_records{topic,partition}`, `replica_lag_seconds{topic,partition}`: on
    /// the leader, how far the slowest follower is behind, in records and in time since it
    /// was last caught up.
    lag_records: IntGaugeVec,
    lag_seconds: prometheus::GaugeVec,
}

/// The metadata quorum and the cluster as this node sees them.
pub struct ClusterMetrics {
    /// `raft_term`, `raft_commit_index`, `raft_applied_index`: this node's Raft state.
    pub raft_term: IntGauge,
    pub raft_commit_index: IntGauge,
    pub raft_applied_index: IntGauge,
    /// `raft_leader_id`: the Raft leader (the controller), -1 when none is known.
    pub raft_leader_id: IntGauge,
    /// `raft_is_leader`: 1 on the controller.
    pub raft_is_leader: IntGauge,
    /// `brokers`, `fenced_brokers`: registered brokers, and those fenced among them.
    pub brokers: IntGauge,
    pub fenced_brokers: IntGauge,
    /// `offline_partitions`: partitions without a leader.
    pub offline_partitions: IntGauge,
}

impl ClusterMetrics {
    pub fn observe_quorum(&self, status: &ironlog_quorum::QuorumStatus) {
        self.raft_term.set(status.term as i64);
        self.raft_commit_index.set(status.commit_index as i64);
        self.raft_applied_index.set(status.applied_index as i64);
        self.raft_leader_id.set(status.leader.map_or(-1, i64::from));
        self.raft_is_leader.set(i64::from(status.is_leader));
    }

    pub fn observe_image(&self, image: &ironlog_metadata::MetadataImage) {
        self.brokers.set(image.brokers.len() as i64);
        self.fenced_brokers
            .set(image.brokers.values().filter(|b| b.fenced).count() as i64);
        self.offline_partitions
            .set(image.offline_partitions().len() as i64);
    }
}

/// The log cleaner's metrics (Kafka's `kafka.log:type=LogCleaner*` in Prometheus form).
pub struct CleanerMetrics {
    /// `log_cleaner_dirty_bytes`: bytes of compacted logs not cleaned yet (the backlog).
    pub dirty_bytes: IntGauge,
    /// `log_cleaner_max_dirty_ratio`: the highest dirty ratio of any compacted log.
    pub max_dirty_ratio: Gauge,
    /// `log_cleaner_last_pass_seconds`: how long the last pass took.
    pub last_pass_seconds: Gauge,
    /// `log_cleaner_last_pass_ratio`: bytes written / bytes read by the last pass.
    pub last_pass_ratio: Gauge,
    /// `log_cleaner_bytes_read_total` / `_written_total`: bytes the cleaner read and wrote.
    pub bytes_read: IntCounter,
    pub bytes_written: IntCounter,
    /// `log_cleaner_records_removed_total`: records compaction removed.
    pub records_removed: IntCounter,
    /// `log_cleaner_passes_total{outcome}`: cleaned, stale (segments changed meanwhile),
    /// failed.
    pub passes: IntCounterVec,
}

/// Consumer-group metrics, shared with the group coordinator (prometheus handles are
/// cheap clones of the same series).
#[derive(Clone)]
pub struct GroupMetrics {
    /// `consumergroup_lag{group,topic,partition}`: log end offset − committed offset.
    pub lag: IntGaugeVec,
    /// `consumergroup_members{group}`.
    pub members: IntGaugeVec,
    /// `consumergroup_rebalances_total{group}`.
    pub rebalances: IntCounterVec,
}

impl GroupMetrics {
    /// Drops the series of a deleted group.
    pub fn forget_group(&self, group: &str) {
        let _ = self.members.remove_label_values(&[group]);
        let _ = self.rebalances.remove_label_values(&[group]);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("ironlog".into()), None).expect("static prefix is valid");
        // Metric definitions are static: a failure here is a programming error caught by
        // the first test that starts a broker, hence the expects.
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let counter = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let gauge_vec = |name: &str, help: &str| {
            let m = IntGaugeVec::new(Opts::new(name, help), &["topic", "partition"])
                .expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from a request's arrival to its response, by API.",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["api"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(request_duration.clone()))
            .expect("unique metric");
        let connections_open =
            IntGauge::new("connections_open", "Client connections currently open.").expect("valid");
        registry
            .register(Box::new(connections_open.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let m = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let groups = {
            let gauge = |name: &str, help: &str, labels: &[&str]| {
                let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
                registry
                    .register(Box::new(m.clone()))
                    .expect("unique metric");
                m
            };
            GroupMetrics {
                lag: gauge(
                    "consumergroup_lag",
                    "Log end offset minus the group's committed offset, per partition.",
                    &["group", "topic", "partition"],
                ),
                members: gauge(
                    "consumergroup_members",
                    "Members of each consumer group.",
                    &["group"],
                ),
                rebalances: counter_vec(
                    "consumergroup_rebalances_total",
                    "Rebalances started, per consumer group.",
                    &["group"],
                ),
            }
        };
        let float_gauge = |name: &str, help: &str| {
            let m = Gauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let cleaner = CleanerMetrics {
            dirty_bytes: gauge(
                "log_cleaner_dirty_bytes",
                "Bytes of compacted logs written since their last cleaning: the cleaner's backlog.",
            ),
            max_dirty_ratio: float_gauge(
                "log_cleaner_max_dirty_ratio",
                "Highest dirty bytes / cleanable bytes of any compacted log.",
            ),
            last_pass_seconds: float_gauge(
                "log_cleaner_last_pass_seconds",
                "Duration of the last cleaning pass.",
            ),
            last_pass_ratio: float_gauge(
                "log_cleaner_last_pass_ratio",
                "Bytes written / bytes read by the last cleaning pass (lower: more removed).",
            ),
            bytes_read: counter(
                "log_cleaner_bytes_read_total",
                "Bytes the log cleaner read.",
            ),
            bytes_written: counter(
                "log_cleaner_bytes_written_total",
                "Bytes the log cleaner wrote.",
            ),
            records_removed: counter(
                "log_cleaner_records_removed_total",
                "Records removed by compaction.",
            ),
            passes: counter_vec(
                "log_cleaner_passes_total",
                "Cleaning passes, by outcome: cleaned, stale (segments changed meanwhile, \
                 work discarded), failed.",
                &["outcome"],
            ),
        };
        let cluster = ClusterMetrics {
            raft_term: gauge("raft_term", "Current Raft term of the metadata quorum."),
            raft_commit_index: gauge(
                "raft_commit_index",
                "Highest metadata log index known committed.",
            ),
            raft_applied_index: gauge(
                "raft_applied_index",
                "Highest metadata log index applied to this node's image.",
            ),
            raft_leader_id: gauge(
                "raft_leader_id",
                "Node id of the Raft leader (the controller); -1 when none is known.",
            ),
            raft_is_leader: gauge("raft_is_leader", "1 if this node is the controller."),
            brokers: gauge("brokers", "Brokers registered in the cluster metadata."),
            fenced_brokers: gauge(
                "fenced_brokers",
                "Registered brokers that are fenced (session expired or shut down).",
            ),
            offline_partitions: gauge("offline_partitions", "Partitions without a leader."),
        };
        let fetch_sessions = FetchSessionMetrics {
            sessions: gauge(
                "incremental_fetch_sessions",
                "Fetch sessions (KIP-227) in the cache.",
            ),
            partitions_cached: gauge(
                "incremental_fetch_partitions_cached",
                "Partitions across all fetch sessions in the cache.",
            ),
            created: counter(
                "incremental_fetch_sessions_created_total",
                "Fetch sessions opened.",
            ),
            evictions: counter(
                "incremental_fetch_session_evictions_total",
                "Fetch sessions evicted from a full cache to make room for new ones.",
            ),
            incremental_fetches: counter(
                "incremental_fetches_total",
                "Incremental Fetch requests (those of an existing fetch session) answered.",
            ),
        };
        Metrics {
            fetch_sessions,
            cleaner,
            cluster,
            groups,
            requests: counter_vec("requests_total", "Requests handled, by API.", &["api"]),
            errors: counter_vec(
                "errors_total",
                "Error codes returned, by API and Kafka error name.",
                &["api", "error"],
            ),
            bytes_in: counter(
                "network_received_bytes_total",
                "Bytes of requests received.",
            ),
            bytes_out: counter("network_sent_bytes_total", "Bytes of responses sent."),
            records_in: counter(
                "produced_records_total",
                "Records appended by Produce requests.",
            ),
            produced_bytes: counter(
                "produced_bytes_total",
                "Record batch bytes appended by Produce requests.",
            ),
            connections_total: counter(
                "connections_accepted_total",
                "Client connections accepted.",
            ),
            refused: counter_vec(
                "refused_frames_total",
                "Requests or connections the broker refused and closed, by reason: too_large, \
                 negative_size, malformed, unknown_api, unsupported_version, idle_timeout, \
                 read_timeout, queue_full, per_ip_limit.",
                &["reason"],
            ),
            queued_request_bytes: gauge(
                "queued_request_bytes",
                "Bytes of requests being read or queued, held against queued.max.request.bytes.",
            ),
            queued_request_max_bytes: gauge(
                "queued_request_max_bytes",
                "queued.max.request.bytes: the most request bytes read or queued at once.",
            ),
            queued_request_waits: counter(
                "queued_request_waits_total",
                "Requests whose reading waited for queued.max.request.bytes budget.",
            ),
            throttled_requests: counter(
                "throttled_requests_total",
                "Times a connection was muted because its client went over a byte-rate quota.",
            ),
            log_start_offset: gauge_vec("log_start_offset", "First offset of each partition log."),
            log_end_offset: gauge_vec(
                "log_end_offset",
                "Offset the next appended record gets, per partition.",
            ),
            log_size: gauge_vec(
                "log_size_bytes",
                "Bytes on disk of each partition log's segments.",
            ),
            replication: ReplicationMetrics {
                isr_shrinks: counter(
                    "isr_shrinks_total",
                    "ISR shrinks committed by partitions this broker leads.",
                ),
                isr_expands: counter(
                    "isr_expands_total",
                    "ISR expansions committed by partitions this broker leads.",
                ),
                under_replicated: gauge(
                    "under_replicated_partitions",
                    "Partitions led here whose ISR is smaller than their replica set.",
                ),
                under_min_isr: gauge(
                    "under_min_isr_partitions",
                    "Partitions led here whose ISR is below min.insync.replicas.",
                ),
                lag_records: gauge_vec(
                    "replica_lag_records",
                    "On the leader: records the slowest follower is behind.",
                ),
                lag_seconds: {
                    let m = prometheus::GaugeVec::new(
                        Opts::new(
                            "replica_lag_seconds",
                            "On the leader: seconds since the slowest follower was caught up \
                             (0 when every follower is).",
                        ),
                        &["topic", "partition"],
                    )
                    .expect("valid metric");
                    registry
                        .register(Box::new(m.clone()))
                        .expect("unique metric");
                    m
                },
            },
            request_duration,
            connections_open,
            registry,
        }
    }

    /// Counts an error code returned by `api`.
    pub fn record_error(&self, api: &str, error: ironlog_protocol::ResponseError) {
        self.errors
            .with_label_values(&[api, &error_name(error)])
            .inc();
    }

    /// The text exposition, with the per-partition gauges refreshed from the logs.
    pub fn render(&self, replicas: &ReplicaManager) -> String {
        for gauge in [&self.log_start_offset, &self.log_end_offset, &self.log_size] {
            gauge.reset(); // drop deleted partitions
        }
        for (topic, partition, start, end, size) in replicas.partition_stats() {
            let p = partition.to_string();
            let labels = [topic.as_str(), p.as_str()];
            self.log_start_offset.with_label_values(&labels).set(start);
            self.log_end_offset.with_label_values(&labels).set(end);
            self.log_size.with_label_values(&labels).set(size as i64);
        }
        self.replication.observe(replicas);
        let mut out = Vec::new();
        // Encoding to a Vec can't fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl ReplicationMetrics {
    /// Refreshes the gauges from the partitions this broker leads.
    pub fn observe(&self, replicas: &ReplicaManager) {
        self.lag_records.reset();
        self.lag_seconds.reset();
        let now = crate::replica_manager::now_ms();
        let (mut under_replicated, mut under_min_isr) = (0, 0);
        for partition in replicas.partitions() {
            let Some((isr, replica_count, min_isr, lag_records, lag_ms)) =
                partition.replication_status(now)
            else {
                continue;
            };
            under_replicated += i64::from(isr < replica_count);
            under_min_isr += i64::from(isr < min_isr);
            let p = partition.index().to_string();
            let labels = [partition.topic(), p.as_str()];
            self.lag_records.with_label_values(&labels).set(lag_records);
            self.lag_seconds
                .with_label_values(&labels)
                .set(lag_ms as f64 / 1000.0);
        }
        self.under_replicated.set(under_replicated);
        self.under_min_isr.set(under_min_isr);
    }
}

/// `UNKNOWN_TOPIC_OR_PARTITION` style name for an error code.
pub fn error_name(error: ironlog_protocol::ResponseError) -> String {
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafka_style() {
        assert_eq!(
            error_name(ironlog_protocol::ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            error_name(ironlog_protocol::ResponseError::CorruptMessage),
            "CORRUPT_MESSAGE"
        );
    }
}
