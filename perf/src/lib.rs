//! `ironlog perf`: load generators for any Kafka-compatible broker, built on librdkafka
//! (through the `rdkafka` crate, which compiles its bundled librdkafka) so the figures are
//! those of the client most users run.
//!
//! - `produce` is kafka-producer-perf-test: records/s, MB/s and send → delivery-report
//!   latency percentiles.
//! - `consume` is kafka-consumer-perf-test: records/s and MB/s from first to last record.
//!
//! Both print progress lines to stderr while running and a summary to stdout; with
//! `--json` the last stdout line is one JSON object ([`report::Summary`]), which is what
//! `bench/run.sh` parses. MB means 10^6 bytes throughout.
//!
//! Dependency rule: this crate talks to brokers only over the Kafka protocol; it links no
//! broker code.

pub mod connections;
pub mod consume;
pub mod histogram;
pub mod proc_stats;
pub mod produce;
pub mod report;
pub mod workload;

use std::str::FromStr;

#[derive(clap::Args, Debug, Clone)]
pub struct PerfArgs {
    #[command(subcommand)]
    pub command: PerfCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum PerfCommand {
    /// Produce records as fast as asked and report throughput and latency.
    Produce(produce::ProduceArgs),
    /// Consume records and report throughput.
    Consume(consume::ConsumeArgs),
    /// An OpenMessaging-Benchmark-style workload: producers and consumers together at a
    /// fixed or maximum rate, warm-up then measurement, publish and end-to-end latency,
    /// every record verified, broker CPU and memory with `--broker-pid`.
    Workload(Box<workload::WorkloadArgs>),
    /// Open many idle connections and report the broker's memory per connection.
    Connections(connections::ConnectionsArgs),
}

/// Runs a perf command to completion (blocking: librdkafka has its own threads).
///
/// # Errors
/// If the client cannot be created, the broker refuses records, or fewer records than
/// asked for are delivered or consumed.
pub fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(a) => produce::run(a),
        PerfCommand::Consume(a) => consume::run(a),
        PerfCommand::Workload(a) => workload::run(*a),
        PerfCommand::Connections(a) => connections::run(a),
    }
}

/// Producer acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn as_config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(format!("acks must be 0, 1, all or -1, got {s:?}")),
        }
    }
}

/// Producer compression codec.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Locks a mutex that guards only counters and histograms: after a panic elsewhere (a bug
/// here) they are still fit for a report, so a poisoned lock is taken as it is.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parses `KEY=VALUE` (the value may itself contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: PerfCommand,
    }

    fn parse(args: &[&str]) -> Result<PerfCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("perf").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn produce_defaults() {
        let PerfCommand::Produce(a) =
            parse(&["produce", "--topic", "t", "--num-records", "10"]).unwrap()
        else {
            panic!("not produce")
        };
        assert_eq!(a.topic, "t");
        assert_eq!(a.num_records, 10);
        assert_eq!(a.record_size, 100);
        assert_eq!(a.throughput, -1);
        assert_eq!(a.acks, Acks::Leader);
        assert_eq!(a.compression, Compression::None);
        assert_eq!(a.producers, 1);
        assert!(!a.json);
        assert_eq!(a.bootstrap_server, "127.0.0.1:9092");
    }

    #[test]
    fn produce_all_flags() {
        let PerfCommand::Produce(a) = parse(&[
            "produce",
            "--bootstrap-server",
            "127.0.0.1:19092",
            "--topic",
            "bench",
            "--num-records",
            "1000000",
            "--record-size",
            "1024",
            "--throughput",
            "-1",
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--linger-ms",
            "10",
            "--batch-size",
            "65536",
            "--producers",
            "2",
            "--producer-config",
            "queue.buffering.max.kbytes=65536",
            "--json",
        ])
        .unwrap() else {
            panic!("not produce")
        };
        assert_eq!(a.acks, Acks::All);
        assert_eq!(a.compression, Compression::Lz4);
        assert_eq!(
            (a.record_size, a.linger_ms, a.batch_size),
            (1024, 10, 65536)
        );
        assert_eq!(a.producers, 2);
        assert!(a.json);
        let config = a.client_config();
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("compression.codec"), Some("lz4"));
        assert_eq!(config.get("linger.ms"), Some("10"));
        assert_eq!(config.get("batch.size"), Some("65536"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert_eq!(config.get("queue.buffering.max.kbytes"), Some("65536"));
    }

    #[test]
    fn acks_values() {
        assert_eq!("-1".parse::<Acks>(), Ok(Acks::All));
        assert_eq!("0".parse::<Acks>(), Ok(Acks::None));
        assert!("2".parse::<Acks>().is_err());
        assert!(parse(&[
            "produce",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--acks",
            "2"
        ])
        .is_err());
    }

    #[test]
    fn produce_requires_topic_and_count() {
        assert!(parse(&["produce", "--num-records", "1"]).is_err());
        assert!(parse(&["produce", "--topic", "t"]).is_err());
        assert!(parse(&[
            "produce",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--compression",
            "brotli"
        ])
        .is_err());
    }

    #[test]
    fn consume_group_or_assignment() {
        let PerfCommand::Consume(a) =
            parse(&["consume", "--topic", "t", "--messages", "5"]).unwrap()
        else {
            panic!("not consume")
        };
        assert_eq!(a.group, None);
        assert_eq!(a.client_config().get("enable.auto.commit"), Some("false"));
        let PerfCommand::Consume(a) = parse(&[
            "consume",
            "--topic",
            "t",
            "--messages",
            "5",
            "--group",
            "g1",
            "--consumer-config",
            "fetch.wait.max.ms=10",
            "--json",
        ])
        .unwrap() else {
            panic!("not consume")
        };
        let config = a.client_config();
        assert_eq!(config.get("group.id"), Some("g1"));
        assert_eq!(config.get("fetch.wait.max.ms"), Some("10"));
        assert!(a.json);
    }

    #[test]
    fn key_value_parsing() {
        assert_eq!(
            parse_key_value("a.b=c=d"),
            Ok(("a.b".to_string(), "c=d".to_string()))
        );
        assert_eq!(parse_key_value("k="), Ok(("k".to_string(), String::new())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }
}
