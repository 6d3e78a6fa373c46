//! Did the consumers read every acknowledged record, once, in order?
//!
//! Each producer numbers its records 0, 1, 2, ... Kafka keeps order per partition, so for
//! every (producer, partition) the sequences a consumer reads must rise; and across all
//! partitions every sequence a producer sent must be read exactly once. A [`Verifier`] per
//! consumer thread records what it read (a bitmap per producer, the last sequence per
//! producer and partition); [`Verifier::merge`] joins them and [`Verifier::report`]
//! compares with what the producers sent.

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Default, Clone)]
pub struct Verifier {
    last: HashMap<(u32, i32), u64>,
    seen: HashMap<u32, Vec<u64>>,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
    first_problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records the producers sent (and librdkafka acknowledged).
    pub expected: u64,
    /// Distinct records read.
    pub read: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Records read that no producer of this run sent.
    pub unexpected: u64,
    pub first_problem: Option<String>,
    pub ok: bool,
}

impl Verifier {
    /// Records one read record.
    pub fn observe(&mut self, producer: u32, partition: i32, seq: u64) {
        let bits = self.seen.entry(producer).or_default();
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let duplicate = bits[word] & bit != 0;
        bits[word] |= bit;
        let last = self.last.insert((producer, partition), seq);
        if duplicate {
            self.duplicates += 1;
            self.first_problem.get_or_insert_with(|| {
                format!("producer {producer} record {seq} read twice (partition {partition})")
            });
        } else if let Some(last) = last.filter(|&last| seq < last) {
            self.out_of_order += 1;
            self.first_problem.get_or_insert_with(|| {
                format!("partition {partition}: producer {producer} record {seq} after {last}")
            });
        }
    }

    /// Records a value that carries no header of this run (too short, or another run id).
    pub fn observe_foreign(&mut self) {
        self.foreign += 1;
        self.first_problem
            .get_or_insert_with(|| "a record without this run's header was read".into());
    }

    /// Joins another consumer's records into this one. Sequences both read are duplicates.
    pub fn merge(&mut self, other: Verifier) {
        for (producer, bits) in other.seen {
            let mine = self.seen.entry(producer).or_default();
            if mine.len() < bits.len() {
                mine.resize(bits.len(), 0);
            }
            for (i, word) in bits.into_iter().enumerate() {
                let both = mine[i] & word;
                if both != 0 {
                    self.duplicates += u64::from(both.count_ones());
                    let seq = i as u64 * 64 + u64::from(both.trailing_zeros());
                    self.first_problem.get_or_insert_with(|| {
                        format!("producer {producer} record {seq} read by two consumers")
                    });
                }
                mine[i] |= word;
            }
        }
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.foreign += other.foreign;
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
        self.last.extend(other.last);
    }

    /// Compares with what was sent: `sent[p]` records by producer `p`, numbered from 0.
    pub fn report(&self, sent: &[u64]) -> VerifyReport {
        let mut read = 0;
        let mut missing = 0;
        let mut unexpected = self.foreign;
        let mut first_problem = self.first_problem.clone();
        for (producer, &count) in sent.iter().enumerate() {
            let bits = self
                .seen
                .get(&(producer as u32))
                .map_or(&[][..], |b| &b[..]);
            let full_words = (count / 64) as usize;
            let mut got = 0u64;
            for (i, &word) in bits.iter().enumerate() {
                let in_range = match i.cmp(&full_words) {
                    std::cmp::Ordering::Less => word,
                    std::cmp::Ordering::Equal => word & ((1u64 << (count % 64)) - 1),
                    std::cmp::Ordering::Greater => 0,
                };
                got += u64::from(in_range.count_ones());
                unexpected += u64::from((word & !in_range).count_ones());
            }
            read += got;
            if got < count {
                missing += count - got;
                if first_problem.is_none() {
                    let first = (0..count)
                        .find(|&s| {
                            bits.get((s / 64) as usize)
                                .is_none_or(|w| w & (1 << (s % 64)) == 0)
                        })
                        .unwrap_or(0);
                    first_problem = Some(format!(
                        "producer {producer}: {} of {count} records never read (first: {first})",
                        count - got
                    ));
                }
            }
        }
        for (&producer, bits) in &self.seen {
            if producer as usize >= sent.len() {
                unexpected += bits.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
            }
        }
        if unexpected > 0 && first_problem.is_none() {
            first_problem = Some(format!("{unexpected} records read that were never sent"));
        }
        let expected = sent.iter().sum();
        VerifyReport {
            expected,
            read,
            missing,
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            unexpected,
            ok: missing == 0 && self.duplicates == 0 && self.out_of_order == 0 && unexpected == 0,
            first_problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_read_in_order_across_partitions_is_ok() {
        let mut v = Verifier::default();
        // Producer 0 spread over two partitions (each rising), producer 1 on one.
        for seq in 0..100 {
            v.observe(0, (seq % 2) as i32, seq);
        }
        for seq in 0..70 {
            v.observe(1, 5, seq);
        }
        let r = v.report(&[100, 70]);
        assert_eq!((r.expected, r.read, r.missing), (170, 170, 0));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.first_problem, None);
    }

    #[test]
    fn a_gap_is_missing() {
        let mut v = Verifier::default();
        for seq in (0..130).filter(|&s| s != 64 && s != 129) {
            v.observe(0, 0, seq);
        }
        let r = v.report(&[130]);
        assert_eq!((r.read, r.missing), (128, 2));
        assert!(!r.ok);
        assert_eq!(
            r.first_problem.as_deref(),
            Some("producer 0: 2 of 130 records never read (first: 64)")
        );
    }

    #[test]
    fn a_lower_sequence_on_the_same_partition_is_out_of_order() {
        let mut v = Verifier::default();
        for seq in [0, 1, 3, 2, 4] {
            v.observe(0, 0, seq);
        }
        // The same sequence numbers on different partitions are not an ordering problem.
        let r = v.report(&[5]);
        assert_eq!((r.out_of_order, r.missing, r.duplicates), (1, 0, 0));
        assert_eq!(
            r.first_problem.as_deref(),
            Some("partition 0: producer 0 record 2 after 3")
        );
        assert!(!r.ok);
    }

    #[test]
    fn reading_twice_is_a_duplicate_in_one_consumer_or_across_two() {
        let mut a = Verifier::default();
        a.observe(0, 0, 0);
        a.observe(0, 0, 1);
        a.observe(0, 0, 1);
        let mut b = Verifier::default();
        b.observe(0, 1, 0);
        b.observe(0, 1, 2);
        a.merge(b);
        let r = a.report(&[3]);
        assert_eq!(
            (r.read, r.duplicates, r.missing, r.out_of_order),
            (3, 2, 0, 0)
        );
        assert!(!r.ok);
    }

    #[test]
    fn records_beyond_what_was_sent_are_unexpected() {
        let mut v = Verifier::default();
        for seq in 0..3 {
            v.observe(0, 0, seq);
        }
        v.observe(7, 0, 0);
        let r = v.report(&[2]);
        assert_eq!((r.read, r.unexpected), (2, 2));
        assert!(!r.ok);
    }

    #[test]
    fn merged_consumers_cover_what_each_read() {
        let mut a = Verifier::default();
        let mut b = Verifier::default();
        for seq in 0..1000u64 {
            if seq % 3 == 0 {
                a.observe(0, 0, seq);
            } else {
                b.observe(0, 1, seq);
            }
        }
        a.merge(b);
        let r = a.report(&[1000]);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.read, 1000);
    }
}
