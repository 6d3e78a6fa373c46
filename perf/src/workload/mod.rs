//! `ironlog perf workload`: an OpenMessaging-Benchmark-style driver on librdkafka.
//!
//! A run creates fresh topics, starts the consumers (one group per topic) and waits until
//! every partition is assigned, then starts the producers at the workload's rate. The
//! first `warmup_s` seconds are not counted; then for `duration_s` seconds it measures:
//! - publish rate (acknowledged records and bytes) and publish latency (send → delivery
//!   report, which for acks=all includes replication);
//! - consume rate and end-to-end latency (send time carried in the record → the consumer
//!   has it), with the backlog (acknowledged − consumed) sampled along the way;
//! - with `--broker-pid`, the broker's CPU seconds (from /proc, over exactly the measured
//!   seconds) per GB, and its resident memory (steady = median of samples, peak).
//!
//! In backlog mode consumers start only after the producers: the produce phase gives the
//! broker's cost per GB produced, then consumers read the backlog (again from the start
//! each time they reach its end) for `drain_s` seconds: the cost per GB consumed.
//!
//! After the producers stop, consumers read on until they have every acknowledged record;
//! the run then checks each was read exactly once and, per partition, in the order each
//! producer sent them ([`verify`]), and fails if not.
//!
//! Units: MB = 10^6 bytes, MiB = 2^20 bytes, GB = 10^9 bytes, of record values (keys and
//! protocol overhead not counted, as kafka-producer-perf-test counts). Progress lines go to
//! stderr; the summary to stdout, and with `--json` one JSON object as its last line.

pub mod payload;
pub mod spec;
pub mod verify;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::Offset;
use rdkafka::ClientContext;
use serde::Serialize;

use crate::histogram::Histogram;
use crate::proc_stats;
use crate::report::MB;
use crate::{lock, parse_key_value, Compression};
use payload::{codec_of, Header, Pool, Rng, HEADER_LEN};
use spec::{ConsumeMode, KeyDistribution, PayloadKind, Workload};
use verify::{Verifier, VerifyReport};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct WorkloadArgs {
    /// Broker address(es), host:port[,host:port].
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// A workload file (YAML, the fields of `Workload`); the flags below override it.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub topics: Option<u32>,
    /// Partitions per topic.
    #[arg(long)]
    pub partitions: Option<u32>,
    #[arg(long)]
    pub replication_factor: Option<i32>,
    /// Topic config at creation, KEY=VALUE (repeatable).
    #[arg(long = "topic-config", value_parser = parse_key_value)]
    pub topic_config: Vec<(String, String)>,
    /// Producers per topic.
    #[arg(long)]
    pub producers: Option<u32>,
    /// Consumers per topic (one group per topic); 0 for produce only.
    #[arg(long)]
    pub consumers: Option<u32>,
    /// Value size in bytes (at least 24).
    #[arg(long)]
    pub record_size: Option<usize>,
    #[arg(long)]
    pub payload: Option<PayloadKind>,
    #[arg(long)]
    pub key_distribution: Option<KeyDistribution>,
    #[arg(long)]
    pub key_space: Option<u64>,
    /// Records per second across all producers; 0 for as fast as possible.
    #[arg(long)]
    pub rate: Option<u64>,
    /// 0, 1 or all.
    #[arg(long)]
    pub acks: Option<String>,
    #[arg(long)]
    pub compression: Option<Compression>,
    #[arg(long)]
    pub linger_ms: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<u64>,
    #[arg(long)]
    pub idempotence: Option<bool>,
    /// Extra librdkafka producer settings, KEY=VALUE (repeatable).
    #[arg(long = "producer-config", value_parser = parse_key_value)]
    pub producer_config: Vec<(String, String)>,
    /// Extra librdkafka consumer settings, KEY=VALUE (repeatable).
    #[arg(long = "consumer-config", value_parser = parse_key_value)]
    pub consumer_config: Vec<(String, String)>,
    #[arg(long)]
    pub warmup_s: Option<u64>,
    #[arg(long)]
    pub duration_s: Option<u64>,
    #[arg(long)]
    pub consume: Option<ConsumeMode>,
    #[arg(long)]
    pub drain_s: Option<u64>,
    /// A broker process on this machine whose CPU and memory to measure (repeatable: the
    /// figures of all are summed).
    #[arg(long = "broker-pid")]
    pub broker_pids: Vec<u32>,
    /// Milliseconds between progress lines (stderr); 0 turns them off.
    #[arg(long, default_value_t = 5000)]
    pub reporting_interval_ms: u64,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Leave the topics in place after the run (they are deleted by default).
    #[arg(long)]
    pub keep_topics: bool,
}

impl WorkloadArgs {
    /// The workload file (if any) with the flags applied, checked.
    ///
    /// # Errors
    /// An unreadable or invalid file, or a workload [`Workload::check`] refuses.
    pub fn resolve(&self) -> anyhow::Result<Workload> {
        let mut w = match &self.workload {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Workload::from_yaml(&text)
                    .map_err(|e| anyhow::anyhow!("workload file {}: {e}", path.display()))?
            }
            None => Workload::default(),
        };
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {
                $(if let Some(v) = self.$flag.clone() { w.$field = v; })*
            };
        }
        set!(
            name => name, topics => topics, partitions => partitions_per_topic,
            replication_factor => replication_factor, producers => producers_per_topic,
            consumers => consumers_per_topic, record_size => record_size, payload => payload,
            key_distribution => key_distribution, key_space => key_space, rate => rate,
            acks => acks, compression => compression, linger_ms => linger_ms,
            batch_size => batch_size, idempotence => idempotence, warmup_s => warmup_s,
            duration_s => duration_s, consume => consume, drain_s => drain_s,
        );
        w.topic_config.extend(self.topic_config.iter().cloned());
        w.producer_config
            .extend(self.producer_config.iter().cloned());
        w.consumer_config
            .extend(self.consumer_config.iter().cloned());
        w.check().map_err(|e| anyhow::anyhow!("workload: {e}"))?;
        Ok(w)
    }
}

// --- the report ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.count(),
            avg_ms: h.mean() / 1000.0,
            p50_ms: ms(h.percentile(50.0)),
            p99_ms: ms(h.percentile(99.0)),
            p999_ms: ms(h.percentile(99.9)),
            max_ms: ms(h.max()),
        }
    }

    fn text(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    /// 10^6 bytes per second.
    pub mb_per_sec: f64,
    /// 2^20 bytes per second.
    pub mib_per_sec: f64,
}

impl Rates {
    fn of(records: u64, bytes: u64, seconds: f64) -> Rates {
        let per_sec = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Rates {
            records,
            bytes,
            seconds,
            records_per_sec: per_sec(records),
            mb_per_sec: per_sec(bytes) / MB,
            mib_per_sec: per_sec(bytes) / f64::from(1u32 << 20),
        }
    }

    fn text(&self) -> String {
        format!(
            "{:.0} records/s, {:.1} MB/s ({:.1} MiB/s), {} records in {:.1} s",
            self.records_per_sec, self.mb_per_sec, self.mib_per_sec, self.records, self.seconds
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PayloadReport {
    pub kind: PayloadKind,
    pub record_size: usize,
    /// Raw bytes / compressed bytes of ~1 MiB of values, per codec.
    pub ratio_lz4: f64,
    pub ratio_zstd: f64,
    /// The same for the producers' codec (1.0 for none).
    pub ratio_producer_codec: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacklogReport {
    pub max_records: u64,
    pub mean_records: f64,
    pub end_records: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokerReport {
    pub pids: Vec<u32>,
    pub clock_ticks_per_sec: u64,
    /// Live mode: CPU seconds over the measured seconds, and per GB produced + consumed.
    pub cpu_s: Option<f64>,
    pub cpu_s_per_gb_moved: Option<f64>,
    /// Backlog mode: CPU seconds per GB produced (produce phase) and per GB consumed
    /// (drain phase).
    pub produce_cpu_s: Option<f64>,
    pub cpu_s_per_gb_produced: Option<f64>,
    pub consume_cpu_s: Option<f64>,
    pub cpu_s_per_gb_consumed: Option<f64>,
    /// The kernel's part (system time: socket and page-cache copies) of each per-GB figure.
    pub system_cpu_s_per_gb_moved: Option<f64>,
    pub system_cpu_s_per_gb_produced: Option<f64>,
    pub system_cpu_s_per_gb_consumed: Option<f64>,
    /// Median and largest of the RSS samples (one a second) taken while measuring.
    pub rss_steady_kb: u64,
    pub rss_peak_kb: u64,
    /// Peak RSS since the broker started (VmHWM), at the end of the run.
    pub rss_hwm_kb: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kind: &'static str,
    pub workload: Workload,
    pub run_id: String,
    pub topics: Vec<String>,
    pub payload: PayloadReport,
    pub publish: Rates,
    pub publish_latency: Latency,
    pub publish_errors: u64,
    pub consume: Option<Rates>,
    pub end_to_end_latency: Option<Latency>,
    pub backlog: Option<BacklogReport>,
    pub drain: Option<Rates>,
    pub verify: Option<VerifyReport>,
    pub broker: Option<BrokerReport>,
}

impl Report {
    fn text(&self) -> String {
        let w = &self.workload;
        let mut out = format!(
            "workload {}: {} topic(s) x {} partition(s), RF {}, {} producer(s), {} consumer(s), \
             {} B {:?} records (lz4 {:.2}x, zstd {:.2}x), acks={} compression={:?}, rate {}\n",
            w.name,
            w.topics,
            w.partitions_per_topic,
            w.replication_factor,
            w.producers(),
            w.consumers(),
            w.record_size,
            w.payload,
            self.payload.ratio_lz4,
            self.payload.ratio_zstd,
            w.acks,
            w.compression,
            if w.rate == 0 {
                "max".to_string()
            } else {
                format!("{}/s", w.rate)
            }
        );
        out += &format!("publish: {}\n", self.publish.text());
        out += &format!("publish latency: {}\n", self.publish_latency.text());
        if let Some(c) = &self.consume {
            out += &format!("consume: {}\n", c.text());
        }
        if let Some(l) = &self.end_to_end_latency {
            out += &format!("end-to-end latency: {}\n", l.text());
        }
        if let Some(b) = &self.backlog {
            out += &format!(
                "backlog: max {} records, mean {:.0}, at end {}\n",
                b.max_records, b.mean_records, b.end_records
            );
        }
        if let Some(d) = &self.drain {
            out += &format!("drain (consumers alone): {}\n", d.text());
        }
        if let Some(b) = &self.broker {
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            out += &format!(
                "broker: cpu {} s ({} s/GB moved, of which system {}); produce {} s/GB \
                 (system {}), consume {} s/GB (system {}); RSS steady {:.1} MiB, peak {:.1} MiB\n",
                f(b.cpu_s.or(b.produce_cpu_s)),
                f(b.cpu_s_per_gb_moved),
                f(b.system_cpu_s_per_gb_moved),
                f(b.cpu_s_per_gb_produced),
                f(b.system_cpu_s_per_gb_produced),
                f(b.cpu_s_per_gb_consumed),
                f(b.system_cpu_s_per_gb_consumed),
                b.rss_steady_kb as f64 / 1024.0,
                b.rss_peak_kb as f64 / 1024.0
            );
        }
        if let Some(v) = &self.verify {
            out += &format!(
                "verify: {} — {} of {} records read, {} missing, {} duplicates, {} out of order{}",
                if v.ok { "ok" } else { "FAILED" },
                v.read,
                v.expected,
                v.missing,
                v.duplicates,
                v.out_of_order,
                v.first_problem
                    .as_ref()
                    .map_or(String::new(), |p| format!(" ({p})"))
            );
        }
        out
    }
}

// --- shared state ---------------------------------------------------------------------------

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What producer, consumer and reporting threads share.
struct Shared {
    start: Instant,
    run_id: u32,
    record_size: u64,
    measuring: AtomicBool,
    stop_producers: AtomicBool,
    stop_consumers: AtomicBool,
    /// Records handed to librdkafka, per producer (its next sequence number).
    sent: Vec<AtomicU64>,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Records read for the first time (the ones verified).
    consumed: AtomicU64,
    /// Every record read, including (backlog mode) those read again after a partition's
    /// end, which count only towards the drain rate.
    read_total: AtomicU64,
    read_bytes: AtomicU64,
    publish_latency: Mutex<Histogram>,
    publish_window: Mutex<Histogram>,
    e2e_latency: Mutex<Histogram>,
    e2e_window: Mutex<Histogram>,
    /// Partitions assigned to each consumer, as last seen by its thread.
    assigned: Vec<AtomicUsize>,
    consumer_errors: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn note_error(&self, e: String) {
        lock(&self.first_error).get_or_insert(e);
    }
}

struct Delivery(Arc<Shared>);

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    /// Microseconds since the run started at which the record was sent.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let latency = self.0.now_us().saturating_sub(sent_us as u64);
                if self.0.measuring.load(Relaxed) {
                    lock(&self.0.publish_latency).record(latency);
                }
                lock(&self.0.publish_window).record(latency);
                self.0.acked.fetch_add(1, Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Relaxed);
                self.0.note_error(format!("delivery failed: {e}"));
            }
        }
    }
}

// --- producers -----------------------------------------------------------------------------

fn producer_config(args: &WorkloadArgs, w: &Workload) -> anyhow::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.bootstrap_server)
        .set("acks", w.acks().map_err(anyhow::Error::msg)?.as_config())
        .set("compression.codec", w.compression.as_config())
        .set("linger.ms", w.linger_ms.to_string())
        .set("batch.size", w.batch_size.to_string())
        .set("enable.idempotence", w.idempotence.to_string())
        // librdkafka's default queue (100,000 records): at the maximum rate the queue is
        // always full, so latency there is the time to drain it; a larger queue would only
        // make that number larger. Latency is meant to be read at a fixed rate.
        .set("queue.buffering.max.messages", "100000")
        .set("message.timeout.ms", "60000");
    for (k, v) in &w.producer_config {
        c.set(k, v);
    }
    Ok(c)
}

struct ProducerJob<'a> {
    w: &'a Workload,
    config: ClientConfig,
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    topic: String,
    index: u32,
    /// Records per second for this producer.
    rate: Option<f64>,
}

fn run_producer(job: ProducerJob<'_>) -> anyhow::Result<()> {
    let ProducerJob {
        w,
        config,
        shared,
        pool,
        topic,
        index,
        rate,
    } = job;
    let producer: BaseProducer<Delivery> = config
        .create_with_context(Delivery(shared.clone()))
        .context("creating the librdkafka producer")?;
    // Connected and knowing the partitions before the rate schedule starts, so the first
    // second is not spent catching up in a burst.
    producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(30))
        .with_context(|| format!("producer {index}: metadata of {topic}"))?;
    let mut rng = Rng::new(u64::from(shared.run_id) << 32 | u64::from(index));
    let mut value = vec![0u8; w.record_size];
    let started = Instant::now();
    let mut seq = 0u64;
    let mut key = String::new();
    while !shared.stop_producers.load(Relaxed) {
        if let Some(rate) = rate {
            // Keep to the schedule, serving delivery reports while waiting (a plain
            // sleep would hold them back and inflate the publish latency).
            let due = Duration::from_secs_f64(seq as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed {
                producer.poll(due - elapsed);
                continue;
            }
        }
        value[HEADER_LEN..].copy_from_slice(pool.body(&mut rng));
        Header {
            run: shared.run_id,
            producer: index,
            seq,
            sent_us: wall_us(),
        }
        .write(&mut value);
        let key_number = match w.key_distribution {
            KeyDistribution::None => None,
            KeyDistribution::RoundRobin => Some(seq % w.key_space),
            KeyDistribution::Random => Some(rng.below(w.key_space)),
        };
        let mut record =
            BaseRecord::<str, [u8], usize>::with_opaque_to(&topic, shared.now_us() as usize)
                .payload(&value[..]);
        if let Some(k) = key_number {
            key.clear();
            key.push_str("key-");
            key.push_str(&k.to_string());
            record = record.key(key.as_str());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("producer {index}: send failed: {e}"),
            }
        }
        seq += 1;
        shared.sent[index as usize].store(seq, Relaxed);
        if seq.is_multiple_of(256) {
            // poll(0) serves one event; a few calls drain what is ready.
            for _ in 0..16 {
                producer.poll(Duration::ZERO);
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .with_context(|| format!("producer {index}: waiting for the last delivery reports"))
}

// --- consumers -----------------------------------------------------------------------------

fn consumer_config(args: &WorkloadArgs, w: &Workload, group: &str, eof: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.bootstrap_server)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", eof.to_string())
        // librdkafka (2.4+) pauses fetching for fetch.queue.backoff.ms (1 s) once its local
        // queue is full; a benchmark consumer empties it at once, so back off 1 ms.
        .set("fetch.queue.backoff.ms", "1");
    for (k, v) in &w.consumer_config {
        c.set(k, v);
    }
    c
}

/// librdkafka's default context logs every end-of-partition event as an error; in backlog
/// mode reaching the end is expected (it is when a consumer starts over).
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

struct ConsumerJob {
    config: ClientConfig,
    shared: Arc<Shared>,
    topic: String,
    slot: usize,
    /// Backlog mode: re-read each partition from the start when its end is reached.
    replay: bool,
}

fn run_consumer(job: ConsumerJob) -> anyhow::Result<Verifier> {
    let ConsumerJob {
        config,
        shared,
        topic,
        slot,
        replay,
    } = job;
    let consumer: BaseConsumer<QuietEof> = config
        .create_with_context(QuietEof)
        .context("creating the librdkafka consumer")?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    let mut verifier = Verifier::default();
    let mut replaying = std::collections::HashSet::new();
    let mut polls = 0u64;
    while !shared.stop_consumers.load(Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                let value = message.payload().unwrap_or_default();
                let partition = message.partition();
                shared.read_total.fetch_add(1, Relaxed);
                shared.read_bytes.fetch_add(value.len() as u64, Relaxed);
                if !replaying.contains(&partition) {
                    shared.consumed.fetch_add(1, Relaxed);
                    match Header::read(value) {
                        Some(h) if h.run == shared.run_id => {
                            verifier.observe(h.producer, partition, h.seq);
                            if !replay {
                                let latency = wall_us().saturating_sub(h.sent_us);
                                if shared.measuring.load(Relaxed) {
                                    lock(&shared.e2e_latency).record(latency);
                                }
                                lock(&shared.e2e_window).record(latency);
                            }
                        }
                        _ => verifier.observe_foreign(),
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) if replay => {
                consumer
                    .seek(
                        &topic,
                        partition,
                        Offset::Beginning,
                        Duration::from_secs(10),
                    )
                    .with_context(|| format!("seeking {topic}/{partition} to the start"))?;
                replaying.insert(partition);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                // librdkafka reports transient trouble (a broker connection lost) this
                // way and recovers on its own; what was lost shows in the verification.
                shared.consumer_errors.fetch_add(1, Relaxed);
                shared.note_error(format!("consumer of {topic}: {e}"));
            }
            None => {}
        }
        polls += 1;
        if polls % 64 == 1 {
            let n = consumer.assignment().map_or(0, |a| a.count());
            shared.assigned[slot].store(n, Relaxed);
        }
    }
    Ok(verifier)
}

// --- topics --------------------------------------------------------------------------------

fn admin(args: &WorkloadArgs) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_server)
        .create()
        .context("creating the librdkafka admin client")
}

fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    w: &Workload,
    names: &[String],
) -> anyhow::Result<()> {
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let mut t = NewTopic::new(
                name,
                w.partitions_per_topic as i32,
                TopicReplication::Fixed(w.replication_factor),
            );
            for (k, v) in &w.topic_config {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics(&topics, &opts))
        .context("creating topics")?;
    for r in results {
        if let Err((topic, code)) = r {
            bail!("creating topic {topic}: {code}");
        }
    }
    // Every partition led, as the brokers see it, before anything is sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in names {
        loop {
            let md = admin
                .inner()
                .fetch_metadata(Some(name), Duration::from_secs(5));
            let ready = md.as_ref().is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == name
                        && t.error().is_none()
                        && t.partitions().len() == w.partitions_per_topic as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("topic {name}: not every partition has a leader after 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn delete_topics(admin: &AdminClient<DefaultClientContext>, names: &[String]) {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match futures::executor::block_on(admin.delete_topics(&refs, &opts)) {
        Ok(results) => {
            for r in results {
                if let Err((topic, code)) = r {
                    eprintln!("workload: deleting topic {topic}: {code}");
                }
            }
        }
        Err(e) => eprintln!("workload: deleting topics: {e}"),
    }
}

// --- the run -------------------------------------------------------------------------------

/// Counters at one moment, to take differences between.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    acked: u64,
    read: u64,
    read_bytes: u64,
    broker: Option<proc_stats::Sample>,
}

struct Clock<'a> {
    shared: &'a Shared,
    pids: &'a [u32],
    interval: Duration,
    last_report: Instant,
    last: Mark,
    rss_samples: Vec<u64>,
    backlog_samples: Vec<u64>,
}

impl<'a> Clock<'a> {
    fn new(shared: &'a Shared, pids: &'a [u32], interval_ms: u64) -> anyhow::Result<Self> {
        let mark = mark(shared, pids)?;
        Ok(Clock {
            shared,
            pids,
            interval: Duration::from_millis(interval_ms),
            last_report: Instant::now(),
            last: mark,
            rss_samples: Vec::new(),
            backlog_samples: Vec::new(),
        })
    }

    /// Waits until `until`, printing progress lines and sampling RSS and backlog (when
    /// `sample` is set) once a second. Fails early if a thread reported a fatal error.
    fn run_until(
        &mut self,
        until: Instant,
        phase: &str,
        sample: bool,
        failed: &AtomicBool,
    ) -> anyhow::Result<()> {
        let mut next_sample = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if failed.load(Relaxed) {
                bail!("a producer or consumer failed");
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            if sample && Instant::now() >= next_sample {
                next_sample += Duration::from_secs(1);
                if let Ok(s) = proc_stats::sample(self.pids) {
                    if !self.pids.is_empty() {
                        self.rss_samples.push(s.rss_kb);
                    }
                }
                let acked = self.shared.acked.load(Relaxed);
                self.backlog_samples
                    .push(acked.saturating_sub(self.shared.consumed.load(Relaxed)));
            }
            if !self.interval.is_zero() && self.last_report.elapsed() >= self.interval {
                self.progress(phase)?;
            }
        }
        Ok(())
    }

    fn progress(&mut self, phase: &str) -> anyhow::Result<()> {
        let now = mark(self.shared, self.pids)?;
        let secs = (now.at - self.last.at).as_secs_f64().max(1e-9);
        let size = self.shared.record_size;
        let published = now.acked - self.last.acked;
        let read = now.read - self.last.read;
        let publish = std::mem::take(&mut *lock(&self.shared.publish_window));
        let e2e = std::mem::take(&mut *lock(&self.shared.e2e_window));
        let cpu = match (now.broker, self.last.broker) {
            (Some(a), Some(b)) => format!(
                " | broker cpu {:.0}%",
                (a.cpu_ticks - b.cpu_ticks) as f64
                    / secs
                    / CLK.get().copied().unwrap_or(100) as f64
                    * 100.0
            ),
            _ => String::new(),
        };
        eprintln!(
            "[{phase} {:>5.1}s] publish {:.0} rec/s {:.1} MB/s p99 {:.2} ms | consume {:.0} rec/s \
             {:.1} MB/s e2e p99 {:.2} ms | backlog {}{cpu}",
            self.shared.start.elapsed().as_secs_f64(),
            published as f64 / secs,
            (published * size) as f64 / secs / MB,
            publish.percentile(99.0) as f64 / 1000.0,
            read as f64 / secs,
            (now.read_bytes - self.last.read_bytes) as f64 / secs / MB,
            e2e.percentile(99.0) as f64 / 1000.0,
            now.acked.saturating_sub(self.shared.consumed.load(Relaxed)),
        );
        self.last = now;
        self.last_report = Instant::now();
        Ok(())
    }
}

static CLK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn mark(shared: &Shared, pids: &[u32]) -> anyhow::Result<Mark> {
    Ok(Mark {
        at: Instant::now(),
        acked: shared.acked.load(Relaxed),
        read: shared.read_total.load(Relaxed),
        read_bytes: shared.read_bytes.load(Relaxed),
        broker: if pids.is_empty() {
            None
        } else {
            Some(proc_stats::sample(pids)?)
        },
    })
}

/// Broker CPU seconds between two marks: (user + system, system).
fn cpu_seconds(a: &Mark, b: &Mark) -> Option<(f64, f64)> {
    let (a, b) = (a.broker?, b.broker?);
    let tck = *CLK.get()? as f64;
    Some((
        (b.cpu_ticks - a.cpu_ticks) as f64 / tck,
        (b.system_ticks - a.system_ticks) as f64 / tck,
    ))
}

fn median(xs: &mut [u64]) -> u64 {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied().unwrap_or(0)
}

/// Runs a workload and prints its report.
///
/// # Errors
/// An invalid workload, a broker that refuses topics or records, a thread that fails, or
/// a verification that finds records missing, duplicated or out of order.
pub fn run(args: WorkloadArgs) -> anyhow::Result<()> {
    let w = args.resolve()?;
    if !args.broker_pids.is_empty() {
        let _ = CLK.set(proc_stats::clock_ticks_per_second()?);
        proc_stats::sample(&args.broker_pids)?;
    }
    let run_id = (wall_us() as u32) ^ std::process::id().rotate_left(16);
    let pool = Arc::new(Pool::new(w.payload, w.record_size, u64::from(run_id)));
    let payload = PayloadReport {
        kind: w.payload,
        record_size: w.record_size,
        ratio_lz4: pool.compression_ratio(codec_of(Compression::Lz4), w.record_size, 1),
        ratio_zstd: pool.compression_ratio(codec_of(Compression::Zstd), w.record_size, 1),
        ratio_producer_codec: pool.compression_ratio(codec_of(w.compression), w.record_size, 1),
    };
    eprintln!(
        "workload {}: payload {:?} {} B, compresses {:.2}x with lz4, {:.2}x with zstd",
        w.name, w.payload, w.record_size, payload.ratio_lz4, payload.ratio_zstd
    );
    let admin = admin(&args)?;
    let topics: Vec<String> = (0..w.topics)
        .map(|i| format!("{}-{run_id:08x}-{i}", w.name))
        .collect();
    create_topics(&admin, &w, &topics)?;
    let result = drive(&args, &w, &topics, run_id, pool, payload);
    if !args.keep_topics {
        delete_topics(&admin, &topics);
    }
    let report = result?;
    println!("{}", report.text());
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    if let Some(v) = &report.verify {
        if !v.ok {
            bail!(
                "verification failed: {}",
                v.first_problem.as_deref().unwrap_or("see the report")
            );
        }
    }
    if report.publish_errors > 0 {
        bail!("{} records were not delivered", report.publish_errors);
    }
    Ok(())
}

fn drive(
    args: &WorkloadArgs,
    w: &Workload,
    topics: &[String],
    run_id: u32,
    pool: Arc<Pool>,
    payload: PayloadReport,
) -> anyhow::Result<Report> {
    let shared = Arc::new(Shared {
        start: Instant::now(),
        run_id,
        record_size: w.record_size as u64,
        measuring: AtomicBool::new(false),
        stop_producers: AtomicBool::new(false),
        stop_consumers: AtomicBool::new(false),
        sent: (0..w.producers()).map(|_| AtomicU64::new(0)).collect(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
        consumed: AtomicU64::new(0),
        read_total: AtomicU64::new(0),
        read_bytes: AtomicU64::new(0),
        publish_latency: Mutex::new(Histogram::new()),
        publish_window: Mutex::new(Histogram::new()),
        e2e_latency: Mutex::new(Histogram::new()),
        e2e_window: Mutex::new(Histogram::new()),
        assigned: (0..w.consumers()).map(|_| AtomicUsize::new(0)).collect(),
        consumer_errors: AtomicU64::new(0),
    });
    let backlog_mode = w.consume == ConsumeMode::Backlog;
    let pids = &args.broker_pids[..];
    let failed = AtomicBool::new(false);
    let pconfig = producer_config(args, w)?;
    let per_producer_rate = (w.rate > 0).then(|| w.rate as f64 / f64::from(w.producers()));

    std::thread::scope(|scope| -> anyhow::Result<Report> {
        let start_consumers = || {
            (0..w.consumers())
                .map(|slot| {
                    let topic = topics[(slot / w.consumers_per_topic) as usize].clone();
                    let group = format!("{topic}-group");
                    let job = ConsumerJob {
                        config: consumer_config(args, w, &group, backlog_mode),
                        shared: shared.clone(),
                        topic,
                        slot: slot as usize,
                        replay: backlog_mode,
                    };
                    let failed = &failed;
                    scope.spawn(move || {
                        let r = run_consumer(job);
                        if r.is_err() {
                            failed.store(true, Relaxed);
                        }
                        r
                    })
                })
                .collect::<Vec<_>>()
        };
        let wait_assigned = |what: &str| -> anyhow::Result<()> {
            let deadline = Instant::now() + Duration::from_secs(60);
            let want = w.partitions() as usize;
            loop {
                let have: usize = shared.assigned.iter().map(|a| a.load(Relaxed)).sum();
                if have == want {
                    return Ok(());
                }
                if failed.load(Relaxed) {
                    bail!("a consumer failed while joining its group");
                }
                if Instant::now() > deadline {
                    bail!("{what}: {have} of {want} partitions assigned to consumers after 60 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };

        let mut consumers = Vec::new();
        if !backlog_mode && w.consumers_per_topic > 0 {
            consumers = start_consumers();
            wait_assigned("consumer groups")?;
        }

        let producers: Vec<_> = (0..w.producers())
            .map(|index| {
                let job = ProducerJob {
                    w,
                    config: pconfig.clone(),
                    shared: shared.clone(),
                    pool: pool.clone(),
                    topic: topics[(index / w.producers_per_topic) as usize].clone(),
                    index,
                    rate: per_producer_rate,
                };
                let failed = &failed;
                scope.spawn(move || {
                    let r = run_producer(job);
                    if r.is_err() {
                        failed.store(true, Relaxed);
                    }
                    r
                })
            })
            .collect();

        let mut clock = Clock::new(&shared, pids, args.reporting_interval_ms)?;
        let t0 = Instant::now();
        let warmup_end = t0 + Duration::from_secs(w.warmup_s);
        let measure_end = warmup_end + Duration::from_secs(w.duration_s);
        let outcome = (|| -> anyhow::Result<(Mark, Mark)> {
            clock.run_until(warmup_end, "warm-up", false, &failed)?;
            let a = mark(&shared, pids)?;
            shared.measuring.store(true, Relaxed);
            clock.run_until(measure_end, "measure", true, &failed)?;
            shared.measuring.store(false, Relaxed);
            let b = mark(&shared, pids)?;
            Ok((a, b))
        })();
        shared.measuring.store(false, Relaxed);
        shared.stop_producers.store(true, Relaxed);
        for p in producers {
            p.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a producer thread panicked")))?;
        }
        if outcome.is_err() {
            shared.stop_consumers.store(true, Relaxed);
        }
        let (a, b) = outcome?;
        let measured_s = (b.at - a.at).as_secs_f64();
        let publish = Rates::of(
            b.acked - a.acked,
            (b.acked - a.acked) * w.record_size as u64,
            measured_s,
        );
        let consume_live = (!backlog_mode && w.consumers_per_topic > 0)
            .then(|| Rates::of(b.read - a.read, b.read_bytes - a.read_bytes, measured_s));
        let sent: Vec<u64> = shared.sent.iter().map(|s| s.load(Relaxed)).collect();
        let total_sent: u64 = sent.iter().sum();

        // Backlog mode: now the consumers, alone.
        let mut drain = None;
        let mut drain_marks = None;
        if backlog_mode {
            consumers = start_consumers();
            wait_assigned("consumer groups (backlog)")?;
            let c = mark(&shared, pids)?;
            clock.rss_samples.clear();
            clock.run_until(
                Instant::now() + Duration::from_secs(w.drain_s),
                "drain",
                true,
                &failed,
            )?;
            let d = mark(&shared, pids)?;
            drain = Some(Rates::of(
                d.read - c.read,
                d.read_bytes - c.read_bytes,
                (d.at - c.at).as_secs_f64(),
            ));
            drain_marks = Some((c, d));
        }

        // Consumers read on until they have every acknowledged record (or stall).
        let mut verify = None;
        if !consumers.is_empty() {
            let mut last = (shared.consumed.load(Relaxed), Instant::now());
            while shared.consumed.load(Relaxed) < total_sent && !failed.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = shared.consumed.load(Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(30) {
                    eprintln!(
                        "workload: consumers stalled at {now} of {total_sent} records for 30 s"
                    );
                    break;
                }
            }
            shared.stop_consumers.store(true, Relaxed);
            let mut all = Verifier::default();
            for c in consumers {
                all.merge(
                    c.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a consumer thread panicked")))?,
                );
            }
            verify = Some(all.report(&sent));
        }

        let broker = (!pids.is_empty()).then(|| {
            let gb = |bytes: u64| bytes as f64 / 1e9;
            let per_gb =
                |cpu: Option<f64>, bytes: u64| cpu.filter(|_| bytes > 0).map(|c| c / gb(bytes));
            let live = (!backlog_mode).then(|| cpu_seconds(&a, &b)).flatten();
            let moved = publish.bytes + consume_live.as_ref().map_or(0, |c| c.bytes);
            let produce = backlog_mode.then(|| cpu_seconds(&a, &b)).flatten();
            let consume = drain_marks.as_ref().and_then(|(c, d)| cpu_seconds(c, d));
            let drained = drain.as_ref().map_or(0, |d| d.bytes);
            let (live_cpu, produce_cpu, consume_cpu) = (
                live.map(|c| c.0),
                produce.map(|c| c.0),
                consume.map(|c| c.0),
            );
            let end = proc_stats::sample(pids).ok();
            BrokerReport {
                pids: pids.to_vec(),
                clock_ticks_per_sec: CLK.get().copied().unwrap_or(0),
                cpu_s: live_cpu,
                cpu_s_per_gb_moved: per_gb(live_cpu, moved),
                produce_cpu_s: produce_cpu,
                cpu_s_per_gb_produced: per_gb(produce_cpu, publish.bytes),
                consume_cpu_s: consume_cpu,
                cpu_s_per_gb_consumed: per_gb(consume_cpu, drained),
                system_cpu_s_per_gb_moved: per_gb(live.map(|c| c.1), moved),
                system_cpu_s_per_gb_produced: per_gb(produce.map(|c| c.1), publish.bytes),
                system_cpu_s_per_gb_consumed: per_gb(consume.map(|c| c.1), drained),
                rss_steady_kb: median(&mut clock.rss_samples.clone()),
                rss_peak_kb: clock.rss_samples.iter().copied().max().unwrap_or(0),
                rss_hwm_kb: end.map_or(0, |s| s.hwm_kb),
            }
        });
        let backlog = (!backlog_mode && w.consumers_per_topic > 0).then(|| {
            let s = &clock.backlog_samples;
            BacklogReport {
                max_records: s.iter().copied().max().unwrap_or(0),
                mean_records: s.iter().sum::<u64>() as f64 / s.len().max(1) as f64,
                end_records: b.acked.saturating_sub(b.read),
            }
        });
        if let Some(e) = lock(&shared.first_error).as_ref() {
            eprintln!("workload: first client error: {e}");
        }
        Ok(Report {
            kind: "workload",
            workload: w.clone(),
            run_id: format!("{run_id:08x}"),
            topics: topics.to_vec(),
            payload,
            publish,
            publish_latency: Latency::of(&lock(&shared.publish_latency)),
            publish_errors: shared.failed.load(Relaxed),
            consume: consume_live,
            end_to_end_latency: (!backlog_mode && w.consumers_per_topic > 0)
                .then(|| Latency::of(&lock(&shared.e2e_latency))),
            backlog,
            drain,
            verify,
            broker,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: WorkloadArgs,
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("ironlog-workload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("w.yaml");
        std::fs::write(&file, "name: f\npartitions_per_topic: 6\nrate: 1000\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let cli = Cli::try_parse_from([
            "workload",
            "--workload",
            file.to_str().unwrap_or_default(),
            "--rate",
            "50000",
            "--producers",
            "3",
            "--topic-config",
            "min.insync.replicas=2",
            "--payload",
            "text",
            "--consume",
            "backlog",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let w = cli.args.resolve().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(w.name, "f");
        assert_eq!(w.partitions_per_topic, 6);
        assert_eq!(w.rate, 50_000);
        assert_eq!(w.producers_per_topic, 3);
        assert_eq!(w.payload, PayloadKind::Text);
        assert_eq!(w.consume, ConsumeMode::Backlog);
        assert_eq!(w.topic_config["min.insync.replicas"], "2");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_invalid_workload_is_refused_before_connecting() {
        let cli = Cli::try_parse_from(["workload", "--record-size", "8"])
            .unwrap_or_else(|e| panic!("{e}"));
        let e = cli.args.resolve().unwrap_err().to_string();
        assert!(e.contains("record_size must be at least 24"), "{e}");
    }

    #[test]
    fn rates_state_mb_and_mib() {
        let r = Rates::of(1000, 1_048_576_000, 10.0);
        assert_eq!(r.records_per_sec, 100.0);
        assert!((r.mb_per_sec - 104.8576).abs() < 1e-9);
        assert!((r.mib_per_sec - 100.0).abs() < 1e-9);
    }
}
