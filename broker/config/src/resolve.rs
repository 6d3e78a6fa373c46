//! A whole config file into what it sets: `ironlog broker` flags and broker-wide topic
//! config defaults. Here live the rules between keys: aliases that must not both be given,
//! Kafka's unit precedence, which listener is the controller's and which flags the Kafka
//! listeners become (`--listen` for one PLAINTEXT listener named PLAINTEXT or unnamed, else `--listeners`), the
//! inter-broker listener.

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
/// like `log.dir` and `log.dirs`), [`ConfigError::InvalidValue`] (an entry without a name
/// among several Kafka listeners), [`ConfigError::NotSupported`] (two controller listeners,
/// a controller listener that is not PLAINTEXT) or [`ConfigError::Inconsistent`] (keys that
/// disagree: an advertised listener not in `listeners`, an inter-broker listener that is
/// not a Kafka listener).
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
    let bound = match value_of("listeners") {
        Some((value, line)) => Some(
            split_listeners("listeners", value, &controller_names, &protocol_map)
                .map_err(|e| e.at(line))?,
        ),
        None => None,
    };
    // Whether the Kafka listeners become `--listeners` (rather than `--listen`); `None`
    // when the file doesn't say (no `listeners`, or one with only the controller entry).
    let bound_multi = bound
        .as_ref()
        .filter(|split| !split.kafka.is_empty())
        .map(|split| !split.is_single_plaintext(&protocol_map));
    let advertised = match value_of("advertised.listeners") {
        Some((value, line)) => {
            let split = split_listeners(
                "advertised.listeners",
                value,
                &controller_names,
                &protocol_map,
            )
            .map_err(|e| e.at(line))?;
            check_advertised(&split, bound.as_ref()).map_err(|e| e.at(line))?;
            Some(split)
        }
        None => None,
    };

    let mut settings = Settings::default();
    // Topic config name → (unit factor, setting); the finest unit wins.
    let mut topic_defaults: BTreeMap<&'static str, (i64, Setting)> = BTreeMap::new();
    let mut topic_order: Vec<&'static str> = Vec::new();
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
            // Passed on, or not, with the check against the listeners below.
            Sets::Flag(_) if spec.key == INTER_BROKER_LISTENER_NAME => {}
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
                let split = bound.as_ref().expect("split above");
                match split.kafka.as_slice() {
                    [] => {}
                    [only] if bound_multi == Some(false) => {
                        set_flag(&mut settings.flags, setting("listen", only.bind_address()))?;
                    }
                    kafka => set_flag(
                        &mut settings.flags,
                        setting("listeners", listeners::join(kafka)),
                    )?,
                }
                if let Some(controller) = &split.controller {
                    set_flag(
                        &mut settings.flags,
                        setting("controller-listen", controller.bind_address()),
                    )?;
                }
            }
            Sets::AdvertisedListeners => {
                let split = advertised.as_ref().expect("split above");
                let multi =
                    bound_multi.unwrap_or_else(|| !split.is_single_plaintext(&protocol_map));
                match split.kafka.as_slice() {
                    [] => {}
                    [only] if !multi => set_flag(
                        &mut settings.flags,
                        setting("advertised-listener", only.host_port()),
                    )?,
                    kafka => set_flag(
                        &mut settings.flags,
                        setting("advertised-listeners", listeners::join(kafka)),
                    )?,
                }
                if let Some(controller) = &split.controller {
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

    if let Some((name, line)) = value_of(INTER_BROKER_LISTENER_NAME) {
        check_inter_broker_listener(name, bound.as_ref(), &controller_names)
            .map_err(|e| e.at(line))?;
        // With `--listen` the broker's one listener is the inter-broker listener (under its
        // own name, PLAINTEXT): the check above is all there is to it.
        if bound_multi != Some(false) {
            set_flag(
                &mut settings.flags,
                Setting {
                    name: "inter-broker-listener-name",
                    value: name.to_string(),
                    key: INTER_BROKER_LISTENER_NAME,
                    line,
                },
            )?;
        }
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

const INTER_BROKER_LISTENER_NAME: &str = "inter.broker.listener.name";

/// Splits `listeners` or `advertised.listeners` into the Kafka listeners and the
/// controller listener, which must be PLAINTEXT.
fn split_listeners(
    key: &'static str,
    value: &str,
    controller_names: &[String],
    protocol_map: &[(String, String)],
) -> Result<listeners::ListenerSplit, ConfigError> {
    // check() parsed the list already; parse errors cannot happen here.
    let parsed: Vec<Listener> = listeners::parse(value).unwrap_or_default();
    let split = listeners::split(parsed, controller_names).map_err(|e| match e {
        listeners::SplitError::Unnamed(reason) => ConfigError::InvalidValue {
            key,
            value: value.to_string(),
            reason,
        },
        listeners::SplitError::TwoControllers(reason) => ConfigError::NotSupported {
            key,
            value: value.to_string(),
            reason,
        },
    })?;
    if let Some(name) = split.controller.as_ref().and_then(|c| c.name.as_deref()) {
        let protocol = listeners::protocol_of(name, protocol_map);
        if protocol != listeners::PLAINTEXT {
            return Err(ConfigError::NotSupported {
                key,
                value: value.to_string(),
                reason: format!(
                    "the controller listener {name} uses {protocol}; Ironlog's controller listener is PLAINTEXT (TLS and SASL are served on Kafka listeners)"
                ),
            });
        }
    }
    Ok(split)
}

/// `advertised.listeners` against `listeners`: each named Kafka entry advertises a Kafka
/// listener of `listeners`, and an entry without a name is only clear with one of them.
fn check_advertised(
    advertised: &listeners::ListenerSplit,
    bound: Option<&listeners::ListenerSplit>,
) -> Result<(), ConfigError> {
    let inconsistent = |reason: String| ConfigError::Inconsistent {
        key: "advertised.listeners",
        reason,
    };
    let Some(bound) = bound.filter(|b| !b.kafka.is_empty()) else {
        return Ok(());
    };
    // A listener written without a name goes by any name.
    if bound.kafka.iter().any(|l| l.name.is_none()) {
        return Ok(());
    }
    let names = || {
        bound
            .kafka
            .iter()
            .filter_map(|l| l.name.as_deref())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for entry in &advertised.kafka {
        match &entry.name {
            Some(name) if !bound.kafka.iter().any(|l| l.name.as_ref() == Some(name)) => {
                return Err(inconsistent(format!(
                    "{entry} advertises listener {name}, which is not a Kafka listener in listeners ({})",
                    names()
                )));
            }
            None if bound.kafka.len() > 1 => {
                return Err(inconsistent(format!(
                    "{entry} has no name: with several listeners in listeners ({}) say which one it advertises (NAME://host:port)",
                    names()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `inter.broker.listener.name` names a Kafka listener: not the controller listener, and
/// one of `listeners` when the file has them.
fn check_inter_broker_listener(
    name: &str,
    bound: Option<&listeners::ListenerSplit>,
    controller_names: &[String],
) -> Result<(), ConfigError> {
    let inconsistent = |reason: String| ConfigError::Inconsistent {
        key: INTER_BROKER_LISTENER_NAME,
        reason,
    };
    if controller_names
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
    {
        return Err(inconsistent(format!(
            "{name} is a controller listener (controller.listener.names); brokers talk to each other on a Kafka listener"
        )));
    }
    let Some(bound) = bound.filter(|b| !b.kafka.is_empty()) else {
        return Ok(());
    };
    // A listener written without a name (a bare host:port) goes by any name.
    let known = bound.kafka.iter().any(|l| {
        l.name
            .as_deref()
            .is_none_or(|n| n.eq_ignore_ascii_case(name))
    });
    if known {
        return Ok(());
    }
    let names: Vec<&str> = bound
        .kafka
        .iter()
        .filter_map(|l| l.name.as_deref())
        .collect();
    Err(inconsistent(format!(
        "{name} is not a Kafka listener in listeners ({})",
        names.join(", ")
    )))
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
                (
                    "listener-security-protocol-map",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                ),
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
                ("listeners", "CLIENT://127.0.0.1:9092"),
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
        let err = resolve_text("listeners=PLAINTEXT://:9092,10.0.0.1:9094\n").unwrap_err();
        assert!(err.to_string().contains("has no name"), "{err}");
        assert!(err.to_string().starts_with("line 1: "), "{err}");
    }

    #[test]
    fn one_plaintext_listener_keeps_listen() {
        let s = resolve_text("listeners=PLAINTEXT://0.0.0.0:9092\n").unwrap();
        assert_eq!(flags(&s), vec![("listen", "0.0.0.0:9092")]);
        // What the Kubernetes operator writes.
        let s = resolve_text(
            "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093\ncontroller.listener.names=CONTROLLER\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listen", "0.0.0.0:9092"),
                ("controller-listen", "0.0.0.0:9093")
            ]
        );
        // A PLAINTEXT listener with a name of its own keeps the name (advertised listeners
        // and the inter-broker listener name refer to it), so it needs --listeners.
        let s = resolve_text(
            "listener.security.protocol.map=INTERNAL:PLAINTEXT\nlisteners=INTERNAL://127.0.0.1:9094\nadvertised.listeners=INTERNAL://b1:9094\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listener-security-protocol-map", "INTERNAL:PLAINTEXT"),
                ("listeners", "INTERNAL://127.0.0.1:9094"),
                ("advertised-listeners", "INTERNAL://b1:9094")
            ]
        );
    }

    #[test]
    fn two_kafka_listeners_and_a_controller_become_listeners_and_controller_listen() {
        let s = resolve_text(
            "listeners=PLAINTEXT://:9092,INTERNAL://10.0.0.5:9094,CONTROLLER://:9093\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "PLAINTEXT://:9092,INTERNAL://10.0.0.5:9094"),
                ("controller-listen", "0.0.0.0:9093")
            ]
        );
        assert_eq!(s.flags[0].key, "listeners");
        // Names are upper-cased; IPv6 hosts keep their brackets; a custom controller name.
        let s = resolve_text(
            "controller.listener.names=RAFT\nlisteners=client://[::]:9092,raft://127.0.0.1:9093,internal://localhost:9094\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "CLIENT://[::]:9092,INTERNAL://localhost:9094"),
                ("controller-listen", "127.0.0.1:9093")
            ]
        );
    }

    #[test]
    fn one_tls_or_sasl_listener_becomes_listeners() {
        let s = resolve_text("listeners=SASL_SSL://:9093\n").unwrap();
        assert_eq!(flags(&s), vec![("listeners", "SASL_SSL://:9093")]);
        for protocol in ["SSL", "SASL_PLAINTEXT"] {
            let s = resolve_text(&format!(
                "listeners={protocol}://:9093,CONTROLLER://:9095\n"
            ))
            .unwrap();
            assert_eq!(
                flags(&s),
                vec![
                    ("listeners", format!("{protocol}://:9093").as_str()),
                    ("controller-listen", "0.0.0.0:9095")
                ]
            );
        }
    }

    #[test]
    fn the_protocol_map_is_passed_on_and_decides_the_flag() {
        let s = resolve_text(
            "listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:PLAINTEXT\n\
             listeners=CLIENT://0.0.0.0:9093,CONTROLLER://0.0.0.0:9095\n\
             advertised.listeners=CLIENT://b1.example:9093\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                (
                    "listener-security-protocol-map",
                    "CLIENT:SASL_SSL,CONTROLLER:PLAINTEXT"
                ),
                ("listeners", "CLIENT://0.0.0.0:9093"),
                ("controller-listen", "0.0.0.0:9095"),
                ("advertised-listeners", "CLIENT://b1.example:9093"),
            ]
        );
        // The map alone (the listeners on the command line) is passed on as written.
        let s = resolve_text("listener.security.protocol.map=client:sasl_ssl\n").unwrap();
        assert_eq!(
            flags(&s),
            vec![("listener-security-protocol-map", "client:sasl_ssl")]
        );
    }

    #[test]
    fn the_controller_listener_stays_plaintext() {
        let err = resolve_text(
            "listener.security.protocol.map=CLIENT:SSL,CONTROLLER:SSL\nlisteners=CLIENT://:9093,CONTROLLER://:9095\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 2, .. }), "{err}");
        assert!(
            err.to_string()
                .contains("controller listener CONTROLLER uses SSL"),
            "{err}"
        );
        let err = resolve_text(
            "controller.listener.names=SSL\nlisteners=PLAINTEXT://:9092,SSL://:9093\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("controller listener SSL uses SSL"),
            "{err}"
        );
        let err = resolve_text("listeners=CLIENT://:9093,CONTROLLER://:9095,C2://:9096\ncontroller.listener.names=CONTROLLER,C2\n")
            .unwrap_err();
        assert!(err.to_string().contains("one controller listener"), "{err}");
    }

    #[test]
    fn several_advertised_listeners_become_advertised_listeners() {
        let s = resolve_text(
            "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             listeners=CLIENT://:9093,INTERNAL://10.0.0.5:9094,CONTROLLER://10.0.0.5:9095\n\
             advertised.listeners=CLIENT://b1.example:9093,INTERNAL://10.0.0.5:9094,CONTROLLER://b1.internal:9095\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s)[1..],
            [
                ("listeners", "CLIENT://:9093,INTERNAL://10.0.0.5:9094"),
                ("controller-listen", "10.0.0.5:9095"),
                (
                    "advertised-listeners",
                    "CLIENT://b1.example:9093,INTERNAL://10.0.0.5:9094"
                ),
                ("controller-advertised-listener", "b1.internal:9095"),
            ]
        );
        // Several listeners bound, one advertised (a PLAINTEXT one): still the list form, so
        // the broker knows which listener it is.
        let s = resolve_text(
            "listeners=PLAINTEXT://:9092,SSL://:9093\nadvertised.listeners=PLAINTEXT://b1:9092\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "PLAINTEXT://:9092,SSL://:9093"),
                ("advertised-listeners", "PLAINTEXT://b1:9092")
            ]
        );
        // Without listeners in the file, the advertised entries decide.
        let s = resolve_text("advertised.listeners=PLAINTEXT://b1:9092,SSL://b1:9093\n").unwrap();
        assert_eq!(
            flags(&s),
            vec![("advertised-listeners", "PLAINTEXT://b1:9092,SSL://b1:9093")]
        );
        let s = resolve_text("advertised.listeners=PLAINTEXT://b1:9092\n").unwrap();
        assert_eq!(flags(&s), vec![("advertised-listener", "b1:9092")]);
        // One TLS listener, advertised without its name: it is that one.
        let s = resolve_text("listeners=SSL://:9093\nadvertised.listeners=b1:9093\n").unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "SSL://:9093"),
                ("advertised-listeners", "b1:9093")
            ]
        );
    }

    #[test]
    fn advertised_listeners_must_be_listeners() {
        let err = resolve_text(
            "listeners=CLIENT://:9093,INTERNAL://:9094\nadvertised.listeners=CLIENT://b1:9093,EXTERNAL://b1:9096\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 2, .. }), "{err}");
        assert!(
            err.to_string().contains(
                "EXTERNAL, which is not a Kafka listener in listeners (CLIENT, INTERNAL)"
            ),
            "{err}"
        );
        let err = resolve_text(
            "listeners=CLIENT://:9093,INTERNAL://:9094\nadvertised.listeners=b1:9093\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("say which one it advertises"),
            "{err}"
        );
        let err = resolve_text("advertised.listeners=PLAINTEXT://b1:9092,b1:9093\n").unwrap_err();
        assert!(err.to_string().contains("has no name"), "{err}");
        // The single-listener forms are as before.
        assert!(resolve_text(
            "listeners=10.0.0.1:9092\nadvertised.listeners=PLAINTEXT://b1:9092\n"
        )
        .is_ok());
    }

    #[test]
    fn the_inter_broker_listener_must_be_a_kafka_listener() {
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
        let err = resolve_text(
            "controller.listener.names=RAFT\nlisteners=CLIENT://:9093,INTERNAL://:9094,RAFT://:9095\ninter.broker.listener.name=raft\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 3, .. }), "{err}");
        assert!(
            err.to_string().contains("raft is a controller listener"),
            "{err}"
        );
        let err = resolve_text(
            "listeners=CLIENT://:9093,INTERNAL://:9094\ninter.broker.listener.name=EXTERNAL\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("EXTERNAL is not a Kafka listener in listeners (CLIENT, INTERNAL)"),
            "{err}"
        );
    }

    #[test]
    fn the_inter_broker_listener_is_passed_on_with_listeners() {
        let s = resolve_text(
            "listeners=CLIENT://0.0.0.0:9093,INTERNAL://0.0.0.0:9094\n\
             listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT\n\
             inter.broker.listener.name=internal\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "CLIENT://0.0.0.0:9093,INTERNAL://0.0.0.0:9094"),
                (
                    "listener-security-protocol-map",
                    "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT"
                ),
                ("inter-broker-listener-name", "internal"),
            ]
        );
        assert_eq!(s.flags[2].line, 3);
        // A TLS or SASL listener may be the inter-broker one as far as the file goes (the
        // broker says what a cluster needs).
        assert!(
            resolve_text("listeners=SASL_SSL://:9093\ninter.broker.listener.name=SASL_SSL\n")
                .is_ok()
        );
        // Without listeners in the file it is passed on too.
        let s = resolve_text("inter.broker.listener.name=PLAINTEXT\n").unwrap();
        assert_eq!(flags(&s), vec![("inter-broker-listener-name", "PLAINTEXT")]);
        // With --listen the one listener is the inter-broker listener: nothing to pass on.
        let s = resolve_text(
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listen", "0.0.0.0:9092"),
                ("controller-listen", "0.0.0.0:9093")
            ]
        );
        // A named one is passed on with it, as the Kubernetes operator writes it.
        let s = resolve_text(
            "listeners=PLAIN://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093\nlistener.security.protocol.map=PLAIN:PLAINTEXT,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=PLAIN\ncontroller.listener.names=CONTROLLER\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("listeners", "PLAIN://0.0.0.0:9092"),
                ("controller-listen", "0.0.0.0:9093"),
                (
                    "listener-security-protocol-map",
                    "PLAIN:PLAINTEXT,CONTROLLER:PLAINTEXT"
                ),
                ("inter-broker-listener-name", "PLAIN"),
            ]
        );
    }

    #[test]
    fn tls_and_sasl_keys_set_their_flags() {
        let s = resolve_text(
            "ironlog.tls.cert=/etc/ironlog/tls.crt\n\
             ironlog.tls.key=/etc/ironlog/tls.key\n\
             ironlog.tls.client.ca=/etc/ironlog/ca.crt\n\
             ironlog.tls.reload.interval.ms=1000\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n\
             connections.max.reauth.ms=3600000\n\
             ironlog.add.scram=SCRAM-SHA-512=[name=admin,password=pw]\n",
        )
        .unwrap();
        assert_eq!(
            flags(&s),
            vec![
                ("tls-cert", "/etc/ironlog/tls.crt"),
                ("tls-key", "/etc/ironlog/tls.key"),
                ("tls-client-ca", "/etc/ironlog/ca.crt"),
                ("tls-reload-interval-ms", "1000"),
                ("sasl-enabled-mechanisms", "SCRAM-SHA-512,PLAIN"),
                ("connections-max-reauth-ms", "3600000"),
                ("add-scram", "SCRAM-SHA-512=[name=admin,password=pw]"),
            ]
        );
        assert_eq!(s.flags[4].key, "sasl.enabled.mechanisms");
    }

    #[test]
    fn kafka_keystore_keys_are_refused_on_their_line() {
        let err =
            resolve_text("listeners=SSL://:9093\nssl.keystore.location=/etc/kafka/broker.jks\n")
                .unwrap_err();
        assert!(matches!(err, ConfigError::AtLine { line: 2, .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(
                r#"line 2: broker config key "ssl.keystore.location" is not supported: "#
            ),
            "{message}"
        );
        assert!(message.contains("ironlog.tls.cert"), "{message}");
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
