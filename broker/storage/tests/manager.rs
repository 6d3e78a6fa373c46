//! `LogManager`: layout, lock, checkpoints, clean shutdown, retention ticks.

mod common;

use std::fs;

use common::{append, read_all, small_config};
use ironlog_storage::{LogConfig, LogManager, LogManagerError, TopicPartition};

#[test]
fn directory_names_parse_from_the_last_dash() {
    let tp = TopicPartition::from_dir_name("my.topic-with_dashes-12").unwrap();
    assert_eq!(tp, TopicPartition::new("my.topic-with_dashes", 12));
    assert_eq!(tp.to_string(), "my.topic-with_dashes-12");
    assert!(TopicPartition::from_dir_name("nodash").is_none());
    assert!(TopicPartition::from_dir_name("t-x").is_none());
    assert!(TopicPartition::from_dir_name("bad/name-1").is_none());
}

#[test]
fn lifecycle_checkpoint_and_clean_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    {
        let mgr = LogManager::open(data, LogConfig::default(), 0).unwrap();
        assert!(!mgr.had_clean_shutdown());
        for (topic, p) in [("orders.v1", 0), ("orders.v1", 1), ("a-b_c", 3)] {
            let h = mgr.create_log(topic, p, LogConfig::default(), 0).unwrap();
            let mut log = h.write().unwrap();
            append(&mut log, 2 + p as usize, 0);
        }
        assert!(matches!(
            mgr.create_log("orders.v1", 0, LogConfig::default(), 0),
            Err(LogManagerError::AlreadyExists { .. })
        ));
        assert!(matches!(
            mgr.create_log("bad topic", 0, LogConfig::default(), 0),
            Err(LogManagerError::InvalidTopicPartition { .. })
        ));
        // A second manager cannot open the same directory.
        assert!(matches!(
            LogManager::open(data, LogConfig::default(), 0),
            Err(LogManagerError::Locked { .. })
        ));
        mgr.shutdown().unwrap();
        assert!(data.join(".clean-shutdown").exists());
        let cp = fs::read_to_string(data.join("recovery-point-offset-checkpoint")).unwrap();
        assert_eq!(cp, "0\n3\na-b_c 3 5\norders.v1 0 2\norders.v1 1 3\n");
    }
    let mgr = LogManager::open(data, LogConfig::default(), 0).unwrap();
    assert!(mgr.had_clean_shutdown());
    assert!(
        !data.join(".clean-shutdown").exists(),
        "marker removed on open"
    );
    let names: Vec<String> = mgr.logs().iter().map(|(tp, _)| tp.to_string()).collect();
    assert_eq!(names, vec!["a-b_c-3", "orders.v1-0", "orders.v1-1"]);
    let h = mgr.get("a-b_c", 3).unwrap();
    assert_eq!(h.read().unwrap().log_end_offset(), 5);
    assert_eq!(h.read().unwrap().recovery_report().segments_validated, 0);
    assert!(mgr.get("a-b_c", 4).is_none());

    mgr.delete_log("orders.v1", 1).unwrap();
    assert!(!data.join("orders.v1-1").exists());
    assert!(mgr.get("orders.v1", 1).is_none());
    assert!(matches!(
        mgr.delete_log("orders.v1", 1),
        Err(LogManagerError::UnknownPartition { .. })
    ));
}

#[test]
fn unclean_restart_validates_from_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    {
        let mgr = LogManager::open(data, LogConfig::default(), 0).unwrap();
        let h = mgr.create_log("t", 0, small_config(400), 0).unwrap();
        let mut log = h.write().unwrap();
        for _ in 0..12 {
            append(&mut log, 3, 0);
        }
        drop(log);
        mgr.checkpoint_recovery_points().unwrap();
        // Dropped without shutdown(): no marker.
    }
    let mgr = LogManager::open(data, small_config(400), 0).unwrap();
    assert!(!mgr.had_clean_shutdown());
    let h = mgr.get("t", 0).unwrap();
    let log = h.read().unwrap();
    assert_eq!(log.log_end_offset(), 36);
    assert!(log.segment_count() >= 3);
    // Only segments at/after the checkpointed recovery point were CRC-checked.
    assert_eq!(log.recovery_report().segments_validated, 1);
    assert_eq!(read_all(&log, 0).len(), 36);
}

#[test]
fn tick_runs_retention_and_flush_ms() {
    let tmp = tempfile::tempdir().unwrap();
    let mgr = LogManager::open(tmp.path(), LogConfig::default(), 0).unwrap();
    let mut cfg = small_config(300);
    cfg.retention_ms = Some(1_000);
    cfg.flush_ms = Some(100);
    let h = mgr.create_log("t", 0, cfg, 0).unwrap();
    {
        let mut log = h.write().unwrap();
        for i in 0..10 {
            append(&mut log, 3, i);
        }
        assert!(log.recovery_point() < log.log_end_offset());
    }
    let deleted = mgr.tick(10_000).unwrap();
    let log = h.read().unwrap();
    assert!(deleted >= 2);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        log.recovery_point(),
        log.log_end_offset(),
        "flush.ms flushed"
    );
    let cp = fs::read_to_string(tmp.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(cp, "0\n1\nt 0 30\n");
}
