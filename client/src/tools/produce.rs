//! `ironlog produce`: one record per stdin line (like `kafka-console-producer.sh`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::tools::{parse_key_value, partition_for_key, ConnectionArgs};
use crate::{Acks, Bytes, Compression, ProduceRecord};

/// How long to wait for more stdin lines before sending what has been read: piped input is
/// batched, interactive input is sent promptly.
const LINGER: Duration = Duration::from_millis(10);

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[arg(long)]
    pub topic: String,

    /// Write every record to this partition. Default: Kafka's partitioner (murmur2 of the
    /// key for keyed records, round-robin per batch otherwise).
    #[arg(long)]
    pub partition: Option<i32>,

    /// Split each line at the first occurrence of this separator into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,

    /// Acknowledgements: 0, 1, or -1 / all.
    #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = parse_acks)]
    pub acks: Acks,

    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,

    /// A header added to every record, key=value; repeatable.
    #[arg(long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,

    /// Maximum number of lines sent in one batch.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    Acks::parse(s).map_err(|e| e.to_string())
}

/// Turns one input line into a record. `line_number` is 1-based, for the error message.
pub fn parse_line(
    line: &str,
    key_separator: Option<&str>,
    headers: &[(String, String)],
    line_number: u64,
) -> anyhow::Result<ProduceRecord> {
    let (key, value) = match key_separator {
        Some(sep) => match line.split_once(sep) {
            Some((k, v)) => (Some(Bytes::from(k.to_owned())), v),
            None => anyhow::bail!("no key separator {sep:?} found on line {line_number}: {line:?}"),
        },
        None => (None, line),
    };
    Ok(ProduceRecord {
        key,
        value: Some(Bytes::from(value.to_owned())),
        headers: headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
            .collect(),
        timestamp: None,
    })
}

/// Chooses the partition of a record: the explicit one, murmur2 of the key, or the
/// round-robin partition for unkeyed records.
pub fn choose_partition(
    explicit: Option<i32>,
    key: Option<&[u8]>,
    num_partitions: i32,
    round_robin: i32,
) -> i32 {
    match (explicit, key) {
        (Some(p), _) => p,
        (None, Some(key)) => partition_for_key(key, num_partitions),
        (None, None) => round_robin.rem_euclid(num_partitions.max(1)),
    }
}

/// Runs `ironlog produce`.
pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let num_partitions = client
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await?
        .topic(&args.topic)
        .map(|t| {
            if let Some((code, _)) = t.error {
                Err(crate::ClientError::kafka(
                    code,
                    None,
                    format!("metadata of topic {}", args.topic),
                ))
            } else {
                Ok(t.partitions.len() as i32)
            }
        })
        .transpose()?
        .filter(|n| *n > 0)
        .with_context(|| format!("topic {} has no partitions", args.topic))?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut line_number = 0u64;
    let mut batch_number = 0i32;
    let batch_size = args.batch_size as usize;
    loop {
        let mut batch: Vec<ProduceRecord> = Vec::new();
        let mut eof = false;
        while batch.len() < batch_size {
            // `next_line` is cancel safe, so the linger timeout loses no input.
            let next = if batch.is_empty() {
                lines.next_line().await
            } else {
                match tokio::time::timeout(LINGER, lines.next_line()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            };
            match next.context("reading stdin")? {
                Some(line) => {
                    line_number += 1;
                    batch.push(parse_line(
                        &line,
                        args.key_separator.as_deref(),
                        &args.headers,
                        line_number,
                    )?);
                }
                None => {
                    eof = true;
                    break;
                }
            }
        }
        let mut by_partition: BTreeMap<i32, Vec<ProduceRecord>> = BTreeMap::new();
        for record in batch {
            let p = choose_partition(
                args.partition,
                record.key.as_deref(),
                num_partitions,
                batch_number,
            );
            by_partition.entry(p).or_default().push(record);
        }
        batch_number = batch_number.wrapping_add(1);
        for (partition, records) in by_partition {
            client
                .produce(
                    &args.topic,
                    partition,
                    &records,
                    args.acks,
                    args.compression,
                )
                .await
                .with_context(|| {
                    format!(
                        "producing {} records to {}-{partition}",
                        records.len(),
                        args.topic
                    )
                })?;
        }
        if eof {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<ProduceArgs, clap::Error> {
        crate::tools::parse_args(argv)
    }

    #[test]
    fn parses_all_options() {
        let args = parse(&[
            "--topic",
            "t",
            "--partition",
            "2",
            "--key-separator",
            ":",
            "--acks",
            "-1",
            "--compression",
            "zstd",
            "--header",
            "a=1",
            "--header",
            "b=2",
        ])
        .unwrap();
        assert_eq!(args.topic, "t");
        assert_eq!(args.partition, Some(2));
        assert_eq!(args.key_separator.as_deref(), Some(":"));
        assert_eq!(args.acks, Acks::All);
        assert_eq!(args.compression, Compression::Zstd);
        assert_eq!(args.headers.len(), 2);
    }

    #[test]
    fn defaults_and_rejections() {
        let args = parse(&["--topic", "t"]).unwrap();
        assert_eq!(args.acks, Acks::All);
        assert_eq!(args.compression, Compression::None);
        assert_eq!(args.batch_size, 500);
        assert_eq!(
            parse(&["--topic", "t", "--acks", "0"]).unwrap().acks,
            Acks::None
        );
        assert!(parse(&["--topic", "t", "--acks", "2"]).is_err());
        assert!(parse(&["--topic", "t", "--compression", "brotli"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn lines_become_records() {
        let headers = vec![("h".to_string(), "v".to_string())];
        let r = parse_line("k1:hello:world", Some(":"), &headers, 1).unwrap();
        assert_eq!(r.key, Some(Bytes::from_static(b"k1")));
        assert_eq!(r.value, Some(Bytes::from_static(b"hello:world")));
        assert_eq!(
            r.headers,
            vec![("h".to_string(), Some(Bytes::from_static(b"v")))]
        );
        let r = parse_line("plain", None, &[], 2).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value, Some(Bytes::from_static(b"plain")));
        let err = parse_line("nokey", Some("\t"), &[], 7).unwrap_err();
        assert!(err.to_string().contains("line 7"), "{err}");
    }

    #[test]
    fn partition_choice() {
        assert_eq!(choose_partition(Some(3), Some(b"k"), 6, 0), 3);
        assert_eq!(
            choose_partition(None, Some(b"foobar"), 6, 0),
            partition_for_key(b"foobar", 6)
        );
        assert_eq!(choose_partition(None, None, 4, 5), 1);
    }
}
