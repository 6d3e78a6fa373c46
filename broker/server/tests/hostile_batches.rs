//! Hostile record batches produced over the wire to an in-process broker: each is refused
//! with the right error code, nothing is appended (the log end offset does not move), the
//! connection and the broker stay up, and a normal produce works afterwards. Plus the
//! other side: valid compressed batches are accepted and ListOffsets finds records inside
//! them.

mod common;

use common::{create_topic, fetch_records, list_offsets, produce_request, RawClient, TestBroker};
use ironlog_protocol::kafka_protocol::messages::produce_response::PartitionProduceResponse;
use ironlog_protocol::kafka_protocol::messages::*;
use ironlog_storage::batch::testing::{
    assemble_batch, build_records_batch, compress, compressed_zeros, put_varint, set_records_count,
    HeaderFields, RecordSpec, CODECS,
};
use ironlog_storage::batch::Compression;

const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_RECORD: i16 = 87;

async fn produce(
    client: &mut RawClient,
    topic: &str,
    records: Vec<u8>,
) -> PartitionProduceResponse {
    let request = produce_request(topic, 0, -1, records);
    // v8: the first version with error_message.
    let resp: ProduceResponse = client.call(ApiKey::Produce, 8, &request).await;
    resp.responses[0].partition_responses[0].clone()
}

async fn log_end_offset(client: &mut RawClient, topic: &str) -> i64 {
    let (error, offset, _) = list_offsets(client, topic, -1).await;
    assert_eq!(error, 0);
    offset
}

/// (offset, value) of every record from offset 0.
async fn fetch_values(client: &mut RawClient, topic: &str) -> Vec<(i64, String)> {
    fetch_records(client, topic)
        .await
        .into_iter()
        .map(|r| (r.offset, String::from_utf8(r.value.unwrap()).unwrap()))
        .collect()
}

fn record(value: &str, offset_delta: i32, timestamp_delta: i64) -> RecordSpec {
    RecordSpec {
        timestamp_delta,
        offset_delta,
        key: Some(format!("key-{value}").into_bytes()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![(b"h".to_vec(), Some(b"v".to_vec()))],
    }
}

fn valid(codec: Compression, values: &[&str]) -> Vec<u8> {
    let specs: Vec<RecordSpec> = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(v, i as i32, i as i64))
        .collect();
    build_records_batch(0, 1_000, codec, &specs)
}

fn fields(codec: Compression, records_count: i32) -> HeaderFields {
    HeaderFields {
        base_offset: 0,
        base_timestamp: 1_000,
        max_timestamp: 1_000,
        last_offset_delta: records_count.max(1) - 1,
        records_count,
        compression: codec,
    }
}

/// A batch of one record whose body after attributes and deltas is `rest`.
fn one_raw_record(codec: Compression, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8, 0, 0];
    body.extend_from_slice(rest);
    let mut raw = Vec::new();
    put_varint(&mut raw, body.len() as i64);
    raw.extend(body);
    assemble_batch(&fields(codec, 1), &compress(codec, &raw))
}

fn varints(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        put_varint(&mut out, v);
    }
    out
}

/// (what, batch bytes, expected error code)
fn hostile_batches() -> Vec<(String, Vec<u8>, i16)> {
    let mut cases = Vec::new();
    for codec in CODECS {
        let mut b = valid(codec, &["x", "y"]);
        set_records_count(&mut b, i32::MAX);
        cases.push((format!("{codec}: 2^31-1 records"), b, INVALID_RECORD));

        let mut rest = varints(&[-1, -1, i64::from(i32::MAX), 1]);
        rest.push(b'h');
        rest.extend(varints(&[-1]));
        cases.push((
            format!("{codec}: 2^31-1 headers"),
            one_raw_record(codec, &rest),
            INVALID_RECORD,
        ));

        let mut rest = varints(&[i64::from(i32::MAX)]);
        rest.extend_from_slice(b"key");
        cases.push((
            format!("{codec}: key length 2^31-1"),
            one_raw_record(codec, &rest),
            INVALID_RECORD,
        ));

        let mut b = valid(codec, &["x", "y", "z"]);
        set_records_count(&mut b, 2);
        cases.push((
            format!("{codec}: a record more than counted"),
            b,
            INVALID_RECORD,
        ));
    }
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        // Inflates past the broker's 64 MiB floor from well under the 1 MiB request limit.
        let bomb = compressed_zeros(codec, 65 << 20);
        assert!(bomb.len() < 900 << 10, "{codec}: {} bytes", bomb.len());
        cases.push((
            format!("{codec}: zip bomb"),
            assemble_batch(&fields(codec, 1), &bomb),
            MESSAGE_TOO_LARGE,
        ));
    }
    // A snappy block stating a 65 MiB output up front: refused before it is allocated.
    let mut block = Vec::new();
    put_varint(&mut block, (65 << 20) * 2); // snappy's length is a plain varint: 2x zigzag
    block.extend([0x00, b'x']);
    cases.push((
        "snappy: block claiming 65 MiB".into(),
        assemble_batch(&fields(Compression::Snappy, 1), &block),
        MESSAGE_TOO_LARGE,
    ));
    cases.push((
        "none: negative key length".into(),
        one_raw_record(Compression::None, &varints(&[-2, -1, 0])),
        INVALID_RECORD,
    ));
    cases.push((
        "none: truncated varint".into(),
        one_raw_record(Compression::None, &[0x80, 0x80, 0x80, 0x80]),
        INVALID_RECORD,
    ));
    let mut b = valid(Compression::None, &["x"]);
    set_records_count(&mut b, 3);
    cases.push(("none: records missing".into(), b, INVALID_RECORD));
    cases.push((
        "gzip: not gzip".into(),
        assemble_batch(&fields(Compression::Gzip, 1), b"plain bytes, not gzip"),
        CORRUPT_MESSAGE,
    ));
    let mut b = valid(Compression::Zstd, &["x", "y"]);
    let at = b.len() - 2;
    b[at] ^= 0xff;
    cases.push(("zstd: damaged (bad CRC)".into(), b, CORRUPT_MESSAGE));
    // One good batch then a bad one in the same produce: all or nothing.
    let mut bad = valid(Compression::Lz4, &["p"]);
    set_records_count(&mut bad, i32::MAX);
    cases.push((
        "good batch then a bad one".into(),
        [valid(Compression::None, &["ok"]), bad].concat(),
        INVALID_RECORD,
    ));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_batches_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "hostile").await;
    let first = produce(&mut c, "hostile", valid(Compression::Gzip, &["a", "b"])).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));
    assert_eq!(log_end_offset(&mut c, "hostile").await, 2);

    let cases = hostile_batches();
    for (what, batch, want) in &cases {
        let p = produce(&mut c, "hostile", batch.clone()).await;
        assert_eq!(
            p.error_code,
            *want,
            "{what}: {:?}",
            p.error_message.as_deref()
        );
        assert_eq!(p.base_offset, -1, "{what}");
        assert!(
            p.error_message.as_deref().is_some_and(|m| !m.is_empty()),
            "{what}: the refusal says why"
        );
        assert_eq!(
            log_end_offset(&mut c, "hostile").await,
            2,
            "{what}: appended"
        );
    }
    let count = |code| cases.iter().filter(|(_, _, c)| *c == code).count();

    // Same connection, still served; the log holds exactly the good records.
    let after = produce(&mut c, "hostile", valid(Compression::Zstd, &["c"])).await;
    assert_eq!((after.error_code, after.base_offset), (0, 2));
    assert_eq!(
        fetch_values(&mut c, "hostile").await,
        vec![(0, "a".to_string()), (1, "b".into()), (2, "c".into())]
    );
    let (_, metrics) = broker.http_get("/metrics").await;
    for (name, code) in [
        ("INVALID_RECORD", INVALID_RECORD),
        ("MESSAGE_TOO_LARGE", MESSAGE_TOO_LARGE),
        ("CORRUPT_MESSAGE", CORRUPT_MESSAGE),
    ] {
        let line = format!(
            r#"ironlog_errors_total{{api="Produce",error="{name}"}} {}"#,
            count(code)
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "why").await;
    let mut b = valid(Compression::Snappy, &["x", "y"]);
    set_records_count(&mut b, i32::MAX);
    let p = produce(&mut c, "why", b).await;
    let message = p.error_message.as_deref().map(|m| m.to_string());
    assert_eq!(
        message.as_deref(),
        Some(
            "partition why-0: records refused: batch at byte 0: recordsCount 2147483647 \
             disagrees with lastOffsetDelta 1 (a batch of n records has offset deltas 0..n-1)"
        )
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_finds_records_inside_compressed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let topic = format!("compressed-{i}");
        create_topic(&mut c, &topic).await;
        // Timestamps 1000, 1007 (the max, in the middle), 1003.
        let specs = [record("p", 0, 0), record("q", 1, 7), record("r", 2, 3)];
        let p = produce(&mut c, &topic, build_records_batch(0, 1_000, codec, &specs)).await;
        assert_eq!(p.error_code, 0, "{codec}");
        assert_eq!(
            list_offsets(&mut c, &topic, -3).await,
            (0, 1, 1_007),
            "{codec}: max timestamp is record 1, not the batch's last"
        );
        assert_eq!(
            list_offsets(&mut c, &topic, 1_001).await,
            (0, 1, 1_007),
            "{codec}: first record at or after 1001"
        );
        assert_eq!(
            fetch_values(&mut c, &topic).await,
            vec![(0, "p".to_string()), (1, "q".into()), (2, "r".into())],
            "{codec}"
        );
    }
    broker.stop().await;
}

/// Group state is replayed from `__consumer_offsets` at start-up, so only the broker may
/// write it: a client's produce there is refused (INVALID_TOPIC_EXCEPTION, as Kafka).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_produce_to_the_internal_offsets_topic() {
    const INVALID_TOPIC_EXCEPTION: i16 = 17;
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    let p = produce(
        &mut c,
        "__consumer_offsets",
        valid(Compression::None, &["x"]),
    )
    .await;
    assert_eq!(p.error_code, INVALID_TOPIC_EXCEPTION);
    assert_eq!(p.base_offset, -1);
    assert_eq!(
        p.error_message.as_deref().map(|m| m.to_string()).as_deref(),
        Some("cannot produce to the internal topic __consumer_offsets")
    );
    broker.stop().await;
}
