//! The client against a hostile or broken broker (issue 8): forged counts and lengths,
//! forged size prefixes, truncated and garbage responses, wrong correlation ids, silence,
//! and a few hundred structure-aware mutations of valid responses. Every one must come back
//! as a `ClientError` — no panic, no abort, no memory growth, no hang past the request
//! timeout.
//!
//! The broker is `support/fake_broker.rs`, a scripted TCP listener on 127.0.0.1:0: it
//! answers ApiVersions and Metadata properly (so a session gets as far as the request under
//! test) and the request under test with the hostile bytes.
//!
//! The `ironlog` binary's behaviour against the same kind of broker is checked by
//! `e2e/clients/tests/test_hostile_broker.py`.

mod support {
    pub mod fake_broker;
}

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ironlog_client::{
    Acks, Client, ClientConfig, ClientError, Compression, GroupMembership, NewTopic, OffsetSpec,
    ProduceRecord,
};
use ironlog_wire::schema;
use ironlog_wire::schema::gen::{generate, mutate, Options, PrefixWidth, Rng};
use kafka_protocol::messages::{ApiKey, ListGroupsResponse, ListPartitionReassignmentsResponse};
use support::fake_broker::{
    encode, frame, header, raw_with_size, FakeBroker, Healthy, Reply, Request,
};

/// The size prefix the client accepts at most (`connection::MAX_RESPONSE_BYTES`).
const MAX_RESPONSE_BYTES: i32 = 256 * 1024 * 1024;

/// Short, so the cases where the broker goes silent finish quickly; a local fake answers
/// everything else in microseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// How much the process may grow while the hostile cases run.
const MEMORY_SLACK_KIB: u64 = 64 * 1024;

/// Resident size is per process, so the tests that measure it run one at a time: a failing
/// test (whose panic symbolizes a backtrace, tens of MiB) must not fail the others' bound.
static MEMORY_MEASURED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new(bootstrap).expect("valid bootstrap");
    config.client_id = "hostile-broker-test".to_owned();
    config.request_timeout = REQUEST_TIMEOUT;
    config.retries = 1;
    config.retry_backoff = Duration::from_millis(1);
    config
}

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Remembers the resident size at the start of a test and checks, at the end, that neither
/// the current nor the peak resident size grew by more than [`MEMORY_SLACK_KIB`].
struct MemoryBound {
    rss_before: u64,
    peak_before: u64,
}

impl MemoryBound {
    fn start() -> MemoryBound {
        MemoryBound {
            rss_before: status_kib("VmRSS"),
            peak_before: status_kib("VmHWM"),
        }
    }

    fn check(&self, what: &str) {
        let rss = status_kib("VmRSS");
        let peak = status_kib("VmHWM");
        assert!(
            rss <= self.rss_before + MEMORY_SLACK_KIB,
            "{what}: resident size grew from {} KiB to {rss} KiB",
            self.rss_before
        );
        assert!(
            peak <= self.peak_before.max(self.rss_before) + MEMORY_SLACK_KIB,
            "{what}: peak resident size grew from {} KiB to {peak} KiB",
            self.peak_before
        );
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One hostile answer to the bootstrap ApiVersions or Metadata request.
struct Case {
    name: &'static str,
    /// The API answered with `reply`; the other one is answered properly.
    api: ApiKey,
    /// Force this Metadata version (to get the non-flexible encoding), else the client's
    /// highest.
    metadata_version: Option<i16>,
    reply: fn(&Request, &Healthy) -> Reply,
    /// A part of the error message that shows the client saw this particular problem.
    expect: &'static str,
}

fn bootstrap_cases() -> Vec<Case> {
    vec![
        Case {
            name: "array count 0x7fffffff (Metadata v8 brokers)",
            api: ApiKey::Metadata,
            // The last version before compact encodings (the client needs v4 or later).
            metadata_version: Some(8),
            reply: |r, _| {
                let mut body = 0i32.to_be_bytes().to_vec(); // throttle_time_ms
                body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
                Reply::Frame(frame(r, &body))
            },
            expect: "2147483647 elements of at least",
        },
        Case {
            name: "compact array count u32::MAX (Metadata brokers)",
            api: ApiKey::Metadata,
            metadata_version: Some(12),
            reply: |r, _| {
                let mut body = 0i32.to_be_bytes().to_vec(); // throttle_time_ms
                put_uvarint(&mut body, u32::MAX);
                Reply::Frame(frame(r, &body))
            },
            expect: "4294967294 elements of at least",
        },
        Case {
            name: "compact string length u32::MAX (Metadata broker host)",
            api: ApiKey::Metadata,
            metadata_version: Some(12),
            reply: |r, _| {
                let mut body = 0i32.to_be_bytes().to_vec(); // throttle_time_ms
                put_uvarint(&mut body, 2); // one broker
                body.extend_from_slice(&0i32.to_be_bytes()); // node_id
                put_uvarint(&mut body, u32::MAX); // host: u32::MAX - 1 bytes
                body.extend_from_slice(b"abc");
                Reply::Frame(frame(r, &body))
            },
            expect: "needs 4294967294 more bytes",
        },
        Case {
            name: "truncated body",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |r, h| {
                let body = encode(r, &h.metadata());
                Reply::Frame(frame(r, &body[..body.len() / 2]))
            },
            // Refused by the length check (a count or a length that no longer fits).
            expect: "MetadataResponse v",
        },
        Case {
            name: "wrong correlation id",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |r, h| {
                let mut out = header(r, r.correlation_id.wrapping_add(1000));
                out.extend_from_slice(&encode(r, &h.metadata()));
                Reply::Frame(out)
            },
            expect: "does not match request",
        },
        Case {
            name: "size prefix of 256 MiB, then silence",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenHang(raw_with_size(MAX_RESPONSE_BYTES, &[])),
            expect: "timed out",
        },
        Case {
            name: "size prefix of 256 MiB, a few bytes, then close",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenClose(raw_with_size(MAX_RESPONSE_BYTES, &[0; 10])),
            expect: "connection closed after 10 of 268435456 response body bytes",
        },
        Case {
            name: "size prefix one above the limit",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenHang(raw_with_size(MAX_RESPONSE_BYTES + 1, &[])),
            expect: "implausible response size 268435457",
        },
        Case {
            name: "negative size prefix",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenHang(raw_with_size(-1, &[])),
            expect: "implausible response size -1",
        },
        Case {
            name: "size prefix i32::MIN",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenHang(raw_with_size(i32::MIN, &[])),
            expect: "implausible response size -2147483648",
        },
        Case {
            name: "an HTTP server on the Kafka port",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenClose(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            // "HTTP" read as a big-endian i32.
            expect: "implausible response size 1213486160",
        },
        Case {
            name: "garbage frame",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| {
                let mut rng = Rng::new(8);
                Reply::Frame((0..300).map(|_| rng.below(256) as u8).collect())
            },
            expect: "Metadata v",
        },
        Case {
            name: "empty frame",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::Frame(Vec::new()),
            expect: "response header",
        },
        Case {
            name: "connection closed without an answer",
            api: ApiKey::Metadata,
            metadata_version: None,
            reply: |_, _| Reply::RawThenClose(Vec::new()),
            expect: "during Metadata",
        },
        Case {
            name: "ApiVersions with compact array count u32::MAX",
            api: ApiKey::ApiVersions,
            metadata_version: None,
            reply: |r, _| {
                let mut body = 0i16.to_be_bytes().to_vec(); // error_code
                put_uvarint(&mut body, u32::MAX);
                Reply::Frame(frame(r, &body))
            },
            expect: "4294967294 elements of at least",
        },
        Case {
            name: "ApiVersions with a 256 MiB size prefix, then silence",
            api: ApiKey::ApiVersions,
            metadata_version: None,
            reply: |_, _| Reply::RawThenHang(raw_with_size(MAX_RESPONSE_BYTES, &[])),
            expect: "ApiVersions request to broker",
        },
    ]
}

/// Every hostile answer to the first requests of a session fails `Client::connect` with an
/// error naming the problem, within the request timeout.
#[tokio::test]
async fn hostile_bootstrap_responses_are_errors() {
    let _serial = MEMORY_MEASURED.lock().await;
    let memory = MemoryBound::start();
    for case in bootstrap_cases() {
        let Case {
            name,
            api,
            metadata_version,
            reply,
            expect,
        } = case;
        let fake = FakeBroker::start_with(move |addr| {
            let mut healthy = Healthy::new(addr);
            if let Some(v) = metadata_version {
                healthy = healthy.with_version(ApiKey::Metadata, v);
            }
            move |r: &Request| {
                if r.is(api) {
                    reply(r, &healthy)
                } else {
                    healthy.reply_or_close(r)
                }
            }
        })
        .await;
        let started = Instant::now();
        let result = Client::connect(config(&fake.address())).await;
        let elapsed = started.elapsed();
        let err = match result {
            Ok(_) => panic!("{name}: the client accepted the response"),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(
            message.contains(expect),
            "{name}: error {message:?} does not mention {expect:?}"
        );
        assert!(
            fake.count(api) >= 1,
            "{name}: the client never sent {api:?}: {:?}",
            fake.received()
        );
        if let Some(v) = metadata_version {
            assert!(
                fake.received()
                    .iter()
                    .any(|r| r.is(ApiKey::Metadata) && r.api_version == v),
                "{name}: Metadata v{v} not used"
            );
        }
        assert!(
            elapsed < REQUEST_TIMEOUT * 3,
            "{name}: took {elapsed:?} to fail"
        );
        memory.check(name);
    }
}

/// A well-behaved fake gets a client through connect and Metadata: the control for the
/// hostile cases (their errors come from the hostility, not from a broken fake).
#[tokio::test]
async fn healthy_fake_broker_is_usable() {
    let fake = FakeBroker::start_with(|addr| {
        let healthy = Healthy::new(addr);
        move |r: &Request| {
            if r.is(ApiKey::ListGroups) {
                Reply::Frame(frame(r, &encode(r, &ListGroupsResponse::default())))
            } else if r.is(ApiKey::ListPartitionReassignments) {
                Reply::Frame(frame(
                    r,
                    &encode(r, &ListPartitionReassignmentsResponse::default()),
                ))
            } else {
                healthy.reply_or_close(r)
            }
        }
    })
    .await;
    let client = Client::connect(config(&fake.address()))
        .await
        .expect("connect to the healthy fake");
    let metadata = client.metadata(None).await.expect("metadata");
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].address(), fake.address());
    assert_eq!(metadata.controller_id, Some(0));
    let topic = metadata.topic("t").expect("topic t listed");
    assert_eq!(topic.partitions.len(), 1);
    assert_eq!(topic.partitions[0].leader, Some(0));
    assert!(client.list_groups().await.expect("list groups").is_empty());
    assert!(client
        .list_partition_reassignments()
        .await
        .expect("list reassignments")
        .is_empty());
    assert_eq!(
        client
            .find_group_coordinator("g")
            .await
            .expect("coordinator"),
        0
    );
}

/// A request whose future is dropped before its response arrived (a caller's `select!`
/// or timeout) leaves its connection mid-request; the next request must use a fresh
/// connection instead of waiting for, or reading, the abandoned response.
#[tokio::test]
async fn a_request_dropped_mid_way_does_not_poison_the_connection() {
    let fake = FakeBroker::start_with(|addr| {
        let healthy = Healthy::new(addr);
        move |r: &Request| {
            if r.is(ApiKey::ListGroups) && r.nth == 0 {
                Reply::RawThenHang(Vec::new())
            } else if r.is(ApiKey::ListGroups) {
                Reply::Frame(frame(r, &encode(r, &ListGroupsResponse::default())))
            } else {
                healthy.reply_or_close(r)
            }
        }
    })
    .await;
    let client = Client::connect(config(&fake.address()))
        .await
        .expect("connect to the fake");
    let abandoned = tokio::time::timeout(Duration::from_millis(100), client.list_groups()).await;
    assert!(abandoned.is_err(), "the unanswered request returned");
    let started = Instant::now();
    let groups = client
        .list_groups()
        .await
        .expect("the next request is answered");
    assert!(groups.is_empty());
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "took {:?}: the abandoned connection was reused",
        started.elapsed()
    );
    assert_eq!(fake.count(ApiKey::ListGroups), 2);
}

/// The client calls reached through a healthy connect, by the API they end in.
const LATER_APIS: &[ApiKey] = &[
    ApiKey::Metadata,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::OffsetFetch,
    ApiKey::OffsetCommit,
    ApiKey::DeleteGroups,
    ApiKey::FindCoordinator,
    ApiKey::DescribeConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::DescribeQuorum,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::ListPartitionReassignments,
    ApiKey::AlterPartitionReassignments,
    ApiKey::DeleteRecords,
    ApiKey::ListOffsets,
    ApiKey::Fetch,
    ApiKey::Produce,
];

/// A member of group `g` whose coordinator is the fake (broker 0).
fn joined_member() -> GroupMembership {
    let mut member = GroupMembership::new("g", &["t".to_owned()], Duration::from_secs(6));
    member.member_id = "m-1".to_owned();
    member.generation_id = 1;
    member.coordinator = 0;
    member.assignment = vec![("t".to_owned(), 0)];
    member
}

/// Runs the public client call that sends `api` (after whatever it needs first).
async fn call(client: &Client, api: ApiKey) -> Result<(), ClientError> {
    let one_partition = BTreeMap::from([(0, 5i64)]);
    match api {
        ApiKey::Metadata => client.metadata(None).await.map(drop),
        ApiKey::ListGroups => client.list_groups().await.map(drop),
        ApiKey::DescribeGroups => client.describe_group("g").await.map(drop),
        ApiKey::OffsetFetch => client.committed_offsets("g").await.map(drop),
        ApiKey::OffsetCommit => {
            let offsets = BTreeMap::from([(("t".to_owned(), 0), 5i64)]);
            client.commit_group_offsets("g", &offsets).await
        }
        ApiKey::DeleteGroups => client.delete_group("g").await,
        ApiKey::FindCoordinator => client.find_group_coordinator("g").await.map(drop),
        ApiKey::DescribeConfigs => client.describe_configs("t").await.map(drop),
        ApiKey::IncrementalAlterConfigs => {
            let set = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
            client.incremental_alter_configs("t", &set, &[]).await
        }
        ApiKey::CreateTopics => {
            let topic = NewTopic {
                name: "u".to_owned(),
                num_partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
            };
            client.create_topic(&topic, false).await
        }
        ApiKey::DeleteTopics => client.delete_topic("t").await,
        ApiKey::CreatePartitions => client.create_partitions("t", 2).await,
        ApiKey::DescribeCluster => client.describe_cluster().await.map(drop),
        ApiKey::DescribeQuorum => client.describe_quorum().await.map(drop),
        ApiKey::JoinGroup => {
            let mut member = GroupMembership::new("g", &["t".to_owned()], Duration::from_secs(6));
            member.rebalance_timeout = Duration::from_millis(100);
            client.join_group(&mut member).await
        }
        ApiKey::Heartbeat => client.heartbeat(&joined_member()).await,
        ApiKey::LeaveGroup => client.leave_group(&joined_member()).await,
        ApiKey::ListPartitionReassignments => client.list_partition_reassignments().await.map(drop),
        ApiKey::AlterPartitionReassignments => {
            let moves = BTreeMap::from([(0, Some(vec![0]))]);
            client
                .alter_partition_reassignments("t", &moves)
                .await
                .map(drop)
        }
        ApiKey::DeleteRecords => client.delete_records("t", &one_partition).await.map(drop),
        ApiKey::ListOffsets => client
            .list_offsets("t", 0, OffsetSpec::Latest)
            .await
            .map(drop),
        ApiKey::Fetch => client.fetch("t", 0, 0, 10, 1 << 20).await.map(drop),
        ApiKey::Produce => {
            let records = [ProduceRecord::value(&b"v"[..])];
            client
                .produce("t", 0, &records, Acks::All, Compression::None)
                .await
                .map(drop)
        }
        other => panic!("no client call for {other:?}"),
    }
}

/// A valid random response of `api` at the request's version, from the wire layout.
fn valid_response(api: ApiKey, request: &Request, rng: &mut Rng) -> schema::gen::Encoded {
    let layout = schema::response_layout(api).unwrap_or_else(|| panic!("no layout for {api:?}"));
    generate(layout, request.api_version, rng, Options::default())
}

/// `encoded` with its first length or count prefix set to the largest value it can hold.
fn forge_first_prefix(encoded: &schema::gen::Encoded) -> Vec<u8> {
    let mut bytes = encoded.bytes.clone();
    let prefix = encoded.prefixes[0];
    match prefix.width {
        PrefixWidth::I16 => {
            bytes[prefix.offset..prefix.offset + 2].copy_from_slice(&i16::MAX.to_be_bytes())
        }
        PrefixWidth::I32 => {
            bytes[prefix.offset..prefix.offset + 4].copy_from_slice(&i32::MAX.to_be_bytes())
        }
        PrefixWidth::Varint(width) => {
            let mut forged = Vec::new();
            put_uvarint(&mut forged, u32::MAX);
            bytes.splice(prefix.offset..prefix.offset + width, forged);
        }
    }
    bytes
}

/// The hostile answers used for every API after a healthy connect.
#[derive(Debug, Clone, Copy)]
enum Hostility {
    ForgedCount,
    Truncated,
    WrongCorrelationId,
    HugeSizeThenClose,
    NegativeSize,
    Garbage,
}

impl Hostility {
    const ALL: [Hostility; 6] = [
        Hostility::ForgedCount,
        Hostility::Truncated,
        Hostility::WrongCorrelationId,
        Hostility::HugeSizeThenClose,
        Hostility::NegativeSize,
        Hostility::Garbage,
    ];

    fn reply(self, api: ApiKey, r: &Request) -> Reply {
        let mut rng = Rng::new(r.nth as u64 + 1);
        match self {
            Hostility::ForgedCount => Reply::Frame(frame(
                r,
                &forge_first_prefix(&valid_response(api, r, &mut rng)),
            )),
            Hostility::Truncated => {
                let body = valid_response(api, r, &mut rng).bytes;
                Reply::Frame(frame(r, &body[..body.len() - 1]))
            }
            Hostility::WrongCorrelationId => {
                let mut out = header(r, r.correlation_id ^ 0x5555);
                out.extend_from_slice(&valid_response(api, r, &mut rng).bytes);
                Reply::Frame(out)
            }
            Hostility::HugeSizeThenClose => {
                Reply::RawThenClose(raw_with_size(MAX_RESPONSE_BYTES, b"partial"))
            }
            Hostility::NegativeSize => Reply::RawThenClose(raw_with_size(-7, &[])),
            Hostility::Garbage => Reply::Frame((0..64).map(|_| rng.below(256) as u8).collect()),
        }
    }

    /// What the error must mention.
    fn expect(self) -> &'static str {
        match self {
            Hostility::ForgedCount => "response from",
            Hostility::Truncated => "more bytes",
            Hostility::WrongCorrelationId => "does not match request",
            Hostility::HugeSizeThenClose => "connection closed after 7 of 268435456",
            Hostility::NegativeSize => "implausible response size -7",
            Hostility::Garbage => "response",
        }
    }
}

/// After a healthy connect, each hostile answer to each API the toolbox and the operator
/// use is an error from the call that sent it.
#[tokio::test]
async fn hostile_responses_to_later_requests_are_errors() {
    let _serial = MEMORY_MEASURED.lock().await;
    let memory = MemoryBound::start();
    let mut checked = 0;
    for &api in LATER_APIS {
        for hostility in Hostility::ALL {
            let what = format!("{api:?} answered with {hostility:?}");
            let fake = FakeBroker::start_with(move |addr| {
                let healthy = Healthy::new(addr);
                move |r: &Request| {
                    // The bootstrap Metadata is answered properly even when Metadata is
                    // the API under test.
                    let bootstrap = r.is(ApiKey::Metadata) && r.nth == 0;
                    if r.is(api) && !bootstrap {
                        hostility.reply(api, r)
                    } else {
                        healthy.reply_or_close(r)
                    }
                }
            })
            .await;
            let client = Client::connect(config(&fake.address()))
                .await
                .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
            let started = Instant::now();
            let err = match call(&client, api).await {
                Ok(()) => panic!("{what}: the client accepted the response"),
                Err(e) => e,
            };
            let message = err.to_string();
            assert!(
                message.contains(hostility.expect()),
                "{what}: error {message:?} does not mention {:?}",
                hostility.expect()
            );
            assert!(
                !matches!(err, ClientError::Timeout { .. }),
                "{what}: timed out instead of failing: {message}"
            );
            assert!(
                fake.received()
                    .iter()
                    .any(|r| r.is(api) && (api != ApiKey::Metadata || r.nth > 0)),
                "{what}: the client never sent {api:?}"
            );
            assert!(
                started.elapsed() < REQUEST_TIMEOUT,
                "{what}: took {:?}",
                started.elapsed()
            );
            checked += 1;
        }
        memory.check(&format!("{api:?}"));
    }
    assert_eq!(checked, LATER_APIS.len() * Hostility::ALL.len());
}

/// Mutated valid responses per API: each call must return (Ok or Err, never panic or hang),
/// most must be errors, and memory must stay bounded.
#[tokio::test]
async fn mutated_responses_never_crash_the_client() {
    const PER_API: u64 = 24;
    let _serial = MEMORY_MEASURED.lock().await;
    let memory = MemoryBound::start();
    let mut total = 0;
    let mut errors = 0;
    // ApiVersions and the bootstrap Metadata through `Client::connect`, then the rest.
    let apis = [ApiKey::ApiVersions]
        .into_iter()
        .chain(LATER_APIS.iter().copied());
    for api in apis {
        let seed = api as u64;
        let fake = FakeBroker::start_with(move |addr| {
            let healthy = Healthy::new(addr);
            move |r: &Request| {
                let connecting = api == ApiKey::ApiVersions || api == ApiKey::Metadata;
                if !r.is(api) {
                    return healthy.reply_or_close(r);
                }
                if !connecting && r.is(ApiKey::Metadata) && r.nth == 0 {
                    return healthy.reply_or_close(r);
                }
                let mut rng = Rng::new(seed.wrapping_mul(1_000_003) + r.nth as u64);
                let valid = valid_response(api, r, &mut rng);
                Reply::Frame(frame(r, &mutate(&valid, &mut rng)))
            }
        })
        .await;
        let mut api_errors = 0;
        for i in 0..PER_API {
            let what = format!("{api:?} mutation {i}");
            let started = Instant::now();
            let result = match api {
                ApiKey::ApiVersions | ApiKey::Metadata => {
                    Client::connect(config(&fake.address())).await.map(drop)
                }
                _ => {
                    let client = Client::connect(config(&fake.address()))
                        .await
                        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                    call(&client, api).await
                }
            };
            assert!(
                started.elapsed() < REQUEST_TIMEOUT * 4,
                "{what}: took {:?}",
                started.elapsed()
            );
            if let Err(e) = result {
                assert!(
                    !matches!(e, ClientError::Timeout { .. }),
                    "{what}: a complete frame timed out: {e}"
                );
                api_errors += 1;
            }
        }
        assert!(
            fake.count(api) as u64 >= PER_API,
            "{api:?}: only {} requests reached the fake",
            fake.count(api)
        );
        // Most mutations break a length, count or the end of the message; a response the
        // client accepted anyway must have been harmless (a flipped number, bytes after it).
        assert!(
            api_errors * 2 >= PER_API,
            "{api:?}: only {api_errors} of {PER_API} mutated responses were refused"
        );
        total += PER_API;
        errors += api_errors;
        memory.check(&format!("{api:?} mutations"));
    }
    assert_eq!(total, (LATER_APIS.len() as u64 + 1) * PER_API);
    eprintln!("{errors} of {total} mutated responses were refused");
}
