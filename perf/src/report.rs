//! The figures a run ends with, printed for people and as one JSON line for scripts.

use serde::Serialize;

use crate::histogram::Histogram;

/// Megabyte as used for every MB/s figure here: 10^6 bytes (fio's and iperf3's unit), so
/// ratios to those limits need no conversion.
pub const MB: f64 = 1_000_000.0;

/// The final summary. Field names are the `--json` contract used by `bench/run.sh`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "produce" or "consume".
    pub kind: &'static str,
    pub records: u64,
    /// Payload bytes (record value sizes), as kafka-producer-perf-test counts them.
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Records that failed (delivery errors); 0 for a good run.
    pub errors: u64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Summary {
    pub fn new(
        kind: &'static str,
        records: u64,
        bytes: u64,
        elapsed_s: f64,
        latency_us: &Histogram,
        errors: u64,
    ) -> Self {
        let per_sec = |n: f64| if elapsed_s > 0.0 { n / elapsed_s } else { 0.0 };
        Summary {
            kind,
            records,
            bytes,
            elapsed_s,
            records_per_sec: per_sec(records as f64),
            mb_per_sec: per_sec(bytes as f64) / MB,
            avg_ms: latency_us.mean() / 1000.0,
            p50_ms: ms(latency_us.percentile(50.0)),
            p95_ms: ms(latency_us.percentile(95.0)),
            p99_ms: ms(latency_us.percentile(99.0)),
            p999_ms: ms(latency_us.percentile(99.9)),
            max_ms: ms(latency_us.max()),
            errors,
        }
    }

    /// The human-readable lines (kafka-producer-perf-test's shape).
    pub fn text(&self) -> String {
        format!(
            "{} records {}, {:.1} records/sec ({:.2} MB/sec) in {:.2} s, {:.2} ms avg latency, \
             {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th{}",
            self.records,
            if self.kind == "produce" {
                "sent"
            } else {
                "consumed"
            },
            self.records_per_sec,
            self.mb_per_sec,
            self.elapsed_s,
            self.avg_ms,
            self.max_ms,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.p999_ms,
            if self.errors > 0 {
                format!(", {} errors", self.errors)
            } else {
                String::new()
            }
        )
    }

    /// One line of JSON.
    pub fn json(&self) -> String {
        // Serialising a struct of numbers and a static str cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Prints the summary line, then (with `json`) the JSON line last.
    pub fn print(&self, json: bool) {
        println!("{}", self.text());
        if json {
            println!("{}", self.json());
        }
    }
}

/// Progress over one reporting window, printed to stderr while a run goes on.
pub fn progress_line(
    kind: &str,
    window_records: u64,
    window_bytes: u64,
    window_s: f64,
    window: &Histogram,
    total: u64,
) -> String {
    let rate = if window_s > 0.0 {
        window_records as f64 / window_s
    } else {
        0.0
    };
    let mbps = if window_s > 0.0 {
        window_bytes as f64 / window_s / MB
    } else {
        0.0
    };
    format!(
        "{window_records} records {kind}, {rate:.1} records/sec ({mbps:.2} MB/sec), \
         {:.1} ms avg latency, {:.1} ms max latency ({total} total)",
        window.mean() / 1000.0,
        ms(window.max())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_rates_and_json_fields() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 2); // 2 µs .. 2 ms, all in the exact range
        }
        let s = Summary::new("produce", 1000, 100_000, 0.5, &h, 0);
        assert_eq!(s.records_per_sec, 2000.0);
        assert_eq!(s.mb_per_sec, 0.2);
        assert_eq!(s.p50_ms, 1.0);
        assert_eq!(s.p99_ms, 1.98);
        assert_eq!(s.max_ms, 2.0);
        assert_eq!(s.avg_ms, 1.001);
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        for field in [
            "records_per_sec",
            "mb_per_sec",
            "avg_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "records",
            "bytes",
        ] {
            assert!(v.get(field).is_some_and(|f| f.is_number()), "{field}");
        }
        assert_eq!(v["records"], 1000);
        assert!(s
            .text()
            .starts_with("1000 records sent, 2000.0 records/sec (0.20 MB/sec)"));
    }

    #[test]
    fn zero_elapsed_does_not_divide_by_zero() {
        let s = Summary::new("consume", 0, 0, 0.0, &Histogram::new(), 0);
        assert_eq!(s.records_per_sec, 0.0);
        assert!(s.json().contains("\"records_per_sec\":0.0"));
    }
}
