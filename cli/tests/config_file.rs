//! `ironlog broker --config FILE`: a Kafka-style server.properties alone configures the
//! broker, and a bad key stops it at start-up.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ironlog_client::{Client, ConfigSource, Connection};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

/// A broker process; killed on drop.
struct BrokerProcess {
    child: Child,
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // Released before the broker binds it; a collision would show as a start-up failure
    // with the broker's log attached.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// `ironlog broker --config CONFIG` with no `IRONLOG_*` variables, its output in `log`.
fn spawn_broker(config: &Path, log: &Path) -> BrokerProcess {
    let log = std::fs::File::create(log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ironlog"));
    command
        .arg("broker")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IRONLOG_") {
            command.env_remove(name);
        }
    }
    BrokerProcess {
        child: command.spawn().expect("start the ironlog binary"),
    }
}

fn exited_within(broker: &mut BrokerProcess, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = broker.child.try_wait().expect("poll the broker") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_config_file_alone_configures_the_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let address = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "# A broker configured only by this file.\n\
             node.id=7\n\
             listeners=PLAINTEXT://{address}\n\
             log.dirs={}\n\
             num.partitions=3\n\
             log.retention.ms=4242000\n\
             ironlog.metrics.listen={metrics}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write the config file");
    let log = dir.path().join("broker.log");
    let mut broker = spawn_broker(&config, &log);
    let broker_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        if let Some(status) = broker.child.try_wait().expect("poll the broker") {
            panic!("broker exited with {status}:\n{}", broker_log());
        }
        match Client::bootstrap(&address).await {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("broker at {address} did not come up: {e}\n{}", broker_log()),
        }
    };

    // node.id from the file.
    let cluster = client.metadata(None).await.expect("metadata");
    let ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    assert_eq!(ids, vec![7], "{cluster:?}");

    // num.partitions from the file: a topic auto-created by Metadata has 3 partitions.
    let mut connection = Connection::connect(&address, "config-file-test", Duration::from_secs(10))
        .await
        .expect("connect");
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]))
        .with_allow_auto_topic_creation(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    let partitions = loop {
        let response = connection.send(&request).await.expect("metadata request");
        let topic = response.topics.first().expect("the topic asked for");
        if topic.error_code == 0 && !topic.partitions.is_empty() {
            break topic.partitions.len();
        }
        assert!(
            Instant::now() < deadline,
            "orders was not auto-created: error {} ({} partitions)\n{}",
            topic.error_code,
            topic.partitions.len(),
            broker_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(partitions, 3);

    // log.retention.ms from the file: the topic's default retention.ms.
    let configs = client.describe_configs("orders").await.expect("describe");
    let retention = configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .expect("retention.ms is described");
    assert_eq!(retention.value.as_deref(), Some("4242000"), "{retention:?}");
    assert_eq!(
        retention.source,
        ConfigSource::DefaultConfig,
        "{retention:?}"
    );

    let log_text = broker_log();
    assert!(
        log_text.contains("read broker config file") && log_text.contains("keys=6"),
        "{log_text}"
    );
}

#[test]
fn an_unknown_key_stops_the_broker_at_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{}\n\
             log.dirs={}\n\
             log.retention.hour=168\n",
            free_port(),
            dir.path().join("data").display()
        ),
    )
    .expect("write the config file");
    let log = dir.path().join("broker.log");
    let mut broker = spawn_broker(&config, &log);
    let status = exited_within(&mut broker, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the broker kept running with a bad config file"));
    let stderr = std::fs::read_to_string(&log).expect("read the log");
    assert!(!status.success(), "{status}: {stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            r#"error: config file {}: line 3: unknown broker config key "log.retention.hour" (did you mean "log.retention.hours"?)"#,
            config.display()
        )
    );
    assert!(
        !dir.path().join("data").exists(),
        "the broker got as far as creating its data directory"
    );
}
