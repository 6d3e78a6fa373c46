//! A workload: what `ironlog perf workload` runs, as flags or a small YAML file.
//!
//! The fields follow the OpenMessaging Benchmark's workload files (topics, partitions per
//! topic, producers and consumers per topic, message size, key distribution, producer
//! rate, warm-up and test duration), in Kafka's words. A file gives every field it names;
//! flags given on the command line override the file; anything left unset has the default
//! below. [`Workload::check`] refuses a workload that could not measure anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::workload::payload::HEADER_LEN;
use crate::{Acks, Compression};

/// What the record values are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadKind {
    /// Uniformly random bytes: incompressible, so every byte crosses the wire and reaches disk.
    Random,
    /// Generated log lines (timestamps, levels, ids, paths, words): compresses like
    /// application logs do; the run prints the ratio it measured.
    Text,
}

/// How records are keyed (and so how librdkafka's partitioner spreads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDistribution {
    /// No key: librdkafka's sticky partitioner fills one partition's batch at a time.
    None,
    /// Keys `0..key_space` in turn.
    RoundRobin,
    /// A uniformly random key of `0..key_space` per record.
    Random,
}

/// When consumers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumeMode {
    /// Consumers follow the producers, as in a live pipeline; end-to-end latency is measured.
    Live,
    /// Producers run alone (warm-up + duration); then consumers read the backlog from the
    /// start, reading it again from the beginning whenever they reach its end, for
    /// `drain_s` seconds. Separates the broker's cost of producing from that of consuming.
    Backlog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// A label for reports.
    pub name: String,
    /// Topics to create (fresh ones, named `<name>-<run id>-<n>`; deleted after the run).
    pub topics: u32,
    pub partitions_per_topic: u32,
    pub replication_factor: i32,
    /// Topic configs set at creation (`min.insync.replicas`, `flush.messages`, ...).
    pub topic_config: BTreeMap<String, String>,
    /// Producer threads per topic, each its own librdkafka client and connection(s).
    pub producers_per_topic: u32,
    /// Consumers per topic, in one consumer group per topic; 0 for a produce-only run.
    pub consumers_per_topic: u32,
    /// Value size in bytes (the first 24 carry producer, sequence and send time).
    pub record_size: usize,
    pub payload: PayloadKind,
    pub key_distribution: KeyDistribution,
    /// Distinct keys for the keyed distributions.
    pub key_space: u64,
    /// Records per second across all producers; 0 for as fast as they go.
    pub rate: u64,
    /// "0", "1" or "all".
    pub acks: String,
    pub compression: Compression,
    pub linger_ms: u64,
    pub batch_size: u64,
    /// librdkafka `enable.idempotence`.
    pub idempotence: bool,
    /// Extra librdkafka producer settings, applied last.
    pub producer_config: BTreeMap<String, String>,
    /// Extra librdkafka consumer settings, applied last.
    pub consumer_config: BTreeMap<String, String>,
    /// Seconds run before measuring (connections, batches and caches settle).
    pub warmup_s: u64,
    /// Seconds measured.
    pub duration_s: u64,
    pub consume: ConsumeMode,
    /// Backlog mode: seconds of consume-only reading measured.
    pub drain_s: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "workload".into(),
            topics: 1,
            partitions_per_topic: 1,
            replication_factor: 1,
            topic_config: BTreeMap::new(),
            producers_per_topic: 1,
            consumers_per_topic: 1,
            record_size: 1024,
            payload: PayloadKind::Random,
            key_distribution: KeyDistribution::None,
            key_space: 10_000,
            rate: 0,
            acks: "all".into(),
            compression: Compression::None,
            linger_ms: 1,
            batch_size: 1_000_000,
            idempotence: true,
            producer_config: BTreeMap::new(),
            consumer_config: BTreeMap::new(),
            warmup_s: 5,
            duration_s: 20,
            consume: ConsumeMode::Live,
            drain_s: 20,
        }
    }
}

impl Workload {
    /// Parses a workload file (YAML; JSON is YAML too).
    ///
    /// # Errors
    /// Unknown fields and wrong types, with serde_yaml's line and column.
    pub fn from_yaml(text: &str) -> Result<Workload, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn acks(&self) -> Result<Acks, String> {
        self.acks.parse()
    }

    pub fn producers(&self) -> u32 {
        self.topics * self.producers_per_topic
    }

    pub fn consumers(&self) -> u32 {
        self.topics * self.consumers_per_topic
    }

    pub fn partitions(&self) -> u32 {
        self.topics * self.partitions_per_topic
    }

    /// Refuses what can't measure anything, with the field to change.
    ///
    /// # Errors
    /// A sentence naming the field.
    pub fn check(&self) -> Result<(), String> {
        self.acks()?;
        let positive = [
            ("topics", u64::from(self.topics)),
            ("partitions_per_topic", u64::from(self.partitions_per_topic)),
            ("producers_per_topic", u64::from(self.producers_per_topic)),
            ("duration_s", self.duration_s),
            ("key_space", self.key_space),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("{field} must be at least 1"));
            }
        }
        if self.replication_factor < 1 {
            return Err("replication_factor must be at least 1".into());
        }
        if self.record_size < HEADER_LEN {
            return Err(format!(
                "record_size must be at least {HEADER_LEN} bytes (the producer, sequence and \
                 send time every record carries)"
            ));
        }
        if self.consume == ConsumeMode::Backlog {
            if self.consumers_per_topic == 0 {
                return Err("consume: backlog needs consumers_per_topic of at least 1".into());
            }
            if self.drain_s == 0 {
                return Err("consume: backlog needs drain_s of at least 1".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_names_some_fields_and_the_rest_default() {
        let w = Workload::from_yaml(
            "name: six\npartitions_per_topic: 6\nproducers_per_topic: 3\nrate: 50000\n\
             payload: text\nkey_distribution: round-robin\ncompression: lz4\n\
             topic_config: {min.insync.replicas: \"2\"}\nconsume: backlog\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.name, "six");
        assert_eq!((w.partitions_per_topic, w.producers_per_topic), (6, 3));
        assert_eq!(w.rate, 50_000);
        assert_eq!(w.payload, PayloadKind::Text);
        assert_eq!(w.key_distribution, KeyDistribution::RoundRobin);
        assert_eq!(w.compression, Compression::Lz4);
        assert_eq!(w.consume, ConsumeMode::Backlog);
        assert_eq!(w.topic_config["min.insync.replicas"], "2");
        assert_eq!((w.record_size, w.duration_s, w.warmup_s), (1024, 20, 5));
        assert_eq!(w.check(), Ok(()));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let e = Workload::from_yaml("partitions: 6\n").unwrap_err();
        assert!(e.contains("unknown field `partitions`"), "{e}");
        let e = Workload::from_yaml("payload: zeros\n").unwrap_err();
        assert!(e.contains("unknown variant `zeros`"), "{e}");
        let cases = [
            (
                Workload {
                    record_size: 10,
                    ..Workload::default()
                },
                "record_size must be at least 24",
            ),
            (
                Workload {
                    duration_s: 0,
                    ..Workload::default()
                },
                "duration_s must be at least 1",
            ),
            (
                Workload {
                    acks: "2".into(),
                    ..Workload::default()
                },
                "acks must be",
            ),
            (
                Workload {
                    consume: ConsumeMode::Backlog,
                    consumers_per_topic: 0,
                    ..Workload::default()
                },
                "backlog needs consumers_per_topic",
            ),
        ];
        for (w, expected) in cases {
            let e = w.check().unwrap_err();
            assert!(e.contains(expected), "{e} (expected {expected})");
        }
    }

    /// The benchmark's workload files (bench/workloads) parse and pass the checks.
    #[test]
    fn the_bench_workloads_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/workloads");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let w =
                Workload::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            w.check()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            names.push(path.file_stem().map(|s| s.to_string_lossy().into_owned()));
        }
        names.sort();
        assert!(names.len() >= 12, "{names:?}");
        let fixed = Workload::from_yaml(
            &std::fs::read_to_string(dir.join("fixed-50mb.yaml")).unwrap_or_default(),
        )
        .unwrap_or_default();
        // 50 MB/s of 1 KiB records.
        assert_eq!(fixed.rate, 50_000_000 / 1024);
        assert_eq!((fixed.record_size, fixed.partitions_per_topic), (1024, 6));
    }

    #[test]
    fn totals_multiply_by_topics() {
        let w = Workload {
            topics: 2,
            partitions_per_topic: 24,
            producers_per_topic: 15,
            consumers_per_topic: 3,
            ..Workload::default()
        };
        assert_eq!((w.partitions(), w.producers(), w.consumers()), (48, 30, 6));
    }
}
