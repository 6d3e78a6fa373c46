//! `ironlog perf produce`: kafka-producer-perf-test on librdkafka.
//!
//! Each producer is one thread with its own librdkafka `BaseProducer`; the thread sends and
//! serves delivery reports (`poll`) itself, so a report is handled by the thread that sent
//! the record and no extra thread competes for the CPU. Latency is send → delivery report:
//! the microsecond at which `send` was first called travels with the record as its opaque
//! value and the delivery callback subtracts it from now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::histogram::Histogram;
use crate::report::{progress_line, Summary};
use crate::{lock, parse_key_value, Acks, Compression};

#[derive(clap::Args, Debug, Clone)]
pub struct ProduceArgs {
    /// Broker address(es), host:port[,host:port].
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Topic to produce to (created by the broker on first use if auto-creation is on).
    #[arg(long)]
    pub topic: String,
    /// Records to send in all (split evenly across producers).
    #[arg(long)]
    pub num_records: u64,
    /// Value size in bytes (records have no key).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Records per second to aim for, across all producers; -1 for as fast as possible.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub throughput: i64,
    /// 0, 1 or all (-1).
    #[arg(long, default_value = "1")]
    pub acks: Acks,
    #[arg(long, default_value = "none")]
    pub compression: Compression,
    /// librdkafka `linger.ms`.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// librdkafka `batch.size` in bytes (its default is 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u64,
    /// Producer threads, each with its own connection.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Extra librdkafka settings, KEY=VALUE (repeatable); applied last. Also spelled
    /// kafka-producer-perf-test's way, `--producer-props k1=v1 k2=v2`.
    #[arg(long = "producer-config", visible_alias = "producer-props", num_args = 1.., value_parser = parse_key_value)]
    pub producer_config: Vec<(String, String)>,
    /// Milliseconds between progress lines (on stderr); 0 turns them off.
    #[arg(long, visible_alias = "reporting-interval", default_value_t = 5000)]
    pub reporting_interval_ms: u64,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

impl ProduceArgs {
    /// The librdkafka configuration for one producer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_server)
            .set("acks", self.acks.as_config())
            .set("compression.codec", self.compression.as_config())
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_size.to_string())
            // Room for a full second of records at the target rates, so `send` rarely
            // finds the queue full.
            .set("queue.buffering.max.messages", "2000000")
            // Fail a run against a dead or refusing broker within a minute, not librdkafka's
            // default five.
            .set("message.timeout.ms", "60000");
        for (k, v) in &self.producer_config {
            config.set(k, v);
        }
        config
    }
}

/// Shared between producer threads and the progress reporter.
struct Stats {
    start: Instant,
    total: Mutex<Histogram>,
    window: Mutex<Histogram>,
    acked: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

struct DeliveryStats(Arc<Stats>);

impl ClientContext for DeliveryStats {}

impl ProducerContext for DeliveryStats {
    /// Microseconds since the run started at which the record was first sent.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let latency = self.0.now_us().saturating_sub(sent_us as u64);
                lock(&self.0.total).record(latency);
                lock(&self.0.window).record(latency);
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.errors.fetch_add(1, Ordering::Relaxed);
                lock(&self.0.first_error).get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Payload pool: record values are `record_size`-byte windows into it at varying offsets,
/// so values differ (compression sees realistic, not identical, text) without generating
/// a value per record. Random uppercase letters, as kafka-producer-perf-test uses.
const POOL_SLACK: usize = 4096;

fn payload_pool(record_size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..record_size + POOL_SLACK)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// Waits as needed to keep `sent` records at `per_sec` since `started`, serving delivery
/// reports while it waits (a plain sleep would hold them back and inflate latency).
fn throttle(producer: &BaseProducer<DeliveryStats>, per_sec: f64, sent: u64, started: Instant) {
    let due = Duration::from_secs_f64(sent as f64 / per_sec);
    let elapsed = started.elapsed();
    if due > elapsed + Duration::from_millis(1) {
        producer.poll(due - elapsed);
    }
}

/// Serves the delivery reports that are ready. `poll(0)` handles at most one event (one
/// delivered batch), so a single call per send round lets reports pile up and makes the
/// measured latency grow with the run; a few calls drain them and cost nothing when empty.
fn serve_reports(producer: &BaseProducer<DeliveryStats>) {
    for _ in 0..16 {
        producer.poll(Duration::ZERO);
    }
}

fn produce_thread(
    args: &ProduceArgs,
    stats: Arc<Stats>,
    records: u64,
    per_sec: Option<f64>,
    seed: u64,
) -> anyhow::Result<()> {
    let producer: BaseProducer<DeliveryStats> = args
        .client_config()
        .create_with_context(DeliveryStats(stats.clone()))
        .context("creating the librdkafka producer")?;
    let pool = payload_pool(args.record_size, seed);
    let started = Instant::now();
    for i in 0..records {
        if let Some(rate) = per_sec {
            throttle(&producer, rate, i, started);
        }
        let offset = (i as usize).wrapping_mul(7919) % POOL_SLACK;
        let payload = &pool[offset..offset + args.record_size];
        let sent_us = stats.now_us() as usize;
        let mut record =
            BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, sent_us).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
        if i % 512 == 0 {
            serve_reports(&producer);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("waiting for the last delivery reports")?;
    Ok(())
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    if args.producers == 0 {
        bail!("--producers must be at least 1");
    }
    let stats = Arc::new(Stats {
        start: Instant::now(),
        total: Mutex::new(Histogram::new()),
        window: Mutex::new(Histogram::new()),
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let done = Arc::new(AtomicBool::new(false));
    let reporter = spawn_reporter(&args, stats.clone(), done.clone());
    let n = args.producers as u64;
    let per_thread_rate = (args.throughput > 0).then(|| args.throughput as f64 / n as f64);
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|t| {
                // Spread the remainder over the first threads.
                let records = args.num_records / n + u64::from(t < args.num_records % n);
                let (args, stats) = (&args, stats.clone());
                scope.spawn(move || produce_thread(args, stats, records, per_thread_rate, t + 1))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("producer thread panicked")))
            })
            .collect()
    });
    let elapsed = stats.start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    for r in results {
        r?;
    }
    let acked = stats.acked.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let summary = Summary::new(
        "produce",
        acked,
        acked * args.record_size as u64,
        elapsed,
        &lock(&stats.total),
        errors,
    );
    summary.print(args.json);
    if errors > 0 {
        let first = lock(&stats.first_error).clone().unwrap_or_default();
        bail!(
            "{errors} of {} records were not delivered (first error: {first})",
            args.num_records
        );
    }
    Ok(())
}

fn spawn_reporter(
    args: &ProduceArgs,
    stats: Arc<Stats>,
    done: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if args.reporting_interval_ms == 0 {
        return None;
    }
    let interval = Duration::from_millis(args.reporting_interval_ms);
    let record_size = args.record_size as u64;
    Some(std::thread::spawn(move || {
        let mut last = Instant::now();
        let mut last_acked = 0;
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() < interval {
                continue;
            }
            let window = std::mem::take(&mut *lock(&stats.window));
            let acked = stats.acked.load(Ordering::Relaxed);
            let n = acked - last_acked;
            eprintln!(
                "{}",
                progress_line(
                    "sent",
                    n,
                    n * record_size,
                    last.elapsed().as_secs_f64(),
                    &window,
                    acked
                )
            );
            last = Instant::now();
            last_acked = acked;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_pool_is_letters_and_seeded() {
        let a = payload_pool(100, 1);
        assert_eq!(a.len(), 100 + POOL_SLACK);
        assert!(a.iter().all(|b| b.is_ascii_uppercase()));
        assert_eq!(a, payload_pool(100, 1));
        assert_ne!(a, payload_pool(100, 2));
    }

    #[test]
    fn takes_kafka_producer_perf_test_flags() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ProduceArgs,
        }
        let cli = Cli::try_parse_from([
            "perf",
            "--topic",
            "t",
            "--num-records",
            "1000",
            "--throughput",
            "100",
            "--record-size",
            "100",
            "--bootstrap-server",
            "b:9092",
            "--producer-props",
            "acks=all",
            "linger.ms=0",
            "--reporting-interval",
            "1000",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let a = cli.args;
        assert_eq!(
            (a.num_records, a.throughput, a.record_size),
            (1000, 100, 100)
        );
        assert_eq!(a.bootstrap_server, "b:9092");
        assert_eq!(
            a.producer_config,
            vec![
                ("acks".to_string(), "all".to_string()),
                ("linger.ms".to_string(), "0".to_string())
            ]
        );
        assert_eq!(a.reporting_interval_ms, 1000);
    }
}
