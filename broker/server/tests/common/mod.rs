//! A broker started in-process on port 0, and a raw Kafka client that sends exactly the
//! bytes a test wants (including broken ones).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ironlog_protocol::kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use ironlog_protocol::kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use ironlog_server::config::BrokerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn config(data_dir: &Path, listen: SocketAddr, metrics: SocketAddr) -> BrokerConfig {
    BrokerConfig {
        node_id: 1,
        listen,
        advertised_host: listen.ip().to_string(),
        advertised_port: listen.port() as i32,
        listeners: vec![ironlog_server::config::security::ListenerConfig::plaintext(
            listen,
        )],
        inter_broker_listener: "PLAINTEXT".into(),
        inter_broker_client: Default::default(),
        security: ironlog_server::config::security::SecurityConfig::default(),
        data_dir: data_dir.to_path_buf(),
        metrics_listen: metrics,
        auto_create_topics: true,
        default_partitions: 1,
        default_replication_factor: 1,
        socket_request_max_bytes: 1024 * 1024,
        max_connections: 100,
        fetch_session_cache_slots: 1000,
        log_write_behind_bytes: ironlog_storage::write_behind::DEFAULT_WINDOW,
        default_topic_config: vec![],
        group: ironlog_server::group::GroupConfig::default(),
        net: ironlog_server::config::NetLimits::default(),
        cleaner: Some(ironlog_server::config::CleanerSettings::default()),
        cluster: ironlog_server::config::ClusterSettings::default(),
    }
}

impl TestBroker {
    pub async fn start(data_dir: &Path) -> TestBroker {
        Self::start_with(data_dir, |_| {}).await
    }

    pub async fn start_with(data_dir: &Path, tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, metrics_addr) = (listener.local_addr().unwrap(), http.local_addr().unwrap());
        let mut config = config(data_dir, addr, metrics_addr);
        tweak(&mut config);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(ironlog_server::broker::run_on(
            config, listener, http, stopped,
        ));
        let broker = TestBroker {
            addr,
            metrics_addr,
            stop,
            task,
        };
        // Ready once ApiVersions answers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = RawClient::connect(addr).await {
                if c.api_versions_ok().await {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "broker did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        broker
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.metrics_addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

pub struct RawClient {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<RawClient> {
        Ok(RawClient {
            stream: TcpStream::connect(addr).await?,
            next_correlation_id: 1,
        })
    }

    /// Encodes a request frame (size prefix included).
    pub fn frame<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &R) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("ironlog-test")));
        let mut inner = BytesMut::new();
        header
            .encode(&mut inner, api.request_header_version(version))
            .unwrap();
        body.encode(&mut inner, version).unwrap();
        let mut out = BytesMut::new();
        out.put_i32(inner.len() as i32);
        out.extend_from_slice(&inner);
        out.freeze()
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Sends a request without waiting; returns its correlation id.
    pub async fn send<R: Encodable>(&mut self, api: ApiKey, version: i16, body: &R) -> i32 {
        let cid = self.next_correlation_id;
        self.next_correlation_id += 1;
        let frame = Self::frame(api, version, cid, body);
        self.send_raw(&frame).await;
        cid
    }

    /// Reads one response frame: (correlation id, body bytes after the header).
    pub async fn recv<R: Decodable + HeaderVersion>(&mut self, version: i16) -> (i32, R) {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.unwrap();
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).await.unwrap();
        let mut bytes = Bytes::from(buf);
        let header = ResponseHeader::decode(&mut bytes, R::header_version(version)).unwrap();
        let body = R::decode(&mut bytes, version).unwrap();
        assert!(!bytes.has_remaining(), "trailing bytes in response");
        (header.correlation_id, body)
    }

    pub async fn call<Req: Encodable, Resp: Decodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let cid = self.send(api, version, body).await;
        let (got, resp) = self.recv::<Resp>(version).await;
        assert_eq!(got, cid, "responses must come back in request order");
        resp
    }

    pub async fn api_versions_ok(&mut self) -> bool {
        use ironlog_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
        let cid = self
            .send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
            .await;
        let fut = self.recv::<ApiVersionsResponse>(0);
        matches!(tokio::time::timeout(Duration::from_secs(2), fut).await, Ok((c, r)) if c == cid && r.error_code == 0)
    }

    /// True if the broker closed the connection (EOF) within the deadline.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Creates `topic` (one partition) through Metadata v9 auto-creation and checks it exists.
pub async fn create_topic(client: &mut RawClient, topic: &str) {
    use ironlog_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use ironlog_protocol::kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    let name = topic_name(topic);
    let resp: MetadataResponse = client
        .call(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(resp.topics[0].error_code, 0);
}

pub fn topic_name(s: &str) -> ironlog_protocol::kafka_protocol::messages::TopicName {
    StrBytes::from_string(s.to_string()).into()
}

/// A Produce request of `records` (one batch, as given) to one partition.
pub fn produce_request(
    topic: &str,
    partition: i32,
    acks: i16,
    records: Vec<u8>,
) -> ironlog_protocol::kafka_protocol::messages::ProduceRequest {
    use ironlog_protocol::kafka_protocol::messages::produce_request::{
        PartitionProduceData, TopicProduceData,
    };
    ironlog_protocol::kafka_protocol::messages::ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records)))])])
}

/// The value of one series (name and labels, exactly as exposed) in a Prometheus text
/// exposition; 0 if it was never set.
pub fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// `ironlog_refused_frames_total{reason}` of the broker.
pub async fn refused_frames(broker: &TestBroker, reason: &str) -> f64 {
    metric_of(
        broker,
        &format!(r#"ironlog_refused_frames_total{{reason="{reason}"}}"#),
    )
    .await
}

/// One series of the broker's `/metrics`, as [`metric`].
pub async fn metric_of(broker: &TestBroker, series: &str) -> f64 {
    metric(&broker.http_get("/metrics").await.1, series)
}

/// A Fetch request (v11 fields) for partition 0 of `topic` from `offset`.
pub fn fetch_request(
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> ironlog_protocol::kafka_protocol::messages::FetchRequest {
    use ironlog_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    ironlog_protocol::kafka_protocol::messages::FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(partition_max_bytes)])])
}

/// Every record of partition 0 of `topic` (up to 10 MiB), fetched from offset 0; the
/// stored batches' CRCs must be valid.
pub async fn fetch_records(
    client: &mut RawClient,
    topic: &str,
) -> Vec<ironlog_storage::batch::testing::TestRecord> {
    use ironlog_protocol::kafka_protocol::messages::FetchResponse;
    let request = fetch_request(topic, 0, 0, 10 << 20);
    let resp: FetchResponse = client.call(ApiKey::Fetch, 11, &request).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let data = p.records.as_deref().unwrap_or_default();
    ironlog_storage::batch::parse_batches(data).expect("stored batches have valid CRCs");
    ironlog_storage::batch::testing::decode_records(data)
}

/// ListOffsets (v7) of partition 0 of `topic` for one timestamp: (error, offset, timestamp).
pub async fn list_offsets(client: &mut RawClient, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    use ironlog_protocol::kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    use ironlog_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    let resp: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}
