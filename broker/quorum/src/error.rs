//! The crate's one error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// Reading or writing the quorum's directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The on-disk state is unreadable (not a torn tail, which is repaired at open).
    #[error("metadata quorum storage: {0}")]
    Storage(String),
    /// The configuration cannot work (e.g. a negative node id, a voter without an address).
    #[error("invalid controller quorum configuration: {0}")]
    Config(String),
    /// Another process holds the quorum's directory.
    #[error("{} is in use by another process (is another broker running on this data directory?)", .0.display())]
    Locked(PathBuf),
    /// Binding the controller listener failed.
    #[error("cannot bind the controller listener on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// No leader was known for the whole wait: the quorum has lost its majority, or is still
    /// electing. Check that a majority of `controller.quorum.voters` are up and reachable.
    #[error(
        "no metadata quorum leader within {0:?}: is a majority of the voters up and reachable?"
    )]
    NoLeader(Duration),
    /// A leader was known but the operation did not complete in time.
    #[error("metadata quorum operation timed out after {0:?} ({1})")]
    Timeout(Duration, String),
    /// The leader answered with an error, or the controller connection failed.
    #[error("controller network: {0}")]
    Network(String),
    /// Raft stopped on this node (a storage failure or a shutdown); restart the node.
    #[error("metadata quorum stopped: {0}")]
    Fatal(String),
}

impl QuorumError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| QuorumError::Io { op, path, source }
    }
}
