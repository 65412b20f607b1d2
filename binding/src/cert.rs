//! Certificates: generation of short-lived self-signed ones, and SHA-256 fingerprints.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use rcgen::{CertificateParams, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use time::{Duration, OffsetDateTime};

use crate::error::{js_error, Result};

/// Longest validity that browsers accept for `serverCertificateHashes` pinning.
pub const MAX_PINNED_VALIDITY_DAYS: u32 = 14;

/// A freshly generated certificate and its private key.
#[napi(object)]
pub struct BindingCertificate {
    /// The certificate, PEM.
    pub cert: String,
    /// The PKCS#8 private key, PEM.
    pub key: String,
    /// SHA-256 of the certificate's DER encoding.
    pub hash: Buffer,
}

/// An ECDSA P-256 self-signed certificate for `names` (DNS names or IP literals), valid from a
/// minute ago for `days` days (at most 14, as `serverCertificateHashes` requires).
#[napi(catch_unwind)]
pub fn generate_certificate(names: Vec<String>, days: u32) -> Result<BindingCertificate> {
    if days == 0 || days > MAX_PINNED_VALIDITY_DAYS {
        return Err(js_error(
            "ERR_OUT_OF_RANGE",
            format!("days must be 1..={MAX_PINNED_VALIDITY_DAYS}, got {days}"),
        ));
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| js_error("ERR_QUIC_TLS_CONFIG", format!("key generation: {e}")))?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| js_error("ERR_QUIC_TLS_CONFIG", format!("certificate name: {e}")))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("quichex", |s| s.as_str()),
    );
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(1);
    // Browsers count the whole validity period, so the minute of slack comes out of the end.
    params.not_after = now + Duration::days(days.into()) - Duration::minutes(2);
    let cert = params
        .self_signed(&key)
        .map_err(|e| js_error("ERR_QUIC_TLS_CONFIG", format!("certificate: {e}")))?;
    Ok(BindingCertificate {
        cert: cert.pem(),
        key: key.serialize_pem(),
        hash: sha256(cert.der()).to_vec().into(),
    })
}

/// The default names of a generated server certificate.
pub fn default_names() -> Vec<String> {
    vec![
        "localhost".into(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ]
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    boring::sha::sha256(data)
}
