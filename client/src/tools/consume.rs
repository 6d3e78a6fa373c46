//! `ironlog consume`: print records of a topic (like `kafka-console-consumer.sh`), on its
//! own (every partition, nothing committed) or as a member of a consumer group (`--group`:
//! assigned partitions, committed offsets).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::error::OFFSET_OUT_OF_RANGE;
use crate::member::{needs_rejoin, GroupMembership};
use crate::tools::{parse_key_value, ConnectionArgs};
use crate::{Client, ClientError, ConsumedRecord, OffsetSpec};

/// Longest single fetch wait, so idle timeouts and max-messages are noticed promptly.
const MAX_FETCH_WAIT_MS: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// `partition<TAB>offset<TAB>key<TAB>value`, `null` for a missing key or value.
    #[default]
    Default,
    /// One JSON object per line.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[arg(long)]
    pub topic: String,

    /// Consume as a member of this consumer group, like kafka-console-consumer --group:
    /// the group assigns the partitions, and the position is committed every
    /// --commit-interval-ms and on exit. Consumption starts at the group's committed
    /// offsets; --from-beginning applies only to partitions without one.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub group: Option<String>,

    /// Only this partition (default: all partitions).
    #[arg(long)]
    pub partition: Option<i32>,

    /// Start at the earliest offset instead of the end of the log (with --group: where the
    /// group has no committed offset).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,

    /// Start at this offset; requires --partition.
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,

    /// Exit after printing this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,

    /// Exit after this many milliseconds without a new record.
    #[arg(long)]
    pub timeout_ms: Option<u64>,

    /// Output format. Without it: kafka-console-consumer's (values only, plus what the
    /// --print-* flags ask for) with --group or any --print-* flag or --property, otherwise
    /// `default`.
    #[arg(long, value_enum, conflicts_with_all = ["print_key", "print_partition", "print_offset", "properties"])]
    pub format: Option<OutputFormat>,

    /// Print each record's key before its value (kafka-console-consumer's print.key).
    #[arg(long)]
    pub print_key: bool,

    /// Print `Partition:<n>` first (print.partition).
    #[arg(long)]
    pub print_partition: bool,

    /// Print `Offset:<n>` before the key and value (print.offset).
    #[arg(long)]
    pub print_offset: bool,

    /// A kafka-console-consumer formatter property, key=value; repeatable: print.key,
    /// print.partition, print.offset, print.value (true/false), key.separator (default a
    /// tab), line.separator (default a newline), null.literal (default `null`).
    #[arg(long = "property", value_parser = parse_key_value)]
    pub properties: Vec<(String, String)>,

    /// With --group: how often the position is committed, in milliseconds (Kafka's
    /// auto.commit.interval.ms).
    #[arg(long, default_value_t = 5_000, requires = "group")]
    pub commit_interval_ms: u64,

    /// With --group: the member's session timeout, in milliseconds (Kafka's
    /// session.timeout.ms); heartbeats go every third of it.
    #[arg(long, default_value_t = 10_000, requires = "group")]
    pub session_timeout_ms: u64,

    /// Maximum bytes per fetch and partition.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_bytes: i32,
}

/// kafka-console-consumer's `DefaultMessageFormatter` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleFormat {
    pub print_partition: bool,
    pub print_offset: bool,
    pub print_key: bool,
    pub print_value: bool,
    pub key_separator: String,
    pub line_separator: String,
    pub null_literal: String,
}

impl Default for ConsoleFormat {
    fn default() -> Self {
        ConsoleFormat {
            print_partition: false,
            print_offset: false,
            print_key: false,
            print_value: true,
            key_separator: "\t".to_owned(),
            line_separator: "\n".to_owned(),
            null_literal: "null".to_owned(),
        }
    }
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// [`OutputFormat::Default`] or [`OutputFormat::Json`], one line per record.
    Line(OutputFormat),
    Console(ConsoleFormat),
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => anyhow::bail!("property {name} must be true or false, not {value:?}"),
    }
}

/// Which output the flags ask for (see `--format`).
pub fn output(args: &ConsumeArgs) -> anyhow::Result<Output> {
    if let Some(format) = args.format {
        return Ok(Output::Line(format));
    }
    let console = args.group.is_some()
        || args.print_key
        || args.print_partition
        || args.print_offset
        || !args.properties.is_empty();
    if !console {
        return Ok(Output::Line(OutputFormat::Default));
    }
    let mut f = ConsoleFormat {
        print_partition: args.print_partition,
        print_offset: args.print_offset,
        print_key: args.print_key,
        ..ConsoleFormat::default()
    };
    for (name, value) in &args.properties {
        match name.as_str() {
            "print.key" => f.print_key = parse_bool(name, value)?,
            "print.partition" => f.print_partition = parse_bool(name, value)?,
            "print.offset" => f.print_offset = parse_bool(name, value)?,
            "print.value" => f.print_value = parse_bool(name, value)?,
            "key.separator" => f.key_separator = unescape(value),
            "line.separator" => f.line_separator = unescape(value),
            "null.literal" => f.null_literal = value.clone(),
            other => anyhow::bail!(
                "unsupported --property {other}: supported are print.key, print.partition, \
                 print.offset, print.value, key.separator, line.separator, null.literal"
            ),
        }
    }
    Ok(Output::Console(f))
}

/// `\t`, `\n` and `\r` as kafka-console-consumer users type them in a shell.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
}

fn text(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_owned(),
    }
}

/// Formats one record as one output line (without the newline).
pub fn format_record(partition: i32, record: &ConsumedRecord, format: OutputFormat) -> String {
    match format {
        OutputFormat::Default => format!(
            "{partition}\t{}\t{}\t{}",
            record.offset,
            text(record.key.as_deref()),
            text(record.value.as_deref())
        ),
        OutputFormat::Json => {
            let lossy = |b: &Option<crate::Bytes>| {
                b.as_deref()
                    .map(|b| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
                    .unwrap_or(serde_json::Value::Null)
            };
            let headers: serde_json::Map<String, serde_json::Value> = record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), lossy(v)))
                .collect();
            serde_json::json!({
                "partition": partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": lossy(&record.key),
                "value": lossy(&record.value),
                "headers": headers,
            })
            .to_string()
        }
    }
}

/// Formats one record as kafka-console-consumer's `DefaultMessageFormatter` does, line
/// separator included: `[Partition:p<sep>][Offset:o<sep>][key<sep>]value<newline>`, the
/// key and value as raw bytes.
pub fn format_console(partition: i32, record: &ConsumedRecord, f: &ConsoleFormat) -> Vec<u8> {
    let mut out = Vec::new();
    // After a column: the key separator if another column follows, else the line separator.
    let separator = |out: &mut Vec<u8>, more: bool| {
        out.extend_from_slice(if more {
            f.key_separator.as_bytes()
        } else {
            f.line_separator.as_bytes()
        });
    };
    let bytes_or_null = |out: &mut Vec<u8>, b: &Option<crate::Bytes>| match b {
        Some(b) => out.extend_from_slice(b),
        None => out.extend_from_slice(f.null_literal.as_bytes()),
    };
    if f.print_partition {
        out.extend_from_slice(format!("Partition:{partition}").as_bytes());
        separator(&mut out, f.print_offset || f.print_key || f.print_value);
    }
    if f.print_offset {
        out.extend_from_slice(format!("Offset:{}", record.offset).as_bytes());
        separator(&mut out, f.print_key || f.print_value);
    }
    if f.print_key {
        bytes_or_null(&mut out, &record.key);
        separator(&mut out, f.print_value);
    }
    if f.print_value {
        bytes_or_null(&mut out, &record.value);
        out.extend_from_slice(f.line_separator.as_bytes());
    }
    out
}

fn render(partition: i32, record: &ConsumedRecord, output: &Output) -> Vec<u8> {
    match output {
        Output::Line(format) => {
            let mut line = format_record(partition, record, *format).into_bytes();
            line.push(b'\n');
            line
        }
        Output::Console(f) => format_console(partition, record, f),
    }
}

/// Why consuming stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    MaxMessages,
    Idle,
    /// The reader closed stdout (`| head`): a normal way to stop reading.
    ClosedPipe,
}

/// SIGINT and SIGTERM, registered when created so a signal is never missed between polls.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing a SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing a SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// What is being read and where each partition stands.
struct Reader {
    /// `(partition, next offset to print)`.
    positions: Vec<(i32, i64)>,
    printed: u64,
    last_record: Instant,
}

impl Reader {
    fn new(positions: Vec<(i32, i64)>) -> Reader {
        Reader {
            positions,
            printed: 0,
            last_record: Instant::now(),
        }
    }

    fn set(&mut self, partition: i32, offset: i64) {
        if let Some(pos) = self.positions.iter_mut().find(|(p, _)| *p == partition) {
            pos.1 = offset;
        }
    }

    /// How long the next fetch may wait, or why to stop before it.
    fn next_wait(&self, args: &ConsumeArgs) -> Result<u64, Stop> {
        if args.max_messages.is_some_and(|max| self.printed >= max) {
            return Err(Stop::MaxMessages);
        }
        match args.timeout_ms.map(Duration::from_millis) {
            Some(limit) => {
                let idle = self.last_record.elapsed();
                if idle >= limit {
                    return Err(Stop::Idle);
                }
                Ok((limit - idle)
                    .as_millis()
                    .min(u128::from(MAX_FETCH_WAIT_MS)) as u64)
            }
            None => Ok(MAX_FETCH_WAIT_MS),
        }
    }

    /// One fetch round: prints what arrived and advances the positions past what was
    /// printed (only that, so a commit after `--max-messages` covers exactly what was
    /// shown). `reset` gives the offset to restart a partition from after
    /// OFFSET_OUT_OF_RANGE; without it that error ends the run.
    async fn poll(
        &mut self,
        client: &Client,
        args: &ConsumeArgs,
        output: &Output,
        wait: u64,
        reset: Option<OffsetSpec>,
    ) -> anyhow::Result<Option<Stop>> {
        let topic = &args.topic;
        if self.positions.is_empty() {
            // Nothing assigned (more members than partitions): just wait.
            tokio::time::sleep(Duration::from_millis(wait)).await;
            return Ok(None);
        }
        let fetched = client
            .fetch_partitions(topic, &self.positions, wait as i32, args.max_bytes)
            .await?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for f in fetched {
            let records = match (f.records, reset) {
                (Ok(records), _) => records,
                (Err(e), Some(spec)) if e.code() == Some(OFFSET_OUT_OF_RANGE) => {
                    let (offset, _) = client.list_offsets(topic, f.partition, spec).await?;
                    tracing::warn!(
                        "offset {} of {topic}-{} is out of range; resetting to {offset}",
                        f.fetch_offset,
                        f.partition
                    );
                    self.set(f.partition, offset);
                    continue;
                }
                (Err(e), _) => {
                    return Err(e).with_context(|| format!("fetching {topic}-{}", f.partition))
                }
            };
            let mut next = f.next_offset;
            for record in &records {
                if args.max_messages.is_some_and(|max| self.printed >= max) {
                    next = record.offset;
                    break;
                }
                if let Err(e) = out.write_all(&render(f.partition, record, output)) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(Some(Stop::ClosedPipe));
                    }
                    return Err(e).context("writing to stdout");
                }
                self.printed += 1;
                self.last_record = Instant::now();
            }
            self.set(f.partition, next);
        }
        match out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(Stop::ClosedPipe)),
            other => other.context("writing to stdout").map(|()| None),
        }
    }
}

/// The partitions of `topic` (or just `--partition`).
async fn topic_partitions(client: &Client, args: &ConsumeArgs) -> anyhow::Result<Vec<i32>> {
    let topic = &args.topic;
    if let Some(p) = args.partition {
        return Ok(vec![p]);
    }
    let metadata = client.metadata(Some(std::slice::from_ref(topic))).await?;
    let t = metadata
        .topic(topic)
        .with_context(|| format!("topic {topic} not in metadata"))?;
    if let Some((code, _)) = t.error {
        return Err(ClientError::kafka(code, None, format!("metadata of topic {topic}")).into());
    }
    Ok(t.partitions.iter().map(|p| p.partition).collect())
}

fn start_spec(args: &ConsumeArgs) -> OffsetSpec {
    if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    }
}

/// Runs `ironlog consume`.
pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let output = output(&args)?;
    let mut signals = Signals::new()?;
    let client = args.connection.connect().await?;
    let printed = match &args.group {
        Some(group) => run_in_group(&client, &args, &output, group, &mut signals).await?,
        None => run_standalone(&client, &args, &output, &mut signals).await?,
    };
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

/// Without a group: every partition (or `--partition`), from `--offset`, the beginning or
/// the end; nothing is committed.
async fn run_standalone(
    client: &Client,
    args: &ConsumeArgs,
    output: &Output,
    signals: &mut Signals,
) -> anyhow::Result<u64> {
    let mut positions = Vec::new();
    for p in topic_partitions(client, args).await? {
        let offset = match args.offset {
            Some(o) => o,
            None => {
                client
                    .list_offsets(&args.topic, p, start_spec(args))
                    .await?
                    .0
            }
        };
        positions.push((p, offset));
    }
    let mut reader = Reader::new(positions);
    while let Ok(wait) = reader.next_wait(args) {
        tokio::select! {
            polled = reader.poll(client, args, output, wait, None) => {
                if polled?.is_some() {
                    break;
                }
            }
            _ = signals.recv() => break,
        }
    }
    Ok(reader.printed)
}

/// With `--group`: join, read the assigned partitions from the committed offsets, heartbeat,
/// commit periodically and on the way out, rejoin when the group rebalances, leave at the end.
async fn run_in_group(
    client: &Client,
    args: &ConsumeArgs,
    output: &Output,
    group: &str,
    signals: &mut Signals,
) -> anyhow::Result<u64> {
    let session_timeout = Duration::from_millis(args.session_timeout_ms);
    let heartbeat_interval = session_timeout / 3;
    let commit_interval = Duration::from_millis(args.commit_interval_ms);
    let mut member =
        GroupMembership::new(group, std::slice::from_ref(&args.topic), session_timeout);
    let mut reader = Reader::new(Vec::new());
    // What the group has committed for our partitions, to commit only what moved.
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut joined = false;
    let mut last_heartbeat = Instant::now();
    let mut last_commit = Instant::now();
    let result: anyhow::Result<()> = async {
        loop {
            if !joined {
                tokio::select! {
                    j = client.join_group(&mut member) => {
                        j.with_context(|| format!("joining group {group:?}"))?
                    }
                    _ = signals.recv() => return Ok(()),
                }
                joined = true;
                last_heartbeat = Instant::now();
                committed = group_offsets(client, &member, &args.topic).await?;
                reader.positions =
                    group_positions(client, &member, &args.topic, &committed, start_spec(args))
                        .await?;
                tracing::info!(
                    member = %member.member_id,
                    generation = member.generation_id,
                    positions = ?reader.positions,
                    "joined group {group:?}"
                );
            }
            let Ok(wait) = reader.next_wait(args) else {
                return Ok(());
            };
            let wait = wait.min(heartbeat_interval.as_millis() as u64);
            tokio::select! {
                polled = reader.poll(client, args, output, wait, Some(start_spec(args))) => {
                    if polled?.is_some() {
                        return Ok(());
                    }
                }
                _ = signals.recv() => return Ok(()),
            }
            if last_commit.elapsed() >= commit_interval {
                last_commit = Instant::now();
                match commit(client, &member, &args.topic, &reader, &mut committed).await {
                    Ok(()) => {}
                    // A rebalance began since the last heartbeat: rejoin; the positions
                    // not committed are read again from the group's committed offsets.
                    Err(e) if needs_rejoin(&e) => {
                        tracing::info!("rejoining group {group:?}: {e}");
                        joined = false;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if last_heartbeat.elapsed() >= heartbeat_interval {
                match client.heartbeat(&member).await {
                    Ok(()) => last_heartbeat = Instant::now(),
                    Err(e) if needs_rejoin(&e) => {
                        tracing::info!("rejoining group {group:?}: {e}");
                        // Commit what was read before the partitions move (the coordinator
                        // still accepts this generation while it waits for members).
                        if let Err(e) =
                            commit(client, &member, &args.topic, &reader, &mut committed).await
                        {
                            tracing::warn!("commit before rejoining failed: {e:#}");
                        }
                        joined = false;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    .await;
    // Final commit and leave, also after an error where possible; the first error wins.
    let final_commit = if joined {
        commit(client, &member, &args.topic, &reader, &mut committed)
            .await
            .with_context(|| format!("committing offsets of group {group:?}"))
    } else {
        Ok(())
    };
    if let Err(e) = client.leave_group(&member).await {
        tracing::warn!(
            "leaving group {group:?} failed (it rebalances after the session timeout): {e}"
        );
    }
    result.and(final_commit).map(|()| reader.printed)
}

/// The group's committed offsets for `topic`, by partition.
async fn group_offsets(
    client: &Client,
    member: &GroupMembership,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(client
        .committed_offsets(&member.group)
        .await
        .with_context(|| format!("fetching committed offsets of group {:?}", member.group))?
        .into_iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), c)| (p, c.offset))
        .collect())
}

/// Where to start each assigned partition: the committed offset, else `spec`.
async fn group_positions(
    client: &Client,
    member: &GroupMembership,
    topic: &str,
    committed: &BTreeMap<i32, i64>,
    spec: OffsetSpec,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let mut positions = Vec::new();
    for (t, p) in &member.assignment {
        if t != topic {
            continue;
        }
        let offset = match committed.get(p) {
            Some(&offset) => offset,
            None => client.list_offsets(topic, *p, spec).await?.0,
        };
        positions.push((*p, offset));
    }
    Ok(positions)
}

/// Commits the positions that moved since the last commit.
async fn commit(
    client: &Client,
    member: &GroupMembership,
    topic: &str,
    reader: &Reader,
    committed: &mut BTreeMap<i32, i64>,
) -> Result<(), ClientError> {
    let moved: BTreeMap<(String, i32), i64> = reader
        .positions
        .iter()
        .filter(|(p, offset)| committed.get(p) != Some(offset))
        .map(|&(p, offset)| ((topic.to_owned(), p), offset))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    client.commit_member_offsets(member, &moved).await?;
    committed.extend(moved.into_iter().map(|((_, p), offset)| (p, offset)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bytes;

    fn parse(argv: &[&str]) -> Result<ConsumeArgs, clap::Error> {
        crate::tools::parse_args(argv)
    }

    #[test]
    fn parses_options() {
        let args = parse(&[
            "--topic",
            "t",
            "--partition",
            "1",
            "--offset",
            "5",
            "--max-messages",
            "10",
            "--timeout-ms",
            "2000",
            "--format",
            "json",
        ])
        .unwrap();
        assert_eq!(args.partition, Some(1));
        assert_eq!(args.offset, Some(5));
        assert_eq!(args.max_messages, Some(10));
        assert_eq!(args.timeout_ms, Some(2000));
        assert_eq!(args.format, Some(OutputFormat::Json));
        assert_eq!(output(&args).unwrap(), Output::Line(OutputFormat::Json));
        let args = parse(&["--topic", "t", "--from-beginning"]).unwrap();
        assert!(args.from_beginning);
        assert_eq!(args.partition, None);
        assert_eq!(args.group, None);
        assert_eq!(output(&args).unwrap(), Output::Line(OutputFormat::Default));
    }

    #[test]
    fn group_mode_prints_values_only_unless_asked() {
        let args = parse(&["--topic", "t", "--group", "g", "--from-beginning"]).unwrap();
        assert_eq!(args.group.as_deref(), Some("g"));
        assert_eq!(args.commit_interval_ms, 5_000);
        assert_eq!(
            output(&args).unwrap(),
            Output::Console(ConsoleFormat::default())
        );

        let args = parse(&[
            "--topic",
            "t",
            "--group",
            "g",
            "--print-key",
            "--print-offset",
        ])
        .unwrap();
        let Output::Console(f) = output(&args).unwrap() else {
            panic!("console format expected");
        };
        assert!(f.print_key && f.print_offset && f.print_value && !f.print_partition);

        // kafka-console-consumer's --property spelling, without --group too.
        let args = parse(&[
            "--topic",
            "t",
            "--property",
            "print.key=true",
            "--property",
            "print.partition=true",
            "--property",
            "key.separator=:",
            "--property",
            "print.value=false",
        ])
        .unwrap();
        let Output::Console(f) = output(&args).unwrap() else {
            panic!("console format expected");
        };
        assert!(f.print_key && f.print_partition && !f.print_value && !f.print_offset);
        assert_eq!(f.key_separator, ":");

        // An explicit --format wins over the group default.
        let args = parse(&["--topic", "t", "--group", "g", "--format", "default"]).unwrap();
        assert_eq!(output(&args).unwrap(), Output::Line(OutputFormat::Default));
    }

    #[test]
    fn rejects_bad_group_and_property_combinations() {
        assert!(parse(&["--topic", "t", "--group", "g", "--partition", "0"]).is_err());
        assert!(parse(&["--topic", "t", "--commit-interval-ms", "10"]).is_err());
        assert!(parse(&["--topic", "t", "--format", "json", "--print-key"]).is_err());
        let args = parse(&["--topic", "t", "--property", "print.key=yes"]).unwrap();
        assert!(output(&args).is_err());
        let args = parse(&["--topic", "t", "--property", "print.headers=true"]).unwrap();
        assert!(format!("{:#}", output(&args).unwrap_err()).contains("unsupported"));
    }

    #[test]
    fn rejects_conflicting_start_positions() {
        assert!(
            parse(&["--topic", "t", "--offset", "5"]).is_err(),
            "offset needs partition"
        );
        assert!(parse(&[
            "--topic",
            "t",
            "--partition",
            "0",
            "--offset",
            "5",
            "--from-beginning"
        ])
        .is_err());
        assert!(parse(&["--topic", "t", "--format", "xml"]).is_err());
    }

    fn record() -> ConsumedRecord {
        ConsumedRecord {
            offset: 42,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from_static(b"hello \"world\"")),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"v"))),
                ("n".into(), None),
            ],
        }
    }

    #[test]
    fn default_format_is_tab_separated_with_null_key() {
        assert_eq!(
            format_record(3, &record(), OutputFormat::Default),
            "3\t42\tnull\thello \"world\""
        );
        let mut keyed = record();
        keyed.key = Some(Bytes::from_static(b"k"));
        assert_eq!(
            format_record(0, &keyed, OutputFormat::Default),
            "0\t42\tk\thello \"world\""
        );
    }

    #[test]
    fn console_format_matches_kafka_default_message_formatter() {
        let mut keyed = record();
        keyed.key = Some(Bytes::from_static(b"k"));
        let line = |r: &ConsumedRecord, f: &ConsoleFormat| {
            String::from_utf8(format_console(3, r, f)).unwrap()
        };
        let values = ConsoleFormat::default();
        assert_eq!(line(&keyed, &values), "hello \"world\"\n");
        let all = ConsoleFormat {
            print_partition: true,
            print_offset: true,
            print_key: true,
            ..ConsoleFormat::default()
        };
        assert_eq!(
            line(&keyed, &all),
            "Partition:3\tOffset:42\tk\thello \"world\"\n"
        );
        assert_eq!(
            line(&record(), &all),
            "Partition:3\tOffset:42\tnull\thello \"world\"\n"
        );
        // Without the value, the last printed column ends the line.
        let key_only = ConsoleFormat {
            print_key: true,
            print_value: false,
            key_separator: ":".into(),
            null_literal: "-".into(),
            ..ConsoleFormat::default()
        };
        assert_eq!(line(&record(), &key_only), "-\n");
        assert_eq!(line(&keyed, &key_only), "k\n");
        // Values are written as bytes, not re-encoded.
        let mut binary = record();
        binary.value = Some(Bytes::from_static(&[0xff, 0x00]));
        assert_eq!(format_console(0, &binary, &values), vec![0xff, 0x00, b'\n']);
    }

    #[test]
    fn json_format_is_one_object_per_record() {
        let line = format_record(3, &record(), OutputFormat::Json);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["partition"], 3);
        assert_eq!(v["offset"], 42);
        assert_eq!(v["timestamp"], 1_700_000_000_000i64);
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["value"], "hello \"world\"");
        assert_eq!(v["headers"]["h"], "v");
        assert_eq!(v["headers"]["n"], serde_json::Value::Null);
    }
}
