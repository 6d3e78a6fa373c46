//! The table of broker config keys Ironlog accepts: each key's kind of value and what it
//! sets. The crate docs render it for people; [`TABLE`] is what the code reads.

use crate::listeners;
use crate::ConfigError;

/// One accepted key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySpec {
    /// Kafka's name for it (or `ironlog.<flag>` for an Ironlog-only setting).
    pub key: &'static str,
    pub kind: Kind,
    pub sets: Sets,
}

/// The kind of value a key takes. [`check`] holds values to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max` (Kafka's int and short).
    Int { min: i64, max: i64 },
    /// A whole number at least `min` (Kafka's long).
    Long { min: i64 },
    /// A number in `min..=max`.
    Double { min: f64, max: f64 },
    /// Any text that is not empty.
    String,
    /// One of the listed words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of the listed words.
    ListOf(&'static [&'static str]),
    /// `host:port`.
    HostPort,
    /// `ip:port` (an address to bind).
    SocketAddr,
    /// `NAME://ip:port,...` or `ip:port`: addresses to bind (see [`crate::listeners`]).
    Listeners,
    /// `NAME://host:port,...` or `host:port`: addresses to announce.
    AdvertisedListeners,
    /// `id@host:port,...`.
    Voters,
    /// A listener name.
    ListenerName,
    /// Comma-separated listener names.
    ListenerNames,
    /// `NAME:PROTOCOL,...`, each protocol PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    SecurityProtocolMap,
    /// `broker,controller` or `broker`.
    ProcessRoles,
    /// One directory (Kafka allows a comma-separated list).
    Directory,
}

/// What a key sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sets {
    /// The `ironlog broker` flag `--NAME`, to the value as written.
    Flag(&'static str),
    /// The flag `--NAME`, to the value times `factor` (a unit change: seconds to ms).
    ScaledFlag(&'static str, i64),
    /// The broker-wide default of a topic config, what `--default-topic-config NAME=v`
    /// sets.
    TopicDefault(&'static str),
    /// The broker-wide default of a topic config, to the value times `factor` (a unit
    /// change, e.g. hours to ms; a negative value stays -1, unlimited). When several keys
    /// set one topic config, the one in the finest unit wins, as in Kafka
    /// (`log.retention.ms` > `log.retention.minutes` > `log.retention.hours`).
    ScaledTopicDefault(&'static str, i64),
    /// The Kafka listeners: `--listen` when they are one PLAINTEXT listener named PLAINTEXT
    /// (or unnamed), else `--listeners`; and `--controller-listen` (the controller listener).
    Listeners,
    /// `--advertised-listener` or `--advertised-listeners` (as for [`Sets::Listeners`]), and
    /// `--controller-advertised-listener`.
    AdvertisedListeners,
    /// No flag: the value is checked against what Ironlog does and against the other keys
    /// (`process.roles`, `controller.listener.names`, ...).
    Nothing,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

const fn int(min: i64) -> Kind {
    Kind::Int {
        min,
        max: i32::MAX as i64,
    }
}

const fn short(min: i64) -> Kind {
    Kind::Int {
        min,
        max: i16::MAX as i64,
    }
}

const fn long(min: i64) -> Kind {
    Kind::Long { min }
}

const fn key(key: &'static str, kind: Kind, sets: Sets) -> KeySpec {
    KeySpec { key, kind, sets }
}

use Sets::{Flag, Nothing, ScaledFlag, ScaledTopicDefault, TopicDefault};

/// The SASL mechanisms the broker serves (`sasl.enabled.mechanisms`).
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

const TLS_FILES: &str = "Ironlog's TLS takes PEM files, not Kafka's JKS/PKCS12 keystores and ssl.* settings: use ironlog.tls.cert / ironlog.tls.key / ironlog.tls.client.ca (PEM)";

/// Kafka keys Ironlog knows but does not implement, each with what to use instead: a key
/// equal to the pattern, or starting with it when the pattern ends in `.`. [`check`]
/// refuses them with [`ConfigError::UnsupportedKey`] rather than as unknown keys.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "ssl.client.auth",
        "mutual TLS is on when ironlog.tls.client.ca is given (client certificates are then required on SSL listeners); use ironlog.tls.cert / ironlog.tls.key / ironlog.tls.client.ca (PEM)",
    ),
    ("ssl.", TLS_FILES),
    (
        "sasl.jaas.config",
        "Ironlog has no JAAS: SASL users (PLAIN and SCRAM) are SCRAM credentials kept in the cluster metadata (kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-512=[password=...]', or ironlog.add.scram at start-up); TLS files are ironlog.tls.cert / ironlog.tls.key / ironlog.tls.client.ca (PEM)",
    ),
    (
        "listener.name.",
        "per-listener settings are not supported: ironlog.tls.cert / ironlog.tls.key / ironlog.tls.client.ca (PEM) and sasl.enabled.mechanisms apply to every listener",
    ),
    (
        "authorizer.class.name",
        "Ironlog's ACL authorizer is turned on with ironlog.authorizer=acl (ACLs live in the cluster metadata, as with KRaft's StandardAuthorizer)",
    ),
    (
        "security.inter.broker.protocol",
        "name the listener brokers use with inter.broker.listener.name (and its protocol in listener.security.protocol.map)",
    ),
];

/// Every accepted key, grouped as in the crate docs.
pub const TABLE: &[KeySpec] = &[
    // Identity, listeners and the metadata quorum.
    key("node.id", int(0), Flag("node-id")),
    key("broker.id", int(0), Flag("node-id")),
    key("process.roles", Kind::ProcessRoles, Nothing),
    key("listeners", Kind::Listeners, Sets::Listeners),
    key(
        "advertised.listeners",
        Kind::AdvertisedListeners,
        Sets::AdvertisedListeners,
    ),
    key("controller.listener.names", Kind::ListenerNames, Nothing),
    key(
        "inter.broker.listener.name",
        Kind::ListenerName,
        Flag("inter-broker-listener-name"),
    ),
    key(
        "listener.security.protocol.map",
        Kind::SecurityProtocolMap,
        Flag("listener-security-protocol-map"),
    ),
    key("controller.quorum.voters", Kind::Voters, Flag("voters")),
    key("broker.rack", Kind::String, Flag("rack")),
    key("log.dirs", Kind::Directory, Flag("data-dir")),
    key("log.dir", Kind::Directory, Flag("data-dir")),
    // Topics.
    key(
        "auto.create.topics.enable",
        Kind::Bool,
        Flag("auto-create-topics"),
    ),
    key("num.partitions", int(1), Flag("default-partitions")),
    key(
        "default.replication.factor",
        short(1),
        Flag("default-replication-factor"),
    ),
    // Network.
    key(
        "socket.request.max.bytes",
        int(1),
        Flag("socket-request-max-bytes"),
    ),
    key(
        "queued.max.request.bytes",
        long(1),
        Flag("queued-max-request-bytes"),
    ),
    key("max.connections", int(1), Flag("max-connections")),
    key(
        "max.connections.per.ip",
        int(1),
        Flag("max-connections-per-ip"),
    ),
    key(
        "connections.max.idle.ms",
        long(1),
        Flag("connections-max-idle-ms"),
    ),
    key(
        "max.incremental.fetch.session.cache.slots",
        int(0),
        Flag("max-incremental-fetch-session-cache-slots"),
    ),
    key(
        "ironlog.log.write.behind.bytes",
        long(0),
        Flag("log-write-behind-bytes"),
    ),
    // TLS and SASL.
    key("ironlog.tls.cert", Kind::String, Flag("tls-cert")),
    key("ironlog.tls.key", Kind::String, Flag("tls-key")),
    key("ironlog.tls.client.ca", Kind::String, Flag("tls-client-ca")),
    key(
        "ironlog.controller.security.protocol",
        Kind::OneOf(&["PLAINTEXT", "SSL"]),
        Flag("controller-security-protocol"),
    ),
    key(
        "ironlog.inter.broker.tls.ca",
        Kind::String,
        Flag("inter-broker-tls-ca"),
    ),
    key(
        "sasl.mechanism.inter.broker.protocol",
        Kind::OneOf(SASL_MECHANISMS),
        Flag("sasl-mechanism-inter-broker-protocol"),
    ),
    key(
        "ironlog.inter.broker.sasl.username",
        Kind::String,
        Flag("inter-broker-sasl-username"),
    ),
    key(
        "ironlog.inter.broker.sasl.password",
        Kind::String,
        Flag("inter-broker-sasl-password"),
    ),
    key(
        "ironlog.tls.reload.interval.ms",
        long(1),
        Flag("tls-reload-interval-ms"),
    ),
    key(
        "sasl.enabled.mechanisms",
        Kind::ListOf(SASL_MECHANISMS),
        Flag("sasl-enabled-mechanisms"),
    ),
    key(
        "connections.max.reauth.ms",
        long(0),
        Flag("connections-max-reauth-ms"),
    ),
    key("ironlog.add.scram", Kind::String, Flag("add-scram")),
    key(
        "ironlog.authorizer",
        Kind::OneOf(&["none", "acl"]),
        Flag("authorizer"),
    ),
    key("super.users", Kind::String, Flag("super-users")),
    key(
        "allow.everyone.if.no.acl.found",
        Kind::Bool,
        Flag("allow-everyone-if-no-acl-found"),
    ),
    // Groups.
    key(
        "group.initial.rebalance.delay.ms",
        int(0),
        Flag("group-initial-rebalance-delay-ms"),
    ),
    key(
        "group.min.session.timeout.ms",
        int(1),
        Flag("group-min-session-timeout-ms"),
    ),
    key(
        "group.max.session.timeout.ms",
        int(1),
        Flag("group-max-session-timeout-ms"),
    ),
    key(
        "offsets.retention.minutes",
        int(1),
        Flag("offsets-retention-minutes"),
    ),
    key(
        "offsets.topic.replication.factor",
        short(1),
        Flag("offsets-topic-replication-factor"),
    ),
    // The log cleaner.
    key("log.cleaner.enable", Kind::Bool, Flag("log-cleaner-enable")),
    key(
        "log.cleaner.io.max.bytes.per.second",
        Kind::Double {
            min: 0.0,
            max: f64::MAX,
        },
        Flag("log-cleaner-io-max-bytes-per-second"),
    ),
    key(
        "log.cleaner.dedupe.buffer.size",
        long(1024),
        Flag("log-cleaner-dedupe-buffer-size"),
    ),
    key(
        "log.cleaner.backoff.ms",
        long(1),
        Flag("log-cleaner-backoff-ms"),
    ),
    // Cluster membership and replication.
    key(
        "broker.session.timeout.ms",
        int(1),
        Flag("broker-session-timeout-ms"),
    ),
    key(
        "broker.heartbeat.interval.ms",
        int(1),
        Flag("broker-heartbeat-interval-ms"),
    ),
    key(
        "replica.lag.time.max.ms",
        long(0),
        Flag("replica-lag-time-max-ms"),
    ),
    key(
        "replica.fetch.wait.max.ms",
        int(0),
        Flag("replica-fetch-wait-max-ms"),
    ),
    key(
        "replica.fetch.max.bytes",
        int(0),
        Flag("replica-fetch-max-bytes"),
    ),
    key(
        "auto.leader.rebalance.enable",
        Kind::Bool,
        Flag("auto-leader-rebalance-enable"),
    ),
    key(
        "leader.imbalance.check.interval.seconds",
        long(1),
        ScaledFlag("leader-imbalance-check-interval-ms", 1000),
    ),
    // Broker-wide topic config defaults.
    key("log.retention.ms", long(-1), TopicDefault("retention.ms")),
    key(
        "log.retention.minutes",
        int(-1),
        ScaledTopicDefault("retention.ms", MINUTE_MS),
    ),
    key(
        "log.retention.hours",
        int(-1),
        ScaledTopicDefault("retention.ms", HOUR_MS),
    ),
    key(
        "log.retention.bytes",
        long(-1),
        TopicDefault("retention.bytes"),
    ),
    key("log.segment.bytes", int(14), TopicDefault("segment.bytes")),
    key("log.roll.ms", long(1), TopicDefault("segment.ms")),
    key(
        "log.roll.hours",
        int(1),
        ScaledTopicDefault("segment.ms", HOUR_MS),
    ),
    key(
        "log.index.size.max.bytes",
        int(8),
        TopicDefault("segment.index.bytes"),
    ),
    key(
        "log.index.interval.bytes",
        int(0),
        TopicDefault("index.interval.bytes"),
    ),
    key(
        "log.cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        TopicDefault("cleanup.policy"),
    ),
    key(
        "log.cleaner.delete.retention.ms",
        long(0),
        TopicDefault("delete.retention.ms"),
    ),
    key(
        "log.cleaner.min.compaction.lag.ms",
        long(0),
        TopicDefault("min.compaction.lag.ms"),
    ),
    key(
        "log.cleaner.max.compaction.lag.ms",
        long(1),
        TopicDefault("max.compaction.lag.ms"),
    ),
    key(
        "log.cleaner.min.cleanable.ratio",
        Kind::Double { min: 0.0, max: 1.0 },
        TopicDefault("min.cleanable.dirty.ratio"),
    ),
    key(
        "message.max.bytes",
        int(0),
        TopicDefault("max.message.bytes"),
    ),
    key(
        "log.flush.interval.messages",
        long(1),
        TopicDefault("flush.messages"),
    ),
    key("log.flush.interval.ms", long(0), TopicDefault("flush.ms")),
    key(
        "log.message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        TopicDefault("message.timestamp.type"),
    ),
    key(
        "log.message.timestamp.before.max.ms",
        long(0),
        TopicDefault("message.timestamp.before.max.ms"),
    ),
    key(
        "log.message.timestamp.after.max.ms",
        long(0),
        TopicDefault("message.timestamp.after.max.ms"),
    ),
    key("log.preallocate", Kind::Bool, TopicDefault("preallocate")),
    key(
        "log.segment.delete.delay.ms",
        long(0),
        TopicDefault("file.delete.delay.ms"),
    ),
    key(
        "min.insync.replicas",
        int(1),
        TopicDefault("min.insync.replicas"),
    ),
    key(
        "unclean.leader.election.enable",
        Kind::Bool,
        TopicDefault("unclean.leader.election.enable"),
    ),
    key(
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        TopicDefault("compression.type"),
    ),
    // Ironlog's own settings, which Kafka has no key for.
    key(
        "ironlog.metrics.listen",
        Kind::SocketAddr,
        Flag("metrics-listen"),
    ),
    key("ironlog.log.level", Kind::String, Flag("log-level")),
    key(
        "ironlog.request.read.timeout.ms",
        long(1),
        Flag("request-read-timeout-ms"),
    ),
    key(
        "ironlog.controller.advertised.listener",
        Kind::HostPort,
        Flag("controller-advertised-listener"),
    ),
];

/// The spec of `key`, if Ironlog accepts it.
pub fn lookup(key: &str) -> Option<&'static KeySpec> {
    TABLE.iter().find(|spec| spec.key == key)
}

/// Every accepted key, in table order.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|spec| spec.key)
}

/// The topic config a broker-wide default key sets, e.g. `log.retention.ms` →
/// `retention.ms`; `None` for keys that are not topic defaults.
pub fn topic_config_name(key: &str) -> Option<&'static str> {
    match lookup(key)?.sets {
        Sets::TopicDefault(name) | Sets::ScaledTopicDefault(name, _) => Some(name),
        _ => None,
    }
}

/// Checks that `key` is accepted and `value` is of its kind. Values are compared after
/// trimming surrounding whitespace.
///
/// Only the key's own value is checked here; rules between keys (the controller listener,
/// the listener named in `inter.broker.listener.name`, ...) are [`crate::resolve()`]'s.
///
/// # Errors
/// [`ConfigError::UnknownKey`] (with a suggestion when a known key is close),
/// [`ConfigError::UnsupportedKey`] for a Kafka key Ironlog does not implement
/// ([`UNSUPPORTED`]: keystores, JAAS, per-listener settings),
/// [`ConfigError::InvalidValue`], or [`ConfigError::NotSupported`] for Kafka values Ironlog
/// does not implement (controller-only nodes, several log directories).
pub fn check(key: &str, value: &str) -> Result<(), ConfigError> {
    checked_spec(key, value).map(|_| ())
}

/// [`check`], returning the key's spec.
pub(crate) fn checked_spec(key: &str, value: &str) -> Result<&'static KeySpec, ConfigError> {
    let spec = lookup(key).ok_or_else(|| match unsupported_reason(key) {
        Some(reason) => ConfigError::UnsupportedKey {
            key: key.to_string(),
            reason,
        },
        None => ConfigError::UnknownKey {
            key: key.to_string(),
            suggestion: suggest(key),
        },
    })?;
    check_value(spec, value.trim())?;
    Ok(spec)
}

/// Why `key`, a Kafka key Ironlog does not implement, is refused ([`UNSUPPORTED`]).
pub fn unsupported_reason(key: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(pattern, _)| {
            if pattern.ends_with('.') {
                key.starts_with(pattern)
            } else {
                key == *pattern
            }
        })
        .map(|(_, reason)| *reason)
}

fn check_value(spec: &KeySpec, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: spec.key,
        value: value.to_string(),
        reason,
    };
    let unsupported = |reason: String| ConfigError::NotSupported {
        key: spec.key,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid(
            "a value is needed (remove the line to use the default)".into(),
        ));
    }
    match spec.kind {
        Kind::Bool => {
            if value != "true" && value != "false" {
                return Err(invalid("must be true or false".into()));
            }
        }
        Kind::Int { min, max } => {
            let n = value
                .parse::<i64>()
                .map_err(|_| invalid("not a whole number".into()))?;
            if n < min || n > max {
                return Err(invalid(format!("must be from {min} to {max}")));
            }
        }
        Kind::Long { min } => {
            let n = value
                .parse::<i64>()
                .map_err(|_| invalid("not a whole number".into()))?;
            if n < min {
                return Err(invalid(format!("must be at least {min}")));
            }
        }
        Kind::Double { min, max } => {
            let n = value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| invalid("not a number".into()))?;
            if n < min || n > max {
                return Err(invalid(if max == f64::MAX {
                    format!("must be at least {min}")
                } else {
                    format!("must be from {min} to {max}")
                }));
            }
        }
        Kind::String => {}
        Kind::OneOf(words) => {
            if !words.contains(&value) {
                return Err(invalid(format!("must be one of {}", words.join(", "))));
            }
        }
        Kind::ListOf(words) => {
            if let Some(bad) = value.split(',').map(str::trim).find(|w| !words.contains(w)) {
                return Err(invalid(format!(
                    "{bad:?} is not one of {}",
                    words.join(", ")
                )));
            }
        }
        Kind::HostPort => check_host_port(value).map_err(invalid)?,
        Kind::SocketAddr => {
            value
                .parse::<std::net::SocketAddr>()
                .map_err(|_| invalid("must be ip:port, e.g. 0.0.0.0:9644".into()))?;
        }
        Kind::Listeners => {
            let parsed = listeners::parse(value).map_err(invalid)?;
            for listener in &parsed {
                listeners::check_bindable(listener).map_err(invalid)?;
            }
            listeners::check_distinct_ports(&parsed).map_err(invalid)?;
        }
        Kind::AdvertisedListeners => {
            for listener in listeners::parse(value).map_err(invalid)? {
                if listener.host.is_empty() {
                    return Err(invalid(format!(
                        "listener on port {} has no host; clients need a name or address to connect to",
                        listener.port
                    )));
                }
            }
        }
        Kind::Voters => {
            for voter in value.split(',').map(str::trim) {
                let (id, address) = voter
                    .split_once('@')
                    .ok_or_else(|| invalid(format!("{voter:?} is not id@host:port")))?;
                id.parse::<i32>()
                    .ok()
                    .filter(|id| *id >= 0)
                    .ok_or_else(|| invalid(format!("voter id {id:?} is not a node id")))?;
                check_host_port(address).map_err(invalid)?;
            }
        }
        Kind::ListenerName => check_listener_name(value).map_err(invalid)?,
        Kind::ListenerNames => {
            for name in value.split(',').map(str::trim) {
                check_listener_name(name).map_err(invalid)?;
            }
        }
        Kind::SecurityProtocolMap => {
            listeners::parse_protocol_map(value).map_err(invalid)?;
        }
        Kind::ProcessRoles => {
            let mut broker = false;
            for role in value.split(',').map(str::trim) {
                match role {
                    "broker" => broker = true,
                    "controller" => {}
                    other => {
                        return Err(invalid(format!(
                            "{other:?} is not a role (broker, controller)"
                        )))
                    }
                }
            }
            if !broker {
                return Err(unsupported(
                    "every Ironlog node is a broker (controller-only nodes are not supported yet); use broker,controller for a voter or broker for a node outside controller.quorum.voters".into(),
                ));
            }
        }
        Kind::Directory => {
            if value.split(',').filter(|d| !d.trim().is_empty()).count() > 1 {
                return Err(unsupported(
                    "Ironlog supports one log directory; give a single path".into(),
                ));
            }
            if value.trim_matches(',').trim().is_empty() {
                return Err(invalid("no directory given".into()));
            }
        }
    }
    Ok(())
}

fn check_host_port(value: &str) -> Result<(), String> {
    match value.rsplit_once(':') {
        Some((host, port))
            if !host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .is_empty()
                && port.parse::<u16>().is_ok() =>
        {
            Ok(())
        }
        _ => Err(format!("{value:?} is not host:port")),
    }
}

fn check_listener_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "listener name {name:?} must be letters, digits and underscores"
        ))
    }
}

/// A known key close to `unknown`: within two edits (a typo), or the broker-wide default
/// key of a topic config given by its topic name (`retention.ms` → `log.retention.ms`).
fn suggest(unknown: &str) -> Option<&'static str> {
    let closest = TABLE
        .iter()
        .map(|spec| (edit_distance(unknown, spec.key), spec.key))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key);
    closest.or_else(|| {
        TABLE
            .iter()
            .find(|spec| matches!(spec.sets, Sets::TopicDefault(name) if name == unknown))
            .map(|spec| spec.key)
    })
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of `kind` that passes, and one that fails.
    fn samples(kind: Kind) -> (String, String) {
        let (good, bad) = match kind {
            Kind::Bool => ("true".into(), "yes".into()),
            Kind::Int { min, .. } | Kind::Long { min } => (
                min.to_string(),
                // Below the minimum where there is one, else not a number.
                if min > i64::MIN {
                    (min - 1).to_string()
                } else {
                    "ten".into()
                },
            ),
            Kind::Double { min, .. } => (min.to_string(), (min - 1.0).to_string()),
            Kind::String => ("r1".into(), "".into()),
            Kind::OneOf(words) | Kind::ListOf(words) => (words[0].into(), "bogus".into()),
            Kind::HostPort => ("b1.example:9093".into(), "b1.example".into()),
            Kind::SocketAddr => ("0.0.0.0:9644".into(), "host.example:9644".into()),
            Kind::Listeners => (
                "PLAINTEXT://:9092,CONTROLLER://0.0.0.0:9093".into(),
                "PLAINTEXT://broker-0.example:9092".into(),
            ),
            Kind::AdvertisedListeners => (
                "PLAINTEXT://broker-0.example:9092".into(),
                "PLAINTEXT://:9092".into(),
            ),
            Kind::Voters => ("1@b1:9093,2@b2:9093".into(), "b1:9093".into()),
            Kind::ListenerName => ("PLAINTEXT".into(), "PLAIN TEXT".into()),
            Kind::ListenerNames => ("CONTROLLER,RAFT".into(), "CONTROLLER,".into()),
            Kind::SecurityProtocolMap => (
                "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
                "CLIENT:TLS".into(),
            ),
            Kind::ProcessRoles => ("broker,controller".into(), "controller".into()),
            Kind::Directory => ("/var/lib/ironlog".into(), "/d1,/d2".into()),
        };
        (good, bad)
    }

    #[test]
    fn every_key_accepts_a_good_value_and_refuses_a_bad_one() {
        for spec in TABLE {
            let (good, bad) = samples(spec.kind);
            assert_eq!(check(spec.key, &good), Ok(()), "{}={good}", spec.key);
            let err = check(spec.key, &bad).expect_err(&format!("{}={bad} must fail", spec.key));
            let message = err.to_string();
            assert!(message.contains(spec.key), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            // Every kind refuses an empty value, and numbers refuse words.
            assert!(check(spec.key, "  ").is_err(), "{} empty", spec.key);
            if matches!(
                spec.kind,
                Kind::Int { .. } | Kind::Long { .. } | Kind::Double { .. }
            ) {
                assert!(check(spec.key, "ten").is_err(), "{} word", spec.key);
            }
        }
    }

    #[test]
    fn keys_are_unique_and_lookup_finds_each() {
        let mut keys: Vec<&str> = known_keys().collect();
        let count = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), count, "a key is listed twice");
        for key in keys {
            assert_eq!(lookup(key).map(|s| s.key), Some(key));
        }
        assert_eq!(lookup("retention.ms"), None);
    }

    #[test]
    fn int_ranges_follow_the_flag_types() {
        assert!(check("default.replication.factor", "32767").is_ok());
        assert!(check("default.replication.factor", "32768").is_err());
        assert!(check("node.id", "2147483648").is_err());
        assert!(check("log.retention.ms", "-1").is_ok());
        assert!(check("log.retention.ms", "-2").is_err());
        assert!(check("log.cleanup.policy", "compact, delete").is_ok());
    }

    #[test]
    fn unknown_keys_suggest_a_close_known_key() {
        let err = check("log.retention.hour", "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown broker config key "log.retention.hour" (did you mean "log.retention.hours"?)"#
        );
        assert!(matches!(
            check("num.partition", "1"),
            Err(ConfigError::UnknownKey {
                suggestion: Some("num.partitions"),
                ..
            })
        ));
        // A topic config name suggests the broker-wide default key.
        assert!(matches!(
            check("retention.ms", "1"),
            Err(ConfigError::UnknownKey {
                suggestion: Some("log.retention.ms"),
                ..
            })
        ));
        assert!(matches!(
            check("segment.bytes", "1"),
            Err(ConfigError::UnknownKey {
                suggestion: Some("log.segment.bytes"),
                ..
            })
        ));
        // Nothing close: no suggestion.
        let err = check("zookeeper.connect", "zk:2181").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown broker config key "zookeeper.connect""#
        );
    }

    #[test]
    fn kafka_keystore_jaas_and_per_listener_keys_say_what_to_use_instead() {
        for key in [
            "ssl.keystore.location",
            "ssl.keystore.password",
            "ssl.key.password",
            "ssl.truststore.location",
            "ssl.client.auth",
            "ssl.enabled.protocols",
            "sasl.jaas.config",
            "listener.name.client.ssl.keystore.location",
            "listener.name.client.scram-sha-512.sasl.jaas.config",
        ] {
            let err = check(key, "x").unwrap_err();
            assert!(
                matches!(&err, ConfigError::UnsupportedKey { key: k, .. } if k == key),
                "{key}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("broker config key {key:?} is not supported: ")),
                "{message}"
            );
            assert!(
                message.contains("ironlog.tls.cert / ironlog.tls.key / ironlog.tls.client.ca"),
                "{message}"
            );
            assert!(!message.contains("unknown"), "{message}");
        }
        assert_eq!(
            check("ssl.keystore.location", "/etc/kafka/broker.jks")
                .unwrap_err()
                .to_string(),
            format!("broker config key \"ssl.keystore.location\" is not supported: {TLS_FILES}")
        );
        assert!(check("security.inter.broker.protocol", "SSL")
            .unwrap_err()
            .to_string()
            .contains("inter.broker.listener.name"));
        // Known keys are looked up first: the SASL key Ironlog has is accepted.
        assert_eq!(unsupported_reason("sasl.enabled.mechanisms"), None);
        assert_eq!(
            check("sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
            Ok(())
        );
        // A prefix pattern needs its dot: these are plain unknown keys.
        assert!(matches!(
            check("sslx.keystore", "x"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert_eq!(unsupported_reason("listener.names"), None);
        // Every accepted key is outside the unsupported patterns.
        for key in known_keys() {
            assert_eq!(unsupported_reason(key), None, "{key}");
        }
    }

    #[test]
    fn every_security_protocol_is_accepted_in_the_map() {
        for map in [
            "CLIENT:SASL_SSL",
            "CLIENT:SSL,INTERNAL:PLAINTEXT",
            "EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "PLAINTEXT:PLAINTEXT",
        ] {
            assert_eq!(
                check("listener.security.protocol.map", map),
                Ok(()),
                "{map}"
            );
        }
        assert!(check("listener.security.protocol.map", "CLIENT:TLS").is_err());
        assert!(check("listener.security.protocol.map", "CLIENT:SSL,client:SSL").is_err());
    }

    #[test]
    fn tls_and_sasl_keys() {
        assert_eq!(
            check("ironlog.tls.cert", "/etc/ironlog/tls/tls.crt"),
            Ok(())
        );
        assert_eq!(check("ironlog.tls.key", "/etc/ironlog/tls/tls.key"), Ok(()));
        assert_eq!(
            check("ironlog.tls.client.ca", "/etc/ironlog/ca.crt"),
            Ok(())
        );
        assert!(check("ironlog.tls.cert", " ").is_err());
        assert_eq!(check("ironlog.tls.reload.interval.ms", "1000"), Ok(()));
        assert!(check("ironlog.tls.reload.interval.ms", "0").is_err());
        assert_eq!(
            check(
                "sasl.enabled.mechanisms",
                "PLAIN, SCRAM-SHA-256,SCRAM-SHA-512"
            ),
            Ok(())
        );
        let err = check("sasl.enabled.mechanisms", "SCRAM-SHA-512,GSSAPI").unwrap_err();
        assert!(
            err.to_string().contains("\"GSSAPI\" is not one of"),
            "{err}"
        );
        assert_eq!(check("connections.max.reauth.ms", "0"), Ok(()));
        assert_eq!(check("connections.max.reauth.ms", "3600000"), Ok(()));
        assert!(check("connections.max.reauth.ms", "-1").is_err());
        assert_eq!(
            check(
                "ironlog.add.scram",
                "SCRAM-SHA-512=[name=admin,password=pw]"
            ),
            Ok(())
        );
        // Several Kafka listeners, any protocol, are fine for the key alone; distinct ports.
        assert_eq!(
            check(
                "listeners",
                "CLIENT://0.0.0.0:9093,INTERNAL://10.0.0.5:9094,CONTROLLER://:9095"
            ),
            Ok(())
        );
        let err = check("listeners", "CLIENT://:9093,INTERNAL://:9093").unwrap_err();
        assert!(err.to_string().contains("same port"), "{err}");
    }

    #[test]
    fn unsupported_kafka_values_say_so() {
        let err = check("log.dirs", "/data/a,/data/b").unwrap_err();
        assert!(
            err.to_string()
                .contains("Ironlog supports one log directory"),
            "{err}"
        );
        assert!(check("process.roles", "controller,broker").is_ok());
        assert!(check("process.roles", "broker").is_ok());
        let err = check("process.roles", "controller").unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");
        assert!(check("process.roles", "broker,observer").is_err());
    }

    #[test]
    fn topic_default_keys_name_their_topic_config() {
        for (key, topic) in [
            ("log.retention.ms", "retention.ms"),
            ("log.retention.hours", "retention.ms"),
            ("log.roll.hours", "segment.ms"),
            ("log.index.size.max.bytes", "segment.index.bytes"),
            (
                "log.cleaner.min.cleanable.ratio",
                "min.cleanable.dirty.ratio",
            ),
            ("message.max.bytes", "max.message.bytes"),
            ("log.flush.interval.messages", "flush.messages"),
            ("compression.type", "compression.type"),
        ] {
            assert_eq!(topic_config_name(key), Some(topic), "{key}");
        }
        assert_eq!(topic_config_name("num.partitions"), None);
        assert_eq!(topic_config_name("no.such.key"), None);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("log.dirs", "log.dir"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
