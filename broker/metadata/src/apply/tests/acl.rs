//! ACLs: Kafka's wire codes, the rules for a binding, filters, and the authorization
//! decision.

use proptest::prelude::*;

use super::*;
use crate::acl::{
    AclBinding, AclBindingFilter, AclDecision, AclOperation, AclPermission, PatternFilter,
    PatternType, ResourceType,
};

use AclOperation as Op;
use AclPermission::{Allow, Deny};
use PatternType::{Literal, Prefixed};
use ResourceType as R;

fn binding(
    permission: AclPermission,
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: host.into(),
        operation,
        permission,
    }
}

/// From any host.
fn acl(
    permission: AclPermission,
    principal: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
) -> AclBinding {
    binding(
        permission,
        principal,
        "*",
        operation,
        resource_type,
        name,
        pattern_type,
    )
}

fn create(acls: &[AclBinding]) -> MetadataCommand {
    MetadataCommand::CreateAcls {
        acls: acls.to_vec(),
    }
}

fn filter(
    resource_type: Option<ResourceType>,
    name: Option<&str>,
    pattern: PatternFilter,
) -> AclBindingFilter {
    AclBindingFilter {
        resource_type,
        resource_name: name.map(String::from),
        pattern,
        ..AclBindingFilter::any()
    }
}

#[test]
fn wire_codes_are_kafkas_and_filter_only_values_are_not_storable() {
    let codes = |all: Vec<i8>| all;
    assert_eq!(
        codes(R::ALL.iter().map(|t| t.code()).collect()),
        vec![2, 3, 4, 5, 6, 7]
    );
    assert_eq!(
        codes(Op::ALL.iter().map(|o| o.code()).collect()),
        (2..=14).collect::<Vec<i8>>()
    );
    assert_eq!(
        codes(AclPermission::ALL.iter().map(|p| p.code()).collect()),
        vec![2, 3]
    );
    assert_eq!(
        codes(PatternType::ALL.iter().map(|p| p.code()).collect()),
        vec![3, 4]
    );
    for t in R::ALL {
        assert_eq!(R::from_code(t.code()), Some(*t));
        assert_eq!(R::filter_from_code(t.code()), Some(Some(*t)));
    }
    for o in Op::ALL {
        assert_eq!(Op::from_code(o.code()), Some(*o));
    }
    assert_eq!(
        (R::from_code(2), R::from_code(4), R::from_code(7)),
        (Some(R::Topic), Some(R::Cluster), Some(R::User))
    );
    assert_eq!(
        (Op::from_code(8), Op::from_code(12)),
        (Some(Op::Describe), Some(Op::IdempotentWrite))
    );
    // UNKNOWN and ANY are never storable; ANY is a filter, UNKNOWN not even that.
    for code in [0, 1, 99, -1] {
        assert_eq!(R::from_code(code), None, "{code}");
        assert_eq!(Op::from_code(code), None, "{code}");
        assert_eq!(AclPermission::from_code(code), None, "{code}");
        assert_eq!(PatternType::from_code(code), None, "{code}");
    }
    assert_eq!(R::filter_from_code(1), Some(None));
    assert_eq!(Op::filter_from_code(1), Some(None));
    assert_eq!(AclPermission::filter_from_code(1), Some(None));
    assert_eq!(R::filter_from_code(0), None);
    assert_eq!(Op::filter_from_code(15), None);
    assert_eq!(R::filter_code(None), 1);
    assert_eq!(AclPermission::filter_code(Some(Allow)), 3);
    // MATCH (2) is a pattern filter, not a pattern type.
    assert_eq!(PatternType::from_code(2), None);
    assert_eq!(
        (0..=5).map(PatternFilter::from_code).collect::<Vec<_>>(),
        vec![
            None,
            Some(PatternFilter::Any),
            Some(PatternFilter::Match),
            Some(PatternFilter::Exact(Literal)),
            Some(PatternFilter::Exact(Prefixed)),
            None
        ]
    );
    for f in [
        PatternFilter::Any,
        PatternFilter::Match,
        PatternFilter::Exact(Literal),
        PatternFilter::Exact(Prefixed),
    ] {
        assert_eq!(PatternFilter::from_code(f.code()), Some(f));
    }
    assert_eq!(
        (R::TransactionalId.to_string(), Op::ClusterAction.name()),
        ("TRANSACTIONAL_ID".to_string(), "CLUSTER_ACTION")
    );
}

#[test]
fn a_binding_must_follow_kafkas_rules() {
    let good = acl(Allow, "User:alice", Op::Read, R::Topic, "orders", Literal);
    assert_eq!(good.validate(), Ok(()));
    assert_eq!(
        acl(Allow, "User:*", Op::All, R::Topic, "*", Literal).validate(),
        Ok(())
    );
    assert_eq!(
        acl(
            Deny,
            "Group:ops",
            Op::Alter,
            R::Cluster,
            "kafka-cluster",
            Literal
        )
        .validate(),
        Ok(())
    );
    let with = |f: fn(&mut AclBinding)| {
        let mut b = good.clone();
        f(&mut b);
        b.validate()
    };
    let cases: Vec<(Result<(), String>, &str)> = vec![
        (
            with(|b| b.principal = "alice".into()),
            "principal \"alice\" is not of the form Type:name (such as User:alice)",
        ),
        (
            with(|b| b.principal = "User:".into()),
            "principal \"User:\" is not of the form Type:name (such as User:alice)",
        ),
        (
            with(|b| b.principal = ":alice".into()),
            "principal \":alice\" is not of the form Type:name (such as User:alice)",
        ),
        (
            with(|b| b.resource_name.clear()),
            "the resource name is empty",
        ),
        (
            with(|b| b.resource_type = R::Cluster),
            "the cluster resource is named \"kafka-cluster\", not \"orders\"",
        ),
        (
            with(|b| {
                b.pattern_type = Prefixed;
                b.resource_name = "*".into();
            }),
            "a prefixed pattern cannot be \"*\"; use a literal \"*\" for every resource",
        ),
        (
            with(|b| b.host.clear()),
            "the host is empty; use \"*\" for every host",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, Err(want.to_string()));
    }
}

/// a..f below, created in a scrambled order.
fn six() -> (MetadataImage, [AclBinding; 6]) {
    let a = acl(Allow, "User:alice", Op::Read, R::Topic, "orders", Literal);
    let b = acl(Allow, "User:alice", Op::Read, R::Topic, "ord", Prefixed);
    let c = acl(Allow, "User:bob", Op::Write, R::Topic, "*", Literal);
    let d = acl(Deny, "User:bob", Op::Read, R::Topic, "orders", Prefixed);
    let e = acl(Allow, "User:alice", Op::Read, R::Group, "orders", Literal);
    let f = acl(
        Allow,
        "User:alice",
        Op::Describe,
        R::Topic,
        "payments",
        Literal,
    );
    let mut image = cluster(&[1]);
    let all = [
        f.clone(),
        e.clone(),
        d.clone(),
        c.clone(),
        b.clone(),
        a.clone(),
    ];
    assert_eq!(image.apply(&create(&all)), CommandResult::Done);
    (image, [a, b, c, d, e, f])
}

#[test]
fn creating_acls_validates_every_binding_first_and_ignores_duplicates() {
    let (mut image, [a, b, c, d, e, f]) = six();
    assert_eq!(
        image.acls.iter().cloned().collect::<Vec<_>>(),
        // Resource type, then name ('*' sorts first), then pattern type.
        vec![
            c.clone(),
            b.clone(),
            a.clone(),
            d.clone(),
            f.clone(),
            e.clone()
        ]
    );

    let before = image.clone();
    let new = acl(Allow, "User:carol", Op::Read, R::Topic, "new", Literal);
    let bad = acl(Allow, "User:carol", Op::Read, R::Topic, "", Literal);
    assert_eq!(
        image.apply(&create(&[new.clone(), bad])),
        CommandResult::Rejected(CommandError::InvalidRequest(
            "ACL ALLOW READ on LITERAL TOPIC \"\" for User:carol from *: the resource name is empty"
                .into()
        ))
    );
    assert_eq!(image, before, "nothing created, not even the valid one");

    assert_eq!(
        image.apply(&create(&[a.clone(), new.clone(), new.clone()])),
        CommandResult::Done
    );
    assert_eq!(image.acls.len(), 7, "a existed; new is stored once");
    assert!(image.acls.contains(&new));
}

#[test]
fn describe_filters_match_as_kafkas() {
    let (image, [a, b, c, d, e, f]) = six();
    let describe = |filter: AclBindingFilter| image.describe_acls(&filter);
    let topic = Some(R::Topic);
    // MATCH: what applies to the resource: the literal name, the literal wildcard, and
    // prefixes of it (a prefixed binding equal to the name included).
    assert_eq!(
        describe(filter(topic, Some("orders"), PatternFilter::Match)),
        vec![c.clone(), b.clone(), a.clone(), d.clone()]
    );
    assert_eq!(
        describe(filter(None, Some("orders"), PatternFilter::Match)),
        vec![c.clone(), b.clone(), a.clone(), d.clone(), e.clone()]
    );
    assert_eq!(
        describe(filter(topic, Some("ordinal"), PatternFilter::Match)),
        vec![c.clone(), b.clone()]
    );
    assert_eq!(
        describe(filter(topic, Some("or"), PatternFilter::Match)),
        vec![c.clone()],
        "the prefix \"ord\" is longer than the name"
    );
    // ANY with a name: that exact name, any pattern type.
    assert_eq!(
        describe(filter(topic, Some("orders"), PatternFilter::Any)),
        vec![a.clone(), d.clone()]
    );
    // An exact pattern type: that type, and that exact name if given.
    assert_eq!(
        describe(filter(
            topic,
            Some("orders"),
            PatternFilter::Exact(Prefixed)
        )),
        vec![d.clone()]
    );
    assert_eq!(
        describe(filter(topic, Some("ord"), PatternFilter::Exact(Prefixed))),
        vec![b.clone()]
    );
    assert_eq!(
        describe(filter(None, Some("orders"), PatternFilter::Exact(Literal))),
        vec![a.clone(), e.clone()]
    );
    assert_eq!(
        describe(filter(None, None, PatternFilter::Exact(Prefixed))),
        vec![b.clone(), d.clone()]
    );
    assert_eq!(
        describe(filter(topic, Some("*"), PatternFilter::Exact(Literal))),
        vec![c.clone()]
    );
    // Entry fields match exactly.
    assert_eq!(
        describe(AclBindingFilter {
            principal: Some("User:alice".into()),
            ..AclBindingFilter::any()
        }),
        vec![b.clone(), a.clone(), f.clone(), e.clone()]
    );
    assert_eq!(
        describe(AclBindingFilter {
            permission: Some(Deny),
            ..AclBindingFilter::any()
        }),
        vec![d.clone()]
    );
    assert_eq!(
        describe(AclBindingFilter {
            operation: Some(Op::Describe),
            ..AclBindingFilter::any()
        }),
        vec![f.clone()],
        "a filter's operation is not implied by Read"
    );
    assert_eq!(
        describe(AclBindingFilter {
            principal: Some("User:*".into()),
            ..AclBindingFilter::any()
        }),
        vec![],
        "the filter User:* is the principal User:*, not every principal"
    );
    assert_eq!(
        describe(AclBindingFilter::any()),
        image.acls.iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(describe(AclBindingFilter::exact(&d)), vec![d.clone()]);
    assert_eq!(
        describe(filter(None, None, PatternFilter::Match)).len(),
        6,
        "MATCH without a name matches everything"
    );
}

#[test]
fn delete_acls_answers_per_filter_what_it_removed() {
    let (mut image, [a, b, c, d, e, f]) = six();
    let filters = vec![
        filter(None, None, PatternFilter::Exact(Prefixed)),
        // Matches b too, but b went with the first filter.
        AclBindingFilter {
            principal: Some("User:alice".into()),
            ..AclBindingFilter::any()
        },
        filter(Some(R::Cluster), None, PatternFilter::Any),
    ];
    assert_eq!(
        image.apply(&MetadataCommand::DeleteAcls { filters }),
        CommandResult::AclsDeleted(vec![vec![b, d], vec![a, f, e], vec![]])
    );
    assert_eq!(
        image.acls.iter().cloned().collect::<Vec<_>>(),
        vec![c.clone()]
    );
    assert_eq!(
        image.apply(&MetadataCommand::DeleteAcls {
            filters: vec![AclBindingFilter::any(), AclBindingFilter::any()]
        }),
        CommandResult::AclsDeleted(vec![vec![c], vec![]])
    );
    assert!(image.acls.is_empty());
    assert_eq!(
        image.apply(&MetadataCommand::DeleteAcls { filters: vec![] }),
        CommandResult::AclsDeleted(vec![])
    );
}

#[test]
fn the_authorization_decision_follows_kafkas_rules() {
    let mut image = cluster(&[1]);
    let acls = [
        acl(Allow, "User:alice", Op::Read, R::Topic, "orders-", Prefixed),
        binding(
            Allow,
            "User:bob",
            "10.0.0.1",
            Op::Write,
            R::Topic,
            "payments",
            Literal,
        ),
        acl(Allow, "User:*", Op::Read, R::Topic, "shared", Literal),
        acl(Deny, "User:mallory", Op::Read, R::Topic, "shared", Literal),
        acl(Allow, "User:carol", Op::All, R::Topic, "secret", Literal),
        acl(Deny, "User:carol", Op::Read, R::Topic, "secret", Literal),
        acl(Allow, "User:eve", Op::Read, R::Group, "g1", Literal),
        acl(Deny, "User:eve", Op::All, R::Group, "g1", Literal),
        acl(
            Allow,
            "User:dave",
            Op::AlterConfigs,
            R::Cluster,
            "kafka-cluster",
            Literal,
        ),
        acl(
            Allow,
            "User:frank",
            Op::Read,
            R::TransactionalId,
            "*",
            Literal,
        ),
        binding(
            Deny,
            "User:*",
            "10.6.6.6",
            Op::Write,
            R::Topic,
            "shared",
            Literal,
        ),
        acl(Allow, "User:gina", Op::Write, R::Topic, "logs", Literal),
    ];
    assert_eq!(image.apply(&create(&acls)), CommandResult::Done);

    use AclDecision::{Allowed, Denied, NoMatchingAcl};
    let h = "10.0.0.1";
    #[rustfmt::skip]
    let cases: &[(&str, &str, AclOperation, ResourceType, &str, AclDecision, &str)] = &[
        ("User:alice", h, Op::Read, R::Topic, "orders-eu", Allowed, "prefixed grants its prefix"),
        ("User:alice", h, Op::Read, R::Topic, "orders-", Allowed, "the prefix itself"),
        ("User:alice", h, Op::Read, R::Topic, "order", NoMatchingAcl, "not a name the prefix covers"),
        ("User:alice", h, Op::Read, R::Topic, "orders", NoMatchingAcl, "nor this one"),
        ("User:alice", h, Op::Describe, R::Topic, "orders-eu", Allowed, "Read implies Describe"),
        ("User:alice", h, Op::Write, R::Topic, "orders-eu", Denied, "ACLs exist, none allows Write"),
        ("User:alice", h, Op::Read, R::Group, "orders-eu", NoMatchingAcl, "another resource type"),
        ("User:bob", h, Op::Read, R::Topic, "orders-eu", Denied, "ACLs exist, not for bob"),
        ("User:bob", "10.0.0.1", Op::Write, R::Topic, "payments", Allowed, "the host matches"),
        ("User:bob", "10.0.0.2", Op::Write, R::Topic, "payments", Denied, "another host"),
        ("User:bob", "10.0.0.1", Op::Describe, R::Topic, "payments", Allowed, "Write implies Describe"),
        ("User:bob", "10.0.0.1", Op::Read, R::Topic, "payments", Denied, "Write does not imply Read"),
        ("User:anyone", h, Op::Read, R::Topic, "shared", Allowed, "User:* and host *"),
        ("User:mallory", h, Op::Read, R::Topic, "shared", Denied, "deny beats allow"),
        ("User:mallory", h, Op::Describe, R::Topic, "shared", Allowed, "a DENY of Read leaves the implied Describe"),
        ("User:anyone", "10.6.6.6", Op::Write, R::Topic, "shared", Denied, "User:* denied from one host"),
        ("Group:ops", h, Op::Read, R::Topic, "shared", Allowed, "User:* covers principals of other types"),
        ("User:carol", h, Op::Write, R::Topic, "secret", Allowed, "All allows Write"),
        ("User:carol", h, Op::Read, R::Topic, "secret", Denied, "deny of Read beats allow of All"),
        ("User:carol", h, Op::Describe, R::Topic, "secret", Allowed, "a DENY of Read does not deny Describe"),
        ("User:eve", h, Op::Read, R::Group, "g1", Denied, "DENY of All denies Read"),
        ("User:eve", h, Op::Describe, R::Group, "g1", Denied, "and everything else"),
        ("User:eve", h, Op::Read, R::Group, "g2", NoMatchingAcl, "no ACL for g2"),
        ("User:dave", h, Op::DescribeConfigs, R::Cluster, "kafka-cluster", Allowed, "AlterConfigs implies DescribeConfigs"),
        ("User:dave", h, Op::AlterConfigs, R::Cluster, "kafka-cluster", Allowed, "its own operation"),
        ("User:dave", h, Op::Describe, R::Cluster, "kafka-cluster", Denied, "AlterConfigs does not imply Describe"),
        ("User:frank", h, Op::Read, R::TransactionalId, "tx-1", Allowed, "the literal wildcard"),
        ("User:bob", h, Op::Read, R::TransactionalId, "tx-1", Denied, "the wildcard names every id"),
        ("User:gina", h, Op::Read, R::Topic, "logs", Denied, "Write does not imply Read"),
        ("User:gina", h, Op::Write, R::Topic, "logs", Allowed, "exact"),
        ("User:gina", h, Op::Write, R::Topic, "logs2", NoMatchingAcl, "a literal is no prefix"),
    ];
    for &(principal, host, operation, resource_type, name, want, why) in cases {
        assert_eq!(
            image.acl_decision(principal, host, operation, resource_type, name),
            want,
            "{principal} from {host}: {operation} {resource_type} {name}: {why}"
        );
    }

    // A DENY of Describe is not implied by a DENY of Read, and an explicit one wins.
    image.apply(&create(&[acl(
        Deny,
        "User:alice",
        Op::Describe,
        R::Topic,
        "orders-",
        Prefixed,
    )]));
    assert_eq!(
        image.acl_decision("User:alice", h, Op::Describe, R::Topic, "orders-eu"),
        Denied
    );
    assert_eq!(
        image.acl_decision("User:alice", h, Op::Read, R::Topic, "orders-eu"),
        Allowed
    );
}

/// The decision by scanning every binding, as the rules say (the image looks up ranges).
fn reference_decision(
    image: &MetadataImage,
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> AclDecision {
    let named: Vec<_> = image
        .acls
        .iter()
        .filter(|b| b.names_resource(resource_type, name))
        .collect();
    let applies = |b: &&&AclBinding| {
        (b.principal == principal || b.principal == "User:*") && (b.host == host || b.host == "*")
    };
    let denied = named
        .iter()
        .filter(applies)
        .any(|b| b.permission == Deny && (b.operation == Op::All || b.operation == operation));
    let allowed = named
        .iter()
        .filter(applies)
        .any(|b| b.permission == Allow && b.operation.allow_implies(operation));
    if denied {
        AclDecision::Denied
    } else if allowed {
        AclDecision::Allowed
    } else if named.is_empty() {
        AclDecision::NoMatchingAcl
    } else {
        AclDecision::Denied
    }
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        "[ab]{1,3}",
        // Multi-byte characters: prefixes must end on character boundaries.
        "[aé]{1,3}",
    ]
}

fn arb_binding() -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(vec![R::Topic, R::Group]),
        arb_name(),
        prop::bool::ANY,
        prop::sample::select(vec!["User:a", "User:b", "User:*"]),
        prop::sample::select(vec!["*", "h1", "h2"]),
        prop::sample::select(Op::ALL.to_vec()),
        prop::bool::ANY,
    )
        .prop_map(
            |(rt, name, prefixed, principal, host, op, allow)| AclBinding {
                resource_type: rt,
                pattern_type: if prefixed && name != "*" {
                    Prefixed
                } else {
                    Literal
                },
                resource_name: name,
                principal: principal.into(),
                host: host.into(),
                operation: op,
                permission: if allow { Allow } else { Deny },
            },
        )
}

proptest! {
    #[test]
    fn range_lookups_decide_as_a_full_scan(
        acls in prop::collection::vec(arb_binding(), 0..24),
        requests in prop::collection::vec(
            (
                prop::sample::select(vec!["User:a", "User:b", "User:c"]),
                prop::sample::select(vec!["h1", "h2"]),
                prop::sample::select(Op::ALL.to_vec()),
                prop::sample::select(vec![R::Topic, R::Group]),
                "[abé*]{1,4}",
            ),
            1..16,
        ),
    ) {
        let mut image = cluster(&[1]);
        prop_assert_eq!(image.apply(&create(&acls)), CommandResult::Done);
        for (principal, host, op, rt, name) in requests {
            prop_assert_eq!(
                image.acl_decision(principal, host, op, rt, &name),
                reference_decision(&image, principal, host, op, rt, &name),
                "{} {} {} {} {}", principal, host, op, rt, name
            );
        }
    }
}
