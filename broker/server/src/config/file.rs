//! `--config FILE`: a Kafka-style `server.properties` under the flags.
//!
//! Which keys a file may hold, their kinds and what each sets are the
//! `ironlog_broker_config` crate's (its docs have the table). Here the result is laid onto
//! [`BrokerArgs`] with clap's own parsers, so a value from the file is converted exactly as
//! the same value on the command line would be:
//!
//! - a flag set on the command line or by its `IRONLOG_*` variable keeps that value
//!   (clap's [`ValueSource`] tells them from a default);
//! - otherwise the file's value replaces the built-in default;
//! - the file's topic-default keys and `--default-topic-config` combine; the flag wins for
//!   the same topic config.
//!
//! The file is read once, at start-up ([`load`]); every problem is reported with the file,
//! line and key before the broker binds anything.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use ironlog_broker_config::{parse_properties, resolve, ConfigError as FileError, Setting};

use super::{BrokerArgs, ConfigError};

/// A config file that was applied, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub path: PathBuf,
    /// Keys in the file.
    pub keys: usize,
}

/// Reads `args.config`, if given, and applies it to `args` under the command line and the
/// environment. `matches` are the ones `args` came from (the `broker` subcommand's).
///
/// # Errors
/// [`ConfigError::ReadConfigFile`] when the file can't be read, [`ConfigError::ConfigFile`]
/// (naming the line and key) for anything wrong in it.
pub fn load(args: &mut BrokerArgs, matches: &ArgMatches) -> Result<Option<Loaded>, ConfigError> {
    let Some(path) = args.config.clone() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadConfigFile {
        path: path.clone(),
        source,
    })?;
    let keys = apply(args, matches, &text).map_err(|error| ConfigError::ConfigFile {
        path: path.clone(),
        error,
    })?;
    Ok(Some(Loaded { path, keys }))
}

/// Applies properties `text` to `args` (see the module docs for precedence). Pure.
/// Returns how many keys the text holds.
///
/// # Errors
/// The first problem in the text: what `ironlog_broker_config::resolve` finds, or a value
/// the flag or topic config it sets refuses.
pub fn apply(args: &mut BrokerArgs, matches: &ArgMatches, text: &str) -> Result<usize, FileError> {
    let entries = parse_properties(text)?;
    let settings = resolve(&entries)?;
    let command = file_command();
    for setting in &settings.flags {
        let Some(arg) = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(setting.name))
        else {
            return Err(refused(
                setting,
                format!("--{} is not a broker flag", setting.name),
            ));
        };
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        // The file command has no defaults and no env, so these matches hold this one flag
        // and the update below changes only its field.
        let one = command
            .clone()
            .try_get_matches_from([
                "ironlog broker",
                &format!("--{}={}", setting.name, setting.value),
            ])
            .map_err(|e| refused(setting, clap_reason(&e)))?;
        args.update_from_arg_matches(&one)
            .map_err(|e| refused(setting, clap_reason(&e)))?;
    }
    for setting in &settings.topic_defaults {
        crate::metadata::topic_config::validate(&[(
            setting.name.to_string(),
            setting.value.clone(),
        )])
        .map_err(|e| refused(setting, e.to_string()))?;
    }
    let from_flags = std::mem::take(&mut args.default_topic_config);
    args.default_topic_config = settings
        .topic_defaults
        .iter()
        .filter(|s| !from_flags.iter().any(|(name, _)| name == s.name))
        .map(|s| (s.name.to_string(), s.value.clone()))
        .collect();
    args.default_topic_config.extend(from_flags);
    Ok(entries.len())
}

/// [`BrokerArgs`]' arguments without defaults or environment variables: parsing one
/// `--flag=value` with it yields matches holding just that flag.
fn file_command() -> Command {
    BrokerArgs::augment_args(Command::new("ironlog broker"))
        .mut_args(|arg| arg.default_value(None).env(None))
}

fn refused(setting: &Setting, reason: String) -> FileError {
    FileError::InvalidValue {
        key: setting.key,
        value: setting.value.clone(),
        reason: format!("--{}: {reason}", setting.name),
    }
    .at(setting.line)
}

/// The reason in a clap error, without clap's "error:" prefix and usage hint.
fn clap_reason(e: &clap::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use ironlog_broker_config::Sets;
    use std::collections::BTreeSet;

    /// `ironlog broker FLAGS` with config file `text`.
    fn with_file(flags: &[&str], text: &str) -> Result<BrokerArgs, FileError> {
        let matches = BrokerArgs::augment_args(Command::new("ironlog broker"))
            .try_get_matches_from(std::iter::once("ironlog broker").chain(flags.iter().copied()))
            .expect("flags parse");
        let mut args = BrokerArgs::from_arg_matches(&matches).expect("flags parse");
        apply(&mut args, &matches, text)?;
        Ok(args)
    }

    #[test]
    fn the_file_replaces_defaults() {
        let args = with_file(
            &[],
            "node.id=4\n\
             listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\n\
             advertised.listeners=PLAINTEXT://b4.example:9092\n\
             controller.quorum.voters=4@b4.example:19093\n\
             log.dirs=/var/lib/ironlog\n\
             num.partitions=3\n\
             default.replication.factor=2\n\
             auto.create.topics.enable=false\n\
             broker.rack=r1\n\
             leader.imbalance.check.interval.seconds=60\n\
             log.cleaner.io.max.bytes.per.second=1.5\n\
             ironlog.metrics.listen=0.0.0.0:19644\n\
             ironlog.log.level=debug\n",
        )
        .unwrap();
        assert_eq!(args.node_id, 4);
        assert_eq!(args.listen.to_string(), "127.0.0.1:19092");
        assert_eq!(
            args.controller_listen.unwrap().to_string(),
            "127.0.0.1:19093"
        );
        assert_eq!(args.advertised_listener.as_deref(), Some("b4.example:9092"));
        assert_eq!(args.voters, vec![(4, "b4.example:19093".to_string())]);
        assert_eq!(args.data_dir, PathBuf::from("/var/lib/ironlog"));
        assert_eq!(args.default_partitions, 3);
        assert_eq!(args.default_replication_factor, 2);
        assert!(!args.auto_create_topics);
        assert_eq!(args.rack.as_deref(), Some("r1"));
        assert_eq!(args.leader_imbalance_check_interval_ms, 60_000);
        assert_eq!(args.log_cleaner_io_max_bytes_per_second, 1.5);
        assert_eq!(args.metrics_listen.to_string(), "0.0.0.0:19644");
        assert_eq!(args.log_level, "debug");
        // Untouched flags keep their defaults.
        assert_eq!(args.max_connections, 10_000);
        let config = BrokerConfig::from_args(&args).unwrap();
        assert_eq!(config.advertised_host, "b4.example");
        assert_eq!(config.cluster.voters.len(), 1);
    }

    #[test]
    fn several_listeners_with_tls_and_sasl() {
        let args = with_file(
            &[],
            "listeners=CLIENT://0.0.0.0:9093,INTERNAL://0.0.0.0:9094\n\
             listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT\n\
             inter.broker.listener.name=INTERNAL\n\
             ironlog.tls.cert=/c.pem\n\
             ironlog.tls.key=/k.pem\n",
        )
        .unwrap();
        assert_eq!(
            args.listeners.as_deref(),
            Some("CLIENT://0.0.0.0:9093,INTERNAL://0.0.0.0:9094")
        );
        assert_eq!(
            args.listener_security_protocol_map.as_deref(),
            Some("CLIENT:SASL_SSL,INTERNAL:PLAINTEXT")
        );
        assert_eq!(args.inter_broker_listener_name.as_deref(), Some("INTERNAL"));
        assert_eq!(args.tls_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(args.tls_key, Some(PathBuf::from("/k.pem")));
        // --listen is left alone: --listeners replaces it.
        assert_eq!(args.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(args.advertised_listener, None);
        let config = BrokerConfig::from_args(&args).unwrap();
        let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["CLIENT", "INTERNAL"]);
        assert_eq!(config.inter_broker_listener, "INTERNAL");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9094");
    }

    #[test]
    fn the_sasl_keys_set_their_flags() {
        let args = with_file(
            &[],
            "sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             connections.max.reauth.ms=60000\n\
             ironlog.tls.client.ca=/ca.pem\n\
             ironlog.tls.reload.interval.ms=1000\n\
             advertised.listeners=CLIENT://b1.example:9093,INTERNAL://10.0.0.5:9094\n\
             ironlog.add.scram=SCRAM-SHA-512=[name=a,password=p];SCRAM-SHA-256=[name=b,password=q]\n",
        )
        .unwrap();
        assert_eq!(
            args.add_scram,
            [
                "SCRAM-SHA-512=[name=a,password=p]",
                "SCRAM-SHA-256=[name=b,password=q]"
            ]
        );
        assert_eq!(args.sasl_enabled_mechanisms, "SCRAM-SHA-512");
        assert_eq!(args.connections_max_reauth_ms, 60_000);
        assert_eq!(args.tls_client_ca, Some(PathBuf::from("/ca.pem")));
        assert_eq!(args.tls_reload_interval_ms, 1_000);
        assert_eq!(
            args.advertised_listeners.as_deref(),
            Some("CLIENT://b1.example:9093,INTERNAL://10.0.0.5:9094")
        );
    }

    #[test]
    fn a_flag_beats_the_file() {
        let args = with_file(
            &["--default-partitions=5", "--listen=127.0.0.1:29092"],
            "num.partitions=3\nlisteners=PLAINTEXT://127.0.0.1:19092\nmax.connections=7\n",
        )
        .unwrap();
        assert_eq!(args.default_partitions, 5);
        assert_eq!(args.listen.to_string(), "127.0.0.1:29092");
        assert_eq!(args.max_connections, 7, "the file still sets the others");
    }

    #[test]
    fn a_flag_given_with_its_default_value_still_beats_the_file() {
        let args = with_file(&["--default-partitions=1"], "num.partitions=3\n").unwrap();
        assert_eq!(args.default_partitions, 1);
    }

    #[test]
    fn the_environment_beats_the_file() {
        // No other unit test depends on this flag's value, so setting its variable here is
        // safe while they run.
        std::env::set_var("IRONLOG_BROKER_SESSION_TIMEOUT_MS", "12345");
        let result = with_file(
            &[],
            "broker.session.timeout.ms=99999\nbroker.heartbeat.interval.ms=1500\n",
        );
        std::env::remove_var("IRONLOG_BROKER_SESSION_TIMEOUT_MS");
        let args = result.unwrap();
        assert_eq!(args.broker_session_timeout_ms, 12_345);
        assert_eq!(args.broker_heartbeat_interval_ms, 1_500);
    }

    #[test]
    fn topic_defaults_combine_with_the_flag_and_the_flag_wins() {
        let args = with_file(
            &["--default-topic-config=retention.ms=1000,flush.messages=1"],
            "log.retention.hours=1\nlog.segment.bytes=1048576\n",
        )
        .unwrap();
        let mut got = args.default_topic_config.clone();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("flush.messages".to_string(), "1".to_string()),
                ("retention.ms".to_string(), "1000".to_string()),
                ("segment.bytes".to_string(), "1048576".to_string()),
            ]
        );
        let args = with_file(&[], "log.retention.ms=5000\n").unwrap();
        assert_eq!(
            args.default_topic_config,
            vec![("retention.ms".to_string(), "5000".to_string())]
        );
    }

    #[test]
    fn problems_name_the_line_and_key() {
        let err = with_file(&[], "num.partitions=3\nlog.retention.hour=1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: unknown broker config key "log.retention.hour" (did you mean "log.retention.hours"?)"#
        );
        let err = with_file(&[], "\nlog.dir=/a\nlog.dirs=/b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: log.dirs and log.dir (line 2) both set --data-dir; keep one"
        );
        let err = with_file(&[], "num.partitions=0\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1: "), "{err}");
        assert!(err.to_string().contains("num.partitions"), "{err}");
    }

    #[test]
    fn the_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, "# broker\nlog.retention.hour=168\n").unwrap();
        let matches = BrokerArgs::augment_args(Command::new("ironlog broker"))
            .try_get_matches_from(["ironlog broker", "--config", path.to_str().unwrap()])
            .unwrap();
        let mut args = BrokerArgs::from_arg_matches(&matches).unwrap();
        let err = load(&mut args, &matches).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains("line 2") && err.contains("log.retention.hour"),
            "{err}"
        );

        std::fs::write(&path, "num.partitions=2\n# c\nlog.retention.ms=1\n").unwrap();
        let loaded = load(&mut args, &matches).unwrap().unwrap();
        assert_eq!(loaded.keys, 2);
        assert_eq!(args.default_partitions, 2);

        args.config = Some(dir.path().join("missing.properties"));
        let err = load(&mut args, &matches).unwrap_err();
        assert!(matches!(err, ConfigError::ReadConfigFile { .. }), "{err}");
        assert!(err.to_string().contains("missing.properties"), "{err}");
    }

    #[test]
    fn every_flag_has_a_key_and_every_key_names_a_flag() {
        let command = file_command();
        let flags: BTreeSet<&str> = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .collect();
        let mut set_by_keys = BTreeSet::new();
        for spec in ironlog_broker_config::TABLE {
            let named: Vec<&str> = match spec.sets {
                Sets::Flag(flag) | Sets::ScaledFlag(flag, _) => vec![flag],
                Sets::Listeners => vec!["listen", "listeners", "controller-listen"],
                Sets::AdvertisedListeners => vec![
                    "advertised-listener",
                    "advertised-listeners",
                    "controller-advertised-listener",
                ],
                Sets::TopicDefault(topic) | Sets::ScaledTopicDefault(topic, _) => {
                    assert!(
                        crate::metadata::topic_config::is_known(topic),
                        "{} sets unknown topic config {topic}",
                        spec.key
                    );
                    vec!["default-topic-config"]
                }
                Sets::Nothing => vec![],
            };
            for flag in named {
                assert!(
                    flags.contains(flag),
                    "{} sets --{flag}, which is not a flag",
                    spec.key
                );
                set_by_keys.insert(flag);
            }
        }
        let without_key: Vec<&&str> = flags
            .iter()
            .filter(|f| !set_by_keys.contains(**f) && **f != "config")
            .collect();
        assert!(
            without_key.is_empty(),
            "flags without a config key: {without_key:?}"
        );
    }
}
