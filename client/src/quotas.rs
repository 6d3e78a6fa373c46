//! Client quotas: DescribeClientQuotas and AlterClientQuotas.
//!
//! A quota entity is one or more components, each an entity type (`user`, `client-id`,
//! `ip`) with a name, or without one for the default entity of that type: the entity
//! `{user: alice}`, the default user `{user: <default>}`, the entity
//! `{user: alice, client-id: <default>}`. Kafka's quota keys are `producer_byte_rate`,
//! `consumer_byte_rate`, `request_percentage` and `controller_mutation_rate` for users and
//! client ids, `connection_creation_rate` for addresses; the broker checks keys and values.

use std::collections::BTreeMap;
use std::fmt;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, Target};
use crate::error::{check, ClientError};

/// Entity type of a user's quotas (the principal's name: `alice` for `User:alice`).
pub const USER: &str = "user";
/// Entity type of a client id's quotas.
pub const CLIENT_ID: &str = "client-id";
/// Entity type of a client address's quotas.
pub const IP: &str = "ip";

/// Quota key: bytes per second a producer may send.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Quota key: bytes per second a consumer may fetch.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Quota key: percentage of one request handler thread's time.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// DescribeClientQuotas match types (Kafka's `ClientQuotaFilterComponent`): a name, the
/// default entity, or any entity of the type.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;

/// Whom a quota applies to: components `(entity type, name)`, in Kafka's order (`user`,
/// `client-id`, `ip`, then other types by name), a `None` name standing for the default
/// entity of that type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity {
    pub parts: Vec<(String, Option<String>)>,
}

impl QuotaEntity {
    /// The entity of these components, put in Kafka's order.
    pub fn new(mut parts: Vec<(String, Option<String>)>) -> QuotaEntity {
        fn rank(entity_type: &str) -> usize {
            [USER, CLIENT_ID, IP]
                .iter()
                .position(|t| *t == entity_type)
                .unwrap_or(3)
        }
        parts.sort_by(|a, b| (rank(&a.0), a).cmp(&(rank(&b.0), b)));
        QuotaEntity { parts }
    }

    /// A user (`None`: the default user).
    pub fn user(name: Option<&str>) -> QuotaEntity {
        QuotaEntity::new(vec![(USER.to_owned(), name.map(str::to_owned))])
    }
}

/// `user=alice, client-id=<default>`.
impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("<empty entity>");
        }
        for (i, (entity_type, name)) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match name {
                Some(name) => write!(f, "{entity_type}={name}")?,
                None => write!(f, "{entity_type}=<default>")?,
            }
        }
        Ok(())
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Client {
    /// The quotas of the entities matching `components`, each `(entity type, name)`: a name
    /// matches only the entity of that name, `None` only the default entity of the type.
    /// With `strict`, only entities with no other components match (`{user: alice}` but not
    /// `{user: alice, client-id: app}`). Sorted by entity.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] when the broker refuses, e.g. INVALID_REQUEST for an unknown
    /// entity type or a type named twice, CLUSTER_AUTHORIZATION_FAILED without
    /// DESCRIBE_CONFIGS on the cluster.
    pub async fn describe_client_quotas(
        &self,
        components: &[(String, Option<String>)],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, BTreeMap<String, f64>)>, ClientError> {
        let request = DescribeClientQuotasRequest::default()
            .with_components(
                components
                    .iter()
                    .map(|(entity_type, name)| {
                        let component =
                            ComponentData::default().with_entity_type(str_bytes(entity_type));
                        match name {
                            Some(name) => component
                                .with_match_type(MATCH_EXACT)
                                .with_match(Some(str_bytes(name))),
                            None => component.with_match_type(MATCH_DEFAULT).with_match(None),
                        }
                    })
                    .collect(),
            )
            .with_strict(strict);
        let response = self
            .with_retries(None, || self.send(Target::Any, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "describe client quotas".to_owned(),
        )?;
        let mut out: Vec<(QuotaEntity, BTreeMap<String, f64>)> = response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let entity = QuotaEntity::new(
                    entry
                        .entity
                        .into_iter()
                        .map(|e| {
                            (
                                e.entity_type.to_string(),
                                e.entity_name.map(|n| n.to_string()),
                            )
                        })
                        .collect(),
                );
                let values = entry
                    .values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect();
                (entity, values)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Sets the quotas in `set` and removes those named in `remove` on one entity, whose
    /// components are `(entity type, name)` (`None`: the default entity of the type). In one
    /// request: all of it is applied, or none. Nothing is sent when both are empty.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for a key both set and removed;
    /// [`ClientError::Kafka`] when the broker refuses, e.g. INVALID_REQUEST for an entity
    /// combination, key or value Kafka does not allow.
    pub async fn alter_client_quotas(
        &self,
        entity: &[(String, Option<String>)],
        set: &BTreeMap<String, f64>,
        remove: &[String],
    ) -> Result<(), ClientError> {
        let described = QuotaEntity::new(entity.to_vec());
        if let Some(key) = remove.iter().find(|k| set.contains_key(*k)) {
            return Err(ClientError::InvalidArgument(format!(
                "quota {key} of {described} is both set and removed"
            )));
        }
        if set.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let ops = set
            .iter()
            .map(|(key, value)| {
                OpData::default()
                    .with_key(str_bytes(key))
                    .with_value(*value)
                    .with_remove(false)
            })
            .chain(
                remove
                    .iter()
                    .map(|key| OpData::default().with_key(str_bytes(key)).with_remove(true)),
            )
            .collect();
        let request = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(entity_type, name)| {
                        EntityData::default()
                            .with_entity_type(str_bytes(entity_type))
                            .with_entity_name(name.as_deref().map(str_bytes))
                    })
                    .collect(),
            )
            .with_ops(ops)]);
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        let [result] = response.entries.as_slice() else {
            return Err(ClientError::protocol(
                "AlterClientQuotas response",
                format!("{} results for 1 entity", response.entries.len()),
            ));
        };
        check(result.error_code, result.error_message.as_deref(), || {
            format!("alter client quotas of {described}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_sort_their_parts_and_print_defaults() {
        let entity = QuotaEntity::new(vec![
            (USER.to_owned(), Some("alice".to_owned())),
            (CLIENT_ID.to_owned(), None),
        ]);
        assert_eq!(
            entity.parts,
            vec![
                (USER.to_owned(), Some("alice".to_owned())),
                (CLIENT_ID.to_owned(), None),
            ]
        );
        assert_eq!(entity.to_string(), "user=alice, client-id=<default>");
        assert_eq!(QuotaEntity::user(None).to_string(), "user=<default>");
    }
}
