//! Property test: random operations on a real `Log` (tiny segments) against an
//! in-memory model of batches, checked after every step.

mod common;

use ironlog_storage::batch::testing::{build_batch, decode_records, KeyValue};
use ironlog_storage::{Log, LogConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Batches with these record counts, in one append call.
    Append(Vec<usize>),
    /// Read at `lso + frac * (leo - lso)`, with a max_bytes.
    Read(f64, u64),
    TruncateTo(f64),
    Roll,
    Reopen {
        clean: bool,
    },
    DeleteRecordsBefore(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec(1usize..5, 1..3).prop_map(Op::Append),
        3 => (0.0..=1.0f64, 1u64..400).prop_map(|(f, m)| Op::Read(f, m)),
        1 => (0.0..=1.0f64).prop_map(Op::TruncateTo),
        1 => Just(Op::Roll),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0.0..=1.0f64).prop_map(Op::DeleteRecordsBefore),
    ]
}

/// The model: every batch ever appended and still logically present, plus the start offset.
#[derive(Default)]
struct Model {
    batches: Vec<(i64, Vec<Vec<u8>>)>, // (base offset, values)
    log_start: i64,
    log_end: i64,
}

impl Model {
    fn batch_containing(&self, offset: i64) -> Option<&(i64, Vec<Vec<u8>>)> {
        self.batches
            .iter()
            .find(|(b, v)| *b <= offset && offset < b + v.len() as i64)
    }
}

fn pick(lo: i64, hi: i64, f: f64) -> i64 {
    lo + ((hi - lo) as f64 * f).round() as i64
}

fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_start_offset(), model.log_start);
    prop_assert_eq!(log.log_end_offset(), model.log_end);
    // Read everything from the start and compare record by record.
    let mut next = model.log_start;
    let mut got = Vec::new();
    while next < model.log_end {
        let r = log
            .read(next, 300, true)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let recs = decode_records(&r.data);
        prop_assert!(!recs.is_empty());
        next = recs.last().map(|r| r.offset + 1).unwrap_or(next);
        got.extend(recs.into_iter().filter(|r| r.offset >= model.log_start));
    }
    let expected: Vec<(i64, Vec<u8>)> = model
        .batches
        .iter()
        .flat_map(|(b, vs)| {
            vs.iter()
                .enumerate()
                .map(move |(i, v)| (b + i as i64, v.clone()))
        })
        .filter(|(o, _)| *o >= model.log_start)
        .collect();
    let got: Vec<(i64, Vec<u8>)> = got
        .into_iter()
        .map(|r| (r.offset, r.value.unwrap_or_default()))
        .collect();
    prop_assert_eq!(got, expected);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 90,
        retention_ms: None,
        ..LogConfig::default()
    };
    let mut log = Some(Log::open(tmp.path(), cfg.clone(), 0, 0).unwrap());
    let mut model = Model::default();
    let mut counter = 0u64;
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append(counts) => {
                let mut buf = Vec::new();
                let mut planned = Vec::new();
                for n in counts {
                    let values: Vec<Vec<u8>> = (0..n)
                        .map(|_| {
                            counter += 1;
                            format!("value-{counter}").into_bytes()
                        })
                        .collect();
                    let recs: Vec<KeyValue<'_>> =
                        values.iter().map(|v| (None, Some(v.as_slice()))).collect();
                    buf.extend(build_batch(0, 1000, &recs));
                    planned.push(values);
                }
                let info = l.append(&mut buf, 1000).unwrap();
                prop_assert_eq!(info.first_offset, model.log_end);
                for values in planned {
                    let n = values.len() as i64;
                    model.batches.push((model.log_end, values));
                    model.log_end += n;
                }
                prop_assert_eq!(info.last_offset, model.log_end - 1);
            }
            Op::Read(f, max_bytes) => {
                let offset = pick(model.log_start, model.log_end, f);
                let r = l.read(offset, max_bytes, true).unwrap();
                if offset == model.log_end {
                    prop_assert!(r.data.is_empty());
                } else {
                    let (base, values) = model.batch_containing(offset).unwrap();
                    let recs = decode_records(&r.data);
                    prop_assert_eq!(r.first_batch_offset, Some(*base));
                    prop_assert_eq!(recs[0].offset, *base);
                    prop_assert_eq!(recs[0].value.as_ref(), Some(&values[0]));
                }
                let below = l.read(model.log_start - 1, max_bytes, true);
                prop_assert!(below.is_err());
                prop_assert!(l.read(model.log_end + 1, max_bytes, true).is_err());
            }
            Op::TruncateTo(f) => {
                let first_base = l.segment_base_offsets()[0];
                let target =
                    pick(model.log_start.min(first_base).max(0) - 1, model.log_end, f).max(0);
                let new_end = l.truncate_to(target).unwrap();
                if target < model.log_end {
                    if target < model.log_start || target <= first_base {
                        model.batches.clear();
                        model.log_end = target;
                        model.log_start = target;
                    } else {
                        model
                            .batches
                            .retain(|(b, v)| b + (v.len() as i64) - 1 < target);
                        model.log_end = model
                            .batches
                            .last()
                            .map_or(first_base, |(b, v)| b + v.len() as i64);
                        model.log_start = model.log_start.min(model.log_end);
                    }
                }
                prop_assert_eq!(new_end, model.log_end);
            }
            Op::Roll => l.roll(0).unwrap(),
            Op::Reopen { clean } => {
                let old = log.take().unwrap();
                let rp = old.recovery_point();
                old.close().unwrap();
                let reopened = if clean {
                    Log::open_clean(tmp.path(), cfg.clone(), 0).unwrap()
                } else {
                    Log::open(tmp.path(), cfg.clone(), rp, 0).unwrap()
                };
                prop_assert!(
                    reopened.recovery_report().repairs.is_empty(),
                    "{:?}",
                    reopened.recovery_report()
                );
                log = Some(reopened);
            }
            Op::DeleteRecordsBefore(f) => {
                let target = pick(model.log_start, model.log_end, f);
                l.delete_records_before(target).unwrap();
                model.log_start = model.log_start.max(target);
            }
        }
        check(log.as_ref().unwrap(), &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
