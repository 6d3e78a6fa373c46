//! Integration tests against a real broker binary.
//!
//! Set `IRONLOG_BIN` to the `ironlog` binary (the workspace test script does); without it
//! every test prints a note and passes without doing anything.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironlog_client::tools::topics::{self, TopicsArgs, TopicsCommand};
use ironlog_client::tools::ConnectionArgs;
use ironlog_client::{
    Acks, Bytes, Client, ClientError, Compression, ConfigSource, NewTopic, OffsetSpec,
    ProduceRecord,
};

/// A broker process on free ports in its own temporary directory; killed on drop.
struct Broker {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // The port is released before the broker binds it; a collision is unlikely and would
    // show up as a startup failure with the broker's log attached.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

fn broker_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os("IRONLOG_BIN") {
        Some(bin) => Some(PathBuf::from(bin)),
        None => {
            eprintln!("skipping {test}: IRONLOG_BIN is not set (point it at the ironlog binary)");
            None
        }
    }
}

impl Broker {
    async fn start(bin: PathBuf) -> (Broker, Client) {
        let dir = tempfile::tempdir().expect("temp dir");
        let address = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("broker.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("broker")
            .args(["--listen", &address, "--metrics-listen", &metrics])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--auto-create-topics", "false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let broker = Broker {
            child,
            address,
            dir,
        };
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
                    std::fs::read_to_string(broker.dir.path().join("broker.log"))
                        .unwrap_or_default()
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
    let Some(bin) = broker_bin("topic_lifecycle_create_describe_alter_delete") else {
        return;
    };
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
    let Some(bin) = broker_bin("produce_then_consume_with_every_codec") else {
        return;
    };
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
    let Some(bin) = broker_bin("list_offsets_by_time_and_fire_and_forget_produce") else {
        return;
    };
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
    let Some(bin) = broker_bin("describe_cluster_or_clear_unsupported_error") else {
        return;
    };
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
    let Some(bin) = broker_bin("topics_tool_creates_alters_and_deletes") else {
        return;
    };
    let (broker, client) = Broker::start(bin).await;
    let args = |command| TopicsArgs {
        connection: ConnectionArgs {
            bootstrap_server: broker.address.clone(),
            request_timeout_ms: 10_000,
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
