//! `ironlog perf consume`: kafka-consumer-perf-test on librdkafka.
//!
//! Without `--group` the consumer is assigned every partition of the topic from the
//! beginning (no group coordinator involved); with `--group` it subscribes and lets the
//! group protocol assign partitions (`auto.offset.reset=earliest`).
//!
//! Throughput is measured from the first record received to the last, like
//! kafka-consumer-perf-test's fetch rate, so connection set-up and group joins don't count;
//! `startup_ms` in the text output tells how long the first record took. Latency is end to
//! end: receive time minus the record's CreateTime timestamp (millisecond resolution). It
//! means something only when consuming while producing; after a separate produce run it
//! mostly measures how old the data is.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::histogram::Histogram;
use crate::parse_key_value;
use crate::report::{progress_line, Summary};

#[derive(clap::Args, Debug, Clone)]
pub struct ConsumeArgs {
    /// Broker address(es), host:port[,host:port].
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    #[arg(long)]
    pub topic: String,
    /// Records to consume; the run fails if fewer arrive before `--timeout-ms` of silence.
    #[arg(long)]
    pub messages: u64,
    /// Consumer group; without it, all partitions are assigned directly.
    #[arg(long)]
    pub group: Option<String>,
    /// Give up after this many milliseconds without a record (kafka-consumer-perf-test's
    /// `--timeout`).
    #[arg(long, visible_alias = "timeout", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Extra librdkafka settings, KEY=VALUE (repeatable); applied last.
    #[arg(long = "consumer-config", value_parser = parse_key_value)]
    pub consumer_config: Vec<(String, String)>,
    /// Milliseconds between progress lines (on stderr); 0 turns them off.
    #[arg(long, visible_alias = "reporting-interval", default_value_t = 5000)]
    pub reporting_interval_ms: u64,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

impl ConsumeArgs {
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_server)
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            // librdkafka (2.4+) stops fetching for `fetch.queue.backoff.ms` (default 1 s)
            // once `queued.min.messages` (100,000) are queued locally. A perf consumer drains
            // that in ~0.1 s and would then sit idle for most of each second, measuring the
            // backoff rather than the broker, so back off for 1 ms instead.
            .set("fetch.queue.backoff.ms", "1");
        match &self.group {
            Some(group) => {
                config.set("group.id", group);
            }
            None => {
                // librdkafka wants a group id even for plain assignment; nothing is
                // committed, so no coordinator is ever asked.
                config
                    .set("group.id", "ironlog-perf-assigned")
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false");
            }
        }
        for (k, v) in &self.consumer_config {
            config.set(k, v);
        }
        config
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = args
        .client_config()
        .create()
        .context("creating the librdkafka consumer")?;
    let created = Instant::now();
    match &args.group {
        Some(_) => consumer.subscribe(&[&args.topic]).context("subscribing")?,
        None => {
            let metadata = consumer
                .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
                .context("fetching topic metadata")?;
            let topic = metadata
                .topics()
                .iter()
                .find(|t| t.name() == args.topic)
                .context("the broker returned no metadata for the topic")?;
            if let Some(e) = topic.error() {
                bail!("topic {}: {:?}", args.topic, e);
            }
            let mut assignment = TopicPartitionList::new();
            for p in topic.partitions() {
                assignment.add_partition_offset(&args.topic, p.id(), Offset::Beginning)?;
            }
            if assignment.count() == 0 {
                bail!("topic {} has no partitions", args.topic);
            }
            consumer
                .assign(&assignment)
                .context("assigning partitions")?;
        }
    }

    let interval = Duration::from_millis(args.reporting_interval_ms);
    let idle_limit = Duration::from_millis(args.timeout_ms);
    let mut total = Histogram::new();
    let mut window = Histogram::new();
    let (mut records, mut bytes) = (0u64, 0u64);
    let (mut window_records, mut window_bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last_record = Instant::now();
    let mut last_report = Instant::now();
    while records < args.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last_record = now;
                let len = message.payload_len() as u64;
                records += 1;
                bytes += len;
                window_records += 1;
                window_bytes += len;
                if let Some(ts) = message.timestamp().to_millis() {
                    let age_us = (now_ms() - ts).max(0) as u64 * 1000;
                    total.record(age_us);
                    window.record(age_us);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => bail!("consume failed after {records} records: {e}"),
            None => {
                if last_record.elapsed() >= idle_limit {
                    bail!(
                        "only {records} of {} records arrived; none for {} ms",
                        args.messages,
                        args.timeout_ms
                    );
                }
            }
        }
        if args.reporting_interval_ms > 0 && last_report.elapsed() >= interval {
            eprintln!(
                "{}",
                progress_line(
                    "consumed",
                    window_records,
                    window_bytes,
                    last_report.elapsed().as_secs_f64(),
                    &window,
                    records
                )
            );
            window = Histogram::new();
            (window_records, window_bytes) = (0, 0);
            last_report = Instant::now();
        }
    }
    let end = Instant::now();
    let elapsed = first.map_or(0.0, |f| (end - f).as_secs_f64());
    let startup = first.map_or(Duration::ZERO, |f| f - created);
    let summary = Summary::new("consume", records, bytes, elapsed, &total, 0);
    eprintln!(
        "startup_ms {:.1} (consumer created to first record)",
        startup.as_secs_f64() * 1000.0
    );
    summary.print(args.json);
    Ok(())
}
