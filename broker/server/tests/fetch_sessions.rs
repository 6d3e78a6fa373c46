//! Fetch sessions (KIP-227) over real sockets: raw Fetch requests by topic name (v12) and by
//! topic id (v13), through a session's life: opened by a full fetch, incremental fetches
//! answering only what is new, forgotten topics, refused epochs and ids, closing.

mod common;

use common::{create_topic, metric_of, produce_request, topic_name, RawClient, TestBroker};
use ironlog_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic,
};
use ironlog_protocol::kafka_protocol::messages::*;
use ironlog_protocol::ResponseError;
use ironlog_storage::batch::testing::{build_batch, decode_records};

const FETCH_SESSION_ID_NOT_FOUND: i16 = ResponseError::FetchSessionIdNotFound.code();
const INVALID_FETCH_SESSION_EPOCH: i16 = ResponseError::InvalidFetchSessionEpoch.code();

/// How a test names topics: by name below v13, by id from v13.
#[derive(Clone, Copy)]
struct Topic {
    name: &'static str,
    id: uuid::Uuid,
}

fn fetch_topic(version: i16, topic: Topic, partitions: &[(i32, i64)]) -> FetchTopic {
    let mut t = FetchTopic::default().with_partitions(
        partitions
            .iter()
            .map(|&(p, offset)| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect(),
    );
    if version >= 13 {
        t.topic_id = topic.id;
    } else {
        t.topic = topic_name(topic.name);
    }
    t
}

fn forgotten(version: i16, topic: Topic, partitions: &[i32]) -> ForgottenTopic {
    let mut t = ForgottenTopic::default().with_partitions(partitions.to_vec());
    if version >= 13 {
        t.topic_id = topic.id;
    } else {
        t.topic = topic_name(topic.name);
    }
    t
}

fn session_fetch(
    session_id: i32,
    epoch: i32,
    topics: Vec<FetchTopic>,
    forget: Vec<ForgottenTopic>,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forget)
}

/// The response's partitions as (topic name, partition, record values), in order.
fn answered(
    version: i16,
    topics: &[Topic],
    resp: &FetchResponse,
) -> Vec<(&'static str, i32, Vec<String>)> {
    let mut out = Vec::new();
    for t in &resp.responses {
        let name = topics
            .iter()
            .find(|topic| {
                if version >= 13 {
                    topic.id == t.topic_id
                } else {
                    topic.name == t.topic.0.as_str()
                }
            })
            .expect("a topic of the request")
            .name;
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "{name}-{}", p.partition_index);
            let values = decode_records(p.records.as_deref().unwrap_or_default())
                .into_iter()
                .map(|r| {
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            out.push((name, p.partition_index, values));
        }
    }
    out
}

async fn produce(client: &mut RawClient, topic: &str, partition: i32, value: &str) {
    let records = build_batch(0, 1_000, &[(None, Some(value.as_bytes()))]);
    let resp: ProduceResponse = client
        .call(
            ApiKey::Produce,
            7,
            &produce_request(topic, partition, 1, records),
        )
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

/// Creates the topics (3 partitions each); their ids.
async fn create(client: &mut RawClient, names: [&'static str; 2]) -> [Topic; 2] {
    for name in names {
        create_topic(client, name).await;
    }
    let resp: MetadataResponse = client
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(
                names
                    .iter()
                    .map(|n| {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(topic_name(n)))
                    })
                    .collect(),
            )),
        )
        .await;
    names.map(|name| {
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .expect("created");
        assert_eq!(t.partitions.len(), 3);
        Topic {
            name,
            id: t.topic_id,
        }
    })
}

async fn session_life(version: i16) {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(dir.path(), |c| c.default_partitions = 3).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    let [a, b] = create(&mut c, ["a", "b"]).await;
    let topics = [a, b];
    produce(&mut c, "a", 0, "first").await;

    // Epoch 0 opens a session and answers every partition.
    let full: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &session_fetch(
                0,
                0,
                vec![
                    fetch_topic(version, a, &[(0, 0), (1, 0), (2, 0)]),
                    fetch_topic(version, b, &[(0, 0)]),
                ],
                vec![],
            ),
        )
        .await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert_ne!(id, 0, "a session was opened");
    assert_eq!(
        answered(version, &topics, &full),
        vec![
            ("a", 0, vec!["first".to_string()]),
            ("a", 1, vec![]),
            ("a", 2, vec![]),
            ("b", 0, vec![]),
        ]
    );
    let sessions = r#"ironlog_incremental_fetch_sessions"#;
    assert_eq!(metric_of(&broker, sessions).await, 1.0);
    assert_eq!(
        metric_of(&broker, "ironlog_incremental_fetch_partitions_cached").await,
        4.0
    );

    // Epoch 1 moves a-0 past its record: nothing is new.
    let fetch = |epoch, topics, forget| session_fetch(id, epoch, topics, forget);
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &fetch(1, vec![fetch_topic(version, a, &[(0, 1)])], vec![]),
        )
        .await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    assert_eq!(answered(version, &topics, &resp), vec![]);

    // A record on a-2: only a-2 is answered.
    produce(&mut c, "a", 2, "second").await;
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, version, &fetch(2, vec![], vec![]))
        .await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    assert_eq!(
        answered(version, &topics, &resp),
        vec![("a", 2, vec!["second".to_string()])]
    );

    // Epoch 3 moves a-2 on and forgets b: a record on b-0 is then not answered.
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &fetch(
                3,
                vec![fetch_topic(version, a, &[(2, 1)])],
                vec![forgotten(version, b, &[0])],
            ),
        )
        .await;
    assert_eq!(answered(version, &topics, &resp), vec![]);
    assert_eq!(
        metric_of(&broker, "ironlog_incremental_fetch_partitions_cached").await,
        3.0
    );
    produce(&mut c, "b", 0, "unseen").await;
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, version, &fetch(4, vec![], vec![]))
        .await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    assert_eq!(answered(version, &topics, &resp), vec![]);

    // A wrong epoch is refused and leaves the session as it was.
    for epoch in [4, 6] {
        let resp: FetchResponse = c
            .call(ApiKey::Fetch, version, &fetch(epoch, vec![], vec![]))
            .await;
        assert_eq!(
            resp.error_code, INVALID_FETCH_SESSION_EPOCH,
            "epoch {epoch}"
        );
        assert_eq!(resp.session_id, 0);
        assert!(resp.responses.is_empty());
    }
    // An unknown session id is refused.
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &session_fetch(id.wrapping_add(1), 5, vec![], vec![]),
        )
        .await;
    assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND);
    assert!(resp.responses.is_empty());

    // Re-adding b-0 answers it at once.
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &fetch(5, vec![fetch_topic(version, b, &[(0, 0)])], vec![]),
        )
        .await;
    assert_eq!(
        answered(version, &topics, &resp),
        vec![("b", 0, vec!["unseen".to_string()])]
    );
    let served = metric_of(&broker, "ironlog_incremental_fetches_total").await;
    assert_eq!(served, 5.0, "epochs 1 to 5 were served");
    let refused = metric_of(
        &broker,
        r#"ironlog_errors_total{api="Fetch",error="INVALID_FETCH_SESSION_EPOCH"}"#,
    )
    .await;
    assert_eq!(refused, 2.0);

    // Epoch -1 closes the session and is answered as a sessionless full fetch.
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &fetch(-1, vec![fetch_topic(version, a, &[(0, 0)])], vec![]),
        )
        .await;
    assert_eq!((resp.error_code, resp.session_id), (0, 0));
    assert_eq!(
        answered(version, &topics, &resp),
        vec![("a", 0, vec!["first".to_string()])]
    );
    assert_eq!(metric_of(&broker, sessions).await, 0.0);
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, version, &fetch(6, vec![], vec![]))
        .await;
    assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_by_topic_name_v12() {
    session_life(12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_by_topic_id_v13() {
    session_life(13).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_only_the_partition_that_got_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(dir.path(), |c| c.default_partitions = 3).await;
    let mut consumer = RawClient::connect(broker.addr).await.unwrap();
    let mut producer = RawClient::connect(broker.addr).await.unwrap();
    let [a, _] = create(&mut consumer, ["a", "b"]).await;
    let full: FetchResponse = consumer
        .call(
            ApiKey::Fetch,
            12,
            &session_fetch(
                0,
                0,
                vec![fetch_topic(12, a, &[(0, 0), (1, 0), (2, 0)])],
                vec![],
            ),
        )
        .await;
    let id = full.session_id;
    assert_ne!(id, 0);
    // An incremental fetch waiting up to 30 s is answered when a-1 gets a record, with a-1.
    let request = session_fetch(id, 1, vec![], vec![]).with_max_wait_ms(30_000);
    let cid = consumer.send(ApiKey::Fetch, 12, &request).await;
    let waiting = tokio::spawn(async move { consumer.recv::<FetchResponse>(12).await });
    produce(&mut producer, "a", 1, "late").await;
    let (got, resp) = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("answered when the record came")
        .unwrap();
    assert_eq!(got, cid);
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    assert_eq!(
        answered(12, &[a], &resp),
        vec![("a", 1, vec!["late".to_string()])]
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sessions_when_the_cache_has_no_slots() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(dir.path(), |c| c.fetch_session_cache_slots = 0).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "t").await;
    produce(&mut c, "t", 0, "x").await;
    let t = Topic {
        name: "t",
        id: uuid::Uuid::nil(),
    };
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &session_fetch(0, 0, vec![fetch_topic(12, t, &[(0, 0)])], vec![]),
        )
        .await;
    assert_eq!((resp.error_code, resp.session_id), (0, 0));
    assert_eq!(
        answered(12, &[t], &resp),
        vec![("t", 0, vec!["x".to_string()])]
    );
    broker.stop().await;
}

/// A partition answered with an error still has a record set, an empty one, as Kafka sends
/// it: librdkafka takes a null record set for a corrupt response and never reads the error.
#[tokio::test]
async fn errors_come_with_empty_records_not_null() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path()).await;
    let mut c = RawClient::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "t").await;
    produce(&mut c, "t", 0, "x").await;
    for version in [12i16, 16] {
        let t = Topic {
            name: "t",
            // An id no topic has (v13+), so that partition is UNKNOWN_TOPIC_ID.
            id: uuid::Uuid::from_u128(7),
        };
        // Offset 5 is past the log end (1): OFFSET_OUT_OF_RANGE for the topic by name.
        let resp: FetchResponse = c
            .call(
                ApiKey::Fetch,
                version,
                &session_fetch(0, -1, vec![fetch_topic(version, t, &[(0, 5)])], vec![]),
            )
            .await;
        let p = &resp.responses[0].partitions[0];
        let expected = if version >= 13 {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::OffsetOutOfRange.code()
        };
        assert_eq!(p.error_code, expected, "v{version}");
        assert_eq!(p.records.as_deref(), Some(&b""[..]), "v{version}");
    }
    broker.stop().await;
}
