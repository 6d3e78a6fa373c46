//! Principals from client certificates, in Java's `X500Principal.getName()` form.

use ironlog_security::{from_certificate_der, subject_rfc2253, KafkaPrincipal, PrincipalError};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

fn certificate(subject: &[(DnType, DnValue)]) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut name = DistinguishedName::new();
    for (ty, value) in subject {
        name.push(ty.clone(), value.clone());
    }
    params.distinguished_name = name;
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn utf8(s: &str) -> DnValue {
    DnValue::Utf8String(s.to_string())
}

#[test]
fn subject_is_reversed_and_keyworded() {
    let der = certificate(&[
        (
            DnType::CountryName,
            DnValue::PrintableString("US".try_into().unwrap()),
        ),
        (DnType::OrganizationName, utf8("Org")),
        (DnType::CommonName, utf8("client")),
    ]);
    let principal = from_certificate_der(&der).unwrap();
    assert_eq!(principal, KafkaPrincipal::user("CN=client,O=Org,C=US"));
    assert_eq!(principal.to_string(), "User:CN=client,O=Org,C=US");
}

#[test]
fn all_keywords_and_dotted_oids() {
    let der = certificate(&[
        (
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            DnValue::Ia5String("com".try_into().unwrap()),
        ),
        (DnType::CountryName, utf8("DE")),
        (DnType::StateOrProvinceName, utf8("Bavaria")),
        (DnType::LocalityName, utf8("Munich")),
        (DnType::CustomDnType(vec![2, 5, 4, 9]), utf8("Main St 1")),
        (DnType::OrganizationName, utf8("Org")),
        (DnType::OrganizationalUnitName, utf8("Unit")),
        (
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            utf8("u42"),
        ),
        // emailAddress has no RFC 2253 keyword in Java: dotted OID and hex DER.
        (
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            DnValue::Ia5String("a@b.c".try_into().unwrap()),
        ),
        (DnType::CommonName, utf8("client")),
    ]);
    assert_eq!(
        subject_rfc2253(&der).unwrap(),
        "CN=client,1.2.840.113549.1.9.1=#16056140622e63,UID=u42,OU=Unit,O=Org,\
         STREET=Main St 1,L=Munich,ST=Bavaria,C=DE,DC=com"
    );
}

#[test]
fn values_are_escaped() {
    let der = certificate(&[
        (DnType::OrganizationName, utf8(" lead,trail ")),
        (DnType::CommonName, utf8("#a+b=c\"d\\e<f>g;h")),
    ]);
    assert_eq!(
        from_certificate_der(&der).unwrap().to_string(),
        "User:CN=\\#a\\+b\\=c\\\"d\\\\e\\<f\\>g\\;h,O=\\ lead\\,trail\\ "
    );
}

#[test]
fn string_types_print_as_java_does() {
    let der = certificate(&[
        // BMPString: Java reads the UTF-16 bytes as UTF-8, so NULs appear as \00.
        (
            DnType::OrganizationName,
            DnValue::BmpString("ab".try_into().unwrap()),
        ),
        // UniversalString is not one of Java's string types: hex DER.
        (
            DnType::CommonName,
            DnValue::UniversalString("ab".try_into().unwrap()),
        ),
        (
            DnType::LocalityName,
            DnValue::TeletexString("x y".try_into().unwrap()),
        ),
    ]);
    assert_eq!(
        subject_rfc2253(&der).unwrap(),
        "L=x y,CN=#1c080000006100000062,O=\\00a\\00b"
    );
}

// A tiny DER writer for a certificate rcgen cannot make (multi-valued RDNs, non-string
// values). Only the subject matters; the signature is not checked.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn oid(der_content: &[u8]) -> Vec<u8> {
    tlv(0x06, der_content)
}

fn ava(oid_content: &[u8], value: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &[oid(oid_content), value].concat())
}

fn rdn(avas: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &avas.concat())
}

fn handmade_certificate(subject_rdns: &[Vec<u8>]) -> Vec<u8> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let ecdsa_sha256 = tlv(
        0x30,
        &oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let issuer = tlv(0x30, &rdn(&[ava(CN, tlv(0x0c, b"issuer"))]));
    let subject = tlv(0x30, &subject_rdns.concat());
    let validity = tlv(
        0x30,
        &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"350101000000Z")].concat(),
    );
    let spki = KeyPair::generate().unwrap().public_key_der();
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            ecdsa_sha256.clone(),
            issuer,
            validity,
            subject,
            spki,
        ]
        .concat(),
    );
    let signature = tlv(0x03, &[0, 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
    tlv(0x30, &[tbs, ecdsa_sha256, signature].concat())
}

#[test]
fn multi_valued_rdns_and_non_string_values() {
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const SERIAL_NUMBER: &[u8] = &[0x55, 0x04, 0x05];
    const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
    let der = handmade_certificate(&[
        rdn(&[ava(C, tlv(0x13, b"US"))]),
        rdn(&[ava(CN, tlv(0x0c, b"a b")), ava(UID, tlv(0x0c, b"x+y"))]),
        // A keyword attribute whose value is not a string: hex DER.
        rdn(&[ava(OU, tlv(0x02, &[5]))]),
        // A string value under an attribute without keyword: hex DER too.
        rdn(&[ava(SERIAL_NUMBER, tlv(0x13, b"123"))]),
    ]);
    assert_eq!(
        subject_rfc2253(&der).unwrap(),
        "2.5.4.5=#1303313233,OU=#020105,CN=a b+UID=x\\+y,C=US"
    );
    assert_eq!(
        from_certificate_der(&handmade_certificate(&[])).unwrap(),
        KafkaPrincipal::user("")
    );
}

#[test]
fn invalid_certificates_are_errors() {
    assert!(matches!(
        from_certificate_der(b""),
        Err(PrincipalError::Certificate(_))
    ));
    assert!(matches!(
        from_certificate_der(b"\x30\x03\x02\x01\x01"),
        Err(PrincipalError::Certificate(_))
    ));
    let mut der = certificate(&[(DnType::CommonName, utf8("client"))]);
    assert!(from_certificate_der(&der).is_ok());
    der.push(0);
    assert_eq!(
        from_certificate_der(&der),
        Err(PrincipalError::Certificate(
            "trailing data after the certificate".into()
        ))
    );
    der.pop();
    der.truncate(der.len() - 1);
    assert!(matches!(
        from_certificate_der(&der),
        Err(PrincipalError::Certificate(_))
    ));
}
