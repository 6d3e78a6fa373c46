//! SCRAM credentials: stored per user and mechanism, checked before they are stored.

use super::*;
use crate::security::{ScramCredential, ScramMechanism};

/// A well-formed credential for `mechanism`, its bytes filled with `fill`.
pub(super) fn credential(mechanism: ScramMechanism, fill: u8) -> ScramCredential {
    ScramCredential {
        mechanism,
        salt: vec![fill; 16],
        stored_key: vec![fill; mechanism.digest_len()],
        server_key: vec![fill.wrapping_add(1); mechanism.digest_len()],
        iterations: 4096,
    }
}

fn upsert(user: &str, credential: ScramCredential) -> MetadataCommand {
    MetadataCommand::UpsertScramCredential {
        user: user.into(),
        credential,
    }
}

fn delete(user: &str, mechanism: ScramMechanism) -> MetadataCommand {
    MetadataCommand::DeleteScramCredential {
        user: user.into(),
        mechanism,
    }
}

use ScramMechanism::{Sha256, Sha512};

#[test]
fn credentials_are_stored_per_user_and_mechanism_and_replaced_by_an_upsert() {
    let mut image = cluster(&[1]);
    assert_eq!(
        image.apply(&upsert("bob", credential(Sha512, 1))),
        CommandResult::Done
    );
    assert_eq!(
        image.apply(&upsert("alice", credential(Sha512, 2))),
        CommandResult::Done
    );
    assert_eq!(
        image.apply(&upsert("alice", credential(Sha256, 3))),
        CommandResult::Done
    );

    assert_eq!(
        image.scram_users().collect::<Vec<_>>(),
        vec!["alice", "bob"]
    );
    assert_eq!(
        image
            .scram_credentials("alice")
            .cloned()
            .collect::<Vec<_>>(),
        vec![credential(Sha256, 3), credential(Sha512, 2)],
        "in mechanism order"
    );
    assert_eq!(
        image.scram_credential("bob", Sha512),
        Some(&credential(Sha512, 1))
    );
    assert_eq!(image.scram_credential("bob", Sha256), None);
    assert_eq!(image.scram_credential("carol", Sha256), None);
    assert_eq!(image.scram_credentials("carol").count(), 0);

    let replacement = ScramCredential {
        iterations: 16384,
        ..credential(Sha512, 9)
    };
    assert_eq!(
        image.apply(&upsert("alice", replacement.clone())),
        CommandResult::Done
    );
    assert_eq!(image.scram_credential("alice", Sha512), Some(&replacement));
    assert_eq!(
        image.scram_credential("alice", Sha256),
        Some(&credential(Sha256, 3))
    );
}

#[test]
fn unacceptable_credentials_are_refused_and_change_nothing() {
    let mut image = cluster(&[1]);
    image.apply(&upsert("alice", credential(Sha256, 1)));
    let before = image.clone();
    let with = |f: fn(&mut ScramCredential)| {
        let mut c = credential(Sha256, 7);
        f(&mut c);
        c
    };
    let cases: Vec<(&str, ScramCredential, &str)> = vec![
        ("", credential(Sha256, 7), "the user name is empty"),
        (
            "alice",
            with(|c| c.iterations = 4095),
            "SCRAM-SHA-256 takes 4096 to 16384 iterations, got 4095",
        ),
        (
            "alice",
            with(|c| c.iterations = 16385),
            "SCRAM-SHA-256 takes 4096 to 16384 iterations, got 16385",
        ),
        (
            "alice",
            with(|c| c.iterations = 0),
            "SCRAM-SHA-256 takes 4096 to 16384 iterations, got 0",
        ),
        (
            "alice",
            with(|c| c.salt.clear()),
            "the SCRAM-SHA-256 salt is empty",
        ),
        (
            "alice",
            with(|c| {
                c.stored_key.pop();
            }),
            "the SCRAM-SHA-256 stored key is 31 bytes long, not 32",
        ),
        (
            "alice",
            with(|c| c.server_key = vec![0; 64]),
            "the SCRAM-SHA-256 server key is 64 bytes long, not 32",
        ),
        (
            "alice",
            // SHA-256 sized keys filed as SHA-512.
            with(|c| c.mechanism = Sha512),
            "the SCRAM-SHA-512 stored key is 32 bytes long, not 64",
        ),
    ];
    for (user, credential, message) in cases {
        assert_eq!(
            image.apply(&upsert(user, credential)),
            CommandResult::Rejected(CommandError::UnacceptableCredential(message.into())),
            "{message}"
        );
        assert_eq!(image, before, "{message}: unchanged");
    }
    assert_eq!(
        CommandError::UnacceptableCredential("the user name is empty".into()).to_string(),
        "unacceptable credential: the user name is empty"
    );

    // The bounds themselves are accepted.
    for iterations in [4096, 16384] {
        let c = ScramCredential {
            iterations,
            ..credential(Sha512, 5)
        };
        assert_eq!(image.apply(&upsert("bob", c.clone())), CommandResult::Done);
        assert_eq!(image.scram_credential("bob", Sha512), Some(&c));
    }
}

#[test]
fn deleting_a_credential_forgets_the_user_with_the_last_one() {
    let mut image = cluster(&[1]);
    image.apply(&upsert("alice", credential(Sha256, 1)));
    image.apply(&upsert("alice", credential(Sha512, 2)));
    image.apply(&upsert("bob", credential(Sha256, 3)));

    assert_eq!(image.apply(&delete("alice", Sha256)), CommandResult::Done);
    assert_eq!(
        image
            .scram_credentials("alice")
            .cloned()
            .collect::<Vec<_>>(),
        vec![credential(Sha512, 2)]
    );
    assert_eq!(
        image.apply(&delete("alice", Sha256)),
        CommandResult::Rejected(CommandError::ResourceNotFound(
            "user \"alice\" has no SCRAM-SHA-256 credential".into()
        )),
        "already gone"
    );
    assert_eq!(image.apply(&delete("alice", Sha512)), CommandResult::Done);
    assert_eq!(image.scram_users().collect::<Vec<_>>(), vec!["bob"]);
    assert!(!image.scram.contains_key("alice"), "no empty entry is left");

    let before = image.clone();
    assert_eq!(
        image.apply(&delete("carol", Sha512)),
        CommandResult::Rejected(CommandError::ResourceNotFound(
            "user \"carol\" has no SCRAM-SHA-512 credential".into()
        ))
    );
    assert_eq!(
        image.apply(&delete("", Sha512)),
        CommandResult::Rejected(CommandError::UnacceptableCredential(
            "the user name is empty".into()
        ))
    );
    assert_eq!(image, before);
}
