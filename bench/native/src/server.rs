//! The server: like bench/quic-server.ts, it counts each incoming unidirectional stream to its FIN
//! (bulk), echoes each bidirectional stream (echo) and, with `--push`, sends each client one
//! unidirectional stream of that many bytes. It serves any number of connections at once, told
//! apart by connection ID as quichex's server does (quichex clients of one process share a
//! socket), and lets a connection go as soon as it starts draining, so that a client closing and
//! reconnecting at once is served at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use crate::io::{quiche_error, Io, Wake};
use crate::report;

/// The first server-initiated unidirectional stream, which `--push` uses.
const PUSH_STREAM: u64 = 3;
/// Bytes handed to quiche per write, as the TypeScript workers write 64 KiB chunks.
const CHUNK: usize = 64 * 1024;

/// Serves connections until stdin closes. Each turn touches only the connections that received
/// a packet or whose timer is due, so that many idle connections cost nothing per packet.
pub fn run(config: &mut quiche::Config, hash: &str, push: usize) -> io::Result<()> {
    let mut io = Io::bind()?;
    report::ready(io.local().port(), hash);
    let local = io.local();
    // Connections by key, and the keys by the connection IDs that reach them: ours, and the
    // client's original destination ID (which its Initial retransmissions still carry).
    let mut conns: HashMap<u64, Served> = HashMap::new();
    let mut routes: HashMap<quiche::ConnectionId<'static>, u64> = HashMap::new();
    let mut next_key = 0u64;
    let mut timers: BTreeSet<(Instant, u64)> = BTreeSet::new();
    let mut touched: HashSet<u64> = HashSet::new();
    let mut buf = vec![0; 64 * 1024];
    let chunk = vec![0x5a; CHUNK];
    loop {
        let timeout = timers
            .first()
            .map(|(at, _)| at.saturating_duration_since(Instant::now()));
        match io.wait(timeout)? {
            Wake::Stop => {
                for c in conns.values_mut() {
                    let _ = io.close(&mut c.conn);
                }
                return Ok(());
            }
            Wake::Timeout => {}
            Wake::Readable => {
                let mut failure = None;
                io.recv_all(|packet, info| {
                    let Ok(header) = quiche::Header::from_slice(packet, quiche::MAX_CONN_ID_LEN)
                    else {
                        return;
                    };
                    let dcid = header.dcid.clone().into_owned();
                    let key = match routes.get(&dcid) {
                        Some(&key) => key,
                        None if header.ty == quiche::Type::Initial => {
                            match accept(local, info.from, config) {
                                Ok((conn, scid)) => {
                                    let key = next_key;
                                    next_key += 1;
                                    routes.insert(scid.clone(), key);
                                    routes.insert(dcid.clone(), key);
                                    let mut served = Served::new(conn, push);
                                    served.cids = vec![scid, dcid];
                                    conns.insert(key, served);
                                    key
                                }
                                Err(e) => {
                                    failure = Some(e);
                                    return;
                                }
                            }
                        }
                        None => return,
                    };
                    let Some(served) = conns.get_mut(&key) else {
                        return;
                    };
                    // A packet quiche refuses (a stray, a duplicate) is dropped.
                    let _ = served.conn.recv(packet, info);
                    touched.insert(key);
                })?;
                if let Some(e) = failure {
                    return Err(e);
                }
            }
        }
        // Timers are due whether or not the socket also woke us.
        let now = Instant::now();
        while let Some(&(at, key)) = timers.first() {
            if at > now {
                break;
            }
            timers.pop_first();
            if let Some(c) = conns.get_mut(&key) {
                c.deadline = None;
                c.conn.on_timeout();
                touched.insert(key);
            }
        }
        for key in touched.drain() {
            let Some(c) = conns.get_mut(&key) else {
                continue;
            };
            c.serve(&mut buf, &chunk);
            // A connection that cannot send is dropped; the others go on.
            if io.flush(&mut c.conn).is_err() {
                let _ = c.conn.close(false, 0x1, b"send failed");
            }
            if let Some(at) = c.deadline.take() {
                timers.remove(&(at, key));
            }
            if c.conn.is_closed() || c.conn.is_draining() {
                for cid in &c.cids {
                    routes.remove(cid);
                }
                conns.remove(&key);
            } else if let Some(at) = c.conn.timeout_instant() {
                c.deadline = Some(at);
                timers.insert((at, key));
            }
        }
    }
}

/// A new connection for a client's Initial (no Retry, as quichex's server by default), and the
/// connection ID it chose.
fn accept(
    local: SocketAddr,
    from: SocketAddr,
    config: &mut quiche::Config,
) -> io::Result<(quiche::Connection, quiche::ConnectionId<'static>)> {
    let scid = quiche::ConnectionId::from_vec(crate::connection_id());
    quiche::accept(&scid, None, local, from, config)
        .map(|conn| (conn, scid))
        .map_err(|e| quiche_error("accept", e))
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

/// What `--push` still has to send on one connection.
struct Push {
    total: usize,
    left: usize,
    start: Option<f64>,
}

/// One connection, the state of its streams, and its place in the timers.
struct Served {
    conn: quiche::Connection,
    /// The routing keys that reach this connection.
    cids: Vec<quiche::ConnectionId<'static>>,
    deadline: Option<Instant>,
    counts: HashMap<u64, Count>,
    echoes: HashMap<u64, Echo>,
    push: Option<Push>,
}

impl Served {
    fn new(conn: quiche::Connection, push: usize) -> Self {
        Self {
            conn,
            cids: Vec::new(),
            deadline: None,
            counts: HashMap::new(),
            echoes: HashMap::new(),
            push: (push > 0).then_some(Push {
                total: push,
                left: push,
                start: None,
            }),
        }
    }

    /// Reads what the streams have, writes back echoes and pushes what flow control allows.
    fn serve(&mut self, buf: &mut [u8], chunk: &[u8]) {
        let conn = &mut self.conn;
        for id in conn.readable() {
            if id & 0x2 != 0 {
                if count(conn, id, buf, self.counts.entry(id).or_default()) {
                    self.counts.remove(&id);
                }
            } else {
                read_echo(conn, id, buf, self.echoes.entry(id).or_default());
            }
        }
        for (&id, echo) in self.echoes.iter_mut() {
            write_echo(conn, id, echo);
        }
        self.echoes.retain(|_, e| !e.done);
        if conn.is_established() {
            if let Some(push) = &mut self.push {
                if push_more(conn, push, chunk) {
                    self.push = None;
                }
            }
        }
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

/// Writes as much of the push as quiche takes; true once all of it (and the FIN) is taken, or
/// the stream failed.
fn push_more(conn: &mut quiche::Connection, p: &mut Push, chunk: &[u8]) -> bool {
    let start = *p.start.get_or_insert_with(report::now);
    loop {
        let len = CHUNK.min(p.left);
        let fin = len == p.left;
        match conn.stream_send(PUSH_STREAM, &chunk[..len], fin) {
            Ok(n) => {
                p.left -= n;
                if fin && n == len {
                    report::sent(start, p.total as u64);
                    return true;
                }
                if n < len {
                    return false;
                }
            }
            Err(quiche::Error::Done) => return false,
            Err(_) => return true,
        }
    }
}
