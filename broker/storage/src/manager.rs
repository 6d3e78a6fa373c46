//! `LogManager`: every partition log in one data directory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use thiserror::Error;
use tracing::{info, warn};

use crate::checkpoint::OffsetCheckpoint;
use crate::config::LogConfig;
use crate::log::{write_atomically, Log, LogError};

/// Kafka-style checkpoint of each partition's recovery point.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Written by a clean shutdown, removed on open.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".clean-shutdown";
/// The metadata quorum's Raft log lives beside the partition logs under KRaft's name; it
/// is not a partition log and the log manager leaves it alone.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// Held with an exclusive flock while a `LogManager` owns the directory.
pub const LOCK_FILE: &str = ".lock";

/// A topic name and partition number; its `Display` is the directory name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses `<topic>-<partition>`, splitting at the LAST '-' (topic names may contain '-').
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok()?;
        (partition >= 0 && valid_topic_name(topic)).then(|| TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka's rule: 1..=249 chars of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Errors of the data-directory layer.
#[derive(Debug, Error)]
pub enum LogManagerError {
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        op: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("data directory {} is locked by another process (is another broker running on it?)", dir.display())]
    Locked { dir: PathBuf },
    #[error("partition {tp}: {source}")]
    Log {
        tp: TopicPartition,
        #[source]
        source: LogError,
    },
    #[error("log for {tp} already exists")]
    AlreadyExists { tp: TopicPartition },
    #[error("no log for {tp}")]
    UnknownPartition { tp: TopicPartition },
    #[error("invalid topic partition {topic:?}/{partition}: topic must be 1-249 chars of [a-zA-Z0-9._-] and partition >= 0")]
    InvalidTopicPartition { topic: String, partition: i32 },
    #[error("{} line {line}: {reason}", path.display())]
    BadCheckpoint {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

pub(crate) fn io_err(op: &str, path: &Path) -> impl FnOnce(io::Error) -> LogManagerError {
    let op = op.to_string();
    let path = path.to_path_buf();
    move |source| LogManagerError::Io { op, path, source }
}

/// A shared handle to one log. `RwLock` because reads (`Log::read` takes
/// `&self`) run concurrently from many fetches while appends need exclusive
/// access; std's lock suffices since nothing here awaits while holding it.
pub type LogHandle = Arc<RwLock<Log>>;

/// All logs of one data directory. Methods take `&self` so the server can
/// share it behind an `Arc`.
#[derive(Debug)]
pub struct LogManager {
    data_dir: PathBuf,
    default_config: LogConfig,
    logs: RwLock<BTreeMap<TopicPartition, LogHandle>>,
    /// Holds the flock for as long as the manager lives.
    _lock: File,
    had_clean_shutdown: bool,
    /// The recovery-point checkpoint as last written: an unchanged one is not rewritten
    /// (each write is an fsync, and the periodic tick runs every second).
    recovery_points: OffsetCheckpoint,
}

fn poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    // A panic while holding a lock leaves the data structures usable (every
    // mutation is completed or a no-op); keep serving rather than cascade.
    e.into_inner()
}

impl LogManager {
    /// Locks `data_dir`, reads the recovery-point checkpoint and the clean
    /// shutdown marker, and opens every `<topic>-<partition>` directory with
    /// `default_config` (the server applies per-topic overrides with
    /// `Log::set_config` afterwards).
    ///
    /// # Errors
    /// [`LogManagerError::Locked`] if another process holds the directory;
    /// I/O and checkpoint errors; a log that fails to open.
    pub fn open(
        data_dir: &Path,
        default_config: LogConfig,
        now_ms: i64,
    ) -> Result<LogManager, LogManagerError> {
        fs::create_dir_all(data_dir).map_err(io_err("creating data directory", data_dir))?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(io_err("creating lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LogManagerError::Locked {
                    dir: data_dir.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => {
                return Err(io_err("locking data directory", &lock_path)(e))
            }
        }
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        let recovery_points = OffsetCheckpoint::new(data_dir.join(RECOVERY_POINT_CHECKPOINT));
        let checkpoints = match recovery_points.read() {
            Ok(c) => c,
            Err(e @ LogManagerError::BadCheckpoint { .. }) => {
                // Losing recovery points only costs time: every log is validated from offset 0.
                warn!(error = %e, "ignoring unreadable recovery point checkpoint; validating all logs fully");
                BTreeMap::new()
            }
            Err(e) => return Err(e),
        };
        let mut logs = BTreeMap::new();
        for entry in fs::read_dir(data_dir).map_err(io_err("listing data directory", data_dir))? {
            let entry = entry.map_err(io_err("listing data directory", data_dir))?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == METADATA_LOG_DIR {
                continue;
            }
            let Some(tp) = TopicPartition::from_dir_name(&name) else {
                warn!(dir = %entry.path().display(), "ignoring directory that is not <topic>-<partition>");
                continue;
            };
            let dir = entry.path();
            let result = if clean {
                Log::open_clean(&dir, default_config.clone(), now_ms)
            } else {
                let rp = checkpoints.get(&tp).copied().unwrap_or(0);
                Log::open(&dir, default_config.clone(), rp, now_ms)
            };
            let log = result.map_err(|source| LogManagerError::Log {
                tp: tp.clone(),
                source,
            })?;
            logs.insert(tp, Arc::new(RwLock::new(log)));
        }
        if clean {
            fs::remove_file(&marker).map_err(io_err("removing clean shutdown marker", &marker))?;
            sync_dir(data_dir)?;
        }
        info!(dir = %data_dir.display(), logs = logs.len(), clean_shutdown = clean, "log manager opened");
        let manager = LogManager {
            data_dir: data_dir.to_path_buf(),
            default_config,
            logs: RwLock::new(logs),
            _lock: lock,
            had_clean_shutdown: clean,
            recovery_points,
        };
        manager.checkpoint_recovery_points()?;
        Ok(manager)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    /// Whether the previous run ended with [`LogManager::shutdown`].
    pub fn had_clean_shutdown(&self) -> bool {
        self.had_clean_shutdown
    }

    /// Creates the directory and an empty log for a new partition. The new directory is
    /// durable when this returns (the data directory is fsynced after it is created).
    ///
    /// # Errors
    /// Invalid names, an existing log, or I/O errors.
    pub fn create_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<LogHandle, LogManagerError> {
        if !valid_topic_name(topic) || partition < 0 {
            return Err(LogManagerError::InvalidTopicPartition {
                topic: topic.to_string(),
                partition,
            });
        }
        let tp = TopicPartition::new(topic, partition);
        let mut logs = self.logs.write().unwrap_or_else(poisoned);
        if logs.contains_key(&tp) {
            return Err(LogManagerError::AlreadyExists { tp });
        }
        let dir = self.data_dir.join(tp.to_string());
        let log = Log::open(&dir, config, 0, now_ms).map_err(|source| LogManagerError::Log {
            tp: tp.clone(),
            source,
        })?;
        sync_dir(&self.data_dir)?;
        let handle = Arc::new(RwLock::new(log));
        logs.insert(tp, handle.clone());
        Ok(handle)
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<LogHandle> {
        let logs = self.logs.read().unwrap_or_else(poisoned);
        logs.get(&TopicPartition::new(topic, partition)).cloned()
    }

    /// All partitions with a log, sorted.
    pub fn logs(&self) -> Vec<(TopicPartition, LogHandle)> {
        let logs = self.logs.read().unwrap_or_else(poisoned);
        logs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Forgets the log and removes its directory. Handles still held elsewhere
    /// keep working on the unlinked files until dropped.
    ///
    /// # Errors
    /// [`LogManagerError::UnknownPartition`] or I/O errors.
    pub fn delete_log(&self, topic: &str, partition: i32) -> Result<(), LogManagerError> {
        let tp = TopicPartition::new(topic, partition);
        let removed = self.logs.write().unwrap_or_else(poisoned).remove(&tp);
        if removed.is_none() {
            return Err(LogManagerError::UnknownPartition { tp });
        }
        let dir = self.data_dir.join(tp.to_string());
        fs::remove_dir_all(&dir).map_err(io_err("deleting partition directory", &dir))?;
        sync_dir(&self.data_dir)?;
        self.checkpoint_recovery_points()
    }

    /// Closes a partition's log and renames its directory `<topic>-<partition>.<id>-stray`
    /// (Kafka's name for such logs), which the manager never opens again: the records stay
    /// on disk for an operator to inspect or restore. Returns the new path.
    ///
    /// # Errors
    /// [`LogManagerError::UnknownPartition`]; I/O errors renaming.
    pub fn detach_log(&self, topic: &str, partition: i32) -> Result<PathBuf, LogManagerError> {
        let tp = TopicPartition::new(topic, partition);
        let removed = self.logs.write().unwrap_or_else(poisoned).remove(&tp);
        if removed.is_none() {
            return Err(LogManagerError::UnknownPartition { tp });
        }
        let dir = self.data_dir.join(tp.to_string());
        let id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let stray = self.data_dir.join(format!("{tp}.{id:x}-stray"));
        fs::rename(&dir, &stray).map_err(io_err("renaming stray partition directory", &dir))?;
        sync_dir(&self.data_dir)?;
        self.checkpoint_recovery_points()?;
        Ok(stray)
    }

    /// Writes every log's recovery point to `recovery-point-offset-checkpoint`
    /// (temp file, fsync, rename, directory fsync).
    ///
    /// # Errors
    /// I/O errors writing the file.
    pub fn checkpoint_recovery_points(&self) -> Result<(), LogManagerError> {
        let entries = self.logs().into_iter().map(|(tp, h)| {
            let rp = h.read().unwrap_or_else(poisoned).recovery_point();
            (tp, rp)
        });
        self.recovery_points.write(entries)
    }

    /// Periodic work: retention and `flush.ms` for every log, then a
    /// recovery-point checkpoint. Returns the number of segments deleted.
    /// A failing log is logged and skipped so one bad disk file does not stop
    /// retention elsewhere; the first error is returned after all logs ran.
    ///
    /// # Errors
    /// The first error met.
    pub fn tick(&self, now_ms: i64) -> Result<usize, LogManagerError> {
        let mut deleted = 0;
        let mut first_err = None;
        for (tp, handle) in self.logs() {
            let mut log = handle.write().unwrap_or_else(poisoned);
            let r = log
                .apply_retention(now_ms)
                .and_then(|n| log.maybe_flush(now_ms).map(|_| n));
            match r {
                Ok(n) => deleted += n,
                Err(source) => {
                    warn!(partition = %tp, error = %source, "periodic log maintenance failed");
                    first_err.get_or_insert(LogManagerError::Log { tp, source });
                }
            }
        }
        self.checkpoint_recovery_points()?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Flushes every log, checkpoints recovery points and writes the clean
    /// shutdown marker. Call once, after producers have stopped: an append
    /// after this makes the marker a lie.
    ///
    /// # Errors
    /// Any flush or write error; the marker is then not written, so the next
    /// open runs recovery.
    pub fn shutdown(&self) -> Result<(), LogManagerError> {
        for (tp, handle) in self.logs() {
            handle
                .write()
                .unwrap_or_else(poisoned)
                .flush()
                .map_err(|source| LogManagerError::Log { tp, source })?;
        }
        self.checkpoint_recovery_points()?;
        let marker = self.data_dir.join(CLEAN_SHUTDOWN_MARKER);
        write_atomically(&marker, b"").map_err(io_err("writing clean shutdown marker", &marker))?;
        info!(dir = %self.data_dir.display(), "log manager shut down cleanly");
        Ok(())
    }
}

/// Fsyncs the data directory, so that entries created, renamed or removed in it survive a
/// crash.
fn sync_dir(data_dir: &Path) -> Result<(), LogManagerError> {
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing data directory", data_dir))
}
