//! The Kafka broker config keys Ironlog accepts: the one list of them, how to read a
//! `server.properties` file, and what each key sets.
//!
//! `ironlog broker --config FILE` reads a file with it; the operator checks a
//! KafkaCluster's `spec.config` with it before writing the file into a ConfigMap.
//!
//! **Dependency rule:** pure. No I/O, no clock, no server or Kubernetes code; only
//! `thiserror`. The broker maps what a file sets onto its flags (`ironlog_server::config`);
//! the operator must not need anything beyond this crate to validate a config.
//!
//! # Layout
//!
//! - [`properties`]: Java-properties text → [`Entry`]s (`key`, `value`, `line`).
//! - [`keys`]: the [`TABLE`] of accepted keys, [`lookup`], [`check`], [`known_keys`],
//!   [`topic_config_name`], and the Kafka keys Ironlog refuses with what to use instead
//!   ([`UNSUPPORTED`]).
//! - [`listeners`]: Kafka's `NAME://host:port,...` lists, which entry is which listener and
//!   each one's security protocol.
//! - [`resolve`](mod@resolve): a whole file → [`Settings`]: the `ironlog broker` flags and
//!   broker-wide topic config defaults it sets, with the rules between keys.
//!
//! # File format
//!
//! Java properties, as Kafka's `server.properties`: `key=value`, `key: value` or
//! `key value`, one per line; `#` and `!` start comment lines; blank lines are skipped;
//! whitespace around keys and values is dropped; a line ending in `\` continues on the next
//! line. A key given twice is an error naming both lines, and so are two keys that set the
//! same thing (`log.dir` and `log.dirs`, `node.id` and `broker.id`). The one exception is
//! Kafka's unit precedence for topic defaults: `log.retention.ms` beats
//! `log.retention.minutes`, which beats `log.retention.hours`; `log.roll.ms` beats
//! `log.roll.hours`.
//!
//! ```text
//! process.roles=broker,controller
//! node.id=1
//! controller.quorum.voters=1@broker-0:9093,2@broker-1:9093,3@broker-2:9093
//! listeners=PLAINTEXT://:9092,CONTROLLER://:9093
//! advertised.listeners=PLAINTEXT://broker-0.example:9092
//! log.dirs=/var/lib/ironlog
//! num.partitions=3
//! log.retention.hours=168
//! ```
//!
//! With TLS and SASL: clients on a SASL_SSL listener, brokers on a PLAINTEXT one on a
//! private network.
//!
//! ```text
//! listeners=CLIENT://:9093,INTERNAL://10.0.0.5:9094,CONTROLLER://10.0.0.5:9095
//! advertised.listeners=CLIENT://broker-0.example:9093,INTERNAL://10.0.0.5:9094
//! listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
//! inter.broker.listener.name=INTERNAL
//! ironlog.tls.cert=/etc/ironlog/tls/tls.crt
//! ironlog.tls.key=/etc/ironlog/tls/tls.key
//! sasl.enabled.mechanisms=SCRAM-SHA-512
//! ```
//!
//! # Precedence
//!
//! For each `ironlog broker` flag: the command line, then its `IRONLOG_*` environment
//! variable, then the config file, then the built-in default. Topic-default keys
//! (`log.retention.ms`, ...) combine with `--default-topic-config NAME=value`; for the same
//! topic config the flag wins. The broker reads the file once, at start-up, and refuses to
//! start on any problem in it (naming the file, line and key).
//!
//! # Keys
//!
//! Kafka's names and meanings. Kinds: *int* (32-bit, or 16-bit where marked *short*),
//! *long*, *double*, *bool* (`true`/`false`); ranges are the ones the broker accepts.
//! Keys Kafka doesn't have, for Ironlog's own flags, are `ironlog.<flag name with dots>`.
//!
//! | key | kind | sets |
//! | --- | --- | --- |
//! | `node.id`, `broker.id` | int ≥ 0 | `--node-id` (give one of them) |
//! | `process.roles` | `broker,controller` or `broker` | nothing: every node is a broker; a node in `controller.quorum.voters` needs `controller`, one outside it must not have it. `controller` alone is not supported yet |
//! | `listeners` | `NAME://ip:port,...` or `ip:port` | the entry named in `controller.listener.names` → `--controller-listen` (it must be PLAINTEXT). The other entries are the Kafka listeners: exactly one listener named PLAINTEXT (or unnamed) → `--listen ip:port`; otherwise (several, one with a name of its own like `PLAIN://`, or one SSL, SASL_PLAINTEXT or SASL_SSL listener) → `--listeners NAME://host:port,...` with the Kafka entries as written. Names are unique; with several Kafka listeners each needs a name; no two entries share a port. An empty host binds every interface, `localhost` the loopback; host names are refused (bind an address, advertise the name) |
//! | `advertised.listeners` | `NAME://host:port,...` or `host:port` | the Kafka entries → `--advertised-listener host:port` when `listeners` maps to `--listen` (or, without `listeners`, when they are one listener named PLAINTEXT, or unnamed), else `--advertised-listeners NAME://host:port,...`; each name must be one of `listeners`'. A controller entry → `--controller-advertised-listener` |
//! | `controller.listener.names` | listener names | nothing: names the controller listener (default `CONTROLLER`) |
//! | `inter.broker.listener.name` | listener name | `--inter-broker-listener-name`: the Kafka listener brokers fetch from and register; it must be one in `listeners`, not the controller listener. Not passed on when `listeners` maps to `--listen` (then it must name that listener). Its protocol may be any of the four; a TLS or SASL one needs the inter-broker TLS and SASL settings below |
//! | `listener.security.protocol.map` | `NAME:PROTOCOL,...` | `--listener-security-protocol-map`, as written; protocols are `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` and `SASL_SSL`. A name not in it is its own protocol when it is one's name (`SSL://:9093`), else PLAINTEXT |
//! | `controller.quorum.voters` | `id@host:port,...` | `--voters` |
//! | `broker.rack` | string | `--rack` |
//! | `log.dirs`, `log.dir` | one directory | `--data-dir` (Ironlog supports one log directory) |
//! | `auto.create.topics.enable` | bool | `--auto-create-topics` |
//! | `num.partitions` | int ≥ 1 | `--default-partitions` |
//! | `default.replication.factor` | short ≥ 1 | `--default-replication-factor` |
//! | `socket.request.max.bytes` | int ≥ 1 | `--socket-request-max-bytes` |
//! | `queued.max.request.bytes` | long ≥ 1 | `--queued-max-request-bytes` (Kafka's -1, unlimited, is refused) |
//! | `max.connections` | int ≥ 1 | `--max-connections` |
//! | `max.connections.per.ip` | int ≥ 1 | `--max-connections-per-ip` |
//! | `connections.max.idle.ms` | long ≥ 1 | `--connections-max-idle-ms` |
//! | `max.incremental.fetch.session.cache.slots` | int ≥ 0 | `--max-incremental-fetch-session-cache-slots`: fetch sessions (KIP-227) kept at once; 0 disables them |
//! | `ironlog.log.write.behind.bytes` | long ≥ 0 | `--log-write-behind-bytes`: bytes behind each partition's log end kept in the page cache, older appended data is written back and dropped from it (default 16 MiB; 0 leaves it to the OS, as Kafka does) |
//! | `ironlog.tls.cert` | path | `--tls-cert`: the certificate chain (PEM) of SSL and SASL_SSL listeners |
//! | `ironlog.tls.key` | path | `--tls-key`: its private key (PEM) |
//! | `ironlog.tls.client.ca` | path | `--tls-client-ca`: CA certificates (PEM) client certificates must chain to (mutual TLS on SSL listeners) |
//! | `ironlog.inter.broker.tls.ca` | path | `--inter-broker-tls-ca`: CA certificates (PEM) other brokers' certificates must chain to (default: `ironlog.tls.client.ca`) |
//! | `ironlog.controller.security.protocol` | `PLAINTEXT` or `SSL` | `--controller-security-protocol`: mutual TLS on the controller (Raft) listener |
//! | `sasl.mechanism.inter.broker.protocol` | `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` | `--sasl-mechanism-inter-broker-protocol` |
//! | `ironlog.inter.broker.sasl.username` | string | `--inter-broker-sasl-username`: who followers log in as on a SASL inter-broker listener |
//! | `ironlog.inter.broker.sasl.password` | string | `--inter-broker-sasl-password` |
//! | `ironlog.tls.reload.interval.ms` | long ≥ 1 | `--tls-reload-interval-ms`: how often the TLS files are checked for changes |
//! | `sasl.enabled.mechanisms` | list of `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` | `--sasl-enabled-mechanisms` |
//! | `connections.max.reauth.ms` | long ≥ 0 | `--connections-max-reauth-ms` (0: SASL sessions don't expire) |
//! | `ironlog.add.scram` | `MECHANISM=[name=...,password=...];...` | `--add-scram`: SCRAM users created at start-up when missing |
//! | `ironlog.authorizer` | `none` or `acl` | `--authorizer`: Kafka's ACL authorizer (deny by default) |
//! | `super.users` | `User:a;User:b` | `--super-users`: principals allowed everything |
//! | `allow.everyone.if.no.acl.found` | bool | `--allow-everyone-if-no-acl-found` |
//! | `group.initial.rebalance.delay.ms` | int ≥ 0 | `--group-initial-rebalance-delay-ms` |
//! | `group.min.session.timeout.ms` | int ≥ 1 | `--group-min-session-timeout-ms` |
//! | `group.max.session.timeout.ms` | int ≥ 1 | `--group-max-session-timeout-ms` |
//! | `offsets.retention.minutes` | int ≥ 1 | `--offsets-retention-minutes` |
//! | `offsets.topic.replication.factor` | short ≥ 1 | `--offsets-topic-replication-factor` |
//! | `log.cleaner.enable` | bool | `--log-cleaner-enable` |
//! | `log.cleaner.io.max.bytes.per.second` | double ≥ 0 | `--log-cleaner-io-max-bytes-per-second` |
//! | `log.cleaner.dedupe.buffer.size` | long ≥ 1024 | `--log-cleaner-dedupe-buffer-size` |
//! | `log.cleaner.backoff.ms` | long ≥ 1 | `--log-cleaner-backoff-ms` |
//! | `broker.session.timeout.ms` | int ≥ 1 | `--broker-session-timeout-ms` |
//! | `broker.heartbeat.interval.ms` | int ≥ 1 | `--broker-heartbeat-interval-ms` |
//! | `replica.lag.time.max.ms` | long ≥ 0 | `--replica-lag-time-max-ms` |
//! | `replica.fetch.wait.max.ms` | int ≥ 0 | `--replica-fetch-wait-max-ms` |
//! | `replica.fetch.max.bytes` | int ≥ 0 | `--replica-fetch-max-bytes` |
//! | `auto.leader.rebalance.enable` | bool | `--auto-leader-rebalance-enable` |
//! | `leader.imbalance.check.interval.seconds` | long ≥ 1 | `--leader-imbalance-check-interval-ms` (× 1000) |
//! | `log.retention.ms` | long ≥ -1 | topic default `retention.ms` (-1: unlimited) |
//! | `log.retention.minutes` | int ≥ -1 | topic default `retention.ms` (× 60000) unless `log.retention.ms` is given |
//! | `log.retention.hours` | int ≥ -1 | topic default `retention.ms` (× 3600000) unless one of the two above is given |
//! | `log.retention.bytes` | long ≥ -1 | topic default `retention.bytes` |
//! | `log.segment.bytes` | int ≥ 14 | topic default `segment.bytes` |
//! | `log.roll.ms` | long ≥ 1 | topic default `segment.ms` |
//! | `log.roll.hours` | int ≥ 1 | topic default `segment.ms` (× 3600000) unless `log.roll.ms` is given |
//! | `log.index.size.max.bytes` | int ≥ 8 | topic default `segment.index.bytes` |
//! | `log.index.interval.bytes` | int ≥ 0 | topic default `index.interval.bytes` |
//! | `log.cleanup.policy` | list of `delete`, `compact` | topic default `cleanup.policy` |
//! | `log.cleaner.delete.retention.ms` | long ≥ 0 | topic default `delete.retention.ms` |
//! | `log.cleaner.min.compaction.lag.ms` | long ≥ 0 | topic default `min.compaction.lag.ms` |
//! | `log.cleaner.max.compaction.lag.ms` | long ≥ 1 | topic default `max.compaction.lag.ms` |
//! | `log.cleaner.min.cleanable.ratio` | double 0 to 1 | topic default `min.cleanable.dirty.ratio` |
//! | `message.max.bytes` | int ≥ 0 | topic default `max.message.bytes` |
//! | `log.flush.interval.messages` | long ≥ 1 | topic default `flush.messages` |
//! | `log.flush.interval.ms` | long ≥ 0 | topic default `flush.ms` |
//! | `log.message.timestamp.type` | `CreateTime` or `LogAppendTime` | topic default `message.timestamp.type` |
//! | `log.message.timestamp.before.max.ms` | long ≥ 0 | topic default `message.timestamp.before.max.ms` |
//! | `log.message.timestamp.after.max.ms` | long ≥ 0 | topic default `message.timestamp.after.max.ms` |
//! | `log.preallocate` | bool | topic default `preallocate` |
//! | `log.segment.delete.delay.ms` | long ≥ 0 | topic default `file.delete.delay.ms` |
//! | `min.insync.replicas` | int ≥ 1 | topic default `min.insync.replicas` |
//! | `unclean.leader.election.enable` | bool | topic default `unclean.leader.election.enable` |
//! | `compression.type` | `producer`, `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd` | topic default `compression.type` |
//! | `ironlog.metrics.listen` | `ip:port` | `--metrics-listen` |
//! | `ironlog.log.level` | string | `--log-level` |
//! | `ironlog.request.read.timeout.ms` | long ≥ 1 | `--request-read-timeout-ms` |
//! | `ironlog.controller.advertised.listener` | `host:port` | `--controller-advertised-listener` |
//!
//! Every `ironlog broker` flag but `--config` has a key (`--default-topic-config` through
//! the topic-default keys); the server's tests check it.
//!
//! Kafka's keystore, JAAS and per-listener keys are refused as not supported, saying what to
//! use instead: every `ssl.*` key (`ssl.keystore.location`, `ssl.truststore.location`,
//! `ssl.client.auth`, ...: TLS takes PEM files, `ironlog.tls.cert` / `ironlog.tls.key` /
//! `ironlog.tls.client.ca`), `sasl.jaas.config` (SASL users are SCRAM credentials in the
//! cluster metadata), every `listener.name.*` key (TLS and SASL settings apply to every
//! listener), `security.inter.broker.protocol` (use `inter.broker.listener.name`). Any other key is refused as unknown, with a
//! suggestion when a known key is close (a topic config name like `retention.ms` suggests
//! its broker-wide key).

pub mod keys;
pub mod listeners;
pub mod properties;
pub mod resolve;

pub use keys::{
    check, known_keys, lookup, topic_config_name, KeySpec, Kind, Sets, TABLE, UNSUPPORTED,
};
pub use properties::{parse_properties, Entry};
pub use resolve::{resolve, Setting, Settings};

/// A config file or value Ironlog's broker won't take. Each message names the key (and,
/// through [`ConfigError::AtLine`], the line); the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: {key:?} is given twice (first on line {first})")]
    DuplicateKey {
        key: String,
        first: usize,
        line: usize,
    },
    #[error("unknown broker config key {key:?}{}", did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    /// A Kafka key Ironlog does not implement; `reason` says what to use instead.
    #[error("broker config key {key:?} is not supported: {reason}")]
    UnsupportedKey { key: String, reason: &'static str },
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// A value Kafka accepts but Ironlog doesn't implement.
    #[error("unsupported value {value:?} for {key}: {reason}")]
    NotSupported {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// Two keys that set the same thing.
    #[error("{key} and {other} (line {other_line}) both set {what}; keep one")]
    Conflict {
        key: &'static str,
        other: &'static str,
        other_line: usize,
        what: String,
    },
    /// A key whose value disagrees with other keys.
    #[error("{key}: {reason}")]
    Inconsistent { key: &'static str, reason: String },
    /// Another error, on this line of the file.
    #[error("line {line}: {error}")]
    AtLine {
        line: usize,
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    /// This error, located on `line`.
    pub fn at(self, line: usize) -> ConfigError {
        ConfigError::AtLine {
            line,
            error: Box::new(self),
        }
    }

    /// The line the error is on, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. }
            | ConfigError::DuplicateKey { line, .. }
            | ConfigError::AtLine { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doc_table_lists_every_key() {
        let docs = include_str!("lib.rs");
        for key in known_keys() {
            assert!(
                docs.contains(&format!("| `{key}` |"))
                    || docs.contains(&format!("`{key}`, `"))
                    || docs.contains(&format!(", `{key}` |")),
                "{key} is missing from the key table in the crate docs"
            );
        }
    }

    #[test]
    fn errors_are_located() {
        let err = check("nope", "1").unwrap_err();
        assert_eq!(err.line(), None);
        assert_eq!(err.at(4).line(), Some(4));
    }
}
