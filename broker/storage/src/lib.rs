//! ironlog-storage (being written)
