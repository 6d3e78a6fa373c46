//! openraft's own storage test suite, run against our log store and state machine.

use std::sync::Arc;

use ironlog_metadata::MetadataImage;
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use tokio::sync::watch;

use crate::log_store::{CommitIndex, LogStore};
use crate::state_machine::StateMachineStore;
use crate::types::{StorageError, TypeConfig};

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for OnDisk {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = LogStore::open(dir.path(), CommitIndex::default()).expect("open the log store");
        let (tx, _rx) = watch::channel(Arc::new(MetadataImage::default()));
        let sm = StateMachineStore::open(dir.path(), Arc::new(tx)).expect("open the state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(OnDisk).expect("openraft's storage suite");
}
