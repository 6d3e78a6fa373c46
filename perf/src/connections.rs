//! `ironlog perf connections`: what an idle client connection costs a broker.
//!
//! Opens `--count` TCP connections, sends an ApiVersions request (v0) on each and reads
//! its answer, so every connection is one the broker has fully accepted and served, then
//! holds them idle. With `--broker-pid` it reads the broker's resident memory (/proc)
//! before, while they are open (after `--settle-ms`), and after they are closed, and
//! reports the growth per connection. Both processes need an open-files limit above the
//! count (`ulimit -n`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;

use crate::proc_stats;

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// The broker, host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// The broker process, to read its memory.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Milliseconds to wait, connections open, before reading the broker's memory.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    pub kind: &'static str,
    pub count: usize,
    pub open_seconds: f64,
    pub rss_before_kb: Option<u64>,
    pub rss_open_kb: Option<u64>,
    pub rss_closed_kb: Option<u64>,
    /// (RSS with the connections open − RSS before) / count, in bytes (1 KiB = 1024 B).
    pub rss_bytes_per_connection: Option<f64>,
}

/// ApiVersions v0 with the given correlation id and a null client id.
pub fn api_versions_v0(correlation_id: i32) -> [u8; 14] {
    let mut frame = [0u8; 14];
    frame[0..4].copy_from_slice(&10i32.to_be_bytes());
    frame[4..6].copy_from_slice(&18i16.to_be_bytes());
    frame[6..8].copy_from_slice(&0i16.to_be_bytes());
    frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());
    frame[12..14].copy_from_slice(&(-1i16).to_be_bytes());
    frame
}

/// Reads one response and checks its correlation id and error code (ApiVersions v0:
/// correlation id, then error code).
fn read_answer(stream: &mut TcpStream, correlation_id: i32) -> anyhow::Result<()> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    if !(6..=1 << 20).contains(&size) {
        bail!("response size {size}");
    }
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body)?;
    let got = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let error = i16::from_be_bytes([body[4], body[5]]);
    if got != correlation_id || error != 0 {
        bail!("answer with correlation id {got} (sent {correlation_id}), error code {error}");
    }
    Ok(())
}

fn rss(pid: Option<u32>) -> anyhow::Result<Option<u64>> {
    pid.map(|p| proc_stats::sample(&[p]).map(|s| s.rss_kb))
        .transpose()
}

/// Opens, holds and closes the connections, then prints the report.
///
/// # Errors
/// A connection the broker refuses or does not answer (the message says which of how
/// many, so a low open-files limit is easy to spot).
pub fn run(args: ConnectionsArgs) -> anyhow::Result<()> {
    let settle = Duration::from_millis(args.settle_ms);
    let before = rss(args.broker_pid)?;
    let started = Instant::now();
    let mut conns = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let mut s = TcpStream::connect(&args.bootstrap_server).with_context(|| {
            format!(
                "connection {} of {}: connecting to {} (is `ulimit -n` above the count, \
                 for this process and the broker?)",
                i + 1,
                args.count,
                args.bootstrap_server
            )
        })?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.write_all(&api_versions_v0(i as i32))
            .with_context(|| format!("connection {}: sending ApiVersions", i + 1))?;
        conns.push(s);
        // Read answers in batches so the broker's send buffers don't all fill at once.
        if conns.len() % 256 == 0 || i + 1 == args.count {
            let from = conns.len() - ((conns.len() - 1) % 256 + 1);
            for (j, c) in conns.iter_mut().enumerate().skip(from) {
                read_answer(c, j as i32)
                    .with_context(|| format!("connection {}: reading ApiVersions", j + 1))?;
            }
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "connections: {} open and answered in {open_seconds:.1} s",
        conns.len()
    );
    std::thread::sleep(settle);
    let open = rss(args.broker_pid)?;
    drop(conns);
    std::thread::sleep(settle);
    let closed = rss(args.broker_pid)?;
    let per = match (before, open) {
        (Some(b), Some(o)) if args.count > 0 => {
            Some((o as f64 - b as f64) * 1024.0 / args.count as f64)
        }
        _ => None,
    };
    let report = ConnectionsReport {
        kind: "connections",
        count: args.count,
        open_seconds,
        rss_before_kb: before,
        rss_open_kb: open,
        rss_closed_kb: closed,
        rss_bytes_per_connection: per,
    };
    let kb = |v: Option<u64>| v.map_or("-".into(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
    println!(
        "{} idle connections: broker RSS {} before, {} open, {} after closing; {} per connection",
        report.count,
        kb(before),
        kb(open),
        kb(closed),
        per.map_or("-".into(), |p| format!("{:.1} KiB", p / 1024.0))
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_v0_frame() {
        assert_eq!(
            api_versions_v0(0x0102_0304),
            [0, 0, 0, 10, 0, 18, 0, 0, 1, 2, 3, 4, 0xff, 0xff]
        );
    }
}
