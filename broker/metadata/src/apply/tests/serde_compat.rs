//! Snapshots and log entries are JSON: old ones still load, the security metadata and its
//! commands round-trip exactly.

use super::*;
use crate::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternFilter, PatternType,
    ResourceType,
};
use crate::quota::{ClientQuotaEntity, QuotaAlteration, QuotaValue};
use crate::security::ScramMechanism;

/// `principal` may read the topics `name` names, from any host.
fn allow_read(principal: &str, name: &str, prefixed: bool) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.into(),
        pattern_type: if prefixed {
            PatternType::Prefixed
        } else {
            PatternType::Literal
        },
        principal: principal.into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    }
}

#[test]
fn an_image_from_before_the_security_metadata_still_loads() {
    let json = r#"{"cluster_id":"c","topics":{"t":{"name":"t",
        "id":"6f1c1a52-8a3e-4a44-9a55-0d3c2b1f0e11","partitions":1,"replication_factor":1,
        "configs":{},"assignments":[{"replicas":[1],"isr":[1],"leader":1,"leader_epoch":2,
        "partition_epoch":3}]}},"next_producer_id":7,
        "brokers":{"1":{"id":1,"incarnation":"00000000-0000-0000-0000-000000000001",
        "host":"b1","port":9092,"rack":null,"fenced":false}}}"#;
    let image: MetadataImage = serde_json::from_str(json).unwrap();
    assert_eq!(image.cluster_id, "c");
    assert_eq!(image.next_producer_id, 7);
    assert_eq!(image.partition("t", 0).unwrap().leader_epoch, 2);
    assert_eq!(image.brokers[&1].host, "b1");
    assert!(image.scram.is_empty());
    assert!(image.acls.is_empty());
    assert!(image.client_quotas.is_empty());
    assert_eq!(image.scram_users().count(), 0);
    assert_eq!(
        image.acl_decision("User:a", "h", AclOperation::Read, ResourceType::Topic, "t"),
        crate::acl::AclDecision::NoMatchingAcl
    );
}

#[test]
fn commands_from_before_the_security_metadata_still_decode_and_encode_the_same() {
    for json in [
        r#"{"DeleteTopic":{"topic":"t"}}"#,
        r#"{"AllocateProducerIds":{"count":5}}"#,
        r#"{"ElectPreferred":{"topic":"t","partition":0}}"#,
    ] {
        let command: MetadataCommand = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&command).unwrap(), json);
    }
    assert_eq!(
        serde_json::to_string(&CommandResult::Done).unwrap(),
        r#""Done""#
    );
}

/// An image holding some of everything the security commands store.
fn secured() -> MetadataImage {
    let mut image = cluster(&[1]);
    for (user, mechanism) in [
        ("alice", ScramMechanism::Sha256),
        ("alice", ScramMechanism::Sha512),
        ("bob", ScramMechanism::Sha512),
    ] {
        let r = image.apply(&MetadataCommand::UpsertScramCredential {
            user: user.into(),
            credential: super::scram::credential(mechanism, 3),
        });
        assert_eq!(r, CommandResult::Done);
    }
    let r = image.apply(&MetadataCommand::CreateAcls {
        acls: vec![
            allow_read("User:alice", "orders-", true),
            allow_read("User:*", "*", false),
        ],
    });
    assert_eq!(r, CommandResult::Done);
    let r = image.apply(&MetadataCommand::AlterClientQuotas {
        entries: vec![
            QuotaAlteration {
                entity: ClientQuotaEntity::user_client_id(Some("alice"), None),
                ops: vec![
                    ("request_percentage".into(), Some(0.1 + 0.2)),
                    ("controller_mutation_rate".into(), Some(1e-7)),
                    ("producer_byte_rate".into(), Some(9_007_199_254_740_992.0)),
                ],
            },
            QuotaAlteration {
                entity: ClientQuotaEntity::ip(None),
                ops: vec![("connection_creation_rate".into(), Some(20.0))],
            },
        ],
    });
    assert_eq!(r, CommandResult::Done);
    image
}

#[test]
fn an_image_with_security_metadata_round_trips_exactly() {
    let image = secured();
    let json = serde_json::to_string(&image).unwrap();
    let back: MetadataImage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, image);
    let rate = back
        .client_quota("alice", "any", "request_percentage")
        .unwrap();
    assert_eq!(
        rate.to_bits(),
        (0.1f64 + 0.2).to_bits(),
        "the very same bits"
    );
    // Quota entities are no JSON map keys: the quotas are a list of pairs, values as text.
    assert!(
        json.contains(r#""client_quotas":[[{"parts":[["User","alice"],["ClientId",null]]},{"controller_mutation_rate":"0.0000001","producer_byte_rate":"9007199254740992","request_percentage":"0.30000000000000004"}]"#),
        "{json}"
    );
    assert!(json.contains(r#""scram":{"alice":{"Sha256":{"#), "{json}");
}

#[test]
fn quota_values_written_as_json_numbers_are_read_too() {
    let json = r#"{"cluster_id":"c","topics":{},"next_producer_id":0,
        "client_quotas":[[{"parts":[["User",null]]},{"producer_byte_rate":1024,"request_percentage":2.5}]]}"#;
    let image: MetadataImage = serde_json::from_str(json).unwrap();
    assert_eq!(
        image.client_quotas[&ClientQuotaEntity::user(None)],
        [
            (
                "producer_byte_rate".to_string(),
                QuotaValue::new(1024.0).unwrap()
            ),
            (
                "request_percentage".to_string(),
                QuotaValue::new(2.5).unwrap()
            ),
        ]
        .into_iter()
        .collect()
    );
    let zero = json.replace("1024", "0");
    let error = serde_json::from_str::<MetadataImage>(&zero).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("a quota value must be above 0, got 0"),
        "{error}"
    );
}

#[test]
fn the_security_commands_and_answers_round_trip() {
    let commands = vec![
        MetadataCommand::UpsertScramCredential {
            user: "alice".into(),
            credential: super::scram::credential(ScramMechanism::Sha512, 9),
        },
        MetadataCommand::DeleteScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha256,
        },
        MetadataCommand::CreateAcls {
            acls: vec![allow_read("User:alice", "orders-", true)],
        },
        MetadataCommand::DeleteAcls {
            filters: vec![
                AclBindingFilter::any(),
                AclBindingFilter {
                    resource_type: Some(ResourceType::Topic),
                    resource_name: Some("orders".into()),
                    pattern: PatternFilter::Match,
                    permission: Some(AclPermission::Deny),
                    ..AclBindingFilter::any()
                },
            ],
        },
        MetadataCommand::AlterClientQuotas {
            entries: vec![QuotaAlteration {
                entity: ClientQuotaEntity::user_client_id(Some("alice"), Some("app")),
                ops: vec![
                    ("request_percentage".into(), Some(0.1 + 0.2)),
                    ("producer_byte_rate".into(), None),
                    // Refused when applied; still the same command on every node.
                    ("consumer_byte_rate".into(), Some(f64::NAN)),
                    ("controller_mutation_rate".into(), Some(f64::NEG_INFINITY)),
                ],
            }],
        },
    ];
    for command in commands {
        let json = serde_json::to_string(&command).unwrap();
        let back: MetadataCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(back, command, "{json}");
    }
    let answers = vec![
        CommandResult::AclsDeleted(vec![vec![allow_read("User:*", "*", false)], vec![]]),
        CommandResult::Rejected(CommandError::UnacceptableCredential("why".into())),
        CommandResult::Rejected(CommandError::ResourceNotFound("what".into())),
    ];
    for answer in answers {
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            serde_json::from_str::<CommandResult>(&json).unwrap(),
            answer
        );
    }
}
