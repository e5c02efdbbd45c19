//! A connection of the HTTPS listener: a TCP stream with a rustls session in front, seen by
//! the connection code as one more [`Socket`]. Reads give plaintext and writes take it; the
//! handshake happens inside them, without blocking, as records arrive.
//!
//! The [`Socket`] contract holds: a read shorter than its buffer means the TCP socket is
//! drained (so edge-triggered epoll reports what comes next), and a write that takes less
//! than it was offered means the TCP socket is full (so a writable event will follow).
//! Ciphertext the socket did not take stays in the session ([`Socket::unsent`]), at most one
//! batch of records, and goes before any new plaintext is taken.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};

use super::conn::Socket;
use crate::stats::TlsFailure;

/// Plaintext taken per round of encrypting and sending: rustls keeps at most this much
/// ciphertext (its buffer limit) before we must send it.
const BATCH: usize = 64 * 1024;

/// The answer to plain HTTP sent to the HTTPS port, as nginx gives one.
const PLAIN_HTTP: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 46\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use https:// instead.\n";

/// Where the session is, as the worker's counters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet.
    Fresh,
    /// The handshake is going on.
    Handshaking,
    /// Done, not counted yet.
    Done,
    /// Done and counted.
    Counted,
    /// Failed, not counted yet.
    Failed(TlsFailure),
    /// Failed and counted.
    Over,
}

/// What happened to a session's handshake since the worker last asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// Done: TLS 1.3 or 1.2, resumed or full.
    Done {
        /// TLS 1.3 (else 1.2).
        tls13: bool,
        /// Resumed from an earlier session.
        resumed: bool,
    },
    /// Failed.
    Failed(TlsFailure),
}

/// A TLS connection's socket.
pub struct TlsStream {
    tcp: TcpStream,
    session: Box<ServerConnection>,
    phase: Phase,
}

impl TlsStream {
    /// A session on a just-accepted socket.
    pub fn new(tcp: TcpStream, config: &Arc<ServerConfig>) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            session: Box::new(session),
            phase: Phase::Fresh,
        })
    }

    /// What the worker should count, once.
    pub fn take_news(&mut self) -> Option<News> {
        match self.phase {
            Phase::Done => {
                self.phase = Phase::Counted;
                let tls13 =
                    self.session.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                let resumed = self.session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                Some(News::Done { tls13, resumed })
            }
            Phase::Failed(why) => {
                self.phase = Phase::Over;
                Some(News::Failed(why))
            }
            _ => None,
        }
    }

    /// The handshake failed, for this reason (unless an earlier one was given).
    pub fn fail(&mut self, why: TlsFailure) {
        if matches!(self.phase, Phase::Fresh | Phase::Handshaking) {
            self.phase = Phase::Failed(why);
        }
    }

    /// Send the ciphertext the session holds, until the socket takes no more
    /// (`WouldBlock`).
    fn send(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Is the first byte the client sent a letter, as in `GET /`, where a handshake starts
    /// with 0x16? Then answer in plain HTTP, read what was sent (so that closing does not
    /// reset the connection before the answer is read), and fail.
    fn plain_http(&mut self) -> io::Result<bool> {
        let mut first = [0u8; 1];
        match self.tcp.peek(&mut first) {
            Ok(1) if first[0].is_ascii_uppercase() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
        self.fail(TlsFailure::PlainHttp);
        let _ = self.tcp.write(PLAIN_HTTP);
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match self.tcp.read(&mut sink) {
                Ok(n) if n == sink.len() => {}
                _ => break,
            }
        }
        Ok(true)
    }

    /// Note a handshake that just finished.
    fn progress(&mut self) {
        if self.phase == Phase::Handshaking && !self.session.is_handshaking() {
            self.phase = Phase::Done;
        }
    }
}

/// The reason a session error gives for the counters.
fn failure(e: &rustls::Error) -> TlsFailure {
    use rustls::Error as E;
    match e {
        E::PeerIncompatible(_) | E::NoApplicationProtocol => TlsFailure::Incompatible,
        E::AlertReceived(_) => TlsFailure::Alert,
        E::InvalidMessage(_)
        | E::PeerMisbehaved(_)
        | E::DecryptError
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::PeerSentOversizedRecord => TlsFailure::Protocol,
        _ => TlsFailure::Other,
    }
}

impl Read for TlsStream {
    /// Plaintext, as much as `buf` holds or the socket has: short only once the socket is
    /// drained (`WouldBlock` when it had nothing), 0 at the end (the client's close, with or
    /// without `close_notify`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.phase == Phase::Fresh {
            self.phase = Phase::Handshaking;
            if self.plain_http()? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP on the HTTPS port",
                ));
            }
        }
        let mut n = 0;
        while n < buf.len() {
            match self.session.reader().read(&mut buf[n..]) {
                // close_notify.
                Ok(0) => return Ok(n),
                Ok(k) => {
                    n += k;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without close_notify: an end all the same for HTTP,
                // whose messages carry their own length.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
            match self.session.read_tls(&mut self.tcp) {
                Ok(0) => {
                    if self.session.is_handshaking() {
                        self.fail(TlsFailure::Closed);
                    }
                    return Ok(n);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => return Ok(n),
                Err(e) => return Err(e),
            }
            if let Err(e) = self.session.process_new_packets() {
                self.fail(failure(&e));
                // The alert that says why, if the socket takes it.
                let _ = self.send();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            self.progress();
            // Handshake messages, tickets, alerts: now. What the socket does not take waits
            // for its writable event (`unsent`).
            match self.send() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
        Ok(n)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Encrypt and send in batches until everything is taken or the socket is full; short
    /// (or `WouldBlock`) only when the socket is full.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut taken = 0;
        loop {
            match self.send() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => return Ok(taken),
                Err(e) => return Err(e),
            }
            if taken == total {
                return Ok(taken);
            }
            let (mut skip, mut room) = (taken, BATCH);
            let mut batch = [IoSlice::new(&[]); 17];
            let mut count = 0;
            for b in bufs {
                if skip >= b.len() {
                    skip -= b.len();
                    continue;
                }
                let part = &b[skip..(skip + room).min(b.len())];
                skip = 0;
                room -= part.len();
                batch[count] = IoSlice::new(part);
                count += 1;
                if room == 0 || count == batch.len() {
                    break;
                }
            }
            let k = self.session.writer().write_vectored(&batch[..count])?;
            if k == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            taken += k;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.send() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }
}

impl Socket for TlsStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.tcp.shutdown(std::net::Shutdown::Write)
    }

    fn reset(&self) {
        self.tcp.reset();
    }

    #[inline]
    fn handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    #[inline]
    fn unsent(&self) -> bool {
        self.session.wants_write()
    }

    fn push(&mut self) -> io::Result<()> {
        Write::flush(self)
    }
}

impl mio::event::Source for TlsStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}
