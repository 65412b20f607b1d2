//! One QUIC connection and the bookkeeping that turns quiche's state into events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use quiche::ConnectionId;

use crate::config::DGRAM_RECV_QUEUE;

/// Event kinds, in the order JS handles them. Mirrored in `lib/native.ts`.
pub const EV_NEW: u32 = 1;
pub const EV_ESTABLISHED: u32 = 2;
pub const EV_READABLE: u32 = 3;
pub const EV_WRITABLE: u32 = 4;
pub const EV_STREAMS: u32 = 5;
pub const EV_DRAINING: u32 = 6;
pub const EV_CLOSED: u32 = 7;
pub const EV_DATAGRAMS: u32 = 8;
pub const EV_DATAGRAMS_WRITABLE: u32 = 9;
pub const EV_REFUSED: u32 = 10;

/// `(kind, handle, stream id)`.
pub type Event = (u32, u32, u64);

/// The transport error that stands for an application's close before the handshake completed.
const APPLICATION_ERROR: u64 = 0x0c;

/// quiche's send urgency for a stream nobody prioritised.
const DEFAULT_URGENCY: u8 = 127;

/// A closing connection only waits out its draining period (3 PTO), which need not end on the
/// dot: its deadline is rounded up to this grid, so that the connections that close around the
/// same time are released in one timer wake-up instead of one each (at 1000 closes a second, a
/// wake-up every millisecond, each a turn of the pump).
const CLOSING_GRID: Duration = Duration::from_millis(16);
static GRID_EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// `at` rounded up to the next line of CLOSING_GRID.
fn on_grid(at: Instant) -> Instant {
    let epoch = *GRID_EPOCH;
    let since = at.saturating_duration_since(epoch).as_nanos();
    let grid = CLOSING_GRID.as_nanos();
    let lines = since.div_ceil(grid);
    epoch + Duration::from_nanos(u64::try_from(lines * grid).unwrap_or(u64::MAX))
}

const REPORTED_ESTABLISHED: u8 = 1;
const REPORTED_DRAINING: u8 = 2;
const REPORTED_CLOSED: u8 = 4;

/// A quiche connection plus what the endpoint needs to route it and report on it.
pub struct Conn {
    pub q: quiche::Connection,
    /// Where packets for this connection go (updated from quiche's `SendInfo`).
    pub peer: SocketAddr,
    /// Routing keys in the endpoint's table that point here.
    pub cids: Vec<ConnectionId<'static>>,
    /// The deadline registered in the endpoint's timer set.
    pub deadline: Option<Instant>,
    /// quiche paces this connection: BBR2 with pacing on (its CUBIC and Reno never hold a packet).
    paces: bool,
    /// quiche's pacer holds the next packet: sending goes on at this instant (see `pacing_hold`).
    pub paced_until: Option<Instant>,
    /// Refused at accept time: closed at once and never shown to JS.
    pub hidden: bool,
    /// Ended by the peer's Stateless Reset (RFC 9000 §10.3): it had lost the connection.
    pub stateless_reset: bool,
    /// Client: the stateless reset token the server announced (a key of the endpoint's table).
    pub reset_token: Option<u128>,
    /// The code of the last stream reset/stop seen by a stream call.
    pub last_code: u64,
    /// Queued in the endpoint's check / send queues.
    pub queued_check: bool,
    pub queued_send: bool,
    /// A server's answer to the client's complete ClientHello has been let out ahead of the turn.
    pub answered: bool,
    /// JS waits for credit to open a stream.
    pub want_streams: bool,
    /// JS waits for room in quiche's DATAGRAM send queue.
    want_dgram_send: bool,
    /// Received DATAGRAMs quiche dropped because its queue was full.
    pub dgram_dropped: u64,
    /// How many of those `dgram_recv` has reported to JS.
    dgram_dropped_reported: u64,
    /// Interval of keep-alive PINGs, and when the next one is due.
    pub keep_alive: Option<Duration>,
    keep_alive_at: Option<Instant>,
    /// A client has processed a 1-RTT packet that arrived after its handshake completed: the
    /// server's HANDSHAKE_DONE has most likely been processed, and the handshake is confirmed.
    confirmed: bool,
    /// A close that must wait (see `close`), and when to close regardless: counted from the
    /// close for a client nobody has answered yet, else from the first packet sent after it.
    pending_close: Option<(bool, u64, Vec<u8>, Option<Instant>)>,
    want_read: HashSet<u64>,
    want_write: HashSet<u64>,
    /// Send urgency of local streams not at quiche's default, while they may still be written.
    urgencies: HashMap<u64, u8>,
    /// STOP_SENDING codes of streams quiche collected before JS wrote again.
    stopped: HashMap<u64, u64>,
    /// The last byte of a stream's last write, sent with the next write, the FIN, or the next
    /// packets, whichever comes first (see `stream_send`).
    held: HashMap<u64, u8>,
    /// Streams whose FIN comes with no data: handed to quiche just before the connection's next
    /// packets are built (see `stream_send`).
    fins: HashSet<u64>,
    /// Lowest peer-initiated stream id not yet announced, for [bidi, uni].
    next_peer: [u64; 2],
    /// Peer stream ids skipped over by a higher one and not yet announced.
    gaps: HashSet<u64>,
    reported: u8,
    scratch: Vec<u64>,
}

impl Conn {
    pub fn new(q: quiche::Connection, peer: SocketAddr, is_server: bool) -> Self {
        // Stream id bit 0 is the initiator (0 client, 1 server), bit 1 the direction.
        let peer_bit = u64::from(!is_server);
        let paces = q.pacing_enabled() && q.gcongestion_enabled() == Some(true);
        Conn {
            q,
            paces,
            peer,
            cids: Vec::new(),
            deadline: None,
            paced_until: None,
            hidden: false,
            last_code: 0,
            queued_check: false,
            queued_send: false,
            answered: false,
            want_streams: false,
            want_dgram_send: false,
            dgram_dropped: 0,
            dgram_dropped_reported: 0,
            stateless_reset: false,
            reset_token: None,
            keep_alive: None,
            keep_alive_at: None,
            confirmed: false,
            pending_close: None,
            want_read: HashSet::new(),
            want_write: HashSet::new(),
            urgencies: HashMap::new(),
            stopped: HashMap::new(),
            held: HashMap::new(),
            fins: HashSet::new(),
            next_peer: [peer_bit, 2 | peer_bit],
            gaps: HashSet::new(),
            reported: 0,
            scratch: Vec::new(),
        }
    }

    /// Reads into `buf`. Returns `4·n + 2·drained + fin`, where `drained` says that quiche has
    /// nothing more for now (JS gets a READABLE event when it has: no need to ask again before),
    /// -1 when nothing is there yet (the same event comes), -2 when the peer reset the stream
    /// (code in `last_code`), -3 when the stream is gone.
    pub fn stream_recv(&mut self, id: u64, buf: &mut [u8]) -> f64 {
        match self.q.stream_recv(id, buf) {
            Ok((0, false)) | Err(quiche::Error::Done) => {
                self.want_read.insert(id);
                -1.0
            }
            Ok((n, fin)) => {
                let drained = !fin && !self.q.stream_readable(id);
                if drained {
                    self.want_read.insert(id);
                } else if fin {
                    self.want_read.remove(&id);
                }
                (n as f64) * 4.0 + f64::from(u8::from(drained)) * 2.0 + f64::from(u8::from(fin))
            }
            Err(quiche::Error::StreamReset(code)) => {
                self.want_read.remove(&id);
                self.last_code = code;
                -2.0
            }
            Err(_) => {
                self.want_read.remove(&id);
                -3.0
            }
        }
    }

    /// Writes what fits of `buf`, after the byte held back from the last write. Returns bytes of
    /// `buf` taken, -1 when nothing fits now (JS gets a WRITABLE event later), -2 when the peer
    /// stopped the stream (code in `last_code`), -3 when the stream can no longer be written.
    ///
    /// quiche 0.30 forgets a stream whose data is all acknowledged, FIN or not, and with it a
    /// zero-length FIN it has not sent yet (cloudflare/quiche#2525): on an ACK, or when the peer's
    /// FIN is read. So a FIN is kept from being bare: with `hold` (a write, not the FIN), the last
    /// byte of a `buf` taken whole stays here until the next call or the next packets
    /// (`flush_held`), and a FIN in the same turn of the event loop carries it. A FIN that still
    /// comes alone stays here too, and goes to quiche only as the packets are built.
    pub fn stream_send(&mut self, id: u64, buf: &[u8], fin: bool, hold: bool) -> f64 {
        if let Some(&byte) = self.held.get(&id) {
            let r = self.stream_send_now(id, &[byte], fin && buf.is_empty());
            if r != 1.0 {
                return r.min(-1.0);
            }
            self.held.remove(&id);
            if buf.is_empty() {
                return 0.0;
            }
        }
        if fin && buf.is_empty() {
            if let Some(r) = self.unwritable(id) {
                return r;
            }
            self.fins.insert(id);
            return 0.0;
        }
        let Some((&last, body)) = buf.split_last().filter(|_| hold && !fin) else {
            return self.stream_send_now(id, buf, fin);
        };
        // A byte held without asking quiche must be one quiche would still take.
        let r = if body.is_empty() {
            self.unwritable(id).unwrap_or(0.0)
        } else {
            self.stream_send_now(id, body, false)
        };
        if r == body.len() as f64 {
            self.held.insert(id, last);
            return buf.len() as f64;
        }
        r
    }

    /// Hands quiche the bytes held back from the streams' last writes and the FINs that came
    /// alone, as the connection's next packets are about to be built. A byte that does not fit
    /// waits for the next packets; a stream the peer stopped keeps the code for the next write.
    /// The FINs wait while the pacer holds the packets back: the ACKs that come meanwhile would
    /// make quiche forget them (see `stream_send`). (quiche tells no congestion window apart from
    /// a stream's credit, and a FIN needs no credit: a FIN queued behind a full window can still
    /// be forgotten, as before.)
    pub fn flush_held(&mut self) {
        if !self.fins.is_empty() && self.pacing_hold().is_none() {
            for id in std::mem::take(&mut self.fins) {
                // A stream the peer stopped is reset by quiche: nothing is owed to a write.
                if self.q.stream_send(id, &[], true).is_ok() {
                    self.urgencies.remove(&id);
                }
            }
        }
        if self.held.is_empty() {
            return;
        }
        let held: Vec<(u64, u8)> = self.held.iter().map(|(&id, &b)| (id, b)).collect();
        for (id, byte) in held {
            let stopped = match self.q.stream_send(id, &[byte], false) {
                Ok(1) => None,
                Err(quiche::Error::StreamStopped(code)) => Some(code),
                // No room yet (Done, for a stream that still exists): the next packets try again.
                _ => match self.q.stream_capacity(id) {
                    Ok(_) => continue,
                    Err(quiche::Error::StreamStopped(code)) => Some(code),
                    Err(_) => None,
                },
            };
            if let Some(code) = stopped {
                self.stopped.insert(id, code);
            }
            self.held.remove(&id);
        }
    }

    fn stream_send_now(&mut self, id: u64, buf: &[u8], fin: bool) -> f64 {
        match self.q.stream_send(id, buf, fin) {
            Ok(n) => {
                if n < buf.len() {
                    self.want_write.insert(id);
                } else if fin {
                    self.urgencies.remove(&id);
                }
                n as f64
            }
            Err(quiche::Error::StreamStopped(code)) => {
                self.urgencies.remove(&id);
                self.stopped.remove(&id);
                self.last_code = code;
                -2.0
            }
            // Done also comes back for a stream quiche has already collected: only a stream
            // that still exists is worth waiting for.
            Err(quiche::Error::Done) => self.unwritable(id).unwrap_or_else(|| {
                self.want_write.insert(id);
                -1.0
            }),
            Err(_) => -3.0,
        }
    }

    /// Why stream `id` can take no more data: -2 when the peer stopped it (code in
    /// `last_code`), -3 when it is gone; None while it can.
    fn unwritable(&mut self, id: u64) -> Option<f64> {
        match self.q.stream_capacity(id) {
            Ok(_) => None,
            Err(quiche::Error::StreamStopped(code)) => {
                self.stopped.remove(&id);
                self.last_code = code;
                Some(-2.0)
            }
            Err(_) => Some(match self.stopped.remove(&id) {
                Some(code) => {
                    self.last_code = code;
                    -2.0
                }
                None => -3.0,
            }),
        }
    }

    /// Sets a local stream's send priority: quiche sends the buffered data of lower urgencies
    /// first, and when several writers wait for room, the more urgent ones are woken first (so
    /// that they take the room before the others). A stream quiche no longer has is left alone.
    pub fn set_urgency(&mut self, id: u64, urgency: u8) -> quiche::Result<()> {
        self.q.stream_priority(id, urgency, true)?;
        if urgency == DEFAULT_URGENCY {
            self.urgencies.remove(&id);
        } else {
            self.urgencies.insert(id, urgency);
        }
        Ok(())
    }

    /// RESET_STREAM (`write`) or STOP_SENDING with `code`. A stream already finished in that
    /// direction is left as it is.
    pub fn stream_shutdown(&mut self, id: u64, write: bool, code: u64) {
        let dir = if write {
            quiche::Shutdown::Write
        } else {
            quiche::Shutdown::Read
        };
        if write {
            self.want_write.remove(&id);
            self.urgencies.remove(&id);
            self.held.remove(&id);
            self.fins.remove(&id);
        } else {
            self.want_read.remove(&id);
        }
        let _ = self.q.stream_shutdown(id, dir, code);
    }

    /// Takes in one UDP datagram for this connection.
    ///
    /// A packet that fails to decrypt or parse is dropped by quiche; one that breaks the protocol
    /// closes this connection. quiche 0.30 drops the rest of a datagram after a packet it cannot
    /// decrypt, such as a Handshake ACK that arrives after the Handshake keys are gone, and with
    /// it the 1-RTT packet coalesced behind it (quiche#1834; RFC 9000 §12.2 says to go on): so
    /// coalesced packets are handed over one by one.
    pub fn recv(&mut self, data: &mut [u8], info: quiche::RecvInfo) {
        // quiche drops the oldest received DATAGRAM when its queue is full and counts nothing:
        // count here, around the packets that could overflow it.
        let watch = DGRAM_RECV_QUEUE - self.q.dgram_recv_queue_len() <= data.len() / 2;
        let before = watch.then(|| (self.q.dgram_recv_queue_len(), self.q.stats().dgram_recv));
        let was_established = self.q.is_established();
        let was_closed = self.q.is_closed();
        let mut short = false;
        let mut rest = data;
        while !rest.is_empty() {
            let len = first_packet_len(rest);
            let (packet, tail) = rest.split_at_mut(len);
            short |= packet[0] & 0x80 == 0;
            if self.q.recv(packet, info).is_err() {
                break;
            }
            rest = tail;
        }
        if let Some((queued, received)) = before {
            let arrived = self.q.stats().dgram_recv - received;
            let kept = self.q.dgram_recv_queue_len() - queued.min(self.q.dgram_recv_queue_len());
            self.dgram_dropped += arrived.saturating_sub(kept) as u64;
        }
        if was_established && short && !self.confirmed {
            self.confirmed = true;
        }
        // quiche closes a connection in `recv` without an error of either side in one case only:
        // a packet it could not decrypt ended in the peer's stateless reset token.
        if !was_closed
            && self.q.is_closed()
            && self.q.peer_error().is_none()
            && self.q.local_error().is_none()
        {
            self.stateless_reset = true;
        }
        if self.pending_close.is_some() && !self.close_must_wait() {
            self.close_pending();
        }
    }

    /// Closes the connection, or holds the close while it could not reach the peer (see
    /// `close_must_wait`).
    pub fn close(&mut self, app: bool, code: u64, reason: Vec<u8>) {
        // Before the handshake completes an application's code and reason may not be sent: they
        // become APPLICATION_ERROR (RFC 9000 §10.2.3), as quiche would do. Done here, it holds
        // for a close that waits until after the handshake, too.
        let (app, code, reason) = if app && !self.q.is_established() {
            (false, APPLICATION_ERROR, Vec::new())
        } else {
            (app, code, reason)
        };
        if self.close_must_wait() {
            if self.pending_close.is_none() {
                let at = self
                    .unanswered()
                    .then(|| Instant::now() + self.close_wait());
                self.pending_close = Some((app, code, reason, at));
            }
            return;
        }
        // Done: already closing. That is what the caller wants anyway.
        let _ = self.q.close(app, code, &reason);
    }

    /// Closes at once, whatever a held close waits for.
    pub fn close_now(&mut self) {
        let (app, code, reason) = match self.pending_close.take() {
            Some((app, code, reason, _)) => (app, code, reason),
            None => (false, 0, Vec::new()),
        };
        let _ = self.q.close(app, code, &reason);
    }

    /// Whether a client's close now would not reach the server, so that it waits:
    /// - quiche closes a connection that has processed no packet yet without a word: a server
    ///   that got the client's Initial would keep its half-open connection until its handshake
    ///   timeout. Such a client waits for the server's first answer, and then closes.
    /// - quiche 0.30 sends an application close only in a 1-RTT packet and, once closing,
    ///   processes no more packets: a client that closes before it has processed the server's
    ///   HANDSHAKE_DONE keeps sending Handshake probes without the close until its idle timeout.
    ///   A transport close then leaves in a Handshake packet, which a server that has confirmed
    ///   the handshake can no longer read. Such a client closes after the next 1-RTT packet.
    ///
    /// Either waits a few round trips at most (`pending_close`'s deadline).
    fn close_must_wait(&self) -> bool {
        if self.q.is_server() || self.closing() {
            return false;
        }
        self.unanswered() || (self.q.is_established() && !self.confirmed)
    }

    /// The client has sent packets and processed none: the server has not been heard from.
    fn unanswered(&self) -> bool {
        let stats = self.q.stats();
        stats.recv == 0 && stats.sent > 0
    }

    /// How long a pending close waits at most: a few round trips (the initial RTT estimate
    /// before any sample), between 10 ms and 1 s.
    fn close_wait(&self) -> Duration {
        let rtt = self
            .q
            .path_stats()
            .find(|p| p.active)
            .map_or(Duration::ZERO, |p| p.rtt);
        (rtt * 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// A packet left: a pending close starts counting down.
    pub fn on_sent(&mut self) {
        if self.pending_close.as_ref().is_some_and(|c| c.3.is_none()) {
            let at = Instant::now() + self.close_wait();
            if let Some(c) = self.pending_close.as_mut() {
                c.3 = Some(at);
            }
        }
    }

    fn close_pending(&mut self) {
        if let Some((app, code, reason, _)) = self.pending_close.take() {
            let _ = self.q.close(app, code, &reason);
        }
    }

    /// Queues one DATAGRAM. Returns 0 when queued, -1 when quiche's queue is full (JS gets a
    /// DATAGRAMS_WRITABLE event later), -2 when it is larger than the path allows, -3 when the
    /// peer does not accept DATAGRAMs (or the handshake has not told us yet).
    pub fn dgram_send(&mut self, buf: &[u8]) -> f64 {
        match self.q.dgram_send(buf) {
            Ok(()) => 0.0,
            Err(quiche::Error::Done) => {
                self.want_dgram_send = true;
                -1.0
            }
            Err(quiche::Error::BufferTooShort) => -2.0,
            Err(_) => -3.0,
        }
    }

    /// Moves received DATAGRAMs back to back into `out`, their lengths into `lens`, while both
    /// have room. Returns how many it moved. The last entry of `lens` is not a length: it gets
    /// how many received DATAGRAMs quiche dropped (its queue was full) since the last call.
    pub fn dgram_recv(&mut self, out: &mut [u8], lens: &mut [u32]) -> u32 {
        let Some((dropped, lens)) = lens.split_last_mut() else {
            return 0;
        };
        let unreported = self.dgram_dropped - self.dgram_dropped_reported;
        *dropped = u32::try_from(unreported).unwrap_or(u32::MAX);
        self.dgram_dropped_reported += u64::from(*dropped);
        let (mut off, mut n) = (0, 0);
        while n < lens.len() {
            let Some(len) = self.q.dgram_recv_front_len() else {
                break;
            };
            if out.len() - off < len {
                break;
            }
            match self.q.dgram_recv(&mut out[off..off + len]) {
                Ok(got) => {
                    lens[n] = got as u32;
                    off += got;
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n as u32
    }

    /// Closed, draining, or closing on our side: nothing left to do but leave.
    pub fn closing(&self) -> bool {
        self.q.is_closed() || self.q.is_draining() || self.q.local_error().is_some()
    }

    /// When the next packet may leave, if quiche's pacer holds it back. A packet may leave up to
    /// quiche's `max_release_into_future` (an eighth of the RTT, 1–5 ms) before its time: no
    /// earlier, or the pacing is lost; no later than needed, for a timer wakes up a millisecond
    /// late or so. The packet held may be one that need not wait (an ACK, a probe): quiche only
    /// says when the next packet is due, not what it will carry.
    pub fn pacing_hold(&self) -> Option<Instant> {
        if !self.paces {
            return None;
        }
        let now = Instant::now();
        let release = self.q.get_next_release_time()?.time(now)?;
        let leave = release.checked_sub(self.q.max_release_into_future())?;
        (leave > now).then_some(leave)
    }

    /// The next instant this connection needs `on_timeout`: quiche's timers, a keep-alive, or
    /// the pacer's next release.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let at = self.timers_deadline();
        // A closing connection's last packets are not paced (see `BindingEndpoint::send_conn`).
        let paced = self.paced_until.filter(|_| !self.closing());
        match (at, paced) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        }
    }

    fn timers_deadline(&mut self) -> Option<Instant> {
        if let Some((.., Some(at))) = self.pending_close {
            return Some(self.q.timeout_instant().map_or(at, |t| t.min(at)));
        }
        if self.closing() {
            self.keep_alive_at = None;
            return self.q.timeout_instant().map(on_grid);
        }
        match self.keep_alive {
            Some(every) if self.q.is_established() => {
                let at = *self
                    .keep_alive_at
                    .get_or_insert_with(|| Instant::now() + every);
                Some(self.q.timeout_instant().map_or(at, |t| t.min(at)))
            }
            _ => {
                self.keep_alive_at = None;
                self.q.timeout_instant()
            }
        }
    }

    /// Runs quiche's expired timers, sends a PING when a keep-alive is due, and ends a pacing
    /// hold that is over (the endpoint then lets the connection send).
    pub fn on_timeout(&mut self, now: Instant) {
        if self.paced_until.is_some_and(|at| at <= now) {
            self.paced_until = None;
        }
        if self
            .pending_close
            .as_ref()
            .is_some_and(|&(.., at)| at.is_some_and(|at| at <= now))
        {
            self.close_pending();
        }
        if let (Some(every), Some(at)) = (self.keep_alive, self.keep_alive_at) {
            if at <= now {
                // Any ack-eliciting packet resets both sides' idle timers.
                let _ = self.q.send_ack_eliciting();
                self.keep_alive_at = Some(now + every);
            }
        }
        self.q.on_timeout();
    }

    /// Whether a readable stream id is one the peer opened and JS has not heard of yet.
    fn is_new_peer_stream(&mut self, id: u64, is_server: bool) -> bool {
        if (id & 1) == u64::from(is_server) {
            return false;
        }
        let next = &mut self.next_peer[((id >> 1) & 1) as usize];
        if id >= *next {
            // quiche bounds `id` by the stream limit it granted, so the gap set stays bounded.
            let mut skipped = *next;
            while skipped < id {
                self.gaps.insert(skipped);
                skipped += 4;
            }
            *next = id + 4;
            true
        } else {
            self.gaps.remove(&id)
        }
    }

    /// Appends the events that quiche's state now calls for. A hidden (refused) connection
    /// reports only its end, so that JS releases it: as soon as its CONNECTION_CLOSE is out
    /// (quiche drains from then on). A server that never took the connection on keeps no closing
    /// state for it (RFC 9000 §10.2), which spares its memory under a flood of clients, and its
    /// close() the wait for a draining period computed without an RTT sample.
    pub fn check(&mut self, h: u32, events: &mut VecDeque<Event>) {
        if !self.hidden {
            self.check_open(h, events);
        }
        let over = self.q.is_closed() || (self.hidden && self.q.is_draining());
        if self.reported & REPORTED_CLOSED == 0 && over {
            self.reported |= REPORTED_CLOSED;
            events.push_back((EV_CLOSED, h, 0));
        }
    }

    fn check_open(&mut self, h: u32, events: &mut VecDeque<Event>) {
        if self.reported & REPORTED_ESTABLISHED == 0 && self.q.is_established() {
            self.reported |= REPORTED_ESTABLISHED;
            events.push_back((EV_ESTABLISHED, h, 0));
        }
        let mut ids = std::mem::take(&mut self.scratch);
        ids.extend(self.q.readable());
        // quiche's order is its scheduler's: announce the peer's new streams in the order it
        // opened them (stream ids grow with each one).
        ids.sort_unstable();
        let is_server = self.q.is_server();
        for &id in &ids {
            if self.want_read.remove(&id) || self.is_new_peer_stream(id, is_server) {
                events.push_back((EV_READABLE, h, id));
            }
        }
        ids.clear();
        self.scratch = ids;
        let (q, stopped) = (&mut self.q, &mut self.stopped);
        let mut writable = std::mem::take(&mut self.scratch);
        self.want_write.retain(|&id| {
            let waiting = match q.stream_capacity(id) {
                Ok(0) => true,
                // quiche may collect a stopped stream right here; keep the code for stream_send.
                Err(quiche::Error::StreamStopped(code)) => {
                    stopped.insert(id, code);
                    false
                }
                _ => false,
            };
            if !waiting {
                writable.push(id);
            }
            waiting
        });
        // The most urgent writer first: it takes the room that just opened.
        let urgencies = &self.urgencies;
        writable.sort_by_key(|id| (urgencies.get(id).copied().unwrap_or(DEFAULT_URGENCY), *id));
        events.extend(writable.drain(..).map(|id| (EV_WRITABLE, h, id)));
        self.scratch = writable;
        if self.want_streams
            && (self.q.peer_streams_left_bidi() > 0 || self.q.peer_streams_left_uni() > 0)
        {
            self.want_streams = false;
            events.push_back((EV_STREAMS, h, 0));
        }
        if self.q.dgram_recv_queue_len() > 0 {
            events.push_back((EV_DATAGRAMS, h, 0));
        }
        if self.want_dgram_send && !self.q.is_dgram_send_queue_full() {
            self.want_dgram_send = false;
            events.push_back((EV_DATAGRAMS_WRITABLE, h, 0));
        }
        if self.reported & REPORTED_DRAINING == 0 && self.q.is_draining() {
            self.reported |= REPORTED_DRAINING;
            events.push_back((EV_DRAINING, h, 0));
        }
    }
}

/// Length of the first QUIC packet in a datagram (RFC 9000 §12.2, §17.2): a long-header packet
/// ends where its Length field says; anything else (a short header, or a header that does not
/// parse) runs to the end of the datagram, for quiche to judge.
fn first_packet_len(data: &[u8]) -> usize {
    fn varint(data: &[u8], at: &mut usize) -> Option<usize> {
        let first = *data.get(*at)?;
        let len = 1usize << (first >> 6);
        let bytes = data.get(*at..*at + len)?;
        let mut v = u64::from(first & 0x3f);
        for &b in &bytes[1..] {
            v = (v << 8) | u64::from(b);
        }
        *at += len;
        usize::try_from(v).ok()
    }
    let parse = || -> Option<usize> {
        let first = *data.first()?;
        if first & 0x80 == 0 {
            return None;
        }
        let version = u32::from_be_bytes(data.get(1..5)?.try_into().ok()?);
        if version != quiche::PROTOCOL_VERSION {
            return None;
        }
        let mut at = 5;
        let dcid_len = usize::from(*data.get(at)?);
        at += 1 + dcid_len;
        let scid_len = usize::from(*data.get(at)?);
        at += 1 + scid_len;
        match (first >> 4) & 0x3 {
            // Initial: a token before the length.
            0 => {
                let token = varint(data, &mut at)?;
                at += token;
            }
            // 0-RTT and Handshake.
            1 | 2 => {}
            // Retry has no length and is never coalesced.
            _ => return None,
        }
        let payload = varint(data, &mut at)?;
        let end = at.checked_add(payload)?;
        (end <= data.len()).then_some(end)
    };
    parse().unwrap_or(data.len())
}
