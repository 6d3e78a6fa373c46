//! The operator's real admin path (`admin::kafka`, over `ironlog-client`) for users against a
//! real, secured broker: SCRAM credentials, ACLs and user quotas through the `Admin` seam,
//! logged in as a super user with SCRAM-SHA-512 over SASL_PLAINTEXT ([`AdminTarget`]).
//!
//! The broker is the `ironlog` binary (the operator never links broker code), started as
//! client/tests/broker.rs starts it, with a PLAINTEXT and a SASL_PLAINTEXT listener, the
//! ACL authorizer and `User:admin` (created with `--add-scram`) as its super user. Set
//! `IRONLOG_BIN` to the binary (the workspace test script does); without it every test
//! fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ironlog_client::Client;
use ironlog_operator::admin::kafka::{client_config, KafkaConnector};
use ironlog_operator::admin::{
    AclBinding, AclOperation, AclPermission, Admin, AdminConnector, AdminError, AdminTarget,
    PatternType, ResourceType,
};

const ADMIN_PASSWORD: &str = "admin-secret";

#[path = "../../client/tests/support/broker_process.rs"]
mod broker_process;

use broker_process::{broker_bin, free_port, BrokerProcess};

/// A secured broker: its SASL_PLAINTEXT listener (`127.0.0.1:port`) next to a PLAINTEXT one.
struct SecureBroker {
    process: BrokerProcess,
    sasl: String,
}

impl SecureBroker {
    /// Starts the broker and waits until the admin can log in (the `--add-scram` user is
    /// created once the broker's metadata quorum is up, a moment after it listens).
    async fn start(bin: PathBuf) -> (SecureBroker, Box<dyn Admin>) {
        let internal = format!("127.0.0.1:{}", free_port());
        let sasl = format!("127.0.0.1:{}", free_port());
        let listeners = format!("INTERNAL://{internal},CLIENT://{sasl}");
        let admin = format!("SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}]");
        let process = BrokerProcess::start(
            &bin,
            &[
                "--listeners",
                &listeners,
                "--listener-security-protocol-map",
                "INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT",
                "--sasl-enabled-mechanisms",
                "SCRAM-SHA-512",
                "--authorizer",
                "acl",
                "--super-users",
                "User:admin",
            ],
            // Through the environment: command lines are visible to other local users.
            &[("IRONLOG_ADD_SCRAM", &admin)],
        );
        let broker = SecureBroker { process, sasl };
        let target = broker.login("admin", ADMIN_PASSWORD);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = match KafkaConnector.connect(&target).await {
                Ok(admin) => admin.metadata().await.map(|_| admin),
                Err(e) => Err(e),
            };
            match attempt {
                Ok(admin) => return (broker, admin),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!(
                    "broker at {target} did not let the admin in: {e}\nlog:\n{}",
                    broker.log()
                ),
            }
        }
    }

    fn login(&self, user: &str, password: &str) -> AdminTarget {
        AdminTarget::scram(self.sasl.clone(), user, password)
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Whether `user` can log in with `password` (and then read metadata).
    async fn logs_in(&self, user: &str, password: &str) -> Result<(), AdminError> {
        KafkaConnector
            .connect(&self.login(user, password))
            .await?
            .metadata()
            .await
            .map(|_| ())
    }
}

#[tokio::test]
async fn scram_users_through_the_admin_seam() {
    let bin = broker_bin("scram_users_through_the_admin_seam");
    let (broker, admin) = SecureBroker::start(bin).await;

    assert!(admin.has_scram_user("admin").await.unwrap());
    assert!(!admin.has_scram_user("alice").await.unwrap());
    admin
        .delete_scram_user("alice")
        .await
        .expect("deleting a credential that does not exist is no error");

    admin
        .upsert_scram_user("alice", "first-password")
        .await
        .expect("create alice");
    assert!(admin.has_scram_user("alice").await.unwrap());
    broker
        .logs_in("alice", "first-password")
        .await
        .expect("alice logs in with her password");
    let wrong = broker
        .logs_in("alice", "not-her-password")
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("SASL authentication"), "{wrong}");

    admin
        .upsert_scram_user("alice", "second-password")
        .await
        .expect("replace alice's password");
    broker
        .logs_in("alice", "second-password")
        .await
        .expect("alice logs in with her new password");
    let old = broker.logs_in("alice", "first-password").await.unwrap_err();
    assert!(old.to_string().contains("SASL authentication"), "{old}");

    admin
        .delete_scram_user("alice")
        .await
        .expect("delete alice");
    assert!(!admin.has_scram_user("alice").await.unwrap());
    let gone = broker
        .logs_in("alice", "second-password")
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("SASL authentication"), "{gone}");
    admin
        .delete_scram_user("alice")
        .await
        .expect("deleting again is no error");
    assert!(
        admin.has_scram_user("admin").await.unwrap(),
        "only alice was deleted"
    );
}

fn binding(
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    operation: AclOperation,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission: AclPermission::Allow,
    }
}

#[tokio::test]
async fn acls_through_the_admin_seam() {
    let bin = broker_bin("acls_through_the_admin_seam");
    let (_broker, admin) = SecureBroker::start(bin).await;
    use AclOperation::{Describe, Read, Write};
    use PatternType::{Literal, Prefixed};
    use ResourceType::{Group, Topic};

    assert_eq!(admin.describe_acls("User:alice").await.unwrap(), vec![]);
    let read_orders = binding("User:alice", Topic, "orders", Literal, Read);
    let write_orders_prefix = binding("User:alice", Topic, "orders-", Prefixed, Write);
    let read_group = binding("User:alice", Group, "app", Literal, Read);
    let bob_reads_orders = binding("User:bob", Topic, "orders", Literal, Read);
    let alices_host = AclBinding {
        host: "10.0.0.7".into(),
        ..binding("User:alice", Topic, "orders", Literal, Describe)
    };
    admin
        .create_acls(&[
            read_orders.clone(),
            write_orders_prefix.clone(),
            read_group.clone(),
            bob_reads_orders.clone(),
            alices_host.clone(),
        ])
        .await
        .expect("create ACLs");

    let mut alices = vec![
        read_orders.clone(),
        write_orders_prefix.clone(),
        read_group.clone(),
        alices_host.clone(),
    ];
    alices.sort();
    assert_eq!(admin.describe_acls("User:alice").await.unwrap(), alices);
    assert_eq!(
        admin.describe_acls("User:bob").await.unwrap(),
        vec![bob_reads_orders.clone()]
    );
    assert_eq!(
        admin.describe_acls("User:ali").await.unwrap(),
        vec![],
        "principals match exactly"
    );
    // Re-creating a binding changes nothing.
    admin
        .create_acls(std::slice::from_ref(&read_orders))
        .await
        .unwrap();
    assert_eq!(admin.describe_acls("User:alice").await.unwrap(), alices);

    // One exact filter per binding: bob's binding on the same topic, alice's prefixed one
    // and her binding for one host stay.
    admin
        .delete_acls(&[read_orders.clone(), read_group.clone()])
        .await
        .expect("delete two of alice's ACLs");
    let mut left = vec![write_orders_prefix.clone(), alices_host.clone()];
    left.sort();
    assert_eq!(admin.describe_acls("User:alice").await.unwrap(), left);
    assert_eq!(
        admin.describe_acls("User:bob").await.unwrap(),
        vec![bob_reads_orders.clone()]
    );

    // A binding that does not exist is no error; a filter value is refused, not widened.
    admin
        .delete_acls(std::slice::from_ref(&read_orders))
        .await
        .expect("deleting a missing binding");
    let wildcard = AclBinding {
        pattern_type: PatternType::Match,
        ..write_orders_prefix.clone()
    };
    let refused = admin.delete_acls(&[wildcard]).await.unwrap_err();
    assert!(matches!(refused, AdminError::Other(_)), "{refused}");
    let any_operation = AclBinding {
        operation: AclOperation::Any,
        ..alices_host.clone()
    };
    assert!(admin.delete_acls(&[any_operation]).await.is_err());
    assert_eq!(admin.describe_acls("User:alice").await.unwrap(), left);

    // The first binding the broker refuses is the error.
    let no_type = binding("alice", Topic, "t", Literal, Read);
    let refused = admin
        .create_acls(&[binding("User:carol", Topic, "t", Literal, Read), no_type])
        .await
        .unwrap_err();
    assert_eq!(refused.kafka_code(), Some(42), "{refused}");
    assert!(refused.to_string().contains("INVALID_REQUEST"), "{refused}");
}

fn quotas(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
    entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn user_quotas_through_the_admin_seam() {
    let bin = broker_bin("user_quotas_through_the_admin_seam");
    let (broker, admin) = SecureBroker::start(bin).await;
    assert_eq!(
        admin.describe_user_quotas("alice").await.unwrap(),
        quotas(&[])
    );

    let set = quotas(&[
        ("producer_byte_rate", 1_048_576.0),
        ("consumer_byte_rate", 2_097_152.0),
        ("request_percentage", 25.5),
    ]);
    admin
        .alter_user_quotas("alice", &set, &[])
        .await
        .expect("set alice's quotas");
    assert_eq!(admin.describe_user_quotas("alice").await.unwrap(), set);

    // Quotas of other entities that name alice, or none, are not hers: set them with the
    // client library, logged in the way the operator is.
    let client = Client::connect(client_config(&broker.login("admin", ADMIN_PASSWORD)).unwrap())
        .await
        .expect("client logged in as admin");
    let alice_app = vec![
        ("user".to_string(), Some("alice".to_string())),
        ("client-id".to_string(), Some("app".to_string())),
    ];
    client
        .alter_client_quotas(&alice_app, &quotas(&[("producer_byte_rate", 1024.0)]), &[])
        .await
        .unwrap();
    client
        .alter_client_quotas(
            &[("user".to_string(), None)],
            &quotas(&[("consumer_byte_rate", 4096.0)]),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(admin.describe_user_quotas("alice").await.unwrap(), set);
    assert_eq!(
        admin.describe_user_quotas("bob").await.unwrap(),
        quotas(&[])
    );

    admin
        .alter_user_quotas(
            "alice",
            &quotas(&[("request_percentage", 50.0)]),
            &["consumer_byte_rate".to_string()],
        )
        .await
        .expect("change one of alice's quotas and remove another");
    assert_eq!(
        admin.describe_user_quotas("alice").await.unwrap(),
        quotas(&[
            ("producer_byte_rate", 1_048_576.0),
            ("request_percentage", 50.0)
        ])
    );

    let refused = admin
        .alter_user_quotas("alice", &quotas(&[("producer_byte_rate", -1.0)]), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.kafka_code(), Some(42), "{refused}");

    admin
        .alter_user_quotas(
            "alice",
            &BTreeMap::new(),
            &[
                "producer_byte_rate".to_string(),
                "request_percentage".to_string(),
            ],
        )
        .await
        .expect("remove alice's quotas");
    assert_eq!(
        admin.describe_user_quotas("alice").await.unwrap(),
        quotas(&[])
    );
    // The neighbours are untouched.
    let described = client
        .describe_client_quotas(&alice_app, true)
        .await
        .unwrap();
    assert_eq!(described.len(), 1, "{described:?}");
    assert_eq!(described[0].1, quotas(&[("producer_byte_rate", 1024.0)]));
}
