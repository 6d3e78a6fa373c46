//! The broker against hostile requests: every served API and version with its length and
//! count prefixes pushed to extremes, then a time-bounded structure-aware fuzzer (random
//! valid requests from the wire layouts, mutated; random record batches, mutated), while
//! checking the broker keeps serving.
//!
//! `IRONLOG_FUZZ_SECONDS` sets the fuzzer's duration (default 20) and `IRONLOG_FUZZ_SEED`
//! its seed (default: from the clock, printed, so a failure can be replayed).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{refused_frames, RawClient, TestBroker};
use ironlog_client::records::encode_batch;
use ironlog_client::{Compression, ProduceRecord};
use ironlog_protocol::kafka_protocol::messages::{ApiKey, RequestHeader};
use ironlog_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use ironlog_protocol::schema::gen::{generate, mutate, Encoded, Options, PrefixWidth, Rng};
use ironlog_protocol::schema::request_layout;
use ironlog_protocol::versions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request frame: size prefix, header for `api`/`version`, then `body` as given.
fn frame(api: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut inner = BytesMut::new();
    header
        .encode(&mut inner, api.request_header_version(version))
        .unwrap();
    inner.extend_from_slice(body);
    let mut out = Vec::with_capacity(inner.len() + 4);
    out.put_i32(inner.len() as i32);
    out.extend_from_slice(&inner);
    out
}

/// What the broker did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Answered,
    Closed,
    /// No answer in time (a long poll with a fuzzed wait, a huge acks=all timeout...).
    NoAnswer,
}

/// Sends one frame on `stream` and waits for the matching response or the close.
async fn exchange(stream: &mut TcpStream, bytes: &[u8], correlation_id: i32) -> Outcome {
    if stream.write_all(bytes).await.is_err() {
        return Outcome::Closed;
    }
    let read = async {
        let mut size = [0u8; 4];
        stream.read_exact(&mut size).await?;
        let size = i32::from_be_bytes(size);
        assert!(size >= 4, "response size {size}");
        let mut body = vec![0u8; size as usize];
        stream.read_exact(&mut body).await?;
        let got = i32::from_be_bytes(body[..4].try_into().unwrap());
        assert_eq!(got, correlation_id, "response for another request");
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok(())) => Outcome::Answered,
        Ok(Err(_)) => Outcome::Closed,
        Err(_) => Outcome::NoAnswer,
    }
}

async fn assert_serving(addr: SocketAddr, context: &str) {
    let mut c = RawClient::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("broker not accepting after {context}: {e}"));
    assert!(
        c.api_versions_ok().await,
        "broker not answering after {context}"
    );
}

fn with_prefix(message: &Encoded, at: usize, extreme: bool) -> Vec<u8> {
    let p = message.prefixes[at];
    let mut bytes = message.bytes.clone();
    match p.width {
        PrefixWidth::I16 => {
            bytes[p.offset..p.offset + 2].copy_from_slice(&i16::MAX.to_be_bytes());
        }
        PrefixWidth::I32 => {
            let v = if extreme { i32::MAX } else { -2 };
            bytes[p.offset..p.offset + 4].copy_from_slice(&v.to_be_bytes());
        }
        PrefixWidth::Varint(width) => {
            let v: &[u8] = if extreme {
                &[0xff, 0xff, 0xff, 0xff, 0x0f]
            } else {
                &[0xff, 0xff, 0xff, 0x7f]
            };
            bytes.splice(p.offset..p.offset + width, v.iter().copied());
        }
    }
    bytes
}

/// For every served API at its lowest, a middle and its highest version: a valid request
/// with each of its length and count prefixes in turn set to the largest value it can hold
/// (the 13-byte Metadata v4 request that aborted the broker is the first of these). Every
/// one must be refused by closing the connection, without an answer, and the broker must
/// keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_api_refuses_extreme_length_prefixes_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;

    // The report that started it: Metadata v4, topics array of 0x7fffffff elements.
    let mut s = TcpStream::connect(broker.addr).await.unwrap();
    let body = [0x7f, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(
        exchange(&mut s, &frame(ApiKey::Metadata, 4, 1, &body), 1).await,
        Outcome::Closed
    );
    assert_serving(broker.addr, "the Metadata v4 report").await;

    let mut cases = 0;
    let mut flexible = 0;
    for (api, range) in versions::all_supported() {
        let layout = request_layout(api).unwrap();
        let mid = (range.min + range.max) / 2;
        for version in [range.min, mid, range.max] {
            flexible += usize::from(version >= layout.flexible);
            // Arrays of one to two elements, so nested prefixes exist too.
            let mut rng = Rng::new(version as u64 + 7);
            let message = generate(
                layout,
                version,
                &mut rng,
                Options {
                    tagged: true,
                    max_elements: 2,
                },
            );
            for at in 0..message.prefixes.len().min(12) {
                for extreme in [true, false] {
                    let body = with_prefix(&message, at, extreme);
                    let mut s = TcpStream::connect(broker.addr).await.unwrap();
                    let outcome = exchange(&mut s, &frame(api, version, 9, &body), 9).await;
                    assert_eq!(
                        outcome,
                        Outcome::Closed,
                        "{api:?} v{version}, prefix {at} of {} set to {}: expected the connection to be closed",
                        message.prefixes.len(),
                        if extreme { "its maximum" } else { "a negative or too-large value" }
                    );
                    cases += 1;
                }
            }
            assert_serving(broker.addr, &format!("{api:?} v{version}")).await;
        }
    }
    real_client_round_trip(broker.addr, "after-prefixes").await;
    println!("{cases} hostile-prefix requests refused, {flexible} of the API versions flexible");
    assert!(cases > 300, "only {cases} cases");
    assert!(
        flexible > 20,
        "too few flexible versions covered: {flexible}"
    );

    let refused = refused_frames(&broker, "malformed").await;
    assert!(
        refused >= cases as f64,
        "refused-frames metric says {refused}, sent {cases}"
    );
    broker.stop().await;
}

/// A produce request for `topic` partition 0 carrying `records` as they are.
fn produce_body(version: i16, topic: &str, records: &[u8]) -> Vec<u8> {
    use ironlog_protocol::kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(StrBytes::from_string(topic.to_owned()).into())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::copy_from_slice(records)))])]);
    let mut out = BytesMut::new();
    request.encode(&mut out, version).unwrap();
    out.to_vec()
}

/// A valid batch of 1..20 random records (keys, values, headers) in a random codec.
fn random_batch(rng: &mut Rng) -> Vec<u8> {
    let records: Vec<ProduceRecord> = (0..1 + rng.below(20))
        .map(|i| ProduceRecord {
            key: rng
                .chance(2)
                .then(|| Bytes::from(format!("k{}", rng.below(50)))),
            value: Some(Bytes::from(vec![b'v'; rng.below(200) as usize])),
            headers: (0..rng.below(3))
                .map(|h| (format!("h{h}"), Some(Bytes::from_static(b"x"))))
                .collect(),
            timestamp: Some(1_700_000_000_000 + i as i64),
        })
        .collect();
    let codec = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][rng.below(5) as usize];
    encode_batch(&records, codec, 1_700_000_000_000)
        .unwrap()
        .to_vec()
}

/// Damages a batch: record count or a length inside the records pushed to extremes, bytes
/// flipped or cut; the CRC is fixed up half the time so the damage reaches record parsing.
fn mutate_batch(mut batch: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => {
            let v = [i32::MAX, i32::MIN, -1, 0x7fff_fff0][rng.below(4) as usize];
            batch[57..61].copy_from_slice(&v.to_be_bytes());
        }
        1 if batch.len() > 61 => {
            let i = 61 + rng.below((batch.len() - 61) as u64) as usize;
            batch[i] = [0xff, 0x7f, 0x80, 0x00][rng.below(4) as usize];
        }
        2 => {
            let cut = 12 + rng.below(batch.len() as u64 - 12) as usize;
            batch.truncate(cut);
        }
        _ => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(batch.len() as u64) as usize;
                batch[i] = rng.below(256) as u8;
            }
        }
    }
    if batch.len() >= 61 && rng.chance(2) {
        let len = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    batch
}

/// Random requests for a bounded time: valid ones from the layouts of every served API and
/// version, mutated (prefixes to extremes, truncation, flipped and inserted bytes), and
/// Produce requests carrying damaged record batches. The broker must answer or close every
/// time, never abort, and serve a real produce/fetch round trip at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_hostile_requests_for_a_bounded_time_never_take_the_broker_down() {
    let seconds: u64 = std::env::var("IRONLOG_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("IRONLOG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("fuzzing for {seconds} s with IRONLOG_FUZZ_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let apis = versions::all_supported();
    let mut rng = Rng::new(seed);
    let mut outcomes: BTreeMap<(String, Outcome), u64> = BTreeMap::new();
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut cid = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        cid += 1;
        let (label, request) = if rng.chance(4) {
            let batch = mutate_batch(random_batch(&mut rng), &mut rng);
            let version = 3 + rng.below(9) as i16;
            let topic = format!("fuzz-{}", rng.below(3));
            (
                "Produce(batch)".to_string(),
                frame(
                    ApiKey::Produce,
                    version,
                    cid,
                    &produce_body(version, &topic, &batch),
                ),
            )
        } else {
            let (api, range) = apis[rng.below(apis.len() as u64) as usize];
            let version = range.min + rng.below((range.max - range.min + 1) as u64) as i16;
            let layout = request_layout(api).unwrap();
            let tagged = rng.chance(2);
            let message = generate(
                layout,
                version,
                &mut rng,
                Options {
                    tagged,
                    max_elements: 3,
                },
            );
            let body = if rng.chance(5) {
                message.bytes.clone()
            } else {
                mutate(&message, &mut rng)
            };
            (format!("{api:?}"), frame(api, version, cid, &body))
        };
        let outcome = exchange(&mut stream, &request, cid).await;
        *outcomes.entry((label, outcome)).or_default() += 1;
        sent += 1;
        if outcome != Outcome::Answered {
            stream = TcpStream::connect(broker.addr).await.unwrap_or_else(|e| {
                panic!("broker stopped accepting after request {sent} (seed {seed}): {e}")
            });
        }
        if sent.is_multiple_of(500) {
            assert_serving(
                broker.addr,
                &format!("{sent} fuzzed requests (seed {seed})"),
            )
            .await;
        }
    }
    assert_serving(broker.addr, "the fuzz run").await;
    println!(
        "{sent} requests in {:.1} s:",
        started.elapsed().as_secs_f64()
    );
    for ((label, outcome), n) in &outcomes {
        println!("  {label:<24} {outcome:?}: {n}");
    }
    assert!(sent > 200, "only {sent} requests sent");
    let answered: u64 = outcomes
        .iter()
        .filter(|((_, o), _)| *o == Outcome::Answered)
        .map(|(_, n)| n)
        .sum();
    let closed: u64 = outcomes
        .iter()
        .filter(|((_, o), _)| *o == Outcome::Closed)
        .map(|(_, n)| n)
        .sum();
    assert!(
        answered > sent / 10 && closed > sent / 10,
        "answered {answered}, closed {closed} of {sent}"
    );

    real_client_round_trip(broker.addr, "after-fuzz").await;
    broker.stop().await;
}

/// A real client (the `ironlog-client` library the toolbox uses) creates `topic`, produces
/// ten lz4-compressed records with acks=all and reads exactly them back.
async fn real_client_round_trip(addr: SocketAddr, topic: &str) {
    let client = ironlog_client::Client::bootstrap(&addr.to_string())
        .await
        .unwrap();
    let records: Vec<ProduceRecord> = (0..10)
        .map(|i| ProduceRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: vec![],
            timestamp: None,
        })
        .collect();
    let created = client
        .create_topics(
            &[ironlog_client::NewTopic {
                name: topic.into(),
                num_partitions: 1,
                replication_factor: 1,
                configs: Default::default(),
            }],
            false,
        )
        .await
        .unwrap();
    assert!(created.iter().all(|(_, r)| r.is_ok()), "{created:?}");
    let base = client
        .produce(
            topic,
            0,
            &records,
            ironlog_client::Acks::All,
            Compression::Lz4,
        )
        .await
        .unwrap();
    assert_eq!(base, 0);
    let read = client.fetch(topic, 0, 0, 1000, 1 << 20).await.unwrap();
    let values: Vec<_> = read.iter().map(|r| r.value.clone().unwrap()).collect();
    let expected: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, expected);
}

/// Found while fuzzing CreateTopics/CreatePartitions: a well-formed request asking for
/// 2^31-1 partitions made the broker start creating that many logs. One request may now
/// add at most 10,000 partitions; beyond, POLICY_VIOLATION and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_billions_of_partitions_is_a_policy_violation() {
    const POLICY_VIOLATION: i16 = 44;
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let client = ironlog_client::Client::bootstrap(&broker.addr.to_string())
        .await
        .unwrap();
    let huge = ironlog_client::NewTopic {
        name: "huge".into(),
        num_partitions: i32::MAX,
        replication_factor: 1,
        configs: Default::default(),
    };
    let result = client.create_topics(&[huge], false).await.unwrap();
    match &result[0].1 {
        Err(ironlog_client::ClientError::Kafka { code, message, .. }) => {
            assert_eq!(*code, POLICY_VIOLATION);
            assert!(
                message.as_deref().unwrap_or("").contains("10000 allowed"),
                "{message:?}"
            );
        }
        other => panic!("expected POLICY_VIOLATION, got {other:?}"),
    }
    real_client_round_trip(broker.addr, "small").await;
    match client.create_partitions("small", i32::MAX).await {
        Err(ironlog_client::ClientError::Kafka { code, .. }) => assert_eq!(code, POLICY_VIOLATION),
        other => panic!("expected POLICY_VIOLATION, got {other:?}"),
    }
    let meta = client.metadata(Some(&["small".to_string()])).await.unwrap();
    assert_eq!(meta.topics[0].partitions.len(), 1);
    assert!(!dir.path().join("huge-0").exists());
    broker.stop().await;
}
