//! Replication's storage half: follower appends and the leader epoch cache the log owns.

mod common;

use std::fs;
use std::path::Path;

use common::{read_all, segment_files, small_config};
use ironlog_storage::batch::testing::simple_batch;
use ironlog_storage::batch::{self, BatchHeader};
use ironlog_storage::epoch::LEADER_EPOCH_CHECKPOINT_FILE;
use ironlog_storage::{Log, LogConfig, LogError, Repair, ValidationError};

const NOW: i64 = 1_700_000_000_000;

/// Every `.log` file of `dir`, oldest first, concatenated: the partition's stored bytes.
fn stored_bytes(dir: &Path) -> Vec<u8> {
    segment_files(dir, "log")
        .iter()
        .flat_map(|p| fs::read(p).unwrap())
        .collect()
}

fn checkpoint(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT_FILE)).ok()
}

/// The epochs of [`leader_log`]: 28 records in epoch 0, 21 in epoch 2, 33 in epoch 5.
const EPOCHS: [(i32, i64); 3] = [(0, 0), (2, 28), (5, 49)];

/// A leader log of 21 batches of varied sizes over epochs 0, 2 and 5 (epoch 3 became
/// leader and wrote nothing), several segments.
fn leader_log(dir: &Path, config: LogConfig) -> Log {
    let mut log = Log::open(dir, config, 0, NOW).unwrap();
    let mut ts = NOW;
    for (epoch, batches) in [(0, 7), (2, 5), (3, 0), (5, 9)] {
        log.assign_leader_epoch(epoch, log.log_end_offset())
            .unwrap();
        for i in 0..batches {
            ts += 1;
            let mut b = simple_batch(0, ts, 1 + (i * 3) % 7);
            log.append_with_epoch(&mut b, Some(epoch), ts).unwrap();
        }
    }
    log
}

/// Plays a replica fetcher: fetch from the follower's log end offset (sometimes from a
/// little earlier, so the response starts with batches it already has), cut the response
/// `extra` bytes after its first batch (usually mid-batch), append.
fn replicate(leader: &Log, follower: &mut Log, extra: usize) {
    let mut round = 0;
    while follower.log_end_offset() < leader.log_end_offset() {
        round += 1;
        assert!(round < 10_000, "no progress");
        let leo = follower.log_end_offset();
        let from = if round % 3 == 0 {
            (leo - 4).max(leader.log_start_offset())
        } else {
            leo
        };
        let data = leader.read(from, 1 << 20, true).unwrap().data;
        // Whole batches below the follower's end, then the first new batch, then `extra`.
        let mut cut = 0;
        let mut new = false;
        while cut < data.len() && !new {
            let h = BatchHeader::new(&data[cut..]).unwrap();
            cut += h.total_size().unwrap();
            new = h.last_offset() >= leo;
        }
        let cut = (cut + extra).min(data.len());
        let info = follower.append_as_follower(&data[..cut], NOW).unwrap();
        assert_eq!(info.first_offset, leo, "round {round}");
        assert_eq!(
            info.last_offset + 1,
            follower.log_end_offset(),
            "round {round}"
        );
        // Only a response that ends before the follower's end (its segment does) adds nothing.
        assert_eq!(info.record_count > 0, new, "round {round}");
    }
}

#[test]
fn a_follower_copy_is_byte_identical_whatever_the_fetch_sizes() {
    for extra in [0, 1, 11, 61, 62, 150, 700, 1 << 20] {
        let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = leader_log(l.path(), small_config(600));
        let mut follower = Log::open(f.path(), small_config(600), 0, NOW).unwrap();
        replicate(&leader, &mut follower, extra);

        assert_eq!(
            stored_bytes(f.path()),
            stored_bytes(l.path()),
            "extra {extra}"
        );
        assert_eq!(follower.log_end_offset(), leader.log_end_offset());
        assert_eq!(
            read_all(&follower, 0),
            read_all(&leader, 0),
            "extra {extra}"
        );
        assert!(follower.segment_count() > 1, "extra {extra}: rolled");
        // Epoch 3 wrote nothing: epoch 5, starting at the same offset, replaced it.
        assert_eq!(follower.leader_epochs(), EPOCHS);
        assert_eq!(leader.leader_epochs(), EPOCHS);

        // Indexes and epochs survive a reopen; full recovery finds nothing to repair.
        drop(follower);
        let reopened = Log::open(f.path(), small_config(600), 0, NOW).unwrap();
        assert!(
            reopened.recovery_report().repairs.is_empty(),
            "extra {extra}"
        );
        assert_eq!(reopened.leader_epochs(), EPOCHS);
        assert_eq!(read_all(&reopened, 0), read_all(&leader, 0));
    }
}

#[test]
fn follower_appends_honour_flush_messages_and_index_interval() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(l.path(), small_config(1 << 20));
    let config = LogConfig {
        flush_messages: Some(1),
        index_interval_bytes: 0,
        ..small_config(1 << 20)
    };
    let mut follower = Log::open(f.path(), config, 0, NOW).unwrap();
    let data = leader.read(0, 1 << 20, true).unwrap().data;
    follower.append_as_follower(&data, NOW).unwrap();
    assert_eq!(follower.recovery_point(), follower.log_end_offset());
    // An index entry for every batch after the first.
    let index = &segment_files(f.path(), "index")[0];
    assert_eq!(fs::metadata(index).unwrap().len(), 8 * (21 - 1));

    let lazy = tempfile::tempdir().unwrap();
    let mut follower = Log::open(lazy.path(), small_config(1 << 20), 0, NOW).unwrap();
    follower.append_as_follower(&data, NOW).unwrap();
    assert_eq!(
        follower.recovery_point(),
        0,
        "no flush.messages: not flushed"
    );
}

#[test]
fn truncate_then_reappend_converges() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(l.path(), small_config(600));
    let mut follower = Log::open(f.path(), small_config(600), 0, NOW).unwrap();
    replicate(&leader, &mut follower, 1 << 20);

    for target in [20, 15, 9, 7, 1] {
        let end = follower.truncate_to(target).unwrap();
        assert!(end <= target);
        assert!(
            follower
                .leader_epochs()
                .iter()
                .all(|&(_, start)| start < end.max(1)),
            "{target}: {:?}",
            follower.leader_epochs()
        );
        replicate(&leader, &mut follower, 100);
        assert_eq!(stored_bytes(f.path()), stored_bytes(l.path()), "{target}");
        assert_eq!(follower.leader_epochs(), EPOCHS, "{target}");
    }
    // Truncation below the log start empties the log and its epochs.
    follower.delete_records_before(10).unwrap();
    assert_eq!(follower.leader_epochs(), [(0, 10), (2, 28), (5, 49)]);
    follower.truncate_to(3).unwrap();
    assert_eq!(follower.leader_epochs(), []);
    assert_eq!(checkpoint(f.path()).unwrap(), "0\n0\n");
}

/// The follower wrote in an epoch the leader never saw: OffsetsForLeaderEpoch tells it
/// where to truncate, and the logs converge.
#[test]
fn a_diverged_follower_truncates_to_the_leaders_epoch_end() {
    let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = small_config(1 << 20);
    let mut leader = Log::open(l.path(), config.clone(), 0, NOW).unwrap();
    let mut follower = Log::open(f.path(), config.clone(), 0, NOW).unwrap();
    leader.assign_leader_epoch(0, 0).unwrap();
    for i in 0..5 {
        leader
            .append_with_epoch(&mut simple_batch(0, NOW + i, 10), Some(0), NOW)
            .unwrap();
    }
    replicate(&leader, &mut follower, 0);
    // The follower briefly led in epoch 1 and took writes nobody replicated...
    follower.assign_leader_epoch(1, 50).unwrap();
    for i in 0..3 {
        follower
            .append_with_epoch(&mut simple_batch(0, NOW + i, 4), Some(1), NOW)
            .unwrap();
    }
    // ...while the old leader went on in epoch 2.
    leader.assign_leader_epoch(2, 50).unwrap();
    for i in 0..3 {
        leader
            .append_with_epoch(&mut simple_batch(0, NOW + i, 7), Some(2), NOW)
            .unwrap();
    }
    assert_eq!(follower.leader_epochs(), [(0, 0), (1, 50)]);
    assert_eq!(leader.leader_epochs(), [(0, 0), (2, 50)]);

    let (epoch, end) = leader.end_offset_for_epoch(follower.latest_epoch().unwrap());
    assert_eq!((epoch, end), (0, 50));
    // The leader's batch 57..=63 straddles the follower's end, 62: refused, nothing written.
    // (Divergence that happens to end on a batch boundary goes unnoticed by offsets: that is
    // what the epochs are for.)
    assert_eq!(follower.log_end_offset(), 62);
    let data = leader.read(50, 1 << 20, true).unwrap().data;
    assert!(matches!(
        follower.append_as_follower(&data, NOW),
        Err(LogError::Rejected { .. })
    ));
    assert_eq!(follower.truncate_to(end).unwrap(), 50);
    assert_eq!(follower.leader_epochs(), [(0, 0)]);
    replicate(&leader, &mut follower, 0);
    assert_eq!(stored_bytes(f.path()), stored_bytes(l.path()));
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(follower.end_offset_for_epoch(2), (2, 71));
    assert_eq!(leader.end_offset_for_epoch(3), (-1, -1));
}

/// `n` records at `base`, stamped with `epoch`.
fn batch_at(base: i64, n: usize, epoch: i32) -> Vec<u8> {
    let mut b = simple_batch(base, NOW, n);
    batch::set_partition_leader_epoch(&mut b, epoch);
    b
}

fn follower_at_10() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(1 << 20), 0, NOW).unwrap();
    log.append_as_follower(&batch_at(0, 10, 0), NOW).unwrap();
    (dir, log)
}

#[test]
fn bad_input_is_refused_and_leaves_no_trace() {
    let corrupt = {
        let mut b = batch_at(12, 3, 0);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("overlap", batch_at(5, 10, 0)),
        (
            "the second batch overlaps the first",
            [batch_at(10, 2, 0), batch_at(11, 2, 0)].concat(),
        ),
        (
            "offsets go back",
            [batch_at(14, 2, 0), batch_at(10, 2, 0)].concat(),
        ),
        (
            "a known batch after new ones",
            [batch_at(10, 2, 0), batch_at(3, 2, 0)].concat(),
        ),
        ("crc", corrupt.clone()),
        (
            "crc after a good batch",
            [batch_at(10, 2, 0), corrupt].concat(),
        ),
        ("bad magic", {
            let mut b = batch_at(10, 1, 0);
            b[16] = 1;
            b
        }),
    ];
    for (name, data) in cases {
        let (dir, mut log) = follower_at_10();
        let before = (stored_bytes(dir.path()), log.leader_epochs());
        let err = log.append_as_follower(&data, NOW).unwrap_err();
        match name {
            "crc" | "crc after a good batch" | "bad magic" => {
                assert!(
                    matches!(err, LogError::InvalidRecords { .. }),
                    "{name}: {err}"
                )
            }
            _ => assert!(
                matches!(
                    err,
                    LogError::Rejected {
                        source: ValidationError::InvalidBatch { .. },
                        ..
                    }
                ),
                "{name}: {err}"
            ),
        }
        assert_eq!(log.log_end_offset(), 10, "{name}");
        assert_eq!(
            (stored_bytes(dir.path()), log.leader_epochs()),
            before,
            "{name}"
        );
    }
}

#[test]
fn known_partial_and_empty_input_write_nothing() {
    let (dir, mut log) = follower_at_10();
    let before = stored_bytes(dir.path());
    let partial = batch_at(10, 5, 1);
    for (name, data) in [
        ("empty", vec![]),
        ("known", batch_at(0, 10, 0)),
        ("partial", partial[..partial.len() - 1].to_vec()),
        ("a partial header", partial[..20].to_vec()),
        (
            "known then partial",
            [batch_at(0, 10, 0), partial[..70].to_vec()].concat(),
        ),
    ] {
        let info = log.append_as_follower(&data, NOW).unwrap();
        assert_eq!(
            (
                info.first_offset,
                info.last_offset,
                info.record_count,
                info.bytes
            ),
            (10, 9, 0, 0),
            "{name}"
        );
        assert_eq!(stored_bytes(dir.path()), before, "{name}");
        assert_eq!(
            log.leader_epochs(),
            [(0, 0)],
            "{name}: a partial batch's epoch is not taken"
        );
    }
}

#[test]
fn the_epoch_cache_follows_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(1 << 20), 0, NOW).unwrap();
    let data = [
        batch_at(0, 2, -1), // no epoch (an old producer's batch, before epochs)
        batch_at(2, 2, 0),
        batch_at(4, 2, 0),
        batch_at(6, 3, 3),
        batch_at(20, 1, 3), // compaction gap: offsets kept
        batch_at(21, 4, 7),
    ]
    .concat();
    let info = log.append_as_follower(&data, NOW).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 24, 14)
    );
    assert_eq!(info.bytes, data.len() as u64);
    assert_eq!(log.log_end_offset(), 25);
    assert_eq!(log.leader_epochs(), [(0, 2), (3, 6), (7, 21)]);
    assert_eq!(checkpoint(dir.path()).unwrap(), "0\n3\n0 2\n3 6\n7 21\n");
    assert_eq!(log.end_offset_for_epoch(0), (0, 6));
    assert_eq!(log.end_offset_for_epoch(5), (3, 21));
    assert_eq!(log.end_offset_for_epoch(7), (7, 25));
    // The gap reads as Kafka's: the batch holding offset 10 is the next one, at 20.
    let r = log.read(10, 1 << 20, true).unwrap();
    assert_eq!(r.first_batch_offset, Some(20));

    // A batch stamped with an older epoch (cannot come from a sane leader) changes nothing.
    log.append_as_follower(&batch_at(25, 1, 3), NOW).unwrap();
    assert_eq!(log.leader_epochs(), [(0, 2), (3, 6), (7, 21)]);
}

#[test]
fn an_offset_jump_beyond_a_segments_span_starts_a_segment_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(1 << 20), 0, NOW).unwrap();
    let far = 5_000_000_000;
    // The first batch is already past what a segment based at 0 can index.
    log.append_as_follower(&batch_at(far, 2, 0), NOW).unwrap();
    assert_eq!(log.segment_base_offsets(), [far]);
    let farther = far + 3_000_000_000;
    let data = [batch_at(far + 2, 1, 0), batch_at(farther, 1, 1)].concat();
    log.append_as_follower(&data, NOW).unwrap();
    assert_eq!(log.segment_base_offsets(), [far, farther]);
    assert_eq!(log.log_end_offset(), farther + 1);
    drop(log);
    let log = Log::open(dir.path(), small_config(1 << 20), 0, NOW).unwrap();
    assert!(log.recovery_report().repairs.is_empty());
    assert_eq!(log.leader_epochs(), [(0, far), (1, farther)]);
    assert_eq!(
        read_all(&log, far)
            .iter()
            .map(|r| r.offset)
            .collect::<Vec<_>>(),
        [far, far + 1, far + 2, farther]
    );
}

#[test]
fn the_epoch_checkpoint_tracks_log_start_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(1),
        ..small_config(600)
    };
    let mut log = leader_log(dir.path(), config);
    assert_eq!(checkpoint(dir.path()).unwrap(), "0\n3\n0 0\n2 28\n5 49\n");
    log.delete_records_before(3).unwrap();
    assert_eq!(log.leader_epochs(), [(0, 3), (2, 28), (5, 49)]);
    // Retention leaves only the active segment.
    assert!(log.apply_retention(NOW).unwrap() > 0);
    let start = log.log_start_offset();
    assert!(start > 49, "{start}");
    assert_eq!(log.leader_epochs(), [(5, start)]);
    assert_eq!(
        checkpoint(dir.path()).unwrap(),
        format!("0\n1\n5 {start}\n")
    );
    // A stale epoch is ignored; a start offset past the log end is refused.
    log.assign_leader_epoch(4, log.log_end_offset()).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));
    assert!(matches!(
        log.assign_leader_epoch(9, log.log_end_offset() + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn a_missing_or_corrupt_checkpoint_is_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(600);
    let log = leader_log(dir.path(), config.clone());
    drop(log);
    let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
    for (name, contents) in [
        ("missing", None),
        ("garbage", Some("junk\n")),
        ("count mismatch", Some("0\n3\n0 0\n")),
        ("not monotonic", Some("0\n2\n2 7\n0 0\n")),
    ] {
        match contents {
            None => fs::remove_file(&path).unwrap(),
            Some(text) => fs::write(&path, text).unwrap(),
        }
        let log = Log::open_clean(dir.path(), config.clone(), NOW).unwrap();
        assert_eq!(log.leader_epochs(), EPOCHS, "{name}");
        let rebuilt_repair = log
            .recovery_report()
            .repairs
            .iter()
            .any(|r| matches!(r, Repair::RebuiltLeaderEpochCache { .. }));
        assert_eq!(rebuilt_repair, contents.is_some(), "{name}");
        assert_eq!(
            checkpoint(dir.path()).unwrap(),
            "0\n3\n0 0\n2 28\n5 49\n",
            "{name}: rewritten"
        );
    }

    // A log with batches but none stamped: the rebuilt (empty) cache is written, so the
    // next open reads it instead of walking the log again.
    let plain = tempfile::tempdir().unwrap();
    let mut log = Log::open(plain.path(), config.clone(), 0, NOW).unwrap();
    log.append(&mut simple_batch(0, NOW, 3), NOW).unwrap();
    assert_eq!(checkpoint(plain.path()), None);
    drop(log);
    let log = Log::open(plain.path(), config.clone(), 0, NOW).unwrap();
    assert_eq!(log.leader_epochs(), []);
    assert_eq!(checkpoint(plain.path()).unwrap(), "0\n0\n");

    // An empty new log writes no file.
    let fresh = tempfile::tempdir().unwrap();
    drop(Log::open(fresh.path(), config, 0, NOW).unwrap());
    assert_eq!(checkpoint(fresh.path()), None);
}

#[test]
fn recovery_trims_epochs_past_the_recovered_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(1 << 20);
    let mut log = Log::open(dir.path(), config.clone(), 0, NOW).unwrap();
    log.append_with_epoch(&mut simple_batch(0, NOW, 5), Some(0), NOW)
        .unwrap();
    log.append_with_epoch(&mut simple_batch(0, NOW, 5), Some(4), NOW)
        .unwrap();
    assert_eq!(log.leader_epochs(), [(0, 0), (4, 5)]);
    drop(log);
    // Tear the second batch: recovery cuts it, and the epoch that wrote it goes too.
    let seg = &segment_files(dir.path(), "log")[0];
    let len = fs::metadata(seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let log = Log::open(dir.path(), config, 0, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.leader_epochs(), [(0, 0)]);
    assert_eq!(checkpoint(dir.path()).unwrap(), "0\n1\n0 0\n");
}
