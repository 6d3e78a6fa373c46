//! `ironlog cluster describe`: the cluster at a glance — its id, brokers, controller, the
//! metadata quorum (like `kafka-metadata-quorum describe --status --replication`) and the
//! partitions that have no leader.
//!
//! Each part comes from its own request (DescribeCluster, Metadata, DescribeQuorum); a part
//! the cluster cannot answer is reported as such and the rest is still printed, then the
//! command fails with that error.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::quorum::{QuorumReplica, METADATA_PARTITION, METADATA_TOPIC};
use crate::tools::ConnectionArgs;
use crate::{ClientError, ClusterDescription, ClusterMetadata, QuorumDescription};

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, brokers, controller, the metadata quorum (leader, epoch, high watermark,
    /// voters and observers with their lag) and partitions without a leader.
    Describe,
}

/// Everything `cluster describe` prints, as gathered; the failed parts keep their error.
#[derive(Debug)]
pub struct ClusterView {
    /// From Metadata (all topics): brokers, controller, partition leaders.
    pub metadata: ClusterMetadata,
    pub described: Result<ClusterDescription, ClientError>,
    pub quorum: Result<QuorumDescription, ClientError>,
}

/// Runs `ironlog cluster`.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    match args.command {
        ClusterCommand::Describe => {
            let metadata = client
                .metadata(None)
                .await
                .context("fetching cluster metadata")?;
            let view = ClusterView {
                metadata,
                described: client.describe_cluster().await,
                quorum: client.describe_quorum().await,
            };
            print!("{}", format_cluster(&view, now_ms()));
            if let Err(e) = view.quorum {
                return Err(e).context(format!(
                    "describing the metadata quorum (DescribeQuorum, API key 55, \
                     {METADATA_TOPIC}-{METADATA_PARTITION})"
                ));
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn ago(timestamp: i64, now_ms: i64) -> String {
    if timestamp < 0 {
        "unknown".to_owned()
    } else {
        format!("{} ms ago", (now_ms - timestamp).max(0))
    }
}

fn replica_line(out: &mut String, role: &str, r: &QuorumReplica, hw: i64, now_ms: i64) {
    let lag = r
        .lag(hw)
        .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "\t{role}: {}\tLogEndOffset: {}\tLag: {lag}\tLastFetch: {}\tLastCaughtUp: {}",
        r.replica_id,
        r.log_end_offset,
        ago(r.last_fetch_timestamp, now_ms),
        ago(r.last_caught_up_timestamp, now_ms),
    );
}

/// The `cluster describe` text. Brokers are the union of DescribeCluster's (which lists
/// only unfenced brokers before v2) and Metadata's, each marked with where it was listed.
pub fn format_cluster(view: &ClusterView, now_ms: i64) -> String {
    let mut out = String::new();
    let described = view.described.as_ref().ok();
    let cluster_id = described
        .map(|d| d.cluster_id.clone())
        .or_else(|| view.metadata.cluster_id.clone())
        .unwrap_or_else(|| "none".to_owned());
    let controller = described
        .and_then(|d| d.controller_id)
        .or(view.metadata.controller_id)
        .map_or_else(|| "none".to_owned(), |c| c.to_string());
    let _ = writeln!(out, "ClusterId: {cluster_id}");
    let _ = writeln!(out, "ControllerId: {controller}");
    if let Err(e) = &view.described {
        let _ = writeln!(out, "DescribeCluster: failed: {e}");
    }

    let mut ids: Vec<i32> = view.metadata.brokers.iter().map(|b| b.id).collect();
    if let Some(d) = described {
        ids.extend(d.brokers.iter().map(|b| b.id));
    }
    ids.sort_unstable();
    ids.dedup();
    let _ = writeln!(out, "Brokers: {}", ids.len());
    for id in ids {
        let in_cluster = described.and_then(|d| d.brokers.iter().find(|b| b.id == id));
        let in_metadata = view.metadata.brokers.iter().find(|b| b.id == id);
        let Some(broker) = in_cluster.or(in_metadata) else {
            continue;
        };
        let listed_by: Vec<&str> = [
            in_cluster.map(|_| "DescribeCluster"),
            in_metadata.map(|_| "Metadata"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let fenced = match described {
            Some(d) if d.fenced.contains(&id) => "true",
            Some(_) if in_cluster.is_some() => "false",
            _ => "unknown",
        };
        let _ = writeln!(
            out,
            "\tBroker: {id}\tAddress: {}\tRack: {}\tFenced: {fenced}\tListedBy: {}",
            broker.address(),
            broker.rack.as_deref().unwrap_or("none"),
            listed_by.join(",")
        );
    }

    match &view.quorum {
        Ok(q) => {
            let leader = q
                .leader_id
                .map_or_else(|| "none".to_owned(), |l| l.to_string());
            let _ = writeln!(
                out,
                "Quorum: {METADATA_TOPIC}-{METADATA_PARTITION}\tLeaderId: {leader}\t\
                 LeaderEpoch: {}\tHighWatermark: {}\tVoters: {}\tObservers: {}",
                q.leader_epoch,
                q.high_watermark,
                join_ids(&q.voters.iter().map(|v| v.replica_id).collect::<Vec<_>>()),
                join_ids(&q.observers.iter().map(|o| o.replica_id).collect::<Vec<_>>()),
            );
            for v in &q.voters {
                replica_line(&mut out, "Voter", v, q.high_watermark, now_ms);
            }
            for o in &q.observers {
                replica_line(&mut out, "Observer", o, q.high_watermark, now_ms);
            }
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "Quorum: {METADATA_TOPIC}-{METADATA_PARTITION}\tfailed: {e}"
            );
        }
    }

    let mut leaderless: Vec<(&str, &crate::PartitionMetadata)> = view
        .metadata
        .topics
        .iter()
        .filter(|t| t.error.is_none())
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
        .filter(|(_, p)| p.leader.is_none())
        .collect();
    leaderless.sort_by_key(|(t, p)| (*t, p.partition));
    let _ = writeln!(out, "PartitionsWithoutLeader: {}", leaderless.len());
    for (topic, p) in leaderless {
        let _ = write!(
            out,
            "\tTopic: {topic}\tPartition: {}\tReplicas: {}\tIsr: {}",
            p.partition,
            join_ids(&p.replicas),
            join_ids(&p.isr)
        );
        if let Some((_, name)) = p.error {
            let _ = write!(out, "\tError: {name}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerInfo, PartitionMetadata, TopicMetadata};

    fn broker(id: i32, rack: Option<&str>) -> BrokerInfo {
        BrokerInfo {
            id,
            host: format!("b{id}"),
            port: 9092,
            rack: rack.map(str::to_owned),
        }
    }

    fn partition(index: i32, leader: Option<i32>) -> PartitionMetadata {
        PartitionMetadata {
            partition: index,
            leader,
            leader_epoch: 0,
            replicas: vec![1, 2],
            isr: leader.into_iter().collect(),
            offline_replicas: vec![],
            error: leader.is_none().then_some((5, "LEADER_NOT_AVAILABLE")),
        }
    }

    fn metadata() -> ClusterMetadata {
        ClusterMetadata {
            cluster_id: Some("from-metadata".into()),
            controller_id: Some(1),
            brokers: vec![broker(1, Some("r1")), broker(2, None), broker(3, None)],
            topics: vec![
                TopicMetadata {
                    name: "b".into(),
                    topic_id: uuid::Uuid::nil(),
                    is_internal: false,
                    partitions: vec![partition(0, Some(1)), partition(1, None)],
                    error: None,
                },
                TopicMetadata {
                    name: "a".into(),
                    topic_id: uuid::Uuid::nil(),
                    is_internal: false,
                    partitions: vec![partition(0, None)],
                    error: None,
                },
            ],
        }
    }

    fn replica(id: i32, leo: i64, fetched: i64) -> QuorumReplica {
        QuorumReplica {
            replica_id: id,
            log_end_offset: leo,
            last_fetch_timestamp: fetched,
            last_caught_up_timestamp: fetched,
        }
    }

    #[test]
    fn formats_every_part() {
        let view = ClusterView {
            metadata: metadata(),
            described: Ok(ClusterDescription {
                cluster_id: "c-1".into(),
                controller_id: Some(1),
                brokers: vec![broker(1, Some("r1")), broker(2, None)],
                fenced: vec![2],
            }),
            quorum: Ok(QuorumDescription {
                leader_id: Some(1),
                leader_epoch: 4,
                high_watermark: 100,
                voters: vec![replica(1, 100, 1_000), replica(2, 97, 900)],
                observers: vec![replica(3, -1, -1)],
            }),
        };
        assert_eq!(
            format_cluster(&view, 1_000),
            "ClusterId: c-1\n\
             ControllerId: 1\n\
             Brokers: 3\n\
             \tBroker: 1\tAddress: b1:9092\tRack: r1\tFenced: false\tListedBy: DescribeCluster,Metadata\n\
             \tBroker: 2\tAddress: b2:9092\tRack: none\tFenced: true\tListedBy: DescribeCluster,Metadata\n\
             \tBroker: 3\tAddress: b3:9092\tRack: none\tFenced: unknown\tListedBy: Metadata\n\
             Quorum: __cluster_metadata-0\tLeaderId: 1\tLeaderEpoch: 4\tHighWatermark: 100\tVoters: 1,2\tObservers: 3\n\
             \tVoter: 1\tLogEndOffset: 100\tLag: 0\tLastFetch: 0 ms ago\tLastCaughtUp: 0 ms ago\n\
             \tVoter: 2\tLogEndOffset: 97\tLag: 3\tLastFetch: 100 ms ago\tLastCaughtUp: 100 ms ago\n\
             \tObserver: 3\tLogEndOffset: -1\tLag: unknown\tLastFetch: unknown\tLastCaughtUp: unknown\n\
             PartitionsWithoutLeader: 2\n\
             \tTopic: a\tPartition: 0\tReplicas: 1,2\tIsr: \tError: LEADER_NOT_AVAILABLE\n\
             \tTopic: b\tPartition: 1\tReplicas: 1,2\tIsr: \tError: LEADER_NOT_AVAILABLE\n"
        );
    }

    #[test]
    fn failed_parts_are_reported_and_the_rest_still_printed() {
        let mut m = metadata();
        m.topics.clear();
        let view = ClusterView {
            metadata: m,
            described: Err(ClientError::UnsupportedApi {
                api: "DescribeCluster",
                broker: "b1:9092".into(),
            }),
            quorum: Err(ClientError::kafka(35, None, "DescribeQuorum")),
        };
        let text = format_cluster(&view, 0);
        assert!(
            text.starts_with("ClusterId: from-metadata\nControllerId: 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "DescribeCluster: failed: broker b1:9092 does not support the DescribeCluster API"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\tBroker: 3\tAddress: b3:9092\tRack: none\tFenced: unknown\tListedBy: Metadata\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Quorum: __cluster_metadata-0\tfailed: DescribeQuorum: UNSUPPORTED_VERSION"
            ),
            "{text}"
        );
        assert!(text.ends_with("PartitionsWithoutLeader: 0\n"), "{text}");
    }

    #[test]
    fn parses_describe() {
        let args: ClusterArgs =
            crate::tools::parse_args(&["describe", "--bootstrap-server", "b:1"]).unwrap();
        assert_eq!(args.connection.bootstrap_server, "b:1");
        assert!(matches!(args.command, ClusterCommand::Describe));
        assert!(crate::tools::parse_args::<ClusterArgs>(&["status"]).is_err());
    }
}
