//! The Raft log on disk: `raft.log` (framed entries), `purged.json`, `vote.json`,
//! `committed.json`. The format is described in the crate docs.
//!
//! The metadata log is small (commands are rare, and openraft purges what a snapshot covers),
//! so every entry is also held in memory, and `truncate`/`purge` rewrite the whole file
//! atomically instead of editing it in place.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogId, RaftLogReader, StorageIOError};
use tokio::sync::Mutex;

use crate::error::QuorumError;
use crate::fs::{blocking, read_json, write_atomically, write_json};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

pub(crate) const LOG_FILE: &str = "raft.log";
const PURGED_FILE: &str = "purged.json";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";

/// An entry larger than this is refused when written and treated as corruption when read.
pub(crate) const MAX_ENTRY_BYTES: usize = 64 * 1024 * 1024;
/// `u32` length + `u32` CRC-32C.
const FRAME_HEADER: usize = 8;

/// The last committed log index, shared with [`crate::Quorum::status`] (openraft's metrics
/// do not carry it). Stored as index + 1; 0 means nothing committed.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitIndex(Arc<AtomicU64>);

impl CommitIndex {
    pub(crate) fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Acquire).checked_sub(1)
    }

    fn set(&self, committed: Option<&LogId>) {
        let v = committed.map_or(0, |c| c.index + 1);
        self.0.store(v, Ordering::Release);
    }
}

/// openraft's log store (and, cloned, its log reader). Clones share one state.
#[derive(Clone)]
pub(crate) struct LogStore {
    // A tokio mutex: held across the writes, which run on the blocking pool.
    inner: Arc<Mutex<LogFiles>>,
    commit_index: CommitIndex,
}

struct LogFiles {
    dir: PathBuf,
    /// `raft.log`, opened for appending.
    file: File,
    /// Every entry after `last_purged`, by index.
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`. A torn or corrupt tail of `raft.log` is cut off
    /// with a warning: it can only hold entries whose append was never acknowledged.
    pub(crate) fn open(dir: &Path, commit_index: CommitIndex) -> Result<LogStore, QuorumError> {
        std::fs::create_dir_all(dir).map_err(QuorumError::io("creating", dir))?;
        let state = |name: &str| dir.join(name);
        let vote: Option<Vote> =
            read_json(&state(VOTE_FILE)).map_err(QuorumError::io("reading", state(VOTE_FILE)))?;
        let committed: Option<LogId> = read_json(&state(COMMITTED_FILE))
            .map_err(QuorumError::io("reading", state(COMMITTED_FILE)))?;
        let last_purged: Option<LogId> = read_json(&state(PURGED_FILE))
            .map_err(QuorumError::io("reading", state(PURGED_FILE)))?;

        let path = state(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(QuorumError::io("opening", &path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(QuorumError::io("reading", &path))?;
        let decoded = decode_frames(&bytes);
        if let Some(problem) = &decoded.problem {
            tracing::warn!(
                file = %path.display(),
                valid_bytes = decoded.valid_len,
                dropped_bytes = bytes.len() - decoded.valid_len,
                "cutting off the metadata log's tail: {problem}; the entries it held were never \
                 acknowledged, or are replicated from the leader again"
            );
            file.set_len(decoded.valid_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(QuorumError::io("truncating", &path))?;
        }
        let mut entries = BTreeMap::new();
        for entry in decoded.entries {
            // A later frame for the same index replaces an earlier one (appends after a
            // truncate are rewritten anyway; this only makes replay order-proof).
            entries.insert(entry.log_id.index, entry);
        }
        if let Some(purged) = &last_purged {
            // A crash between writing purged.json and rewriting raft.log leaves purged
            // entries behind.
            entries = entries.split_off(&(purged.index + 1));
        }
        commit_index.set(committed.as_ref());
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogFiles {
                dir: dir.to_path_buf(),
                file,
                entries,
                last_purged,
                vote,
                committed,
            })),
            commit_index,
        })
    }
}

/// What a scan of `raft.log` found.
struct Decoded {
    entries: Vec<Entry>,
    /// Bytes up to the end of the last good frame.
    valid_len: usize,
    /// Why the scan stopped before the end of the file.
    problem: Option<String>,
}

fn encode_frame(out: &mut Vec<u8>, entry: &Entry) -> io::Result<()> {
    let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
    if payload.len() > MAX_ENTRY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "log entry {} is {} bytes, the limit is {MAX_ENTRY_BYTES}",
                entry.log_id,
                payload.len()
            ),
        ));
    }
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

fn decode_frames(bytes: &[u8]) -> Decoded {
    let mut entries = Vec::new();
    let mut pos = 0;
    let problem = loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < FRAME_HEADER {
            break Some(format!("a torn frame header at byte {pos}"));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_ENTRY_BYTES {
            break Some(format!("a frame length of {len} bytes at byte {pos}"));
        }
        let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            break Some(format!("a torn frame at byte {pos}"));
        };
        if crc32c::crc32c(payload) != crc {
            break Some(format!("a CRC mismatch at byte {pos}"));
        }
        match serde_json::from_slice::<Entry>(payload) {
            Ok(entry) => entries.push(entry),
            Err(e) => break Some(format!("an undecodable entry at byte {pos}: {e}")),
        }
        pos += FRAME_HEADER + len;
    };
    Decoded {
        entries,
        valid_len: pos,
        problem,
    }
}

fn write_err(e: &io::Error) -> StorageError {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

impl LogFiles {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Replaces `raft.log` with exactly the entries in memory.
    async fn rewrite(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        for entry in self.entries.values() {
            encode_frame(&mut buf, entry)?;
        }
        let path = self.path(LOG_FILE);
        self.file = blocking(move || {
            write_atomically(&path, &buf)?;
            OpenOptions::new().append(true).open(&path)
        })
        .await?;
        Ok(())
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|e| *e.get_log_id())
            .or(self.last_purged)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let inner = self.inner.lock().await;
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.inner.lock().await;
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut inner = self.inner.lock().await;
        write_json(inner.path(VOTE_FILE), vote)
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::new(&e))))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.inner.lock().await.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut inner = self.inner.lock().await;
        if inner.committed == committed {
            return Ok(());
        }
        write_json(inner.path(COMMITTED_FILE), &committed)
            .await
            .map_err(|e| write_err(&e))?;
        inner.committed = committed;
        self.commit_index.set(committed.as_ref());
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.lock().await.committed)
    }

    /// Writes and fsyncs the entries, then reports them flushed.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.inner.lock().await;
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut buf = Vec::new();
        for entry in &entries {
            encode_frame(&mut buf, entry).map_err(|e| write_err(&e))?;
        }
        // The clone shares the file offset and O_APPEND; we hold the lock, so no one else writes.
        let written = match inner.file.try_clone() {
            Ok(mut file) => {
                blocking(move || {
                    file.write_all(&buf)?;
                    file.sync_data()
                })
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // The file's tail is now unknown: openraft stops this node (a fatal storage
            // error), and the next open cuts the torn frame off.
            callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(write_err(&e));
        }
        for entry in entries {
            inner.entries.insert(entry.log_id.index, entry);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut inner = self.inner.lock().await;
        let removed = inner.entries.split_off(&log_id.index);
        if removed.is_empty() {
            return Ok(());
        }
        tracing::debug!(since = %log_id, count = removed.len(), "truncating the metadata log");
        inner.rewrite().await.map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut inner = self.inner.lock().await;
        // purged.json first: if we crash before the rewrite, open() drops the purged entries.
        write_json(inner.path(PURGED_FILE), &log_id)
            .await
            .map_err(|e| write_err(&e))?;
        inner.last_purged = Some(log_id);
        let kept = inner.entries.split_off(&(log_id.index + 1));
        inner.entries = kept;
        inner.rewrite().await.map_err(|e| write_err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

    async fn indexes_and_terms(store: &mut LogStore) -> Vec<(u64, u64)> {
        let entries = store.try_get_log_entries(..).await.unwrap();
        entries
            .iter()
            .map(|e| (e.log_id.index, e.log_id.leader_id.term))
            .collect()
    }

    #[tokio::test]
    async fn truncate_purge_vote_and_commit_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), CommitIndex::default()).unwrap();
        store
            .blocking_append((0..10).map(|i| blank(1, i)))
            .await
            .unwrap();
        // A new leader overwrites the tail from index 7 ...
        store.truncate(blank(1, 7).log_id).await.unwrap();
        store
            .blocking_append((7..9).map(|i| blank(2, i)))
            .await
            .unwrap();
        // ... and a snapshot covers the head up to 3.
        store.purge(blank(1, 3).log_id).await.unwrap();
        let vote = Vote::new_committed(2, 1);
        store.save_vote(&vote).await.unwrap();
        store
            .save_committed(Some(blank(2, 8).log_id))
            .await
            .unwrap();
        let before = indexes_and_terms(&mut store).await;
        let expected: Vec<(u64, u64)> = (4..7)
            .map(|i| (i, 1))
            .chain((7..9).map(|i| (i, 2)))
            .collect();
        assert_eq!(before, expected);
        drop(store);

        let commit_index = CommitIndex::default();
        let mut store = LogStore::open(dir.path(), commit_index.clone()).unwrap();
        assert_eq!(indexes_and_terms(&mut store).await, expected);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(blank(1, 3).log_id));
        assert_eq!(state.last_log_id, Some(blank(2, 8).log_id));
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        assert_eq!(
            store.read_committed().await.unwrap(),
            Some(blank(2, 8).log_id)
        );
        assert_eq!(commit_index.get(), Some(8));
    }

    #[tokio::test]
    async fn entries_left_behind_by_a_crash_during_purge_are_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), CommitIndex::default()).unwrap();
        store
            .blocking_append((0..5).map(|i| blank(1, i)))
            .await
            .unwrap();
        drop(store);
        // purged.json written, raft.log not rewritten yet.
        write_json(dir.path().join(PURGED_FILE), &blank(1, 2).log_id)
            .await
            .unwrap();
        let mut store = LogStore::open(dir.path(), CommitIndex::default()).unwrap();
        assert_eq!(indexes_and_terms(&mut store).await, vec![(3, 1), (4, 1)]);
    }

    fn blank(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 0), index),
            payload: EntryPayload::Blank,
        }
    }

    #[test]
    fn frames_round_trip_and_a_torn_or_corrupt_tail_is_reported() {
        let mut buf = Vec::new();
        for i in 0..3 {
            encode_frame(&mut buf, &blank(1, i)).unwrap();
        }
        let whole = decode_frames(&buf);
        assert!(whole.problem.is_none());
        assert_eq!(whole.valid_len, buf.len());
        let indexes: Vec<u64> = whole.entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, vec![0, 1, 2]);

        let torn = decode_frames(&buf[..buf.len() - 3]);
        assert_eq!(torn.entries.len(), 2);
        assert!(torn.problem.unwrap().contains("torn"));

        let mut corrupt = buf.clone();
        let last = corrupt.len() - 2;
        corrupt[last] ^= 0xff;
        let decoded = decode_frames(&corrupt);
        assert_eq!(decoded.entries.len(), 2);
        assert!(decoded.problem.unwrap().contains("CRC"));

        let mut huge = buf.clone();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        let decoded = decode_frames(&huge);
        assert_eq!(decoded.entries.len(), 3);
        assert_eq!(decoded.valid_len, buf.len());
    }
}
