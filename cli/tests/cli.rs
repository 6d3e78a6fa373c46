//! The `ironlog` binary's command line. Besides checking it, this test makes
//! `cargo test --workspace` build the binary, which the client crate's broker tests and the
//! e2e suites run as `IRONLOG_BIN`.

use std::process::Command;

fn ironlog(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ironlog"))
        .args(args)
        .output()
        .expect("run the ironlog binary")
}

#[test]
fn help_lists_the_broker_and_every_tool() {
    let out = ironlog(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "broker", "topics", "produce", "consume", "groups", "cluster", "users", "acls", "perf",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} missing from:\n{help}"
        );
    }
}

#[test]
fn tools_reject_bad_flags_before_connecting() {
    // Nothing listens on port 1: an error about the flags proves parsing came first.
    let out = ironlog(&[
        "consume",
        "--topic",
        "t",
        "--group",
        "g",
        "--partition",
        "0",
        "--bootstrap-server",
        "127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{out:?}"
    );
    let out = ironlog(&["cluster", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
