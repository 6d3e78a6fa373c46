//! The `ironlog` broker as a child process for integration tests: started from
//! `IRONLOG_BIN` on free loopback ports in a temporary directory, its output in
//! `broker.log` there, killed when dropped.
//!
//! Shared by two test crates: `client/tests/broker.rs` includes it as a module and
//! `operator/tests/admin_security.rs` includes the same file by path (a test crate can't
//! import another crate's test modules).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running broker process; killed on drop.
pub struct BrokerProcess {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts `bin broker` with `args` and `envs`, plus a free `--metrics-listen` port, a
    /// `--data-dir` in a fresh temporary directory and `--auto-create-topics false`.
    pub fn start(bin: &PathBuf, args: &[&str], envs: &[(&str, &str)]) -> BrokerProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let metrics = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("broker.log")).expect("log file");
        let child = Command::new(bin)
            .arg("broker")
            .args(args)
            .envs(envs.iter().copied())
            .args(["--metrics-listen", &metrics])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--auto-create-topics", "false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        BrokerProcess { child, dir }
    }

    /// What the broker wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port. It is released before the broker binds it; a collision is unlikely
/// and would show up as a startup failure with the broker's log attached.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The broker binary under test. A test that cannot run must fail, not pass: without
/// `IRONLOG_BIN` (scripts/test.sh sets it) this panics.
pub fn broker_bin(test: &str) -> PathBuf {
    match std::env::var_os("IRONLOG_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => panic!("{test} needs IRONLOG_BIN (point it at the ironlog binary)"),
    }
}
