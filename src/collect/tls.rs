//! TLS certificates: PEM files read from the host, parsed as X.509 (x509-parser), never
//! scraped from tool text. The probe prints each file after a `### file PATH` line.
//! Pure: no I/O.

use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::X509Certificate;

use super::{ParseError, check_size, clean};
use crate::state::{Certificate, KeyType};

const WHAT: &str = "certificate files";

/// The most certificates read from one file (a bundle of CAs is not what we want).
const MAX_PER_FILE: usize = 16;

fn key_type(cert: &X509Certificate<'_>) -> KeyType {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
            KeyType::Rsa {
                bits: u32::try_from(bits).unwrap_or(0),
            }
        }
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| match o.to_id_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_string(),
                    "1.3.132.0.34" => "P-384".to_string(),
                    "1.3.132.0.35" => "P-521".to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            KeyType::Ec { curve }
        }
        "1.3.101.112" => KeyType::Ed25519,
        "1.3.101.113" => KeyType::Ed448,
        other => KeyType::Other {
            oid: other.to_string(),
        },
    }
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(format!("DNS:{}", clean(d))),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| format!("IP:{}", std::net::Ipv4Addr::from(a))),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| format!("IP:{}", std::net::Ipv6Addr::from(a))),
                _ => None,
            },
            GeneralName::RFC822Name(m) => Some(format!("email:{}", clean(m))),
            GeneralName::URI(u) => Some(format!("URI:{}", clean(u))),
            _ => None,
        })
        .collect()
}

/// Parses every certificate of one PEM text. Non-certificate blocks (keys) are skipped
/// without being kept.
pub fn parse_pem(path: &str, text: &str) -> Result<Vec<Certificate>, ParseError> {
    check_size(WHAT, text)?;
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(text.as_bytes()) {
        let pem = match pem {
            Ok(p) => p,
            Err(e) => {
                if out.is_empty() {
                    return Err(ParseError::new(
                        WHAT,
                        0,
                        format!("{}: bad PEM: {e}", clean(path)),
                    ));
                }
                break;
            }
        };
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let cert = pem.parse_x509().map_err(|e| {
            ParseError::new(
                WHAT,
                0,
                format!("{}: not an X.509 certificate: {e}", clean(path)),
            )
        })?;
        let subject = clean(&cert.subject().to_string());
        let issuer = clean(&cert.issuer().to_string());
        out.push(Certificate {
            path: clean(path),
            index: out.len(),
            self_signed: subject == issuer,
            subject,
            issuer,
            sans: sans(&cert),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key: key_type(&cert),
            serial: cert.raw_serial_as_string(),
        });
        if out.len() >= MAX_PER_FILE {
            break;
        }
    }
    if out.is_empty() {
        return Err(ParseError::new(
            WHAT,
            0,
            format!("{}: no certificate", clean(path)),
        ));
    }
    Ok(out)
}

/// Splits the probe's output into `(path, contents)` by its `### file PATH` lines.
pub fn split_files(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("### file ") {
            out.push((p.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Parses every file of the probe's output; unreadable files become error strings.
pub fn parse_files(text: &str) -> (Vec<Certificate>, Vec<String>) {
    let mut certs = Vec::new();
    let mut errors = Vec::new();
    for (path, body) in split_files(text) {
        match parse_pem(&path, &body) {
            Ok(c) => certs.extend(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (certs, errors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_keys_only_are_errors() {
        assert!(parse_pem("x", "hello").is_err());
        assert!(
            parse_pem(
                "x",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        let (c, e) = parse_files("### file /a\nnothing\n### file /b\n");
        assert!(c.is_empty());
        assert_eq!(e.len(), 2);
    }
}
