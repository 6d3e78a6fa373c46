//! How a client secures its connections: Kafka's `security.protocol` (PLAINTEXT, SSL,
//! SASL_PLAINTEXT, SASL_SSL), TLS trust and client certificates from PEM files, and SASL
//! credentials (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
//!
//! [`SecurityConfig`] is the settings, as plain data; [`SecurityConfig::from_properties`]
//! reads them from Kafka client properties (the `--command-config` file of the tools, see
//! [`parse_properties`]). [`SecurityConfig::prepare`] reads the PEM files once and gives the
//! [`Security`] every connection of a client is opened with
//! ([`crate::Connection::connect_with`]).
//!
//! Trust is explicit: SSL and SASL_SSL need `ssl.ca.location`, the CA certificates that
//! signed the brokers' certificates. There is no silent fallback to an empty (or the
//! system's) trust store. A broker's certificate must name the host the client connects to
//! (the bootstrap host, then the hosts the cluster metadata advertises); IP addresses work
//! when the certificate lists them as IP subject alternative names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironlog_security::ScramMechanism;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::error::ClientError;

/// Kafka's `security.protocol`.
pub use ironlog_security::SecurityProtocol;

/// The SASL mechanisms the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// Parses a SASL mechanism name (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`),
    /// case-insensitively.
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        let upper = name.to_ascii_uppercase();
        if upper == "PLAIN" {
            return Some(SaslMechanism::Plain);
        }
        ScramMechanism::from_sasl_name(&upper).map(SaslMechanism::Scram)
    }

    /// The mechanism's SASL name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.sasl_name(),
        }
    }
}

/// A SASL login. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// PEM files for TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// The CA certificates that signed the brokers' certificates (`ssl.ca.location`).
    pub ca_location: Option<PathBuf>,
    /// The client's certificate chain, for mutual TLS (`ssl.certificate.location`).
    pub certificate_location: Option<PathBuf>,
    /// The client certificate's private key, unencrypted (`ssl.key.location`).
    pub key_location: Option<PathBuf>,
}

/// How a client secures its connections; the default is PLAINTEXT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityConfig {
    pub protocol: SecurityProtocol,
    /// Required for SASL_PLAINTEXT and SASL_SSL, refused otherwise.
    pub sasl: Option<SaslCredentials>,
    /// Required (`ca_location`) for SSL and SASL_SSL, refused otherwise.
    pub tls: TlsSettings,
}

/// The client properties `--command-config` understands.
pub const PROPERTIES: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
];

/// Parses Kafka client properties: one `key=value` a line, surrounding whitespace trimmed
/// from both; blank lines and lines starting with `#` or `!` are comments (as in Java
/// properties, a `#` later in a line is part of the value). Keys keep the order of the
/// file.
///
/// # Errors
/// A line without `=` or with an empty key, or a key given twice, naming the line.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {number}: expected key=value, got {line:?}"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(format!("line {number}: empty key"));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(format!("line {number}: {key} is set twice"));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// A hint for a value that looks like it carries a comment.
fn comment_hint(value: &str) -> &'static str {
    if value.contains('#') {
        " (a # starts a comment only at the beginning of a line)"
    } else {
        ""
    }
}

impl SecurityConfig {
    /// The settings Kafka client properties give (see [`PROPERTIES`]); checked with
    /// [`SecurityConfig::validate`].
    ///
    /// # Errors
    /// An unknown key (naming it; Java keystore keys with a note to use PEM files), an
    /// unknown protocol or mechanism, or settings that don't fit together.
    pub fn from_properties(properties: &[(String, String)]) -> Result<SecurityConfig, String> {
        let mut protocol = None;
        let mut mechanism: Option<(&str, &str)> = None;
        let mut username = None;
        let mut password = None;
        let mut tls = TlsSettings::default();
        for (key, value) in properties {
            match key.as_str() {
                "security.protocol" => {
                    protocol = Some(SecurityProtocol::parse(value).ok_or_else(|| {
                        format!(
                            "security.protocol: unknown protocol {value:?} (PLAINTEXT, SSL, \
                             SASL_PLAINTEXT or SASL_SSL){}",
                            comment_hint(value)
                        )
                    })?);
                }
                "sasl.mechanism" | "sasl.mechanisms" => {
                    if let Some((other_key, other)) = mechanism {
                        if !other.eq_ignore_ascii_case(value) {
                            return Err(format!(
                                "{other_key}={other} and {key}={value} disagree (they are \
                                 the same setting)"
                            ));
                        }
                    }
                    mechanism = Some((key, value));
                }
                "sasl.username" => username = Some(value.clone()),
                "sasl.password" => password = Some(value.clone()),
                "ssl.ca.location" => tls.ca_location = Some(PathBuf::from(value)),
                "ssl.certificate.location" => tls.certificate_location = Some(PathBuf::from(value)),
                "ssl.key.location" => tls.key_location = Some(PathBuf::from(value)),
                key if key.starts_with("ssl.truststore.") || key.starts_with("ssl.keystore.") => {
                    return Err(format!(
                        "{key}: Java keystores (JKS, PKCS12) are not supported; give PEM files \
                         instead: ssl.ca.location for the truststore's CA certificates, \
                         ssl.certificate.location and ssl.key.location for the keystore's \
                         certificate and key"
                    ));
                }
                "ssl.key.password" => {
                    return Err(
                        "ssl.key.password: encrypted private keys are not supported; give an \
                         unencrypted PEM key in ssl.key.location"
                            .to_owned(),
                    );
                }
                "sasl.jaas.config" => {
                    return Err(
                        "sasl.jaas.config is not supported: give sasl.username and sasl.password"
                            .to_owned(),
                    );
                }
                key => {
                    return Err(format!(
                        "unknown property {key} (known: {})",
                        PROPERTIES.join(", ")
                    ));
                }
            }
        }
        let protocol = protocol.unwrap_or_default();
        let sasl = if mechanism.is_some() || username.is_some() || password.is_some() {
            if !protocol.is_sasl() {
                let set = [
                    mechanism.map(|(k, _)| k),
                    username.as_ref().map(|_| "sasl.username"),
                    password.as_ref().map(|_| "sasl.password"),
                ];
                let set: Vec<&str> = set.into_iter().flatten().collect();
                return Err(format!(
                    "{} set but security.protocol is {} (SASL needs SASL_PLAINTEXT or SASL_SSL)",
                    set.join(", "),
                    protocol.name()
                ));
            }
            let (key, name) = mechanism.ok_or_else(|| {
                format!(
                    "security.protocol {} needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or \
                     SCRAM-SHA-512)",
                    protocol.name()
                )
            })?;
            let mechanism = SaslMechanism::parse(name).ok_or_else(|| {
                format!(
                    "{key}: unsupported SASL mechanism {name:?} (PLAIN, SCRAM-SHA-256 or \
                     SCRAM-SHA-512){}",
                    comment_hint(name)
                )
            })?;
            Some(SaslCredentials {
                mechanism,
                username: username.ok_or("sasl.username is missing")?,
                password: password.ok_or("sasl.password is missing")?,
            })
        } else {
            None
        };
        let config = SecurityConfig {
            protocol,
            sasl,
            tls,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads a properties file ([`parse_properties`], [`SecurityConfig::from_properties`]).
    ///
    /// # Errors
    /// The file cannot be read or its content is refused; the message names the file.
    pub fn from_properties_file(path: &Path) -> Result<SecurityConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        parse_properties(&text)
            .and_then(|p| SecurityConfig::from_properties(&p))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks that the settings fit the protocol: SASL credentials exactly for the SASL
    /// protocols, a CA exactly for the TLS ones, a client certificate only with its key.
    ///
    /// # Errors
    /// What does not fit, in the properties' names.
    pub fn validate(&self) -> Result<(), String> {
        let protocol = self.protocol.name();
        match (&self.sasl, self.protocol.is_sasl()) {
            (None, true) => {
                return Err(format!(
                    "security.protocol {protocol} needs sasl.mechanism, sasl.username and \
                     sasl.password"
                ))
            }
            (Some(_), false) => {
                return Err(format!(
                    "SASL credentials set but security.protocol is {protocol} (SASL needs \
                     SASL_PLAINTEXT or SASL_SSL)"
                ))
            }
            (Some(sasl), true) if sasl.username.is_empty() => {
                return Err("sasl.username is empty".to_owned())
            }
            _ => {}
        }
        let tls = &self.tls;
        if self.protocol.is_tls() {
            if tls.ca_location.is_none() {
                return Err(format!(
                    "security.protocol {protocol} needs ssl.ca.location: a PEM file of the CA \
                     certificates that signed the brokers' certificates (no CA is trusted \
                     otherwise)"
                ));
            }
            if tls.certificate_location.is_some() != tls.key_location.is_some() {
                return Err(
                    "ssl.certificate.location and ssl.key.location go together (the client \
                     certificate and its key, for mutual TLS)"
                        .to_owned(),
                );
            }
        } else {
            let set: Vec<&str> = [
                tls.ca_location.as_ref().map(|_| "ssl.ca.location"),
                tls.certificate_location
                    .as_ref()
                    .map(|_| "ssl.certificate.location"),
                tls.key_location.as_ref().map(|_| "ssl.key.location"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !set.is_empty() {
                return Err(format!(
                    "{} set but security.protocol is {protocol} (TLS needs SSL or SASL_SSL)",
                    set.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Checks the settings and reads the PEM files: what connections are opened with.
    ///
    /// # Errors
    /// [`ClientError::Security`] for settings that don't fit ([`SecurityConfig::validate`])
    /// and for PEM files that cannot be read or hold no certificate or key.
    pub fn prepare(&self) -> Result<Security, ClientError> {
        self.validate().map_err(ClientError::Security)?;
        let tls = if self.protocol.is_tls() {
            Some(tls_connector(&self.tls).map_err(ClientError::Security)?)
        } else {
            None
        };
        Ok(Security {
            tls,
            sasl: self.sasl.clone(),
        })
    }
}

/// Prepared security for connections: the TLS connector (PEM files read) and the SASL
/// login. Cheap to clone.
#[derive(Clone, Default)]
pub struct Security {
    pub(crate) tls: Option<TlsConnector>,
    pub(crate) sasl: Option<SaslCredentials>,
}

impl Security {
    /// Plain TCP, no authentication.
    pub fn plaintext() -> Security {
        Security::default()
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// The TLS server name of `address` (`host:port` or `[v6]:port`): a DNS name or an IP
/// address.
///
/// # Errors
/// A host that is neither a valid DNS name nor an IP address.
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))
}

fn read_certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// A TLS connector from PEM files: the CAs to trust and, for mutual TLS, a certificate
/// chain and its key.
///
/// # Errors
/// A file that cannot be read or holds no certificate or key; a certificate and a key that
/// don't go together.
pub fn tls_connector(settings: &TlsSettings) -> Result<TlsConnector, String> {
    let ca = settings
        .ca_location
        .as_deref()
        .ok_or("TLS needs ssl.ca.location")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates("ssl.ca.location", ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("ssl.ca.location {}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&settings.certificate_location, &settings.key_location) {
        (Some(cert), Some(key)) => {
            let chain = read_certificates("ssl.certificate.location", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "ssl.key.location {}: no usable private key ({e}); give an unencrypted \
                     PEM key (PKCS#8, PKCS#1 or SEC1)",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("ssl.certificate.location and ssl.key.location go together".into()),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Result<SecurityConfig, String> {
        SecurityConfig::from_properties(&parse_properties(text)?)
    }

    #[test]
    fn properties_skip_comments_and_trim() {
        let parsed = parse_properties(
            "# a comment\n\n  ! another\nsecurity.protocol = SASL_SSL\r\nsasl.password=a=b#c \n",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("sasl.password".to_owned(), "a=b#c".to_owned()),
            ]
        );
    }

    #[test]
    fn properties_refuse_lines_without_key_and_duplicates() {
        let err = parse_properties("a=1\nno equals sign\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(err.contains("expected key=value"), "{err}");
        assert_eq!(parse_properties(" =x").unwrap_err(), "line 1: empty key");
        let err = parse_properties("a=1\n#\na=2").unwrap_err();
        assert_eq!(err, "line 3: a is set twice");
    }

    #[test]
    fn sasl_ssl_scram_properties() {
        let config = props(
            "security.protocol=sasl_ssl\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=admin\n\
             sasl.password=s3cret\nssl.ca.location=/etc/ca.pem\n",
        )
        .unwrap();
        assert_eq!(config.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            config.sasl,
            Some(SaslCredentials {
                mechanism: SaslMechanism::Scram(ScramMechanism::Sha512),
                username: "admin".into(),
                password: "s3cret".into(),
            })
        );
        assert_eq!(config.tls.ca_location, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.tls.certificate_location, None);
        // The password never shows in Debug.
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn librdkafka_mechanisms_alias_and_plain() {
        let config = props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=plain\nsasl.username=u\nsasl.password=p",
        )
        .unwrap();
        assert_eq!(config.sasl.unwrap().mechanism, SaslMechanism::Plain);
        let err = props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.username=u\nsasl.password=p",
        )
        .unwrap_err();
        assert!(err.contains("disagree"), "{err}");
    }

    #[test]
    fn mutual_tls_properties() {
        let config = props(
            "security.protocol=SSL\nssl.ca.location=ca.pem\nssl.certificate.location=c.pem\n\
             ssl.key.location=c.key",
        )
        .unwrap();
        assert_eq!(config.protocol, SecurityProtocol::Ssl);
        assert_eq!(config.sasl, None);
        assert_eq!(
            config.tls.certificate_location,
            Some(PathBuf::from("c.pem"))
        );
        assert_eq!(config.tls.key_location, Some(PathBuf::from("c.key")));
        let err = props("security.protocol=SSL\nssl.ca.location=ca.pem\nssl.key.location=c.key")
            .unwrap_err();
        assert!(err.contains("go together"), "{err}");
    }

    #[test]
    fn empty_file_is_plaintext() {
        assert_eq!(props("# nothing\n").unwrap(), SecurityConfig::default());
    }

    #[test]
    fn unknown_and_java_keys_are_refused_by_name() {
        let err = props("security.protocol=SSL\nssl.ca.location=ca.pem\nbatch.size=5").unwrap_err();
        assert!(err.starts_with("unknown property batch.size"), "{err}");
        let err = props("ssl.truststore.location=/x.jks").unwrap_err();
        assert!(
            err.starts_with("ssl.truststore.location: Java keystores"),
            "{err}"
        );
        assert!(err.contains("ssl.ca.location"), "{err}");
        let err = props("ssl.keystore.password=x").unwrap_err();
        assert!(
            err.starts_with("ssl.keystore.password: Java keystores"),
            "{err}"
        );
        let err = props("sasl.jaas.config=x").unwrap_err();
        assert!(err.contains("sasl.username"), "{err}");
    }

    #[test]
    fn settings_must_fit_the_protocol() {
        let err = props("security.protocol=SSL").unwrap_err();
        assert!(err.contains("needs ssl.ca.location"), "{err}");
        let err = props(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p",
        )
        .unwrap_err();
        assert!(err.contains("needs ssl.ca.location"), "{err}");
        let err = props("security.protocol=SASL_PLAINTEXT\nsasl.username=u\nsasl.password=p")
            .unwrap_err();
        assert!(err.contains("needs sasl.mechanism"), "{err}");
        let err = props("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u")
            .unwrap_err();
        assert_eq!(err, "sasl.password is missing");
        let err = props("sasl.username=u").unwrap_err();
        assert!(err.contains("security.protocol is PLAINTEXT"), "{err}");
        let err = props("ssl.ca.location=ca.pem").unwrap_err();
        assert!(
            err.starts_with("ssl.ca.location set but security.protocol is PLAINTEXT"),
            "{err}"
        );
        let err = props("security.protocol=TLS").unwrap_err();
        assert!(err.contains("unknown protocol \"TLS\""), "{err}");
        let err = props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI\nsasl.username=u\nsasl.password=p",
        )
        .unwrap_err();
        assert!(
            err.contains("unsupported SASL mechanism \"GSSAPI\""),
            "{err}"
        );
        let err = props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN # the mechanism\n\
             sasl.username=u\nsasl.password=p",
        )
        .unwrap_err();
        assert!(err.contains("comment only at the beginning"), "{err}");
    }

    #[test]
    fn prepare_fails_clearly_without_a_ca_or_with_a_missing_file() {
        let config = SecurityConfig {
            protocol: SecurityProtocol::Ssl,
            ..SecurityConfig::default()
        };
        let err = config.prepare().unwrap_err().to_string();
        assert!(err.contains("needs ssl.ca.location"), "{err}");
        let config = SecurityConfig {
            protocol: SecurityProtocol::Ssl,
            tls: TlsSettings {
                ca_location: Some("/nonexistent/ca.pem".into()),
                ..TlsSettings::default()
            },
            ..SecurityConfig::default()
        };
        let err = config.prepare().unwrap_err().to_string();
        assert!(err.contains("ssl.ca.location /nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let config = SecurityConfig {
            protocol: SecurityProtocol::Ssl,
            tls: TlsSettings {
                ca_location: Some(empty),
                ..TlsSettings::default()
            },
            ..SecurityConfig::default()
        };
        let err = config.prepare().unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn server_names_from_addresses() {
        assert_eq!(
            server_name("broker-1.example.com:9093").unwrap(),
            ServerName::try_from("broker-1.example.com").unwrap()
        );
        assert!(matches!(
            server_name("127.0.0.1:9093").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:9093").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(server_name("bad_host!:1").is_err());
    }
}
