//! `ironlog topics`: create, list, describe, alter and delete topics (like `kafka-topics.sh`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;

use crate::tools::{format_topic_id, parse_key_value, ConnectionArgs};
use crate::{Client, ConfigEntry, ConfigSource, NewTopic, TopicMetadata};

#[derive(clap::Args, Debug)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        #[arg(long)]
        topic: String,
        /// Number of partitions (broker default when omitted).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (broker default when omitted).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config override, key=value; repeatable.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Succeed without changes if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names, one per line.
    List,
    /// Describe one topic, or all topics.
    Describe {
        #[arg(long)]
        topic: Option<String>,
    },
    /// Add partitions and change config overrides.
    Alter {
        #[arg(long)]
        topic: String,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: Option<i32>,
        /// A config override to set, key=value; repeatable.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// A config override to remove; repeatable.
        #[arg(long = "delete-config")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        #[arg(long)]
        topic: String,
    },
}

/// Runs `ironlog topics`.
pub async fn run(args: TopicsArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    match args.command {
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let new_topic = NewTopic {
                name: topic.clone(),
                num_partitions: partitions.unwrap_or(-1),
                replication_factor: replication_factor.unwrap_or(-1),
                configs: configs.into_iter().collect(),
            };
            match client.create_topic(&new_topic, false).await {
                Ok(()) => println!("Created topic {topic}."),
                Err(e) if if_not_exists && e.code() == Some(crate::error::TOPIC_ALREADY_EXISTS) => {
                }
                Err(e) => return Err(e).context(format!("creating topic {topic}")),
            }
        }
        TopicsCommand::List => {
            let metadata = client.metadata(None).await?;
            let mut names: Vec<&str> = metadata.topics.iter().map(|t| t.name.as_str()).collect();
            names.sort_unstable();
            for name in names {
                println!("{name}");
            }
        }
        TopicsCommand::Describe { topic } => {
            print!("{}", describe(&client, topic.as_deref()).await?);
        }
        TopicsCommand::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                anyhow::bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            if let Some(total) = partitions {
                client
                    .create_partitions(&topic, total)
                    .await
                    .with_context(|| format!("increasing partitions of {topic} to {total}"))?;
            }
            if !configs.is_empty() || !delete_configs.is_empty() {
                let set: BTreeMap<String, String> = configs.into_iter().collect();
                client
                    .incremental_alter_configs(&topic, &set, &delete_configs)
                    .await
                    .with_context(|| format!("altering configs of {topic}"))?;
            }
        }
        TopicsCommand::Delete { topic } => {
            client
                .delete_topic(&topic)
                .await
                .with_context(|| format!("deleting topic {topic}"))?;
        }
    }
    Ok(())
}

/// The `--describe` text for `topic`, or for all topics sorted by name.
async fn describe(client: &Client, topic: Option<&str>) -> anyhow::Result<String> {
    let names = topic.map(|t| vec![t.to_owned()]);
    let metadata = client.metadata(names.as_deref()).await?;
    let mut topics: Vec<&TopicMetadata> = metadata.topics.iter().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for t in topics {
        if let Some((code, _)) = t.error {
            return Err(crate::ClientError::kafka(
                code,
                None,
                format!("describe topic {}", t.name),
            )
            .into());
        }
        let configs = client
            .describe_configs(&t.name)
            .await
            .with_context(|| format!("describing configs of {}", t.name))?;
        out.push_str(&format_topic(t, &configs));
    }
    Ok(out)
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Formats one topic like `kafka-topics.sh --describe`: a summary line with the topic's
/// config overrides, then one line per partition.
pub fn format_topic(topic: &TopicMetadata, configs: &[ConfigEntry]) -> String {
    let overrides: Vec<String> = configs
        .iter()
        .filter(|c| c.source == ConfigSource::DynamicTopicConfig)
        .map(|c| {
            let value = if c.sensitive {
                "(sensitive)"
            } else {
                c.value.as_deref().unwrap_or("null")
            };
            format!("{}={}", c.name, value)
        })
        .collect();
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        format_topic_id(&topic.topic_id),
        topic.partitions.len(),
        replication_factor,
        overrides.join(",")
    );
    for p in &topic.partitions {
        let leader = p.leader.map_or("none".to_owned(), |l| l.to_string());
        let _ = write!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            topic.name,
            p.partition,
            leader,
            join_ids(&p.replicas),
            join_ids(&p.isr)
        );
        if !p.offline_replicas.is_empty() {
            let _ = write!(out, "\tOffline: {}", join_ids(&p.offline_replicas));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PartitionMetadata;

    fn parse(argv: &[&str]) -> Result<TopicsArgs, clap::Error> {
        crate::tools::parse_args(argv)
    }

    #[test]
    fn parses_create_with_repeated_configs() {
        let args = parse(&[
            "--bootstrap-server",
            "b:1",
            "create",
            "--topic",
            "t",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact",
            "--if-not-exists",
        ])
        .unwrap();
        assert_eq!(args.connection.bootstrap_server, "b:1");
        match args.command {
            TopicsCommand::Create {
                topic,
                partitions,
                replication_factor,
                configs,
                if_not_exists,
            } => {
                assert_eq!(topic, "t");
                assert_eq!(partitions, Some(3));
                assert_eq!(replication_factor, Some(1));
                assert_eq!(
                    configs,
                    vec![
                        ("retention.ms".to_string(), "1000".to_string()),
                        ("cleanup.policy".to_string(), "compact".to_string())
                    ]
                );
                assert!(if_not_exists);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_alter_and_defaults() {
        let args = parse(&[
            "alter",
            "--topic",
            "t",
            "--partitions",
            "6",
            "--delete-config",
            "a",
            "--delete-config",
            "b",
        ])
        .unwrap();
        assert_eq!(args.connection.request_timeout_ms, 30_000);
        match args.command {
            TopicsCommand::Alter {
                topic,
                partitions,
                configs,
                delete_configs,
            } => {
                assert_eq!(topic, "t");
                assert_eq!(partitions, Some(6));
                assert!(configs.is_empty());
                assert_eq!(delete_configs, vec!["a".to_string(), "b".to_string()]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_config_and_missing_topic() {
        assert!(parse(&["create", "--topic", "t", "--config", "novalue"]).is_err());
        assert!(parse(&["delete"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }

    #[test]
    fn formats_describe_like_kafka_topics() {
        let topic = TopicMetadata {
            name: "orders".into(),
            topic_id: uuid::Uuid::nil(),
            is_internal: false,
            partitions: vec![
                PartitionMetadata {
                    partition: 0,
                    leader: Some(1),
                    leader_epoch: 0,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    offline_replicas: vec![],
                    error: None,
                },
                PartitionMetadata {
                    partition: 1,
                    leader: None,
                    leader_epoch: 0,
                    replicas: vec![2, 1],
                    isr: vec![],
                    offline_replicas: vec![2],
                    error: Some((5, "LEADER_NOT_AVAILABLE")),
                },
            ],
            error: None,
        };
        let configs = vec![
            ConfigEntry {
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
                read_only: false,
                source: ConfigSource::DynamicTopicConfig,
                is_default: false,
                sensitive: false,
            },
            ConfigEntry {
                name: "segment.bytes".into(),
                value: Some("1073741824".into()),
                read_only: false,
                source: ConfigSource::DefaultConfig,
                is_default: true,
                sensitive: false,
            },
        ];
        assert_eq!(
            format_topic(&topic, &configs),
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAA\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: cleanup.policy=compact\n\
             \tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\n\
             \tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,1\tIsr: \tOffline: 2\n"
        );
    }
}
