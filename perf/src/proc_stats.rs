//! What a broker process costs, read from Linux's /proc: CPU time (user + system) and
//! resident memory. Used with `--broker-pid` when the broker runs on the same machine.
//!
//! CPU time in /proc/PID/stat is in clock ticks; the tick rate is the system's
//! (`getconf CLK_TCK`, 100 on most Linux builds), read once, not assumed. A 20-second
//! run of a broker using half a core is about 1,000 ticks, so the figure is good to 0.1%.

use std::process::Command;

use anyhow::{bail, Context as _};
use serde::Serialize;

/// The system's clock-tick rate (ticks per second).
///
/// # Errors
/// If `getconf` can't be run or prints something else than a positive number.
pub fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("getconf CLK_TCK printed {text:?}"),
    }
}

/// (utime, stime): fields 14 and 15 of a /proc/PID/stat line, in ticks: CPU time in the
/// process's own code and in the kernel on its behalf (system calls: socket and file
/// copies, page-cache work). The command name (field 2) is in parentheses and may hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")" comes field 3 (state), so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// A `Key:   1234 kB` figure of /proc/PID/status, in kB.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// One reading of a set of processes: ticks summed, RSS summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// User + system.
    pub cpu_ticks: u64,
    /// The system (kernel) part of `cpu_ticks`.
    pub system_ticks: u64,
    pub rss_kb: u64,
    /// Peak RSS since each process started (VmHWM), summed.
    pub hwm_kb: u64,
}

/// Reads the processes' current figures.
///
/// # Errors
/// A process that is gone or a file that doesn't parse.
pub fn sample(pids: &[u32]) -> anyhow::Result<Sample> {
    let mut s = Sample::default();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat (is the broker running?)"))?;
        let (user, system) = parse_stat_ticks(&stat)
            .with_context(|| format!("/proc/{pid}/stat: no utime/stime in {stat:?}"))?;
        s.cpu_ticks += user + system;
        s.system_ticks += system;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        s.rss_kb += parse_status_kb(&status, "VmRSS")
            .with_context(|| format!("/proc/{pid}/status has no VmRSS"))?;
        s.hwm_kb += parse_status_kb(&status, "VmHWM").unwrap_or(0);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_count_fields_after_the_command_name() {
        // A command name with a space and a parenthesis, as the kernel prints it.
        let line = "4242 (iron log) x) S 1 4242 4242 0 -1 4194560 2513 0 0 0 377 120 0 0 20 0 \
                    9 0 123456 1234567 3000 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some((377, 120)));
        assert_eq!(parse_stat_ticks("12 (x) S 1 2"), None);
    }

    #[test]
    fn status_figures_by_key() {
        let status = "Name:\tironlog\nVmHWM:\t   20480 kB\nVmRSS:\t   12288 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(12288));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let pid = std::process::id();
        let s = sample(&[pid]).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb, "{s:?}");
        assert!(clock_ticks_per_second().unwrap_or_else(|e| panic!("{e:#}")) >= 100);
    }
}
