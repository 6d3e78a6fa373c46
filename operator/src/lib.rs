//! ironlog-operator (being written)
