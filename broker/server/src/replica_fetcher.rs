//! Followers fetching from their leaders (Kafka's ReplicaFetcherThread).
//!
//! One fetcher task per leader broker, each with its own connection to that broker's
//! Kafka listener, serves every partition this broker follows from that leader. A round:
//!
//! 1. Partitions whose leader changed are reconciled first: OffsetForLeaderEpoch for the
//!    latest epoch in our log, then truncation of whatever the leader's log doesn't have
//!    (see [`Partition::truncate_to_leader`]).
//! 2. One Fetch (v12, `replica_id` = this broker, `current_leader_epoch` per partition)
//!    from each partition's log end, waiting at the leader up to
//!    `replica.fetch.wait.max.ms`. The fetch offset is how the leader learns our log end.
//!    Fetches go through a fetch session (KIP-227, [`FetchSessionHandler`]): after the
//!    first, they list only the partitions whose position changed, and the leader answers
//!    only the partitions with something new. Any failure starts a new session.
//! 3. What comes back is appended with the leader's offsets and epochs, and the leader's
//!    high watermark is taken (capped by our log end), on the blocking pool.
//!
//! The manager starts a fetcher when a partition starts following a broker nobody fetches
//! from yet; a fetcher ends when nothing follows its broker any more. A partition whose
//! fetch is refused with an error that means "the metadata is moving"
//! (NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH: the leader or this broker has not
//! applied the latest change yet) is left out of the next rounds for
//! [`PARTITION_BACKOFF`] (Kafka's delayed partition state) while the others go on; a
//! broken connection is re-opened after [`CONNECTION_BACKOFF`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ironlog_client::{ClientError, Connection};
use ironlog_metadata::BrokerId;
use ironlog_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic,
};
use ironlog_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use ironlog_protocol::kafka_protocol::messages::{
    BrokerId as WireBrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use ironlog_protocol::kafka_protocol::protocol::StrBytes;
use ironlog_protocol::ResponseError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::broker::{stopped, Broker};
use crate::fetch_session::client::FetchSessionHandler;
use crate::fetch_session::{FetchPosition, SessionPartition, TopicRef};
use crate::partition::{FollowerPosition, Partition};
use crate::replica_manager::now_ms;

/// Fetch v12: the last version with `replica_id` in the request body (v15 moved it).
const FETCH_VERSION: i16 = 12;
/// After a connection error, before reconnecting.
const CONNECTION_BACKOFF: Duration = Duration::from_millis(200);
/// A partition refused by the leader sits out the fetch rounds this long. Short: the usual
/// cause is a leader that applies a new partition's metadata a few ms after its follower,
/// and acks=all writes wait for the follower meanwhile.
const PARTITION_BACKOFF: Duration = Duration::from_millis(20);
/// A whole Fetch response, all partitions.
const FETCH_MAX_BYTES: i32 = 16 << 20;

/// Why a fetch round failed.
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    #[error("fetch from broker {leader} failed: {error:?}")]
    Fetch {
        leader: BrokerId,
        error: Option<ResponseError>,
    },
    #[error("the partitions followed changed during the fetch")]
    Interrupted,
    #[error("appending fetched records failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs fetchers for every leader this broker follows partitions of, until shutdown.
/// `wakeup` changes whenever a partition starts or stops following.
pub fn spawn_manager(broker: &Arc<Broker>, mut wakeup: watch::Receiver<u64>) -> JoinHandle<()> {
    let broker = broker.clone();
    let mut shutdown = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut running: HashMap<BrokerId, JoinHandle<()>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            let leaders: BTreeSet<BrokerId> = broker
                .replicas
                .partitions()
                .iter()
                .filter_map(|p| p.follower_position().map(|pos| pos.leader))
                .collect();
            for leader in leaders {
                running.entry(leader).or_insert_with(|| {
                    tokio::spawn(fetch_from(broker.clone(), leader, wakeup.clone()))
                });
            }
            tokio::select! {
                changed = wakeup.changed() => if changed.is_err() { break },
                // A fetcher that ended while a partition was starting to follow its broker
                // is restarted here.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped(&mut shutdown) => break,
            }
        }
        for (_, task) in running {
            task.abort();
        }
    })
}

/// One leader's fetcher: rounds until nothing here follows `leader`.
async fn fetch_from(broker: Arc<Broker>, leader: BrokerId, mut wakeup: watch::Receiver<u64>) {
    let mut connection: Option<Connection> = None;
    let mut session = FetchSessionHandler::default();
    let mut failures = 0u32;
    // Partitions sitting out until the instant given.
    let mut delayed: HashMap<(String, i32), Instant> = HashMap::new();
    tracing::debug!(leader, "replica fetcher started");
    loop {
        if broker.is_shutting_down() {
            return;
        }
        // Seen before the partitions are listed: a change after this interrupts the round.
        wakeup.borrow_and_update();
        let followed = followed_from(&broker, leader);
        if followed.is_empty() {
            tracing::debug!(
                leader,
                "replica fetcher stopped: nothing follows this leader"
            );
            return;
        }
        let now = Instant::now();
        delayed.retain(|_, until| *until > now);
        let followed: Vec<_> = followed
            .into_iter()
            .filter(|(p, _)| !delayed.contains_key(&(p.topic().to_string(), p.index())))
            .collect();
        if followed.is_empty() {
            let next = delayed
                .values()
                .min()
                .copied()
                .unwrap_or(now + PARTITION_BACKOFF);
            tokio::time::sleep_until(next).await;
            continue;
        }
        if connection.as_ref().is_none_or(Connection::is_broken) {
            connection = match connect(&broker, leader).await {
                Ok(c) => Some(c),
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(leader, error = %e, failures, "replica fetcher cannot reach the leader");
                    }
                    tokio::time::sleep(CONNECTION_BACKOFF).await;
                    continue;
                }
            };
        }
        let conn = connection.as_mut().expect("connected above");
        // While partitions sit out, the long poll for the others ends when they are due:
        // their records may be what acks=all writes wait for.
        let max_wait = delayed
            .values()
            .min()
            .map(|until| until.saturating_duration_since(now))
            .map_or(broker.config.cluster.replica_fetch_wait_max, |due| {
                due.min(broker.config.cluster.replica_fetch_wait_max)
            });
        let result = round(
            &broker,
            conn,
            &mut session,
            leader,
            followed,
            max_wait,
            &mut wakeup,
        )
        .await;
        if result.is_err() {
            // The leader may have moved the session's epoch on without our seeing it.
            session.reset();
        }
        match result {
            Ok(refused) => {
                failures = 0;
                let until = Instant::now() + PARTITION_BACKOFF;
                for (p, _) in refused {
                    delayed.insert((p.topic().to_string(), p.index()), until);
                }
            }
            // The partitions followed changed while a long poll was waiting at the leader:
            // drop that request (and its connection) and fetch for the new set at once.
            Err(FetcherError::Interrupted) => connection = None,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(leader, error = %e, failures, "replica fetch failed; retrying");
                }
                connection = None;
                tokio::time::sleep(CONNECTION_BACKOFF).await;
            }
        }
    }
}

fn followed_from(broker: &Broker, leader: BrokerId) -> Vec<Followed> {
    broker
        .replicas
        .partitions()
        .into_iter()
        .filter_map(|p| {
            let pos = p.follower_position()?;
            (pos.leader == leader).then_some((p, pos))
        })
        .collect()
}

async fn connect(broker: &Broker, leader: BrokerId) -> Result<Connection, FetcherError> {
    let image = broker.replicas.metadata();
    let registration = image
        .brokers
        .get(&leader)
        .ok_or(FetcherError::UnknownBroker(leader))?;
    let address = format!("{}:{}", registration.host, registration.port);
    let client_id = format!("ironlog-replica-fetcher-{}", broker.config.node_id);
    let timeout = broker.config.cluster.replica_fetch_wait_max + Duration::from_secs(10);
    // Prepared per connection: certificate files rotated since the last one are read anew.
    let security = broker.config.inter_broker_client.prepare()?;
    Ok(Connection::connect_with(&address, &client_id, timeout, &security).await?)
}

/// A followed partition and where it stands.
type Followed = (Arc<Partition>, FollowerPosition);

/// One round; returns the partitions the leader refused (they sit out a while).
async fn round(
    broker: &Arc<Broker>,
    conn: &mut Connection,
    session: &mut FetchSessionHandler,
    leader: BrokerId,
    followed: Vec<Followed>,
    max_wait: Duration,
    wakeup: &mut watch::Receiver<u64>,
) -> Result<Vec<Followed>, FetcherError> {
    let (truncating, fetching): (Vec<_>, Vec<_>) = followed
        .into_iter()
        .partition(|(_, pos)| pos.needs_truncation);
    if !truncating.is_empty() {
        return reconcile(broker, conn, truncating).await;
    }
    fetch(broker, conn, session, leader, fetching, max_wait, wakeup).await
}

/// A followed partition, the leader epoch it follows at, and the leader's answer to
/// OffsetForLeaderEpoch (`None`: our log has no epochs, truncate to the high watermark).
type EpochAnswer = (Arc<Partition>, i32, Option<(i32, i64)>);

/// Asks the leader where our latest epoch ends and truncates to it.
async fn reconcile(
    broker: &Arc<Broker>,
    conn: &mut Connection,
    partitions: Vec<Followed>,
) -> Result<Vec<Followed>, FetcherError> {
    let (ask, without_epochs): (Vec<_>, Vec<_>) = partitions
        .into_iter()
        .partition(|(_, pos)| pos.latest_epoch.is_some());
    let mut answers: Vec<EpochAnswer> = without_epochs
        .into_iter()
        .map(|(p, pos)| (p, pos.leader_epoch, None))
        .collect();
    let mut refused = Vec::new();
    if !ask.is_empty() {
        let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
        for (p, pos) in &ask {
            let entry = OffsetForLeaderPartition::default()
                .with_partition(p.index())
                .with_current_leader_epoch(pos.leader_epoch)
                .with_leader_epoch(pos.latest_epoch.unwrap_or(-1));
            match topics.iter_mut().find(|t| t.topic.0.as_str() == p.topic()) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetForLeaderTopic::default()
                        .with_topic(topic_name(p.topic()))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(WireBrokerId(broker.config.node_id))
            .with_topics(topics);
        let response = conn.send(&request).await?;
        for topic in response.topics {
            for result in topic.partitions {
                let Some((p, pos)) = ask.iter().find(|(p, _)| {
                    p.topic() == topic.topic.0.as_str() && p.index() == result.partition
                }) else {
                    continue;
                };
                if result.error_code != 0 {
                    tracing::debug!(topic = p.topic(), partition = p.index(),
                        error = ?ResponseError::try_from_code(result.error_code),
                        "OffsetForLeaderEpoch refused; retrying");
                    refused.push((p.clone(), *pos));
                    continue;
                }
                answers.push((
                    p.clone(),
                    pos.leader_epoch,
                    Some((result.leader_epoch, result.end_offset)),
                ));
            }
        }
    }
    tokio::task::spawn_blocking(move || {
        for (p, leader_epoch, answer) in answers {
            if let Err(e) = p.truncate_to_leader(leader_epoch, answer) {
                tracing::error!(topic = p.topic(), partition = p.index(), error = %e,
                    "cannot truncate the log to the leader's");
            }
        }
    })
    .await?;
    Ok(refused)
}

async fn fetch(
    broker: &Arc<Broker>,
    conn: &mut Connection,
    session: &mut FetchSessionHandler,
    leader: BrokerId,
    partitions: Vec<Followed>,
    max_wait: Duration,
    wakeup: &mut watch::Receiver<u64>,
) -> Result<Vec<Followed>, FetcherError> {
    let settings = &broker.config.cluster;
    let wanted: Vec<_> = partitions
        .iter()
        .map(|(p, pos)| {
            let key = SessionPartition {
                topic: TopicRef::Name(p.topic().to_string()),
                partition: p.index(),
            };
            let position = FetchPosition {
                fetch_offset: pos.log_end_offset,
                partition_max_bytes: settings.replica_fetch_max_bytes,
                log_start_offset: pos.log_start_offset,
                current_leader_epoch: pos.leader_epoch,
                last_fetched_epoch: -1,
            };
            (key, position)
        })
        .collect();
    let next = session.build(&wanted);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (key, position) in &next.to_send {
        let TopicRef::Name(topic) = &key.topic else {
            continue; // built by name above
        };
        let entry = FetchPartition::default()
            .with_partition(key.partition)
            .with_current_leader_epoch(position.current_leader_epoch)
            .with_fetch_offset(position.fetch_offset)
            .with_last_fetched_epoch(position.last_fetched_epoch)
            .with_log_start_offset(position.log_start_offset)
            .with_partition_max_bytes(position.partition_max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for key in &next.forgotten {
        let TopicRef::Name(topic) = &key.topic else {
            continue;
        };
        match forgotten.iter_mut().find(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partitions.push(key.partition),
            None => forgotten.push(
                ForgottenTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![key.partition]),
            ),
        }
    }
    let wait = max_wait;
    let request = FetchRequest::default()
        .with_replica_id(WireBrokerId(broker.config.node_id))
        .with_max_wait_ms(wait.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(next.session_id)
        .with_session_epoch(next.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten);
    let response = tokio::select! {
        response = conn.send_with(&request, FETCH_VERSION, wait + Duration::from_secs(10)) => response?,
        _ = wakeup.changed() => return Err(FetcherError::Interrupted),
    };
    let error = ResponseError::try_from_code(response.error_code);
    if let Some(ResponseError::FetchSessionIdNotFound | ResponseError::InvalidFetchSessionEpoch) =
        error
    {
        // The leader restarted or evicted the session: open a new one in the next round.
        tracing::debug!(leader, ?error, "fetch session lost; starting a new one");
        session.reset();
        return Ok(Vec::new());
    }
    if response.error_code != 0 {
        return Err(FetcherError::Fetch {
            leader,
            error: ResponseError::try_from_code(response.error_code),
        });
    }
    session.answered(response.session_id);
    let mut refused = Vec::new();
    let mut work = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            let Some((p, pos)) = partitions.iter().find(|(p, _)| {
                p.topic() == topic.topic.0.as_str() && p.index() == data.partition_index
            }) else {
                continue;
            };
            match ResponseError::try_from_code(data.error_code) {
                None => {
                    let records = data.records.unwrap_or_default();
                    work.push(Work::Append {
                        partition: p.clone(),
                        leader_epoch: pos.leader_epoch,
                        records,
                        high_watermark: data.high_watermark,
                        log_start: data.log_start_offset,
                    });
                }
                Some(ResponseError::OffsetOutOfRange)
                    if pos.log_end_offset < data.log_start_offset =>
                {
                    work.push(Work::RestartAt {
                        partition: p.clone(),
                        leader_epoch: pos.leader_epoch,
                        log_start: data.log_start_offset,
                    });
                }
                Some(error) => {
                    tracing::debug!(
                        topic = p.topic(),
                        partition = p.index(),
                        leader,
                        ?error,
                        "follower fetch refused; waiting for the metadata to settle"
                    );
                    refused.push((p.clone(), *pos));
                }
            }
        }
    }
    let node = broker.config.node_id;
    tokio::task::spawn_blocking(move || {
        for item in work {
            item.run(node);
        }
    })
    .await?;
    Ok(refused)
}

/// What a Fetch response asks of one partition, done on the blocking pool.
enum Work {
    Append {
        partition: Arc<Partition>,
        leader_epoch: i32,
        records: bytes::Bytes,
        high_watermark: i64,
        log_start: i64,
    },
    RestartAt {
        partition: Arc<Partition>,
        leader_epoch: i32,
        log_start: i64,
    },
}

impl Work {
    fn run(self, node: BrokerId) {
        match self {
            Work::Append {
                partition,
                leader_epoch,
                records,
                high_watermark,
                log_start,
            } => {
                if let Err(e) = partition.append_as_follower(
                    leader_epoch,
                    &records,
                    high_watermark,
                    log_start,
                    now_ms(),
                ) {
                    tracing::warn!(node, topic = partition.topic(), partition = partition.index(),
                        error = %e, "cannot append records fetched from the leader");
                    partition.request_truncation(leader_epoch);
                }
            }
            Work::RestartAt {
                partition,
                leader_epoch,
                log_start,
            } => {
                if let Err(e) = partition.restart_at(leader_epoch, log_start) {
                    tracing::error!(topic = partition.topic(), partition = partition.index(),
                        error = %e, "cannot start the log over at the leader's log start");
                }
            }
        }
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}
