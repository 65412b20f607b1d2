//! quiche-peer: the native ceiling baseline of bench/run.ts. It plays the scenarios of
//! bench/quic-server.ts and bench/quic-client.ts in plain Rust over the same quiche, with the same
//! transport settings as quichex's defaults and a plain `ppoll` loop over a std UDP socket, so
//! that quichex's figures can be read as a fraction of what quiche itself does on this machine.
//!
//! ```text
//! quiche-peer --role server
//! quiche-peer --role bulk --port <p> --size <bytes>
//! quiche-peer --role echo --port <p> --iterations <n> --warmup <n>
//! ```
//!
//! Protocol with bench/run.ts: each process prints one JSON object a line on stdout, each one a
//! `WorkerMessage` of bench/common.ts — the server `ready` (its port) and then `received` for
//! every unidirectional stream read to its FIN; the bulk client `sent`; the echo client
//! `samples`. Times are milliseconds on CLOCK_MONOTONIC, as in the TypeScript workers. A process
//! stops (closing its connection) when its stdin reaches end of file, which is how run.ts says
//! `stop`; the echo client also exits by itself once it has reported. Errors go to stderr with
//! exit status 1.

mod client;
mod io;
mod report;
mod server;

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

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
    let mut config = config(role == "server")?;
    match role {
        "server" => server::run(&mut config),
        "bulk" | "echo" => {
            let port = u16::try_from(number("port")?).map_err(std::io::Error::other)?;
            let client = client::Client::connect(port, &mut config)?;
            if role == "bulk" {
                client.bulk(number("size")?)
            } else {
                client.echo(number("iterations")?, number("warmup")?)
            }
        }
        _ => Err(std::io::Error::other("--role must be server, bulk or echo")),
    }
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

/// quichex's defaults (lib/options.ts, binding/src/config.rs) wherever they shape the transfer.
fn config(is_server: bool) -> std::io::Result<quiche::Config> {
    let q = |what| move |e| io::quiche_error(what, e);
    let mut c = quiche::Config::new(quiche::PROTOCOL_VERSION).map_err(q("config"))?;
    c.set_application_protos(&[b"bench"])
        .map_err(q("protocols"))?;
    if is_server {
        load_generated_certificate(&mut c)?;
    }
    // Not verified: the baseline measures the transport, and the handshake is outside every
    // timed section. (quichex's client pins the server's certificate hash instead.)
    c.verify_peer(false);
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

/// A self-signed certificate for localhost, made by rcgen and loaded through a temporary
/// directory (quiche's `Config::new` takes PEM files), which is removed at once.
fn load_generated_certificate(c: &mut quiche::Config) -> std::io::Result<()> {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(std::io::Error::other)?;
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
    loaded.map_err(|e| io::quiche_error("certificate", e))
}

/// A fresh random connection ID of quiche's maximum length.
fn connection_id() -> Vec<u8> {
    let mut id = vec![0u8; quiche::MAX_CONN_ID_LEN];
    // SAFETY: fills exactly `id.len()` bytes of `id`.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    assert_eq!(n, id.len() as isize, "getrandom failed");
    id
}
