//! Kafka principals (`Type:name`, e.g. `User:alice`) and the default principal of a TLS
//! client certificate.
//!
//! Kafka's default SSL principal is `User:` followed by the certificate subject as Java's
//! `X500Principal.getName()` prints it (RFC 2253 form). ACLs name principals by that exact
//! text, so [`subject_rfc2253`] reproduces Java's output rather than a generic formatter's:
//!
//! * RDNs in reverse order of their encoding, joined by `,` with no spaces; the attributes of
//!   a multi-valued RDN joined by `+` in their encoded order.
//! * Attribute types `CN`, `L`, `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID` by keyword; any
//!   other as its dotted OID.
//! * A value with a keyword and a string type (PrintableString, UTF8String, IA5String,
//!   TeletexString, GeneralString, BMPString) as text: its bytes read as UTF-8 (as Java does,
//!   even for BMPString), with `,` `=` `+` `<` `>` `#` `;` `"` `\` escaped by a backslash,
//!   NUL as `\00`, and leading and trailing spaces (and carriage returns) escaped.
//! * Any other value (a dotted OID type, or a non-string value) as `#` and the lowercase hex
//!   of its whole DER encoding.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use x509_parser::asn1_rs::{Any, Class, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// A Kafka principal: a type (`User` for authenticated clients) and a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

/// The principal type of users.
pub const USER_TYPE: &str = "User";
/// The name of the principal of unauthenticated connections.
pub const ANONYMOUS_NAME: &str = "ANONYMOUS";
/// `User:ANONYMOUS`, the principal of unauthenticated (PLAINTEXT) connections.
pub static ANONYMOUS: LazyLock<KafkaPrincipal> =
    LazyLock::new(|| KafkaPrincipal::user(ANONYMOUS_NAME));

impl KafkaPrincipal {
    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: principal_type.into(),
            name: name.into(),
        }
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal::new(USER_TYPE, name)
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> KafkaPrincipal {
        ANONYMOUS.clone()
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == USER_TYPE && self.name == ANONYMOUS_NAME
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// Why a principal could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// The text is not `Type:name` with a non-empty type.
    #[error("invalid principal {0:?}: expected Type:name")]
    Format(String),
    /// The certificate could not be read.
    #[error("invalid certificate: {0}")]
    Certificate(String),
}

impl FromStr for KafkaPrincipal {
    type Err = PrincipalError;

    /// Parses `Type:name`, splitting at the first `:` (the name may contain more). The type
    /// must be non-empty; the name may be empty.
    fn from_str(s: &str) -> Result<KafkaPrincipal, PrincipalError> {
        match s.split_once(':') {
            Some((principal_type, name)) if !principal_type.is_empty() => {
                Ok(KafkaPrincipal::new(principal_type, name))
            }
            _ => Err(PrincipalError::Format(s.to_string())),
        }
    }
}

/// Kafka's default principal for a TLS client certificate (DER): `User:` + the subject in
/// RFC 2253 form as Java prints it (see the module docs), e.g. `User:CN=client,O=Org,C=US`.
pub fn from_certificate_der(der: &[u8]) -> Result<KafkaPrincipal, PrincipalError> {
    subject_rfc2253(der).map(KafkaPrincipal::user)
}

/// The subject of a certificate (DER) in RFC 2253 form as Java's `X500Principal.getName()`
/// prints it. The certificate's signature and validity are not checked (the TLS handshake
/// does that); trailing bytes after the certificate are refused.
pub fn subject_rfc2253(der: &[u8]) -> Result<String, PrincipalError> {
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|e| PrincipalError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PrincipalError::Certificate(
            "trailing data after the certificate".to_string(),
        ));
    }
    name_rfc2253(certificate.subject())
}

fn name_rfc2253(name: &X509Name<'_>) -> Result<String, PrincipalError> {
    let mut rdns = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(attribute_rfc2253)
                .collect::<Result<Vec<_>, _>>()
                .map(|attributes| attributes.join("+"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rdns.reverse();
    Ok(rdns.join(","))
}

/// The RFC 2253 keyword Java prints for an attribute type, if it has one.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// The string types Java prints as text (`AVA.isDerString`, non-canonical).
fn is_text_value(value: &Any<'_>) -> bool {
    value.class() == Class::Universal
        && !value.header.is_constructed()
        && matches!(
            value.tag(),
            Tag::PrintableString
                | Tag::TeletexString
                | Tag::Ia5String
                | Tag::GeneralString
                | Tag::BmpString
                | Tag::Utf8String
        )
}

fn attribute_rfc2253(attribute: &AttributeTypeAndValue<'_>) -> Result<String, PrincipalError> {
    let oid = attribute.attr_type().to_id_string();
    let value = attribute.attr_value();
    match keyword(&oid) {
        Some(keyword) if is_text_value(value) => Ok(format!(
            "{keyword}={}",
            escape_value(&String::from_utf8_lossy(value.data))
        )),
        keyword => {
            let der = value
                .to_der_vec()
                .map_err(|e| PrincipalError::Certificate(e.to_string()))?;
            let mut out = format!("{}=#", keyword.unwrap_or(&oid));
            for byte in der {
                out.push_str(&format!("{byte:02x}"));
            }
            Ok(out)
        }
    }
}

/// Escapes a value as Java's `AVA.toRFC2253String` does.
fn escape_value(value: &str) -> String {
    let mut escaped: Vec<char> = Vec::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.extend(['\\', '0', '0']),
            c => escaped.push(c),
        }
    }
    let is_space = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| is_space(c)).count();
    let trail = escaped.iter().rev().take_while(|c| is_space(c)).count();
    let trail_start = escaped.len() - trail.min(escaped.len());
    let mut out = String::with_capacity(escaped.len() + lead + trail);
    for (i, c) in escaped.into_iter().enumerate() {
        if i < lead || i >= trail_start {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_java() {
        assert_eq!(escape_value("client"), "client");
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(
            escape_value("#a=b+c<d>e;f\"g\\h"),
            "\\#a\\=b\\+c\\<d\\>e\\;f\\\"g\\\\h"
        );
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(escape_value("  "), "\\ \\ ");
        assert_eq!(escape_value("a\0b"), "a\\00b");
        assert_eq!(escape_value(""), "");
        assert_eq!(escape_value("ünï ß"), "ünï ß");
    }

    #[test]
    fn display_and_parse() {
        let p: KafkaPrincipal = "User:alice".parse().unwrap();
        assert_eq!(p, KafkaPrincipal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        let p: KafkaPrincipal = "User:CN=a:b,O=c".parse().unwrap();
        assert_eq!(p.principal_type, "User");
        assert_eq!(p.name, "CN=a:b,O=c");
        let p: KafkaPrincipal = "Group:".parse().unwrap();
        assert_eq!(p, KafkaPrincipal::new("Group", ""));
        assert_eq!(
            "alice".parse::<KafkaPrincipal>(),
            Err(PrincipalError::Format("alice".to_string()))
        );
        assert!(":alice".parse::<KafkaPrincipal>().is_err());
        assert!("".parse::<KafkaPrincipal>().is_err());
        assert_eq!(ANONYMOUS.to_string(), "User:ANONYMOUS");
        assert!(KafkaPrincipal::anonymous().is_anonymous());
        assert!(!KafkaPrincipal::user("alice").is_anonymous());
    }
}
