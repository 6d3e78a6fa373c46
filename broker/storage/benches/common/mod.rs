//! What the storage benches share: settings from the environment, where files go, and
//! payload bytes that do not compress.

use std::path::PathBuf;

pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `BENCH_DIR`, else /dev/shm if present (so the disk is not measured), else the temp dir.
pub fn bench_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BENCH_DIR") {
        return PathBuf::from(d);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// xorshift64: deterministic, incompressible-enough bytes.
pub fn random_bytes(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}
