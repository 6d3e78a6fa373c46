//! The `ironlog` command-line tools as library code: `topics`, `groups`, `produce`, `consume`,
//! `cluster`, `users`, `acls`.
//!
//! Each tool is a `clap::Args` struct and an async `run`; the binary's `main.rs` only
//! dispatches. Every tool flattens [`ConnectionArgs`] for where and how to connect, its
//! security included (`--command-config`, Kafka client properties). Pure parts
//! (argument parsing, output formatting, partitioning) are separate functions so they can be
//! unit-tested without a broker.

pub mod acls;
pub mod cluster;
pub mod consume;
pub mod groups;
pub mod produce;
pub mod topics;
pub mod users;

use std::path::PathBuf;
use std::time::Duration;

use crate::{Client, ClientConfig, SecurityConfig};

/// Default bootstrap server of all tools.
pub const DEFAULT_BOOTSTRAP_SERVER: &str = "127.0.0.1:9092";

/// The connection flags every tool shares (`#[command(flatten)]` into its args).
///
/// They are `global`, so a tool with subcommands takes them before or after the subcommand
/// (`ironlog topics --bootstrap-server X list` and `ironlog topics list --bootstrap-server X`).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ConnectionArgs {
    /// Comma-separated host:port list of brokers to bootstrap from.
    #[arg(long, global = true, env = "IRONLOG_BOOTSTRAP_SERVER", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    pub bootstrap_server: String,

    /// Timeout for each request, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "IRONLOG_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub request_timeout_ms: u64,

    /// Kafka client properties (key=value lines, # comments) securing the connection:
    /// security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location,
    /// ssl.certificate.location, ssl.key.location.
    #[arg(
        long,
        global = true,
        env = "IRONLOG_COMMAND_CONFIG",
        value_name = "FILE"
    )]
    pub command_config: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The client configuration of a tool: its bootstrap servers, request timeout and
    /// security (from `--command-config`).
    ///
    /// # Errors
    /// An unparsable bootstrap server list, or an unreadable or refused properties file.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new(&self.bootstrap_server)?;
        config.client_id = "ironlog-cli".to_owned();
        config.request_timeout = Duration::from_millis(self.request_timeout_ms);
        if let Some(path) = &self.command_config {
            config.security = SecurityConfig::from_properties_file(path)
                .map_err(|e| anyhow::anyhow!("--command-config {e}"))?;
        }
        Ok(config)
    }

    /// Connects a client for a tool ([`ConnectionArgs::client_config`]).
    ///
    /// # Errors
    /// As [`ConnectionArgs::client_config`]; no bootstrap server reachable; TLS or SASL
    /// refused.
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(self.client_config()?).await?)
    }
}

/// Parses `key=value` (the value may contain `=`; the key must not be empty).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// A table with a header row: left-aligned columns two spaces apart, no trailing spaces.
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let width = widths.get(i).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Parses `argv` (without the program name) as one tool's arguments, for the tools' tests.
#[cfg(test)]
pub(crate) fn parse_args<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    use clap::Parser as _;

    #[derive(clap::Parser, Debug)]
    struct Cli<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }

    Cli::<A>::try_parse_from(std::iter::once("ironlog").chain(argv.iter().copied())).map(|c| c.args)
}

/// Formats a topic id the way Kafka prints it: URL-safe base64 without padding.
pub fn format_topic_id(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Kafka's murmur2 hash, used by its default partitioner for keyed records.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % num_partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The `ironlog` command line, reduced to the tools.
    #[derive(clap::Parser, Debug)]
    enum Cli {
        Topics(topics::TopicsArgs),
        Groups(groups::GroupsArgs),
        Produce(produce::ProduceArgs),
        Consume(consume::ConsumeArgs),
        Cluster(cluster::ClusterArgs),
        Users(users::UsersArgs),
        Acls(acls::AclsArgs),
    }

    fn connection(argv: &[&str]) -> ConnectionArgs {
        let cli = Cli::try_parse_from(std::iter::once("ironlog").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli {
            Cli::Topics(a) => a.connection,
            Cli::Groups(a) => a.connection,
            Cli::Produce(a) => a.connection,
            Cli::Consume(a) => a.connection,
            Cli::Cluster(a) => a.connection,
            Cli::Users(a) => a.connection,
            Cli::Acls(a) => a.connection,
        }
    }

    #[test]
    fn every_tool_takes_the_connection_flags_before_or_after_its_subcommand() {
        let expected = ConnectionArgs {
            bootstrap_server: "b:1".into(),
            request_timeout_ms: 5,
            command_config: None,
        };
        for argv in [
            &[
                "topics",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
                "list",
            ][..],
            &[
                "topics",
                "list",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
            ],
            &[
                "groups",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
                "list",
            ],
            &[
                "groups",
                "list",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
            ],
            &[
                "produce",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
                "--topic",
                "t",
            ],
            &[
                "consume",
                "--topic",
                "t",
                "--bootstrap-server",
                "b:1",
                "--request-timeout-ms",
                "5",
            ],
            &[
                "cluster",
                "--bootstrap-server",
                "b:1",
                "describe",
                "--request-timeout-ms",
                "5",
            ],
        ] {
            assert_eq!(connection(argv), expected, "{argv:?}");
        }
        let defaults = connection(&["groups", "describe", "--group", "g"]);
        assert_eq!(defaults.bootstrap_server, DEFAULT_BOOTSTRAP_SERVER);
        assert_eq!(defaults.request_timeout_ms, 30_000);
    }

    #[test]
    fn every_tool_takes_command_config_before_or_after_its_subcommand() {
        let file = Some(PathBuf::from("client.properties"));
        for argv in [
            &["topics", "--command-config", "client.properties", "list"][..],
            &["topics", "list", "--command-config", "client.properties"],
            &["groups", "list", "--command-config", "client.properties"],
            &[
                "produce",
                "--topic",
                "t",
                "--command-config",
                "client.properties",
            ],
            &[
                "consume",
                "--topic",
                "t",
                "--command-config",
                "client.properties",
            ],
            &[
                "cluster",
                "describe",
                "--command-config",
                "client.properties",
            ],
            &["users", "--command-config", "client.properties", "list"],
            &["users", "list", "--command-config", "client.properties"],
            &["acls", "list", "--command-config", "client.properties"],
            &[
                "acls",
                "--command-config",
                "client.properties",
                "add",
                "--allow-principal",
                "User:a",
                "--operation",
                "Read",
                "--topic",
                "t",
            ],
        ] {
            assert_eq!(connection(argv).command_config, file, "{argv:?}");
        }
    }

    #[test]
    fn command_config_file_sets_the_security() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(
            &path,
            "# admin over SASL\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=admin\nsasl.password=pw\n",
        )
        .unwrap();
        let args = ConnectionArgs {
            bootstrap_server: "b:1".into(),
            request_timeout_ms: 5,
            command_config: Some(path.clone()),
        };
        let config = args.client_config().unwrap();
        assert_eq!(
            config.security.protocol,
            crate::SecurityProtocol::SaslPlaintext
        );
        let sasl = config.security.sasl.unwrap();
        assert_eq!(sasl.username, "admin");
        assert_eq!(sasl.password, "pw");
        std::fs::write(&path, "security.protocol=SASL_PLAINTEXT\nlinger.ms=5\n").unwrap();
        let err = args.client_config().unwrap_err().to_string();
        assert!(err.contains("unknown property linger.ms"), "{err}");
        assert!(err.contains("client.properties"), "{err}");
    }

    #[test]
    fn key_value_parsing() {
        assert_eq!(parse_key_value("a=b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_key_value("a=").unwrap(), ("a".into(), "".into()));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn murmur2_matches_kafka_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn keyed_partitioning_is_stable_and_in_range() {
        for key in [&b"a"[..], b"order-17", b""] {
            let p = partition_for_key(key, 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_for_key(key, 6));
        }
        assert_eq!(partition_for_key(b"foobar", 1), 0);
    }

    #[test]
    fn topic_ids_print_like_kafka() {
        assert_eq!(
            format_topic_id(&uuid::Uuid::nil()),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        let id = uuid::Uuid::from_bytes([0xff; 16]);
        assert_eq!(format_topic_id(&id), "_____________________w");
        assert_eq!(format_topic_id(&id).len(), 22);
    }
}
