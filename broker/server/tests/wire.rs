//! The broker over real sockets with hand-built requests: framing, error handling, ordering,
//! and the produce → fetch → list offsets path.

mod common;

use std::time::Duration;

use common::{create_topic, fetch_request, produce_request, topic_name, RawClient, TestBroker};
use ironlog_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use ironlog_protocol::kafka_protocol::messages::*;
use ironlog_storage::batch::testing::{build_batch, decode_records};

fn batch(base_ts: i64, values: &[&str]) -> Vec<u8> {
    let records: Vec<ironlog_storage::batch::testing::KeyValue<'_>> =
        values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
    build_batch(0, base_ts, &records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_and_list_offsets_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "orders").await;

    let mut offsets = vec![];
    for (i, values) in [&["a", "b", "c"][..], &["d"][..], &["e", "f"][..]]
        .iter()
        .enumerate()
    {
        let resp: ProduceResponse = c
            .call(
                ApiKey::Produce,
                7,
                &produce_request("orders", 0, -1, batch(1000 * (i as i64 + 1), values)),
            )
            .await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0);
        offsets.push(p.base_offset);
    }
    assert_eq!(offsets, vec![0, 3, 4]);

    // A fetch at offset 1 returns the whole batch containing it (offsets 0..=2), then the rest.
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("orders", 1, 0, 1 << 20))
        .await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 6, 0)
    );
    let records = decode_records(p.records.as_ref().unwrap());
    let got: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e"), (5, "f")]
            .into_iter()
            .map(|(o, v)| (o, v.to_string()))
            .collect::<Vec<_>>()
    );

    // partition_max_bytes smaller than one batch still returns that one batch (KIP-74).
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("orders", 3, 0, 1))
        .await;
    let records = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3]
    );

    // Beyond the end: OFFSET_OUT_OF_RANGE (1).
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("orders", 7, 0, 1 << 20))
        .await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // ListOffsets: earliest, latest, by timestamp (second batch has timestamp 2000).
    let list = |ts| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("orders"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])])
    };
    let mut answers = vec![];
    for ts in [-2, -1, 2000, 2500, 99_999] {
        let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &list(ts)).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        answers.push(p.offset);
    }
    // Record granularity: the first batch holds timestamps 1000, 1001, 1002.
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 5, &list(1001)).await;
    assert_eq!(
        (
            resp.topics[0].partitions[0].offset,
            resp.topics[0].partitions[0].timestamp
        ),
        (1, 1001)
    );
    // Max timestamp (-3, v7+): the record stamped 3001 is offset 5.
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &list(-3)).await;
    assert_eq!(
        (
            resp.topics[0].partitions[0].offset,
            resp.topics[0].partitions[0].timestamp
        ),
        (5, 3001)
    );
    assert_eq!(answers, vec![0, 6, 3, 4, -1]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_acks_0_gets_no_response() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "pipe").await;
    // acks=0, then acks=1 twice, all written before reading anything.
    c.send(
        ApiKey::Produce,
        7,
        &produce_request("pipe", 0, 0, batch(1, &["x"])),
    )
    .await;
    let first = c
        .send(
            ApiKey::Produce,
            7,
            &produce_request("pipe", 0, 1, batch(1, &["y", "z"])),
        )
        .await;
    let second = c
        .send(
            ApiKey::Produce,
            7,
            &produce_request("pipe", 0, 1, batch(1, &["w"])),
        )
        .await;
    let (cid1, r1) = c.recv::<ProduceResponse>(7).await;
    let (cid2, r2) = c.recv::<ProduceResponse>(7).await;
    assert_eq!((cid1, cid2), (first, second));
    assert_eq!(
        r1.responses[0].partition_responses[0].base_offset, 1,
        "the acks=0 batch took offset 0"
    );
    assert_eq!(r2.responses[0].partition_responses[0].base_offset, 3);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_fetch_returns_when_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut consumer = RawClient::connect(broker.addr).await.unwrap();
    let mut producer = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut consumer, "poll").await;
    let started = tokio::time::Instant::now();
    let cid = consumer
        .send(
            ApiKey::Fetch,
            11,
            &fetch_request("poll", 0, 30_000, 1 << 20),
        )
        .await;
    let fetch = tokio::spawn(async move { consumer.recv::<FetchResponse>(11).await });
    let _: ProduceResponse = producer
        .call(
            ApiKey::Produce,
            7,
            &produce_request("poll", 0, 1, batch(5, &["late"])),
        )
        .await;
    let (got, resp) = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("fetch answered")
        .unwrap();
    assert_eq!(got, cid);
    let records = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(records[0].value.as_deref(), Some(&b"late"[..]));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered on arrival, not at max_wait"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await; // socket.request.max.bytes = 1 MiB
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversize", (2 * 1024 * 1024i32).to_be_bytes().to_vec()),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("unknown api key", {
            let mut f = RawClient::frame(ApiKey::ApiVersions, 0, 9, &ApiVersionsRequest::default())
                .to_vec();
            f[4..6].copy_from_slice(&500i16.to_be_bytes());
            f
        }),
        ("garbage body", {
            let mut f = vec![0, 0, 0, 12];
            f.extend_from_slice(&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f]);
            f
        }),
        ("truncated produce", {
            let f = RawClient::frame(
                ApiKey::Produce,
                7,
                3,
                &produce_request("x", 0, 1, batch(1, &["a"])),
            );
            let mut f = f[..f.len() - 10].to_vec();
            let len = (f.len() - 4) as i32;
            f[..4].copy_from_slice(&len.to_be_bytes());
            f
        }),
    ];
    for (name, bytes) in cases {
        let mut bad = RawClient::connect(broker.addr).await.unwrap();
        bad.send_raw(&bytes).await;
        assert!(
            bad.closed_within(Duration::from_secs(5)).await,
            "{name}: connection should be closed"
        );
        let mut good = RawClient::connect(broker.addr).await.unwrap();
        assert!(
            good.api_versions_ok().await,
            "{name}: broker must keep serving others"
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_api_versions_version_gets_v0_error_35() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    let mut frame =
        RawClient::frame(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default()).to_vec();
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    c.send_raw(&frame).await;
    let (cid, resp) = c.recv::<ApiVersionsResponse>(0).await;
    assert_eq!((cid, resp.error_code), (77, 35));
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16 && k.max_version >= 7));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batch_is_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "crc").await;
    let mut bad = batch(1, &["payload"]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let resp: ProduceResponse = c
        .call(ApiKey::Produce, 7, &produce_request("crc", 0, 1, bad))
        .await;
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            7,
            &produce_request("nope", 0, 1, batch(1, &["a"])),
        )
        .await;
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("crc", 0, 0, 1 << 20))
        .await;
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 0);
    let (_, metrics) = broker.http_get("/metrics").await;
    assert!(
        metrics.contains(r#"ironlog_errors_total{api="Produce",error="CORRUPT_MESSAGE"} 1"#),
        "{metrics}"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_data_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "durable").await;
    let _: ProduceResponse = c
        .call(
            ApiKey::Produce,
            7,
            &produce_request("durable", 0, -1, batch(1, &["p", "q"])),
        )
        .await;
    let (status, body) = broker.http_get("/health").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    broker.stop().await;
    assert!(
        dir.path().join(".clean-shutdown").exists(),
        "clean shutdown leaves the marker"
    );

    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("durable", 0, 0, 1 << 20))
        .await;
    let records = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap());
    let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, vec![b"p".to_vec(), b"q".to_vec()]);
    broker.stop().await;
}

/// An idempotent producer's batch: producer id, epoch and base sequence set, CRC updated.
fn idempotent_batch(producer_id: i64, sequence: i32, values: &[&str]) -> Vec<u8> {
    let mut b = batch(1, values);
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&sequence.to_be_bytes());
    ironlog_storage::batch::update_crc(&mut b);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_are_not_appended_twice_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "idem").await;
    let produce =
        |seq, values: &[&str]| produce_request("idem", 0, -1, idempotent_batch(42, seq, values));
    let base = |r: &ProduceResponse| {
        (
            r.responses[0].partition_responses[0].error_code,
            r.responses[0].partition_responses[0].base_offset,
        )
    };
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(0, &["a", "b"])).await;
    assert_eq!(base(&r), (0, 0));
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(2, &["c"])).await;
    assert_eq!(base(&r), (0, 2));
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(0, &["a", "b"])).await;
    assert_eq!(base(&r), (0, 0), "a retry gets the original offset");
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(7, &["gap"])).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, 45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    broker.stop().await;

    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(2, &["c"])).await;
    assert_eq!(
        base(&r),
        (0, 2),
        "the retry after a restart is recognised from the log"
    );
    let r: ProduceResponse = c.call(ApiKey::Produce, 7, &produce(3, &["d"])).await;
    assert_eq!(base(&r), (0, 3));
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 11, &fetch_request("idem", 0, 0, 1 << 20))
        .await;
    let values: Vec<_> = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap())
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    assert_eq!(values, vec!["a", "b", "c", "d"]);
    broker.stop().await;
}
