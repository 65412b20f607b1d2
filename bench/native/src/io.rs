//! The I/O driver: one nonblocking UDP socket on 127.0.0.1, quiche's timer, and stdin as the
//! stop signal, all waited on with one `ppoll(2)`.
//!
//! A turn is: flush everything quiche will send, wait, then feed quiche every datagram that
//! arrived (or fire its timer). Flushing comes first so that what the last turn's application
//! work queued leaves before we sleep.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;
use std::time::Duration;

/// quichex's default `maxUdpPayloadSize`, and so the baseline's.
pub const MAX_UDP_PAYLOAD: usize = 1350;
/// The socket buffers quichex asks for (lib/endpoint.ts), and so the baseline's.
const SOCKET_BUFFER: libc::c_int = 2 * 1024 * 1024;

/// What ended a wait.
pub enum Wake {
    /// The socket has datagrams to read.
    Readable,
    /// The timeout passed.
    Timeout,
    /// stdin reached end of file: bench/run.ts wants us gone.
    Stop,
}

/// Where a connection stands after a turn.
pub enum Turn {
    /// Open: the application may read and write.
    Open,
    /// stdin closed.
    Stop,
    /// The connection is closed (or was before the turn).
    Closed,
}

/// A socket bound to an ephemeral port on 127.0.0.1, with its buffers.
pub struct Io {
    socket: UdpSocket,
    local: SocketAddr,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Io {
    /// Binds a nonblocking socket to 127.0.0.1 on a port the system picks.
    pub fn bind() -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: a valid socket, an int option and its size.
            let rc = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    ptr::from_ref(&SOCKET_BUFFER).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            local,
            out: vec![0; MAX_UDP_PAYLOAD],
            buf: vec![0; 65535],
        })
    }

    /// The socket's address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Waits until a datagram arrives, `timeout` passes (never, if `None`), or stdin closes.
    /// Anything written to stdin is read and ignored.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Wake> {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let ts_ptr = ts.as_ref().map_or(ptr::null(), |t| t as *const _);
        loop {
            let mut fds = [pollfd(self.socket.as_raw_fd()), pollfd(libc::STDIN_FILENO)];
            // SAFETY: `fds` and `ts` outlive the call; a null signal mask leaves the mask alone.
            let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, ptr::null()) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 && stdin_ended() {
                return Ok(Wake::Stop);
            }
            if fds[0].revents != 0 {
                return Ok(Wake::Readable);
            }
            if rc == 0 {
                return Ok(Wake::Timeout);
            }
        }
    }

    /// Sends every packet quiche has ready.
    pub fn flush(&mut self, conn: &mut quiche::Connection) -> io::Result<()> {
        loop {
            let (len, info) = match conn.send(&mut self.out) {
                Ok(v) => v,
                Err(quiche::Error::Done) => return Ok(()),
                Err(e) => return Err(quiche_error("send", e)),
            };
            // quichex does not honour `info.at` (pacing) either: packets leave at once.
            self.send_to(len, info.to)?;
        }
    }

    fn send_to(&self, len: usize, to: SocketAddr) -> io::Result<()> {
        loop {
            match self.socket.send_to(&self.out[..len], to) {
                Ok(_) => return Ok(()),
                // The socket buffer is full: wait for room rather than drop a packet quiche
                // already counts as sent, which would read as congestion.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let mut fd = pollfd(self.socket.as_raw_fd());
                    fd.events = libc::POLLOUT;
                    // SAFETY: one valid pollfd; an error here resurfaces from the next send.
                    unsafe { libc::poll(&mut fd, 1, 100) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads every waiting datagram and hands each to `on_packet`.
    pub fn recv_all(
        &mut self,
        mut on_packet: impl FnMut(&mut [u8], quiche::RecvInfo),
    ) -> io::Result<()> {
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let info = quiche::RecvInfo {
                from,
                to: self.local,
            };
            on_packet(&mut self.buf[..len], info);
        }
    }

    /// One turn of `conn`: flush, wait for the socket, timer or stop, and feed quiche.
    pub fn turn(&mut self, conn: &mut quiche::Connection) -> io::Result<Turn> {
        if conn.is_closed() {
            return Ok(Turn::Closed);
        }
        self.flush(conn)?;
        match self.wait(conn.timeout())? {
            Wake::Stop => return Ok(Turn::Stop),
            Wake::Timeout => conn.on_timeout(),
            // A packet quiche refuses (a stray, a duplicate) is dropped, as a server would.
            Wake::Readable => self.recv_all(|packet, info| {
                let _ = conn.recv(packet, info);
            })?,
        }
        Ok(if conn.is_closed() {
            Turn::Closed
        } else {
            Turn::Open
        })
    }

    /// Closes `conn` with application code 0 and sends the CONNECTION_CLOSE.
    pub fn close(&mut self, conn: &mut quiche::Connection) -> io::Result<()> {
        // `Done` means it is closed already.
        let _ = conn.close(true, 0, b"done");
        self.flush(conn)
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads what stdin has; true at end of file (or if stdin cannot be read at all).
fn stdin_ended() -> bool {
    let mut sink = [0u8; 256];
    // SAFETY: reads at most `sink.len()` bytes into `sink`.
    let n = unsafe { libc::read(libc::STDIN_FILENO, sink.as_mut_ptr().cast(), sink.len()) };
    n <= 0
}

/// A quiche error as an `io::Error`, saying what failed.
pub fn quiche_error(what: &str, e: quiche::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}
