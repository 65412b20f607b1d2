//! The client: the two scenarios of bench/quic-client.ts.

use std::io;
use std::net::SocketAddr;

use crate::io::{quiche_error, Io, Turn};
use crate::report;

/// The first client-initiated unidirectional stream, which bulk uses as quic-client.ts does.
const BULK_STREAM: u64 = 2;
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

    /// One turn; an error if the connection closed or we were told to stop mid-run.
    fn step(&mut self) -> io::Result<()> {
        match self.io.turn(&mut self.conn)? {
            Turn::Open => Ok(()),
            Turn::Stop => Err(io::Error::other("stopped before the scenario finished")),
            Turn::Closed => Err(io::Error::other(format!(
                "the connection closed (peer error {:?}, local error {:?})",
                self.conn.peer_error(),
                self.conn.local_error()
            ))),
        }
    }

    /// Sends `size` bytes on one unidirectional stream and reports when the first went to
    /// quiche; then stays connected, as quic-client.ts does, until stdin closes, so that the
    /// server can read everything.
    pub fn bulk(mut self, size: usize) -> io::Result<()> {
        let chunk = vec![0x5a; CHUNK];
        let start = report::now();
        let mut sent = 0;
        loop {
            let len = CHUNK.min(size - sent);
            let fin = sent + len == size;
            match self.conn.stream_send(BULK_STREAM, &chunk[..len], fin) {
                Ok(n) => {
                    sent += n;
                    if fin && n == len {
                        break;
                    }
                }
                Err(quiche::Error::Done) => self.step()?,
                Err(e) => return Err(quiche_error("stream_send", e)),
            }
        }
        report::sent(start, size as u64);
        while let Turn::Open = self.io.turn(&mut self.conn)? {}
        self.io.close(&mut self.conn)
    }

    /// Sequential round trips of ECHO_SIZE bytes on one bidirectional stream; reports the
    /// times after warm-up, then finishes the stream and closes.
    pub fn echo(mut self, iterations: usize, warmup: usize) -> io::Result<()> {
        let message = [0x61u8; ECHO_SIZE];
        let mut buf = [0u8; 2048];
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            let start = report::now();
            let mut off = 0;
            while off < ECHO_SIZE {
                match self.conn.stream_send(ECHO_STREAM, &message[off..], false) {
                    Ok(n) => off += n,
                    Err(quiche::Error::Done) => self.step()?,
                    Err(e) => return Err(quiche_error("stream_send", e)),
                }
            }
            let mut got = 0;
            while got < ECHO_SIZE {
                match self.conn.stream_recv(ECHO_STREAM, &mut buf) {
                    Ok((_, true)) => return Err(io::Error::other("the echo stream ended early")),
                    Ok((n, false)) => got += n,
                    Err(quiche::Error::Done) => self.step()?,
                    Err(e) => return Err(quiche_error("stream_recv", e)),
                }
            }
            if i >= warmup {
                samples.push(report::now() - start);
            }
        }
        let _ = self.conn.stream_send(ECHO_STREAM, &[], true);
        report::samples(&samples);
        self.io.close(&mut self.conn)
    }
}
