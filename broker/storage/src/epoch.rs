//! The leader epoch cache (Kafka's `LeaderEpochFileCache`): for each leader epoch that
//! wrote to the log, the offset of its first record.
//!
//! Replication uses it to find where a follower's log diverged from the leader's
//! (OffsetsForLeaderEpoch): the follower asks "where does my latest epoch end in your
//! log?", and truncates to the answer before fetching.
//!
//! [`LeaderEpochCache`] is pure (no I/O, no clock); [`crate::Log`] owns one, keeps it in
//! step with its batches and persists it in `leader-epoch-checkpoint` (format in the
//! crate docs) whenever it changes.
//!
//! Invariant: entries strictly increase in both epoch and start offset.

use std::fmt;

/// Name of the per-partition file holding the leader epoch cache.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Kafka's `UNDEFINED_EPOCH`: no epoch is known.
pub const UNDEFINED_EPOCH: i32 = -1;

/// Kafka's `UNDEFINED_EPOCH_OFFSET`: no end offset is known.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The only checkpoint format version (Kafka's).
const CHECKPOINT_VERSION: &str = "0";

/// One leader epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Leader epochs of one partition log, oldest first. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

/// Why a `leader-epoch-checkpoint` file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCheckpointError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for EpochCheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for EpochCheckpointError {}

impl LeaderEpochCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The epoch of the last entry, `None` if the cache is empty.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Only an epoch greater than the latest
    /// one is added (an equal or lower epoch is ignored: epochs never go back); entries
    /// starting at or after `start_offset` are removed first, so the entries stay monotonic
    /// in both fields. Negative arguments are ignored. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 || self.latest_epoch().is_some_and(|l| epoch <= l) {
            return false;
        }
        // Entries are sorted by start offset, so the conflicting ones are a suffix.
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < start_offset);
        self.entries.truncate(keep);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's OffsetsForLeaderEpoch answer, as `(epoch, end offset)`, for a log whose end
    /// offset is `log_end_offset`:
    ///
    /// * the latest epoch: `(latest, log_end_offset)`;
    /// * otherwise, with E the largest known epoch <= `requested_epoch`: `(E, start offset of
    ///   the first epoch after E)`;
    /// * an epoch below every known one: `(requested_epoch, start offset of the first
    ///   entry)` (its data is gone; the follower replicates from there);
    /// * an epoch above the latest, a negative epoch or an empty cache:
    ///   `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`, i.e. `(-1, -1)`.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested_epoch < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => (floor.epoch, next.start_offset),
            None => (requested_epoch, next.start_offset),
        }
    }

    /// After the log was truncated to `end_offset`: removes entries starting at or after it.
    /// Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// After the log start offset moved to `start_offset`: drops entries wholly below it and
    /// raises the start of the last entry at or below it to `start_offset` (that epoch still
    /// owns the records from there). Returns whether the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let at_or_below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(last_below) = at_or_below.checked_sub(1) else {
            return false;
        };
        if last_below == 0 && self.entries[0].start_offset == start_offset {
            return false;
        }
        self.entries.drain(..last_below);
        self.entries[0].start_offset = start_offset;
        true
    }

    /// Removes every entry. Returns whether the cache changed.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// The checkpoint file's text: `0`, the entry count, then `<epoch> <start offset>` lines.
    pub fn to_checkpoint(&self) -> String {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        text
    }

    /// Parses a checkpoint file's text (see [`LeaderEpochCache::to_checkpoint`]).
    ///
    /// # Errors
    /// [`EpochCheckpointError`] if the version is not 0, the count does not match the
    /// lines, a line is not two integers, an entry is negative, or the entries are not
    /// strictly increasing in both epoch and start offset.
    pub fn from_checkpoint(text: &str) -> Result<Self, EpochCheckpointError> {
        let bad = |line: usize, reason: String| EpochCheckpointError { line, reason };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(CHECKPOINT_VERSION) {
            return Err(bad(1, "expected version 0".into()));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad(2, "expected the entry count".into()))?;
        let mut entries: Vec<EpochEntry> = Vec::new();
        for (i, line) in lines.enumerate() {
            let n = i + 3;
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [epoch, offset] = parts[..] else {
                return Err(bad(
                    n,
                    format!("expected `<epoch> <start offset>`, found {line:?}"),
                ));
            };
            let (Ok(epoch), Ok(start_offset)) = (epoch.parse::<i32>(), offset.parse::<i64>())
            else {
                return Err(bad(n, format!("expected two integers, found {line:?}")));
            };
            if epoch < 0 || start_offset < 0 {
                return Err(bad(n, format!("negative entry {epoch} {start_offset}")));
            }
            if let Some(prev) = entries.last() {
                if epoch <= prev.epoch || start_offset <= prev.start_offset {
                    return Err(bad(
                        n,
                        format!(
                            "entry {epoch} {start_offset} does not follow {} {} \
                             (epochs and offsets must increase)",
                            prev.epoch, prev.start_offset
                        ),
                    ));
                }
            }
            entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        if entries.len() != count {
            return Err(bad(
                2,
                format!("count {count} but {} entries follow", entries.len()),
            ));
        }
        Ok(LeaderEpochCache { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache {
            entries: entries
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        }
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign() {
        // (before, epoch, start offset, changed, after)
        #[allow(clippy::type_complexity)]
        let rows: &[(&[(i32, i64)], i32, i64, bool, &[(i32, i64)])] = &[
            (&[], 0, 0, true, &[(0, 0)]),
            (&[], 5, 100, true, &[(5, 100)]),
            (&[(0, 0)], 1, 10, true, &[(0, 0), (1, 10)]),
            // Same epoch again (every batch of an epoch assigns it): no change.
            (&[(0, 0)], 0, 10, false, &[(0, 0)]),
            (&[(0, 0), (2, 50)], 2, 40, false, &[(0, 0), (2, 50)]),
            // Lower epoch: stale, ignored.
            (&[(0, 0), (2, 50)], 1, 60, false, &[(0, 0), (2, 50)]),
            // Higher epoch at or below the latest start: the conflicting entries go.
            (&[(0, 0), (2, 50)], 3, 50, true, &[(0, 0), (3, 50)]),
            (&[(0, 0), (2, 50)], 3, 40, true, &[(0, 0), (3, 40)]),
            (&[(0, 0), (1, 10), (2, 50)], 4, 10, true, &[(0, 0), (4, 10)]),
            (&[(1, 10), (2, 50)], 4, 0, true, &[(4, 0)]),
            // A new epoch that starts where data is still to come (a leader with no appends).
            (&[(0, 0)], 1, 0, true, &[(1, 0)]),
            // Negative arguments are ignored.
            (&[(0, 0)], -1, 10, false, &[(0, 0)]),
            (&[(0, 0)], 3, -1, false, &[(0, 0)]),
        ];
        for (i, (before, epoch, start, changed, after)) in rows.iter().enumerate() {
            let mut c = cache(before);
            assert_eq!(c.assign(*epoch, *start), *changed, "row {i}");
            assert_eq!(pairs(&c), *after, "row {i}");
        }
    }

    #[test]
    fn latest_epoch() {
        assert_eq!(cache(&[]).latest_epoch(), None);
        assert_eq!(cache(&[(0, 0)]).latest_epoch(), Some(0));
        assert_eq!(cache(&[(0, 0), (3, 7)]).latest_epoch(), Some(3));
    }

    #[test]
    fn end_offset_for() {
        // (cache, log end offset, requested epoch, answer)
        #[allow(clippy::type_complexity)]
        let rows: &[(&[(i32, i64)], i64, i32, (i32, i64))] = &[
            // Empty cache: undefined whatever is asked.
            (&[], 0, 0, (-1, -1)),
            (&[], 10, 3, (-1, -1)),
            // The follower-diverged case: the follower wrote epoch 1 that the leader never saw.
            (&[(0, 0), (2, 50)], 80, 0, (0, 50)),
            (&[(0, 0), (2, 50)], 80, 1, (0, 50)),
            (&[(0, 0), (2, 50)], 80, 2, (2, 80)),
            // Above the latest epoch: undefined (Kafka's endOffsetFor; cannot happen when
            // followers ask with epochs the leader sent them).
            (&[(0, 0), (2, 50)], 80, 3, (-1, -1)),
            // Below every known epoch (older entries removed with the log's start): the
            // requested epoch ends where the first known one starts.
            (&[(2, 50), (4, 70)], 80, 1, (1, 50)),
            (&[(2, 50), (4, 70)], 80, 3, (2, 70)),
            (&[(2, 50), (4, 70)], 80, 4, (4, 80)),
            (&[(0, 0), (1, 10), (5, 20), (7, 30)], 40, 6, (5, 30)),
            (&[(0, 0), (1, 10), (5, 20), (7, 30)], 40, 1, (1, 20)),
            // Negative (undefined) requested epoch.
            (&[(0, 0)], 10, -1, (-1, -1)),
        ];
        for (i, (entries, leo, requested, answer)) in rows.iter().enumerate() {
            assert_eq!(
                cache(entries).end_offset_for(*requested, *leo),
                *answer,
                "row {i}: {entries:?} leo {leo} asked {requested}"
            );
        }
    }

    #[test]
    fn truncate_from_end() {
        #[allow(clippy::type_complexity)]
        let rows: &[(&[(i32, i64)], i64, bool, &[(i32, i64)])] = &[
            (&[], 0, false, &[]),
            (&[(0, 0), (2, 50)], 80, false, &[(0, 0), (2, 50)]),
            (&[(0, 0), (2, 50)], 51, false, &[(0, 0), (2, 50)]),
            (&[(0, 0), (2, 50)], 50, true, &[(0, 0)]),
            (&[(0, 0), (2, 50), (3, 60)], 20, true, &[(0, 0)]),
            (&[(0, 0), (2, 50)], 0, true, &[]),
            (&[(0, 0)], -1, false, &[(0, 0)]),
        ];
        for (i, (before, end, changed, after)) in rows.iter().enumerate() {
            let mut c = cache(before);
            assert_eq!(c.truncate_from_end(*end), *changed, "row {i}");
            assert_eq!(pairs(&c), *after, "row {i}");
        }
    }

    #[test]
    fn truncate_from_start() {
        #[allow(clippy::type_complexity)]
        let rows: &[(&[(i32, i64)], i64, bool, &[(i32, i64)])] = &[
            (&[], 10, false, &[]),
            (&[(0, 0), (2, 50)], 0, false, &[(0, 0), (2, 50)]),
            (&[(0, 0), (2, 50)], 10, true, &[(0, 10), (2, 50)]),
            (&[(0, 0), (2, 50)], 50, true, &[(2, 50)]),
            (&[(0, 0), (2, 50)], 70, true, &[(2, 70)]),
            (&[(0, 0), (1, 10), (2, 50)], 30, true, &[(1, 30), (2, 50)]),
            // The start moved below the first entry: nothing to drop.
            (&[(3, 100)], 50, false, &[(3, 100)]),
            (&[(3, 100)], 100, false, &[(3, 100)]),
        ];
        for (i, (before, start, changed, after)) in rows.iter().enumerate() {
            let mut c = cache(before);
            assert_eq!(c.truncate_from_start(*start), *changed, "row {i}");
            assert_eq!(pairs(&c), *after, "row {i}");
        }
    }

    #[test]
    fn checkpoint_round_trips() {
        for entries in [&[][..], &[(0, 0)], &[(0, 0), (2, 50), (7, 1 << 40)]] {
            let c = cache(entries);
            let text = c.to_checkpoint();
            assert_eq!(LeaderEpochCache::from_checkpoint(&text), Ok(c.clone()));
        }
        assert_eq!(
            cache(&[(0, 0), (2, 50)]).to_checkpoint(),
            "0\n2\n0 0\n2 50\n"
        );
    }

    #[test]
    fn corrupt_checkpoints_are_refused() {
        // (text, line of the error)
        let rows = [
            ("", 1),
            ("1\n0\n", 1),
            ("0\n", 2),
            ("0\nx\n", 2),
            ("0\n2\n0 0\n", 2),
            ("0\n1\n0 0\n1 5\n", 2),
            ("0\n1\n0\n", 3),
            ("0\n1\n0 0 0\n", 3),
            ("0\n1\na 0\n", 3),
            ("0\n1\n-1 0\n", 3),
            ("0\n2\n2 0\n1 5\n", 4),
            ("0\n2\n1 5\n2 5\n", 4),
        ];
        for (text, line) in rows {
            let err = LeaderEpochCache::from_checkpoint(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
