//! ironlog-client (being written)
