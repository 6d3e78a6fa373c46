//! Arbitrary input never panics the SCRAM steps or the PLAIN parser.

use ironlog_security::plain;
use ironlog_security::{
    credential_from_salted_password, salted_password, ScramClient, ScramMechanism, ScramServer,
};
use proptest::prelude::*;
use std::sync::LazyLock;

static CREDENTIAL: LazyLock<ironlog_security::ScramCredential> = LazyLock::new(|| {
    let salted = salted_password(ScramMechanism::Sha256, b"pencil", b"salt", 4096);
    credential_from_salted_password(ScramMechanism::Sha256, b"salt".to_vec(), &salted, 4096)
});

/// Bytes biased towards SCRAM's alphabet so that parsing gets deep.
fn scram_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[nyp]?,(a=[a-z=2CD3]{0,4})?,(n=[a-z=2CD3]{0,6})?(,r=[!-~]{0,6})?(,[a-z]{1,9}=[a-z]{0,5}){0,3}"
            .prop_map(String::into_bytes),
        "(c=[a-zA-Z0-9+/=]{0,8})?(,r=[!-~]{0,8})?(,[a-z]=[!-~]{0,4}){0,2}(,p=[a-zA-Z0-9+/=]{0,48})?"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_client_first_never_panics(message in scram_like()) {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let _ = server.client_first(&message, |_| Some(CREDENTIAL.clone()));
        let _ = server.client_final(&message);
    }

    #[test]
    fn server_client_final_never_panics(message in scram_like()) {
        let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, "SRV".into());
        server.client_first(b"n,,n=user,r=CLI", |_| Some(CREDENTIAL.clone())).unwrap();
        let _ = server.client_final(&message);
        let _ = server.client_final(&message);
    }

    #[test]
    fn client_steps_never_panic(message in scram_like(), last in scram_like()) {
        let mut client = ScramClient::with_nonce(ScramMechanism::Sha256, "user", "pencil", "CLI".into());
        let _ = client.verify_server_final(&message);
        // Cheap path: most inputs fail before the (costly) key derivation.
        let _ = client.client_final(&message);
        let _ = client.verify_server_final(&last);
    }

    #[test]
    fn plain_parse_never_panics(message in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = plain::parse(&message);
    }

    #[test]
    fn plain_parse_round_trips(user in "[^\0]{1,12}", password in "[^\0]{1,12}", echo in any::<bool>()) {
        let authzid = if echo { user.clone() } else { String::new() };
        let parsed = plain::parse(format!("{authzid}\0{user}\0{password}").as_bytes()).unwrap();
        prop_assert_eq!(parsed.authzid, authzid);
        prop_assert_eq!(parsed.username, user);
        prop_assert_eq!(parsed.password, password);
    }
}
