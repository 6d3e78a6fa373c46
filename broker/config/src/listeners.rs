//! Kafka's listener lists (`listeners`, `advertised.listeners`):
//! `NAME://host:port,NAME://host:port`, or a bare `host:port`.
//!
//! Ironlog serves any number of Kafka listeners (clients and other brokers) and at most one
//! controller listener. The entry whose name is in `controller.listener.names` (default
//! `CONTROLLER`) is the controller listener; the others, or a bare `host:port`, are Kafka
//! listeners. A listener's security protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
//! ([`protocol_of`]); the controller listener is PLAINTEXT.

/// The controller listener's name when `controller.listener.names` is not given.
pub const DEFAULT_CONTROLLER_LISTENER_NAME: &str = "CONTROLLER";

/// Kafka's security protocols (all served on Kafka listeners), and the one the controller
/// listener speaks.
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

/// `NAME://host:port`, or `host:port` for an entry without a name: the entry as a listener
/// list holds it (the name upper-cased).
impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}://{}", self.host_port()),
            None => f.write_str(&self.host_port()),
        }
    }
}

/// Writes listeners back as a list: `NAME://host:port,...`.
pub fn join(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(Listener::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A listener list split into the Kafka listeners and the controller listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSplit {
    /// The Kafka (client and inter-broker) listeners, in list order.
    pub kafka: Vec<Listener>,
    /// The controller (Raft) listener.
    pub controller: Option<Listener>,
}

impl ListenerSplit {
    /// Whether the Kafka listeners are exactly one listener named PLAINTEXT (or unnamed)
    /// that speaks PLAINTEXT: what `--listen` (and `--advertised-listener`) can say. A
    /// listener with a name of its own (`PLAIN://:9092`) keeps it, through `--listeners`:
    /// `--advertised-listeners` and `inter.broker.listener.name` refer to it by that name.
    pub fn is_single_plaintext(&self, protocol_map: &[(String, String)]) -> bool {
        match self.kafka.as_slice() {
            [only] => match only.name.as_deref() {
                None => true,
                Some(name) => {
                    name.eq_ignore_ascii_case(PLAINTEXT)
                        && protocol_of(name, protocol_map) == PLAINTEXT
                }
            },
            _ => false,
        }
    }
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

/// Why [`split`] refuses a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// An entry without a name among several Kafka listeners: which is which is unclear.
    Unnamed(String),
    /// More than one controller listener (Kafka allows it, Ironlog serves one).
    TwoControllers(String),
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::Unnamed(reason) | SplitError::TwoControllers(reason) => f.write_str(reason),
        }
    }
}

/// Sorts listeners into the Kafka listeners and the controller listener.
///
/// # Errors
/// More than one controller listener, or a Kafka entry without a name when there are
/// several Kafka listeners.
pub fn split(
    listeners: Vec<Listener>,
    controller_names: &[String],
) -> Result<ListenerSplit, SplitError> {
    let mut split = ListenerSplit::default();
    for listener in listeners {
        let is_controller = listener
            .name
            .as_ref()
            .is_some_and(|n| controller_names.iter().any(|c| c.eq_ignore_ascii_case(n)));
        if !is_controller {
            split.kafka.push(listener);
            continue;
        }
        if let Some(previous) = &split.controller {
            return Err(SplitError::TwoControllers(format!(
                "Ironlog serves one controller listener, but both {previous} and {listener} are controller listeners (names in controller.listener.names)"
            )));
        }
        split.controller = Some(listener);
    }
    if split.kafka.len() > 1 {
        if let Some(bare) = split.kafka.iter().find(|l| l.name.is_none()) {
            return Err(SplitError::Unnamed(format!(
                "{bare} has no name: with several Kafka listeners each needs one (NAME://host:port, e.g. CLIENT://{})",
                bare.host_port()
            )));
        }
    }
    Ok(split)
}

/// Checks no two entries of a list to bind share a port (port 0, any free port, aside).
pub(crate) fn check_distinct_ports(listeners: &[Listener]) -> Result<(), String> {
    for (i, listener) in listeners.iter().enumerate() {
        if listener.port == 0 {
            continue;
        }
        if let Some(other) = listeners[..i].iter().find(|l| l.port == listener.port) {
            return Err(format!(
                "{other} and {listener} use the same port; each listener needs its own"
            ));
        }
    }
    Ok(())
}

/// Checks `host` is something a socket can bind: an IP address, empty (every interface)
/// or `localhost`.
pub(crate) fn check_bindable(listener: &Listener) -> Result<(), String> {
    let host = listener.host.as_str();
    if host.is_empty() || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "Ironlog binds an IP address: {listener} has host {host:?}; use an interface's address, or 0.0.0.0 (or an empty host) for every interface, and put the name in advertised.listeners"
        ))
    }
}

/// The security protocol of a listener name: from `listener.security.protocol.map`, else
/// the name itself when it is a protocol's name (Kafka's default map), else PLAINTEXT.
pub fn protocol_of<'a>(name: &'a str, map: &'a [(String, String)]) -> &'a str {
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
pub fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
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
        assert_eq!(split.kafka, vec![l(Some("PLAINTEXT"), "", 9092)]);
        assert_eq!(split.controller, Some(l(Some("CONTROLLER"), "", 9093)));

        let custom = vec!["RAFT".to_string()];
        let split = super::split(parse("CLIENT://:9092,raft://:9093").unwrap(), &custom).unwrap();
        assert_eq!(split.controller.unwrap().port, 9093);
        assert_eq!(split.kafka[0].name.as_deref(), Some("CLIENT"));
    }

    #[test]
    fn several_kafka_listeners_keep_their_order() {
        let split = split(
            parse("CLIENT://:9093,CONTROLLER://:9095,INTERNAL://10.0.0.5:9094").unwrap(),
            &controller(),
        )
        .unwrap();
        assert_eq!(
            split.kafka,
            vec![
                l(Some("CLIENT"), "", 9093),
                l(Some("INTERNAL"), "10.0.0.5", 9094)
            ]
        );
        assert_eq!(
            join(&split.kafka),
            "CLIENT://:9093,INTERNAL://10.0.0.5:9094"
        );
        assert_eq!(split.controller.unwrap().port, 9095);
    }

    #[test]
    fn several_kafka_listeners_each_need_a_name_and_one_controller_listener_is_served() {
        let err = split(
            parse("PLAINTEXT://:9092,10.0.0.5:9094").unwrap(),
            &controller(),
        )
        .unwrap_err();
        assert!(matches!(err, SplitError::Unnamed(_)), "{err}");
        assert!(
            err.to_string().contains("10.0.0.5:9094 has no name"),
            "{err}"
        );
        // One bare entry alone is the Kafka listener.
        let alone = split(parse("10.0.0.5:9094").unwrap(), &controller()).unwrap();
        assert_eq!(alone.kafka, vec![l(None, "10.0.0.5", 9094)]);
        let err = split(
            parse("CONTROLLER://:9093,C2://:9094").unwrap(),
            &["CONTROLLER".into(), "C2".into()],
        )
        .unwrap_err();
        assert!(matches!(err, SplitError::TwoControllers(_)), "{err}");
        let err = err.to_string();
        assert!(err.contains("one controller listener"), "{err}");
        assert!(
            err.contains("CONTROLLER://:9093") && err.contains("C2://:9094"),
            "{err}"
        );
    }

    #[test]
    fn single_plaintext_is_what_listen_can_say() {
        let map = parse_protocol_map("CLIENT:SASL_SSL,INTERNAL:PLAINTEXT").unwrap();
        let single = |list: &str| {
            split(parse(list).unwrap(), &controller())
                .unwrap()
                .is_single_plaintext(&map)
        };
        assert!(single("PLAINTEXT://0.0.0.0:9092,CONTROLLER://:9093"));
        assert!(
            !single("INTERNAL://:9094"),
            "a named listener keeps its name"
        );
        assert!(!single("OTHER://:9092"), "a named listener keeps its name");
        assert!(single("127.0.0.1:9092"));
        assert!(!single("CLIENT://:9093"));
        assert!(!single("SASL_SSL://:9093"));
        assert!(!single("SSL://:9093"));
        assert!(!single("PLAINTEXT://:9092,INTERNAL://:9094"));
        assert!(!single("CONTROLLER://:9093"), "no Kafka listener");
    }

    #[test]
    fn ports_must_differ() {
        assert!(check_distinct_ports(&parse("A://:9092,B://:9093,C://:0,D://:0").unwrap()).is_ok());
        let err = check_distinct_ports(&parse("A://:9092,B://10.0.0.1:9092").unwrap()).unwrap_err();
        assert!(err.contains("A://:9092 and B://10.0.0.1:9092"), "{err}");
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
        let map = parse_protocol_map("CLIENT:sasl_ssl, INTERNAL:SSL").unwrap();
        assert_eq!(protocol_of("client", &map), "SASL_SSL");
        assert_eq!(protocol_of("INTERNAL", &map), "SSL");
        assert_eq!(protocol_of("SASL_PLAINTEXT", &map), "SASL_PLAINTEXT");
        assert!(parse_protocol_map("A:TLS").is_err());
        assert!(parse_protocol_map("A").is_err());
        assert!(parse_protocol_map("A:SSL,A:SSL").is_err());
    }
}
