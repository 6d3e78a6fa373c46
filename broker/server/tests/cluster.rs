//! Three brokers in one process, on loopback, forming one cluster: metadata agrees on
//! every node, partitions spread, requests to a non-leader are refused with
//! NOT_LEADER_OR_FOLLOWER, two concurrent auto-creations of one topic both succeed, and a
//! group's coordinator is the same broker whichever broker is asked.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{config, RawClient};
use ironlog_protocol::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use ironlog_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use ironlog_protocol::kafka_protocol::messages::{
    ApiKey, FindCoordinatorResponse, MetadataRequest, MetadataResponse, ProduceResponse, TopicName,
};
use ironlog_protocol::kafka_protocol::protocol::StrBytes;
use ironlog_storage::batch::testing::{build_batch, KeyValue};
use tokio::net::TcpListener;
use tokio::sync::watch;

struct Node {
    id: i32,
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A free loopback port (bound, then released for the node to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_cluster(dir: &std::path::Path, ids: &[i32]) -> Vec<Node> {
    let controller: Vec<(i32, u16)> = ids.iter().map(|id| (*id, free_port())).collect();
    let voters: std::collections::BTreeMap<i32, String> = controller
        .iter()
        .map(|(id, port)| (*id, format!("127.0.0.1:{port}")))
        .collect();
    let mut nodes = Vec::new();
    for (id, port) in &controller {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = http.local_addr().unwrap();
        let mut c = config(
            &dir.join(format!("node-{id}")),
            addr,
            http.local_addr().unwrap(),
        );
        c.node_id = *id;
        c.cluster.controller_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
        c.cluster.controller_advertised = format!("127.0.0.1:{port}");
        c.cluster.voters = voters.clone();
        c.cluster.heartbeat_interval = Duration::from_millis(200);
        c.cluster.session_timeout = Duration::from_millis(2000);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(ironlog_server::broker::run_on(c, listener, http, stopped));
        nodes.push(Node {
            id: *id,
            addr,
            metrics,
            stop,
            task,
        });
    }
    // Every node serves and sees every broker.
    for node in &nodes {
        wait_for(
            &format!("node {} sees {} brokers", node.id, ids.len()),
            || async {
                let Ok(mut c) = RawClient::connect(node.addr).await else {
                    return false;
                };
                c.api_versions_ok().await && metadata(&mut c, None).await.brokers.len() == ids.len()
            },
        )
        .await;
    }
    nodes
}

async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deadline for a condition polled in a loop.
struct Deadline(tokio::time::Instant);

impl Deadline {
    fn after(d: Duration) -> Self {
        Deadline(tokio::time::Instant::now() + d)
    }

    /// Fails the test once the deadline has passed, else waits a little.
    async fn wait(&self, what: &str) {
        assert!(tokio::time::Instant::now() < self.0, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metadata(client: &mut RawClient, topics: Option<Vec<&str>>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.into_iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(true);
    client.call(ApiKey::Metadata, 9, &request).await
}

/// (partition, leader, replicas) of `topic` as `client`'s broker sees it.
async fn assignments(client: &mut RawClient, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    let response = metadata(client, Some(vec![topic])).await;
    let t = &response.topics[0];
    assert_eq!(t.error_code, 0, "{topic}: {t:?}");
    let mut out: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.leader_id.0,
                p.replica_nodes.iter().map(|r| r.0).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_brokers_form_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), &[1, 2, 3]).await;
    let mut clients = Vec::new();
    for n in &nodes {
        clients.push(RawClient::connect(n.addr).await.unwrap());
    }

    // Every node answers with the same brokers and controller.
    let first = metadata(&mut clients[0], None).await;
    let ids: BTreeSet<i32> = first.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3]));
    assert!(ids.contains(&first.controller_id.0), "{first:?}");
    for c in clients.iter_mut().skip(1) {
        let m = metadata(c, None).await;
        assert_eq!(m.cluster_id, first.cluster_id);
        assert_eq!(m.controller_id, first.controller_id);
    }

    // A topic created through node 1 (6 partitions, RF 2) is the same on every node, and
    // its leaders cover all three brokers.
    create_topic(&mut clients[0], "spread", 6, 2).await;
    let expected = assignments(&mut clients[0], "spread").await;
    assert_eq!(expected.len(), 6);
    let leaders: BTreeSet<i32> = expected.iter().map(|(_, l, _)| *l).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "{expected:?}");
    for (_, leader, replicas) in &expected {
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[0], *leader);
    }
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        let deadline = Deadline::after(Duration::from_secs(10));
        while metadata(c, Some(vec!["spread"])).await.topics[0].error_code != 0 {
            deadline
                .wait(&format!("node {} has the topic", i + 1))
                .await;
        }
        assert_eq!(assignments(c, "spread").await, expected, "node {}", i + 1);
    }

    // Produce goes to the leader; a non-leader answers NOT_LEADER_OR_FOLLOWER (6).
    let (partition, leader, _) = expected[0].clone();
    let non_leader = nodes.iter().position(|n| n.id != leader).unwrap();
    let leader_index = nodes.iter().position(|n| n.id == leader).unwrap();
    let refused = produce(&mut clients[non_leader], "spread", partition).await;
    assert_eq!(
        refused, 6,
        "non-leader must refuse with NOT_LEADER_OR_FOLLOWER"
    );
    let deadline = Deadline::after(Duration::from_secs(10));
    while produce(&mut clients[leader_index], "spread", partition).await != 0 {
        deadline.wait("the leader accepts the produce").await;
    }

    // Two clients auto-creating one topic at once, through different brokers, both get it.
    let (mut a, mut b) = (
        RawClient::connect(nodes[1].addr).await.unwrap(),
        RawClient::connect(nodes[2].addr).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(
        metadata(&mut a, Some(vec!["raced"])),
        metadata(&mut b, Some(vec!["raced"]))
    );
    assert_eq!(ra.topics[0].error_code, 0, "{ra:?}");
    assert_eq!(rb.topics[0].error_code, 0, "{rb:?}");
    assert_eq!(
        ra.topics[0].topic_id, rb.topics[0].topic_id,
        "one topic, not two"
    );

    // The group's coordinator is the same whichever broker is asked.
    let mut coordinators = BTreeSet::new();
    for c in clients.iter_mut() {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("cluster-group"))
            .with_key_type(0);
        let response: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 3, &request).await;
        assert_eq!(response.error_code, 0, "{response:?}");
        coordinators.insert(response.node_id.0);
    }
    assert_eq!(coordinators.len(), 1, "{coordinators:?}");

    drop((clients, a, b));
    for node in nodes {
        let _ = node.stop.send(true);
        node.task.await.unwrap().unwrap();
    }
}

/// Produces one record to `topic`-`partition` with acks=1; returns the error code.
async fn produce(client: &mut RawClient, topic: &str, partition: i32) -> i16 {
    let records: Vec<KeyValue<'_>> = vec![(None, Some(b"value".as_slice()))];
    let request = common::produce_request(topic, partition, 1, build_batch(0, 1000, &records));
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    response.responses[0].partition_responses[0].error_code
}

/// CreateTopics v5 of `topic` with `partitions` and replication factor `rf`.
async fn create_topic(client: &mut RawClient, topic: &str, partitions: i32, rf: i16) {
    use ironlog_protocol::kafka_protocol::messages::create_topics_request::CreatableTopic;
    use ironlog_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(common::topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request).await;
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

/// A data directory whose metadata log was lost (or belongs to another cluster) starts
/// with an empty image: the partition logs no topic owns are set aside as `-stray`
/// directories with their records, not deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_no_topic_owns_are_set_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::TestBroker::start(dir.path()).await;
    let mut client = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut client, "kept", 1, 1).await;
    assert_eq!(produce(&mut client, "kept", 0).await, 0);
    drop(client);
    broker.stop().await;

    std::fs::remove_dir_all(dir.path().join(ironlog_storage::METADATA_LOG_DIR)).unwrap();
    let broker = common::TestBroker::start(dir.path()).await;
    let mut client = RawClient::connect(broker.addr).await.unwrap();
    let m = metadata(&mut client, None).await;
    assert!(
        m.topics.is_empty(),
        "a fresh metadata log knows no topics: {m:?}"
    );
    drop(client);
    broker.stop().await;

    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("kept-0.") && name.ends_with("-stray"))
        .collect();
    assert_eq!(strays.len(), 1, "{strays:?}");
    assert!(!dir.path().join("kept-0").exists());
    let stray = dir.path().join(&strays[0]);
    let segment_bytes: u64 = std::fs::read_dir(&stray)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        segment_bytes > 0,
        "the record is still in {}",
        stray.display()
    );
}

/// RF=3, min.insync.replicas=2: acks=all writes are on every in-sync replica, so stopping
/// the leader loses none of them; with one broker of three down acks=all still succeeds,
/// with two down it is refused (NOT_ENOUGH_REPLICAS) and nothing is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), &[1, 2, 3]).await;
    let mut first = RawClient::connect(nodes[0].addr).await.unwrap();
    create_topic_with(
        &mut first,
        "replicated",
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    let (_, leader, replicas) = assignments(&mut first, "replicated").await[0].clone();
    assert_eq!(replicas.len(), 3);
    let leader_index = nodes.iter().position(|n| n.id == leader).unwrap();
    let mut to_leader = RawClient::connect(nodes[leader_index].addr).await.unwrap();
    // The leader may not have applied the new topic's metadata yet: like any client, retry
    // NOT_LEADER_OR_FOLLOWER (nothing is appended then) until it leads.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for i in 0..20 {
        let (error, base) = loop {
            let (error, base) = produce_acks(&mut to_leader, "replicated", -1, i).await;
            if error != 6 || i > 0 || std::time::Instant::now() > deadline {
                break (error, base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((error, base), (0, i64::from(i)), "record {i}");
    }
    drop(to_leader);
    // The two followers fetch through fetch sessions (KIP-227) at the leader.
    let leader_metrics = nodes[leader_index].metrics;
    let sessions = node_metric(leader_metrics, "ironlog_incremental_fetch_sessions").await;
    let incremental = node_metric(leader_metrics, "ironlog_incremental_fetches_total").await;
    assert!(
        sessions >= 2.0,
        "the followers' sessions at the leader: {sessions}"
    );
    assert!(
        incremental > 0.0,
        "incremental fetches served: {incremental}"
    );

    // Stop the leader: another replica leads, and it has every acknowledged record.
    let old = nodes.remove(leader_index);
    let _ = old.stop.send(true);
    old.task.await.unwrap().unwrap();
    let mut survivor = RawClient::connect(nodes[0].addr).await.unwrap();
    let deadline = Deadline::after(Duration::from_secs(20));
    let new_leader = loop {
        let (_, l, _) = assignments(&mut survivor, "replicated").await[0].clone();
        if l != leader && l >= 0 {
            break l;
        }
        deadline.wait("a new leader").await;
    };
    let new_index = nodes.iter().position(|n| n.id == new_leader).unwrap();
    let mut to_new = RawClient::connect(nodes[new_index].addr).await.unwrap();
    let values: Vec<String> = common::fetch_records(&mut to_new, "replicated")
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("record-{i}")).collect();
    assert_eq!(
        values, expected,
        "the new leader has every acknowledged record, in order"
    );

    // Two of three replicas left: acks=all goes on.
    let (error, base) = produce_acks(&mut to_new, "replicated", -1, 20).await;
    assert_eq!((error, base), (0, 20));

    // One left: acks=all is refused once the controller fences the stopped one, and the
    // ISR shrinks below min.insync.replicas.
    let other = nodes.iter().position(|n| n.id != new_leader).unwrap();
    let stopped = nodes.remove(other);
    let _ = stopped.stop.send(true);
    stopped.task.await.unwrap().unwrap();
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let (error, _) = produce_acks(&mut to_new, "replicated", -1, 21).await;
        // 19 NOT_ENOUGH_REPLICAS; until the ISR shrinks the wait times out (7).
        if error == 19 {
            break;
        }
        assert!(matches!(error, 7 | 20), "unexpected error {error}");
        deadline
            .wait("acks=all refused with NOT_ENOUGH_REPLICAS")
            .await;
    }
    // acks=1 still appends.
    let (error, _) = produce_acks(&mut to_new, "replicated", 1, 22).await;
    assert_eq!(error, 0);
    drop((first, survivor, to_new));
    for node in nodes {
        let _ = node.stop.send(true);
        node.task.await.unwrap().unwrap();
    }
}

/// One series of a node's `/metrics` (see [`common::metric`]).
async fn node_metric(metrics: SocketAddr, series: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(metrics).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    common::metric(&out, series)
}

/// Produces `record-{i}` with `acks`; returns (error code, base offset).
async fn produce_acks(client: &mut RawClient, topic: &str, acks: i16, i: i32) -> (i16, i64) {
    let value = format!("record-{i}");
    let records: Vec<KeyValue<'_>> = vec![(None, Some(value.as_bytes()))];
    let mut request = common::produce_request(topic, 0, acks, build_batch(0, 1000, &records));
    request.timeout_ms = 2_000;
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// CreateTopics v5 with topic configs.
async fn create_topic_with(
    client: &mut RawClient,
    topic: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) {
    use ironlog_protocol::kafka_protocol::messages::create_topics_request::{
        CreatableTopic, CreatableTopicConfig,
    };
    use ironlog_protocol::kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(common::topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request).await;
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}
