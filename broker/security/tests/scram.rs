//! SCRAM exchanges through the public API: the RFC 7677 vector, an independently computed
//! SCRAM-SHA-512 vector, round trips and every refusal a broker must tell apart.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ironlog_security::scram::{decode_username, encode_username};
use ironlog_security::{
    credential_from_salted_password, new_credential, salted_password, ScramClient, ScramCredential,
    ScramError, ScramMechanism, ScramServer, MIN_ITERATIONS,
};

const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_credential() -> ScramCredential {
    let salt = B64.decode(RFC_SALT).unwrap();
    let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
    credential_from_salted_password(ScramMechanism::Sha256, salt, &salted, 4096)
}

#[test]
fn rfc7677_credential_keys() {
    let credential = rfc_credential();
    assert_eq!(credential.mechanism, ScramMechanism::Sha256);
    assert_eq!(credential.iterations, 4096);
    assert_eq!(B64.encode(&credential.salt), RFC_SALT);
    assert_eq!(
        B64.encode(&credential.stored_key),
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
    );
    assert_eq!(
        B64.encode(&credential.server_key),
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    );
}

#[test]
fn rfc7677_vector_server_side() {
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE.into());
    let mut looked_up = None;
    let server_first = server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |user| {
            looked_up = Some(user.to_string());
            Some(rfc_credential())
        })
        .unwrap();
    assert_eq!(looked_up.as_deref(), Some("user"));
    assert_eq!(String::from_utf8(server_first).unwrap(), RFC_SERVER_FIRST);
    assert!(!server.is_complete());
    let (server_final, user) = server.client_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(server_final).unwrap(), RFC_SERVER_FINAL);
    assert_eq!(user, "user");
    assert!(server.is_complete());
}

#[test]
fn rfc7677_vector_client_side() {
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        "pencil",
        RFC_CLIENT_NONCE.into(),
    );
    assert_eq!(client.client_first(), RFC_CLIENT_FIRST.as_bytes());
    let client_final = client.client_final(RFC_SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    client
        .verify_server_final(RFC_SERVER_FINAL.as_bytes())
        .unwrap();
    assert_eq!(
        client.verify_server_final(b"v=AAAAZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
        Err(ScramError::ServerSignatureMismatch)
    );
    assert_eq!(
        client.verify_server_final(b"e=invalid-proof"),
        Err(ScramError::ServerError("invalid-proof".into()))
    );
    assert!(matches!(
        client.verify_server_final(b"x=1"),
        Err(ScramError::Malformed(_))
    ));
}

/// The same exchange with SHA-512, expected values computed with Python's hashlib/hmac.
#[test]
fn sha512_vector_both_sides() {
    let salt_b64 = "QSXCR+Q6sek8bf92";
    let salt = B64.decode(salt_b64).unwrap();
    let salted = salted_password(ScramMechanism::Sha512, b"pencil", &salt, 4096);
    let credential = credential_from_salted_password(ScramMechanism::Sha512, salt, &salted, 4096);
    assert_eq!(
        B64.encode(&credential.stored_key),
        "Lm7w6zPGAx+UoahlEm1whIN7PS1KGU+9+V5PyudK6c/mWVVtkXSCpVPmUKQLYDKR7v0uSkxrBzPm7HuSwZ/ytw=="
    );
    assert_eq!(
        B64.encode(&credential.server_key),
        "b/Ph5kGCpfdw2MyLh0C8l10iiFENloZLKPiJIHv57J3BRD9++4RvoYjTKhOehyHgJS/nsxnNB17UKgNU7nRy6g=="
    );
    let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,\
        p=zK0GyUU4eiPbsDgyUwFagtyp/zF/V83jraxOLQaH1XgAM2FVITQxBKmhgGpK17k49UtWj5xpeqiVM2Ty3cGCBA==";
    let server_final = "v=8VgYFbxiFQ4EiaPBxycccAcyU+NQUbcRg9jwYx3pj5Hy1Yhl044ENC6evNQCgoz/ZU2cnnYVHXqdF4RJHQU2rw==";

    let mut server = ScramServer::with_nonce(ScramMechanism::Sha512, "3rfcNHYJY1ZVvWVs7j".into());
    let server_first = server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(credential.clone()))
        .unwrap();
    assert_eq!(
        server_first,
        b"r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    );
    let (final_message, user) = server.client_final(client_final.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(final_message).unwrap(), server_final);
    assert_eq!(user, "user");

    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha512,
        "user",
        "pencil",
        RFC_CLIENT_NONCE.into(),
    );
    assert_eq!(
        String::from_utf8(client.client_final(&server_first).unwrap()).unwrap(),
        client_final
    );
    client.verify_server_final(server_final.as_bytes()).unwrap();
}

/// Runs a whole exchange; returns the error of the first failing step.
fn exchange(
    client: &mut ScramClient,
    server: &mut ScramServer,
    credential: &ScramCredential,
) -> Result<String, ScramError> {
    let server_first = server.client_first(&client.client_first(), |_| Some(credential.clone()))?;
    let client_final = client.client_final(&server_first)?;
    let (server_final, user) = server.client_final(&client_final)?;
    client.verify_server_final(&server_final)?;
    Ok(user)
}

#[test]
fn round_trips_for_both_mechanisms() {
    for mechanism in ScramMechanism::ALL {
        let credential = new_credential(mechanism, "s3cr3t-ü", MIN_ITERATIONS);
        assert_eq!(credential.mechanism, mechanism);
        assert_eq!(credential.salt.len(), 32);
        assert_eq!(credential.stored_key.len(), mechanism.digest_len());
        assert_eq!(credential.server_key.len(), mechanism.digest_len());
        let mut client = ScramClient::new(mechanism, "alice", "s3cr3t-ü");
        let mut server = ScramServer::new(mechanism);
        assert_eq!(
            exchange(&mut client, &mut server, &credential),
            Ok("alice".to_string())
        );
        assert!(server.is_complete());
    }
}

#[test]
fn salts_and_nonces_are_random() {
    let a = new_credential(ScramMechanism::Sha256, "pw", MIN_ITERATIONS);
    let b = new_credential(ScramMechanism::Sha256, "pw", MIN_ITERATIONS);
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.stored_key, b.stored_key);
    let mut s1 = ScramServer::new(ScramMechanism::Sha256);
    let mut s2 = ScramServer::new(ScramMechanism::Sha256);
    let f1 = s1
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(a.clone()))
        .unwrap();
    let f2 = s2
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(a.clone()))
        .unwrap();
    assert_ne!(f1, f2);
    let nonce = std::str::from_utf8(&f1).unwrap().split(',').next().unwrap();
    let server_part = nonce.strip_prefix("r=rOprNGfwEbeRWgbNEkqO").unwrap();
    assert!(server_part.len() >= 24, "{server_part}");
    assert!(server_part
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b','));
}

#[test]
fn wrong_password_is_invalid_credentials_at_client_final() {
    for mechanism in ScramMechanism::ALL {
        let credential = new_credential(mechanism, "right", MIN_ITERATIONS);
        let mut client = ScramClient::new(mechanism, "alice", "wrong");
        let mut server = ScramServer::new(mechanism);
        let server_first = server
            .client_first(&client.client_first(), |_| Some(credential.clone()))
            .unwrap();
        let client_final = client.client_final(&server_first).unwrap();
        assert_eq!(
            server.client_final(&client_final),
            Err(ScramError::InvalidCredentials)
        );
        assert!(!server.is_complete());
        // The exchange is over.
        assert_eq!(
            server.client_final(&client_final),
            Err(ScramError::OutOfOrder("exchange already failed"))
        );
    }
}

#[test]
fn tampered_proof_is_invalid_credentials() {
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE.into());
    server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential()))
        .unwrap();
    let tampered = RFC_CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
    assert_eq!(
        server.client_final(tampered.as_bytes()),
        Err(ScramError::InvalidCredentials)
    );
}

#[test]
fn unknown_user_fails_at_client_first() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let mut asked = String::new();
    let result = server.client_first(b"n,,n=mallory,r=abc", |user| {
        asked = user.to_string();
        None
    });
    assert_eq!(result, Err(ScramError::UnknownUser));
    assert_eq!(asked, "mallory");
    assert_eq!(ScramError::UnknownUser.to_string(), "unknown SCRAM user");
    assert_eq!(
        server.client_final(RFC_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder("exchange already failed"))
    );
}

#[test]
fn credential_of_another_mechanism_is_refused() {
    let credential = new_credential(ScramMechanism::Sha512, "pw", MIN_ITERATIONS);
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let error = server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(credential))
        .unwrap_err();
    assert_eq!(
        error,
        ScramError::MechanismMismatch {
            exchange: "SCRAM-SHA-256",
            credential: "SCRAM-SHA-512"
        }
    );
    assert_eq!(
        error.to_string(),
        "SCRAM mechanism mismatch: the exchange uses SCRAM-SHA-256 but the credential is for SCRAM-SHA-512"
    );
}

/// A server after a successful client_first of the RFC vector.
fn rfc_server_after_first() -> ScramServer {
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE.into());
    server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential()))
        .unwrap();
    server
}

#[test]
fn nonce_mismatch_is_refused() {
    let mut server = rfc_server_after_first();
    let wrong = RFC_CLIENT_FINAL.replace("hNlF$k0,", "hNlF$k1,");
    assert_eq!(
        server.client_final(wrong.as_bytes()),
        Err(ScramError::Malformed("nonce does not match"))
    );
    // Only the client's part of the nonce is not enough either.
    let mut server = rfc_server_after_first();
    let short = RFC_CLIENT_FINAL.replace(RFC_SERVER_NONCE, "");
    assert_eq!(
        server.client_final(short.as_bytes()),
        Err(ScramError::Malformed("nonce does not match"))
    );

    // Client side: a server nonce that does not extend ours.
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        "pencil",
        RFC_CLIENT_NONCE.into(),
    );
    assert_eq!(
        client.client_final(b"r=XOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
        Err(ScramError::Malformed(
            "server nonce does not extend the client nonce"
        ))
    );
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        "pencil",
        RFC_CLIENT_NONCE.into(),
    );
    assert_eq!(
        client.client_final(b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
        Err(ScramError::Malformed(
            "server nonce does not extend the client nonce"
        ))
    );
}

#[test]
fn bad_channel_binding_attribute_is_refused() {
    let rest = RFC_CLIENT_FINAL.strip_prefix("c=biws").unwrap();
    // base64 of "y,,", of "n,a=user,", not base64, missing.
    for (c, expected) in [
        ("c=eSws", "channel binding does not match the GS2 header"),
        (
            "c=bixhPXVzZXIs",
            "channel binding does not match the GS2 header",
        ),
        ("c=biws=", "channel binding is not base64"),
        ("c=!!", "channel binding is not base64"),
        ("x=biws", "missing channel binding attribute"),
    ] {
        let mut server = rfc_server_after_first();
        let message = format!("{c}{rest}");
        assert_eq!(
            server.client_final(message.as_bytes()),
            Err(ScramError::Malformed(expected)),
            "{c}"
        );
    }
    // With `y,,` the client must send base64("y,,").
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE.into());
    server
        .client_first(b"y,,n=user,r=rOprNGfwEbeRWgbNEkqO", |_| {
            Some(rfc_credential())
        })
        .unwrap();
    assert_eq!(
        server.client_final(RFC_CLIENT_FINAL.as_bytes()),
        Err(ScramError::Malformed(
            "channel binding does not match the GS2 header"
        ))
    );
}

/// An exchange for `bob` (password `pw`, client nonce `CLI`, server nonce `SRV`) with a
/// client written out by hand: `client_first` as sent, then `without_proof` with a proof
/// computed independently of the crate's client. The server's answer to the final message.
fn hand_made_exchange(
    mechanism: ScramMechanism,
    client_first: &str,
    without_proof: &str,
) -> Result<(Vec<u8>, String), ScramError> {
    let credential = new_credential(mechanism, "pw", MIN_ITERATIONS);
    let salted = salted_password(mechanism, b"pw", &credential.salt, credential.iterations);
    let mut server = ScramServer::with_nonce(mechanism, "SRV".into());
    let server_first = server
        .client_first(client_first.as_bytes(), |_| Some(credential.clone()))
        .unwrap();
    let server_first = String::from_utf8(server_first).unwrap();
    let bare = &client_first[client_first.find("n=").unwrap()..];
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let proof = proof_for(mechanism, &salted, &auth_message);
    server.client_final(format!("{without_proof},p={proof}").as_bytes())
}

#[test]
fn y_flag_exchange_succeeds_with_matching_binding() {
    let (_, user) =
        hand_made_exchange(ScramMechanism::Sha256, "y,,n=bob,r=CLI", "c=eSws,r=CLISRV").unwrap();
    assert_eq!(user, "bob");
}

#[test]
fn librdkafka_2_0_repeated_client_nonce_is_accepted_as_kafka_does() {
    // librdkafka before 2.2 writes its nonce again before the combined one; Kafka accepts a
    // nonce that ends with the combined nonce, and the proof covers the message as sent.
    let (_, user) = hand_made_exchange(
        ScramMechanism::Sha512,
        "n,,n=bob,r=CLI",
        "c=biws,r=CLICLISRV",
    )
    .unwrap();
    assert_eq!(user, "bob");
    // A nonce that merely contains the combined one is still refused.
    assert_eq!(
        hand_made_exchange(ScramMechanism::Sha512, "n,,n=bob,r=CLI", "c=biws,r=CLISRVX"),
        Err(ScramError::Malformed("nonce does not match"))
    );
}

/// A client proof computed with ring directly, independent of the crate's client.
fn proof_for(mechanism: ScramMechanism, salted: &[u8], auth_message: &str) -> String {
    use ring::{digest, hmac};
    let (h, d) = match mechanism {
        ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
        ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
    };
    let client_key = hmac::sign(&hmac::Key::new(h, salted), b"Client Key");
    let stored_key = digest::digest(d, client_key.as_ref());
    let signature = hmac::sign(
        &hmac::Key::new(h, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    B64.encode(proof)
}

#[test]
fn channel_binding_is_refused() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let error = server
        .client_first(b"p=tls-server-end-point,,n=user,r=abc", |_| {
            panic!("no lookup for a refused message")
        })
        .unwrap_err();
    assert_eq!(error, ScramError::Unsupported("channel binding"));
    assert_eq!(
        error.to_string(),
        "unsupported SCRAM feature: channel binding"
    );
}

#[test]
fn tokenauth_is_refused_and_unknown_extensions_ignored() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let error = server
        .client_first(
            b"n,,n=user,r=abc,tokenauth=true",
            |_| Some(rfc_credential()),
        )
        .unwrap_err();
    assert_eq!(
        error,
        ScramError::Unsupported("delegation token authentication (tokenauth)")
    );
    assert_eq!(
        error.to_string(),
        "unsupported SCRAM feature: delegation token authentication (tokenauth)"
    );
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert!(server
        .client_first(
            b"n,,n=user,r=abc,tokenauth=TRUE",
            |_| Some(rfc_credential())
        )
        .is_err());

    // Unknown extensions (and tokenauth=false) are ignored, and part of the AuthMessage.
    let credential = new_credential(ScramMechanism::Sha256, "pw", MIN_ITERATIONS);
    let salted = salted_password(
        ScramMechanism::Sha256,
        b"pw",
        &credential.salt,
        credential.iterations,
    );
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, "SRV".into());
    let bare = "n=user,r=CLI,tokenauth=false,foo=bar";
    let server_first = server
        .client_first(format!("n,,{bare}").as_bytes(), |_| {
            Some(credential.clone())
        })
        .unwrap();
    let server_first = String::from_utf8(server_first).unwrap();
    assert_eq!(
        server_first,
        format!(
            "r=CLISRV,s={},i={MIN_ITERATIONS}",
            B64.encode(&credential.salt)
        )
    );
    let without_proof = "c=biws,r=CLISRV,ext=1";
    let proof = proof_for(
        ScramMechanism::Sha256,
        &salted,
        &format!("{bare},{server_first},{without_proof}"),
    );
    let (_, user) = server
        .client_final(format!("{without_proof},p={proof}").as_bytes())
        .unwrap();
    assert_eq!(user, "user");
}

#[test]
fn usernames_are_escaped_and_decoded() {
    assert_eq!(encode_username("a,b=c"), "a=2Cb=3Dc");
    assert_eq!(decode_username("a=2Cb=3Dc").unwrap(), "a,b=c");

    let credential = new_credential(ScramMechanism::Sha512, "pw", MIN_ITERATIONS);
    let mut client = ScramClient::new(ScramMechanism::Sha512, "a,b=c", "pw");
    let first = String::from_utf8(client.client_first()).unwrap();
    assert!(first.starts_with("n,,n=a=2Cb=3Dc,r="), "{first}");
    let mut server = ScramServer::new(ScramMechanism::Sha512);
    let mut asked = String::new();
    let server_first = server
        .client_first(first.as_bytes(), |user| {
            asked = user.to_string();
            Some(credential.clone())
        })
        .unwrap();
    assert_eq!(asked, "a,b=c");
    let client_final = client.client_final(&server_first).unwrap();
    let (server_final, user) = server.client_final(&client_final).unwrap();
    assert_eq!(user, "a,b=c");
    client.verify_server_final(&server_final).unwrap();

    for bad in ["n,,n=a=2cb,r=abc", "n,,n=a=,r=abc", "n,,n=a=41,r=abc"] {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert_eq!(
            server.client_first(bad.as_bytes(), |_| Some(rfc_credential())),
            Err(ScramError::Malformed("invalid '=' escape in username")),
            "{bad}"
        );
    }
}

#[test]
fn authzid_must_be_the_username() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert!(server
        .client_first(b"n,a=user,n=user,r=abc", |_| Some(rfc_credential()))
        .is_ok());
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert!(server
        .client_first(b"n,a=a=2Cb,n=a=2Cb,r=abc", |_| Some(rfc_credential()))
        .is_ok());
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert_eq!(
        server.client_first(b"n,a=admin,n=user,r=abc", |_| Some(rfc_credential())),
        Err(ScramError::Unsupported(
            "an authorization identity other than the username"
        ))
    );
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert_eq!(
        server.client_first(b"n,x=admin,n=user,r=abc", |_| Some(rfc_credential())),
        Err(ScramError::Malformed("invalid authorization identity"))
    );
}

#[test]
fn malformed_client_first_messages() {
    let cases: [(&[u8], ScramError); 11] = [
        (b"", ScramError::Malformed("missing GS2 header")),
        (b"n,", ScramError::Malformed("missing GS2 header")),
        (
            b"x,,n=user,r=abc",
            ScramError::Malformed("invalid GS2 channel binding flag"),
        ),
        (b"n,,r=abc", ScramError::Malformed("missing username")),
        (b"n,,n=,r=abc", ScramError::Malformed("empty username")),
        (b"n,,n=user", ScramError::Malformed("missing client nonce")),
        (
            b"n,,n=user,r=",
            ScramError::Malformed("invalid client nonce"),
        ),
        (
            b"n,,n=user,r=a b",
            ScramError::Malformed("invalid client nonce"),
        ),
        (
            b"n,,n=user,r=abc,",
            ScramError::Malformed("invalid extension attribute"),
        ),
        (
            b"n,,m=x,n=user,r=abc",
            ScramError::Unsupported("mandatory extension"),
        ),
        (b"n,,n=us\xffer,r=abc", ScramError::Malformed("not UTF-8")),
    ];
    for (message, expected) in cases {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert_eq!(
            server.client_first(message, |_| Some(rfc_credential())),
            Err(expected),
            "{}",
            String::from_utf8_lossy(message)
        );
    }
}

#[test]
fn malformed_client_final_messages() {
    let nonce = format!("{RFC_CLIENT_NONCE}{RFC_SERVER_NONCE}");
    let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let cases = [
        (String::new(), "missing proof"),
        (
            format!("c=biws,r={nonce}"),
            "the proof must be the last attribute",
        ),
        (
            format!("c=biws,p={proof},r={nonce}"),
            "the proof must be the last attribute",
        ),
        (format!("c=biws,p={proof}"), "missing nonce"),
        (format!("c=biws,r={nonce},p=***"), "proof is not base64"),
        (
            format!("c=biws,r={nonce},p=AAAA"),
            "proof has the wrong length",
        ),
        (
            format!("c=biws,r={nonce},junk,p={proof}"),
            "invalid extension attribute",
        ),
        (
            format!("c=biws,r={nonce},p=x,p={proof}"),
            "the proof must be the last attribute",
        ),
    ];
    for (message, expected) in cases {
        let mut server = rfc_server_after_first();
        assert_eq!(
            server.client_final(message.as_bytes()),
            Err(ScramError::Malformed(expected)),
            "{message}"
        );
    }
}

#[test]
fn steps_out_of_order_are_errors() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert_eq!(
        server.client_final(RFC_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder("client-final before client-first"))
    );
    // The early call did not spoil the exchange.
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC_SERVER_NONCE.into());
    assert!(server.client_final(b"").is_err());
    server
        .client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential()))
        .unwrap();
    assert_eq!(
        server.client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential())),
        Err(ScramError::OutOfOrder("client-first already received"))
    );
    server.client_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(
        server.client_final(RFC_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder("exchange already complete"))
    );
    assert_eq!(
        server.client_first(RFC_CLIENT_FIRST.as_bytes(), |_| Some(rfc_credential())),
        Err(ScramError::OutOfOrder("exchange already complete"))
    );
    assert!(server.is_complete());

    let client = ScramClient::new(ScramMechanism::Sha256, "user", "pencil");
    assert_eq!(
        client.verify_server_final(RFC_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder(
            "server-final before a client-final was made"
        ))
    );
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        "pencil",
        RFC_CLIENT_NONCE.into(),
    );
    client.client_final(RFC_SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(
        client.client_final(RFC_SERVER_FIRST.as_bytes()),
        Err(ScramError::OutOfOrder("client-final already made"))
    );
}

#[test]
fn client_checks_the_server_first_message() {
    let new_client = || {
        ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            RFC_CLIENT_NONCE.into(),
        )
    };
    let nonce = format!("{RFC_CLIENT_NONCE}{RFC_SERVER_NONCE}");
    let cases = [
        (
            format!("r={nonce},s={RFC_SALT},i=4095"),
            ScramError::IterationCount(4095),
        ),
        (
            format!("r={nonce},s={RFC_SALT},i=+4096"),
            ScramError::Malformed("invalid iteration count"),
        ),
        (
            format!("r={nonce},s={RFC_SALT},i=99999999999"),
            ScramError::Malformed("invalid iteration count"),
        ),
        (
            format!("r={nonce},s={RFC_SALT}"),
            ScramError::Malformed("missing iteration count"),
        ),
        (
            format!("r={nonce},s=,i=4096"),
            ScramError::Malformed("empty salt"),
        ),
        (
            format!("r={nonce},s=%%,i=4096"),
            ScramError::Malformed("salt is not base64"),
        ),
        (
            format!("m=ext,r={nonce},s={RFC_SALT},i=4096"),
            ScramError::Unsupported("mandatory extension"),
        ),
        (
            "e=unknown-user".to_string(),
            ScramError::ServerError("unknown-user".into()),
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(
            new_client().client_final(message.as_bytes()),
            Err(expected),
            "{message}"
        );
    }
    assert_eq!(
        ScramError::IterationCount(4095).to_string(),
        "SCRAM iteration count 4095 is below the minimum of 4096"
    );
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let client = ScramClient::new(ScramMechanism::Sha256, "alice", "hunter2-secret");
    let shown = format!("{client:?}");
    assert!(
        shown.contains("alice") && !shown.contains("hunter2"),
        "{shown}"
    );
    let mut server = rfc_server_after_first();
    let shown = format!("{server:?}");
    assert_eq!(
        shown,
        "ScramServer { mechanism: Sha256, state: \"first-sent\", .. }"
    );
    let error = server
        .client_final(RFC_CLIENT_FINAL.replace("p=dHzb", "p=dHzc").as_bytes())
        .unwrap_err();
    assert_eq!(error.to_string(), "invalid SCRAM credentials");
}
