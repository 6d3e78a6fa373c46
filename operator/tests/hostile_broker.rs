//! The operator's real Kafka admin path (`admin::kafka`, over `ironlog-client`) against a
//! hostile broker (issue 8): every hostile answer must come back as an `AdminError` with a
//! readable message — never a panic — and the reconcile phases that go through the `Admin`
//! seam (`rollout::scale_down_step`, `spread_step`, `roll_step`, and the topic path's
//! observe-then-`plan_topic`) must return that error while the same phases for a second,
//! well-behaved cluster go through.
//!
//! Why the function boundary is the honest level: the controllers (operator/src/main.rs)
//! run under kube-rs `Controller`s, which reconcile each object in its own future and hand
//! an `Err` to `error_policy` (a warning in the log, the failures metric, a requeue in 15s),
//! so one cluster's failing reconcile does not stop another's. What the Kafka side has to
//! guarantee is that a hostile broker yields an `Err` (or a Degraded step), not a panic
//! that would take the whole process down, and that it holds no shared state hostage.
//! No Kubernetes API server is started here.
//!
//! The fake broker is the client crate's test support module, included by path.

#[path = "../../client/tests/support/fake_broker.rs"]
mod fake_broker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fake_broker::{encode, frame, header, raw_with_size, FakeBroker, Healthy, Reply, Request};
use ironlog_operator::admin::kafka::KafkaConnector;
use ironlog_operator::admin::{Admin, AdminConnector, AdminError, AdminTarget};
use ironlog_operator::controller::rollout::{
    roll_step, scale_down_step, spread_step, RollGate, Step,
};
use ironlog_operator::controller::topic::{plan_topic, TopicPlan};
use ironlog_operator::crd::KafkaTopicSpec;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsResponse, DescribeConfigsResponse, ListPartitionReassignmentsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Bound on every admin call of the tests that must fail fast (the connector's own request
/// timeout is 30 s; these hostile answers fail at once).
const FAST: Duration = Duration::from_secs(10);

/// A hostile answer that fails at once.
struct Hostility {
    name: &'static str,
    reply: fn(&Request) -> Reply,
    /// What the error must mention.
    expect: &'static str,
}

fn fast_hostilities() -> Vec<Hostility> {
    vec![
        Hostility {
            name: "compact array count u32::MAX",
            reply: |r| {
                let mut body = vec![0u8; fixed_before_first_array(r)];
                body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // uvarint u32::MAX
                Reply::Frame(frame(r, &body))
            },
            expect: "4294967294 elements of at least",
        },
        Hostility {
            name: "wrong correlation id",
            reply: |r| Reply::Frame(header(r, r.correlation_id.wrapping_add(77))),
            expect: "does not match request",
        },
        Hostility {
            name: "truncated body",
            reply: |r| Reply::Frame(frame(r, &[0, 0])),
            expect: "more bytes",
        },
        Hostility {
            name: "size prefix of 256 MiB, then close",
            reply: |_| Reply::RawThenClose(raw_with_size(256 * 1024 * 1024, b"xy")),
            // Above the operator's 32 MiB admin response limit: refused from the prefix.
            expect: "implausible response size 268435456",
        },
        Hostility {
            name: "size prefix of 16 MiB, then close",
            reply: |_| Reply::RawThenClose(raw_with_size(16 * 1024 * 1024, b"xy")),
            expect: "connection closed after 2 of 16777216",
        },
        Hostility {
            name: "negative size prefix",
            reply: |_| Reply::RawThenClose(raw_with_size(-1, &[])),
            expect: "implausible response size -1",
        },
    ]
}

/// The bytes before the first array of a response at the version the client uses, all
/// zero: throttle_time_ms, and for ListPartitionReassignments v0 an error code and a null
/// error message.
fn fixed_before_first_array(r: &Request) -> usize {
    if r.is(ApiKey::ListPartitionReassignments) {
        4 + 2 + 1
    } else {
        // Metadata (brokers), DescribeConfigs (results).
        4
    }
}

/// A fake that answers ApiVersions and the bootstrap Metadata properly and `hostile` APIs
/// (any later request of them) with `reply`.
async fn hostile_cluster(hostile: &'static [ApiKey], reply: fn(&Request) -> Reply) -> FakeBroker {
    FakeBroker::start_with(move |addr| {
        let healthy = Healthy::new(addr);
        move |r: &Request| {
            let bootstrap = r.is(ApiKey::Metadata) && r.nth == 0;
            if !bootstrap && hostile.iter().any(|api| r.is(*api)) {
                reply(r)
            } else {
                healthy.reply_or_close(r)
            }
        }
    })
    .await
}

/// A well-behaved single-broker cluster (this fake is broker 0) with topic "t" of one
/// partition whose only config override is `retention.ms=1000`.
async fn healthy_cluster() -> FakeBroker {
    FakeBroker::start_with(|addr| {
        let healthy = Healthy::new(addr);
        move |r: &Request| {
            let body = if r.is(ApiKey::DescribeConfigs) {
                encode(
                    r,
                    &DescribeConfigsResponse::default().with_results(vec![
                        DescribeConfigsResult::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("t"))
                            .with_configs(vec![DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_static_str("1000")))
                                .with_config_source(1)]),
                    ]),
                )
            } else if r.is(ApiKey::ListPartitionReassignments) {
                encode(r, &ListPartitionReassignmentsResponse::default())
            } else if r.is(ApiKey::CreatePartitions) {
                encode(
                    r,
                    &CreatePartitionsResponse::default()
                        .with_results(vec![CreatePartitionsTopicResult::default()
                            .with_name(TopicName(StrBytes::from_static_str("t")))]),
                )
            } else {
                return healthy.reply_or_close(r);
            };
            Reply::Frame(frame(r, &body))
        }
    })
    .await
}

async fn connect(fake: &FakeBroker) -> Box<dyn Admin> {
    tokio::time::timeout(
        FAST,
        KafkaConnector.connect(&AdminTarget::plaintext(fake.address())),
    )
    .await
    .expect("connect within the bound")
    .unwrap_or_else(|e| panic!("connect to {}: {e}", fake.address()))
}

fn spec() -> KafkaTopicSpec {
    KafkaTopicSpec {
        cluster: "c".to_owned(),
        topic_name: Some("t".to_owned()),
        partitions: 2,
        replicas: 1,
        config: BTreeMap::from([("retention.ms".to_owned(), "2000".to_owned())]),
    }
}

/// The topic reconcile's observation and plan (`sync_topic`'s first half): Metadata, the
/// topic's configs, then the pure [`plan_topic`].
async fn observe_and_plan(admin: &dyn Admin) -> Result<(TopicPlan, BTreeSet<i32>), AdminError> {
    let meta = admin.metadata().await?;
    let info = meta.topics.get("t");
    let config = match info {
        Some(_) => admin.describe_topic_config("t").await?,
        None => BTreeMap::new(),
    };
    let plan = plan_topic(&spec(), info.map(|i| (i, &config)), &meta.brokers);
    Ok((plan, meta.brokers))
}

fn assert_readable(what: &str, err: &AdminError, expect: &str) {
    let message = err.to_string();
    assert!(
        message.contains(expect),
        "{what}: {message:?} does not mention {expect:?}"
    );
    // The operator logs these and writes them into conditions: they must say what failed.
    assert!(
        message.contains("response") || message.contains("broker"),
        "{what}: {message:?} names neither the response nor the broker"
    );
}

/// Every hostile answer to every admin request the reconcile phases send is an `Err` from
/// the phase, with the problem in its message.
#[tokio::test]
async fn reconcile_phases_return_errors_from_a_hostile_broker() {
    for Hostility {
        name,
        reply,
        expect,
    } in fast_hostilities()
    {
        // The topic path: Metadata, then DescribeConfigs.
        let fake = hostile_cluster(&[ApiKey::Metadata], reply).await;
        let admin = connect(&fake).await;
        let err = tokio::time::timeout(FAST, observe_and_plan(admin.as_ref()))
            .await
            .expect("bounded")
            .expect_err("hostile Metadata must fail the topic observation");
        assert_readable(&format!("topic observe, Metadata, {name}"), &err, expect);

        let fake = hostile_cluster(&[ApiKey::DescribeConfigs], reply).await;
        let admin = connect(&fake).await;
        let err = tokio::time::timeout(FAST, observe_and_plan(admin.as_ref()))
            .await
            .expect("bounded")
            .expect_err("hostile DescribeConfigs must fail the topic observation");
        assert_readable(
            &format!("topic observe, DescribeConfigs, {name}"),
            &err,
            expect,
        );
        assert!(fake.count(ApiKey::DescribeConfigs) >= 1);

        // Scale-down drain: ListPartitionReassignments first.
        let fake = hostile_cluster(&[ApiKey::ListPartitionReassignments], reply).await;
        let admin = connect(&fake).await;
        let err = tokio::time::timeout(
            FAST,
            scale_down_step(admin.as_ref(), 1, &Default::default()),
        )
        .await
        .expect("bounded")
        .expect_err("hostile ListPartitionReassignments must fail the drain step");
        assert_readable(&format!("scale-down, {name}"), &err, expect);

        // Scale-up spread and the roll: Metadata first.
        let fake = hostile_cluster(&[ApiKey::Metadata], reply).await;
        let admin = connect(&fake).await;
        let err = tokio::time::timeout(FAST, spread_step(admin.as_ref(), 1))
            .await
            .expect("bounded")
            .expect_err("hostile Metadata must fail the spread step");
        assert_readable(&format!("spread, {name}"), &err, expect);
        let err = tokio::time::timeout(
            FAST,
            roll_step(Some(admin.as_ref()), &[(0, true)], 1, RollGate::Open),
        )
        .await
        .expect("bounded")
        .expect_err("hostile Metadata must fail the roll step");
        assert_readable(&format!("roll, {name}"), &err, expect);
    }
}

/// A hostile bootstrap answer fails the connector itself, as an error the controllers
/// report (ClusterUnreachable or a logged reconcile failure).
#[tokio::test]
async fn connecting_to_a_hostile_broker_is_an_error() {
    for Hostility {
        name,
        reply,
        expect,
    } in fast_hostilities()
    {
        let fake = FakeBroker::start_with(move |addr| {
            let healthy = Healthy::new(addr);
            move |r: &Request| {
                if r.is(ApiKey::Metadata) {
                    reply(r)
                } else {
                    healthy.reply_or_close(r)
                }
            }
        })
        .await;
        let result = tokio::time::timeout(
            FAST,
            KafkaConnector.connect(&AdminTarget::plaintext(fake.address())),
        )
        .await
        .expect("bounded");
        let err = match result {
            Ok(_) => panic!("{name}: connected through a hostile Metadata answer"),
            Err(e) => e,
        };
        assert_readable(&format!("connect, {name}"), &err, expect);
        assert!(
            matches!(err, AdminError::Unreachable(_) | AdminError::Other(_)),
            "{name}: {err:?}"
        );
        assert_eq!(fake.count(ApiKey::Metadata), 1, "{name}");
    }
}

/// While one cluster's broker has gone silent after a 1 MiB size prefix (the admin call
/// waits out the operator's 10 s request timeout), the reconcile phases of a second cluster
/// run to completion, including a write.
#[tokio::test]
async fn healthy_cluster_reconciles_while_another_is_hostile() {
    let silent = hostile_cluster(&[ApiKey::Metadata], |_| {
        Reply::RawThenHang(raw_with_size(1024 * 1024, &[]))
    })
    .await;
    let silent_admin = connect(&silent).await;
    let stuck = tokio::spawn(async move { observe_and_plan(silent_admin.as_ref()).await });
    let deadline = Instant::now() + FAST;
    while silent.count(ApiKey::Metadata) < 2 {
        assert!(
            Instant::now() < deadline,
            "hostile cluster never asked: {:?}",
            silent.received()
        );
        tokio::task::yield_now().await;
    }

    let healthy = healthy_cluster().await;
    let admin = connect(&healthy).await;
    let started = Instant::now();
    let (plan, brokers) = tokio::time::timeout(FAST, observe_and_plan(admin.as_ref()))
        .await
        .expect("bounded")
        .expect("healthy cluster observed");
    assert_eq!(brokers, BTreeSet::from([0]));
    assert_eq!(
        plan,
        TopicPlan {
            grow_partitions_to: Some(2),
            set_config: BTreeMap::from([("retention.ms".to_owned(), "2000".to_owned())]),
            ..TopicPlan::default()
        }
    );
    admin
        .create_partitions("t", 2)
        .await
        .expect("grow partitions on the healthy cluster");
    assert_eq!(healthy.count(ApiKey::CreatePartitions), 1);
    assert_eq!(
        tokio::time::timeout(
            FAST,
            scale_down_step(admin.as_ref(), 1, &Default::default())
        )
        .await
        .expect("bounded")
        .expect("drain step"),
        Step::Done
    );
    assert_eq!(
        tokio::time::timeout(FAST, spread_step(admin.as_ref(), 1))
            .await
            .expect("bounded")
            .expect("spread step"),
        Step::Done
    );
    assert!(started.elapsed() < FAST);
    // The other cluster's call is still waiting on its silent broker: the healthy cluster
    // did not wait for it.
    assert!(
        !stuck.is_finished(),
        "the silent cluster's call returned early"
    );
    stuck.abort();
}
