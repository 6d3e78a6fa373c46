//! Kafka's listener lists (`listeners`, `advertised.listeners`):
//! `NAME://host:port,NAME://host:port`, or a bare `host:port`.
//!
//! Ironlog serves one Kafka listener and at most one controller listener. The entry whose
//! name is in `controller.listener.names` (default `CONTROLLER`) is the controller
//! listener; the other one, or a bare `host:port`, is the Kafka listener.

/// The controller listener's name when `controller.listener.names` is not given.
pub const DEFAULT_CONTROLLER_LISTENER_NAME: &str = "CONTROLLER";

/// Kafka's security protocols, and the one Ironlog serves.
pub const PLAINTEXT: &str = "PLAINTEXT";
pub const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// One entry of a listener list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased (Kafka compares names case-insensitively); `None` for
    /// a bare `host:port`.
    pub name: Option<String>,
    /// As written, without IPv6 brackets; empty means "every interface" in `listeners`.
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// `host:port`, with brackets around an IPv6 host.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The address to bind: an empty host is every interface (as in Kafka) and
    /// `localhost` is the loopback address.
    pub fn bind_address(&self) -> String {
        let host = match self.host.as_str() {
            "" => "0.0.0.0",
            "localhost" => "127.0.0.1",
            other => other,
        };
        Listener {
            host: host.to_string(),
            ..self.clone()
        }
        .host_port()
    }
}

/// A listener list split into Ironlog's two listeners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSplit {
    /// The Kafka (client and inter-broker) listener.
    pub kafka: Option<Listener>,
    /// The controller (Raft) listener.
    pub controller: Option<Listener>,
}

/// Parses a listener list. Checks each entry's form and that no name repeats; which entry
/// is which is [`split`]'s job.
///
/// # Errors
/// A sentence saying what is wrong with the list.
pub fn parse(value: &str) -> Result<Vec<Listener>, String> {
    let mut listeners: Vec<Listener> = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err("has an empty entry".into());
        }
        let (name, address) = match item.split_once("://") {
            Some((name, address)) => {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "listener name {name:?} in {item:?} must be letters, digits and underscores"
                    ));
                }
                (Some(name.to_ascii_uppercase()), address)
            }
            None if item.contains('/') => {
                return Err(format!("{item:?} is not NAME://host:port or host:port"))
            }
            None => (None, item),
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("{item:?} has no port (expected NAME://host:port)"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("port {port:?} in {item:?} is not a number from 0 to 65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.contains(['/', ' ', '@']) {
            return Err(format!(
                "host {host:?} in {item:?} is not a host name or address"
            ));
        }
        if listeners.iter().any(|l| l.name.is_some() && l.name == name) {
            return Err(format!(
                "listener name {} appears twice",
                name.unwrap_or_default()
            ));
        }
        listeners.push(Listener {
            name,
            host: host.to_string(),
            port,
        });
    }
    Ok(listeners)
}

/// Sorts listeners into the Kafka listener and the controller listener.
///
/// # Errors
/// More than one Kafka listener (Ironlog serves one for now), or more than one controller
/// listener.
pub fn split(
    listeners: Vec<Listener>,
    controller_names: &[String],
) -> Result<ListenerSplit, String> {
    let mut split = ListenerSplit::default();
    for listener in listeners {
        let is_controller = listener
            .name
            .as_ref()
            .is_some_and(|n| controller_names.iter().any(|c| c.eq_ignore_ascii_case(n)));
        let slot = if is_controller {
            &mut split.controller
        } else {
            &mut split.kafka
        };
        if let Some(previous) = slot {
            let what = if is_controller { "controller" } else { "Kafka" };
            return Err(format!(
                "Ironlog serves one {what} listener for now, but both {} and {} are {what} listeners{}",
                describe(previous),
                describe(&listener),
                if is_controller {
                    ""
                } else {
                    " (a listener is the controller listener when its name is in controller.listener.names)"
                }
            ));
        }
        *slot = Some(listener);
    }
    Ok(split)
}

fn describe(listener: &Listener) -> String {
    match &listener.name {
        Some(name) => format!("{name}://{}", listener.host_port()),
        None => listener.host_port(),
    }
}

/// Checks `host` is something a socket can bind: an IP address, empty (every interface)
/// or `localhost`.
pub(crate) fn check_bindable(listener: &Listener) -> Result<(), String> {
    let host = listener.host.as_str();
    if host.is_empty() || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "Ironlog binds an IP address: {} has host {host:?}; use an interface's address, or 0.0.0.0 (or an empty host) for every interface, and put the name in advertised.listeners",
            describe(listener)
        ))
    }
}

/// The security protocol of a listener name: from `listener.security.protocol.map`, else
/// the name itself when it is a protocol's name (Kafka's default map), else PLAINTEXT.
pub(crate) fn protocol_of<'a>(name: &'a str, map: &'a [(String, String)]) -> &'a str {
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| p.as_str())
        .or_else(|| {
            SECURITY_PROTOCOLS
                .iter()
                .find(|p| p.eq_ignore_ascii_case(name))
                .copied()
        })
        .unwrap_or(PLAINTEXT)
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL,...`, upper-cased.
pub(crate) fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut map: Vec<(String, String)> = Vec::new();
    for item in value.split(',').map(str::trim) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} is not NAME:PROTOCOL"))?;
        let (name, protocol) = (
            name.trim().to_ascii_uppercase(),
            protocol.trim().to_ascii_uppercase(),
        );
        if name.is_empty() {
            return Err(format!("{item:?} has no listener name"));
        }
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(format!(
                "{protocol:?} is not a security protocol (one of {})",
                SECURITY_PROTOCOLS.join(", ")
            ));
        }
        if map.iter().any(|(n, _)| *n == name) {
            return Err(format!("listener name {name} appears twice"));
        }
        map.push((name, protocol));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: Option<&str>, host: &str, port: u16) -> Listener {
        Listener {
            name: name.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    fn controller() -> Vec<String> {
        vec![DEFAULT_CONTROLLER_LISTENER_NAME.to_string()]
    }

    #[test]
    fn kafka_form_and_bare_host_port() {
        assert_eq!(
            parse("PLAINTEXT://:9092,controller://0.0.0.0:9093").unwrap(),
            vec![
                l(Some("PLAINTEXT"), "", 9092),
                l(Some("CONTROLLER"), "0.0.0.0", 9093)
            ]
        );
        assert_eq!(
            parse(" 127.0.0.1:9092 ").unwrap(),
            vec![l(None, "127.0.0.1", 9092)]
        );
        assert_eq!(
            parse("PLAINTEXT://[::1]:9092").unwrap(),
            vec![l(Some("PLAINTEXT"), "::1", 9092)]
        );
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "",
            "PLAINTEXT://host",
            "PLAINTEXT://host:99999",
            "PLAINTEXT//host:9092",
            "://host:9092",
            "PLAIN TEXT://host:9092",
            "A://h:1,A://h:2",
            "A://h:1,,B://h:2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_controller_listener_is_picked_by_name() {
        let split = split(
            parse("PLAINTEXT://:9092,CONTROLLER://:9093").unwrap(),
            &controller(),
        )
        .unwrap();
        assert_eq!(split.kafka, Some(l(Some("PLAINTEXT"), "", 9092)));
        assert_eq!(split.controller, Some(l(Some("CONTROLLER"), "", 9093)));

        let custom = vec!["RAFT".to_string()];
        let split = super::split(parse("CLIENT://:9092,raft://:9093").unwrap(), &custom).unwrap();
        assert_eq!(split.controller.unwrap().port, 9093);
        assert_eq!(split.kafka.unwrap().name.as_deref(), Some("CLIENT"));
    }

    #[test]
    fn two_kafka_listeners_are_refused_with_a_clear_reason() {
        let err = split(
            parse("PLAINTEXT://:9092,INTERNAL://:9094,CONTROLLER://:9093").unwrap(),
            &controller(),
        )
        .unwrap_err();
        assert!(err.contains("one Kafka listener"), "{err}");
        assert!(
            err.contains("PLAINTEXT://:9092") && err.contains("INTERNAL://:9094"),
            "{err}"
        );
        let err = split(
            parse("CONTROLLER://:9093,C2://:9094").unwrap(),
            &["CONTROLLER".into(), "C2".into()],
        )
        .unwrap_err();
        assert!(err.contains("one controller listener"), "{err}");
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(l(None, "", 9092).bind_address(), "0.0.0.0:9092");
        assert_eq!(l(None, "localhost", 1).bind_address(), "127.0.0.1:1");
        assert_eq!(l(None, "::", 9092).bind_address(), "[::]:9092");
        assert!(check_bindable(&l(None, "10.1.2.3", 1)).is_ok());
        let err = check_bindable(&l(Some("PLAINTEXT"), "broker-0.example", 9092)).unwrap_err();
        assert!(err.contains("broker-0.example"), "{err}");
    }

    #[test]
    fn protocols_come_from_the_map_or_the_name() {
        let map = parse_protocol_map("internal:plaintext,CONTROLLER:PLAINTEXT").unwrap();
        assert_eq!(protocol_of("INTERNAL", &map), "PLAINTEXT");
        assert_eq!(protocol_of("SSL", &map), "SSL");
        assert_eq!(protocol_of("CLIENT", &map), "PLAINTEXT");
        assert!(parse_protocol_map("A:TLS").is_err());
        assert!(parse_protocol_map("A").is_err());
        assert!(parse_protocol_map("A:SSL,A:SSL").is_err());
    }
}
