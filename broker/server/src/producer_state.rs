//! Idempotent producer state per partition: the pure part of KIP-98's duplicate detection.
//!
//! For each producer id the partition remembers the epoch and its last five appended
//! batches (first/last sequence → first/last offset), as Kafka does. An append is:
//! - a **duplicate** if its sequence range equals a remembered batch: answered with the
//!   original offsets, not appended again (a retried produce whose first try succeeded);
//! - **in order** if its first sequence follows the last one (or the producer is new to
//!   this partition, or bumped its epoch and starts at 0);
//! - otherwise **out of order** (OUT_OF_ORDER_SEQUENCE_NUMBER) or from a **fenced** epoch
//!   (INVALID_PRODUCER_EPOCH).
//!
//! The state lives in memory. It travels with the log: followers record the batches they
//! replicate, so a new leader recognises a retry sent to it after a failover. It is
//! snapshotted to `producer-state.snapshot` in the partition directory (JSON: the log end
//! offset it was taken at and every producer's epoch and remembered batches) and rebuilt at
//! start-up or after a truncation from the latest snapshot at or below the log end plus the
//! batch headers after it (see `partition::recover_producer_state`).

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer (Kafka's max.in.flight limit for idempotence).
const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it, then call [`PartitionProducers::record`].
    Append,
    /// Already appended at these offsets; don't append again.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
    },
    OutOfOrder {
        expected: i32,
        got: i32,
    },
    FencedEpoch {
        current: i16,
        got: i16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    first_sequence: i32,
    last_sequence: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Producer {
    epoch: i16,
    batches: VecDeque<Entry>,
}

/// The producers that appended to one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionProducers {
    producers: HashMap<i64, Producer>,
}

impl PartitionProducers {
    pub fn check(&self, batch: &ProducerBatch) -> Check {
        let Some(p) = self.producers.get(&batch.producer_id) else {
            return Check::Append;
        };
        if batch.epoch < p.epoch {
            return Check::FencedEpoch {
                current: p.epoch,
                got: batch.epoch,
            };
        }
        if batch.epoch > p.epoch {
            return if batch.first_sequence == 0 {
                Check::Append
            } else {
                Check::OutOfOrder {
                    expected: 0,
                    got: batch.first_sequence,
                }
            };
        }
        if let Some(e) = p.batches.iter().find(|e| {
            e.first_sequence == batch.first_sequence && e.last_sequence == batch.last_sequence
        }) {
            return Check::Duplicate {
                first_offset: e.first_offset,
                last_offset: e.last_offset,
            };
        }
        let expected = p
            .batches
            .back()
            .map_or(0, |e| next_sequence(e.last_sequence));
        if p.batches.is_empty() || batch.first_sequence == expected {
            Check::Append
        } else {
            Check::OutOfOrder {
                expected,
                got: batch.first_sequence,
            }
        }
    }

    /// Forgets producers whose last remembered batch is below `log_start_offset`: their
    /// records are gone (retention, DeleteRecords), as Kafka expires them.
    pub fn expire_below(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, p| {
            p.batches
                .back()
                .is_some_and(|e| e.last_offset >= log_start_offset)
        });
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Remembers an appended batch.
    pub fn record(&mut self, batch: &ProducerBatch, first_offset: i64, last_offset: i64) {
        let p = self.producers.entry(batch.producer_id).or_default();
        if batch.epoch != p.epoch {
            p.epoch = batch.epoch;
            p.batches.clear();
        }
        if p.batches.len() == REMEMBERED_BATCHES {
            p.batches.pop_front();
        }
        p.batches.push_back(Entry {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            first_offset,
            last_offset,
        });
    }
}

/// Sequences wrap from i32::MAX to 0.
fn next_sequence(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(first: i32, last: i32, epoch: i16) -> ProducerBatch {
        ProducerBatch {
            producer_id: 7,
            epoch,
            first_sequence: first,
            last_sequence: last,
        }
    }

    #[test]
    fn in_order_duplicate_gap_and_fencing() {
        let mut s = PartitionProducers::default();
        assert_eq!(s.check(&b(0, 4, 0)), Check::Append);
        s.record(&b(0, 4, 0), 100, 104);
        assert_eq!(s.check(&b(5, 9, 0)), Check::Append);
        s.record(&b(5, 9, 0), 105, 109);
        // The retry of the first batch is answered with its original offsets.
        assert_eq!(
            s.check(&b(0, 4, 0)),
            Check::Duplicate {
                first_offset: 100,
                last_offset: 104
            }
        );
        assert_eq!(
            s.check(&b(12, 13, 0)),
            Check::OutOfOrder {
                expected: 10,
                got: 12
            }
        );
        // A new epoch starts over at 0; the old epoch is fenced from then on.
        assert_eq!(s.check(&b(0, 0, 1)), Check::Append);
        s.record(&b(0, 0, 1), 110, 110);
        assert_eq!(
            s.check(&b(10, 10, 0)),
            Check::FencedEpoch { current: 1, got: 0 }
        );
        assert_eq!(
            s.check(&b(3, 3, 2)),
            Check::OutOfOrder {
                expected: 0,
                got: 3
            }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = PartitionProducers::default();
        for i in 0..6 {
            s.record(&b(i, i, 0), i64::from(i), i64::from(i));
        }
        assert_eq!(
            s.check(&b(1, 1, 0)),
            Check::Duplicate {
                first_offset: 1,
                last_offset: 1
            }
        );
        assert!(matches!(s.check(&b(0, 0, 0)), Check::OutOfOrder { .. }));
        assert_eq!(next_sequence(i32::MAX), 0);
    }
}
