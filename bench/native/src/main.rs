//! quiche-peer: the native ceiling baseline of bench/run.ts. It plays the scenarios of
//! bench/quic-server.ts and bench/quic-client.ts in plain Rust over the same quiche, with the same
//! transport settings as quichex's defaults and a plain `ppoll` loop over a std UDP socket, so
//! that quichex's figures can be read as a fraction of what quiche itself does on this machine.
//!
//! ```text
//! quiche-peer --role server [--push <bytes>] [--idle <ms>]
//! quiche-peer --role bulk --port <p> --hash <hex> --size <bytes>
//! quiche-peer --role parallel --port <p> --hash <hex> --size <bytes> --streams <n>
//! quiche-peer --role download --port <p> --hash <hex>
//! quiche-peer --role echo --port <p> --hash <hex> --iterations <n> --warmup <n>
//! quiche-peer --role handshake --port <p> --hash <hex> --count <n> [--concurrency <c>] [--warmup <w>]
//! ```
//!
//! Protocol with bench/run.ts: each process prints one JSON object a line on stdout, each one a
//! `WorkerMessage` of bench/common.ts — the server `ready` (its port and certificate hash), then
//! `received` for every unidirectional stream read to its FIN, and with `--push` `sent` for the
//! stream it sends each client; the bulk and parallel clients `sent`; the download client
//! `received`; the echo client `samples`; the handshake client `handshakes`. Times are
//! milliseconds on CLOCK_MONOTONIC, as in the TypeScript workers. Clients pin the server's
//! certificate hash (`--hash`, SHA-256 of the DER leaf) as quichex's `serverCertificateHashes`
//! does. A process stops (closing its connections) when its stdin reaches end of file, which is
//! how run.ts says `stop`; the echo and handshake clients also exit by themselves once they have
//! reported. The server serves any number of connections at once (bench/run.ts also points
//! quichex's clients at it, to measure its memory per idle connection); `--idle` sets its idle
//! timeout in milliseconds. Errors go to stderr with exit status 1.

mod client;
mod io;
mod report;
mod server;

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boring::sha::sha256;
use boring::ssl::{SslAlert, SslContextBuilder, SslMethod, SslVerifyError, SslVerifyMode};

const MIB: u64 = 1024 * 1024;

fn main() {
    if let Err(e) = run() {
        eprintln!("quiche-peer: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::io::Result<()> {
    let args = arguments()?;
    let number = |name: &str| -> std::io::Result<usize> {
        args.get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("--{name} <number> is required")))
    };
    let role = args.get("role").map_or("", String::as_str);
    if role == "server" {
        let mut config = config(None)?;
        if args.contains_key("idle") {
            config.set_max_idle_timeout(number("idle")? as u64);
        }
        let hash = load_generated_certificate(&mut config)?;
        let push = args.get("push").map_or(Ok(0), |_| number("push"))?;
        return server::run(&mut config, &hash, push);
    }
    let pin = pin(args.get("hash").map_or("", String::as_str))?;
    let port = u16::try_from(number("port")?).map_err(std::io::Error::other)?;
    if role == "handshake" {
        let concurrency = args
            .get("concurrency")
            .map_or(Ok(1), |_| number("concurrency"))?;
        let warmup = args.get("warmup").map_or(Ok(1), |_| number("warmup"))?;
        let make_config = || config(pin.clone());
        return client::handshakes(port, &make_config, number("count")?, concurrency, warmup);
    }
    let mut config = config(pin)?;
    let client = client::Client::connect(port, &mut config)?;
    match role {
        "bulk" => client.bulk(number("size")?, 1),
        "parallel" => client.bulk(number("size")?, number("streams")?),
        "download" => client.download(),
        "echo" => client.echo(number("iterations")?, number("warmup")?),
        _ => Err(std::io::Error::other(
            "--role must be server, bulk, parallel, download, echo or handshake",
        )),
    }
}

/// `--hash` as bytes; `None` when it is empty (no pinning: the peer is not verified).
fn pin(hex: &str) -> std::io::Result<Option<Vec<u8>>> {
    if hex.is_empty() {
        return Ok(None);
    }
    let bad = || std::io::Error::other(format!("--hash must be hex, got {hex}"));
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect::<std::io::Result<Vec<u8>>>()
        .map(Some)
}

/// `--name value` pairs.
fn arguments() -> std::io::Result<HashMap<String, String>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if !argv.len().is_multiple_of(2) {
        return Err(std::io::Error::other(
            "arguments come as --name value pairs",
        ));
    }
    Ok(argv
        .chunks(2)
        .map(|pair| (pair[0].trim_start_matches('-').to_owned(), pair[1].clone()))
        .collect())
}

/// quichex's defaults (lib/options.ts, binding/src/config.rs) wherever they shape the transfer,
/// and, with a `pin`, its verification of the server: the leaf certificate must hash to it.
fn config(pin: Option<Vec<u8>>) -> std::io::Result<quiche::Config> {
    let q = |what| move |e| io::quiche_error(what, e);
    let mut tls = SslContextBuilder::new(SslMethod::tls()).map_err(std::io::Error::other)?;
    match pin {
        // As binding/src/config.rs does, without its check of the validity period.
        Some(pin) => tls.set_custom_verify_callback(SslVerifyMode::PEER, move |ssl| {
            let leaf = ssl
                .peer_certificate()
                .ok_or(SslVerifyError::Invalid(SslAlert::CERTIFICATE_REQUIRED))?;
            let der = leaf
                .to_der()
                .map_err(|_| SslVerifyError::Invalid(SslAlert::BAD_CERTIFICATE))?;
            if sha256(&der).as_slice() == pin.as_slice() {
                Ok(())
            } else {
                Err(SslVerifyError::Invalid(SslAlert::BAD_CERTIFICATE))
            }
        }),
        // The server, which asks clients for no certificate.
        None => tls.set_verify(SslVerifyMode::NONE),
    }
    // quiche's `verify_peer` is never called: it would replace the callback above.
    let mut c = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, tls)
        .map_err(q("config"))?;
    c.set_application_protos(&[b"bench"])
        .map_err(q("protocols"))?;
    c.set_max_idle_timeout(30_000);
    c.set_initial_max_data(16 * MIB);
    c.set_initial_max_stream_data_bidi_local(MIB);
    c.set_initial_max_stream_data_bidi_remote(MIB);
    c.set_initial_max_stream_data_uni(MIB);
    c.set_initial_max_streams_bidi(100);
    c.set_initial_max_streams_uni(100);
    c.set_max_connection_window(24 * MIB);
    c.set_max_stream_window(16 * MIB);
    c.set_cc_algorithm_name("cubic").map_err(q("cc"))?;
    c.set_max_recv_udp_payload_size(io::MAX_UDP_PAYLOAD);
    c.set_max_send_udp_payload_size(io::MAX_UDP_PAYLOAD);
    c.grease(true);
    c.set_initial_rtt(Duration::from_millis(100));
    Ok(c)
}

/// A self-signed P-256 certificate for localhost, made by rcgen, valid for 13 days from a minute
/// ago (quichex's pinning, like WebTransport's, accepts at most 14), and loaded through a temporary
/// directory (quiche's `Config` takes PEM files), which is removed at once. Returns its SHA-256
/// hash in hex, for clients to pin.
fn load_generated_certificate(c: &mut quiche::Config) -> std::io::Result<String> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(std::io::Error::other)?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(std::io::Error::other)?;
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + Duration::from_secs(13 * 86_400);
    let signing_key = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
    let cert = params
        .self_signed(&signing_key)
        .map_err(std::io::Error::other)?;
    let generated = rcgen::CertifiedKey { cert, signing_key };
    let dir = std::env::temp_dir().join(format!("quiche-peer-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    fs::write(&cert, generated.cert.pem())?;
    fs::write(&key, generated.signing_key.serialize_pem())?;
    let loaded = c
        .load_cert_chain_from_pem_file(&cert.to_string_lossy())
        .and_then(|_| c.load_priv_key_from_pem_file(&key.to_string_lossy()));
    fs::remove_dir_all(&dir)?;
    loaded.map_err(|e| io::quiche_error("certificate", e))?;
    Ok(sha256(generated.cert.der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A fresh random connection ID of quiche's maximum length.
fn connection_id() -> Vec<u8> {
    let mut id = vec![0u8; quiche::MAX_CONN_ID_LEN];
    // SAFETY: fills exactly `id.len()` bytes of `id`.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    assert_eq!(n, id.len() as isize, "getrandom failed");
    id
}
