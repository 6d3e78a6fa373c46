//! The Kafka listeners and what secures them: `--listeners`, `--advertised-listeners`,
//! `--listener-security-protocol-map`, `--inter-broker-listener-name`, the TLS files and the
//! SASL settings, resolved into [`ListenerConfig`]s and a [`SecurityConfig`].
//!
//! `--listen host:port` stays the shorthand for one PLAINTEXT listener named `PLAINTEXT`
//! (the default, `127.0.0.1:9092`); `--listeners` replaces it. A listener's security
//! protocol comes from the map, else from its name when that is a protocol's name (Kafka's
//! default map). The inter-broker listener is the one followers fetch from and whose
//! address the broker registers for other brokers: `--inter-broker-listener-name`, else the
//! first PLAINTEXT listener, else the first listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use ironlog_broker_config::listeners::{self as kafka_listeners, Listener};
use ironlog_metadata::ScramMechanism;

use super::{BrokerArgs, ConfigError};

pub use ironlog_security::SecurityProtocol;

/// One Kafka listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Upper-case, as Kafka compares them.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// What Metadata answers for this listener.
    pub advertised_host: String,
    pub advertised_port: i32,
}

impl ListenerConfig {
    /// The `--listen` shorthand: a PLAINTEXT listener named `PLAINTEXT`.
    pub fn plaintext(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            bind,
            advertised_host: bind.ip().to_string(),
            advertised_port: i32::from(bind.port()),
        }
    }
}

/// The SASL mechanisms Ironlog serves.
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Kafka's sasl.server.max.receive.size: the largest frame a connection may send before it
/// has authenticated.
pub const SASL_MAX_RECEIVE_SIZE: usize = 524_288;

/// The certificate files of the TLS listeners (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates must chain to these (mutual TLS) on SSL listeners; on SASL_SSL
    /// listeners a client certificate is checked against them if one is offered.
    pub client_ca: Option<PathBuf>,
}

/// A SCRAM user created at start-up (`--add-scram`), like `kafka-storage format --add-scram`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUser {
    pub mechanism: ScramMechanism,
    pub name: String,
    pub password: String,
    pub iterations: u32,
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("ScramUser")
            .field("mechanism", &self.mechanism)
            .field("name", &self.name)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are checked for changes.
    pub tls_reload_interval: std::time::Duration,
    /// Enabled SASL mechanisms, in the order SaslHandshake lists them.
    pub sasl_mechanisms: Vec<String>,
    /// Kafka's connections.max.reauth.ms: a SASL session's lifetime (KIP-368); 0: no limit.
    pub connections_max_reauth_ms: u64,
    pub add_scram: Vec<ScramUser>,
    /// Kafka's ACL authorizer on (`--authorizer acl`).
    pub authorizer: bool,
    /// Principals allowed everything, as `User:name`.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            tls: None,
            tls_reload_interval: std::time::Duration::from_secs(5),
            sasl_mechanisms: SASL_MECHANISMS.iter().map(|m| m.to_string()).collect(),
            connections_max_reauth_ms: 0,
            add_scram: Vec::new(),
            authorizer: false,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
        }
    }
}

/// The listeners, the inter-broker listener's name and the security settings from `args`.
pub(super) fn resolve(
    args: &BrokerArgs,
) -> Result<(Vec<ListenerConfig>, String, SecurityConfig), ConfigError> {
    let bad = |what: String| ConfigError::Listeners(what);
    let map = match &args.listener_security_protocol_map {
        Some(map) => kafka_listeners::parse_protocol_map(map)
            .map_err(|e| bad(format!("--listener-security-protocol-map: {e}")))?,
        None => Vec::new(),
    };
    let mut listeners = match &args.listeners {
        None => vec![ListenerConfig::plaintext(args.listen)],
        Some(list) => {
            let parsed = kafka_listeners::parse(list)
                .map_err(|e| bad(format!("--listeners {list:?}: {e}")))?;
            let mut out = Vec::new();
            for listener in parsed {
                let name = listener.name.clone().ok_or_else(|| {
                    bad(format!(
                        "--listeners entry {} has no name (NAME://host:port)",
                        listener.host_port()
                    ))
                })?;
                let protocol_name = kafka_listeners::protocol_of(&name, &map);
                let protocol = SecurityProtocol::parse(protocol_name).ok_or_else(|| {
                    bad(format!(
                        "listener {name}: unknown security protocol {protocol_name}"
                    ))
                })?;
                let bind: SocketAddr = listener.bind_address().parse().map_err(|_| {
                    bad(format!(
                        "listener {name}: {} is not an IP address and port (put host names in --advertised-listeners)",
                        listener.host_port()
                    ))
                })?;
                if out
                    .iter()
                    .any(|l: &ListenerConfig| l.bind.port() == bind.port() && bind.port() != 0)
                {
                    return Err(bad(format!(
                        "listener {name}: port {} is used twice",
                        bind.port()
                    )));
                }
                out.push(ListenerConfig {
                    name,
                    protocol,
                    bind,
                    advertised_host: advertised_default_host(&listener, bind),
                    advertised_port: i32::from(bind.port()),
                });
            }
            if out.is_empty() {
                return Err(bad("--listeners is empty".into()));
            }
            out
        }
    };
    // Listener names --advertised-listeners gives explicitly.
    let mut advertised_by_name = Vec::new();
    if let Some(list) = &args.advertised_listeners {
        let parsed: Vec<Listener> = kafka_listeners::parse(list)
            .map_err(|e| bad(format!("--advertised-listeners {list:?}: {e}")))?;
        for advertised in parsed {
            advertised_by_name.extend(advertised.name.clone());
            let name = advertised
                .name
                .clone()
                .unwrap_or_else(|| listeners[0].name.clone());
            let listener = listeners
                .iter_mut()
                .find(|l| l.name == name)
                .ok_or_else(|| {
                    bad(format!(
                        "--advertised-listeners names {name}, which is not in --listeners"
                    ))
                })?;
            listener.advertised_host = advertised.host.clone();
            listener.advertised_port = i32::from(advertised.port);
        }
    }
    let inter_broker = match &args.inter_broker_listener_name {
        Some(name) => {
            let name = name.to_ascii_uppercase();
            if !listeners.iter().any(|l| l.name == name) {
                return Err(bad(format!(
                    "--inter-broker-listener-name {name} is not one of the listeners ({})",
                    listeners
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            name
        }
        None => listeners
            .iter()
            .find(|l| l.protocol == SecurityProtocol::Plaintext)
            .unwrap_or(&listeners[0])
            .name
            .clone(),
    };
    // --advertised-listener (one host:port) is the inter-broker listener's advertised address
    // unless --advertised-listeners names it.
    if let Some(one) = &args.advertised_listener {
        let (host, port) =
            parse_host_port(one).ok_or_else(|| ConfigError::AdvertisedListener(one.clone()))?;
        if !advertised_by_name.contains(&inter_broker) {
            let listener = listeners
                .iter_mut()
                .find(|l| l.name == inter_broker)
                .expect("checked above");
            listener.advertised_host = host;
            listener.advertised_port = port;
        }
    }

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        (None, None) if args.tls_client_ca.is_none() => None,
        _ => {
            return Err(bad(
                "--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into(),
            ))
        }
    };
    if let Some(l) = listeners.iter().find(|l| l.protocol.is_tls()) {
        if tls.is_none() {
            return Err(bad(format!(
                "listener {} is {}: give the broker's certificate and key with --tls-cert and --tls-key",
                l.name,
                l.protocol.name()
            )));
        }
    }
    let mut sasl_mechanisms = Vec::new();
    for m in args
        .sasl_enabled_mechanisms
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        let m = m.to_ascii_uppercase();
        if !SASL_MECHANISMS.contains(&m.as_str()) {
            return Err(bad(format!(
                "--sasl-enabled-mechanisms: {m} is not served (one of {})",
                SASL_MECHANISMS.join(", ")
            )));
        }
        if !sasl_mechanisms.contains(&m) {
            sasl_mechanisms.push(m);
        }
    }
    if let Some(l) = listeners.iter().find(|l| l.protocol.is_sasl()) {
        if sasl_mechanisms.is_empty() {
            return Err(bad(format!(
                "listener {} is {} but --sasl-enabled-mechanisms is empty",
                l.name,
                l.protocol.name()
            )));
        }
    }
    let mut add_scram = Vec::new();
    for spec in &args.add_scram {
        add_scram.push(parse_add_scram(spec).map_err(|e| bad(format!("--add-scram: {e}")))?);
    }
    let mut super_users = Vec::new();
    for user in args
        .super_users
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
    {
        let principal: ironlog_security::principal::KafkaPrincipal = user
            .parse()
            .map_err(|e| bad(format!("--super-users: {user:?} is not Type:name ({e})")))?;
        super_users.push(principal.to_string());
    }
    let security = SecurityConfig {
        authorizer: args.authorizer == "acl",
        super_users,
        allow_everyone_if_no_acl_found: args.allow_everyone_if_no_acl_found,
        tls,
        tls_reload_interval: std::time::Duration::from_millis(args.tls_reload_interval_ms.max(100)),
        sasl_mechanisms,
        connections_max_reauth_ms: args.connections_max_reauth_ms,
        add_scram,
    };
    Ok((listeners, inter_broker, security))
}

/// How followers connect to their leaders' inter-broker listener (`listener`): as a Kafka
/// client with the properties Kafka's own inter-broker client would have. TLS trusts
/// `--inter-broker-tls-ca` (default `--tls-client-ca`) and presents the broker's certificate
/// as its client certificate; SASL logs in as `--inter-broker-sasl-username` with
/// `--sasl-mechanism-inter-broker-protocol`. Only a cluster (`--voters`) requires these: a
/// single broker fetches from nobody.
pub fn inter_broker_client(
    args: &BrokerArgs,
    listener: &ListenerConfig,
) -> Result<ironlog_client::SecurityConfig, ConfigError> {
    let bad =
        |m: String| ConfigError::Listeners(format!("inter-broker listener {}: {m}", listener.name));
    let protocol = listener.protocol;
    let ca = args
        .inter_broker_tls_ca
        .as_ref()
        .or(args.tls_client_ca.as_ref());
    let login = match (
        &args.inter_broker_sasl_username,
        &args.inter_broker_sasl_password,
    ) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => {
            return Err(bad(
                "--inter-broker-sasl-username and --inter-broker-sasl-password go together".into(),
            ))
        }
    };
    let missing_ca = protocol.is_tls() && ca.is_none();
    let missing_login = protocol.is_sasl() && login.is_none();
    if args.voters.is_empty() && (missing_ca || missing_login) {
        // A single broker has no followers: nothing connects with this.
        return Ok(ironlog_client::SecurityConfig::default());
    }
    if missing_ca {
        return Err(bad(format!(
            "it is {}: give the CA other brokers' certificates chain to with \
             --inter-broker-tls-ca (or --tls-client-ca)",
            protocol.name()
        )));
    }
    if missing_login {
        return Err(bad(format!(
            "it is {}: followers log in with --inter-broker-sasl-username and \
             --inter-broker-sasl-password (IRONLOG_INTER_BROKER_SASL_PASSWORD)",
            protocol.name()
        )));
    }
    let mut properties = vec![("security.protocol".to_string(), protocol.name().to_string())];
    if protocol.is_tls() {
        let ca = ca.expect("checked above");
        properties.push(("ssl.ca.location".into(), ca.display().to_string()));
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            properties.push((
                "ssl.certificate.location".into(),
                cert.display().to_string(),
            ));
            properties.push(("ssl.key.location".into(), key.display().to_string()));
        }
    }
    if let (true, Some((user, password))) = (protocol.is_sasl(), login) {
        let mechanism = args
            .sasl_mechanism_inter_broker_protocol
            .to_ascii_uppercase();
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            return Err(bad(format!(
                "--sasl-mechanism-inter-broker-protocol {mechanism} is not one of {}",
                SASL_MECHANISMS.join(", ")
            )));
        }
        properties.push(("sasl.mechanism".into(), mechanism));
        properties.push(("sasl.username".into(), user.clone()));
        properties.push(("sasl.password".into(), password.clone()));
    }
    ironlog_client::SecurityConfig::from_properties(&properties).map_err(bad)
}

/// What a listener advertises without --advertised-listeners: its host as written, or, when
/// it was written without one, the address it binds (a wildcard as it is: set
/// --advertised-listeners then).
fn advertised_default_host(listener: &Listener, bind: SocketAddr) -> String {
    if listener.host.is_empty() {
        bind.ip().to_string()
    } else {
        listener.host.clone()
    }
}

fn parse_host_port(s: &str) -> Option<(String, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    Some((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        i32::from(port),
    ))
}

/// `SCRAM-SHA-512=[name=admin,password=secret]` (Kafka's `--add-scram` form; also
/// `iterations=8192`). The password may hold anything but `]` at its end; quotes around a
/// value are removed.
pub fn parse_add_scram(spec: &str) -> Result<ScramUser, String> {
    let (mechanism, rest) = spec
        .split_once('=')
        .ok_or_else(|| "expected MECHANISM=[name=...,password=...]".to_string())?;
    let mechanism = ScramMechanism::from_sasl_name(mechanism.trim()).ok_or_else(|| {
        format!(
            "{:?} is not SCRAM-SHA-256 or SCRAM-SHA-512",
            mechanism.trim()
        )
    })?;
    let body = rest
        .trim()
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .ok_or_else(|| {
            "the user goes in brackets: MECHANISM=[name=...,password=...]".to_string()
        })?;
    let (mut name, mut password, mut iterations) = (None, None, 4096u32);
    // `password` is last-wins and may contain commas: split on ",key=" boundaries only.
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("{rest:?} is not key=value"))?;
        let end = ["name", "password", "iterations"]
            .iter()
            .filter_map(|k| after.find(&format!(",{k}=")))
            .min()
            .unwrap_or(after.len());
        let value = unquote(&after[..end]);
        match key.trim() {
            "name" => name = Some(value.to_string()),
            "password" => password = Some(value.to_string()),
            "iterations" => {
                iterations = value
                    .parse()
                    .map_err(|_| format!("iterations {value:?} is not a number"))?
            }
            other => {
                return Err(format!(
                    "unknown key {other:?} (name, password, iterations)"
                ))
            }
        }
        rest = after[end..].strip_prefix(',').unwrap_or("");
    }
    let name = name.filter(|n| !n.is_empty()).ok_or("name= is missing")?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or("password= is missing")?;
    if !(4096..=16384).contains(&iterations) {
        return Err(format!("iterations {iterations} is outside 4096..=16384"));
    }
    Ok(ScramUser {
        mechanism,
        name,
        password,
        iterations,
    })
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_scram_forms() {
        let u = parse_add_scram("SCRAM-SHA-512=[name=admin,password=s3cr,et]").unwrap();
        assert_eq!(
            (
                u.mechanism,
                u.name.as_str(),
                u.password.as_str(),
                u.iterations
            ),
            (ScramMechanism::Sha512, "admin", "s3cr,et", 4096)
        );
        let u = parse_add_scram("SCRAM-SHA-256=[name=\"bob\",password=\"pw\",iterations=8192]")
            .unwrap();
        assert_eq!(
            (
                u.mechanism,
                u.name.as_str(),
                u.password.as_str(),
                u.iterations
            ),
            (ScramMechanism::Sha256, "bob", "pw", 8192)
        );
        assert!(parse_add_scram("SCRAM-SHA-1=[name=a,password=b]").is_err());
        assert!(parse_add_scram("SCRAM-SHA-512=[name=a]").is_err());
        assert!(parse_add_scram("SCRAM-SHA-512=name=a,password=b").is_err());
        assert!(parse_add_scram("SCRAM-SHA-512=[name=a,password=b,iterations=10]").is_err());
        assert!(!format!("{u:?}").contains("pw"));
    }
}
