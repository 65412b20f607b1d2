//! Endpoint configuration: transport parameters and TLS, from options JS has validated.

use boring::ssl::{AlpnError, SslContextBuilder, SslMethod, SslVerifyError, SslVerifyMode};
use boring::x509::X509;
use boring::{asn1::Asn1Time, pkey::PKey, ssl::SslAlert};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::time::Duration;

use crate::cert::{default_names, generate_certificate, sha256, MAX_PINNED_VALIDITY_DAYS};
use crate::error::{from_quiche, js_error, tls_error, Result};

/// Everything an endpoint needs, already validated and defaulted by `lib/options.ts`.
#[napi(object)]
pub struct BindingConfig {
    /// Server endpoints accept connections; client endpoints make them.
    pub is_server: bool,
    /// ALPN protocols in preference order.
    pub protocols: Vec<String>,
    /// Server certificate chain, PEM. A server without one gets a generated certificate.
    pub cert: Option<String>,
    /// Server private key, PEM.
    pub key: Option<String>,
    /// Client trust roots, PEM. Without them (and without hashes) the system store is used.
    pub ca: Option<String>,
    /// Client pinning: SHA-256 digests of acceptable leaf certificates (DER).
    pub server_certificate_hashes: Option<Vec<Buffer>>,
    /// Client: verify the server at all. False only through the explicitly unsafe option.
    pub verify_peer: bool,
    /// Client: the IP address the certificate must name, when the URL host is an IP literal.
    pub verify_ip: Option<String>,
    /// Milliseconds.
    pub max_idle_timeout: f64,
    /// Bytes.
    pub initial_max_data: f64,
    /// Bytes.
    pub initial_max_stream_data_bidi_local: f64,
    /// Bytes.
    pub initial_max_stream_data_bidi_remote: f64,
    /// Bytes.
    pub initial_max_stream_data_uni: f64,
    /// Stream count.
    pub initial_max_streams_bidi: f64,
    /// Stream count.
    pub initial_max_streams_uni: f64,
    /// Bytes.
    pub max_connection_window: f64,
    /// Bytes.
    pub max_stream_window: f64,
    /// `cubic`, `reno` or `bbr2`.
    pub congestion_control: String,
    /// Bytes.
    pub max_udp_payload_size: u32,
    /// Forbid the peer from migrating.
    pub disable_active_migration: bool,
    /// Send GREASE values.
    pub grease: bool,
    /// Server: validate addresses with a stateless Retry.
    pub retry: bool,
    /// Server: most connections at once; more are refused.
    pub max_connections: u32,
    /// Server: the secret its stateless reset tokens are derived from (random when absent).
    pub stateless_reset_key: Option<Buffer>,
    /// Offer and accept QUIC DATAGRAM frames (RFC 9221).
    pub datagrams: bool,
    /// Let quiche's pacer time the sends (BBR2 only: its CUBIC and Reno do not pace).
    pub pacing: bool,
    /// Milliseconds: the RTT assumed before the first sample.
    pub initial_rtt: f64,
    /// Milliseconds between keep-alive PINGs once established; 0 for none.
    pub keep_alive_interval: f64,
    /// Append TLS secrets to this file, in the SSLKEYLOGFILE format.
    pub keylog: Option<String>,
    /// Write one qlog file per connection into this directory.
    pub qlog_dir: Option<String>,
}

/// A built quiche configuration plus what the endpoint reports about its certificate.
pub struct Built {
    pub quiche: quiche::Config,
    /// SHA-256 of the server's leaf certificate.
    pub cert_hash: Option<Vec<u8>>,
    /// The server's leaf certificate, PEM.
    pub cert_pem: Option<String>,
    /// The open key log file, shared by every connection of the endpoint.
    pub keylog: Option<File>,
}

/// quiche's queue of received DATAGRAMs. JS empties it every turn; when it is full quiche drops
/// the oldest, which the endpoint counts. The user-visible limits are enforced in JS.
pub const DGRAM_RECV_QUEUE: usize = 4096;
/// quiche's queue of DATAGRAMs to send. JS keeps the rest (ordered, with their age) and feeds
/// quiche as it empties, so that outgoing limits, ages and send order stay in JS's hands.
pub const DGRAM_SEND_QUEUE: usize = 64;

pub fn build(c: &BindingConfig) -> Result<Built> {
    let mut tls =
        SslContextBuilder::new(SslMethod::tls()).map_err(|e| tls_error("TLS context", e))?;
    let (cert_hash, cert_pem) = if c.is_server {
        let (hash, pem) = server_identity(&mut tls, c)?;
        (Some(hash), Some(pem))
    } else {
        client_verification(&mut tls, c)?;
        (None, None)
    };
    if c.is_server {
        select_protocol_by_server_preference(&mut tls, &c.protocols);
    }
    let mut q = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, tls)
        .map_err(|e| from_quiche("config", e))?;
    if !c.is_server {
        let protos: Vec<&[u8]> = c.protocols.iter().map(|p| p.as_bytes()).collect();
        q.set_application_protos(&protos)
            .map_err(|e| from_quiche("protocols", e))?;
    }
    q.set_max_idle_timeout(c.max_idle_timeout as u64);
    // quiche defaults every initial_max_* to zero: each one is set.
    q.set_initial_max_data(c.initial_max_data as u64);
    q.set_initial_max_stream_data_bidi_local(c.initial_max_stream_data_bidi_local as u64);
    q.set_initial_max_stream_data_bidi_remote(c.initial_max_stream_data_bidi_remote as u64);
    q.set_initial_max_stream_data_uni(c.initial_max_stream_data_uni as u64);
    q.set_initial_max_streams_bidi(c.initial_max_streams_bidi as u64);
    q.set_initial_max_streams_uni(c.initial_max_streams_uni as u64);
    q.set_max_connection_window(c.max_connection_window as u64);
    q.set_max_stream_window(c.max_stream_window as u64);
    q.set_cc_algorithm_name(&c.congestion_control)
        .map_err(|e| from_quiche("congestionControl", e))?;
    q.set_max_recv_udp_payload_size(c.max_udp_payload_size as usize);
    q.set_max_send_udp_payload_size(c.max_udp_payload_size as usize);
    q.set_disable_active_migration(c.disable_active_migration);
    q.grease(c.grease);
    q.set_initial_rtt(Duration::from_secs_f64(c.initial_rtt / 1000.0));
    q.enable_pacing(c.pacing);
    q.enable_dgram(c.datagrams, DGRAM_RECV_QUEUE, DGRAM_SEND_QUEUE);
    let keylog = match &c.keylog {
        Some(path) => {
            q.log_keys();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| js_error("ERR_QUIC_LOG_FILE", format!("keylog {path}: {e}")))?;
            Some(file)
        }
        None => None,
    };
    Ok(Built {
        quiche: q,
        cert_hash,
        cert_pem,
        keylog,
    })
}

/// RFC 7301 §3.2: the server SHOULD pick its most preferred protocol that the client offers.
/// (quiche's own callback, installed by `set_application_protos`, follows the client's order.)
/// No match fails the handshake with the `no_application_protocol` alert.
fn select_protocol_by_server_preference(tls: &mut SslContextBuilder, protocols: &[String]) {
    let ours: Vec<Vec<u8>> = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
    tls.set_alpn_select_callback(move |_, offered| {
        let mut theirs = Vec::new();
        let mut rest = offered;
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if len == 0 || tail.len() < len {
                return Err(AlpnError::ALERT_FATAL);
            }
            theirs.push(&tail[..len]);
            rest = &tail[len..];
        }
        ours.iter()
            .find_map(|p| theirs.iter().find(|t| **t == p.as_slice()).copied())
            .ok_or(AlpnError::ALERT_FATAL)
    });
}

/// Loads (or generates) the server's certificate and key into `tls`.
fn server_identity(tls: &mut SslContextBuilder, c: &BindingConfig) -> Result<(Vec<u8>, String)> {
    let (cert_pem, key_pem) = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => {
            let g = generate_certificate(default_names(), MAX_PINNED_VALIDITY_DAYS)?;
            (g.cert, g.key)
        }
        _ => {
            return Err(js_error(
                "ERR_INVALID_ARG_VALUE",
                "cert and key must be given together",
            ))
        }
    };
    let chain = X509::stack_from_pem(cert_pem.as_bytes()).map_err(|e| tls_error("cert", e))?;
    let mut chain = chain.into_iter();
    let leaf = chain
        .next()
        .ok_or_else(|| js_error("ERR_QUIC_TLS_CONFIG", "cert: no certificate in PEM"))?;
    tls.set_certificate(&leaf)
        .map_err(|e| tls_error("cert", e))?;
    for extra in chain {
        tls.add_extra_chain_cert(extra)
            .map_err(|e| tls_error("cert chain", e))?;
    }
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).map_err(|e| tls_error("key", e))?;
    tls.set_private_key(&key).map_err(|e| tls_error("key", e))?;
    tls.check_private_key()
        .map_err(|e| tls_error("key does not match cert", e))?;
    let der = leaf.to_der().map_err(|e| tls_error("cert", e))?;
    let pem = leaf.to_pem().map_err(|e| tls_error("cert", e))?;
    Ok((
        sha256(&der).to_vec(),
        String::from_utf8_lossy(&pem).into_owned(),
    ))
}

/// Sets how a client verifies the server: pinned hashes, given roots, or the system store.
fn client_verification(tls: &mut SslContextBuilder, c: &BindingConfig) -> Result<()> {
    if !c.verify_peer {
        tls.set_verify(SslVerifyMode::NONE);
        return Ok(());
    }
    if let Some(hashes) = &c.server_certificate_hashes {
        let pins: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
        // Pinning replaces chain verification, as in WebTransport: the leaf must hash to a pin
        // and be a currently valid certificate of at most 14 days.
        tls.set_custom_verify_callback(SslVerifyMode::PEER, move |ssl| {
            let leaf = ssl
                .peer_certificate()
                .ok_or(SslVerifyError::Invalid(SslAlert::CERTIFICATE_REQUIRED))?;
            let der = leaf
                .to_der()
                .map_err(|_| SslVerifyError::Invalid(SslAlert::BAD_CERTIFICATE))?;
            let digest = sha256(&der);
            if !pins.iter().any(|p| p.as_slice() == digest) {
                return Err(SslVerifyError::Invalid(SslAlert::BAD_CERTIFICATE));
            }
            if !pinnable_validity(&leaf) {
                return Err(SslVerifyError::Invalid(SslAlert::CERTIFICATE_EXPIRED));
            }
            Ok(())
        });
        return Ok(());
    }
    tls.set_verify(SslVerifyMode::PEER);
    match &c.ca {
        Some(pem) => {
            let roots = X509::stack_from_pem(pem.as_bytes()).map_err(|e| tls_error("ca", e))?;
            if roots.is_empty() {
                return Err(js_error("ERR_QUIC_TLS_CONFIG", "ca: no certificate in PEM"));
            }
            for root in roots {
                tls.cert_store_mut()
                    .add_cert(root)
                    .map_err(|e| tls_error("ca", e))?;
            }
        }
        None => tls
            .set_default_verify_paths()
            .map_err(|e| tls_error("system trust store", e))?,
    }
    if let Some(ip) = &c.verify_ip {
        // quiche checks DNS names itself (from serverName); an IP literal is checked here.
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| js_error("ERR_INVALID_ARG_VALUE", format!("bad IP {ip}")))?;
        tls.cert_store_mut()
            .verify_param_mut()
            .set_ip(ip)
            .map_err(|e| tls_error("verify ip", e))?;
    }
    Ok(())
}

/// Now within the validity period, and that period at most 14 days.
fn pinnable_validity(cert: &X509) -> bool {
    let Ok(now) = Asn1Time::days_from_now(0) else {
        return false;
    };
    let (from, to) = (cert.not_before(), cert.not_after());
    let in_window = matches!(
        from.compare(&now),
        Ok(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    ) && matches!(to.compare(&now), Ok(std::cmp::Ordering::Greater));
    let span_ok = from.diff(to).is_ok_and(|d| {
        let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
        secs <= i64::from(MAX_PINNED_VALIDITY_DAYS) * 86_400
    });
    in_window && span_ok
}
