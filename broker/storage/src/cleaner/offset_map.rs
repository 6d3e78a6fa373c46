//! The cleaner's offset map: key → offset of its latest record in the dirty section.
//!
//! Keys are stored whole (Kafka stores 16-byte MD5 digests; whole keys cost more memory
//! but can never collide, so no record is ever dropped for another key's sake). The map
//! has a byte budget (`log.cleaner.dedupe.buffer.size`): the pass stops adding segments
//! once it is full and cleans what it has mapped; the rest waits for the next pass.

use std::collections::HashMap;

/// Bytes an entry costs besides its key: the offset, the box's pointer and length, and the
/// hash table's slot and control byte, rounded up.
const ENTRY_OVERHEAD: usize = 48;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    budget: usize,
}

impl OffsetMap {
    pub(crate) fn new(budget: usize) -> Self {
        OffsetMap {
            latest: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    /// Records that `key`'s record at `offset` is its latest so far (offsets arrive in
    /// increasing order, so a later put always wins).
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(o) = self.latest.get_mut(key) {
            *o = offset;
            return;
        }
        self.bytes += key.len() + ENTRY_OVERHEAD;
        self.latest.insert(key.into(), offset);
    }

    /// The offset of `key`'s latest record in the mapped section.
    pub(crate) fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Whether the map has used its budget.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= self.budget
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_offsets_win_and_the_budget_counts_distinct_keys() {
        let mut m = OffsetMap::new(2 * (1 + ENTRY_OVERHEAD));
        m.put(b"a", 1);
        m.put(b"a", 7);
        assert_eq!(m.latest(b"a"), Some(7));
        assert!(!m.is_full(), "one key so far");
        m.put(b"b", 8);
        assert!(m.is_full());
        assert_eq!((m.len(), m.latest(b"c")), (2, None));
    }
}
