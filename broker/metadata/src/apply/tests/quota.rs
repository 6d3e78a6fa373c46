//! Client quotas: which entities and values are accepted, describing them, and which quota
//! applies to a client.

use std::net::IpAddr;

use super::*;
use crate::quota::{
    ClientQuotaEntity, QuotaAlteration, QuotaEntityType, QuotaFilterComponent, QuotaMatch,
    QuotaValue,
};

use QuotaEntityType::{ClientId, Ip, User};

fn alter(entries: Vec<QuotaAlteration>) -> MetadataCommand {
    MetadataCommand::AlterClientQuotas { entries }
}

fn set(entity: ClientQuotaEntity, ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
    QuotaAlteration {
        entity,
        ops: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn quotas(pairs: &[(&str, f64)]) -> BTreeMap<String, QuotaValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), QuotaValue::new(*v).unwrap()))
        .collect()
}

fn user(name: &str) -> ClientQuotaEntity {
    ClientQuotaEntity::user(Some(name))
}

const PRODUCE: &str = "producer_byte_rate";
const CONSUME: &str = "consumer_byte_rate";

#[test]
fn quotas_are_set_replaced_and_removed_and_an_empty_entity_is_forgotten() {
    let mut image = cluster(&[1]);
    let entries = vec![
        set(
            user("alice"),
            &[(PRODUCE, Some(1024.0)), (CONSUME, Some(2048.0))],
        ),
        // Given client-id first: stored sorted, user first.
        set(
            ClientQuotaEntity {
                parts: vec![(ClientId, None), (User, Some("alice".into()))],
            },
            &[("request_percentage", Some(12.5))],
        ),
        set(
            ClientQuotaEntity::ip(Some("::0:1")),
            &[("connection_creation_rate", Some(10.0))],
        ),
    ];
    assert_eq!(image.apply(&alter(entries)), CommandResult::Done);
    let expected: BTreeMap<ClientQuotaEntity, BTreeMap<String, QuotaValue>> = [
        (
            user("alice"),
            quotas(&[(CONSUME, 2048.0), (PRODUCE, 1024.0)]),
        ),
        (
            ClientQuotaEntity::user_client_id(Some("alice"), None),
            quotas(&[("request_percentage", 12.5)]),
        ),
        (
            ClientQuotaEntity::ip(Some("::1")),
            quotas(&[("connection_creation_rate", 10.0)]),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(image.client_quotas, expected);
    assert_eq!(
        image.client_quotas.keys().next().unwrap().parts,
        vec![(User, Some("alice".to_string()))]
    );

    // Replace one, remove one and one that is not set; the last op of a key wins.
    assert_eq!(
        image.apply(&alter(vec![set(
            user("alice"),
            &[
                (PRODUCE, Some(1.0)),
                (PRODUCE, Some(4096.0)),
                (CONSUME, None),
                ("controller_mutation_rate", None),
            ],
        )])),
        CommandResult::Done
    );
    assert_eq!(
        image.client_quotas[&user("alice")],
        quotas(&[(PRODUCE, 4096.0)])
    );

    assert_eq!(
        image.apply(&alter(vec![
            set(user("alice"), &[(PRODUCE, None)]),
            set(
                ClientQuotaEntity::ip(Some("0:0::1")),
                &[("connection_creation_rate", None)]
            ),
            set(user("nobody"), &[(PRODUCE, None)]),
        ])),
        CommandResult::Done
    );
    assert_eq!(
        image.client_quotas.keys().cloned().collect::<Vec<_>>(),
        vec![ClientQuotaEntity::user_client_id(Some("alice"), None)],
        "entities without quotas are gone; removing from an unknown one adds nothing"
    );
}

#[test]
fn a_bad_entry_refuses_the_whole_command() {
    let mut image = cluster(&[1]);
    image.apply(&alter(vec![set(user("alice"), &[(PRODUCE, Some(100.0))])]));
    let before = image.clone();
    let both = |parts: Vec<(QuotaEntityType, Option<&str>)>| ClientQuotaEntity {
        parts: parts
            .into_iter()
            .map(|(t, n)| (t, n.map(String::from)))
            .collect(),
    };
    let cases: Vec<(QuotaAlteration, &str)> = vec![
        (
            set(user("bob"), &[("connection_creation_rate", Some(5.0))]),
            "user=bob: \"connection_creation_rate\" is not a quota of user and client-id entities; they have producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate",
        ),
        (
            set(ClientQuotaEntity::ip(None), &[(PRODUCE, Some(5.0))]),
            "ip=<default>: \"producer_byte_rate\" is not a quota of ip entities; they have connection_creation_rate",
        ),
        (
            set(user("bob"), &[("bogus", None)]),
            "user=bob: \"bogus\" is not a quota of user and client-id entities; they have producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate",
        ),
        (
            set(user("bob"), &[(PRODUCE, Some(0.0))]),
            "user=bob: quota producer_byte_rate must be a number above 0, got 0",
        ),
        (
            set(user("bob"), &[("request_percentage", Some(-2.5))]),
            "user=bob: quota request_percentage must be a number above 0, got -2.5",
        ),
        (
            set(user("bob"), &[("request_percentage", Some(f64::NAN))]),
            "user=bob: quota request_percentage must be a number above 0, got NaN",
        ),
        (
            set(user("bob"), &[("request_percentage", Some(f64::INFINITY))]),
            "user=bob: quota request_percentage must be a number above 0, got inf",
        ),
        (
            set(user("bob"), &[(PRODUCE, Some(1.5))]),
            "user=bob: quota producer_byte_rate must be a whole number, got 1.5",
        ),
        (
            set(
                ClientQuotaEntity::ip(None),
                &[("connection_creation_rate", Some(3e9))],
            ),
            "ip=<default>: quota connection_creation_rate must be at most 2147483647, got 3000000000",
        ),
        (
            set(both(vec![(User, Some("bob")), (Ip, None)]), &[]),
            "user=bob, ip=<default>: a client quota entity is a user, a client-id, both, or an ip; not user + ip",
        ),
        (
            set(both(vec![(ClientId, Some("c")), (Ip, Some("10.0.0.1"))]), &[]),
            "client-id=c, ip=10.0.0.1: a client quota entity is a user, a client-id, both, or an ip; not client-id + ip",
        ),
        (
            set(both(vec![(User, Some("a")), (User, Some("b"))]), &[]),
            "user=a, user=b: the client quota entity names user more than once",
        ),
        (
            set(both(vec![]), &[]),
            "<empty entity>: a client quota entity is a user, a client-id, both, or an ip; this one names none",
        ),
        (
            set(user(""), &[(PRODUCE, Some(1.0))]),
            "user=: the user name is empty; leave it out for the default user",
        ),
        (
            set(ClientQuotaEntity::ip(Some("example.com")), &[]),
            "ip=example.com: \"example.com\" is not an IPv4 or IPv6 address",
        ),
    ];
    for (bad, message) in cases {
        // A valid entry first: it is not applied either.
        let command = alter(vec![set(user("carol"), &[(PRODUCE, Some(7.0))]), bad]);
        assert_eq!(
            image.apply(&command),
            CommandResult::Rejected(CommandError::InvalidRequest(message.into())),
            "{message}"
        );
        assert_eq!(image, before, "{message}: unchanged");
    }
    // Within Kafka's tolerance a byte rate is whole; a double key takes fractions.
    assert_eq!(
        image.apply(&alter(vec![set(
            user("bob"),
            &[
                (PRODUCE, Some(2.0000001)),
                ("request_percentage", Some(0.5))
            ]
        )])),
        CommandResult::Done
    );
}

#[test]
fn the_quota_that_applies_follows_kafkas_precedence() {
    let mut image = cluster(&[1]);
    let (u, c) = (Some("alice"), Some("app"));
    // From most to least specific, each with its own value.
    let levels = [
        ClientQuotaEntity::user_client_id(u, c),
        ClientQuotaEntity::user_client_id(u, None),
        ClientQuotaEntity::user(u),
        ClientQuotaEntity::user_client_id(None, c),
        ClientQuotaEntity::user_client_id(None, None),
        ClientQuotaEntity::user(None),
        ClientQuotaEntity::client_id(c),
        ClientQuotaEntity::client_id(None),
    ];
    let entries = levels
        .iter()
        .enumerate()
        .map(|(i, e)| set(e.clone(), &[(PRODUCE, Some(100.0 * (i + 1) as f64))]))
        .collect();
    assert_eq!(image.apply(&alter(entries)), CommandResult::Done);
    // Unrelated quotas that must never be picked.
    image.apply(&alter(vec![
        set(
            ClientQuotaEntity::user_client_id(Some("bob"), c),
            &[(PRODUCE, Some(1.0))],
        ),
        set(
            ClientQuotaEntity::user_client_id(u, Some("other")),
            &[(PRODUCE, Some(2.0))],
        ),
        set(user("alice"), &[(CONSUME, Some(3.0))]),
    ]));
    for (i, level) in levels.iter().enumerate() {
        assert_eq!(
            image.client_quota("alice", "app", PRODUCE),
            Some(100.0 * (i + 1) as f64),
            "{level} applies once the more specific ones are gone"
        );
        image.apply(&alter(vec![set(level.clone(), &[(PRODUCE, None)])]));
    }
    assert_eq!(image.client_quota("alice", "app", PRODUCE), None);
    assert_eq!(
        image.client_quota("alice", "app", CONSUME),
        Some(3.0),
        "per key: the user's consumer rate"
    );
    assert_eq!(image.client_quota("bob", "app", PRODUCE), Some(1.0));
    assert_eq!(image.client_quota("bob", "other", PRODUCE), None);
}

#[test]
fn connection_quotas_apply_per_address_then_by_default() {
    let mut image = cluster(&[1]);
    let key = "connection_creation_rate";
    image.apply(&alter(vec![
        set(ClientQuotaEntity::ip(Some("10.0.0.1")), &[(key, Some(5.0))]),
        set(ClientQuotaEntity::ip(Some("0::1")), &[(key, Some(6.0))]),
        set(ClientQuotaEntity::ip(None), &[(key, Some(50.0))]),
    ]));
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(image.ip_quota(ip("10.0.0.1"), key), Some(5.0));
    assert_eq!(image.ip_quota(ip("::1"), key), Some(6.0));
    assert_eq!(image.ip_quota(ip("10.0.0.2"), key), Some(50.0));
    assert_eq!(image.ip_quota(ip("10.0.0.1"), PRODUCE), None);
}

#[test]
fn describe_client_quotas_filters_as_kafka() {
    let mut image = cluster(&[1]);
    let all = [
        user("alice"),
        ClientQuotaEntity::user(None),
        ClientQuotaEntity::user_client_id(Some("alice"), Some("app")),
        ClientQuotaEntity::user_client_id(Some("alice"), None),
        ClientQuotaEntity::client_id(Some("app")),
        ClientQuotaEntity::ip(Some("10.0.0.1")),
    ];
    let entries = all
        .iter()
        .map(|e| {
            let key = if e.is_ip() {
                "connection_creation_rate"
            } else {
                PRODUCE
            };
            set(e.clone(), &[(key, Some(8.0))])
        })
        .collect();
    assert_eq!(image.apply(&alter(entries)), CommandResult::Done);

    let component = |entity_type, matching| QuotaFilterComponent {
        entity_type,
        matching,
    };
    let exact = |s: &str| QuotaMatch::Exact(s.into());
    let describe = |components: &[QuotaFilterComponent], strict| {
        image
            .describe_client_quotas(components, strict)
            .map(|found| {
                found
                    .into_iter()
                    .map(|(e, _)| e.to_string())
                    .collect::<Vec<_>>()
            })
    };
    let names = |list: &[&str]| Ok(list.iter().map(|s| s.to_string()).collect::<Vec<_>>());

    assert_eq!(
        describe(&[component(User, exact("alice"))], false),
        names(&[
            "user=alice",
            "user=alice, client-id=<default>",
            "user=alice, client-id=app"
        ])
    );
    assert_eq!(
        describe(&[component(User, exact("alice"))], true),
        names(&["user=alice"])
    );
    assert_eq!(
        describe(&[component(User, QuotaMatch::Default)], false),
        names(&["user=<default>"])
    );
    assert_eq!(
        describe(&[component(User, QuotaMatch::Any)], true),
        names(&["user=<default>", "user=alice"]),
        "any name, the default included"
    );
    assert_eq!(
        describe(
            &[
                component(User, QuotaMatch::Any),
                component(ClientId, QuotaMatch::Default)
            ],
            false
        ),
        names(&["user=alice, client-id=<default>"])
    );
    assert_eq!(
        describe(&[component(ClientId, exact("app"))], false),
        names(&["user=alice, client-id=app", "client-id=app"])
    );
    assert_eq!(
        describe(&[component(Ip, exact("10.0.0.1"))], false),
        names(&["ip=10.0.0.1"])
    );
    assert_eq!(
        describe(&[component(Ip, exact("::ffff:10.0.0.1"))], false),
        names(&[]),
        "another address"
    );
    assert_eq!(describe(&[], false).unwrap().len(), 6, "no components: all");
    assert_eq!(
        describe(&[], true),
        names(&[]),
        "strict, no components: none"
    );
    assert_eq!(
        image
            .describe_client_quotas(&[component(User, QuotaMatch::Default)], false)
            .unwrap(),
        vec![(&ClientQuotaEntity::user(None), &quotas(&[(PRODUCE, 8.0)]))]
    );

    assert_eq!(
        describe(
            &[
                component(User, QuotaMatch::Any),
                component(User, QuotaMatch::Default)
            ],
            false
        ),
        Err("entity type user appears more than once in the filter".to_string())
    );
    assert_eq!(
        describe(
            &[
                component(ClientId, QuotaMatch::Any),
                component(Ip, QuotaMatch::Any)
            ],
            false
        ),
        Err("an ip filter component cannot be combined with user or client-id ones".to_string())
    );
}

#[test]
fn quota_values_compare_by_bits_and_must_be_positive() {
    assert_eq!(QuotaValue::new(0.0), None);
    assert_eq!(QuotaValue::new(-1.0), None);
    assert_eq!(QuotaValue::new(f64::NAN), None);
    assert_eq!(QuotaValue::new(f64::INFINITY), None);
    assert_eq!(QuotaValue::new(0.1 + 0.2).unwrap().get(), 0.1 + 0.2);
    assert_ne!(QuotaValue::new(0.1 + 0.2), QuotaValue::new(0.3));
}
