//! Write-behind: a partition's log keeps at most a window of recently appended bytes in the
//! page cache, the rest is written back and dropped (`--log-write-behind-bytes`, default
//! [`DEFAULT_WINDOW`]; 0 leaves the page cache to the OS, as Kafka does).
//!
//! # Why
//! Left alone, the page cache keeps every byte a broker appends until memory runs short, so
//! each appended byte lands on a page the kernel has to find first: a page never used since
//! boot, one handed back to a hypervisor (free-page reporting), or one reclaimed from other
//! cached data. Measured on the 2-core Firecracker VM the benchmarks run on (`bench/run.sh`),
//! writing 4 GiB to a new file cost 3.2 s of kernel CPU per GiB that way, against 0.29 s/GiB
//! when the same pages were reused. Keeping a window per partition lets the pages behind it go
//! back to the kernel's free lists while they are still warm, where the next appends find
//! them. The data also reaches the disk at a steady pace instead of in bursts when the
//! kernel's dirty limits are hit. Consumers within the window read from memory as before; one
//! further behind reads from disk (sequentially, with the kernel's readahead), as after a
//! restart.
//!
//! # How
//! Once a chunk of the active segment has been written, its writeback is started
//! (`posix_fadvise(DONTNEED)` on dirty pages starts their writeback and drops nothing yet, on
//! Linux). Once a chunk is a window behind the end, `DONTNEED` again drops its pages, clean by
//! then unless the disk is slower than the appends (then they stay until the kernel reclaims
//! them). When a segment rolls it has been fsynced; the rest of it is dropped once the new
//! segment holds a window. Durability is unchanged: acknowledged data still sits in the page
//! cache (or on disk) exactly as before, and `flush.messages`/`flush.ms` still decide fsyncs.
//!
//! This module is the pure part: it decides, from the active segment's size after each append,
//! which byte ranges of which segment to hand to the kernel; `Log` carries the steps out.

use std::ops::Range;

/// Default window per partition: 16 MiB, a few seconds of data at the rates one partition
/// usually takes (with 48 partitions, 768 MiB of page cache for the recently appended data).
/// Measured with `bench/workloads/partitions-48.yaml` (20 s): 482 MB/s published at 16 MiB,
/// 351 MB/s at 64 MiB, where the windows took most of the run to fill with fresh pages.
pub const DEFAULT_WINDOW: u64 = 16 << 20;

/// Ranges are whole pages: the kernel ignores partial ones.
const PAGE: u64 = 4096;

/// Largest range handed over at once: a quarter of the window, at most 8 MiB.
const MAX_CHUNK: u64 = 8 << 20;

/// What a [`Step`] asks of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Start writing these dirty pages back (asynchronously).
    StartWriteback,
    /// Drop these pages from the page cache (clean ones go; dirty ones stay).
    Drop,
}

/// What to do with a byte range of a segment (named by its base offset). On Linux one call,
/// `posix_fadvise(DONTNEED)`, does either, so `Log` treats both kinds alike; the kind says
/// why the range is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub segment: i64,
    pub range: Range<u64>,
}

/// The progress of write-behind over a log's active segment (and the one before it).
#[derive(Debug, Clone)]
pub struct WriteBehind {
    window: u64,
    chunk: u64,
    /// Base offset of the segment the positions below belong to.
    segment: Option<i64>,
    /// Writeback has been started for `..started`.
    started: u64,
    /// Pages of `..dropped` have been dropped.
    dropped: u64,
    /// The segment's size when last seen.
    size: u64,
    /// The segment before the active one, while part of it may still be cached:
    /// (base offset, dropped up to, size).
    previous: Option<(i64, u64, u64)>,
}

fn page_floor(n: u64) -> u64 {
    n / PAGE * PAGE
}

impl WriteBehind {
    /// `window` bytes stay cached behind the end of the log; 0 turns write-behind off.
    pub fn new(window: u64) -> Self {
        WriteBehind {
            window,
            chunk: page_floor((window / 4).min(MAX_CHUNK)).max(PAGE),
            segment: None,
            started: 0,
            dropped: 0,
            size: 0,
            previous: None,
        }
    }

    /// The steps due now that the active segment `segment` is `size` bytes long (called after
    /// every append; a segment never seen before is the new active one).
    pub fn after_append(&mut self, segment: i64, size: u64) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.window == 0 {
            return steps;
        }
        if self.segment != Some(segment) {
            // Rolled (or first append since opening): the old active segment was fsynced
            // at the roll, so what is left of it in the cache is clean.
            self.previous = self
                .segment
                .filter(|_| self.size > self.dropped)
                .map(|base| (base, self.dropped, self.size));
            self.segment = Some(segment);
            (self.started, self.dropped) = (0, 0);
        }
        // A follower truncating its log moves the end back.
        self.started = self.started.min(page_floor(size));
        self.dropped = self.dropped.min(self.started);
        self.size = size;
        // Drop first, and only what writeback was started for by an earlier append: those
        // pages have had time to become clean.
        if size > self.window {
            let behind = page_floor(size - self.window).min(self.started);
            if behind >= self.dropped + self.chunk {
                steps.push(Step {
                    kind: StepKind::Drop,
                    segment,
                    range: self.dropped..behind,
                });
                self.dropped = behind;
            }
            if let Some((base, from, to)) = self.previous.take() {
                steps.push(Step {
                    kind: StepKind::Drop,
                    segment: base,
                    range: from..to,
                });
            }
        }
        let end = page_floor(size);
        if end - self.started >= self.chunk {
            steps.push(Step {
                kind: StepKind::StartWriteback,
                segment,
                range: self.started..end,
            });
            self.started = end;
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn of_kind(steps: &[Step], kind: StepKind) -> impl Iterator<Item = &Step> {
        steps.iter().filter(move |s| s.kind == kind)
    }

    fn drops(steps: &[Step]) -> Vec<(i64, Range<u64>)> {
        of_kind(steps, StepKind::Drop)
            .map(|s| (s.segment, s.range.clone()))
            .collect()
    }

    fn writebacks(steps: &[Step]) -> Vec<Range<u64>> {
        of_kind(steps, StepKind::StartWriteback)
            .map(|s| s.range.clone())
            .collect()
    }

    #[test]
    fn off_means_no_steps() {
        let mut wb = WriteBehind::new(0);
        for size in (1..100).map(|i| i * 10 * MIB) {
            assert!(wb.after_append(0, size).is_empty());
        }
    }

    #[test]
    fn writeback_starts_a_chunk_at_a_time_on_page_boundaries() {
        // window 16 MiB: chunks of 4 MiB.
        let mut wb = WriteBehind::new(16 * MIB);
        assert!(wb.after_append(0, 3 * MIB).is_empty());
        assert_eq!(
            writebacks(&wb.after_append(0, 4 * MIB + 100)),
            vec![0..4 * MIB]
        );
        assert!(wb.after_append(0, 7 * MIB).is_empty());
        // 4 MiB + 100 was not a page boundary: the next range starts where the last ended.
        assert_eq!(
            writebacks(&wb.after_append(0, 8 * MIB + 5000)),
            vec![4 * MIB..8 * MIB + 4096]
        );
    }

    #[test]
    fn pages_a_window_behind_the_end_are_dropped_once_written_back() {
        let mut wb = WriteBehind::new(16 * MIB);
        let mut dropped = Vec::new();
        let mut size = 0;
        while size < 40 * MIB {
            size += MIB;
            dropped.extend(drops(&wb.after_append(0, size)));
        }
        // At 40 MiB everything up to 24 MiB (40 - 16) is dropped, in contiguous chunks.
        assert_eq!(
            dropped,
            vec![
                (0, 0..4 * MIB),
                (0, 4 * MIB..8 * MIB),
                (0, 8 * MIB..12 * MIB),
                (0, 12 * MIB..16 * MIB),
                (0, 16 * MIB..20 * MIB),
                (0, 20 * MIB..24 * MIB),
            ]
        );
    }

    #[test]
    fn one_large_append_drops_only_what_was_written_back() {
        let mut wb = WriteBehind::new(16 * MIB);
        let steps = wb.after_append(0, 100 * MIB);
        // Writeback of everything starts now; dropping waits for a later append, so the
        // pages have had time to become clean.
        assert_eq!(writebacks(&steps), vec![0..100 * MIB]);
        assert_eq!(drops(&steps), vec![]);
        let steps = wb.after_append(0, 101 * MIB);
        assert_eq!(drops(&steps), vec![(0, 0..85 * MIB)]);
    }

    #[test]
    fn the_rolled_segment_is_dropped_once_the_new_one_holds_a_window() {
        let mut wb = WriteBehind::new(16 * MIB);
        for size in (1..=30).map(|i| i * MIB) {
            wb.after_append(0, size);
        }
        // 0..12 MiB of segment 0 dropped so far; it rolls at 30 MiB.
        let mut steps = Vec::new();
        for size in (1..=17).map(|i| i * MIB) {
            steps.extend(wb.after_append(1000, size));
        }
        assert_eq!(
            drops(&steps),
            vec![(0, 12 * MIB..30 * MIB)],
            "the rest of segment 0, once segment 1000 passed 16 MiB, and nothing of 1000 yet"
        );
        let later = wb.after_append(1000, 21 * MIB);
        assert_eq!(drops(&later), vec![(1000, 0..5 * MIB)]);
    }

    #[test]
    fn a_truncated_end_moves_the_marks_back() {
        let mut wb = WriteBehind::new(16 * MIB);
        for size in (1..=40).map(|i| i * MIB) {
            wb.after_append(0, size);
        }
        // A follower truncates to 10 MiB and appends again.
        let steps = wb.after_append(0, 10 * MIB + 10);
        assert!(drops(&steps).is_empty());
        let mut dropped = Vec::new();
        for size in (11..=30).map(|i| i * MIB) {
            dropped.extend(drops(&wb.after_append(0, size)));
        }
        assert_eq!(dropped, vec![(0, 10 * MIB..14 * MIB)]);
    }

    #[test]
    fn a_small_window_still_uses_whole_pages() {
        let mut wb = WriteBehind::new(1000);
        let steps = wb.after_append(0, 3 * PAGE + 1);
        assert_eq!(writebacks(&steps), vec![0..3 * PAGE]);
        assert_eq!(drops(&steps), vec![]);
        let steps = wb.after_append(0, 4 * PAGE + 1);
        assert_eq!(drops(&steps), vec![(0, 0..3 * PAGE)]);
        assert_eq!(writebacks(&steps), vec![3 * PAGE..4 * PAGE]);
    }
}
