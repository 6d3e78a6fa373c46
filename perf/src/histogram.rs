//! A fixed-size latency histogram in microseconds with bounded relative error.
//!
//! Layout, as HdrHistogram's with 1024 sub-buckets: values below 2048 µs each have their
//! own bucket (exact); above that, every power-of-two range `[2^k, 2^(k+1))` is split into
//! 1024 equal buckets, so a reported value is at most 1/1024 (about 0.1%) above the true
//! one. Values are clamped to [`MAX_VALUE_US`] (about 12.7 days). Count, sum, min and max
//! are kept exactly. Memory is fixed (about 250 KiB) whatever the number of samples, so a
//! producer can record every delivery of a 100-million-record run.

const SUB_BITS: u32 = 10;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have one bucket each.
const LINEAR: u64 = 2 * SUB;
/// Largest recordable value; larger ones are clamped to it.
pub const MAX_VALUE_US: u64 = (1 << 40) - 1;
const MAX_SHIFT: u32 = 40 - 1 - SUB_BITS;
const BUCKETS: usize = (LINEAR + MAX_SHIFT as u64 * SUB) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

fn bucket_of(value: u64) -> usize {
    let v = value.min(MAX_VALUE_US);
    if v < LINEAR {
        return v as usize;
    }
    // v >= 2048, so the highest set bit is at least 11 and shift >= 1.
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    let sub = (v >> shift) - SUB; // in [0, SUB)
    (LINEAR + u64::from(shift - 1) * SUB + sub) as usize
}

/// The largest value that falls in bucket `index`.
fn bucket_high(index: usize) -> u64 {
    let i = index as u64;
    if i < LINEAR {
        return i;
    }
    let k = i - LINEAR;
    let shift = (k / SUB) as u32 + 1;
    let sub = k % SUB + SUB;
    ((sub + 1) << shift) - 1
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, value_us: u64) {
        let v = value_us.min(MAX_VALUE_US);
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Exact mean; 0.0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// Nearest-rank percentile (`q` in 0..=100): the smallest recorded value such that at
    /// least `q`% of the samples are at or below it, to the bucket's precision and never
    /// above the true maximum. 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 100.0);
        // The small epsilon keeps float noise (99.9 × 1000 / 100 = 999.0000000000001) from
        // pushing the rank one sample too far.
        let exact = q * self.count as f64 / 100.0;
        let rank = (exact - exact * 1e-12).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = Histogram::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.percentile(50.0), 0);
        assert_eq!(h.percentile(99.9), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn small_values_are_exact_nearest_rank() {
        let mut h = Histogram::new();
        // Insert out of order: the histogram must not depend on order.
        for v in (1..=100u64).rev() {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!(h.percentile(1.0), 1);
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(95.0), 95);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(99.9), 100);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.mean(), 50.5);
        assert_eq!((h.min(), h.max()), (1, 100));
    }

    #[test]
    fn one_outlier_shows_only_in_the_tail() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(10);
        }
        h.record(5_000_000);
        assert_eq!(h.percentile(99.0), 10);
        assert_eq!(h.percentile(99.9), 10);
        assert_eq!(h.percentile(99.95), 5_000_000);
        assert_eq!(h.max(), 5_000_000);
    }

    #[test]
    fn large_values_within_relative_error() {
        for v in [
            2048u64,
            2049,
            4095,
            4096,
            123_456,
            9_999_999,
            1 << 35,
            MAX_VALUE_US,
        ] {
            let mut h = Histogram::new();
            h.record(v);
            h.record(0); // so the clamp to max doesn't hide the bucket's own bound
            let p = h.percentile(100.0);
            assert_eq!(p, v, "the max clamps the top bucket");
            let high = bucket_high(bucket_of(v));
            assert!(high >= v, "bucket of {v} ends at {high}, below the value");
            assert!(
                (high - v) as f64 <= v as f64 / 1024.0,
                "bucket of {v} ends at {high}: more than 1/1024 above"
            );
        }
    }

    #[test]
    fn buckets_are_contiguous_and_increasing() {
        let mut prev = bucket_high(0);
        for i in 1..BUCKETS {
            let high = bucket_high(i);
            assert!(high > prev, "bucket {i}");
            // The value just above the previous bucket lands in this one.
            assert_eq!(bucket_of(prev + 1), i);
            assert_eq!(bucket_of(high), i);
            prev = high;
        }
        assert_eq!(prev, MAX_VALUE_US);
    }

    #[test]
    fn values_above_the_range_are_clamped() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(h.max(), MAX_VALUE_US);
        assert_eq!(h.percentile(50.0), MAX_VALUE_US);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut all = Histogram::new();
        for v in 0..10_000u64 {
            let v = v * v % 1_000_003;
            if v % 3 == 0 {
                a.record(v);
            } else {
                b.record(v);
            }
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!(a.mean(), all.mean());
        assert_eq!((a.min(), a.max()), (all.min(), all.max()));
        for q in [1.0, 50.0, 95.0, 99.0, 99.9, 100.0] {
            assert_eq!(a.percentile(q), all.percentile(q), "p{q}");
        }
    }
}
