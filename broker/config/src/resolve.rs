//! A whole config file into what it sets: `ironlog broker` flags and broker-wide topic
//! config defaults. Here live the rules between keys: aliases that must not both be given,
//! Kafka's unit precedence, one Kafka listener, PLAINTEXT listeners only.

use std::collections::BTreeMap;

use crate::keys::{self, KeySpec, Sets};
use crate::listeners::{self, Listener};
use crate::{ConfigError, Entry};

/// What a config file sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `ironlog broker` flags by long name (`node-id`), in file order.
    pub flags: Vec<Setting>,
    /// Broker-wide topic config defaults by topic config name (`retention.ms`), in file
    /// order: what `--default-topic-config NAME=value` sets.
    pub topic_defaults: Vec<Setting>,
}

/// One value a config file sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The flag's long name without `--`, or the topic config's name.
    pub name: &'static str,
    /// In the form the flag or topic config takes (units converted, listeners split).
    pub value: String,
    /// The key that set it, and its line.
    pub key: &'static str,
    pub line: usize,
}

/// Checks every entry and turns the file into [`Settings`].
///
/// # Errors
/// The first problem, as [`ConfigError::AtLine`] around what [`crate::check`] reports, a
/// [`ConfigError::DuplicateKey`], a [`ConfigError::Conflict`] (two keys setting one flag,
/// like `log.dir` and `log.dirs`), [`ConfigError::NotSupported`] (two Kafka listeners, an
/// SSL or SASL listener) or [`ConfigError::Inconsistent`] (keys that disagree).
pub fn resolve(entries: &[Entry]) -> Result<Settings, ConfigError> {
    let mut file: Vec<(&'static KeySpec, &Entry)> = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some((_, first)) = file.iter().find(|(spec, _)| spec.key == entry.key) {
            return Err(ConfigError::DuplicateKey {
                key: entry.key.clone(),
                first: first.line,
                line: entry.line,
            });
        }
        let spec = keys::checked_spec(&entry.key, &entry.value).map_err(|e| e.at(entry.line))?;
        file.push((spec, entry));
    }
    let value_of = |key: &str| {
        file.iter()
            .find(|(spec, _)| spec.key == key)
            .map(|(_, entry)| (entry.value.trim(), entry.line))
    };
    let controller_names: Vec<String> = match value_of("controller.listener.names") {
        Some((names, _)) => names.split(',').map(|n| n.trim().to_string()).collect(),
        None => vec![listeners::DEFAULT_CONTROLLER_LISTENER_NAME.to_string()],
    };
    let protocol_map = match value_of("listener.security.protocol.map") {
        // check() parsed it already.
        Some((map, _)) => listeners::parse_protocol_map(map).unwrap_or_default(),
        None => Vec::new(),
    };

    let mut settings = Settings::default();
    // Topic config name → (unit factor, setting); the finest unit wins.
    let mut topic_defaults: BTreeMap<&'static str, (i64, Setting)> = BTreeMap::new();
    let mut topic_order: Vec<&'static str> = Vec::new();
    let mut kafka_listener_name: Option<String> = None;
    for (spec, entry) in &file {
        let value = entry.value.trim();
        let line = entry.line;
        let setting = |name: &'static str, value: String| Setting {
            name,
            value,
            key: spec.key,
            line,
        };
        match spec.sets {
            Sets::Flag(flag) => set_flag(&mut settings.flags, setting(flag, value.to_string()))?,
            Sets::ScaledFlag(flag, factor) => {
                let scaled = scale(spec, value, factor).map_err(|e| e.at(line))?;
                set_flag(&mut settings.flags, setting(flag, scaled.to_string()))?;
            }
            Sets::TopicDefault(name) | Sets::ScaledTopicDefault(name, _) => {
                let factor = match spec.sets {
                    Sets::ScaledTopicDefault(_, factor) => factor,
                    _ => 1,
                };
                let value = if factor == 1 {
                    value.to_string()
                } else {
                    // Kafka: a negative retention in any unit is "unlimited".
                    let scaled = scale(spec, value, factor).map_err(|e| e.at(line))?;
                    scaled.max(-1).to_string()
                };
                if !topic_defaults.contains_key(name) {
                    topic_order.push(name);
                }
                let candidate = (factor, setting(name, value));
                match topic_defaults.get(name) {
                    Some((finer, _)) if *finer <= factor => {}
                    _ => {
                        topic_defaults.insert(name, candidate);
                    }
                }
            }
            Sets::Listeners => {
                let split = split_listeners(spec, value, &controller_names, &protocol_map)
                    .map_err(|e| e.at(line))?;
                if let Some(kafka) = split.kafka {
                    kafka_listener_name.clone_from(&kafka.name);
                    set_flag(&mut settings.flags, setting("listen", kafka.bind_address()))?;
                }
                if let Some(controller) = split.controller {
                    set_flag(
                        &mut settings.flags,
                        setting("controller-listen", controller.bind_address()),
                    )?;
                }
            }
            Sets::AdvertisedListeners => {
                let split = split_listeners(spec, value, &controller_names, &protocol_map)
                    .map_err(|e| e.at(line))?;
                if let Some(kafka) = split.kafka {
                    set_flag(
                        &mut settings.flags,
                        setting("advertised-listener", kafka.host_port()),
                    )?;
                }
                if let Some(controller) = split.controller {
                    set_flag(
                        &mut settings.flags,
                        setting("controller-advertised-listener", controller.host_port()),
                    )?;
                }
            }
            Sets::Nothing => {}
        }
    }
    settings.topic_defaults = topic_order
        .into_iter()
        .filter_map(|name| topic_defaults.remove(name).map(|(_, s)| s))
        .collect();

    if let Some((name, line)) = value_of("inter.broker.listener.name") {
        check_inter_broker_listener(
            name,
            kafka_listener_name.as_deref(),
            &controller_names,
            &protocol_map,
        )
        .map_err(|e| e.at(line))?;
    }
    if let Some((roles, line)) = value_of("process.roles") {
        let node_id = value_of("node.id").or_else(|| value_of("broker.id"));
        if let (Some((node_id, _)), Some((voters, _))) =
            (node_id, value_of("controller.quorum.voters"))
        {
            check_roles(roles, node_id, voters).map_err(|e| e.at(line))?;
        }
    }
    Ok(settings)
}

/// Adds a flag setting; a flag set by another key already is a conflict.
fn set_flag(flags: &mut Vec<Setting>, setting: Setting) -> Result<(), ConfigError> {
    if let Some(other) = flags.iter().find(|s| s.name == setting.name) {
        return Err(ConfigError::Conflict {
            key: setting.key,
            other: other.key,
            other_line: other.line,
            what: format!("--{}", setting.name),
        }
        .at(setting.line));
    }
    flags.push(setting);
    Ok(())
}

/// `value × factor`, for unit changes.
fn scale(spec: &KeySpec, value: &str, factor: i64) -> Result<i64, ConfigError> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|v| v.checked_mul(factor))
        .ok_or_else(|| ConfigError::InvalidValue {
            key: spec.key,
            value: value.to_string(),
            reason: "too large".into(),
        })
}

fn split_listeners(
    spec: &KeySpec,
    value: &str,
    controller_names: &[String],
    protocol_map: &[(String, String)],
) -> Result<listeners::ListenerSplit, ConfigError> {
    let unsupported = |reason: String| ConfigError::NotSupported {
        key: spec.key,
        value: value.to_string(),
        reason,
    };
    // check() parsed the list already; parse errors cannot happen here.
    let parsed: Vec<Listener> = listeners::parse(value).unwrap_or_default();
    for name in parsed.iter().filter_map(|l| l.name.as_deref()) {
        let protocol = listeners::protocol_of(name, protocol_map);
        if protocol != listeners::PLAINTEXT {
            return Err(unsupported(format!(
                "listener {name} uses {protocol}; Ironlog serves PLAINTEXT only (TLS and SASL are not supported yet)"
            )));
        }
    }
    listeners::split(parsed, controller_names).map_err(unsupported)
}

fn check_inter_broker_listener(
    name: &str,
    kafka_listener: Option<&str>,
    controller_names: &[String],
    protocol_map: &[(String, String)],
) -> Result<(), ConfigError> {
    let inconsistent = |reason: String| ConfigError::Inconsistent {
        key: "inter.broker.listener.name",
        reason,
    };
    let protocol = listeners::protocol_of(name, protocol_map);
    if protocol != listeners::PLAINTEXT {
        return Err(ConfigError::NotSupported {
            key: "inter.broker.listener.name",
            value: name.to_string(),
            reason: format!(
                "listener {name} uses {protocol}; Ironlog serves PLAINTEXT only (TLS and SASL are not supported yet)"
            ),
        });
    }
    if controller_names
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
    {
        return Err(inconsistent(format!(
            "{name} is a controller listener (controller.listener.names); brokers talk to each other on the Kafka listener"
        )));
    }
    match kafka_listener {
        Some(kafka) if !kafka.eq_ignore_ascii_case(name) => Err(inconsistent(format!(
            "{name} is not the Kafka listener in listeners ({kafka}); Ironlog serves one listener, which brokers share with clients"
        ))),
        _ => Ok(()),
    }
}

/// `process.roles` against `controller.quorum.voters`: a voter has the controller role and
/// a node with it is a voter.
fn check_roles(roles: &str, node_id: &str, voters: &str) -> Result<(), ConfigError> {
    let controller = roles.split(',').any(|r| r.trim() == "controller");
    let voter = voters
        .split(',')
        .filter_map(|v| v.trim().split_once('@'))
        .any(|(id, _)| id == node_id);
    let reason = match (controller, voter) {
        (false, true) => format!(
            "node {node_id} is in controller.quorum.voters, so it needs the controller role: process.roles=broker,controller"
        ),
        (true, false) => format!(
            "node {node_id} is not in controller.quorum.voters, so it cannot have the controller role: process.roles=broker"
        ),
        _ => return Ok(()),
    };
    Err(ConfigError::Inconsistent {
        key: "process.roles",
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_properties;

    fn resolve_text(text: &str) -> Result<Settings, ConfigError> {
        resolve(&parse_properties(text).expect("parses"))
    }

    fn flags(settings: &Settings) -> Vec<(&str, &str)> {
        settings
            .flags
            .iter()
            .map(|s| (s.name, s.value.as_str()))
            .collect()
    }

    fn topic_defaults(settings: &Settings) -> Vec<(&str, &str)> {
        settings
            .topic_defaults
            .iter()
            .map(|s| (s.name, s.value.as_str()))
            .collect()
    }

    #[test]
    fn a_typical_kraft_file_sets_the_flags() {
        let s = resolve_text(
            "process.roles=broker,controller\n\
             node.id=2\n\
             controller.quorum.voters=1@b1:9093,2@b2:9093,3@b3:9093\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             advertised.listeners=PLAINTEXT://b2.example:9092\n\
             inter.broker.listener.name=PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs=/var/lib/ironlog\n\
             num.partitions=3\n\
             leader.imbalance.check.interval.seconds=60\n\
             ironlog.metrics.listen=0.0.0.0:9644\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("node-id", "2"),
                ("voters", "1@b1:9093,2@b2:9093,3@b3:9093"),
                ("listen", "0.0.0.0:9092"),
                ("controller-listen", "0.0.0.0:9093"),
                ("advertised-listener", "b2.example:9092"),
                ("data-dir", "/var/lib/ironlog"),
                ("default-partitions", "3"),
                ("leader-imbalance-check-interval-ms", "60000"),
                ("metrics-listen", "0.0.0.0:9644"),
            ]
        );
        assert_eq!(s.flags[0].key, "node.id");
        assert_eq!(s.flags[0].line, 2);
        assert!(s.topic_defaults.is_empty());
    }

    #[test]
    fn topic_defaults_take_kafkas_unit_precedence() {
        let s = resolve_text(
            "log.retention.hours=168\nlog.retention.minutes=10\nlog.roll.hours=2\nlog.segment.bytes=1024\n",
        )
        .unwrap();
        assert_eq!(
            topic_defaults(&s),
            vec![
                ("retention.ms", "600000"),
                ("segment.ms", "7200000"),
                ("segment.bytes", "1024")
            ]
        );
        let s = resolve_text("log.retention.ms=5\nlog.retention.hours=1\n").unwrap();
        assert_eq!(topic_defaults(&s), vec![("retention.ms", "5")]);
        assert_eq!(s.topic_defaults[0].key, "log.retention.ms");
        // -1 in any unit is unlimited.
        let s = resolve_text("log.retention.hours=-1\n").unwrap();
        assert_eq!(topic_defaults(&s), vec![("retention.ms", "-1")]);
        assert!(s.flags.is_empty());
    }

    #[test]
    fn aliases_conflict_naming_both_lines() {
        let err = resolve_text("log.dirs=/a\nnum.partitions=1\nlog.dir=/b\n").unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "line 3: log.dir and log.dirs (line 1) both set --data-dir; keep one"
        );
        assert!(resolve_text("node.id=1\nbroker.id=1\n").is_err());
        let err = resolve_text(
            "advertised.listeners=PLAINTEXT://b:9092,CONTROLLER://b:9093\nironlog.controller.advertised.listener=c:9093\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 2, .. }), "{err}");
    }

    #[test]
    fn errors_carry_the_line_and_key() {
        let err = resolve_text("num.partitions=3\n\nlog.retention.hour=1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 3: unknown broker config key "log.retention.hour" (did you mean "log.retention.hours"?)"#
        );
        let err = resolve_text("num.partitions=three\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 1: invalid value "three" for num.partitions: not a whole number"#
        );
    }

    #[test]
    fn listeners_with_a_custom_controller_name_and_bare_addresses() {
        let s = resolve_text(
            "controller.listener.names=RAFT\nlisteners=CLIENT://127.0.0.1:9092,RAFT://127.0.0.1:9093\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listen", "127.0.0.1:9092"),
                ("controller-listen", "127.0.0.1:9093")
            ]
        );
        let s = resolve_text("listeners=10.0.0.1:9092\nadvertised.listeners=b1:9092\n").unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listen", "10.0.0.1:9092"),
                ("advertised-listener", "b1:9092")
            ]
        );
        let err = resolve_text("listeners=PLAINTEXT://:9092,INTERNAL://:9094\n").unwrap_err();
        assert!(err.to_string().contains("one Kafka listener"), "{err}");
        assert!(err.to_string().starts_with("line 1: "), "{err}");
    }

    #[test]
    fn only_plaintext_listeners_are_served() {
        let err = resolve_text("listeners=SSL://:9093\n").unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");
        let err = resolve_text(
            "listener.security.protocol.map=CLIENT:PLAINTEXT\nlisteners=CLIENT://:9092\ninter.broker.listener.name=SASL_SSL\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");
        // An explicit map entry makes any name PLAINTEXT.
        assert!(resolve_text(
            "listener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT\nlisteners=CLIENT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=CLIENT\n"
        )
        .is_ok());
    }

    #[test]
    fn the_inter_broker_listener_must_be_the_kafka_listener() {
        let err = resolve_text(
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=INTERNAL\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 2, .. }), "{err}");
        assert!(
            err.to_string().contains("inter.broker.listener.name"),
            "{err}"
        );
        assert!(resolve_text("inter.broker.listener.name=CONTROLLER\n").is_err());
    }

    #[test]
    fn roles_agree_with_the_voters() {
        let voters = "controller.quorum.voters=1@a:9093\n";
        assert!(resolve_text(&format!(
            "{voters}node.id=1\nprocess.roles=broker,controller\n"
        ))
        .is_ok());
        assert!(resolve_text(&format!("{voters}node.id=2\nprocess.roles=broker\n")).is_ok());
        let err = resolve_text(&format!("{voters}node.id=1\nprocess.roles=broker\n")).unwrap_err();
        assert!(
            err.to_string().contains("needs the controller role"),
            "{err}"
        );
        let err = resolve_text(&format!(
            "{voters}node.id=2\nprocess.roles=controller,broker\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot have the controller role"),
            "{err}"
        );
    }

    #[test]
    fn a_duplicate_entry_is_refused_even_when_not_from_a_file() {
        let entry = |line| Entry {
            key: "num.partitions".into(),
            value: "1".into(),
            line,
        };
        assert!(matches!(
            resolve(&[entry(1), entry(2)]),
            Err(ConfigError::DuplicateKey {
                first: 1,
                line: 2,
                ..
            })
        ));
    }
}
