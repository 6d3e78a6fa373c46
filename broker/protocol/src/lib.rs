//! ironlog-protocol (being written)
