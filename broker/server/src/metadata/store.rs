//! Single-node metadata persistence: the image as JSON, replaced atomically on each change.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::image::{MetadataImage, MetadataRecord};

const FILE_NAME: &str = "cluster-metadata.json";

/// Reading or writing the metadata file failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid metadata ({source}); restore it from a backup or move it away to start empty")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Holds the current image and makes each change durable before it is visible.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    image: RwLock<Arc<MetadataImage>>,
    /// Serialises proposals so two writers can't interleave file replacements.
    write_lock: std::sync::Mutex<()>,
}

impl MetadataStore {
    /// Loads `<data_dir>/cluster-metadata.json`, or starts an empty image with a fresh
    /// cluster id if there is none.
    pub fn open(data_dir: &Path) -> Result<Self, MetadataError> {
        let path = data_dir.join(FILE_NAME);
        let image = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| MetadataError::Corrupt {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let image = MetadataImage::new(new_cluster_id());
                write_atomically(&path, &image)?;
                image
            }
            Err(source) => {
                return Err(MetadataError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        Ok(MetadataStore {
            path,
            image: RwLock::new(Arc::new(image)),
            write_lock: std::sync::Mutex::new(()),
        })
    }

    /// The current image. Cheap: an `Arc` clone, so handlers read a consistent snapshot.
    pub fn image(&self) -> Arc<MetadataImage> {
        // A poisoned lock only means a writer panicked between two whole-image swaps; the
        // image inside is still a complete one.
        self.image.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies records as one change: persisted first, then made visible.
    pub fn propose(&self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>, MetadataError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = (*self.image()).clone();
        for record in records {
            next.apply(record);
        }
        write_atomically(&self.path, &next)?;
        let next = Arc::new(next);
        *self.image.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        Ok(next)
    }
}

fn write_atomically(path: &Path, image: &MetadataImage) -> Result<(), MetadataError> {
    let tmp = path.with_extension("json.tmp");
    let io = |op, source| MetadataError::Io {
        op,
        path: tmp.clone(),
        source,
    };
    let bytes =
        serde_json::to_vec_pretty(image).map_err(|e| io("serialize", std::io::Error::other(e)))?;
    let mut file = fs::File::create(&tmp).map_err(|e| io("create", e))?;
    file.write_all(&bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    fs::rename(&tmp, path).map_err(|source| MetadataError::Io {
        op: "rename into",
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| MetadataError::Io {
                op: "fsync directory",
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::TopicMeta;

    #[test]
    fn proposals_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let cluster_id = store.image().cluster_id.clone();
        assert_eq!(cluster_id.len(), 22);
        let topic = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            replication_factor: 1,
            configs: [("retention.ms".to_string(), "5".to_string())].into(),
        };
        store
            .propose(&[MetadataRecord::TopicCreated(topic.clone())])
            .unwrap();
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().cluster_id, cluster_id);
        assert_eq!(store.image().topic("t"), Some(&topic));
    }

    #[test]
    fn corrupt_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = MetadataStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cluster-metadata.json") && err.contains("move it away"),
            "{err}"
        );
    }
}
