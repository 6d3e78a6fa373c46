//! Client quotas, as Kafka enforces them, per user and client id (the quotas themselves, and
//! which entity's applies, are in the metadata:
//! [`ironlog_metadata::MetadataImage::client_quota`]):
//! - `producer_byte_rate` on produced record bytes, `consumer_byte_rate` on fetched record
//!   bytes (bytes per second);
//! - `request_percentage` on the time the client's requests keep a broker thread busy, in
//!   percent of one thread (100 = one thread's whole time). Like Kafka, which counts I/O
//!   thread time and not time in purgatory, only the time spent working on a request counts,
//!   not its waits (a long-polling fetch, acks=all, a group join): see
//!   [`crate::handler::dispatch`].
//!
//! Each (user, client id, quota type) has a rate over a sliding window of
//! [`SAMPLES`] × [`SAMPLE`] (Kafka's quota.window.num × quota.window.size.seconds). A
//! request that takes the rate over the quota is answered at once, with
//! `throttle_time_ms = (rate - quota) / quota × window` (Kafka's formula), and its
//! connection is muted for that long: no further request of that connection is read or
//! handled (KIP-219). The rate is measured over at least one sample: a new client may send
//! one second's worth at once. (Kafka measures a new client as if ten samples had passed,
//! which lets it burst ten seconds' worth, and then lets the burst's expiry eleven seconds
//! later open a second one; over a steady minute that kept a greedy producer 25-35% off its
//! quota in both directions, while this holds it within a few percent.)
//!
//! Pure: callers pass the clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one sample covers.
pub const SAMPLE: Duration = Duration::from_secs(1);
/// How many samples make the window.
pub const SAMPLES: u32 = 11;
/// The longest throttle (Kafka caps it at the window's length).
const MAX_THROTTLE: Duration = Duration::from_secs(SAMPLES as u64);

/// Which quota a request counts against (Kafka's QuotaType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// Produced record bytes.
    Produce,
    /// Fetched record bytes.
    Fetch,
    /// Request handling time, counted in percent-seconds (see [`QuotaType::amount_of`]).
    Request,
}

impl QuotaType {
    /// The quota key in the metadata.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => ironlog_metadata::quota::PRODUCER_BYTE_RATE,
            QuotaType::Fetch => ironlog_metadata::quota::CONSUMER_BYTE_RATE,
            QuotaType::Request => ironlog_metadata::quota::REQUEST_PERCENTAGE,
        }
    }

    /// What `busy` thread time counts against a request quota: its rate per second is then
    /// the percentage of one thread.
    pub fn amount_of(busy: Duration) -> f64 {
        busy.as_secs_f64() * 100.0
    }
}

/// A rate over a window of samples.
#[derive(Debug, Default)]
struct Rate {
    /// (sample start, bytes), oldest first.
    samples: Vec<(Instant, f64)>,
}

impl Rate {
    fn record(&mut self, amount: f64, now: Instant) {
        match self.samples.last_mut() {
            Some((start, total)) if now.duration_since(*start) < SAMPLE => *total += amount,
            _ => self.samples.push((now, amount)),
        }
        let window = SAMPLE * SAMPLES;
        self.samples
            .retain(|(start, _)| now.duration_since(*start) < window);
    }

    /// Bytes per second over the window.
    fn per_second(&self, now: Instant) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, b)| b).sum();
        total / self.window(now).as_secs_f64()
    }

    /// How long the samples cover: from the oldest one's start, at least one sample.
    fn window(&self, now: Instant) -> Duration {
        self.samples
            .first()
            .map_or(Duration::ZERO, |(oldest, _)| now.duration_since(*oldest))
            .max(SAMPLE)
    }
}

/// The rates of every client with a quota.
#[derive(Default)]
pub struct Quotas {
    rates: Mutex<HashMap<(String, String, QuotaType), Rate>>,
}

impl Quotas {
    /// Counts `amount` (bytes, or [`QuotaType::amount_of`] for requests) for the client and
    /// returns how long it must be throttled (zero when within `quota`, per second; no
    /// quota: nothing is tracked).
    pub fn record(
        &self,
        user: &str,
        client_id: &str,
        kind: QuotaType,
        amount: f64,
        quota: Option<f64>,
        now: Instant,
    ) -> Duration {
        let Some(quota) = quota.filter(|q| *q > 0.0) else {
            return Duration::ZERO;
        };
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let rate = rates
            .entry((user.to_string(), client_id.to_string(), kind))
            .or_default();
        rate.record(amount, now);
        throttle_for(rate, quota, now)
    }

    /// How long the client must be throttled for what it used so far (nothing recorded).
    pub fn throttle(
        &self,
        user: &str,
        client_id: &str,
        kind: QuotaType,
        quota: Option<f64>,
        now: Instant,
    ) -> Duration {
        let Some(quota) = quota.filter(|q| *q > 0.0) else {
            return Duration::ZERO;
        };
        let rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates
            .get(&(user.to_string(), client_id.to_string(), kind))
            .map_or(Duration::ZERO, |rate| throttle_for(rate, quota, now))
    }
}

/// Kafka's throttle time: how long until the rate over the window is back at the quota.
fn throttle_for(rate: &Rate, quota: f64, now: Instant) -> Duration {
    let observed = rate.per_second(now);
    if observed <= quota {
        return Duration::ZERO;
    }
    let throttle = rate.window(now).mul_f64((observed - quota) / quota);
    throttle.min(MAX_THROTTLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_quota_no_throttle() {
        let q = Quotas::default();
        let t = Instant::now();
        assert_eq!(
            q.record("u", "c", QuotaType::Produce, (1u64 << 30) as f64, None, t),
            Duration::ZERO
        );
    }

    /// The rate a greedy client gets between `from` and `to` seconds: it sends `chunk`
    /// bytes whenever it is not throttled, at most every millisecond.
    fn greedy(chunk: usize, from: u64, to: u64) -> f64 {
        let q = Quotas::default();
        let start = Instant::now();
        let mut now = start;
        let mut counted = 0usize;
        while now.duration_since(start) < Duration::from_secs(to) {
            let throttle = q.record(
                "u",
                "c",
                QuotaType::Produce,
                chunk as f64,
                Some(1048576.0),
                now,
            );
            if now.duration_since(start) >= Duration::from_secs(from) {
                counted += chunk;
            }
            now += throttle.max(Duration::from_millis(1));
        }
        counted as f64 / (to - from) as f64
    }

    #[test]
    fn a_greedy_client_is_held_to_its_quota_in_the_steady_state() {
        // After the first window, over 18 s, for small and large requests.
        for chunk in [16 << 10, 64 << 10, 256 << 10, 1 << 20] {
            let rate = greedy(chunk, 12, 30);
            assert!(
                (rate - 1048576.0).abs() / 1048576.0 < 0.08,
                "chunk {chunk}: {rate} B/s"
            );
        }
    }

    #[test]
    fn a_client_busy_a_quarter_of_a_thread_is_held_to_its_ten_percent() {
        // Each request keeps a thread busy 25 ms; the client sends the next one as soon as
        // it is not throttled: at 100 requests a second it would use 250%.
        let q = Quotas::default();
        let start = Instant::now();
        let mut now = start;
        let busy = Duration::from_millis(25);
        let (mut counted, mut throttled_answers) = (0.0, 0);
        while now.duration_since(start) < Duration::from_secs(40) {
            let before = q.throttle("u", "c", QuotaType::Request, Some(10.0), now);
            throttled_answers += usize::from(!before.is_zero());
            now += busy;
            let after = q.record(
                "u",
                "c",
                QuotaType::Request,
                QuotaType::amount_of(busy),
                Some(10.0),
                now,
            );
            if now.duration_since(start) >= Duration::from_secs(12) {
                counted += QuotaType::amount_of(busy);
            }
            now += after;
        }
        let percent = counted / 28.0;
        assert!((percent - 10.0).abs() < 1.0, "{percent}% of a thread");
        assert!(throttled_answers > 0);
        // Another client id of the same user is not held back.
        assert_eq!(
            q.throttle("u", "other", QuotaType::Request, Some(10.0), now),
            Duration::ZERO
        );
    }

    #[test]
    fn clients_are_measured_apart() {
        let q = Quotas::default();
        let t = Instant::now();
        let over = q.record(
            "u",
            "a",
            QuotaType::Fetch,
            (50u64 << 20) as f64,
            Some(1_000_000.0),
            t,
        );
        assert!(over > Duration::ZERO);
        assert_eq!(
            q.record("u", "b", QuotaType::Fetch, 1000.0, Some(1_000_000.0), t),
            Duration::ZERO
        );
        assert_eq!(
            q.record("u", "a", QuotaType::Produce, 1000.0, Some(1_000_000.0), t),
            Duration::ZERO
        );
        assert!(over <= MAX_THROTTLE);
    }
}
