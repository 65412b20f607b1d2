//! The server: like bench/quic-server.ts, it counts each incoming unidirectional stream to its FIN
//! (bulk) and echoes each bidirectional stream (echo). One connection at a time: bench/run.ts
//! starts a server per scenario, and a second client's packets are simply dropped.

use std::collections::HashMap;
use std::io;

use crate::io::{quiche_error, Io, Turn, Wake};
use crate::report;

/// Serves connections one after another until stdin closes.
pub fn run(config: &mut quiche::Config) -> io::Result<()> {
    let mut io = Io::bind()?;
    report::ready(io.local().port());
    while let Some(mut conn) = accept(&mut io, config)? {
        if !serve(&mut io, &mut conn)? {
            break;
        }
    }
    Ok(())
}

/// Waits for a client's Initial and accepts it (no Retry, as quichex's server by default).
fn accept(io: &mut Io, config: &mut quiche::Config) -> io::Result<Option<quiche::Connection>> {
    let local = io.local();
    let mut conn: Option<quiche::Connection> = None;
    let mut failure = None;
    while conn.is_none() {
        match io.wait(None)? {
            Wake::Stop => return Ok(None),
            Wake::Timeout => continue,
            Wake::Readable => {}
        }
        io.recv_all(|packet, info| {
            if conn.is_none() {
                let Ok(header) = quiche::Header::from_slice(packet, quiche::MAX_CONN_ID_LEN) else {
                    return;
                };
                if header.ty != quiche::Type::Initial {
                    return;
                }
                let scid = quiche::ConnectionId::from_vec(crate::connection_id());
                match quiche::accept(&scid, None, local, info.from, config) {
                    Ok(c) => conn = Some(c),
                    Err(e) => failure = Some(quiche_error("accept", e)),
                }
            }
            if let Some(c) = conn.as_mut() {
                let _ = c.recv(packet, info);
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(conn)
}

/// A bulk stream's count so far.
#[derive(Default)]
struct Count {
    bytes: u64,
    packets: u64,
}

/// An echo stream: what is read and not yet written back, and whether the peer has finished.
#[derive(Default)]
struct Echo {
    pending: Vec<u8>,
    fin: bool,
    done: bool,
}

/// Serves `conn` until it closes (true) or stdin does (false).
fn serve(io: &mut Io, conn: &mut quiche::Connection) -> io::Result<bool> {
    let mut counts: HashMap<u64, Count> = HashMap::new();
    let mut echoes: HashMap<u64, Echo> = HashMap::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match io.turn(conn)? {
            Turn::Open => {}
            Turn::Closed => return Ok(true),
            Turn::Stop => {
                io.close(conn)?;
                return Ok(false);
            }
        }
        for id in conn.readable() {
            if id & 0x2 != 0 {
                if count(conn, id, &mut buf, counts.entry(id).or_default()) {
                    counts.remove(&id);
                }
            } else {
                read_echo(conn, id, &mut buf, echoes.entry(id).or_default());
            }
        }
        for (&id, echo) in echoes.iter_mut() {
            write_echo(conn, id, echo);
        }
        echoes.retain(|_, e| !e.done);
    }
}

/// Reads what `id` has; true once the stream is over (FIN reported, or reset).
fn count(conn: &mut quiche::Connection, id: u64, buf: &mut [u8], c: &mut Count) -> bool {
    loop {
        match conn.stream_recv(id, buf) {
            Ok((n, fin)) => {
                c.bytes += n as u64;
                c.packets += 1;
                if fin {
                    report::received(c.bytes, c.packets, report::now());
                    return true;
                }
            }
            Err(quiche::Error::Done) => return false,
            Err(_) => return true,
        }
    }
}

fn read_echo(conn: &mut quiche::Connection, id: u64, buf: &mut [u8], e: &mut Echo) {
    loop {
        match conn.stream_recv(id, buf) {
            Ok((n, fin)) => {
                e.pending.extend_from_slice(&buf[..n]);
                e.fin |= fin;
            }
            Err(quiche::Error::Done) => return,
            Err(_) => {
                e.done = true;
                return;
            }
        }
    }
}

fn write_echo(conn: &mut quiche::Connection, id: u64, e: &mut Echo) {
    if e.done {
        return;
    }
    if !e.pending.is_empty() {
        match conn.stream_send(id, &e.pending, false) {
            Ok(n) => drop(e.pending.drain(..n)),
            Err(quiche::Error::Done) => {}
            Err(_) => e.done = true,
        }
    }
    if e.pending.is_empty() && e.fin {
        // Sent, or failed for good: either way the stream needs nothing more from us.
        e.done = !matches!(conn.stream_send(id, &[], true), Err(quiche::Error::Done));
    }
}
