//! How the operator reaches a cluster's admin API: the bootstrap address and, on a secured
//! cluster, the SCRAM login of [`OPERATOR_USER`] from the Secret `NAME-internal-users`, which
//! this module creates (once: its passwords are never replaced, the brokers created their
//! credentials from them at their first start).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use ring::rand::{SecureRandom, SystemRandom};

use super::build::{owned_meta, Names, BROKER_USER, INTERNAL_PORT, OPERATOR_USER};
use super::{kube_err, Context, Error};
use crate::admin::{AdminTarget, ScramLogin};
use crate::crd::KafkaCluster;

/// Length of generated passwords: 32 characters of 62, about 190 bits.
pub const PASSWORD_LEN: usize = 32;

/// A random password of letters and digits (nothing a properties file, a JAAS line or
/// `--add-scram`'s `[name=...,password=...]` would need to quote).
pub fn generate_password() -> Result<String, Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(PASSWORD_LEN);
    while out.len() < PASSWORD_LEN {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte).map_err(|_| Error::Random)?;
        // Reject the top of the range so every character is equally likely.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            out.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// The value of `key` in a Secret (`data`, or `stringData` as a fresh object may carry it).
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(v.0.clone()).ok();
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key).cloned())
}

/// The internal users' Secret, built from passwords (pure).
pub fn build_internal_users_secret(kc: &KafkaCluster, broker: String, operator: String) -> Secret {
    Secret {
        metadata: owned_meta(kc, Names::of(kc).internal_users_secret()),
        type_: Some("Opaque".to_string()),
        data: Some(BTreeMap::from([
            (BROKER_USER.to_string(), ByteString(broker.into_bytes())),
            (OPERATOR_USER.to_string(), ByteString(operator.into_bytes())),
        ])),
        ..Secret::default()
    }
}

/// The operator's password on a secured cluster, creating the internal users' Secret when it
/// does not exist yet.
pub async fn ensure_internal_users(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
) -> Result<String, Error> {
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let name = Names::of(kc).internal_users_secret();
    let secret = match api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {name}")))?
    {
        Some(s) => s,
        None => {
            let fresh = build_internal_users_secret(kc, generate_password()?, generate_password()?);
            match api.create(&PostParams::default(), &fresh).await {
                Ok(s) => s,
                // Created meanwhile (another reconcile): use that one.
                Err(kube::Error::Api(e)) if e.code == 409 => api
                    .get(&name)
                    .await
                    .map_err(kube_err(format!("reading Secret {name}")))?,
                Err(e) => return Err(kube_err(format!("creating Secret {name}"))(e)),
            }
        }
    };
    secret_value(&secret, OPERATOR_USER).ok_or_else(|| {
        Error::Invalid(format!(
            "Secret {name} has no {OPERATOR_USER} key: delete it only together with the cluster"
        ))
    })
}

/// Where and how the operator reaches `kc`: the test override address, else the bootstrap
/// Service on the internal listener with the operator's login (secured), or on the first
/// listener (not secured).
pub async fn admin_target(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
) -> Result<AdminTarget, Error> {
    let names = Names::of(kc);
    let login = if kc.spec.secured() {
        Some(ScramLogin {
            username: OPERATOR_USER.to_string(),
            password: ensure_internal_users(kc, ctx, ns).await?,
        })
    } else {
        None
    };
    let bootstrap = ctx.bootstrap_override(kc).unwrap_or_else(|| {
        if login.is_some() {
            names.bootstrap_on(INTERNAL_PORT)
        } else {
            names.bootstrap_on(
                kc.spec
                    .listeners
                    .first()
                    .map_or(super::build::KAFKA_PORT, |l| l.port),
            )
        }
    });
    Ok(AdminTarget { bootstrap, login })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    #[test]
    fn passwords_are_long_alphanumeric_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_internal_users_secret_is_owned_and_holds_both_users() {
        let kc = cluster(3);
        let s = build_internal_users_secret(&kc, "b".into(), "o".into());
        assert_eq!(s.metadata.name.as_deref(), Some("events-internal-users"));
        assert_eq!(
            s.metadata.owner_references.as_ref().unwrap()[0].name,
            "events"
        );
        assert_eq!(secret_value(&s, BROKER_USER).as_deref(), Some("b"));
        assert_eq!(secret_value(&s, OPERATOR_USER).as_deref(), Some("o"));
    }
}
