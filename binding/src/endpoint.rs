//! The native endpoint: connection table, routing by connection ID, accept/Retry/version
//! negotiation, and the timer set. Sans-IO: JS hands in datagrams and asks for datagrams.
//!
//! Driving contract (see `lib/endpoint.ts`), in this order on every turn of the pump:
//! 1. `recv` each datagram that arrived (and send back any stateless reply it wrote);
//!    or `onTimeout` when the timer fired;
//! 2. `pollEvents` until it returns fewer events than fit, handling each;
//! 3. `send` until it returns fewer packets than fit, transmitting each; its last call also
//!    says how many events wait and when the next timer is due (the status words of `meta`);
//! 4. repeat 2–3 while events wait, then re-arm the timer from that status.
//!
//! A connection whose pacer (BBR2) holds its next packet stops in `send` and puts the release in
//! the timer set: the packet leaves on the `onTimeout` turn that follows, or on any earlier one.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::{BigInt, Buffer, Float64ArraySlice, Uint32ArraySlice, Uint8ArraySlice};
use napi_derive::napi;
use quiche::ConnectionId;

use crate::config::{build, BindingConfig};
use crate::connection::{Conn, Event, EV_NEW, EV_REFUSED};
use crate::error::{from_quiche, js_error, Result};
use crate::stats;

/// Length of the connection IDs this endpoint issues.
const CID_LEN: usize = 16;
/// RFC 9000 §14.1: a client Initial is carried in a datagram of at least 1200 bytes.
const MIN_INITIAL_LEN: usize = 1200;
/// How long a Retry token stays valid.
const TOKEN_LIFETIME_SECS: u64 = 10;
/// Bit set in a packet's meta word when it goes elsewhere than the connection's packet before
/// it: `batchPeer` says where.
const PEER_CHANGED: u32 = 1 << 31;
/// Packets a closing connection may send per `send` call (a close, coalesced across levels).
const CLOSING_PACKETS_PER_SEND: usize = 2;
/// Words at the end of `send`'s `meta` that carry the endpoint's status, not packets.
#[napi]
pub const STATUS_WORDS: u32 = 2;
/// The timer status word when no timer is set.
#[napi]
pub const NO_TIMER: u32 = u32::MAX;
/// `recv`'s return for "a server connection's handshake answer can leave now".
#[napi]
pub const RECV_ANSWER: i32 = -1;
/// CONNECTION_REFUSED (RFC 9000 §20.1), sent when `maxConnections` is reached.
const CONNECTION_REFUSED: u64 = 0x2;
/// RFC 9000 §10.3: a Stateless Reset ends in a 16-byte token, after at least 5 random bytes.
const RESET_TOKEN_LEN: usize = 16;
const MIN_RESET_LEN: usize = 5 + RESET_TOKEN_LEN;
/// Stateless Resets are no longer than a short packet with one of our connection IDs would be.
const MAX_RESET_LEN: usize = 1 + CID_LEN + 1 + 16 + RESET_TOKEN_LEN;

/// A socket address as JS sees it.
#[napi(object)]
pub struct BindingAddress {
    pub host: String,
    pub port: u32,
}

/// What a connection negotiated, read once it is established.
#[napi(object)]
pub struct BindingConnInfo {
    pub protocol: String,
    pub server_name: Option<String>,
    /// The peer's chain as sent, leaf first (DER each).
    pub peer_certificate_chain: Vec<Buffer>,
    pub resumed: bool,
    pub trace_id: String,
}

/// Why a connection ended. `source` is `peer`, `local`, `idle`, `reset` (the peer's Stateless
/// Reset) or `none`.
#[napi(object)]
pub struct BindingCloseInfo {
    pub source: String,
    pub is_app: bool,
    pub code: BigInt,
    pub reason: Buffer,
    pub established: bool,
}

/// A QUIC endpoint over one UDP socket that JS drives.
#[napi]
pub struct BindingEndpoint {
    config: quiche::Config,
    is_server: bool,
    local: SocketAddr,
    max_payload: usize,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
    live: usize,
    routes: HashMap<ConnectionId<'static>, u32>,
    /// Client: connections by the stateless reset token their server announced. A reset
    /// carries no connection ID of ours, only the token at its end.
    reset_routes: HashMap<u128, u32>,
    deadlines: BTreeSet<(Instant, u32)>,
    events: VecDeque<Event>,
    check_queue: Vec<u32>,
    send_queue: VecDeque<u32>,
    /// Server connections whose ClientHello the last `recv` completed (see `recv`).
    answers: Vec<u32>,
    accepting: bool,
    retry: bool,
    max_connections: usize,
    token_key: ring::hmac::Key,
    /// Derives each connection ID's stateless reset token (server).
    reset_key: ring::hmac::Key,
    cert_hash: Option<Vec<u8>>,
    cert_pem: Option<String>,
    keep_alive: Option<Duration>,
    keylog: Option<File>,
    qlog_dir: Option<PathBuf>,
    /// Where the packets flagged PEER_CHANGED in the last `send` go, in order.
    batch_peers: Vec<SocketAddr>,
}

fn parse_addr(host: &str, port: u32) -> Result<SocketAddr> {
    let ip: IpAddr = host.parse().map_err(|_| {
        js_error(
            "ERR_INVALID_ARG_VALUE",
            format!("not an IP address: {host}"),
        )
    })?;
    let port = u16::try_from(port)
        .map_err(|_| js_error("ERR_OUT_OF_RANGE", format!("bad port {port}")))?;
    Ok(SocketAddr::new(ip, port))
}

fn random_cid() -> ConnectionId<'static> {
    let mut id = vec![0; CID_LEN];
    boring::rand::rand_bytes(&mut id).expect("BoringSSL RNG cannot fail");
    ConnectionId::from_vec(id)
}

/// An HMAC-SHA256 key of 32 random bytes.
fn random_key() -> Result<ring::hmac::Key> {
    let mut secret = [0u8; 32];
    boring::rand::rand_bytes(&mut secret)
        .map_err(|e| js_error("ERR_QUIC_INTERNAL", e.to_string()))?;
    Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn code_of(code: &BigInt) -> Result<u64> {
    let (negative, value, lossless) = code.get_u64();
    if negative || !lossless || value >= 1 << 62 {
        return Err(js_error("ERR_OUT_OF_RANGE", "error code must be 0..2^62-1"));
    }
    Ok(value)
}

#[napi]
impl BindingEndpoint {
    /// Builds the endpoint's TLS and transport configuration.
    #[napi(constructor, catch_unwind)]
    pub fn new(config: BindingConfig) -> Result<Self> {
        let built = build(&config)?;
        let reset_key = match config.stateless_reset_key.as_deref() {
            Some(key) => ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            None => random_key()?,
        };
        Ok(BindingEndpoint {
            config: built.quiche,
            is_server: config.is_server,
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            max_payload: config.max_udp_payload_size as usize,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            routes: HashMap::new(),
            reset_routes: HashMap::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            check_queue: Vec::new(),
            send_queue: VecDeque::new(),
            answers: Vec::new(),
            accepting: config.is_server,
            retry: config.retry,
            max_connections: config.max_connections as usize,
            token_key: random_key()?,
            reset_key,
            cert_hash: built.cert_hash,
            cert_pem: built.cert_pem,
            keep_alive: (config.keep_alive_interval > 0.0)
                .then(|| Duration::from_secs_f64(config.keep_alive_interval / 1000.0)),
            keylog: built.keylog,
            qlog_dir: config.qlog_dir.map(PathBuf::from),
            batch_peers: Vec::new(),
        })
    }

    /// Where the socket is bound; quiche needs it for paths.
    #[napi(catch_unwind)]
    pub fn set_local_address(&mut self, host: String, port: u32) -> Result<()> {
        self.local = parse_addr(&host, port)?;
        Ok(())
    }

    /// SHA-256 of the server certificate's DER encoding.
    #[napi(getter)]
    pub fn certificate_hash(&self) -> Option<Buffer> {
        self.cert_hash.clone().map(Buffer::from)
    }

    /// The server's leaf certificate, PEM.
    #[napi(getter)]
    pub fn certificate_pem(&self) -> Option<String> {
        self.cert_pem.clone()
    }

    /// Connections in the table, including ones still draining.
    #[napi(getter)]
    pub fn connection_count(&self) -> u32 {
        self.live as u32
    }

    /// A server stops creating connections for new Initials.
    #[napi(catch_unwind)]
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Starts a client connection to `host:port`; returns its handle.
    #[napi(catch_unwind)]
    pub fn connect(&mut self, server_name: Option<String>, host: String, port: u32) -> Result<u32> {
        let peer = parse_addr(&host, port)?;
        let scid = random_cid();
        let q = quiche::connect(
            server_name.as_deref(),
            &scid,
            self.local,
            peer,
            &mut self.config,
        )
        .map_err(|e| from_quiche("connect", e))?;
        let conn = self.new_conn(q, peer, false);
        Ok(self.insert(conn, vec![scid]))
    }

    /// Takes in one datagram. Returns the length of a stateless reply (version negotiation or
    /// Retry) written to `out`, to be sent back to the sender; `RECV_ANSWER` when the datagram
    /// completed a client's ClientHello, whose answer (the server's handshake flight) JS should
    /// send at once with `send(…, true)`; 0 otherwise. Garbage is dropped.
    ///
    /// A client whose socket is connected to its server passes no `host`: every datagram comes
    /// from the peer of the connection it is routed to (no address string per datagram).
    ///
    /// The answer goes ahead of the turn: the client can work on it while this server works on
    /// the rest of what it read (with 16 handshakes in flight, 10-20 % more of them per second).
    #[napi(catch_unwind)]
    pub fn recv(
        &mut self,
        mut data: Uint8ArraySlice,
        host: Option<String>,
        port: u32,
        mut out: Uint8ArraySlice,
    ) -> Result<i32> {
        // SAFETY: JS is blocked in this synchronous call; nothing else touches the memory.
        let (data, out) = unsafe { (data.as_mut(), out.as_mut()) };
        let from = match host {
            Some(host) => Some(parse_addr(&host, port)?),
            None if self.is_server => {
                return Err(js_error(
                    "ERR_INVALID_ARG_VALUE",
                    "a server needs the sender of each datagram",
                ))
            }
            None => None,
        };
        if from.is_some_and(|from| from.port() == 0) {
            // Nothing can be sent back to port 0 (the OS refuses): not a peer we can talk to.
            return Ok(0);
        }
        if let Some(n) = self.version_negotiation(data, out) {
            return Ok(n as i32);
        }
        let (dcid, header) = match quiche::Header::from_slice(data, CID_LEN) {
            Ok(hdr) => (hdr.dcid.clone().into_owned(), hdr_summary(&hdr)),
            Err(_) => return Ok(0),
        };
        let h = match self.routes.get(&dcid) {
            Some(&h) => h,
            None => match from {
                Some(_) if self.is_server && header.ty == quiche::Type::Short => {
                    return Ok(self.stateless_reset(data.len(), &dcid, out) as i32);
                }
                Some(from) if self.is_server => {
                    match self.accept(data.len(), &dcid, header, from, out) {
                        Accept::Reply(n) => return Ok(n as i32),
                        Accept::Drop => return Ok(0),
                        Accept::Conn(h) => h,
                    }
                }
                // A client's datagram for none of its connection IDs: a stateless reset, if it
                // ends in the token of one of its servers. The table only routes it (its hash is
                // keyed at random); quiche compares the token, in constant time (RFC 9000
                // §10.3.1).
                _ if data.len() >= MIN_RESET_LEN && header.ty == quiche::Type::Short => {
                    let tail = &data[data.len() - RESET_TOKEN_LEN..];
                    let token = u128::from_be_bytes(tail.try_into().expect("16 bytes"));
                    match self.reset_routes.get(&token) {
                        Some(&h) => h,
                        None => return Ok(0),
                    }
                }
                _ => return Ok(0),
            },
        };
        if let Some(conn) = self.slots[h as usize].as_mut() {
            conn.recv(
                data,
                quiche::RecvInfo {
                    from: from.unwrap_or(conn.peer),
                    to: self.local,
                },
            );
            if conn.hidden {
                // Refused (maxConnections): closed only once quiche has the client's Initial
                // keys, so that the client gets CONNECTION_CLOSE instead of silence.
                let _ = conn.q.close(false, CONNECTION_REFUSED, b"server busy");
            }
            // The client's transport parameters are parsed once its whole ClientHello is in.
            let answer = self.is_server
                && !conn.answered
                && !conn.q.is_established()
                && conn.q.peer_transport_params().is_some();
            conn.answered |= answer;
            if !self.is_server && conn.reset_token.is_none() {
                let token = conn
                    .q
                    .peer_transport_params()
                    .and_then(|p| p.stateless_reset_token);
                if let Some(token) = token {
                    conn.reset_token = Some(token);
                    self.reset_routes.insert(token, h);
                }
            }
            self.touch(h);
            if answer {
                self.answers.push(h);
                return Ok(RECV_ANSWER);
            }
        }
        Ok(0)
    }

    /// Runs the timers that have expired.
    #[napi(catch_unwind)]
    pub fn on_timeout(&mut self) {
        let now = Instant::now();
        while let Some(&(at, h)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(conn) = self.slots[h as usize].as_mut() {
                conn.deadline = None;
                conn.on_timeout(now);
            }
            self.touch(h);
        }
    }

    /// Milliseconds until the next timer, or -1 when there is none.
    #[napi(catch_unwind)]
    pub fn timeout(&self) -> f64 {
        self.deadlines.first().map_or(-1.0, |&(at, _)| {
            at.saturating_duration_since(Instant::now()).as_secs_f64() * 1000.0
        })
    }

    /// Fills `out` with `[kind, handle, streamId]` triples; returns how many events it wrote.
    #[napi(catch_unwind)]
    pub fn poll_events(&mut self, mut out: Float64ArraySlice) -> u32 {
        // SAFETY: as in `recv`.
        let out = unsafe { out.as_mut() };
        self.run_checks();
        let mut n = 0;
        while n * 3 + 3 <= out.len() {
            let Some((kind, h, id)) = self.events.pop_front() else {
                break;
            };
            out[n * 3] = f64::from(kind);
            out[n * 3 + 1] = f64::from(h);
            out[n * 3 + 2] = id as f64;
            n += 1;
        }
        n as u32
    }

    /// Writes packets back to back into `out`; for packet i, `meta[2i]` is its length and
    /// `meta[2i+1]` the connection handle (bit 31 set when the packet goes elsewhere than the
    /// connection's packet before it: ask `batchPeer`). Returns how many packets it wrote. With
    /// `answers`, only the packets of the connections `recv` said to answer at once.
    ///
    /// The last `STATUS_WORDS` of `meta` are not for packets: they get the number of events
    /// waiting for `pollEvents` and the microseconds until the next timer (`NO_TIMER` when there
    /// is none), as they stand once these packets are built. The pump reads them instead of
    /// asking `pollEvents` and `timeout` again.
    #[napi(catch_unwind)]
    pub fn send(
        &mut self,
        mut out: Uint8ArraySlice,
        mut meta: Uint32ArraySlice,
        answers: bool,
    ) -> Result<u32> {
        // SAFETY: as in `recv`.
        let (out, meta) = unsafe { (out.as_mut(), meta.as_mut()) };
        if meta.len() < STATUS_WORDS as usize {
            return Err(js_error(
                "ERR_QUIC_INTERNAL",
                "send: meta has no room for its status",
            ));
        }
        let (meta, status) = meta.split_at_mut(meta.len() - STATUS_WORDS as usize);
        self.batch_peers.clear();
        let n = self.send_batch(out, meta, answers);
        self.run_checks();
        status[0] = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        status[1] = self.deadlines.first().map_or(NO_TIMER, |&(at, _)| {
            let us = at.saturating_duration_since(Instant::now()).as_micros();
            u32::try_from(us).unwrap_or(NO_TIMER - 1).min(NO_TIMER - 1)
        });
        Ok(n)
    }

    fn send_batch(&mut self, out: &mut [u8], meta: &mut [u32], answers: bool) -> u32 {
        let mut batch = Batch { off: 0, n: 0 };
        if answers {
            // Each stays in the send queue too: there, later, it finds little or nothing left.
            while let Some(&h) = self.answers.last() {
                if !self.send_conn(h, out, meta, &mut batch) {
                    return batch.n as u32;
                }
                self.answers.pop();
                self.update_deadline(h);
                self.queue_check(h);
            }
            return batch.n as u32;
        }
        while let Some(&h) = self.send_queue.front() {
            if !self.send_conn(h, out, meta, &mut batch) {
                return batch.n as u32;
            }
            if let Some(conn) = self.slots[h as usize].as_mut() {
                conn.queued_send = false;
            }
            self.send_queue.pop_front();
            self.update_deadline(h);
            self.queue_check(h);
        }
        batch.n as u32
    }

    /// Turns what happened to the connections touched since the last time into events.
    fn run_checks(&mut self) {
        for h in std::mem::take(&mut self.check_queue) {
            let Some(conn) = self.slots[h as usize].as_mut() else {
                continue;
            };
            conn.queued_check = false;
            conn.check(h, &mut self.events);
        }
    }

    /// Writes `h`'s packets into `out` and `meta` after those of `batch`. Returns false when
    /// either is full (`h` may have more to send).
    fn send_conn(&mut self, h: u32, out: &mut [u8], meta: &mut [u32], batch: &mut Batch) -> bool {
        let Some(conn) = self.slots[h as usize].as_mut() else {
            return true;
        };
        // A closing connection has one thing to say (CONNECTION_CLOSE). quiche 0.30 can instead
        // hand out ACK-only packets without end when closed before the handshake is confirmed:
        // cap it, so that such a connection cannot take the pump over.
        let closing = conn.closing();
        if !closing {
            // The bytes held back from the streams' last writes go first (Conn::stream_send).
            conn.flush_held();
        }
        conn.paced_until = None;
        let mut sent_here = 0;
        loop {
            if batch.n * 2 + 2 > meta.len() || out.len() - batch.off < self.max_payload {
                return false;
            }
            if closing && sent_here == CLOSING_PACKETS_PER_SEND {
                return true;
            }
            // A CONNECTION_CLOSE is not paced: it is the last word.
            if !closing {
                if let Some(at) = conn.pacing_hold() {
                    conn.paced_until = Some(at);
                    return true;
                }
            }
            sent_here += 1;
            let off = batch.off;
            match conn.q.send(&mut out[off..off + self.max_payload]) {
                Ok((len, info)) => {
                    let mut word = h;
                    // One batch can send a connection's packets to two addresses (a probe of a
                    // new path beside the active path's packets): each change is kept.
                    if info.to != conn.peer {
                        conn.peer = info.to;
                        word |= PEER_CHANGED;
                        self.batch_peers.push(info.to);
                    }
                    meta[batch.n * 2] = len as u32;
                    meta[batch.n * 2 + 1] = word;
                    batch.off += len;
                    batch.n += 1;
                    conn.on_sent();
                }
                // Done, or a failure that quiche turned into closing the connection.
                Err(_) => return true,
            }
        }
    }

    /// Frees a connection JS has finished with (after its CLOSED event, or one JS gives up on).
    #[napi(catch_unwind)]
    pub fn release(&mut self, h: u32) {
        let Some(conn) = self.slots.get_mut(h as usize).and_then(Option::take) else {
            return;
        };
        for cid in &conn.cids {
            if self.routes.get(cid) == Some(&h) {
                self.routes.remove(cid);
            }
        }
        if let Some(token) = conn.reset_token {
            if self.reset_routes.get(&token) == Some(&h) {
                self.reset_routes.remove(&token);
            }
        }
        if let Some(at) = conn.deadline {
            self.deadlines.remove(&(at, h));
        }
        self.free.push(h);
        self.live -= 1;
    }

    /// See `Conn::stream_recv`.
    #[napi(catch_unwind)]
    pub fn stream_recv(&mut self, h: u32, id: i64, mut buf: Uint8ArraySlice) -> Result<f64> {
        // SAFETY: as in `recv`.
        let buf = unsafe { buf.as_mut() };
        let r = self.conn(h)?.stream_recv(id as u64, buf);
        self.touch(h);
        Ok(r)
    }

    /// See `Conn::stream_send`.
    #[napi(catch_unwind)]
    pub fn stream_send(
        &mut self,
        h: u32,
        id: i64,
        buf: Uint8ArraySlice,
        fin: bool,
        hold: bool,
    ) -> Result<f64> {
        let r = self.conn(h)?.stream_send(id as u64, &buf, fin, hold);
        self.touch(h);
        Ok(r)
    }

    /// RESET_STREAM (`write`) or STOP_SENDING.
    #[napi(catch_unwind)]
    pub fn stream_shutdown(&mut self, h: u32, id: i64, write: bool, code: BigInt) -> Result<()> {
        let code = code_of(&code)?;
        self.conn(h)?.stream_shutdown(id as u64, write, code);
        self.touch(h);
        Ok(())
    }

    /// Opens a local stream so that it counts against the peer's limit, with send priority
    /// `urgency` (0 most urgent … 255; quiche's default is 127). Returns false when the limit is
    /// reached; a STREAMS event follows when the peer grants more.
    #[napi(catch_unwind)]
    pub fn stream_open(&mut self, h: u32, id: i64, urgency: u32) -> Result<bool> {
        let conn = self.conn(h)?;
        let bidi = id & 2 == 0;
        let left = if bidi {
            conn.q.peer_streams_left_bidi()
        } else {
            conn.q.peer_streams_left_uni()
        };
        if left == 0 {
            conn.want_streams = true;
            return Ok(false);
        }
        conn.set_urgency(id as u64, urgency.min(255) as u8)
            .map_err(|e| from_quiche("stream", e))?;
        Ok(true)
    }

    /// Changes a stream's send priority (see `stream_open`). A finished stream is left alone.
    #[napi(catch_unwind)]
    pub fn stream_set_priority(&mut self, h: u32, id: i64, urgency: u32) -> Result<()> {
        let _ = self.conn(h)?.set_urgency(id as u64, urgency.min(255) as u8);
        Ok(())
    }

    /// Bytes received in order on a stream and not yet read.
    #[napi(catch_unwind)]
    pub fn stream_readable_len(&mut self, h: u32, id: i64) -> Result<f64> {
        Ok(self.conn(h)?.q.stream_readable_len(id as u64, usize::MAX) as f64)
    }

    /// Whether quiche has collected the stream: every byte sent on it, FIN included, was
    /// acknowledged (and, for a bidirectional stream, the peer's side is finished too).
    #[napi(catch_unwind)]
    pub fn stream_collected(&mut self, h: u32, id: i64) -> Result<bool> {
        let q = &mut self.conn(h)?.q;
        let gone = matches!(
            q.stream_capacity(id as u64),
            Err(quiche::Error::InvalidStreamState(_))
        );
        Ok(gone && q.stream_closed(id as u64))
    }

    /// See `Conn::dgram_send`.
    #[napi(catch_unwind)]
    pub fn dgram_send(&mut self, h: u32, buf: Uint8ArraySlice) -> Result<f64> {
        let r = self.conn(h)?.dgram_send(&buf);
        self.touch(h);
        Ok(r)
    }

    /// See `Conn::dgram_recv`.
    #[napi(catch_unwind)]
    pub fn dgram_recv(
        &mut self,
        h: u32,
        mut out: Uint8ArraySlice,
        mut lens: Uint32ArraySlice,
    ) -> Result<u32> {
        // SAFETY: as in `recv`.
        let (out, lens) = unsafe { (out.as_mut(), lens.as_mut()) };
        Ok(self.conn(h)?.dgram_recv(out, lens))
    }

    /// The largest DATAGRAM payload the peer accepts on the current path; 0 when it accepts none
    /// (or the handshake has not said yet).
    #[napi(catch_unwind)]
    pub fn dgram_max_size(&mut self, h: u32) -> Result<u32> {
        Ok(self.conn(h)?.q.dgram_max_writable_len().unwrap_or(0) as u32)
    }

    /// Writes a snapshot of the connection's counters into `out` (see stats.rs for the order).
    #[napi(catch_unwind)]
    pub fn stats(&mut self, h: u32, mut out: Float64ArraySlice) -> Result<()> {
        let conn = self.conn(h)?;
        // SAFETY: as in `recv`.
        stats::write(conn, unsafe { out.as_mut() });
        Ok(())
    }

    /// The code of the last reset or stop a stream call reported (-2).
    #[napi(catch_unwind)]
    pub fn last_code(&mut self, h: u32) -> Result<u64> {
        Ok(self.conn(h)?.last_code)
    }

    /// Closes the connection with an application (`app`) or transport error code.
    #[napi(catch_unwind)]
    pub fn close(
        &mut self,
        h: u32,
        app: bool,
        code: BigInt,
        reason: Uint8ArraySlice,
    ) -> Result<()> {
        let code = code_of(&code)?;
        self.conn(h)?.close(app, code, reason.to_vec());
        self.touch(h);
        Ok(())
    }

    /// Closes the connection at once, holding nothing back until the peer could hear it (see
    /// `Conn::close`): for a peer that is not there (the socket reported ECONNREFUSED).
    #[napi(catch_unwind)]
    pub fn abandon(&mut self, h: u32) -> Result<()> {
        self.conn(h)?.close_now();
        self.touch(h);
        Ok(())
    }

    /// What the handshake negotiated.
    #[napi(catch_unwind)]
    pub fn info(&mut self, h: u32) -> Result<BindingConnInfo> {
        let q = &self.conn(h)?.q;
        Ok(BindingConnInfo {
            protocol: String::from_utf8_lossy(q.application_proto()).into_owned(),
            server_name: q.server_name().map(str::to_owned),
            peer_certificate_chain: q
                .peer_cert_chain()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.to_vec().into())
                .collect(),
            resumed: q.is_resumed(),
            trace_id: q.trace_id().to_owned(),
        })
    }

    /// Why the connection is closing or closed.
    #[napi(catch_unwind)]
    pub fn close_info(&mut self, h: u32) -> Result<BindingCloseInfo> {
        let conn = self.conn(h)?;
        let q = &conn.q;
        let (source, err) = match (q.peer_error(), q.local_error()) {
            (Some(e), _) => ("peer", Some(e)),
            (None, Some(e)) => ("local", Some(e)),
            // A stale deadline can mark a connection that a reset closed as timed out too.
            (None, None) if conn.stateless_reset => ("reset", None),
            (None, None) if q.is_timed_out() => ("idle", None),
            (None, None) => ("none", None),
        };
        Ok(BindingCloseInfo {
            source: source.into(),
            is_app: err.is_some_and(|e| e.is_app),
            code: BigInt::from(err.map_or(0, |e| e.error_code)),
            reason: err.map_or_else(Vec::new, |e| e.reason.clone()).into(),
            established: q.is_established(),
        })
    }

    /// The connection's current peer address.
    #[napi(catch_unwind)]
    pub fn peer_address(&mut self, h: u32) -> Result<BindingAddress> {
        Ok(address(self.conn(h)?.peer))
    }

    /// Where the `i`-th packet flagged PEER_CHANGED in the last `send` goes (from 0).
    #[napi(catch_unwind)]
    pub fn batch_peer(&self, i: u32) -> Result<BindingAddress> {
        self.batch_peers
            .get(i as usize)
            .map(|&peer| address(peer))
            .ok_or_else(|| {
                js_error(
                    "ERR_OUT_OF_RANGE",
                    format!("no changed peer {i} in the last send"),
                )
            })
    }
}

fn address(peer: SocketAddr) -> BindingAddress {
    BindingAddress {
        host: peer.ip().to_string(),
        port: u32::from(peer.port()),
    }
}

/// Where the next packet of a `send` goes in its buffers.
struct Batch {
    off: usize,
    n: usize,
}

/// What `recv` needs from a header once the datagram is handed to quiche.
struct Summary {
    ty: quiche::Type,
    scid: ConnectionId<'static>,
    token: Vec<u8>,
}

fn hdr_summary(hdr: &quiche::Header) -> Summary {
    Summary {
        ty: hdr.ty,
        scid: hdr.scid.clone().into_owned(),
        token: hdr.token.clone().unwrap_or_default(),
    }
}

enum Accept {
    Reply(usize),
    Drop,
    Conn(u32),
}

impl BindingEndpoint {
    fn conn(&mut self, h: u32) -> Result<&mut Conn> {
        self.slots
            .get_mut(h as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| js_error("ERR_QUIC_INVALID_STATE", "connection is gone"))
    }

    /// Wraps a new quiche connection with the endpoint's keep-alive, key log and qlog.
    fn new_conn(&self, mut q: quiche::Connection, peer: SocketAddr, is_server: bool) -> Conn {
        if let Some(file) = &self.keylog {
            if let Ok(file) = file.try_clone() {
                q.set_keylog(Box::new(file));
            }
        }
        if let Some(dir) = &self.qlog_dir {
            let role = if is_server { "server" } else { "client" };
            let path = dir.join(format!("{}-{role}.sqlog", q.trace_id()));
            // A qlog that cannot be written is skipped: it must not cost the connection.
            if let Ok(file) = File::create(path) {
                q.set_qlog(
                    Box::new(BufWriter::new(file)),
                    format!("quichex {role}"),
                    format!("quichex {role} connection {}", q.trace_id()),
                );
            }
        }
        let mut conn = Conn::new(q, peer, is_server);
        conn.keep_alive = self.keep_alive;
        conn
    }

    fn insert(&mut self, mut conn: Conn, cids: Vec<ConnectionId<'static>>) -> u32 {
        let h = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        for cid in &cids {
            self.routes.entry(cid.clone()).or_insert(h);
        }
        conn.cids = cids;
        self.slots[h as usize] = Some(conn);
        self.live += 1;
        self.touch(h);
        h
    }

    fn queue_check(&mut self, h: u32) {
        if let Some(conn) = self.slots[h as usize].as_mut() {
            if !conn.queued_check {
                conn.queued_check = true;
                self.check_queue.push(h);
            }
        }
    }

    /// Something happened on `h`: it may have events and packets to send.
    fn touch(&mut self, h: u32) {
        self.queue_check(h);
        if let Some(conn) = self.slots[h as usize].as_mut() {
            if !conn.queued_send {
                conn.queued_send = true;
                self.send_queue.push_back(h);
            }
        }
    }

    fn update_deadline(&mut self, h: u32) {
        let Some(conn) = self.slots[h as usize].as_mut() else {
            return;
        };
        let next = conn.next_deadline();
        if next != conn.deadline {
            if let Some(at) = conn.deadline {
                self.deadlines.remove(&(at, h));
            }
            if let Some(at) = next {
                self.deadlines.insert((at, h));
            }
            conn.deadline = next;
        }
    }

    /// A server's answer to a datagram for no known connection.
    fn accept(
        &mut self,
        len: usize,
        dcid: &ConnectionId,
        hdr: Summary,
        from: SocketAddr,
        out: &mut [u8],
    ) -> Accept {
        if hdr.ty != quiche::Type::Initial || !self.accepting || len < MIN_INITIAL_LEN {
            return Accept::Drop;
        }
        let (scid, odcid) = if self.retry {
            if hdr.token.is_empty() {
                let new_scid = random_cid();
                let token = self.mint_token(from, &new_scid, dcid);
                return quiche::retry(
                    &hdr.scid,
                    dcid,
                    &new_scid,
                    &token,
                    quiche::PROTOCOL_VERSION,
                    out,
                )
                .map_or(Accept::Drop, Accept::Reply);
            }
            match self.validate_token(from, dcid, &hdr.token) {
                Some(odcid) => (dcid.clone().into_owned(), Some(odcid)),
                None => return Accept::Drop,
            }
        } else {
            (random_cid(), None)
        };
        // quiche announces the token of the config it accepts with: this connection's own.
        let token = u128::from_be_bytes(self.reset_token(&scid));
        self.config.set_stateless_reset_token(Some(token));
        let Ok(q) = quiche::accept(&scid, odcid.as_ref(), self.local, from, &mut self.config)
        else {
            return Accept::Drop;
        };
        let refuse = self.live >= self.max_connections;
        let mut conn = self.new_conn(q, from, true);
        conn.hidden = refuse;
        let h = self.insert(conn, vec![scid, dcid.clone().into_owned()]);
        self.events
            .push_back((if refuse { EV_REFUSED } else { EV_NEW }, h, 0));
        Accept::Conn(h)
    }

    /// The stateless reset token of connection ID `cid`: a MAC of it under the reset key, so
    /// that a server that lost the connection (or restarted with the same key) can send it.
    fn reset_token(&self, cid: &[u8]) -> [u8; RESET_TOKEN_LEN] {
        let tag = ring::hmac::sign(&self.reset_key, cid);
        let mut token = [0; RESET_TOKEN_LEN];
        token.copy_from_slice(&tag.as_ref()[..RESET_TOKEN_LEN]);
        token
    }

    /// RFC 9000 §10.3: a short-header packet for a connection this server does not have (it
    /// was released, or the server restarted) is answered with a Stateless Reset, so that the
    /// peer closes at once instead of at its idle timeout: random bits shaped as a short-header
    /// packet, ending in the token the connection announced. It is shorter than the packet it
    /// answers, so that it amplifies nothing and two endpoints cannot keep resetting each other.
    /// Returns its length in `out` (0: the packet is too short to answer).
    fn stateless_reset(&self, trigger_len: usize, dcid: &[u8], out: &mut [u8]) -> usize {
        if trigger_len <= MIN_RESET_LEN {
            return 0;
        }
        let len = (trigger_len - 1).min(MAX_RESET_LEN);
        let Some(out) = out.get_mut(..len) else {
            return 0;
        };
        let (random, token) = out.split_at_mut(len - RESET_TOKEN_LEN);
        boring::rand::rand_bytes(random).expect("BoringSSL RNG cannot fail");
        random[0] = 0x40 | (random[0] & 0x3f);
        token.copy_from_slice(&self.reset_token(dcid));
        len
    }

    /// RFC 8999 §6 / RFC 9000 §6: a long-header packet of a version we do not speak gets a
    /// Version Negotiation reply, read from the version-independent header alone, if its datagram
    /// could have opened a connection (≥ 1200 bytes; smaller ones could be used to amplify).
    fn version_negotiation(&self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        if !self.is_server || data.len() < MIN_INITIAL_LEN || data[0] & 0x80 == 0 {
            return None;
        }
        let version = u32::from_be_bytes(data.get(1..5)?.try_into().ok()?);
        // Version 0 is Version Negotiation itself, which is never answered.
        if version == 0 || quiche::version_is_supported(version) {
            return None;
        }
        let dcid_len = usize::from(*data.get(5)?);
        let dcid = data.get(6..6 + dcid_len)?;
        let scid_len = usize::from(*data.get(6 + dcid_len)?);
        let scid = data.get(7 + dcid_len..7 + dcid_len + scid_len)?;
        // The reply's DCID is the client's SCID and its SCID the client's DCID.
        quiche::negotiate_version(
            &ConnectionId::from_ref(scid),
            &ConnectionId::from_ref(dcid),
            out,
        )
        .ok()
    }

    fn token_mac(
        &self,
        from: SocketAddr,
        retry_scid: &[u8],
        odcid: &[u8],
        expiry: u64,
    ) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(&self.token_key);
        match from.ip() {
            IpAddr::V4(ip) => ctx.update(&ip.octets()),
            IpAddr::V6(ip) => ctx.update(&ip.octets()),
        }
        ctx.update(&from.port().to_be_bytes());
        ctx.update(&[retry_scid.len() as u8]);
        ctx.update(retry_scid);
        ctx.update(odcid);
        ctx.update(&expiry.to_be_bytes());
        ctx.sign()
    }

    /// Token layout: expiry (8, big endian) · odcid length (1) · odcid · HMAC-SHA256 over the
    /// client address, the Retry's SCID, the odcid and the expiry.
    fn mint_token(&self, from: SocketAddr, retry_scid: &[u8], odcid: &[u8]) -> Vec<u8> {
        let expiry = unix_secs() + TOKEN_LIFETIME_SECS;
        let mut token = expiry.to_be_bytes().to_vec();
        token.push(odcid.len() as u8);
        token.extend_from_slice(odcid);
        token.extend_from_slice(self.token_mac(from, retry_scid, odcid, expiry).as_ref());
        token
    }

    fn validate_token(
        &self,
        from: SocketAddr,
        dcid: &[u8],
        token: &[u8],
    ) -> Option<ConnectionId<'static>> {
        let expiry = u64::from_be_bytes(token.get(..8)?.try_into().ok()?);
        let odcid_len = usize::from(*token.get(8)?);
        let odcid = token.get(9..9 + odcid_len)?;
        let tag = token.get(9 + odcid_len..)?;
        if expiry < unix_secs() {
            return None;
        }
        let expected = self.token_mac(from, dcid, odcid, expiry);
        // Constant-time comparison: the tag is attacker-supplied.
        let same = tag.len() == expected.as_ref().len()
            && tag
                .iter()
                .zip(expected.as_ref())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return None;
        }
        Some(ConnectionId::from_vec(odcid.to_vec()))
    }
}
