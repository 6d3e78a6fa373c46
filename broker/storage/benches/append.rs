//! CPU cost of accepting one well-formed batch: validation alone, and the whole append
//! (validation, offset assignment, one write to a segment on tmpfs or the temp dir, index
//! upkeep).
//!
//!     cargo bench -p ironlog-storage --bench append
//!
//! Env: `BENCH_SECONDS` per run (default 2), `BENCH_RUNS` (default 5), `BENCH_DIR` for the
//! segment files (default /dev/shm if present, so the disk is not measured).
//! Prints, per batch shape and row, the median ns per batch over the runs, the spread
//! (min..max) and MB/s of batch bytes. Rows of one shape are measured in the same run, so
//! their ratio is meaningful: "validate" (this broker's LogValidator: CRC, every record
//! walked, offsets, timestamps, keys) against "crc+walk", the least any validator must do
//! (CRC-32C and one pass over the records with the bounded decoder, no rules), which is
//! exactly the work the produce path did before it validated like Kafka.
//! Payloads are pseudo-random bytes (they do not compress), except where the shape says.
//!
//! Instructions instead of time (repeatable on a busy machine): `BENCH_ITERS=n` runs each
//! row exactly n times per run, `BENCH_SHAPE=<part of a shape name>` picks shapes; under
//! `valgrind --tool=callgrind`, the inclusive instructions of `append::crc_and_walk`,
//! `append::validate_only` and `append::produce` divided by n × `BENCH_RUNS` are the
//! per-batch cost of each row.

mod common;

use common::{bench_dir, env_or, random_bytes};

use std::time::{Duration, Instant};

use ironlog_storage::batch::testing::{build_records_batch, RecordSpec};
use ironlog_storage::batch::{self, Compression};
use ironlog_storage::records::{RecordDecoder, DEFAULT_MAX_UNCOMPRESSED_BYTES};
use ironlog_storage::{Log, LogConfig, LogValidator};

struct Shape {
    name: &'static str,
    batch: Vec<u8>,
    records: usize,
}

fn shape(name: &'static str, records: usize, value_len: usize, codec: Compression) -> Shape {
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    let specs: Vec<RecordSpec> = (0..records)
        .map(|i| RecordSpec {
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(random_bytes(&mut seed, value_len)),
            headers: Vec::new(),
        })
        .collect();
    let now = now_ms();
    Shape {
        name,
        batch: build_records_batch(0, now, codec, &specs),
        records,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs `f` once per iteration for `seconds` (or exactly `BENCH_ITERS` times, with no
/// warm-up, for instruction counts); returns ns per iteration.
fn time_per_iter(seconds: f64, mut f: impl FnMut()) -> f64 {
    if let Some(iters) = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        return start.elapsed().as_nanos() as f64 / iters as f64;
    }
    // Warm up (caches, allocator) outside the timed window.
    for _ in 0..100 {
        f();
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn report(shape: &Shape, row: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let mbps = shape.batch.len() as f64 / median * 1e9 / 1e6;
    println!(
        "{:<28} {:<10} {:>10.0} ns/batch  (min {:.0} .. max {:.0}, {} runs)  {:>8.0} MB/s  {:>6.1} ns/record",
        shape.name,
        row,
        median,
        samples[0],
        samples[samples.len() - 1],
        samples.len(),
        mbps,
        median / shape.records as f64,
    );
    median
}

/// The least work any validator does: CRC-32C of the batch and one walk of its records.
#[inline(never)]
fn crc_and_walk(decoder: &mut RecordDecoder, buf: &[u8]) {
    batch::parse_batches(buf).expect("valid batch");
    decoder.check_batches(buf).expect("valid records");
}

/// This broker's validation of a producer's batch.
#[inline(never)]
fn validate_only(validator: &LogValidator, decoder: &mut RecordDecoder, buf: &mut [u8], now: i64) {
    validator.validate(buf, decoder, now).expect("valid");
}

/// The produce path's work on the log: validation and the append.
#[inline(never)]
fn produce(log: &mut Log, decoder: &mut RecordDecoder, buf: &mut [u8], now: i64) {
    let validator = LogValidator::new(log.config());
    let records = validator.validate(buf, decoder, now).expect("valid batch");
    log.append_validated(records, None, now).expect("append");
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let seconds: f64 = env_or("BENCH_SECONDS", 2.0);
    let runs: usize = env_or("BENCH_RUNS", 5);
    let shapes = [
        shape("1 record x 100 B (Sarama)", 1, 100, Compression::None),
        shape("100 records x 100 B", 100, 100, Compression::None),
        shape("100 records x 100 B lz4", 100, 100, Compression::Lz4),
        shape("1000 records x 1 KiB", 1000, 1024, Compression::None),
    ];
    println!(
        "append bench: {runs} runs x {seconds} s per row, segment files in {}",
        bench_dir().display()
    );
    let only = std::env::var("BENCH_SHAPE").unwrap_or_default();
    for s in shapes.iter().filter(|s| s.name.contains(only.as_str())) {
        let mut decoder = RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES);
        let mut buf = s.batch.clone();
        let walk: Vec<f64> = (0..runs)
            .map(|_| {
                time_per_iter(seconds, || {
                    // The same copy as the other rows (which patch the buffer in place).
                    buf.copy_from_slice(&s.batch);
                    crc_and_walk(&mut decoder, &buf)
                })
            })
            .collect();
        let walk = report(s, "crc+walk", walk);
        let validator = LogValidator::new(&LogConfig::default());
        let now = now_ms();
        let validate: Vec<f64> = (0..runs)
            .map(|_| {
                time_per_iter(seconds, || {
                    buf.copy_from_slice(&s.batch);
                    validate_only(&validator, &mut decoder, &mut buf, now);
                })
            })
            .collect();
        let validate = report(s, "validate", validate);
        println!(
            "{:<28} validate / crc+walk = {:.3}",
            s.name,
            validate / walk
        );
        let mut append = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir_in(bench_dir()).expect("bench dir");
            let config = LogConfig {
                segment_bytes: u64::from(u32::MAX),
                ..LogConfig::default()
            };
            let mut log = Log::open(dir.path(), config, 0, now_ms()).expect("open log");
            let now = now_ms();
            append.push(time_per_iter(seconds / 2.0, || {
                buf.copy_from_slice(&s.batch);
                produce(&mut log, &mut decoder, &mut buf, now);
                if log.size_bytes() > 1 << 30 {
                    log.truncate_to(0).expect("truncate");
                }
            }));
        }
        let append = report(s, "append", append);
        println!("{:<28} append / crc+walk = {:.2}", s.name, append / walk);
    }
}
