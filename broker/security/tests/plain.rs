//! SASL PLAIN parsing and password checks against the shared SCRAM credential store.

use ironlog_security::plain::{parse, verify_password};
use ironlog_security::{
    new_credential, PlainError, PlainMessage, ScramCredential, ScramMechanism, MIN_ITERATIONS,
};

fn message(authzid: &str, username: &str, password: &str) -> PlainMessage {
    PlainMessage {
        authzid: authzid.into(),
        username: username.into(),
        password: password.into(),
    }
}

#[test]
fn parses_valid_messages() {
    assert_eq!(
        parse(b"\0alice\0secret"),
        Ok(message("", "alice", "secret"))
    );
    assert_eq!(
        parse(b"alice\0alice\0secret"),
        Ok(message("alice", "alice", "secret"))
    );
    assert_eq!(
        parse("\0üser\0pâss word".as_bytes()),
        Ok(message("", "üser", "pâss word"))
    );
}

#[test]
fn refuses_invalid_messages() {
    let cases: [(&[u8], PlainError); 9] = [
        (b"", PlainError::FieldCount),
        (b"alice", PlainError::FieldCount),
        (b"\0alice", PlainError::FieldCount),
        (b"\0alice\0secret\0", PlainError::FieldCount),
        (b"\0\0secret", PlainError::EmptyUsername),
        (b"\0alice\0", PlainError::EmptyPassword),
        (b"admin\0alice\0secret", PlainError::AuthzidMismatch),
        (b"\0al\xffice\0secret", PlainError::NotUtf8),
        (b"\0\0", PlainError::EmptyUsername),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            parse(bytes),
            Err(expected),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        PlainError::AuthzidMismatch.to_string(),
        "SASL PLAIN authorization identity differs from the username"
    );
}

#[test]
fn debug_hides_the_password() {
    let shown = format!("{:?}", parse(b"\0alice\0hunter2").unwrap());
    assert_eq!(
        shown,
        "PlainMessage { authzid: \"\", username: \"alice\", password: \"<redacted>\" }"
    );
}

#[test]
fn verify_password_against_scram_credentials() {
    for mechanism in ScramMechanism::ALL {
        let credential = new_credential(mechanism, "correct horse", MIN_ITERATIONS);
        assert!(
            verify_password([&credential], "correct horse"),
            "{mechanism:?}"
        );
        assert!(
            !verify_password([&credential], "correct horsE"),
            "{mechanism:?}"
        );
        assert!(!verify_password([&credential], ""), "{mechanism:?}");
    }
}

#[test]
fn verify_password_matches_any_credential() {
    let sha256 = new_credential(ScramMechanism::Sha256, "old", MIN_ITERATIONS);
    let sha512 = new_credential(ScramMechanism::Sha512, "new", MIN_ITERATIONS + 1);
    let both: Vec<ScramCredential> = vec![sha256, sha512];
    assert!(verify_password(&both, "old"));
    assert!(verify_password(&both, "new"));
    assert!(!verify_password(&both, "neither"));
    assert!(!verify_password(&Vec::<ScramCredential>::new(), "old"));
    let mut zero = both[0].clone();
    zero.iterations = 0;
    assert!(!verify_password([&zero], "old"));
}
