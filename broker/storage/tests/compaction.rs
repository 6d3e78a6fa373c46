//! Model-based property test of log compaction: random keys, values, tombstones, codecs
//! and batch shapes, appended to a real `Log` with rolls and cleaning passes interleaved,
//! checked against a model that knows every record ever written.
//!
//! After every pass: each record still in the log is the record the model has at that
//! offset (offsets preserved, order kept), the latest record of every key is still there,
//! and everything in the active segment is untouched. At the end, once every record is in
//! an inactive segment, one pass leaves exactly the latest record of each key (tombstones
//! included, as their delete horizon has not passed), and a pass after the horizon leaves
//! exactly the keys whose latest record is a value.

use std::collections::BTreeMap;
use std::sync::RwLock;

use ironlog_storage::batch::testing::{build_records_batch, numbered};
use ironlog_storage::batch::{self, Compression};
use ironlog_storage::cleaner::{Cleaner, CleanerConfig, PassOutcome};
use ironlog_storage::{CleanupPolicy, Log, LogConfig, RecordDecoder};
use proptest::prelude::*;

const DELETE_RETENTION_MS: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// One batch: (key, value or tombstone) per record.
    Append(Compression, Vec<(u8, Option<u16>)>),
    Roll,
    Clean,
    /// Close (without a clean shutdown) and open with full recovery.
    Reopen,
}

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..12, prop::option::weighted(0.85, any::<u16>()));
    prop_oneof![
        6 => (codec(), prop::collection::vec(record, 1..8)).prop_map(|(c, r)| Op::Append(c, r)),
        2 => Just(Op::Roll),
        2 => Just(Op::Clean),
        1 => Just(Op::Reopen),
    ]
}

type Rec = (String, Option<String>);

/// Every record ever appended, by offset.
#[derive(Default)]
struct Model {
    records: BTreeMap<i64, Rec>,
}

impl Model {
    fn latest(&self) -> BTreeMap<&str, (i64, &Option<String>)> {
        let mut latest = BTreeMap::new();
        for (o, (k, v)) in &self.records {
            latest.insert(k.as_str(), (*o, v));
        }
        latest
    }
}

fn key(k: u8) -> String {
    format!("key-{k}")
}

/// The values are long enough that codecs have something to compress, and distinct per
/// offset so that a record moved to the wrong offset cannot pass.
fn value(v: u16, offset: i64) -> String {
    format!("{v:05}-{offset}-{}", "x".repeat((v % 40) as usize))
}

fn append(log: &RwLock<Log>, model: &mut Model, codec: Compression, recs: &[(u8, Option<u16>)]) {
    let base = log.read().unwrap().log_end_offset();
    let specs = numbered(recs.iter().enumerate().map(|(i, (k, v))| {
        let header = (b"i".to_vec(), Some(i.to_string().into_bytes()));
        (
            Some(key(*k).into_bytes()),
            v.map(|v| value(v, base + i as i64).into_bytes()),
            vec![header],
        )
    }));
    let mut b = build_records_batch(0, 1000, codec, &specs);
    let info = log.write().unwrap().append(&mut b, 1000).unwrap();
    assert_eq!(info.first_offset, base);
    for (i, (k, v)) in recs.iter().enumerate() {
        let o = base + i as i64;
        model.records.insert(o, (key(*k), v.map(|v| value(v, o))));
    }
}

/// (offset, record) of everything readable, decoding every codec; also checks each batch's
/// CRC and that record offsets lie within their batch.
fn read_all(log: &Log) -> Vec<(i64, Rec)> {
    let mut out = Vec::new();
    let mut decoder = RecordDecoder::new(1 << 24);
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, u64::MAX, true).unwrap().data;
        if data.is_empty() {
            break;
        }
        for info in batch::parse_batches(&data).unwrap() {
            let b = &data[info.range()];
            batch::validate_batch(b, 0).unwrap();
            for r in decoder.records(b, 0).unwrap() {
                let r = r.unwrap();
                assert!(r.offset >= info.base_offset && r.offset <= info.last_offset());
                if r.offset >= offset {
                    let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let v = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                    out.push((r.offset, (k, v)));
                }
            }
            offset = offset.max(info.last_offset() + 1);
        }
    }
    out
}

fn active_base(log: &Log) -> i64 {
    *log.segment_base_offsets().last().unwrap()
}

fn check_after_pass(log: &Log, model: &Model, active: i64) -> Result<(), TestCaseError> {
    let got = read_all(log);
    prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "order kept");
    for (o, r) in &got {
        prop_assert_eq!(
            Some(r),
            model.records.get(o),
            "offset {} moved or changed",
            o
        );
    }
    let present: std::collections::BTreeSet<i64> = got.iter().map(|(o, _)| *o).collect();
    for (k, (o, _)) in model.latest() {
        prop_assert!(
            present.contains(&o),
            "latest record of {} (offset {}) lost",
            k,
            o
        );
    }
    for o in model.records.range(active..).map(|(o, _)| o) {
        prop_assert!(present.contains(o), "active-segment record {} removed", o);
    }
    prop_assert_eq!(
        log.log_end_offset(),
        model.records.len() as i64,
        "offsets never change"
    );
    Ok(())
}

fn pass(cleaner: &mut Cleaner, log: &RwLock<Log>, now: i64) -> PassOutcome {
    cleaner.clean_now(log, now).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn compaction_matches_the_latest_value_per_key(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: DELETE_RETENTION_MS,
            // Small segments, so passes merge and split groups.
            segment_bytes: 700,
            ..LogConfig::default()
        };
        let mut log = RwLock::new(Log::open(dir.path(), config.clone(), 0, 0).unwrap());
        let mut model = Model::default();
        let mut cleaner = Cleaner::new(CleanerConfig::default());
        for op in ops {
            match op {
                Op::Append(codec, recs) => append(&log, &mut model, codec, &recs),
                Op::Roll => log.write().unwrap().roll(0).unwrap(),
                Op::Clean => {
                    pass(&mut cleaner, &log, 2000);
                    let l = log.read().unwrap();
                    check_after_pass(&l, &model, active_base(&l))?;
                }
                Op::Reopen => {
                    drop(log);
                    log = RwLock::new(Log::open(dir.path(), config.clone(), 0, 0).unwrap());
                    let l = log.read().unwrap();
                    prop_assert!(l.recovery_report().repairs.is_empty(), "{:?}", l.recovery_report());
                    check_after_pass(&l, &model, active_base(&l))?;
                }
            }
        }
        // Everything into inactive segments (a sentinel key in the new active segment).
        log.write().unwrap().roll(0).unwrap();
        append(&log, &mut model, Compression::None, &[(200, Some(1))]);
        pass(&mut cleaner, &log, 2000);
        let want: Vec<(i64, Rec)> = model
            .latest()
            .into_iter()
            .map(|(k, (o, v))| (o, (k.to_string(), v.clone())))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        prop_assert_eq!(read_all(&log.read().unwrap()), want.clone());

        // A reopened log (full recovery) reads the same.
        let log = RwLock::new({
            let l = log.into_inner().unwrap();
            drop(l);
            Log::open(dir.path(), config, 0, 0).unwrap()
        });
        prop_assert_eq!(read_all(&log.read().unwrap()), want.clone());

        // Past the delete horizon, tombstones go, and with them their keys.
        pass(&mut cleaner, &log, 2000 + DELETE_RETENTION_MS);
        let values: Vec<(i64, Rec)> = want.into_iter().filter(|(_, (_, v))| v.is_some()).collect();
        prop_assert_eq!(read_all(&log.read().unwrap()), values);
    }
}
