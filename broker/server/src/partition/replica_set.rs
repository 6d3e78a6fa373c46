//! The leader's view of its followers: the pure core of replication (no I/O, no clock).
//!
//! A partition's leader keeps, for every other replica, how far its log goes (the fetch
//! offset of its last Fetch) and when it was last caught up. From that it decides:
//!
//! - **the high watermark**: the smallest log end offset among the in-sync replicas (the
//!   leader included). It only moves forward. While an ISR change is in flight, the
//!   *maximal* ISR (committed ∪ proposed) is used, so a shrink only lowers the bar once the
//!   controller has committed it and an expansion raises it at once (Kafka's rule: the
//!   leader must never advance the high watermark past what a replica the controller may
//!   still consider in sync has).
//! - **ISR shrink**: an in-sync follower that has not been caught up for longer than
//!   `replica.lag.time.max.ms` leaves.
//! - **ISR expansion**: an out-of-sync follower whose log end offset reached the high
//!   watermark and the start of the current leader epoch joins.
//!
//! "Caught up" follows Kafka's `Replica.updateFetchState`: a fetch at or beyond the
//! leader's log end offset means caught up now; a fetch at or beyond the leader's log end
//! offset *at the previous fetch* means it was caught up at the previous fetch.
//!
//! ISR changes are only proposed here; they take effect when the controller commits them
//! (see `Partition::apply_metadata`). One change is in flight at a time.

use std::collections::BTreeMap;

use ironlog_metadata::BrokerId;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches from
    /// this leader.
    pub log_end_offset: i64,
    /// When it was last known to be caught up (ms).
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    last_fetch_leader_end: i64,
}

/// The leader side of one partition's replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSet {
    leader: BrokerId,
    /// The ISR as committed by the controller, leader included.
    isr: Vec<BrokerId>,
    /// An ISR change proposed to the controller and not yet committed or refused.
    pending: Option<Vec<BrokerId>>,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    high_watermark: i64,
    /// The log end offset when this leader's epoch began: a follower must reach it to
    /// join the ISR (it has then dropped every record of older epochs it diverged on).
    epoch_start_offset: i64,
}

impl ReplicaSet {
    /// A new leadership: followers are given `replica.lag.time.max.ms` from `now` to show
    /// up before they count as lagging; their log end offsets are unknown, so the high
    /// watermark (carried over from when this broker was a follower) waits for them.
    pub fn new(
        leader: BrokerId,
        replicas: &[BrokerId],
        isr: &[BrokerId],
        high_watermark: i64,
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                (
                    *r,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_caught_up_ms: now_ms,
                        last_fetch_ms: now_ms,
                        last_fetch_leader_end: epoch_start_offset,
                    },
                )
            })
            .collect();
        ReplicaSet {
            leader,
            isr: isr.to_vec(),
            pending: None,
            followers,
            high_watermark,
            epoch_start_offset,
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    pub fn pending(&self) -> Option<&[BrokerId]> {
        self.pending.as_deref()
    }

    pub fn followers(&self) -> impl Iterator<Item = (BrokerId, &FollowerProgress)> {
        self.followers.iter().map(|(r, p)| (*r, p))
    }

    /// The committed ISR with any in-flight change merged in: every member the
    /// controller may consider in sync.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut all = self.isr.clone();
        for r in self.pending.iter().flatten() {
            if !all.contains(r) {
                all.push(*r);
            }
        }
        all
    }

    /// The controller committed a new state for this leadership (same leader epoch):
    /// replicas and ISR are replaced; the in-flight change, if any, is settled.
    pub fn update_membership(&mut self, replicas: &[BrokerId], isr: &[BrokerId], now_ms: i64) {
        self.isr = isr.to_vec();
        self.pending = None;
        self.followers.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != self.leader) {
            self.followers.entry(*r).or_insert(FollowerProgress {
                log_end_offset: -1,
                last_caught_up_ms: now_ms,
                last_fetch_ms: now_ms,
                last_fetch_leader_end: self.epoch_start_offset,
            });
        }
    }

    /// A proposed ISR change was refused or failed: the next check may propose again.
    pub fn clear_pending(&mut self) {
        self.pending = None;
    }

    /// A Fetch from `replica` at `fetch_offset` arrived while the leader's log ended at
    /// `leader_end`. Returns false for a broker that is not a replica.
    pub fn record_fetch(
        &mut self,
        replica: BrokerId,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(p) = self.followers.get_mut(&replica) else {
            return false;
        };
        if fetch_offset >= leader_end {
            p.last_caught_up_ms = p.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= p.last_fetch_leader_end {
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.last_fetch_ms);
        }
        p.log_end_offset = fetch_offset;
        p.last_fetch_leader_end = leader_end;
        p.last_fetch_ms = now_ms;
        true
    }

    /// Moves the high watermark to the smallest log end offset in the maximal ISR (the
    /// leader's is `leader_end`), if that is higher. Returns the new value if it moved.
    pub fn advance_high_watermark(&mut self, leader_end: i64) -> Option<i64> {
        let candidate = self
            .maximal_isr()
            .iter()
            .filter(|r| **r != self.leader)
            .map(|r| self.followers.get(r).map_or(-1, |p| p.log_end_offset))
            .fold(leader_end, i64::min);
        (candidate > self.high_watermark).then(|| {
            self.high_watermark = candidate;
            candidate
        })
    }

    /// The ISR without the followers not caught up within `lag_max_ms`, if that removes
    /// anyone and no change is in flight. The leader never leaves its own ISR.
    pub fn shrink_candidate(&self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<BrokerId>> {
        if self.pending.is_some() {
            return None;
        }
        let keep: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.leader
                    || self
                        .followers
                        .get(r)
                        .is_some_and(|p| now_ms - p.last_caught_up_ms <= lag_max_ms)
            })
            .collect();
        (keep.len() < self.isr.len()).then_some(keep)
    }

    /// The ISR with `replica` added, if it is an out-of-sync follower that has caught up
    /// (log end ≥ high watermark and ≥ this epoch's start) and no change is in flight.
    pub fn expand_candidate(&self, replica: BrokerId) -> Option<Vec<BrokerId>> {
        if self.pending.is_some() || self.isr.contains(&replica) {
            return None;
        }
        let p = self.followers.get(&replica)?;
        let caught_up =
            p.log_end_offset >= self.high_watermark && p.log_end_offset >= self.epoch_start_offset;
        caught_up.then(|| {
            let mut isr = self.isr.clone();
            isr.push(replica);
            isr
        })
    }

    /// Notes that `isr` was proposed to the controller.
    pub fn set_pending(&mut self, isr: Vec<BrokerId>) {
        self.pending = Some(isr);
    }

    /// Records behind and ms since last caught up, of the follower furthest behind
    /// (`(0, 0)` without followers).
    pub fn max_lag(&self, leader_end: i64, now_ms: i64) -> (i64, i64) {
        self.followers.values().fold((0, 0), |(records, ms), p| {
            let behind = if p.log_end_offset < 0 {
                leader_end
            } else {
                leader_end - p.log_end_offset
            };
            (
                records.max(behind.max(0)),
                ms.max(if behind > 0 {
                    now_ms - p.last_caught_up_ms
                } else {
                    0
                }),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 10_000;

    /// ISR, follower fetches as (replica, offset), leader end, expected high watermark.
    type HwRow<'a> = (&'a [BrokerId], &'a [(BrokerId, i64)], i64, i64);
    /// Follower 2's fetches as (time, offset, leader end), now, expected shrink.
    type ShrinkRow<'a> = (&'a [(i64, i64, i64)], i64, Option<Vec<BrokerId>>);
    /// ISR, high watermark, epoch start, follower 3's fetch offset, expected expansion.
    type ExpandRow<'a> = (&'a [BrokerId], i64, i64, i64, Option<Vec<BrokerId>>);

    fn set(isr: &[BrokerId], hw: i64, epoch_start: i64) -> ReplicaSet {
        ReplicaSet::new(1, &[1, 2, 3], isr, hw, epoch_start, 0)
    }

    /// (follower fetches as (replica, fetch offset), leader end, expected high watermark)
    #[test]
    fn high_watermark_is_the_smallest_log_end_in_the_isr() {
        let rows: &[HwRow<'_>] = &[
            // No follower fetched yet: their ends are unknown, nothing moves.
            (&[1, 2, 3], &[], 10, 0),
            // One in-sync follower behind holds it back.
            (&[1, 2, 3], &[(2, 10), (3, 4)], 10, 4),
            (&[1, 2, 3], &[(2, 10), (3, 10)], 10, 10),
            // An out-of-sync follower does not count.
            (&[1, 2], &[(2, 7), (3, 0)], 10, 7),
            // The leader alone: its own log end.
            (&[1], &[(2, 3)], 10, 10),
            // Followers can't be ahead of the leader: min with the leader's end.
            (&[1, 2], &[(2, 12)], 10, 10),
        ];
        for (isr, fetches, leader_end, want) in rows {
            let mut s = set(isr, 0, 0);
            for (r, offset) in *fetches {
                assert!(s.record_fetch(*r, *offset, *leader_end, 1));
            }
            s.advance_high_watermark(*leader_end);
            assert_eq!(s.high_watermark(), *want, "isr {isr:?} fetches {fetches:?}");
        }
    }

    #[test]
    fn high_watermark_never_moves_back() {
        let mut s = set(&[1, 2], 8, 0);
        s.record_fetch(2, 5, 10, 1);
        assert_eq!(s.advance_high_watermark(10), None);
        assert_eq!(s.high_watermark(), 8);
        s.record_fetch(2, 9, 10, 2);
        assert_eq!(s.advance_high_watermark(10), Some(9));
    }

    #[test]
    fn an_in_flight_change_counts_its_members_until_settled() {
        // Shrink to [1] proposed: 2 still holds the high watermark back.
        let mut s = set(&[1, 2], 0, 0);
        s.record_fetch(2, 3, 10, 1);
        s.set_pending(vec![1]);
        s.advance_high_watermark(10);
        assert_eq!(s.high_watermark(), 3);
        // Committed: the leader alone.
        s.update_membership(&[1, 2, 3], &[1], 2);
        s.advance_high_watermark(10);
        assert_eq!(s.high_watermark(), 10);
        // Expansion proposed: 3 counts at once.
        let mut s = set(&[1], 5, 0);
        s.record_fetch(3, 6, 12, 1);
        s.set_pending(vec![1, 3]);
        s.advance_high_watermark(12);
        assert_eq!(s.high_watermark(), 6);
    }

    /// (fetches as (time, offset, leader end), now, expected shrink)
    #[test]
    fn isr_shrinks_after_the_lag_time() {
        let rows: &[ShrinkRow<'_>] = &[
            // Never fetched since the leadership began at 0: lagging after LAG.
            (&[], LAG, None),
            (&[], LAG + 1, Some(vec![1, 3])),
            // Caught up at 5_000 (fetched the leader's end): fine until 15_000.
            (&[(5_000, 10, 10)], 15_000, None),
            (&[(5_000, 10, 10)], 15_001, Some(vec![1, 3])),
            // Fetching steadily but always behind what the leader had at the previous
            // fetch: last caught up stays at the start.
            (
                &[(4_000, 2, 10), (8_000, 5, 20), (12_000, 9, 30)],
                12_000,
                Some(vec![1, 3]),
            ),
            // Behind the leader's end now, but at the previous fetch's leader end: caught
            // up as of the previous fetch.
            (&[(4_000, 5, 10), (8_000, 10, 20)], 14_000, None),
            (&[(4_000, 5, 10), (8_000, 10, 20)], 14_001, Some(vec![1, 3])),
        ];
        for (fetches, now, want) in rows {
            let mut s = set(&[1, 2, 3], 0, 0);
            // Replica 3 keeps up throughout.
            for (t, offset, end) in *fetches {
                s.record_fetch(2, *offset, *end, *t);
            }
            s.record_fetch(3, 100, 100, *now);
            assert_eq!(
                &s.shrink_candidate(*now, LAG),
                want,
                "fetches {fetches:?} at {now}"
            );
        }
    }

    #[test]
    fn one_isr_change_at_a_time() {
        let mut s = set(&[1, 2, 3], 0, 0);
        s.set_pending(vec![1, 2]);
        assert_eq!(s.shrink_candidate(LAG * 5, LAG), None);
        s.clear_pending();
        assert_eq!(s.shrink_candidate(LAG * 5, LAG), Some(vec![1]));
    }

    /// (isr, high watermark, epoch start, follower 3's fetch offset, expected)
    #[test]
    fn isr_expands_on_catch_up() {
        let rows: &[ExpandRow<'_>] = &[
            (&[1, 2], 10, 0, 9, None),
            (&[1, 2], 10, 0, 10, Some(vec![1, 2, 3])),
            // Reached the high watermark but not the start of this leader's epoch.
            (&[1, 2], 10, 15, 12, None),
            (&[1, 2], 10, 15, 15, Some(vec![1, 2, 3])),
            // Already in sync.
            (&[1, 2, 3], 10, 0, 10, None),
        ];
        for (isr, hw, epoch_start, offset, want) in rows {
            let mut s = set(isr, *hw, *epoch_start);
            s.record_fetch(3, *offset, 20, 1);
            assert_eq!(&s.expand_candidate(3), want, "isr {isr:?} offset {offset}");
        }
        // Not a replica at all.
        let s = set(&[1, 2], 0, 0);
        assert_eq!(s.expand_candidate(9), None);
    }

    #[test]
    fn lag_of_the_slowest_follower() {
        let mut s = set(&[1, 2, 3], 0, 0);
        s.record_fetch(2, 10, 10, 1_000);
        s.record_fetch(3, 4, 10, 1_000);
        assert_eq!(s.max_lag(10, 3_000), (6, 3_000));
        s.record_fetch(3, 10, 10, 3_000);
        assert_eq!(s.max_lag(10, 3_000), (0, 0));
    }
}
