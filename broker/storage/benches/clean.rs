//! Log cleaner throughput: one compaction pass over a log of superseded keys, per codec.
//!
//!     cargo bench -p ironlog-storage --bench clean
//!
//! Each run builds a fresh log (not timed) of `BENCH_MB` MiB (default 64) of batches of 100
//! records, 100-byte pseudo-random values (they do not compress: the codecs' cost is the
//! decompress-and-recompress work, not a tiny output), keys drawn at random from 10,000
//! (nearly every batch wholly superseded: dropped) or from 250,000 (about 2 in 5 records
//! live, spread over every batch: nearly every batch rewritten), in 8 MiB segments,
//! then times one cleaning pass (offset map, filter, recompress, fsync, swap) with no I/O
//! cap. Files go to `BENCH_DIR` (default /dev/shm if present, so the disk is not measured).
//! `BENCH_RUNS` runs per codec (default 3). Prints per codec: records before and after,
//! the median pass time and its spread, and MB/s of log bytes cleaned (bytes before the pass
//! / pass time), with the ratio to the uncompressed row of the same run.

mod common;

use common::{bench_dir, env_or, random_bytes};

use std::sync::RwLock;
use std::time::Instant;

use ironlog_storage::batch::testing::{build_records_batch, numbered};
use ironlog_storage::batch::Compression;
use ironlog_storage::cleaner::{Cleaner, CleanerConfig, PassOutcome};
use ironlog_storage::{CleanupPolicy, Log, LogConfig};

const RECORDS_PER_BATCH: u64 = 100;

/// A log of about `bytes` bytes of `codec` batches; returns it and its record count.
fn build(dir: &std::path::Path, codec: Compression, bytes: u64, keys: u64) -> (RwLock<Log>, u64) {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 8 << 20,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir, config, 0, 0).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut n = 0u64;
    while log.size_bytes() < bytes {
        let specs = numbered((0..RECORDS_PER_BATCH).map(|_| {
            let k = u64::from_be_bytes(random_bytes(&mut seed, 8).try_into().unwrap()) % keys;
            let key = format!("key-{k:06}").into_bytes();
            (Some(key), Some(random_bytes(&mut seed, 100)), Vec::new())
        }));
        let mut batch = build_records_batch(0, 1_000, codec, &specs);
        log.append(&mut batch, 1_000).unwrap();
        n += RECORDS_PER_BATCH;
    }
    log.roll(0).unwrap();
    (RwLock::new(log), n)
}

fn main() {
    let runs: usize = env_or("BENCH_RUNS", 3);
    let mib: u64 = env_or("BENCH_MB", 64);
    for keys in [10_000, 250_000] {
        one_shape(runs, mib, keys);
    }
}

fn one_shape(runs: usize, mib: u64, keys: u64) {
    println!(
        "\nlog cleaner, one pass over {mib} MiB: 100-byte random values, {keys} keys, batches of {RECORDS_PER_BATCH}"
    );
    println!(
        "{:<7} {:>14} {:>10} {:>12} {:>22} {:>10} {:>9}",
        "codec", "records before", "after", "MiB before", "pass s (min..max)", "MB/s", "vs none"
    );
    let mut none_mbps = None;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut seconds = Vec::new();
        let (mut before, mut after, mut size) = (0, 0, 0);
        for _ in 0..runs {
            let tmp = tempfile::tempdir_in(bench_dir()).unwrap();
            let (log, records) = build(tmp.path(), codec, mib << 20, keys);
            size = log.read().unwrap().size_bytes();
            let start = Instant::now();
            let outcome = Cleaner::new(CleanerConfig::default())
                .clean_now(&log, 2_000)
                .unwrap();
            seconds.push(start.elapsed().as_secs_f64());
            let PassOutcome::Cleaned(stats) = outcome else {
                panic!("expected a pass, got {outcome:?}");
            };
            before = records;
            after = records - stats.records_removed;
        }
        seconds.sort_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2];
        let mbps = size as f64 / median / 1e6;
        let ratio = none_mbps.map_or(1.0, |n: f64| mbps / n);
        none_mbps.get_or_insert(mbps);
        println!(
            "{:<7} {:>14} {:>10} {:>12.1} {:>8.3} ({:.3}..{:.3}) {:>10.1} {:>9.2}",
            format!("{codec:?}").to_lowercase(),
            before,
            after,
            size as f64 / (1 << 20) as f64,
            median,
            seconds[0],
            seconds[seconds.len() - 1],
            mbps,
            ratio
        );
    }
}
