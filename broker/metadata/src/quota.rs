//! Client quotas, Kafka's model: rates set for an entity (a user, a client id, both, or a
//! client address), where a missing name means the default entity of that type.
//!
//! Quota values are `f64`s and go through JSON (the metadata log and snapshots), whose
//! float parsing may be off by the last bit; every node must hold the same bits, so values
//! are written as text in Rust's shortest exact form and read back exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::image::MetadataImage;

/// Bytes per second a producer may send.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes per second a consumer may fetch.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one request handler thread's time.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Partitions per second that topic creations and deletions may change.
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// New connections per second from one address.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// A quota key and what its value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Any positive number.
    Double,
    /// A positive whole number up to `i32::MAX` (Kafka's INT).
    Int,
    /// A positive whole number up to `i64::MAX` (Kafka's LONG).
    Long,
}

/// The keys of user and client-id entities.
const USER_AND_CLIENT_KEYS: &[(&str, ValueKind)] = &[
    (PRODUCER_BYTE_RATE, ValueKind::Long),
    (CONSUMER_BYTE_RATE, ValueKind::Long),
    (REQUEST_PERCENTAGE, ValueKind::Double),
    (CONTROLLER_MUTATION_RATE, ValueKind::Double),
];

/// The keys of ip entities.
const IP_KEYS: &[(&str, ValueKind)] = &[(CONNECTION_CREATION_RATE, ValueKind::Int)];

/// The kind of one part of a quota entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaEntityType {
    User,
    ClientId,
    Ip,
}

impl QuotaEntityType {
    pub const ALL: [QuotaEntityType; 3] = [
        QuotaEntityType::User,
        QuotaEntityType::ClientId,
        QuotaEntityType::Ip,
    ];

    /// Kafka's name: `user`, `client-id`, `ip`.
    pub fn name(self) -> &'static str {
        match self {
            QuotaEntityType::User => "user",
            QuotaEntityType::ClientId => "client-id",
            QuotaEntityType::Ip => "ip",
        }
    }

    /// From Kafka's name (case-sensitive, as Kafka).
    pub fn from_name(name: &str) -> Option<QuotaEntityType> {
        QuotaEntityType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for QuotaEntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whom a quota applies to: parts sorted by type, each with a name or `None` for the
/// default entity of its type. Stored entities are [`ClientQuotaEntity::normalize`]d: one
/// of `user`, `client-id`, `user` + `client-id` or `ip`, no empty names, ip names valid
/// addresses in their canonical form. A command may carry any parts; applying it checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientQuotaEntity {
    pub parts: Vec<(QuotaEntityType, Option<String>)>,
}

impl ClientQuotaEntity {
    /// The entity of these parts, sorted by type (not checked).
    pub fn new(mut parts: Vec<(QuotaEntityType, Option<String>)>) -> ClientQuotaEntity {
        parts.sort();
        ClientQuotaEntity { parts }
    }

    /// A user (`None`: the default user).
    pub fn user(name: Option<&str>) -> ClientQuotaEntity {
        ClientQuotaEntity::new(vec![(QuotaEntityType::User, name.map(str::to_owned))])
    }

    /// A client id (`None`: the default client id).
    pub fn client_id(name: Option<&str>) -> ClientQuotaEntity {
        ClientQuotaEntity::new(vec![(QuotaEntityType::ClientId, name.map(str::to_owned))])
    }

    /// A client id of a user (`None`: the default of each).
    pub fn user_client_id(user: Option<&str>, client_id: Option<&str>) -> ClientQuotaEntity {
        ClientQuotaEntity::new(vec![
            (QuotaEntityType::User, user.map(str::to_owned)),
            (QuotaEntityType::ClientId, client_id.map(str::to_owned)),
        ])
    }

    /// A client address (`None`: the default address).
    pub fn ip(address: Option<&str>) -> ClientQuotaEntity {
        ClientQuotaEntity::new(vec![(QuotaEntityType::Ip, address.map(str::to_owned))])
    }

    /// The name of the part of type `entity_type`: `None` without such a part,
    /// `Some(None)` for a default.
    pub fn name(&self, entity_type: QuotaEntityType) -> Option<Option<&str>> {
        self.parts
            .iter()
            .find(|(t, _)| *t == entity_type)
            .map(|(_, name)| name.as_deref())
    }

    /// The entity as stored: parts sorted, ip names in canonical form. `Err` is a sentence
    /// saying why Kafka would refuse it: no parts, a type twice, a combination other than
    /// `user`, `client-id`, `user` + `client-id` or `ip`, an empty name, or an ip name that
    /// is not an IPv4 or IPv6 address (host names are not resolved: the metadata is pure).
    pub fn normalize(&self) -> Result<ClientQuotaEntity, String> {
        let mut entity = ClientQuotaEntity::new(self.parts.clone());
        if entity.parts.is_empty() {
            return Err(
                "a client quota entity is a user, a client-id, both, or an ip; this one names none"
                    .into(),
            );
        }
        for (entity_type, name) in &mut entity.parts {
            match name {
                Some(n) if n.is_empty() => {
                    return Err(format!(
                    "the {entity_type} name is empty; leave it out for the default {entity_type}"
                ))
                }
                Some(n) if *entity_type == QuotaEntityType::Ip => match n.parse::<IpAddr>() {
                    Ok(address) => *n = address.to_string(),
                    Err(_) => return Err(format!("{n:?} is not an IPv4 or IPv6 address")),
                },
                _ => {}
            }
        }
        let types: Vec<QuotaEntityType> = entity.parts.iter().map(|(t, _)| *t).collect();
        if let Some(w) = types.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "the client quota entity names {} more than once",
                w[0]
            ));
        }
        use QuotaEntityType::*;
        match types.as_slice() {
            [User] | [ClientId] | [User, ClientId] | [Ip] => Ok(entity),
            _ => Err(format!(
                "a client quota entity is a user, a client-id, both, or an ip; not {}",
                types
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(" + ")
            )),
        }
    }

    /// Whether this is an ip entity (its keys are [`CONNECTION_CREATION_RATE`] only).
    pub fn is_ip(&self) -> bool {
        self.name(QuotaEntityType::Ip).is_some()
    }

    /// The quota keys this entity may set.
    pub fn quota_keys(&self) -> impl Iterator<Item = &'static str> {
        self.key_kinds().iter().map(|(key, _)| *key)
    }

    /// What `key`'s value must be; `Err` if this entity may not set it.
    fn key_kind(&self, key: &str) -> Result<ValueKind, String> {
        match self.key_kinds().iter().find(|(k, _)| *k == key) {
            Some(&(_, kind)) => Ok(kind),
            None => Err(format!(
                "{key:?} is not a quota of {} entities; they have {}",
                if self.is_ip() {
                    "ip"
                } else {
                    "user and client-id"
                },
                self.quota_keys().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    fn key_kinds(&self) -> &'static [(&'static str, ValueKind)] {
        if self.is_ip() {
            IP_KEYS
        } else {
            USER_AND_CLIENT_KEYS
        }
    }

    /// Kafka's rules for setting `key` to `value` on this entity: a key of the entity's
    /// kind, a finite value above 0, and a whole number (within 1e-6, as Kafka) in range
    /// for the byte rates (up to `i64::MAX`) and the connection rate (up to `i32::MAX`).
    pub fn validate_value(&self, key: &str, value: f64) -> Result<(), String> {
        let kind = self.key_kind(key)?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("quota {key} must be a number above 0, got {value}"));
        }
        let max = match kind {
            ValueKind::Double => return Ok(()),
            ValueKind::Int => i32::MAX as f64,
            ValueKind::Long => i64::MAX as f64,
        };
        if value > max {
            return Err(format!("quota {key} must be at most {max}, got {value}"));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(format!("quota {key} must be a whole number, got {value}"));
        }
        Ok(())
    }
}

impl fmt::Display for ClientQuotaEntity {
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

/// One entity's quotas, by key.
pub type EntityQuotas = BTreeMap<String, QuotaValue>;

/// A stored quota value: finite and above 0. Compared by its bits, so the image can be
/// `Eq`. Written as exact text (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct QuotaValue(f64);

impl QuotaValue {
    /// `None` unless `value` is finite and above 0.
    pub fn new(value: f64) -> Option<QuotaValue> {
        (value.is_finite() && value > 0.0).then_some(QuotaValue(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

impl std::hash::Hash for QuotaValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Serialize for QuotaValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ExactF64(self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for QuotaValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ExactF64(value) = ExactF64::deserialize(deserializer)?;
        QuotaValue::new(value).ok_or_else(|| {
            serde::de::Error::custom(format!("a quota value must be above 0, got {value}"))
        })
    }
}

/// An `f64` written as text in Rust's shortest form that parses back to the same bits
/// (`NaN` and `inf` included); read from that text, or from a JSON number.
struct ExactF64(f64);

impl Serialize for ExactF64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExactF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ExactF64;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a number as text")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ExactF64, E> {
                text.parse()
                    .map(ExactF64)
                    .map_err(|_| E::custom(format!("{text:?} is not a number")))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<ExactF64, E> {
                Ok(ExactF64(value))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<ExactF64, E> {
                Ok(ExactF64(value as f64))
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<ExactF64, E> {
                Ok(ExactF64(value as f64))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One entity's quota changes, as AlterClientQuotas sends them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaAlteration {
    pub entity: ClientQuotaEntity,
    /// `(key, Some(value))` sets a quota, `(key, None)` removes it; in order, so of one key
    /// altered twice the last wins (as Kafka). Values are written as exact text.
    #[serde(with = "exact_ops")]
    pub ops: Vec<(String, Option<f64>)>,
}

/// Values compare by their bits (`NaN` equals itself), so this is an equivalence and
/// [`crate::MetadataCommand`] stays `Eq`.
impl PartialEq for QuotaAlteration {
    fn eq(&self, other: &Self) -> bool {
        self.entity == other.entity
            && self.ops.len() == other.ops.len()
            && self.ops.iter().zip(&other.ops).all(|((k1, v1), (k2, v2))| {
                k1 == k2 && v1.map(f64::to_bits) == v2.map(f64::to_bits)
            })
    }
}

impl Eq for QuotaAlteration {}

impl QuotaAlteration {
    /// The alteration as applied: the entity normalized, each value set checked
    /// ([`ClientQuotaEntity::validate_value`]; removing a key the entity may not have is
    /// refused too, removing one it does not have is not: a no-op). `Err` is a sentence naming
    /// the entity.
    pub fn validate(&self) -> Result<ClientQuotaEntity, String> {
        let entity = self
            .entity
            .normalize()
            .map_err(|e| format!("{}: {e}", self.entity))?;
        for (key, value) in &self.ops {
            let checked = match value {
                Some(value) => entity.validate_value(key, *value),
                None => entity.key_kind(key).map(|_| ()),
            };
            checked.map_err(|e| format!("{entity}: {e}"))?;
        }
        Ok(entity)
    }
}

/// Serde for [`QuotaAlteration::ops`], values as [`ExactF64`] text.
mod exact_ops {
    use super::*;

    pub fn serialize<S: Serializer>(
        ops: &[(String, Option<f64>)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(ops.iter().map(|(key, value)| (key, value.map(ExactF64))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, Option<f64>)>, D::Error> {
        let ops = Vec::<(String, Option<ExactF64>)>::deserialize(deserializer)?;
        Ok(ops
            .into_iter()
            .map(|(key, value)| (key, value.map(|v| v.0)))
            .collect())
    }
}

/// Serde for [`MetadataImage::client_quotas`]: JSON map keys are strings, so the map is
/// written as a list of `[entity, quotas]` pairs.
pub(crate) mod entity_map {
    use super::*;

    type Quotas = BTreeMap<ClientQuotaEntity, BTreeMap<String, QuotaValue>>;

    pub fn serialize<S: Serializer>(quotas: &Quotas, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(quotas.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Quotas, D::Error> {
        let pairs =
            Vec::<(ClientQuotaEntity, BTreeMap<String, QuotaValue>)>::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

/// How a [`QuotaFilterComponent`] matches the name of its entity type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuotaMatch {
    /// This name only (MATCH_TYPE_EXACT).
    Exact(String),
    /// The default entity only (MATCH_TYPE_DEFAULT).
    Default,
    /// Any name, the default included (MATCH_TYPE_SPECIFIED).
    Any,
}

/// One component of a DescribeClientQuotas filter: the entity has a part of this type
/// whose name matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuotaFilterComponent {
    pub entity_type: QuotaEntityType,
    pub matching: QuotaMatch,
}

impl MetadataImage {
    /// The entities with quotas that match every component, and, if `strict`, have no
    /// part of another type; in entity order. `Err` (Kafka's INVALID_REQUEST) for a type
    /// named by two components, or an ip component with a user or client-id one. An
    /// [`QuotaMatch::Exact`] ip name is compared in canonical form.
    pub fn describe_client_quotas(
        &self,
        components: &[QuotaFilterComponent],
        strict: bool,
    ) -> Result<Vec<(&ClientQuotaEntity, &EntityQuotas)>, String> {
        for (i, c) in components.iter().enumerate() {
            if components[..i]
                .iter()
                .any(|o| o.entity_type == c.entity_type)
            {
                return Err(format!(
                    "entity type {} appears more than once in the filter",
                    c.entity_type
                ));
            }
        }
        let has = |t: QuotaEntityType| components.iter().any(|c| c.entity_type == t);
        if has(QuotaEntityType::Ip)
            && (has(QuotaEntityType::User) || has(QuotaEntityType::ClientId))
        {
            return Err(
                "an ip filter component cannot be combined with user or client-id ones".into(),
            );
        }
        let matches = |entity: &ClientQuotaEntity| {
            (!strict || entity.parts.len() == components.len())
                && components.iter().all(|c| {
                    let name = entity.name(c.entity_type);
                    match &c.matching {
                        QuotaMatch::Any => name.is_some(),
                        QuotaMatch::Default => name == Some(None),
                        QuotaMatch::Exact(wanted) => name.flatten().is_some_and(|n| {
                            n == wanted
                                || (c.entity_type == QuotaEntityType::Ip
                                    && wanted.parse::<IpAddr>().is_ok_and(|a| a.to_string() == n))
                        }),
                    }
                })
        };
        Ok(self
            .client_quotas
            .iter()
            .filter(|(entity, _)| matches(entity))
            .collect())
    }

    /// The quota `key` that applies to `client_id` of `user`, in Kafka's precedence: the
    /// first entity that sets it of user + client-id, user + default client-id, user,
    /// default user + client-id, default user + default client-id, default user,
    /// client-id, default client-id. `user` is the principal's name (`alice` for
    /// `User:alice`).
    pub fn client_quota(&self, user: &str, client_id: &str, key: &str) -> Option<f64> {
        // Asked for every Produce and Fetch: without quotas, build no entities.
        if self.client_quotas.is_empty() {
            return None;
        }
        let (u, c) = (Some(user), Some(client_id));
        [
            ClientQuotaEntity::user_client_id(u, c),
            ClientQuotaEntity::user_client_id(u, None),
            ClientQuotaEntity::user(u),
            ClientQuotaEntity::user_client_id(None, c),
            ClientQuotaEntity::user_client_id(None, None),
            ClientQuotaEntity::user(None),
            ClientQuotaEntity::client_id(c),
            ClientQuotaEntity::client_id(None),
        ]
        .iter()
        .find_map(|entity| self.quota_value(entity, key))
    }

    /// The quota `key` (such as [`CONNECTION_CREATION_RATE`]) that applies to connections
    /// from `address`: its own, else the default ip's.
    pub fn ip_quota(&self, address: IpAddr, key: &str) -> Option<f64> {
        let own = address.to_string();
        [
            ClientQuotaEntity::ip(Some(&own)),
            ClientQuotaEntity::ip(None),
        ]
        .iter()
        .find_map(|entity| self.quota_value(entity, key))
    }

    fn quota_value(&self, entity: &ClientQuotaEntity, key: &str) -> Option<f64> {
        self.client_quotas.get(entity)?.get(key).map(|v| v.get())
    }
}
