//! Integration tests against a real broker binary.
//!
//! Set `IRONLOG_BIN` to the `ironlog` binary (the workspace test script does); without it
//! every test fails.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ironlog_client::tools::topics::{self, TopicsArgs, TopicsCommand};
use ironlog_client::tools::{format_topic_id, ConnectionArgs};
use ironlog_client::{
    Acks, Bytes, Client, ClientError, Compression, ConfigSource, NewTopic, OffsetSpec,
    ProduceRecord, QuotaEntity,
};

mod support {
    pub mod broker_process;
}

use support::broker_process::{broker_bin, free_port, BrokerProcess};

/// A broker on one PLAINTEXT listener.
struct Broker {
    process: BrokerProcess,
    address: String,
}

impl Broker {
    async fn start(bin: PathBuf) -> (Broker, Client) {
        let address = format!("127.0.0.1:{}", free_port());
        let process = BrokerProcess::start(
            &bin,
            &[
                "--listen",
                &address,
                // Groups form at once instead of after Kafka's 3 s initial rebalance delay.
                "--group-initial-rebalance-delay-ms",
                "0",
            ],
            &[],
        );
        let broker = Broker { process, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Client::bootstrap(&broker.address).await {
                Ok(client) => return (broker, client),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!(
                    "broker at {} did not come up: {e}\nlog:\n{}",
                    broker.address,
                    broker.process.log()
                ),
            }
        }
    }
}

fn new_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> NewTopic {
    NewTopic {
        name: name.to_owned(),
        num_partitions: partitions,
        replication_factor: 1,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn overrides(entries: &[ironlog_client::ConfigEntry]) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopicConfig)
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

/// Polls `check` until it returns `Some` or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn topic_lifecycle_create_describe_alter_delete() {
    let bin = broker_bin("topic_lifecycle_create_describe_alter_delete");
    let (_broker, client) = Broker::start(bin).await;

    let topic = new_topic("orders", 2, &[("retention.ms", "12345")]);
    client
        .create_topic(&topic, false)
        .await
        .expect("create topic");

    let metadata = client
        .metadata(Some(&["orders".to_string()]))
        .await
        .unwrap();
    let t = metadata.topic("orders").expect("topic listed");
    assert_eq!(t.error, None);
    assert_eq!(
        t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        vec![0, 1]
    );
    for p in &t.partitions {
        assert_eq!(p.leader, Some(1));
        assert_eq!(p.replicas, vec![1]);
        assert_eq!(p.isr, vec![1]);
    }
    assert!(
        metadata.brokers.iter().any(|b| b.id == 1),
        "{:?}",
        metadata.brokers
    );

    let again = client.create_topic(&topic, false).await.unwrap_err();
    assert!(
        matches!(
            again,
            ClientError::Kafka {
                code: 36,
                name: "TOPIC_ALREADY_EXISTS",
                ..
            }
        ),
        "{again}"
    );

    let configs = client.describe_configs("orders").await.unwrap();
    assert_eq!(
        overrides(&configs).get("retention.ms").map(String::as_str),
        Some("12345")
    );

    let set = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    client
        .incremental_alter_configs("orders", &set, &["retention.ms".to_string()])
        .await
        .expect("alter configs");
    let configs = client.describe_configs("orders").await.unwrap();
    assert_eq!(
        overrides(&configs),
        BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
    );

    client
        .create_partitions("orders", 4)
        .await
        .expect("create partitions");
    let count = eventually("4 partitions in metadata", || async {
        let m = client.metadata(Some(&["orders".to_string()])).await.ok()?;
        let n = m.topic("orders")?.partitions.len();
        (n == 4).then_some(n)
    })
    .await;
    assert_eq!(count, 4);

    let listed = client.metadata(None).await.unwrap();
    assert!(listed.topics.iter().any(|t| t.name == "orders"));

    client.delete_topic("orders").await.expect("delete topic");
    eventually("topic gone from metadata", || async {
        let m = client.metadata(Some(&["orders".to_string()])).await.ok()?;
        (m.topic("orders")?.error.map(|e| e.0) == Some(3)).then_some(())
    })
    .await;
    let missing = client.delete_topic("orders").await.unwrap_err();
    assert_eq!(missing.code(), Some(3), "{missing}");
}

/// (offset, key, value) of a consumed record.
type KeyValueAt<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

fn record(key: Option<&str>, value: &str) -> ProduceRecord {
    ProduceRecord {
        key: key.map(|k| Bytes::from(k.to_owned())),
        value: Some(Bytes::from(value.to_owned())),
        headers: vec![("source".to_string(), Some(Bytes::from_static(b"test")))],
        timestamp: Some(1_700_000_000_000),
    }
}

#[tokio::test]
async fn produce_then_consume_with_every_codec() {
    let bin = broker_bin("produce_then_consume_with_every_codec");
    let (_broker, client) = Broker::start(bin).await;

    for compression in Compression::ALL {
        let name = format!("data-{compression:?}").to_lowercase();
        client
            .create_topic(&new_topic(&name, 1, &[]), false)
            .await
            .unwrap();

        let first = vec![
            record(Some("k0"), "v0"),
            record(None, "v1"),
            record(Some("k2"), "v2"),
        ];
        let second = vec![record(Some("k3"), "v3"), record(None, "v4")];
        let base = client
            .produce(&name, 0, &first, Acks::All, compression)
            .await
            .unwrap();
        assert_eq!(base, 0, "{compression:?}");
        let base = client
            .produce(&name, 0, &second, Acks::Leader, compression)
            .await
            .unwrap();
        assert_eq!(base, 3, "{compression:?}");

        let records = client.fetch(&name, 0, 0, 1000, 1 << 20).await.unwrap();
        let got: Vec<KeyValueAt> = records
            .iter()
            .map(|r| (r.offset, r.key.as_deref(), r.value.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Some(&b"k0"[..]), Some(&b"v0"[..])),
                (1, None, Some(&b"v1"[..])),
                (2, Some(&b"k2"[..]), Some(&b"v2"[..])),
                (3, Some(&b"k3"[..]), Some(&b"v3"[..])),
                (4, None, Some(&b"v4"[..])),
            ],
            "{compression:?}"
        );
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
        assert_eq!(
            records[4].headers,
            vec![("source".to_string(), Some(Bytes::from_static(b"test")))]
        );

        // Mid-batch fetch: the broker returns the whole batch, the client drops offset 3.
        let tail = client.fetch(&name, 0, 4, 1000, 1 << 20).await.unwrap();
        assert_eq!(tail.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![4]);

        assert_eq!(
            client
                .list_offsets(&name, 0, OffsetSpec::Earliest)
                .await
                .unwrap()
                .0,
            0
        );
        assert_eq!(
            client
                .list_offsets(&name, 0, OffsetSpec::Latest)
                .await
                .unwrap()
                .0,
            5
        );

        let out_of_range = client.fetch(&name, 0, 100, 100, 1 << 20).await.unwrap_err();
        assert!(
            matches!(
                out_of_range,
                ClientError::Kafka {
                    name: "OFFSET_OUT_OF_RANGE",
                    ..
                }
            ),
            "{out_of_range}"
        );
    }

    // Fetching at the end of the log waits and returns nothing.
    let empty = client.fetch("data-none", 0, 5, 100, 1 << 20).await.unwrap();
    assert!(empty.is_empty());

    let unknown = client
        .produce(
            "no-such-topic",
            0,
            &[record(None, "x")],
            Acks::All,
            Compression::None,
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(3), "{unknown}");
}

#[tokio::test]
async fn list_offsets_by_time_and_fire_and_forget_produce() {
    let bin = broker_bin("list_offsets_by_time_and_fire_and_forget_produce");
    let (_broker, client) = Broker::start(bin).await;
    client
        .create_topic(&new_topic("times", 1, &[]), false)
        .await
        .unwrap();

    // One batch per record: the lookup is then unambiguous even for a broker whose time
    // index has batch granularity.
    for (i, ts) in [1_000i64, 2_000, 3_000].into_iter().enumerate() {
        let mut r = record(None, &format!("r{i}"));
        r.timestamp = Some(ts);
        client
            .produce("times", 0, &[r], Acks::All, Compression::None)
            .await
            .unwrap();
    }
    let (offset, timestamp) = client
        .list_offsets("times", 0, OffsetSpec::Timestamp(1_500))
        .await
        .unwrap();
    assert_eq!(timestamp, 2_000);
    assert_eq!(offset, 1);

    // acks=0: no response, no offset; the record still arrives.
    let base = client
        .produce(
            "times",
            0,
            &[record(None, "late")],
            Acks::None,
            Compression::None,
        )
        .await
        .unwrap();
    assert_eq!(base, -1);
    let end = eventually("acks=0 record appended", || async {
        let (end, _) = client
            .list_offsets("times", 0, OffsetSpec::Latest)
            .await
            .ok()?;
        (end == 4).then_some(end)
    })
    .await;
    assert_eq!(end, 4);
    let records = client.fetch("times", 0, 3, 1000, 1 << 20).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"late"[..]));
}

#[tokio::test]
async fn describe_cluster_or_clear_unsupported_error() {
    let bin = broker_bin("describe_cluster_or_clear_unsupported_error");
    let (broker, client) = Broker::start(bin).await;
    match client.describe_cluster().await {
        Ok(cluster) => {
            assert_eq!(cluster.brokers.len(), 1);
            assert_eq!(cluster.brokers[0].id, 1);
            assert_eq!(cluster.brokers[0].address(), broker.address);
        }
        Err(ClientError::UnsupportedApi { api, broker }) => {
            assert_eq!(api, "DescribeCluster");
            assert!(!broker.is_empty());
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
    match client.list_partition_reassignments().await {
        Ok(list) => assert!(list.is_empty(), "{list:?}"),
        Err(ClientError::UnsupportedApi { api, .. }) => {
            assert_eq!(api, "ListPartitionReassignments")
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn topics_tool_creates_alters_and_deletes() {
    let bin = broker_bin("topics_tool_creates_alters_and_deletes");
    let (broker, client) = Broker::start(bin).await;
    let args = |command| TopicsArgs {
        connection: ConnectionArgs {
            bootstrap_server: broker.address.clone(),
            request_timeout_ms: 10_000,
            command_config: None,
        },
        command,
    };
    let create = || TopicsCommand::Create {
        topic: "cli".into(),
        partitions: Some(1),
        replication_factor: Some(1),
        configs: vec![("retention.ms".into(), "60000".into())],
        if_not_exists: true,
    };
    topics::run(args(create())).await.expect("create");
    topics::run(args(create()))
        .await
        .expect("create again with --if-not-exists");
    topics::run(args(TopicsCommand::Alter {
        topic: "cli".into(),
        partitions: Some(3),
        configs: vec![("retention.ms".into(), "70000".into())],
        delete_configs: vec![],
    }))
    .await
    .expect("alter");
    let configs = client.describe_configs("cli").await.unwrap();
    assert_eq!(
        overrides(&configs).get("retention.ms").map(String::as_str),
        Some("70000")
    );
    eventually("3 partitions", || async {
        let m = client.metadata(Some(&["cli".to_string()])).await.ok()?;
        (m.topic("cli")?.partitions.len() == 3).then_some(())
    })
    .await;
    topics::run(args(TopicsCommand::Describe {
        topic: Some("cli".into()),
    }))
    .await
    .expect("describe");
    topics::run(args(TopicsCommand::Delete {
        topic: "cli".into(),
    }))
    .await
    .expect("delete");
    let err = topics::run(args(TopicsCommand::Delete {
        topic: "cli".into(),
    }))
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{err:#}"
    );
}

/// Runs `ironlog <args> --bootstrap-server <broker>` to completion.
fn tool(bin: &Path, broker: &Broker, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .args(["--bootstrap-server", &broker.address])
        .env_remove("IRONLOG_BOOTSTRAP_SERVER")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", bin.display()))
}

/// Stdout of a tool run that must succeed.
fn tool_ok(bin: &Path, broker: &Broker, args: &[&str]) -> String {
    let out = tool(bin, broker, args);
    assert!(
        out.status.success(),
        "ironlog {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

async fn produce_keyed(client: &Client, topic: &str, partition: i32, range: std::ops::Range<i32>) {
    let records: Vec<ProduceRecord> = range
        .map(|i| record(Some(&format!("k{i}")), &format!("v{i}")))
        .collect();
    client
        .produce(topic, partition, &records, Acks::All, Compression::None)
        .await
        .expect("produce");
}

async fn committed(client: &Client, group: &str) -> BTreeMap<(String, i32), i64> {
    client
        .committed_offsets(group)
        .await
        .expect("committed offsets")
        .into_iter()
        .map(|(tp, c)| (tp, c.offset))
        .collect()
}

#[tokio::test]
async fn consume_in_a_group_continues_where_the_last_run_committed() {
    let bin = broker_bin("consume_in_a_group_continues_where_the_last_run_committed");
    let (broker, client) = Broker::start(bin.clone()).await;
    client
        .create_topic(&new_topic("grouped", 1, &[]), false)
        .await
        .unwrap();
    produce_keyed(&client, "grouped", 0, 0..10).await;
    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", "--topic", "grouped", "--group", "g"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--timeout-ms", "20000"]);
        tool_ok(&bin, &broker, &args)
    };

    // Values only, like kafka-console-consumer; the first run starts at the beginning.
    let out = consume(&["--from-beginning", "--max-messages", "4"]);
    assert_eq!(out, "v0\nv1\nv2\nv3\n");
    assert_eq!(
        committed(&client, "g").await,
        BTreeMap::from([(("grouped".to_string(), 0), 4)])
    );

    // The next run continues at the committed offset; keys on request.
    let out = consume(&["--max-messages", "3", "--print-key"]);
    assert_eq!(out, "k4\tv4\nk5\tv5\nk6\tv6\n");

    // --from-beginning does not apply once the group has a committed offset;
    // kafka-console-consumer's --property spelling works too.
    let out = consume(&[
        "--from-beginning",
        "--max-messages",
        "2",
        "--property",
        "print.offset=true",
        "--print-partition",
    ]);
    assert_eq!(
        out,
        "Partition:0\tOffset:7\tv7\nPartition:0\tOffset:8\tv8\n"
    );
    assert_eq!(
        committed(&client, "g").await,
        BTreeMap::from([(("grouped".to_string(), 0), 9)])
    );

    // Idle timeout: prints the rest, commits it and exits cleanly.
    let out = tool(
        &bin,
        &broker,
        &[
            "consume",
            "--topic",
            "grouped",
            "--group",
            "g",
            "--timeout-ms",
            "1500",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v9\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Processed a total of 1 messages"),
        "{out:?}"
    );
    assert_eq!(
        committed(&client, "g").await,
        BTreeMap::from([(("grouped".to_string(), 0), 10)])
    );

    // Each run left the group on exit: it is empty again, not waiting for a session timeout.
    let group = client.describe_group("g").await.unwrap();
    assert_eq!(group.state, "Empty", "{group:?}");
    assert!(group.members.is_empty(), "{group:?}");

    // Without --group the output is as before: partition, offset, key, value.
    let out = tool_ok(
        &bin,
        &broker,
        &[
            "consume",
            "--topic",
            "grouped",
            "--partition",
            "0",
            "--offset",
            "9",
            "--max-messages",
            "1",
            "--timeout-ms",
            "20000",
        ],
    );
    assert_eq!(out, "0\t9\tk9\tv9\n");
}

#[tokio::test]
async fn consume_in_a_group_commits_on_ctrl_c() {
    let bin = broker_bin("consume_in_a_group_commits_on_ctrl_c");
    let (broker, client) = Broker::start(bin.clone()).await;
    client
        .create_topic(&new_topic("interrupted", 2, &[]), false)
        .await
        .unwrap();
    produce_keyed(&client, "interrupted", 0, 0..3).await;
    produce_keyed(&client, "interrupted", 1, 3..5).await;
    // No periodic commit during the test: what is committed is the commit on exit.
    let mut child = Command::new(&bin)
        .args(["consume", "--topic", "interrupted", "--group", "ctrl-c"])
        .args(["--from-beginning", "--commit-interval-ms", "600000"])
        .args(["--bootstrap-server", &broker.address])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start consume");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .take(5)
            .map(|l| l.expect("read stdout"))
            .collect()
    })
    .await
    .unwrap();
    let mut values = lines.clone();
    values.sort();
    assert_eq!(values, vec!["v0", "v1", "v2", "v3", "v4"], "{lines:?}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("consume exits");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Processed a total of 5 messages"),
        "{out:?}"
    );
    assert_eq!(
        committed(&client, "ctrl-c").await,
        BTreeMap::from([
            (("interrupted".to_string(), 0), 3),
            (("interrupted".to_string(), 1), 2)
        ])
    );
}

#[tokio::test]
async fn topics_describe_prints_leader_replicas_and_isr_per_partition() {
    let bin = broker_bin("topics_describe_prints_leader_replicas_and_isr_per_partition");
    let (broker, client) = Broker::start(bin.clone()).await;
    client
        .create_topic(
            &new_topic("described", 2, &[("retention.ms", "60000")]),
            false,
        )
        .await
        .unwrap();
    let metadata = client
        .metadata(Some(&["described".to_string()]))
        .await
        .unwrap();
    let id = format_topic_id(&metadata.topic("described").unwrap().topic_id);
    let out = tool_ok(
        &bin,
        &broker,
        &["topics", "describe", "--topic", "described"],
    );
    assert_eq!(
        out,
        format!(
            "Topic: described\tTopicId: {id}\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: retention.ms=60000\n\
             \tTopic: described\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n\
             \tTopic: described\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1\n"
        )
    );
}

#[tokio::test]
async fn cluster_describe_shows_the_single_broker() {
    let bin = broker_bin("cluster_describe_shows_the_single_broker");
    let (broker, client) = Broker::start(bin.clone()).await;
    let metadata = client.metadata(None).await.unwrap();
    let cluster_id = metadata.cluster_id.clone().expect("cluster id in Metadata");
    let out = tool(&bin, &broker, &["cluster", "describe"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("ClusterId: {cluster_id}"), "{stdout}");
    assert_eq!(lines[1], "ControllerId: 1", "{stdout}");
    let brokers: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("\tBroker: "))
        .collect();
    assert_eq!(
        brokers,
        vec![format!(
            "\tBroker: 1\tAddress: {}\tRack: none\tFenced: false\tListedBy: DescribeCluster,Metadata",
            broker.address
        )],
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&"PartitionsWithoutLeader: 0"),
        "{stdout}"
    );
    // A quorum the broker cannot describe is a clear failure, not a silent gap.
    if !out.status.success() {
        assert!(
            stdout.contains("Quorum: __cluster_metadata-0\tfailed: "),
            "{stdout}"
        );
        assert!(
            stderr.contains("DescribeQuorum")
                && (stderr.contains("does not support") || stderr.contains("UNSUPPORTED_VERSION")),
            "{stderr}"
        );
    }
}

/// A single broker is the metadata quorum: its only voter and its leader.
#[tokio::test]
async fn cluster_describe_shows_the_quorum_of_one() {
    let bin = broker_bin("cluster_describe_shows_the_quorum_of_one");
    let (broker, client) = Broker::start(bin.clone()).await;
    let quorum = client.describe_quorum().await.expect("DescribeQuorum");
    assert_eq!(quorum.leader_id, Some(1), "{quorum:?}");
    assert!(quorum.leader_epoch >= 1, "{quorum:?}");
    assert_eq!(
        quorum
            .voters
            .iter()
            .map(|v| v.replica_id)
            .collect::<Vec<_>>(),
        vec![1],
        "{quorum:?}"
    );
    assert!(quorum.observers.is_empty(), "{quorum:?}");
    assert_eq!(
        quorum.voters[0].lag(quorum.high_watermark),
        Some(0),
        "{quorum:?}"
    );

    let out = tool_ok(&bin, &broker, &["cluster", "describe"]);
    let quorum_line = out
        .lines()
        .find(|l| l.starts_with("Quorum: "))
        .unwrap_or_else(|| panic!("no quorum line in:\n{out}"));
    assert!(
        quorum_line.starts_with("Quorum: __cluster_metadata-0\tLeaderId: 1\tLeaderEpoch: "),
        "{out}"
    );
    assert!(quorum_line.ends_with("\tVoters: 1\tObservers: "), "{out}");
    let voters: Vec<&str> = out.lines().filter(|l| l.starts_with("\tVoter: ")).collect();
    assert_eq!(voters.len(), 1, "{out}");
    assert!(voters[0].starts_with("\tVoter: 1\tLogEndOffset: "), "{out}");
    assert!(voters[0].contains("\tLag: 0\t"), "{out}");
}

fn quotas(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
    entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn client_quotas_set_describe_remove() {
    let bin = broker_bin("client_quotas_set_describe_remove");
    let (_broker, client) = Broker::start(bin).await;
    let alice = || vec![("user".to_string(), Some("alice".to_string()))];
    let alice_app = || {
        vec![
            ("client-id".to_string(), Some("app".to_string())),
            ("user".to_string(), Some("alice".to_string())),
        ]
    };
    let default_user = || vec![("user".to_string(), None)];

    let set = quotas(&[
        ("producer_byte_rate", 1_048_576.0),
        ("consumer_byte_rate", 2_097_152.0),
        ("request_percentage", 12.5),
    ]);
    client
        .alter_client_quotas(&alice(), &set, &[])
        .await
        .expect("set alice's quotas");
    // Neighbours that a strict, exact filter must leave out.
    client
        .alter_client_quotas(
            &alice_app(),
            &quotas(&[("producer_byte_rate", 1024.0)]),
            &[],
        )
        .await
        .expect("set alice's quota for client id app");
    client
        .alter_client_quotas(
            &default_user(),
            &quotas(&[("consumer_byte_rate", 4096.0)]),
            &[],
        )
        .await
        .expect("set the default user's quota");

    let described = client
        .describe_client_quotas(&alice(), true)
        .await
        .expect("describe alice's quotas");
    assert_eq!(described, vec![(QuotaEntity::user(Some("alice")), set)]);

    let loose = client
        .describe_client_quotas(&alice(), false)
        .await
        .expect("describe every entity of alice");
    let entities: Vec<String> = loose.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(entities, ["user=alice", "user=alice, client-id=app"]);
    assert_eq!(loose[1].1, quotas(&[("producer_byte_rate", 1024.0)]));

    let defaults = client
        .describe_client_quotas(&default_user(), true)
        .await
        .expect("describe the default user's quotas");
    assert_eq!(
        defaults,
        vec![(
            QuotaEntity::user(None),
            quotas(&[("consumer_byte_rate", 4096.0)])
        )]
    );

    client
        .alter_client_quotas(
            &alice(),
            &BTreeMap::new(),
            &["consumer_byte_rate".to_string()],
        )
        .await
        .expect("remove alice's consumer quota");
    let described = client.describe_client_quotas(&alice(), true).await.unwrap();
    assert_eq!(
        described,
        vec![(
            QuotaEntity::user(Some("alice")),
            quotas(&[
                ("producer_byte_rate", 1_048_576.0),
                ("request_percentage", 12.5)
            ])
        )]
    );

    // The broker's checks come back as Kafka errors, and nothing changes.
    let refused = client
        .alter_client_quotas(&alice(), &quotas(&[("producer_byte_rate", 1.5)]), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::Kafka {
                name: "INVALID_REQUEST",
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("user=alice"), "{refused}");
    let both = client
        .alter_client_quotas(
            &alice(),
            &quotas(&[("request_percentage", 50.0)]),
            &["request_percentage".to_string()],
        )
        .await
        .unwrap_err();
    assert!(matches!(both, ClientError::InvalidArgument(_)), "{both}");
    assert_eq!(
        client.describe_client_quotas(&alice(), true).await.unwrap(),
        described
    );

    // Removing the last keys removes the entity.
    client
        .alter_client_quotas(
            &alice(),
            &BTreeMap::new(),
            &[
                "producer_byte_rate".to_string(),
                "request_percentage".to_string(),
            ],
        )
        .await
        .expect("remove alice's last quotas");
    assert_eq!(
        client.describe_client_quotas(&alice(), true).await.unwrap(),
        vec![]
    );
}
