//! The client: the scenarios of bench/quic-client.ts, and the handshakes of bench/quic-clients.ts.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::thread;

use crate::io::{quiche_error, Io, Turn};
use crate::report;

/// The first client-initiated unidirectional stream, which bulk uses as quic-client.ts does; the
/// parallel streams are this one and those after it (every 4th id).
const BULK_STREAM: u64 = 2;
/// The first server-initiated unidirectional stream, on which the server pushes (`--push`).
const PUSH_STREAM: u64 = 3;
/// The first client-initiated bidirectional stream.
const ECHO_STREAM: u64 = 0;
/// Bytes handed to quiche per write, as quic-client.ts writes 64 KiB chunks.
const CHUNK: usize = 64 * 1024;
/// Size of one echo message (ECHO_SIZE in bench/common.ts).
const ECHO_SIZE: usize = 100;

/// A client connection to the server on 127.0.0.1:`port`, established.
pub struct Client {
    io: Io,
    conn: quiche::Connection,
}

impl Client {
    /// Connects and completes the handshake.
    pub fn connect(port: u16, config: &mut quiche::Config) -> io::Result<Self> {
        let io = Io::bind()?;
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let scid = quiche::ConnectionId::from_vec(crate::connection_id());
        let conn = quiche::connect(Some("localhost"), &scid, io.local(), peer, config)
            .map_err(|e| quiche_error("connect", e))?;
        let mut client = Self { io, conn };
        while !client.conn.is_established() {
            client.step()?;
        }
        Ok(client)
    }

    /// One turn; an error if the connection closed or we were told to stop mid-run (that one of
    /// kind `Interrupted`).
    fn step(&mut self) -> io::Result<()> {
        match self.io.turn(&mut self.conn)? {
            Turn::Open => Ok(()),
            Turn::Stop => Err(io::Error::new(
                ErrorKind::Interrupted,
                "stopped before the scenario finished",
            )),
            Turn::Closed => Err(io::Error::other(format!(
                "the connection closed (peer error {:?}, local error {:?})",
                self.conn.peer_error(),
                self.conn.local_error()
            ))),
        }
    }

    /// Sends `size` bytes over `streams` unidirectional streams, written in turn, and reports
    /// when the first went to quiche; then stays connected, as quic-client.ts does, until stdin
    /// closes, so that the server can read everything.
    pub fn bulk(mut self, size: usize, streams: usize) -> io::Result<()> {
        let chunk = vec![0x5a; CHUNK];
        let share = size / streams;
        // The last stream takes what does not divide evenly.
        let mut left: Vec<usize> = (0..streams)
            .map(|i| {
                if i + 1 < streams {
                    share
                } else {
                    size - share * i
                }
            })
            .collect();
        let mut done = vec![false; streams];
        let start = report::now();
        while done.contains(&false) {
            let mut progress = false;
            for (i, id) in (BULK_STREAM..).step_by(4).take(streams).enumerate() {
                if done[i] {
                    continue;
                }
                let len = CHUNK.min(left[i]);
                let fin = len == left[i];
                match self.conn.stream_send(id, &chunk[..len], fin) {
                    Ok(n) => {
                        left[i] -= n;
                        done[i] = fin && n == len;
                        progress |= n > 0 || done[i];
                    }
                    Err(quiche::Error::Done) => {}
                    Err(e) => return Err(quiche_error("stream_send", e)),
                }
            }
            if !progress {
                self.step()?;
            }
        }
        report::sent(start, size as u64);
        self.linger()
    }

    /// Reads the stream the server pushes to its end and reports it; then stays connected until
    /// stdin closes.
    pub fn download(mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut bytes, mut packets) = (0u64, 0u64);
        loop {
            match self.conn.stream_recv(PUSH_STREAM, &mut buf) {
                Ok((n, fin)) => {
                    bytes += n as u64;
                    packets += 1;
                    if fin {
                        break;
                    }
                }
                // Nothing yet, or the stream has not arrived yet.
                Err(quiche::Error::Done | quiche::Error::InvalidStreamState(_)) => self.step()?,
                Err(e) => return Err(quiche_error("stream_recv", e)),
            }
        }
        report::received(bytes, packets, report::now());
        self.linger()
    }

    /// Serves the connection until stdin closes, then closes it.
    fn linger(mut self) -> io::Result<()> {
        while let Turn::Open = self.io.turn(&mut self.conn)? {}
        self.io.close(&mut self.conn)
    }

    /// Sends `message` on `stream` and reads as many bytes back.
    fn round_trip(&mut self, stream: u64, message: &[u8], buf: &mut [u8]) -> io::Result<()> {
        let mut off = 0;
        while off < message.len() {
            match self.conn.stream_send(stream, &message[off..], false) {
                Ok(n) => off += n,
                Err(quiche::Error::Done) => self.step()?,
                Err(e) => return Err(quiche_error("stream_send", e)),
            }
        }
        let mut got = 0;
        while got < message.len() {
            match self.conn.stream_recv(stream, buf) {
                Ok((_, true)) => return Err(io::Error::other("the echo stream ended early")),
                Ok((n, false)) => got += n,
                Err(quiche::Error::Done) => self.step()?,
                Err(e) => return Err(quiche_error("stream_recv", e)),
            }
        }
        Ok(())
    }

    /// Sequential round trips of ECHO_SIZE bytes on one bidirectional stream; reports the
    /// times after warm-up, then finishes the stream and closes.
    pub fn echo(mut self, iterations: usize, warmup: usize) -> io::Result<()> {
        let message = [0x61u8; ECHO_SIZE];
        let mut buf = [0u8; 2048];
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            let start = report::now();
            self.round_trip(ECHO_STREAM, &message, &mut buf)?;
            if i >= warmup {
                samples.push(report::now() - start);
            }
        }
        let _ = self.conn.stream_send(ECHO_STREAM, &[], true);
        report::samples(&samples);
        self.io.close(&mut self.conn)
    }
}

/// Opens `count` connections to 127.0.0.1:`port` with configs from `config`, each with a full
/// handshake, one echo of ECHO_SIZE bytes and a close, `concurrency` at a time (one thread each,
/// so that each connection keeps the plain loop of a single one), after `warmup` untimed ones
/// (at least one) the same way; reports the rate and each one's time to its echo.
pub fn handshakes(
    port: u16,
    config: &(dyn Fn() -> io::Result<quiche::Config> + Sync),
    count: usize,
    concurrency: usize,
    warmup: usize,
) -> io::Result<()> {
    in_lanes(port, config, warmup.max(1), concurrency)?;
    let start = report::now();
    let (ttfb, failed) = in_lanes(port, config, count, concurrency)?;
    let ms = report::now() - start;
    report::handshakes(failed, ms, &ttfb);
    Ok(())
}

/// `count` sessions, `concurrency` at a time: their times to first echo, and how many failed.
fn in_lanes(
    port: u16,
    config: &(dyn Fn() -> io::Result<quiche::Config> + Sync),
    count: usize,
    concurrency: usize,
) -> io::Result<(Vec<f64>, usize)> {
    let lanes: Vec<io::Result<(Vec<f64>, usize)>> = thread::scope(|scope| {
        let lanes: Vec<_> = (0..concurrency)
            .map(|lane| {
                let n = count / concurrency + usize::from(lane < count % concurrency);
                scope.spawn(move || sessions(port, &mut config()?, n))
            })
            .collect();
        lanes
            .into_iter()
            .map(|lane| {
                lane.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a lane panicked")))
            })
            .collect()
    });
    let (mut ttfb, mut failed) = (Vec::with_capacity(count), 0);
    for lane in lanes {
        let (times, lost) = lane?;
        ttfb.extend(times);
        failed += lost;
    }
    Ok((ttfb, failed))
}

/// `n` sessions one after another: their times to first echo, and how many failed.
fn sessions(port: u16, config: &mut quiche::Config, n: usize) -> io::Result<(Vec<f64>, usize)> {
    let mut ttfb = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        match one_session(port, config) {
            Ok(t) => ttfb.push(t),
            Err(e) if e.kind() == ErrorKind::Interrupted => return Err(e),
            Err(_) => failed += 1,
        }
    }
    Ok((ttfb, failed))
}

/// Connects, echoes once on a new stream and closes: the time from connecting to the echo.
fn one_session(port: u16, config: &mut quiche::Config) -> io::Result<f64> {
    let start = report::now();
    let mut client = Client::connect(port, config)?;
    let mut buf = [0u8; 2048];
    client.round_trip(ECHO_STREAM, &[0x61u8; ECHO_SIZE], &mut buf)?;
    let ttfb = report::now() - start;
    let _ = client.conn.stream_send(ECHO_STREAM, &[], true);
    client.io.close(&mut client.conn)?;
    Ok(ttfb)
}
