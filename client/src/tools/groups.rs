//! `ironlog groups`: list, describe (with lag), reset offsets and delete consumer groups
//! (like `kafka-consumer-groups.sh`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;

use crate::groups::{CommittedOffset, GroupDescription};
use crate::tools::ConnectionArgs;
use crate::{Client, OffsetSpec};

#[derive(clap::Args, Debug)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupsCommand {
    /// List groups, one per line: group id, protocol type, state.
    List,
    /// Per partition: committed offset, log end offset, lag and owning member.
    Describe {
        #[arg(long)]
        group: String,
    },
    /// Move a group's committed offsets (the group must have no active members).
    /// Prints the plan; changes nothing without --execute.
    ResetOffsets {
        #[arg(long)]
        group: String,
        /// Topic whose partitions are reset (all its partitions).
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        to: ResetTo,
        /// Apply the plan (default: dry run).
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group (it must have no active members) and its committed offsets.
    Delete {
        #[arg(long)]
        group: String,
    },
}

#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// The log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// This offset (clamped to the log's range).
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// The first offset at or after this time: `YYYY-MM-DDTHH:MM:SS[.mmm]` (UTC) or ms
    /// since the epoch.
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// The committed offset plus this (may be negative), clamped to the log's range.
    #[arg(long, allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}

/// Where one partition's offset goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    /// The resolved offset for the time (the caller looks it up).
    Time(i64),
    ShiftBy(i64),
}

impl ResetTo {
    pub fn spec(&self) -> anyhow::Result<ResetSpec> {
        Ok(if self.to_earliest {
            ResetSpec::Earliest
        } else if self.to_latest {
            ResetSpec::Latest
        } else if let Some(o) = self.to_offset {
            ResetSpec::Offset(o)
        } else if let Some(t) = &self.to_datetime {
            ResetSpec::Time(parse_datetime(t)?)
        } else if let Some(n) = self.shift_by {
            ResetSpec::ShiftBy(n)
        } else {
            anyhow::bail!(
                "choose one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by"
            )
        })
    }
}

/// The new offset of a partition. `at_time` is the offset ListOffsets found for a
/// `Time` spec (`None`: no record that late, so the log end).
pub fn plan_offset(
    spec: ResetSpec,
    committed: Option<i64>,
    earliest: i64,
    latest: i64,
    at_time: Option<i64>,
) -> i64 {
    let target = match spec {
        ResetSpec::Earliest => earliest,
        ResetSpec::Latest => latest,
        ResetSpec::Offset(o) => o,
        ResetSpec::Time(_) => at_time.unwrap_or(latest),
        ResetSpec::ShiftBy(n) => committed.unwrap_or(earliest).saturating_add(n),
    };
    target.clamp(earliest, latest)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.mmm][Z]` (UTC) or plain epoch milliseconds.
pub fn parse_datetime(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "invalid --to-datetime {s:?}: expected YYYY-MM-DDTHH:MM:SS[.mmm] (UTC) or epoch ms"
        )
    };
    let s = s.trim_end_matches('Z');
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            let frac = format!("{frac:0<3}");
            (hms, frac[..3].parse::<i64>().map_err(|_| bad())?)
        }
        None => (time, 0),
    };
    let t: Vec<i64> = hms
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

/// One row of `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: i64,
    pub member: Option<(String, String, String)>, // (member id, host, client id)
}

/// `kafka-consumer-groups --describe`-style table.
pub fn format_describe(group: &str, state: &str, rows: &[LagRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Group {group} is {state}.");
    let _ = writeln!(
        out,
        "{:<24} {:<24} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} CLIENT-ID",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST"
    );
    for r in rows {
        let (current, lag) = match r.committed {
            Some(c) => (c.to_string(), (r.log_end - c).max(0).to_string()),
            None => ("-".into(), "-".into()),
        };
        let (member, host, client) = r
            .member
            .clone()
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let _ = writeln!(
            out,
            "{:<24} {:<24} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} {}",
            group,
            r.topic,
            r.partition,
            current,
            r.log_end,
            lag,
            member,
            if host.is_empty() { "-" } else { &host },
            client
        );
    }
    out
}

async fn lag_rows(
    client: &Client,
    description: &GroupDescription,
    committed: &BTreeMap<(String, i32), CommittedOffset>,
) -> anyhow::Result<Vec<LagRow>> {
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &description.members {
        for tp in &m.assignment {
            owners.insert(
                tp.clone(),
                (
                    m.member_id.clone(),
                    m.client_host.clone(),
                    m.client_id.clone(),
                ),
            );
        }
    }
    let mut partitions: Vec<(String, i32)> = committed.keys().cloned().collect();
    partitions.extend(owners.keys().cloned());
    partitions.sort();
    partitions.dedup();
    let mut rows = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let (log_end, _) = client
            .list_offsets(&topic, partition, OffsetSpec::Latest)
            .await
            .with_context(|| format!("log end offset of {topic}-{partition}"))?;
        rows.push(LagRow {
            committed: committed.get(&(topic.clone(), partition)).map(|c| c.offset),
            member: owners.get(&(topic.clone(), partition)).cloned(),
            topic,
            partition,
            log_end,
        });
    }
    Ok(rows)
}

/// Runs `ironlog groups`.
pub async fn run(args: GroupsArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    match args.command {
        GroupsCommand::List => {
            for g in client.list_groups().await? {
                let state = if g.state.is_empty() { "-" } else { &g.state };
                let ptype = if g.protocol_type.is_empty() {
                    "-"
                } else {
                    &g.protocol_type
                };
                println!("{}\t{}\t{}", g.group_id, ptype, state);
            }
        }
        GroupsCommand::Describe { group } => {
            let description = client.describe_group(&group).await?;
            let committed = client.committed_offsets(&group).await?;
            if description.state == "Dead" && committed.is_empty() {
                anyhow::bail!("consumer group {group:?} does not exist");
            }
            let rows = lag_rows(&client, &description, &committed).await?;
            print!("{}", format_describe(&group, &description.state, &rows));
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to,
            execute,
        } => {
            let spec = to.spec()?;
            let description = client.describe_group(&group).await?;
            if !description.members.is_empty() {
                anyhow::bail!(
                    "group {group:?} has {} active member(s) (state {}); stop its consumers before resetting offsets",
                    description.members.len(),
                    description.state
                );
            }
            let metadata = client.metadata(Some(std::slice::from_ref(&topic))).await?;
            let partitions = metadata
                .topic(&topic)
                .map(|t| t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| anyhow::anyhow!("topic {topic:?} does not exist"))?;
            let committed = client.committed_offsets(&group).await?;
            let mut plan = BTreeMap::new();
            println!(
                "{:<24} {:>9} {:>14} {:>14}",
                "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"
            );
            for p in partitions {
                let (earliest, _) = client.list_offsets(&topic, p, OffsetSpec::Earliest).await?;
                let (latest, _) = client.list_offsets(&topic, p, OffsetSpec::Latest).await?;
                let at_time = match spec {
                    ResetSpec::Time(ts) => {
                        let (o, _) = client
                            .list_offsets(&topic, p, OffsetSpec::Timestamp(ts))
                            .await?;
                        (o >= 0).then_some(o)
                    }
                    _ => None,
                };
                let current = committed.get(&(topic.clone(), p)).map(|c| c.offset);
                let new = plan_offset(spec, current, earliest, latest, at_time);
                println!(
                    "{:<24} {:>9} {:>14} {:>14}",
                    topic,
                    p,
                    current.map_or("-".into(), |c| c.to_string()),
                    new
                );
                plan.insert((topic.clone(), p), new);
            }
            if execute {
                client.commit_group_offsets(&group, &plan).await?;
                println!("Offsets of group {group} reset.");
            } else {
                println!("Dry run: nothing changed. Add --execute to apply.");
            }
        }
        GroupsCommand::Delete { group } => {
            client.delete_group(&group).await?;
            println!("Deleted group {group}.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_plans_clamp_to_the_log() {
        use ResetSpec::*;
        let cases = [
            (Earliest, Some(50), 10, 100, None, 10),
            (Latest, Some(50), 10, 100, None, 100),
            (Offset(5), Some(50), 10, 100, None, 10),
            (Offset(70), None, 10, 100, None, 70),
            (ShiftBy(-20), Some(50), 10, 100, None, 30),
            (ShiftBy(-100), Some(50), 10, 100, None, 10),
            (ShiftBy(80), Some(50), 10, 100, None, 100),
            (ShiftBy(5), None, 10, 100, None, 15),
            (Time(0), Some(50), 10, 100, Some(42), 42),
            (Time(0), Some(50), 10, 100, None, 100),
        ];
        for (spec, committed, lo, hi, at, want) in cases {
            assert_eq!(plan_offset(spec, committed, lo, hi, at), want, "{spec:?}");
        }
    }

    #[test]
    fn datetimes_parse_as_utc() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789Z").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(parse_datetime("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_datetime("2024-13-01T00:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn describe_shows_lag_and_owner() {
        let rows = vec![
            LagRow {
                topic: "t".into(),
                partition: 0,
                committed: Some(7),
                log_end: 10,
                member: Some(("m-1".into(), "".into(), "c1".into())),
            },
            LagRow {
                topic: "t".into(),
                partition: 1,
                committed: None,
                log_end: 4,
                member: None,
            },
        ];
        let text = format_describe("g", "Stable", &rows);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["g", "t", "0", "7", "10", "3", "m-1", "-", "c1"]);
        assert_eq!(lines[1], ["g", "t", "1", "-", "4", "-", "-", "-", "-"]);
    }
}
