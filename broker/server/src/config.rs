//! Broker configuration: command-line flags, each also settable as an `IRONLOG_<FLAG>`
//! environment variable (for containers), resolved into a [`BrokerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// `ironlog broker` flags.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// This broker's id, as listed in Metadata responses.
    #[arg(long, env = "IRONLOG_NODE_ID", default_value_t = 1)]
    pub node_id: i32,
    /// Address the Kafka listener binds.
    #[arg(long, env = "IRONLOG_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// `host:port` clients are told to connect to (default: the listen address).
    #[arg(long, env = "IRONLOG_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
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
    /// Largest request accepted (Kafka's socket.request.max.bytes).
    #[arg(long, env = "IRONLOG_SOCKET_REQUEST_MAX_BYTES", default_value_t = ironlog_protocol::frame::DEFAULT_MAX_REQUEST_BYTES)]
    pub socket_request_max_bytes: usize,
    /// Most client connections served at once; further ones wait to be accepted.
    #[arg(long, env = "IRONLOG_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Log filter, e.g. `info` or `ironlog_server=debug,info` (tracing EnvFilter syntax).
    #[arg(long, env = "IRONLOG_LOG_LEVEL", default_value = "info")]
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
    /// Broker-wide default for topic configs, repeatable: `--default-topic-config flush.messages=1`.
    #[arg(long = "default-topic-config", env = "IRONLOG_DEFAULT_TOPIC_CONFIG", value_delimiter = ',', value_parser = parse_key_value)]
    pub default_topic_config: Vec<(String, String)>,
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
    pub listen: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub data_dir: PathBuf,
    pub metrics_listen: SocketAddr,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    pub default_topic_config: Vec<(String, String)>,
    pub group: crate::group::GroupConfig,
}

/// A flag value that can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--advertised-listener {0:?} is not host:port")]
    AdvertisedListener(String),
    #[error("--default-partitions must be at least 1, got {0}")]
    DefaultPartitions(i32),
    #[error("--default-topic-config: {0}")]
    TopicConfig(String),
    #[error("group settings: {0}")]
    Group(String),
}

impl BrokerConfig {
    pub fn from_args(args: &BrokerArgs) -> Result<Self, ConfigError> {
        let (advertised_host, advertised_port) = match &args.advertised_listener {
            Some(listener) => {
                let (host, port) = listener
                    .rsplit_once(':')
                    .ok_or_else(|| ConfigError::AdvertisedListener(listener.clone()))?;
                let port = port
                    .parse::<u16>()
                    .map_err(|_| ConfigError::AdvertisedListener(listener.clone()))?;
                (
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                    port as i32,
                )
            }
            None => (args.listen.ip().to_string(), args.listen.port() as i32),
        };
        if args.default_partitions < 1 {
            return Err(ConfigError::DefaultPartitions(args.default_partitions));
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
        let group = crate::group::GroupConfig {
            min_session_timeout_ms: args.group_min_session_timeout_ms,
            max_session_timeout_ms: args.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: args.group_initial_rebalance_delay_ms,
            offsets_retention_ms: args.offsets_retention_minutes.saturating_mul(60_000),
            ..crate::group::GroupConfig::default()
        };
        Ok(BrokerConfig {
            node_id: args.node_id,
            listen: args.listen,
            advertised_host,
            advertised_port,
            data_dir: args.data_dir.clone(),
            metrics_listen: args.metrics_listen,
            auto_create_topics: args.auto_create_topics,
            default_partitions: args.default_partitions,
            socket_request_max_bytes: args.socket_request_max_bytes,
            max_connections: args.max_connections,
            default_topic_config: args.default_topic_config.clone(),
            group,
        })
    }
}
