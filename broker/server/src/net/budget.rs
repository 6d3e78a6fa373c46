//! The broker-wide budget of request bytes being read or queued: Kafka's
//! `queued.max.request.bytes`.
//!
//! A connection takes a request's whole declared size from the budget when the request's
//! 4-byte size prefix arrives, before reading its body, and gives it back once the request has
//! been handled (or the connection closes). So the request bytes the broker holds are bounded by
//! the cap plus a small per-connection read-ahead (`ironlog_protocol::frame::READ_AHEAD`),
//! however many connections declare large requests and trickle them.
//!
//! Why whole, once, at the prefix: a connection waits for budget only while holding none, so
//! connections can't wedge each other by each holding part of what they need (the deadlock
//! of growing a request's budget as its bytes arrive). A connection that holds budget is
//! reading its request, bounded by the read timeouts, or being handled.
//!
//! Why not a fair (FIFO) queue like `tokio::sync::Semaphore`: with 1,000 connections queued for
//! 100 MiB each, a client's 1 KiB request would wait behind all of them although the budget has
//! room for it. Waiters here are woken on every release and whoever fits goes first, as Kafka's
//! memory pool does. The price is that a large request can be overtaken by a stream of small
//! ones; its wait is bounded by `connections.max.idle.ms`.

use std::sync::{Arc, Mutex};

use prometheus::IntGauge;
use tokio::sync::Notify;

/// Bytes of requests being read or queued, across all connections.
pub struct RequestBudget {
    cap: usize,
    /// A std mutex, not a tokio one: it guards an integer and is never held across an await.
    available: Mutex<usize>,
    released: Notify,
    /// `ironlog_queued_request_bytes`, kept equal to `cap - available`.
    queued: IntGauge,
}

/// Budget held for one request; returned when dropped.
#[must_use = "the budget is returned as soon as the permit is dropped"]
pub struct BudgetPermit {
    budget: Arc<RequestBudget>,
    bytes: usize,
}

impl RequestBudget {
    pub fn new(cap: usize, queued: IntGauge) -> Arc<Self> {
        queued.set(0);
        Arc::new(RequestBudget {
            cap,
            available: Mutex::new(cap),
            released: Notify::new(),
            queued,
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Takes `bytes` now if they are available.
    ///
    /// A request larger than the whole budget is given the whole budget, so it can still be
    /// read (alone); start-up validation keeps the cap at least `socket.request.max.bytes`, so
    /// this only matters for configs built without it.
    pub fn try_acquire(self: &Arc<Self>, bytes: usize) -> Option<BudgetPermit> {
        let bytes = bytes.min(self.cap);
        let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
        if *available < bytes {
            return None;
        }
        *available -= bytes;
        self.queued.set((self.cap - *available) as i64);
        Some(BudgetPermit {
            budget: self.clone(),
            bytes,
        })
    }

    /// Waits until `bytes` are available and takes them. Cancel-safe: dropping the future
    /// takes nothing.
    pub async fn acquire(self: &Arc<Self>, bytes: usize) -> BudgetPermit {
        loop {
            // Register for the wake-up before checking, so a release between the check and
            // the await is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(permit) = self.try_acquire(bytes) {
                return permit;
            }
            released.await;
        }
    }

    fn release(&self, bytes: usize) {
        {
            let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
            *available += bytes;
            self.queued.set((self.cap - *available) as i64);
        }
        if bytes > 0 {
            self.released.notify_waiters();
        }
    }
}

#[cfg(test)]
impl BudgetPermit {
    fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(cap: usize) -> Arc<RequestBudget> {
        RequestBudget::new(cap, IntGauge::new("queued", "test").unwrap())
    }

    #[test]
    fn permits_are_counted_against_the_cap_and_returned_on_drop() {
        let b = budget(100);
        let p1 = b.try_acquire(60).unwrap();
        assert_eq!(b.queued.get(), 60);
        assert!(b.try_acquire(41).is_none());
        let p2 = b.try_acquire(40).unwrap();
        assert_eq!(b.queued.get(), 100);
        assert!(b.try_acquire(1).is_none());
        assert!(
            b.try_acquire(0).is_some(),
            "an empty request needs no budget"
        );
        drop(p1);
        assert_eq!(b.queued.get(), 40);
        drop(p2);
        assert_eq!(b.queued.get(), 0);
    }

    #[test]
    fn a_request_larger_than_the_cap_gets_the_whole_cap() {
        let b = budget(100);
        let p = b.try_acquire(1000).unwrap();
        assert_eq!(p.bytes(), 100);
        assert!(b.try_acquire(1).is_none());
    }

    #[tokio::test]
    async fn a_waiter_gets_its_bytes_when_enough_are_released() {
        let b = budget(100);
        let p1 = b.try_acquire(70).unwrap();
        let p2 = b.try_acquire(30).unwrap();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(50).await.bytes() }
        });
        // 30 bytes free are not enough for 50: the waiter must still be waiting.
        drop(p2);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(p1);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter woken by the release")
            .unwrap();
        assert_eq!(got, 50);
        assert_eq!(
            b.queued.get(),
            0,
            "the waiter's permit was dropped with its task"
        );
    }

    /// Not FIFO: a small request that fits goes ahead of a large one that doesn't.
    #[tokio::test]
    async fn a_small_request_is_not_stuck_behind_a_large_waiter() {
        let b = budget(100);
        let held = b.try_acquire(60).unwrap();
        let large = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(100).await.bytes() }
        });
        tokio::task::yield_now().await;
        let small = tokio::time::timeout(Duration::from_secs(5), b.acquire(10))
            .await
            .expect("10 bytes fit beside the 60 held");
        assert_eq!(b.queued.get(), 70);
        drop((small, held));
        let got = tokio::time::timeout(Duration::from_secs(5), large)
            .await
            .expect("large waiter admitted once everything is released")
            .unwrap();
        assert_eq!(got, 100);
    }
}
