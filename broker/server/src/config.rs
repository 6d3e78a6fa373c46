//! Broker configuration: command-line flags, each also settable as an `IRONLOG_<FLAG>`
//! environment variable (for containers) and as a key of a Kafka-style `server.properties`
//! given with `--config` ([`file`](mod@file)), resolved into a [`BrokerConfig`].
//!
//! Precedence, per flag: command line > environment variable > config file > built-in
//! default.

pub mod file;
pub mod security;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// `ironlog broker` flags.
///
/// Every flag but `--config` has a key in `ironlog_broker_config::TABLE` (checked by a
/// test in [`file`](mod@file)); a new flag needs one there too.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// A Kafka-style server.properties, read at start-up. Flags and their IRONLOG_*
    /// variables override it (accepted keys: the ironlog-broker-config crate docs).
    #[arg(long, env = "IRONLOG_CONFIG")]
    pub config: Option<PathBuf>,
    /// This broker's id, as listed in Metadata responses.
    #[arg(long, env = "IRONLOG_NODE_ID", default_value_t = 1)]
    pub node_id: i32,
    /// Address the Kafka listener binds.
    #[arg(long, env = "IRONLOG_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// `host:port` clients are told to connect to (default: the listen address).
    #[arg(long, env = "IRONLOG_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Kafka listeners, `NAME://host:port,...` (Kafka's `listeners`, without the controller
    /// listener); replaces `--listen`. A name that is a security protocol (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL) is that protocol, others take theirs from
    /// `--listener-security-protocol-map`.
    #[arg(long, env = "IRONLOG_LISTENERS")]
    pub listeners: Option<String>,
    /// What Metadata answers for each listener, `NAME://host:port,...` (default: its bind
    /// address).
    #[arg(long, env = "IRONLOG_ADVERTISED_LISTENERS")]
    pub advertised_listeners: Option<String>,
    /// `NAME:PROTOCOL,...`, Kafka's listener.security.protocol.map.
    #[arg(long, env = "IRONLOG_LISTENER_SECURITY_PROTOCOL_MAP")]
    pub listener_security_protocol_map: Option<String>,
    /// The listener other brokers fetch from (default: the first PLAINTEXT listener, else
    /// the first). Followers connect to it secured as its protocol says: TLS verified with
    /// --inter-broker-tls-ca (presenting --tls-cert as their client certificate), SASL with
    /// --sasl-mechanism-inter-broker-protocol as --inter-broker-sasl-username.
    #[arg(long, env = "IRONLOG_INTER_BROKER_LISTENER_NAME")]
    pub inter_broker_listener_name: Option<String>,
    /// Kafka's sasl.mechanism.inter.broker.protocol: how followers authenticate on a SASL
    /// inter-broker listener.
    #[arg(
        long,
        env = "IRONLOG_SASL_MECHANISM_INTER_BROKER_PROTOCOL",
        default_value = "SCRAM-SHA-512"
    )]
    pub sasl_mechanism_inter_broker_protocol: String,
    /// The user followers authenticate as on a SASL inter-broker listener (Kafka takes it
    /// from the listener's JAAS login). Under --authorizer acl it must be a super user.
    #[arg(long, env = "IRONLOG_INTER_BROKER_SASL_USERNAME")]
    pub inter_broker_sasl_username: Option<String>,
    /// Its password. Prefer the IRONLOG_INTER_BROKER_SASL_PASSWORD variable or the config
    /// file: command lines are visible to other local users.
    #[arg(
        long,
        env = "IRONLOG_INTER_BROKER_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub inter_broker_sasl_password: Option<String>,
    /// CA certificates (PEM) the other brokers' certificates must chain to, on a TLS
    /// inter-broker listener (default: --tls-client-ca, as Kafka uses one truststore).
    #[arg(long, env = "IRONLOG_INTER_BROKER_TLS_CA")]
    pub inter_broker_tls_ca: Option<PathBuf>,
    /// The broker's certificate chain (PEM) for SSL and SASL_SSL listeners. Re-read when it
    /// changes.
    #[arg(long, env = "IRONLOG_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "IRONLOG_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) client certificates must chain to: mutual TLS. On SSL
    /// listeners a client certificate is then required and its subject is the principal
    /// (`User:CN=...,O=...`).
    #[arg(long, env = "IRONLOG_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the TLS files are checked for changes, in ms.
    #[arg(long, env = "IRONLOG_TLS_RELOAD_INTERVAL_MS", default_value_t = 5_000)]
    pub tls_reload_interval_ms: u64,
    /// SASL mechanisms served on SASL listeners (Kafka's sasl.enabled.mechanisms).
    #[arg(
        long,
        env = "IRONLOG_SASL_ENABLED_MECHANISMS",
        default_value = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
    )]
    pub sasl_enabled_mechanisms: String,
    /// Kafka's connections.max.reauth.ms: SASL sessions last this long, then the client
    /// re-authenticates (KIP-368); 0: sessions don't expire.
    #[arg(long, env = "IRONLOG_CONNECTIONS_MAX_REAUTH_MS", default_value_t = 0)]
    pub connections_max_reauth_ms: u64,
    /// A SCRAM user to create at start-up if it has no credential for that mechanism yet,
    /// repeatable: `SCRAM-SHA-512=[name=admin,password=...]` (as kafka-storage format
    /// --add-scram). Prefer the IRONLOG_ADD_SCRAM variable or the config file: command lines
    /// are visible to other local users.
    #[arg(long = "add-scram", env = "IRONLOG_ADD_SCRAM", value_delimiter = ';')]
    pub add_scram: Vec<String>,
    /// `acl` turns on Kafka's ACL authorizer (deny by default: a principal may do only what
    /// ACLs allow); `none` (default) allows every authenticated request.
    #[arg(long, env = "IRONLOG_AUTHORIZER", default_value = "none", value_parser = ["none", "acl"])]
    pub authorizer: String,
    /// Principals allowed everything, `User:admin;User:other` (Kafka's super.users).
    #[arg(long, env = "IRONLOG_SUPER_USERS", value_delimiter = ';')]
    pub super_users: Vec<String>,
    /// Kafka's allow.everyone.if.no.acl.found: with the ACL authorizer, a resource no ACL
    /// names at all is open to everyone.
    #[arg(
        long,
        env = "IRONLOG_ALLOW_EVERYONE_IF_NO_ACL_FOUND",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub allow_everyone_if_no_acl_found: bool,
    /// Directory holding the partition logs and the broker's metadata.
    #[arg(long, env = "IRONLOG_DATA_DIR", default_value = "./ironlog-data")]
    pub data_dir: PathBuf,
    /// Address serving `GET /metrics` (Prometheus) and `GET /health`.
    #[arg(long, env = "IRONLOG_METRICS_LISTEN", default_value = "127.0.0.1:9644")]
    pub metrics_listen: SocketAddr,
    /// Create a topic when a client asks Metadata for one that doesn't exist.
    #[arg(long, env = "IRONLOG_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics and of CreateTopics with num_partitions = -1.
    #[arg(long, env = "IRONLOG_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,
    /// Kafka's default.replication.factor: replication factor of auto-created topics and of
    /// CreateTopics with replication_factor = -1. Not capped by the live brokers: more
    /// than there are fails topic creation with INVALID_REPLICATION_FACTOR, as in Kafka.
    #[arg(long, env = "IRONLOG_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    pub default_replication_factor: i16,
    /// Largest request accepted (Kafka's socket.request.max.bytes).
    #[arg(long, env = "IRONLOG_SOCKET_REQUEST_MAX_BYTES", default_value_t = ironlog_protocol::frame::DEFAULT_MAX_REQUEST_BYTES)]
    pub socket_request_max_bytes: usize,
    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(long, env = "IRONLOG_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Kafka's max.incremental.fetch.session.cache.slots: the most fetch sessions (KIP-227)
    /// kept at once; 0 disables them (every Fetch is then answered as a full fetch).
    #[arg(
        long,
        env = "IRONLOG_MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS",
        default_value_t = crate::fetch_session::DEFAULT_CACHE_SLOTS
    )]
    pub max_incremental_fetch_session_cache_slots: usize,
    /// Bytes behind each partition's log end kept in the page cache; older appended data is
    /// written back and dropped from it, so appends reuse warm pages (see the storage crate's
    /// `write_behind`). 0 leaves the page cache to the OS, as Kafka does.
    #[arg(
        long,
        env = "IRONLOG_LOG_WRITE_BEHIND_BYTES",
        default_value_t = ironlog_storage::write_behind::DEFAULT_WINDOW
    )]
    pub log_write_behind_bytes: u64,
    /// Kafka's queued.max.request.bytes: the most bytes of requests being read or waiting to
    /// be handled, across all connections. Must be at least --socket-request-max-bytes, or a
    /// request of the largest allowed size could never be read.
    #[arg(
        long,
        env = "IRONLOG_QUEUED_MAX_REQUEST_BYTES",
        default_value_t = NetLimits::DEFAULT.queued_max_request_bytes
    )]
    pub queued_max_request_bytes: usize,
    /// Kafka's max.connections.per.ip: connections from one address beyond this are closed
    /// as soon as they are accepted.
    #[arg(
        long,
        env = "IRONLOG_MAX_CONNECTIONS_PER_IP",
        default_value_t = NetLimits::DEFAULT.max_connections_per_ip
    )]
    pub max_connections_per_ip: usize,
    /// Kafka's connections.max.idle.ms: a connection that completes no request for this long
    /// is closed, and so is one whose request takes longer than this to arrive.
    #[arg(
        long,
        env = "IRONLOG_CONNECTIONS_MAX_IDLE_MS",
        default_value_t = NetLimits::DEFAULT.connections_max_idle_ms
    )]
    pub connections_max_idle_ms: u64,
    /// A connection that sends no byte of a started request for this long is closed.
    #[arg(
        long,
        env = "IRONLOG_REQUEST_READ_TIMEOUT_MS",
        default_value_t = NetLimits::DEFAULT.request_read_timeout_ms
    )]
    pub request_read_timeout_ms: u64,
    /// Log filter, e.g. `info` or `ironlog_server=debug,info` (tracing EnvFilter syntax).
    #[arg(
        long,
        env = "IRONLOG_LOG_LEVEL",
        default_value = "info,openraft=error,openraft::replication=off,openraft::engine=off"
    )]
    pub log_level: String,
    /// Kafka's group.initial.rebalance.delay.ms: how long a new group's first rebalance waits
    /// for more members.
    #[arg(
        long,
        env = "IRONLOG_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3_000
    )]
    pub group_initial_rebalance_delay_ms: i64,
    /// Kafka's group.min.session.timeout.ms.
    #[arg(
        long,
        env = "IRONLOG_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    pub group_min_session_timeout_ms: i32,
    /// Kafka's group.max.session.timeout.ms.
    #[arg(
        long,
        env = "IRONLOG_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: i32,
    /// Kafka's offsets.retention.minutes: committed offsets of an empty group expire after this.
    #[arg(
        long,
        env = "IRONLOG_OFFSETS_RETENTION_MINUTES",
        default_value_t = 10_080
    )]
    pub offsets_retention_minutes: i64,
    /// Kafka's log.cleaner.enable: run the log cleaner (compaction of `cleanup.policy=compact`
    /// topics, `__consumer_offsets` included). Turning it off lets compacted topics grow.
    #[arg(long, env = "IRONLOG_LOG_CLEANER_ENABLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub log_cleaner_enable: bool,
    /// Kafka's log.cleaner.io.max.bytes.per.second: the cleaner's read + write rate cap
    /// (0 = unlimited).
    #[arg(
        long,
        env = "IRONLOG_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND",
        default_value_t = 0.0
    )]
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// Kafka's log.cleaner.dedupe.buffer.size: the cleaner's key → offset map budget.
    #[arg(
        long,
        env = "IRONLOG_LOG_CLEANER_DEDUPE_BUFFER_SIZE",
        default_value_t = ironlog_storage::cleaner::DEFAULT_DEDUPE_BUFFER_BYTES
    )]
    pub log_cleaner_dedupe_buffer_size: usize,
    /// Kafka's log.cleaner.backoff.ms: how often compacted logs are checked for cleaning.
    #[arg(
        long,
        env = "IRONLOG_LOG_CLEANER_BACKOFF_MS",
        default_value_t = DEFAULT_CLEANER_BACKOFF_MS
    )]
    pub log_cleaner_backoff_ms: u64,
    /// The controller listener (Raft RPCs between quorum members, forwarded proposals),
    /// like Kafka's `listeners=CONTROLLER://...`. Needed with `--voters`.
    #[arg(long, env = "IRONLOG_CONTROLLER_LISTEN")]
    pub controller_listen: Option<SocketAddr>,
    /// Where other nodes reach this node's controller listener, `host:port` (default: the
    /// `--controller-listen` address, or the advertised host with its port when that
    /// address is a wildcard like 0.0.0.0).
    #[arg(long, env = "IRONLOG_CONTROLLER_ADVERTISED_LISTENER")]
    pub controller_advertised_listener: Option<String>,
    /// `SSL`: mutual TLS on the controller listener and to the other nodes' (every node of
    /// the cluster must say so). A node presents --tls-cert, accepts peers whose certificates
    /// chain to --tls-client-ca, and checks the ones it connects to against
    /// --inter-broker-tls-ca (default --tls-client-ca). `PLAINTEXT` (default): plain TCP.
    #[arg(
        long,
        env = "IRONLOG_CONTROLLER_SECURITY_PROTOCOL",
        default_value = "PLAINTEXT",
        value_parser = ["PLAINTEXT", "SSL"]
    )]
    pub controller_security_protocol: String,
    /// The metadata quorum's voters, `id@host:port,...` (Kafka's controller.quorum.voters).
    /// A node listed is a broker and a voter; a node not listed joins as a broker that
    /// follows the metadata without voting. Without it the node is a cluster of one.
    #[arg(long, env = "IRONLOG_VOTERS", value_delimiter = ',', value_parser = parse_voter)]
    pub voters: Vec<(i32, String)>,
    /// This broker's rack (Kafka's broker.rack): replicas of a partition go to different
    /// racks first.
    #[arg(long, env = "IRONLOG_RACK")]
    pub rack: Option<String>,
    /// Kafka's broker.session.timeout.ms: a broker whose heartbeats stop for this long is
    /// fenced and its partition leaderships move.
    #[arg(
        long,
        env = "IRONLOG_BROKER_SESSION_TIMEOUT_MS",
        default_value_t = 9_000
    )]
    pub broker_session_timeout_ms: u64,
    /// Kafka's broker.heartbeat.interval.ms.
    #[arg(
        long,
        env = "IRONLOG_BROKER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub broker_heartbeat_interval_ms: u64,
    /// Kafka's offsets.topic.replication.factor, capped by the brokers registered when
    /// `__consumer_offsets` is created.
    #[arg(
        long,
        env = "IRONLOG_OFFSETS_TOPIC_REPLICATION_FACTOR",
        default_value_t = 3
    )]
    pub offsets_topic_replication_factor: i16,
    /// Kafka's replica.lag.time.max.ms: an in-sync follower not caught up with the leader
    /// for this long leaves the ISR.
    #[arg(
        long,
        env = "IRONLOG_REPLICA_LAG_TIME_MAX_MS",
        default_value_t = 30_000
    )]
    pub replica_lag_time_max_ms: u64,
    /// Kafka's replica.fetch.wait.max.ms: how long a follower's Fetch waits at the leader
    /// for new records.
    #[arg(long, env = "IRONLOG_REPLICA_FETCH_WAIT_MAX_MS", default_value_t = 500)]
    pub replica_fetch_wait_max_ms: u64,
    /// Kafka's replica.fetch.max.bytes (per partition per follower Fetch).
    #[arg(
        long,
        env = "IRONLOG_REPLICA_FETCH_MAX_BYTES",
        default_value_t = 1_048_576
    )]
    pub replica_fetch_max_bytes: i32,
    /// Kafka's auto.leader.rebalance.enable: the controller moves leadership back to each
    /// partition's preferred replica once it is in sync again.
    #[arg(
        long,
        env = "IRONLOG_AUTO_LEADER_REBALANCE_ENABLE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub auto_leader_rebalance_enable: bool,
    /// How often the controller looks for partitions not led by their preferred replica
    /// (Kafka's leader.imbalance.check.interval.seconds, in ms).
    #[arg(
        long,
        env = "IRONLOG_LEADER_IMBALANCE_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub leader_imbalance_check_interval_ms: u64,
    /// Broker-wide default for topic configs, repeatable: `--default-topic-config flush.messages=1`.
    #[arg(long = "default-topic-config", env = "IRONLOG_DEFAULT_TOPIC_CONFIG", value_delimiter = ',', value_parser = parse_key_value)]
    pub default_topic_config: Vec<(String, String)>,
}

fn parse_voter(s: &str) -> Result<(i32, String), String> {
    let (id, addr) = s
        .trim()
        .split_once('@')
        .ok_or_else(|| format!("expected id@host:port, got {s:?}"))?;
    let id = id
        .parse::<i32>()
        .map_err(|_| format!("voter id {id:?} in {s:?} is not a number"))?;
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok((id, addr.to_string()))
        }
        _ => Err(format!("voter address {addr:?} in {s:?} is not host:port")),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// The resolved broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The inter-broker listener's bind address.
    pub listen: SocketAddr,
    /// The inter-broker listener's advertised address: what this broker registers.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Every Kafka listener, the inter-broker one included.
    pub listeners: Vec<security::ListenerConfig>,
    pub inter_broker_listener: String,
    /// How this broker's followers connect to the inter-broker listener of their leaders.
    pub inter_broker_client: ironlog_client::SecurityConfig,
    pub security: security::SecurityConfig,
    pub data_dir: PathBuf,
    pub metrics_listen: SocketAddr,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    pub default_replication_factor: i16,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// `max.incremental.fetch.session.cache.slots`.
    pub fetch_session_cache_slots: usize,
    /// `--log-write-behind-bytes`.
    pub log_write_behind_bytes: u64,
    pub default_topic_config: Vec<(String, String)>,
    pub group: crate::group::GroupConfig,
    pub net: NetLimits,
    /// `None` when `--log-cleaner-enable false`.
    pub cleaner: Option<CleanerSettings>,
    pub cluster: ClusterSettings,
}

/// How this node takes part in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub controller_listen: Option<SocketAddr>,
    /// Mutual TLS on the controller listener: the CA that peers' certificates chain to and
    /// this node's certificate and key. `None`: plain TCP.
    pub controller_tls: Option<ironlog_client::TlsSettings>,
    /// `host:port` other nodes reach the controller listener at.
    pub controller_advertised: String,
    /// Voter id → `host:port`; empty: a cluster of one.
    pub voters: std::collections::BTreeMap<i32, String>,
    pub rack: Option<String>,
    pub session_timeout: std::time::Duration,
    pub heartbeat_interval: std::time::Duration,
    pub offsets_topic_replication_factor: i16,
    pub replica_lag_time_max: std::time::Duration,
    pub replica_fetch_wait_max: std::time::Duration,
    pub replica_fetch_max_bytes: i32,
    /// `None`: auto leader rebalance disabled; else how often it checks.
    pub leader_imbalance_check_interval: Option<std::time::Duration>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            controller_listen: None,
            controller_tls: None,
            controller_advertised: String::new(),
            voters: Default::default(),
            rack: None,
            session_timeout: std::time::Duration::from_millis(9_000),
            heartbeat_interval: std::time::Duration::from_millis(2_000),
            offsets_topic_replication_factor: 3,
            replica_lag_time_max: std::time::Duration::from_millis(30_000),
            replica_fetch_wait_max: std::time::Duration::from_millis(500),
            replica_fetch_max_bytes: 1 << 20,
            leader_imbalance_check_interval: Some(std::time::Duration::from_millis(300_000)),
        }
    }
}

/// `--log-cleaner-backoff-ms` default (Kafka's is 15 s; a check that finds nothing to do
/// costs little).
const DEFAULT_CLEANER_BACKOFF_MS: u64 = 1_000;

/// The log cleaner's broker-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerSettings {
    pub cleaner: ironlog_storage::cleaner::CleanerConfig,
    pub backoff: std::time::Duration,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        CleanerSettings {
            cleaner: ironlog_storage::cleaner::CleanerConfig::default(),
            backoff: std::time::Duration::from_millis(DEFAULT_CLEANER_BACKOFF_MS),
        }
    }
}

/// What clients can make the network layer hold: bytes, connections and time.
///
/// The rule tying them together: `queued_max_request_bytes >= socket_request_max_bytes`, since
/// a request's whole declared size is taken from the budget when its size prefix arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLimits {
    /// Kafka's `queued.max.request.bytes` (Kafka's default is unlimited; ours is 256 MiB).
    pub queued_max_request_bytes: usize,
    /// Kafka's `max.connections.per.ip` (Kafka's default is unlimited; ours is 1000).
    pub max_connections_per_ip: usize,
    /// Kafka's `connections.max.idle.ms` (600000, as in Kafka).
    pub connections_max_idle_ms: u64,
    /// Most time without a byte in the middle of a request (30000).
    pub request_read_timeout_ms: u64,
}

impl NetLimits {
    pub const DEFAULT: NetLimits = NetLimits {
        queued_max_request_bytes: 256 * 1024 * 1024,
        max_connections_per_ip: 1000,
        connections_max_idle_ms: 600_000,
        request_read_timeout_ms: 30_000,
    };

    /// Checks the limits make sense together with `socket.request.max.bytes`.
    pub fn validate(&self, socket_request_max_bytes: usize) -> Result<(), ConfigError> {
        if self.queued_max_request_bytes < socket_request_max_bytes {
            return Err(ConfigError::QueuedMaxRequestBytes {
                queued: self.queued_max_request_bytes,
                socket: socket_request_max_bytes,
            });
        }
        for (flag, value) in [
            (
                "--max-connections-per-ip",
                self.max_connections_per_ip as u64,
            ),
            ("--connections-max-idle-ms", self.connections_max_idle_ms),
            ("--request-read-timeout-ms", self.request_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(flag));
            }
        }
        Ok(())
    }
}

impl Default for NetLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A flag value that can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--advertised-listener {0:?} is not host:port")]
    AdvertisedListener(String),
    #[error("listeners: {0}")]
    Listeners(String),
    #[error("--default-partitions must be at least 1, got {0}")]
    DefaultPartitions(i32),
    #[error("--default-replication-factor must be at least 1, got {0}")]
    DefaultReplicationFactor(i16),
    #[error("cannot read config file {}: {source}", path.display())]
    ReadConfigFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {error}", path.display())]
    ConfigFile {
        path: PathBuf,
        error: ironlog_broker_config::ConfigError,
    },
    #[error("--default-topic-config: {0}")]
    TopicConfig(String),
    #[error("group settings: {0}")]
    Group(String),
    #[error(
        "--queued-max-request-bytes ({queued}) must be at least --socket-request-max-bytes \
         ({socket}): a request's whole size is budgeted when it starts arriving, so a request \
         of the largest allowed size could never be read; raise the first or lower the second"
    )]
    QueuedMaxRequestBytes { queued: usize, socket: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("log cleaner settings: {0}")]
    Cleaner(String),
    #[error("cluster settings: {0}")]
    Cluster(String),
}

impl BrokerConfig {
    pub fn from_args(args: &BrokerArgs) -> Result<Self, ConfigError> {
        let (listeners, inter_broker_listener, security) = security::resolve(args)?;
        let inter_broker = listeners
            .iter()
            .find(|l| l.name == inter_broker_listener)
            .expect("security::resolve picks one of the listeners")
            .clone();
        let inter_broker_client = security::inter_broker_client(args, &inter_broker)?;
        let (advertised_host, advertised_port) = (
            inter_broker.advertised_host.clone(),
            inter_broker.advertised_port,
        );
        if args.default_partitions < 1 {
            return Err(ConfigError::DefaultPartitions(args.default_partitions));
        }
        if args.default_replication_factor < 1 {
            return Err(ConfigError::DefaultReplicationFactor(
                args.default_replication_factor,
            ));
        }
        crate::metadata::topic_config::validate(&args.default_topic_config)
            .map_err(|e| ConfigError::TopicConfig(e.to_string()))?;
        if args.group_min_session_timeout_ms > args.group_max_session_timeout_ms
            || args.group_min_session_timeout_ms < 1
        {
            return Err(ConfigError::Group(format!(
                "--group-min-session-timeout-ms ({}) must be at least 1 and at most --group-max-session-timeout-ms ({})",
                args.group_min_session_timeout_ms, args.group_max_session_timeout_ms
            )));
        }
        if args.group_initial_rebalance_delay_ms < 0 || args.offsets_retention_minutes < 1 {
            return Err(ConfigError::Group(
                "--group-initial-rebalance-delay-ms must be >= 0 and --offsets-retention-minutes >= 1".into(),
            ));
        }
        let net = NetLimits {
            queued_max_request_bytes: args.queued_max_request_bytes,
            max_connections_per_ip: args.max_connections_per_ip,
            connections_max_idle_ms: args.connections_max_idle_ms,
            request_read_timeout_ms: args.request_read_timeout_ms,
        };
        net.validate(args.socket_request_max_bytes)?;
        let group = crate::group::GroupConfig {
            min_session_timeout_ms: args.group_min_session_timeout_ms,
            max_session_timeout_ms: args.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: args.group_initial_rebalance_delay_ms,
            offsets_retention_ms: args.offsets_retention_minutes.saturating_mul(60_000),
            ..crate::group::GroupConfig::default()
        };
        if args.log_cleaner_io_max_bytes_per_second.is_nan()
            || args.log_cleaner_io_max_bytes_per_second < 0.0
            || args.log_cleaner_dedupe_buffer_size < 1024
            || args.log_cleaner_backoff_ms == 0
        {
            return Err(ConfigError::Cleaner(
                "--log-cleaner-io-max-bytes-per-second must be >= 0, --log-cleaner-dedupe-buffer-size >= 1024 and --log-cleaner-backoff-ms >= 1".into(),
            ));
        }
        let cleaner = args.log_cleaner_enable.then(|| CleanerSettings {
            cleaner: ironlog_storage::cleaner::CleanerConfig {
                dedupe_buffer_bytes: args.log_cleaner_dedupe_buffer_size,
                io_max_bytes_per_second: (args.log_cleaner_io_max_bytes_per_second > 0.0)
                    .then_some(args.log_cleaner_io_max_bytes_per_second),
            },
            backoff: std::time::Duration::from_millis(args.log_cleaner_backoff_ms),
        });
        let cluster = cluster_settings(args, &advertised_host)?;
        Ok(BrokerConfig {
            cluster,
            cleaner,
            node_id: args.node_id,
            listen: inter_broker.bind,
            advertised_host,
            advertised_port,
            listeners,
            inter_broker_listener,
            inter_broker_client,
            security,
            data_dir: args.data_dir.clone(),
            metrics_listen: args.metrics_listen,
            auto_create_topics: args.auto_create_topics,
            default_partitions: args.default_partitions,
            default_replication_factor: args.default_replication_factor,
            socket_request_max_bytes: args.socket_request_max_bytes,
            max_connections: args.max_connections,
            fetch_session_cache_slots: args.max_incremental_fetch_session_cache_slots,
            log_write_behind_bytes: args.log_write_behind_bytes,
            default_topic_config: args.default_topic_config.clone(),
            group,
            net,
        })
    }
}

fn cluster_settings(
    args: &BrokerArgs,
    advertised_host: &str,
) -> Result<ClusterSettings, ConfigError> {
    let mut voters = std::collections::BTreeMap::new();
    for (id, addr) in &args.voters {
        if voters.insert(*id, addr.clone()).is_some() {
            return Err(ConfigError::Cluster(format!(
                "--voters lists node {id} twice"
            )));
        }
    }
    if !voters.is_empty() && args.controller_listen.is_none() {
        return Err(ConfigError::Cluster(
            "--voters needs --controller-listen (the address Raft traffic arrives on)".into(),
        ));
    }
    if args.node_id < 0 {
        return Err(ConfigError::Cluster(format!(
            "--node-id must be >= 0, got {}",
            args.node_id
        )));
    }
    if args.broker_heartbeat_interval_ms == 0
        || args.broker_session_timeout_ms <= args.broker_heartbeat_interval_ms
    {
        return Err(ConfigError::Cluster(format!(
            "--broker-session-timeout-ms ({}) must be larger than --broker-heartbeat-interval-ms ({}), which must be >= 1",
            args.broker_session_timeout_ms, args.broker_heartbeat_interval_ms
        )));
    }
    if args.offsets_topic_replication_factor < 1 {
        return Err(ConfigError::Cluster(
            "--offsets-topic-replication-factor must be at least 1".into(),
        ));
    }
    let controller_advertised = match (&args.controller_advertised_listener, args.controller_listen)
    {
        (Some(addr), _) => addr.clone(),
        (None, Some(listen)) if listen.ip().is_unspecified() => {
            format!("{advertised_host}:{}", listen.port())
        }
        (None, Some(listen)) => listen.to_string(),
        (None, None) => String::new(),
    };
    let controller_tls = match args.controller_security_protocol.as_str() {
        "SSL" => {
            let (Some(cert), Some(key), Some(client_ca)) =
                (&args.tls_cert, &args.tls_key, &args.tls_client_ca)
            else {
                return Err(ConfigError::Cluster(
                    "--controller-security-protocol SSL is mutual TLS: it needs --tls-cert, \
                     --tls-key and --tls-client-ca (the CA that peers' certificates chain to)"
                        .into(),
                ));
            };
            Some(ironlog_client::TlsSettings {
                ca_location: Some(
                    args.inter_broker_tls_ca
                        .as_ref()
                        .unwrap_or(client_ca)
                        .clone(),
                ),
                certificate_location: Some(cert.clone()),
                key_location: Some(key.clone()),
            })
        }
        _ => None,
    };
    Ok(ClusterSettings {
        controller_listen: args.controller_listen,
        controller_tls,
        controller_advertised,
        voters,
        rack: args.rack.clone(),
        session_timeout: std::time::Duration::from_millis(args.broker_session_timeout_ms),
        heartbeat_interval: std::time::Duration::from_millis(args.broker_heartbeat_interval_ms),
        offsets_topic_replication_factor: args.offsets_topic_replication_factor,
        replica_lag_time_max: std::time::Duration::from_millis(args.replica_lag_time_max_ms.max(1)),
        replica_fetch_wait_max: std::time::Duration::from_millis(args.replica_fetch_wait_max_ms),
        replica_fetch_max_bytes: args.replica_fetch_max_bytes.max(1024),
        leader_imbalance_check_interval: args.auto_leader_rebalance_enable.then(|| {
            std::time::Duration::from_millis(args.leader_imbalance_check_interval_ms.max(100))
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn voters_parse_like_controller_quorum_voters() {
        let config = parse(&[
            "--node-id=2",
            "--controller-listen=0.0.0.0:9093",
            "--advertised-listener=b2.example:9092",
            "--voters=1@b1.example:9093,2@b2.example:9093,3@10.0.0.3:9093",
        ])
        .unwrap();
        let c = &config.cluster;
        assert_eq!(c.voters.len(), 3);
        assert_eq!(c.voters[&3], "10.0.0.3:9093");
        assert_eq!(c.controller_advertised, "b2.example:9093");
        assert!(
            parse(&["--voters=1@b1:9093"]).is_err(),
            "needs --controller-listen"
        );
        let bad = Cli::try_parse_from(["ironlog", "--voters=b1:9093"]);
        assert!(bad.is_err());
        assert!(
            parse(&[]).unwrap().cluster.voters.is_empty(),
            "a cluster of one by default"
        );
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BrokerArgs,
    }

    fn parse(flags: &[&str]) -> Result<BrokerConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("ironlog").chain(flags.iter().copied()))
            .expect("flags parse");
        BrokerConfig::from_args(&cli.args)
    }

    #[test]
    fn a_cluster_secures_its_inter_broker_connections_as_the_listener_says() {
        use ironlog_client::SecurityProtocol as Client;
        let cluster = [
            "--controller-listen=127.0.0.1:9093",
            "--voters=1@127.0.0.1:9093",
            "--listeners=PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9094",
            "--listener-security-protocol-map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
            "--inter-broker-listener-name=INTERNAL",
            "--tls-cert=/pki/broker.pem",
            "--tls-key=/pki/broker.key",
        ];
        let with = |more: &[&str]| parse(&[&cluster[..], more].concat());
        let config = with(&[
            "--inter-broker-tls-ca=/pki/ca.pem",
            "--inter-broker-sasl-username=broker",
            "--inter-broker-sasl-password=pw",
        ])
        .unwrap();
        let client = &config.inter_broker_client;
        assert_eq!(client.protocol, Client::SaslSsl);
        let sasl = client.sasl.as_ref().expect("a SASL login");
        assert_eq!(
            (sasl.mechanism.name(), sasl.username.as_str()),
            ("SCRAM-SHA-512", "broker")
        );
        assert_eq!(
            client.tls.ca_location.as_deref(),
            Some(std::path::Path::new("/pki/ca.pem"))
        );
        // Followers present the broker's certificate.
        assert_eq!(
            client.tls.certificate_location.as_deref(),
            Some(std::path::Path::new("/pki/broker.pem"))
        );

        let err = with(&["--inter-broker-tls-ca=/pki/ca.pem"]).unwrap_err();
        assert!(
            err.to_string().contains("--inter-broker-sasl-username"),
            "{err}"
        );
        let err = with(&[
            "--inter-broker-sasl-username=broker",
            "--inter-broker-sasl-password=pw",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--inter-broker-tls-ca"), "{err}");
        let err = with(&["--inter-broker-sasl-username=broker"]).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        // --tls-client-ca is the default trust store, as Kafka has one.
        let config = with(&[
            "--tls-client-ca=/pki/clients.pem",
            "--inter-broker-sasl-username=broker",
            "--inter-broker-sasl-password=pw",
            "--sasl-mechanism-inter-broker-protocol=plain",
        ])
        .unwrap();
        let client = &config.inter_broker_client;
        assert_eq!(
            client.tls.ca_location.as_deref(),
            Some(std::path::Path::new("/pki/clients.pem"))
        );
        assert_eq!(client.sasl.as_ref().unwrap().mechanism.name(), "PLAIN");

        // Raft over mutual TLS needs the CA peers chain to.
        let err = with(&[
            "--inter-broker-sasl-username=broker",
            "--inter-broker-sasl-password=pw",
            "--inter-broker-tls-ca=/pki/ca.pem",
            "--controller-security-protocol=SSL",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--tls-client-ca"), "{err}");
        let config = with(&[
            "--inter-broker-sasl-username=broker",
            "--inter-broker-sasl-password=pw",
            "--tls-client-ca=/pki/ca.pem",
            "--controller-security-protocol=SSL",
        ])
        .unwrap();
        let raft = config.cluster.controller_tls.expect("controller TLS");
        assert_eq!(
            raft.certificate_location.as_deref(),
            Some(std::path::Path::new("/pki/broker.pem"))
        );

        // A single broker fetches from nobody: nothing is required.
        let single = parse(&[
            "--listeners=SASL_SSL://127.0.0.1:9094",
            "--tls-cert=/pki/broker.pem",
            "--tls-key=/pki/broker.key",
        ])
        .unwrap();
        assert_eq!(single.inter_broker_client.protocol, Client::Plaintext);
    }

    #[test]
    fn network_limits_default_to_kafka_like_bounded_values() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.net, NetLimits::DEFAULT);
        assert_eq!(config.net.queued_max_request_bytes, 256 * 1024 * 1024);
        assert!(config.net.queued_max_request_bytes >= config.socket_request_max_bytes);
    }

    #[test]
    fn network_limits_are_read_from_flags() {
        let config = parse(&[
            "--queued-max-request-bytes=2000000",
            "--socket-request-max-bytes=1000000",
            "--max-connections-per-ip=7",
            "--connections-max-idle-ms=1234",
            "--request-read-timeout-ms=567",
        ])
        .unwrap();
        assert_eq!(
            config.net,
            NetLimits {
                queued_max_request_bytes: 2_000_000,
                max_connections_per_ip: 7,
                connections_max_idle_ms: 1234,
                request_read_timeout_ms: 567,
            }
        );
    }

    #[test]
    fn a_queue_cap_below_the_largest_request_is_refused_at_start_up() {
        let err = parse(&[
            "--queued-max-request-bytes=1000",
            "--socket-request-max-bytes=1001",
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::QueuedMaxRequestBytes {
                    queued: 1000,
                    socket: 1001
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("--socket-request-max-bytes"));
        // Equal is fine: one request of the largest size fits.
        parse(&[
            "--queued-max-request-bytes=1000",
            "--socket-request-max-bytes=1000",
        ])
        .unwrap();
    }

    #[test]
    fn zero_limits_are_refused() {
        for flag in [
            "--max-connections-per-ip=0",
            "--connections-max-idle-ms=0",
            "--request-read-timeout-ms=0",
        ] {
            let err = parse(&[flag]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Zero(f) if flag.starts_with(f)),
                "{err}"
            );
        }
    }
}
