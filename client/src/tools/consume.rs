//! `ironlog consume`: print records of a topic (like `kafka-console-consumer.sh`).

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::tools::ConnectionArgs;
use crate::{ClientError, ConsumedRecord, OffsetSpec};

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

    /// Only this partition (default: all partitions).
    #[arg(long)]
    pub partition: Option<i32>,

    /// Start at the earliest offset instead of the end of the log.
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

    #[arg(long, value_enum, default_value_t = OutputFormat::Default)]
    pub format: OutputFormat,

    /// Maximum bytes per fetch and partition.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_bytes: i32,
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

/// Runs `ironlog consume`.
pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let topic = &args.topic;
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => {
            let metadata = client.metadata(Some(std::slice::from_ref(topic))).await?;
            let t = metadata
                .topic(topic)
                .with_context(|| format!("topic {topic} not in metadata"))?;
            if let Some((code, _)) = t.error {
                return Err(
                    ClientError::kafka(code, None, format!("metadata of topic {topic}")).into(),
                );
            }
            t.partitions.iter().map(|p| p.partition).collect()
        }
    };
    let mut positions: Vec<(i32, i64)> = Vec::new();
    for &p in &partitions {
        let offset = match (args.offset, args.from_beginning) {
            (Some(o), _) => o,
            (None, true) => client.list_offsets(topic, p, OffsetSpec::Earliest).await?.0,
            (None, false) => client.list_offsets(topic, p, OffsetSpec::Latest).await?.0,
        };
        positions.push((p, offset));
    }

    let stdout = std::io::stdout();
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        let wait = match idle_limit {
            Some(limit) => {
                let idle = last_record.elapsed();
                if idle >= limit {
                    break;
                }
                (limit - idle)
                    .as_millis()
                    .min(u128::from(MAX_FETCH_WAIT_MS)) as u64
            }
            None => MAX_FETCH_WAIT_MS,
        };
        let fetched = client
            .fetch_partitions(topic, &positions, wait as i32, args.max_bytes)
            .await?;
        let mut out = stdout.lock();
        for f in fetched {
            let records = f
                .records
                .with_context(|| format!("fetching {topic}-{}", f.partition))?;
            for record in &records {
                if args.max_messages.is_some_and(|max| printed >= max) {
                    break;
                }
                let line = format_record(f.partition, record, args.format);
                if let Err(e) = writeln!(out, "{line}") {
                    // A closed pipe (`| head`) is a normal way to stop reading.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(());
                    }
                    return Err(e).context("writing to stdout");
                }
                printed += 1;
                last_record = Instant::now();
            }
            if let Some(pos) = positions.iter_mut().find(|(p, _)| *p == f.partition) {
                pos.1 = f.next_offset;
            }
        }
        match out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.context("writing to stdout")?,
        }
    }
    eprintln!("Processed a total of {printed} messages");
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
        assert_eq!(args.format, OutputFormat::Json);
        let args = parse(&["--topic", "t", "--from-beginning"]).unwrap();
        assert!(args.from_beginning);
        assert_eq!(args.partition, None);
        assert_eq!(args.format, OutputFormat::Default);
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
