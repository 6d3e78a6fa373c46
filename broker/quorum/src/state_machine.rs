//! The state machine: the [`MetadataImage`] in memory, plus what openraft needs to know
//! about it (last applied log id, last membership) and the latest snapshot, kept in
//! `snapshot.json`.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironlog_metadata::{CommandResult, MetadataImage};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::error::QuorumError;
use crate::fs::{read_json, write_json};
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.json";

/// `snapshot.json`. The snapshot data sent to followers is the image alone; the metadata
/// travels beside it.
#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    image: MetadataImage,
}

/// [`SnapshotFile`] as written, borrowing the image instead of copying it.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a SnapshotMeta,
    image: &'a MetadataImage,
}

/// openraft's state machine (and, cloned, its snapshot builder). Clones share one state.
#[derive(Clone)]
pub(crate) struct StateMachineStore {
    dir: PathBuf,
    state: Arc<Mutex<SmState>>,
    images: Arc<watch::Sender<Arc<MetadataImage>>>,
}

struct SmState {
    /// Shared with the watchers; `Arc::make_mut` copies it only while a reader holds it.
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshot: Option<StoredSnapshot>,
    /// Tells apart snapshots built at the same log id.
    built: u64,
}

#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StateMachineStore {
    /// Loads `snapshot.json` if there is one (otherwise the state machine starts empty and
    /// openraft re-applies the log), and publishes the image on `images`.
    pub(crate) fn open(
        dir: &Path,
        images: Arc<watch::Sender<Arc<MetadataImage>>>,
    ) -> Result<StateMachineStore, QuorumError> {
        let path = dir.join(SNAPSHOT_FILE);
        let file: Option<SnapshotFile> =
            read_json(&path).map_err(QuorumError::io("reading the metadata snapshot", &path))?;
        let state = match file {
            Some(SnapshotFile { meta, image }) => {
                let data = serde_json::to_vec(&image)
                    .map_err(|e| QuorumError::Storage(format!("encoding the snapshot: {e}")))?;
                SmState {
                    image: Arc::new(image),
                    last_applied: meta.last_log_id,
                    last_membership: meta.last_membership.clone(),
                    snapshot: Some(StoredSnapshot { meta, data }),
                    built: 0,
                }
            }
            None => SmState {
                image: Arc::new(MetadataImage::default()),
                last_applied: None,
                last_membership: StoredMembership::default(),
                snapshot: None,
                built: 0,
            },
        };
        images.send_replace(state.image.clone());
        Ok(StateMachineStore {
            dir: dir.to_path_buf(),
            state: Arc::new(Mutex::new(state)),
            images,
        })
    }

    /// Replaces `snapshot.json`.
    async fn save(&self, meta: &SnapshotMeta, image: &MetadataImage) -> io::Result<()> {
        write_json(
            self.dir.join(SNAPSHOT_FILE),
            &SnapshotFileRef { meta, image },
        )
        .await
    }
}

fn snapshot_write_error(meta: &SnapshotMeta, e: &io::Error) -> StorageError {
    StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(e)).into()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut state = self.state.lock().await;
        let data = serde_json::to_vec(&*state.image)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        state.built += 1;
        let snapshot_id = match &state.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, state.built),
            None => format!("none-{}", state.built),
        };
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.last_membership.clone(),
            snapshot_id,
        };
        self.save(&meta, &state.image)
            .await
            .map_err(|e| snapshot_write_error(&meta, &e))?;
        state.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        tracing::info!(snapshot = %meta.snapshot_id, "built a metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.lock().await;
        Ok((state.last_applied, state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.state.lock().await;
        let mut results = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => CommandResult::Done,
                EntryPayload::Normal(command) => Arc::make_mut(&mut state.image).apply(&command),
                EntryPayload::Membership(membership) => {
                    state.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    CommandResult::Done
                }
            };
            results.push(result);
        }
        self.images.send_replace(state.image.clone());
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image: MetadataImage = serde_json::from_slice(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let mut state = self.state.lock().await;
        self.save(meta, &image)
            .await
            .map_err(|e| snapshot_write_error(meta, &e))?;
        state.image = Arc::new(image);
        state.last_applied = meta.last_log_id;
        state.last_membership = meta.last_membership.clone();
        state.snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        self.images.send_replace(state.image.clone());
        tracing::info!(snapshot = %meta.snapshot_id, "installed a metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let state = self.state.lock().await;
        Ok(state.snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
