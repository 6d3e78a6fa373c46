//! Kafka's batch validation over the wire: what Produce answers for each rule (error code,
//! from v8 the error message and `record_errors` naming each record), and that the log
//! holds exactly the acknowledged records afterwards.

mod common;

use common::{fetch_records, list_offsets, produce_request, topic_name, RawClient, TestBroker};
use ironlog_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use ironlog_protocol::kafka_protocol::messages::produce_response::PartitionProduceResponse;
use ironlog_protocol::kafka_protocol::messages::*;
use ironlog_protocol::kafka_protocol::protocol::StrBytes;
use ironlog_storage::batch::testing::{
    batch_with_fields, build_records_batch, HeaderFields, RecordSpec,
};
use ironlog_storage::batch::Compression;

const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn create_topic_with(client: &mut RawClient, topic: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)]);
    let resp: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request).await;
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
}

async fn produce_v(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    records: Vec<u8>,
) -> PartitionProduceResponse {
    let request = produce_request(topic, 0, -1, records);
    let resp: ProduceResponse = client.call(ApiKey::Produce, version, &request).await;
    resp.responses[0].partition_responses[0].clone()
}

/// Every (offset, key, timestamp) in the partition, fetched from offset 0.
async fn fetch_all(client: &mut RawClient, topic: &str) -> Vec<(i64, String, i64)> {
    fetch_records(client, topic)
        .await
        .into_iter()
        .map(|r| {
            let key = r
                .key
                .map(|k| String::from_utf8(k).unwrap())
                .unwrap_or_default();
            (r.offset, key, r.timestamp)
        })
        .collect()
}

/// ListOffsets by timestamp: (offset, timestamp).
async fn offset_for_time(client: &mut RawClient, topic: &str, timestamp: i64) -> (i64, i64) {
    let (error, offset, timestamp) = list_offsets(client, topic, timestamp).await;
    assert_eq!(error, 0);
    (offset, timestamp)
}

fn spec(key: Option<&str>, offset_delta: i32, timestamp_delta: i64) -> RecordSpec {
    RecordSpec {
        timestamp_delta,
        offset_delta,
        key: key.map(|k| k.as_bytes().to_vec()),
        value: Some(b"some value bytes, about forty of them..".to_vec()),
        headers: Vec::new(),
    }
}

/// A batch of `records` with these header fields exactly (CRC valid).
fn batch(
    codec: Compression,
    base_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta: i32,
    records: &[RecordSpec],
) -> Vec<u8> {
    let fields = HeaderFields {
        base_offset: 0,
        base_timestamp,
        max_timestamp,
        last_offset_delta,
        records_count: records.len() as i32,
        compression: codec,
    };
    batch_with_fields(&fields, records)
}

fn keys(records: &[(i64, String, i64)]) -> Vec<String> {
    records.iter().map(|r| r.1.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarama_style_batches_with_max_timestamp_minus_one_are_accepted_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic_with(&mut c, "sarama", &[]).await;
    // As Sarama 1.22's SyncProducer: one snappy record per Produce v7 request, header
    // maxTimestamp -1. 300 of them pass index.interval.bytes (4096) several times.
    let t0 = now_ms() - 10_000;
    for i in 0..300i64 {
        let key = format!("k{i}");
        let b = batch(
            Compression::Snappy,
            t0 + i,
            -1,
            0,
            &[spec(Some(&key), 0, 0)],
        );
        let p = produce_v(&mut c, 7, "sarama", b).await;
        assert_eq!((p.error_code, p.base_offset), (0, i), "message {i}: {p:?}");
    }
    let records = fetch_all(&mut c, "sarama").await;
    assert_eq!(records.len(), 300);
    for (i, (offset, key, ts)) in records.iter().enumerate() {
        assert_eq!(
            (*offset, key.as_str(), *ts),
            (i as i64, &*format!("k{i}"), t0 + i as i64)
        );
    }
    // The time index built from the corrected headers finds each record's batch.
    for i in [0i64, 150, 299] {
        assert_eq!(offset_for_time(&mut c, "sarama", t0 + i).await, (i, t0 + i));
    }
    assert_eq!(offset_for_time(&mut c, "sarama", -3).await, (299, t0 + 299));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_name_each_keyless_record_in_a_compacted_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic_with(&mut c, "compacted", &[("cleanup.policy", "compact")]).await;
    let now = now_ms();
    let good = batch(Compression::None, now, now, 0, &[spec(Some("a"), 0, 0)]);
    assert_eq!(produce_v(&mut c, 8, "compacted", good).await.error_code, 0);

    let records = [
        spec(Some("b"), 0, 0),
        spec(None, 1, 0),
        spec(Some("c"), 2, 0),
        spec(None, 3, 0),
    ];
    let bad = batch(Compression::Lz4, now, now, 3, &records);
    let p = produce_v(&mut c, 8, "compacted", bad.clone()).await;
    assert_eq!((p.error_code, p.base_offset), (INVALID_RECORD, -1));
    let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 3]);
    let first = p.record_errors[0]
        .batch_index_error_message
        .as_deref()
        .unwrap();
    assert!(first.contains("key"), "{first}");
    let message = p.error_message.as_deref().unwrap();
    assert!(message.contains("2 record(s) rejected"), "{message}");

    // Before v8 the error code alone.
    let p = produce_v(&mut c, 7, "compacted", bad).await;
    assert_eq!(p.error_code, INVALID_RECORD);
    assert!(p.record_errors.is_empty() && p.error_message.is_none());

    assert_eq!(keys(&fetch_all(&mut c, "compacted").await), ["a"]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_out_of_range_are_invalid_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic_with(
        &mut c,
        "clock",
        &[("message.timestamp.before.max.ms", "3600000")],
    )
    .await;
    let now = now_ms();
    let hour = 3_600_000;
    for (what, base, deltas, bad) in [
        ("two hours old", now, [0, -2 * hour, 0], vec![1]),
        ("two hours ahead", now, [0, 0, 2 * hour], vec![2]),
        ("both", now - 3 * hour, [0, 0, 5 * hour], vec![0, 1, 2]),
    ] {
        let records: Vec<RecordSpec> = deltas
            .iter()
            .enumerate()
            .map(|(i, &d)| spec(Some("k"), i as i32, d))
            .collect();
        let b = batch(Compression::Zstd, base, base, 2, &records);
        let p = produce_v(&mut c, 9, "clock", b).await;
        assert_eq!(p.error_code, INVALID_TIMESTAMP, "{what}: {p:?}");
        let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, bad, "{what}");
    }
    // Within the window, and records without a timestamp (-1), are taken.
    let b = batch(
        Compression::None,
        now - hour + 60_000,
        -1,
        0,
        &[spec(Some("ok"), 0, 0)],
    );
    assert_eq!(produce_v(&mut c, 9, "clock", b).await.error_code, 0);
    let b = batch(Compression::None, -1, -1, 0, &[spec(Some("none"), 0, 0)]);
    assert_eq!(produce_v(&mut c, 9, "clock", b).await.error_code, 0);
    assert_eq!(keys(&fetch_all(&mut c, "clock").await), ["ok", "none"]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_that_disagree_are_invalid_record_and_nothing_lands() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic_with(&mut c, "offsets", &[]).await;
    let now = now_ms();
    let three = [
        spec(Some("x"), 0, 0),
        spec(Some("y"), 1, 0),
        spec(Some("z"), 2, 0),
    ];
    let gapped = [
        spec(Some("x"), 0, 0),
        spec(Some("y"), 2, 0),
        spec(Some("z"), 3, 0),
    ];
    for (what, b, record_errors) in [
        (
            "lastOffsetDelta 5 for 3 records",
            batch(Compression::None, now, now, 5, &three),
            vec![],
        ),
        (
            "lastOffsetDelta 1 for 3 records",
            batch(Compression::Gzip, now, now, 1, &three),
            vec![],
        ),
        (
            "offset deltas 0, 2, 3",
            batch(Compression::Snappy, now, now, 2, &gapped),
            vec![1, 2],
        ),
    ] {
        let p = produce_v(&mut c, 8, "offsets", b).await;
        assert_eq!(p.error_code, INVALID_RECORD, "{what}: {p:?}");
        let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, record_errors, "{what}");
        assert!(p.error_message.is_some(), "{what}");
    }
    // Two well-formed batches in one partition: Produce v3+ allows exactly one.
    let mut two = build_records_batch(0, now, Compression::None, &three);
    two.extend(build_records_batch(0, now, Compression::None, &three));
    let p = produce_v(&mut c, 7, "offsets", two).await;
    assert_eq!(p.error_code, INVALID_RECORD);
    let p = produce_v(
        &mut c,
        7,
        "offsets",
        batch(Compression::None, now, now, 2, &three),
    )
    .await;
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    assert_eq!(keys(&fetch_all(&mut c, "offsets").await), ["x", "y", "z"]);
    broker.stop().await;
}
