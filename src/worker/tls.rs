//! A connection of the HTTPS listener: a TCP stream with a rustls session in front, seen by
//! the connection code as one more [`Socket`]. Reads give plaintext and writes take it; the
//! handshake happens inside them, without blocking, as records arrive.
//!
//! The session is rustls's unbuffered one: the buffers are ours, so an idle connection holds
//! none. Ciphertext read is kept only while a record is partial, plaintext only when the
//! reader had no room for a whole record, and ciphertext made only until the socket takes it.
//!
//! The [`Socket`] contract holds: a read shorter than its buffer means the TCP socket is
//! drained (so edge-triggered epoll reports what comes next), and a write that takes less
//! than it was offered means the TCP socket is full (so a writable event will follow).
//! Ciphertext the socket did not take waits ([`Socket::unsent`]), at most one batch of
//! records, and goes before any new plaintext is taken.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;

use super::conn::Socket;
use crate::stats::TlsFailure;

/// Plaintext taken per round of encrypting and sending: at most this much ciphertext (and
/// record overhead) waits when the socket is full.
const BATCH: usize = 64 * 1024;

/// Room for the overhead of encrypting `n` bytes: 16 KiB records, each with a 5-byte header,
/// a content-type byte and a 16-byte tag.
fn sealed_len(n: usize) -> usize {
    n + n.div_ceil(16 * 1024).max(1) * 22
}

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

/// The session and the buffers it needs, boxed together: a connection holds one pointer.
struct Session {
    conn: UnbufferedServerConnection,
    /// Ciphertext read and not yet processed: a partial record (empty, unallocated, between
    /// records).
    incoming: Vec<u8>,
    /// Ciphertext made and not yet taken by the socket, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// Plaintext decrypted that the reader had no room for, from `taken` on.
    plain: Vec<u8>,
    taken: usize,
    /// The client sent close_notify, or closed its side.
    ended: bool,
    /// Anything was written to the socket (after which a plaintext alert would be wrong).
    spoke: bool,
    phase: Phase,
}

/// What a pass over the session's records came to.
enum Pass {
    /// Waiting for more ciphertext from the client.
    Input,
    /// The handshake is done and nothing more can be read now: plaintext may be written.
    Open,
    /// The caller's buffer is full.
    Full,
}

/// What a TLS session needs of the socket under it: the worker's are TCP streams; the fuzz
/// harness (`worker::fuzz`) gives a scripted one.
pub trait Transport: Read + Write {
    /// Look at the first bytes without taking them (`MSG_PEEK`).
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Shut the write side.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Make the close a reset.
    fn reset(&self);
}

impl Transport for TcpStream {
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::peek(self, buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn reset(&self) {
        Socket::reset(self);
    }
}

/// A TLS connection's socket.
pub struct TlsStream<T = TcpStream> {
    tcp: T,
    session: Box<Session>,
}

impl<T: Transport> TlsStream<T> {
    /// A session on a just-accepted socket.
    pub fn new(tcp: T, config: &Arc<ServerConfig>) -> io::Result<TlsStream<T>> {
        let conn = UnbufferedServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            session: Box::new(Session {
                conn,
                incoming: Vec::new(),
                outgoing: Vec::new(),
                sent: 0,
                plain: Vec::new(),
                taken: 0,
                ended: false,
                spoke: false,
                phase: Phase::Fresh,
            }),
        })
    }

    /// The socket under the session (the fuzz harness's script).
    pub(super) fn transport_mut(&mut self) -> &mut T {
        &mut self.tcp
    }

    /// What the worker should count, once.
    pub fn take_news(&mut self) -> Option<News> {
        let s = &mut *self.session;
        match s.phase {
            Phase::Done => {
                s.phase = Phase::Counted;
                let tls13 = s.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                let resumed = s.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                Some(News::Done { tls13, resumed })
            }
            Phase::Failed(why) => {
                s.phase = Phase::Over;
                Some(News::Failed(why))
            }
            _ => None,
        }
    }

    /// The handshake failed, for this reason (unless an earlier one was given).
    pub fn fail(&mut self, why: TlsFailure) {
        let s = &mut *self.session;
        if matches!(s.phase, Phase::Fresh | Phase::Handshaking) {
            s.phase = Phase::Failed(why);
        }
    }

    /// Send the ciphertext waiting, until the socket takes no more (`WouldBlock`).
    fn send(&mut self) -> io::Result<()> {
        let s = &mut *self.session;
        while s.sent < s.outgoing.len() {
            match self.tcp.write(&s.outgoing[s.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    s.sent += n;
                    s.spoke = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // All out: hold no buffer.
        s.outgoing = Vec::new();
        s.sent = 0;
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

    /// The session refused what the client sent: count why, and tell the client with a
    /// plaintext alert while nothing has been sent yet (afterwards alerts are encrypted,
    /// and the close says enough).
    fn refuse(&mut self, e: rustls::Error) -> io::Error {
        self.fail(failure(&e));
        if !self.session.spoke && self.session.outgoing.is_empty() {
            let _ = self
                .tcp
                .write(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert(&e)]);
        }
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// Process the records in the session's partial buffer (none: only learn the state).
    fn pump(&mut self, out: &mut [u8], n: &mut usize) -> io::Result<Pass> {
        let s = &mut *self.session;
        let mut incoming = std::mem::take(&mut s.incoming);
        let (used, result) = s.pass(&mut incoming, out, n);
        if used < incoming.len() {
            incoming.drain(..used);
            s.incoming = incoming;
        }
        result.map_err(|e| self.refuse(e))
    }

    /// Read from the socket and process what came: into the partial buffer behind what is
    /// there, or else into the worker's scratch buffer, whose unprocessed rest (a partial
    /// record) is all that is kept. `Ok(None)` at the socket's end; with the pass, whether the
    /// read was short (the socket is drained, as a plain connection's short read means).
    fn receive(&mut self, out: &mut [u8], n: &mut usize) -> io::Result<Option<(Pass, bool)>> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            if scratch.is_empty() {
                scratch.resize(SCRATCH_LEN, 0);
            }
            let k = match self.tcp.read(&mut scratch[..]) {
                Ok(0) => return Ok(None),
                Ok(k) => k,
                Err(e) => return Err(e),
            };
            let short = k < scratch.len();
            let s = &mut *self.session;
            if !s.incoming.is_empty() {
                s.incoming.extend_from_slice(&scratch[..k]);
                drop(scratch);
                return self.pump(out, n).map(|pass| Some((pass, short)));
            }
            let (used, result) = s.pass(&mut scratch[..k], out, n);
            if used < k {
                s.incoming.extend_from_slice(&scratch[used..k]);
            }
            drop(scratch);
            result
                .map(|pass| Some((pass, short)))
                .map_err(|e| self.refuse(e))
        })
    }

    /// Encrypt `data` and send it; what the socket does not take waits in the session.
    /// The handshake must be done.
    fn seal(&mut self, data: &[u8]) -> io::Result<()> {
        for _ in 0..2 {
            if let Some(sealed) = self.try_seal(data) {
                return sealed;
            }
            // The session has a message of its own to send first (a KeyUpdate, once its keys
            // near their limit): encode it, then seal.
            let mut n = 0;
            if let Pass::Input = self.pump(&mut [], &mut n)? {
                break;
            }
        }
        Err(io::Error::other("TLS session not ready to write"))
    }

    /// [`seal`](Self::seal), or `None` when the session is not ready to take plaintext.
    fn try_seal(&mut self, data: &[u8]) -> Option<io::Result<()>> {
        SEALED.with(|sealed| {
            let mut sealed = sealed.borrow_mut();
            let s = &mut *self.session;
            let UnbufferedStatus { state, .. } = s.conn.process_tls_records(&mut []);
            let Ok(ConnectionState::WriteTraffic(mut write)) = state else {
                return None;
            };
            let need = sealed_len(data.len());
            if sealed.len() < need {
                sealed.resize(need, 0);
            }
            let len = loop {
                match write.encrypt(data, &mut sealed[..]) {
                    Ok(k) => break k,
                    Err(EncryptError::InsufficientSize(e)) => sealed.resize(e.required_size, 0),
                    Err(e) => return Some(Err(io::Error::other(e.to_string()))),
                }
            };
            // Behind what waits, or straight to the socket.
            let mut at = 0;
            if s.sent == s.outgoing.len() {
                while at < len {
                    match self.tcp.write(&sealed[at..len]) {
                        Ok(0) => return Some(Err(io::ErrorKind::WriteZero.into())),
                        Ok(k) => {
                            at += k;
                            s.spoke = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
            if at < len {
                s.outgoing.extend_from_slice(&sealed[at..len]);
            }
            Some(Ok(()))
        })
    }
}

/// Ciphertext read per `read` call, into a buffer each worker thread has once: up to four
/// records of the largest size with their headers.
const SCRATCH_LEN: usize = 4 * (16 * 1024 + 256 + 5);

thread_local! {
    /// Where a worker reads ciphertext: connections keep only partial records of it.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Where a worker encrypts: connections keep only what the socket did not take.
    static SEALED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Session {
    /// Process the records in `incoming`: decrypt application data into `out` (from `*n`,
    /// the rest into the session's own plaintext buffer once `out` is full), and encode
    /// handshake messages, tickets and alerts into the outgoing buffer. Returns how much of
    /// `incoming` was used (processed records, up to an error), and where the session is.
    fn pass(
        &mut self,
        incoming: &mut [u8],
        out: &mut [u8],
        n: &mut usize,
    ) -> (usize, Result<Pass, rustls::Error>) {
        let mut used = 0;
        loop {
            if *n == out.len() && !out.is_empty() {
                return (used, Ok(Pass::Full));
            }
            let Session {
                conn,
                outgoing,
                plain,
                taken,
                ended,
                ..
            } = self;
            let UnbufferedStatus { discard, state } =
                conn.process_tls_records(&mut incoming[used..]);
            let state = match state {
                Ok(state) => state,
                Err(e) => return (used + discard, Err(e)),
            };
            let pass = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let payload = match record {
                            Ok(record) => record.payload,
                            Err(e) => return (used + discard, Err(e)),
                        };
                        let k = payload.len().min(out.len() - *n);
                        out[*n..*n + k].copy_from_slice(&payload[..k]);
                        *n += k;
                        if k < payload.len() {
                            if *taken == plain.len() {
                                plain.clear();
                                *taken = 0;
                            }
                            plain.extend_from_slice(&payload[k..]);
                        }
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    let at = outgoing.len();
                    outgoing.resize(at + 4096, 0);
                    loop {
                        match data.encode(&mut outgoing[at..]) {
                            Ok(k) => {
                                outgoing.truncate(at + k);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(e)) => {
                                outgoing.resize(at + e.required_size, 0);
                            }
                            Err(e) => {
                                return (used + discard, Err(rustls::Error::General(e.to_string())))
                            }
                        }
                    }
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // Sent by the caller, or once the socket takes it: ours to keep till then.
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Pass::Input),
                ConnectionState::WriteTraffic(_) => Some(Pass::Open),
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    *ended = true;
                    Some(Pass::Open)
                }
                // No 0-RTT is configured, so no early data comes; anything else is new.
                _ => {
                    let e = rustls::Error::General("unexpected TLS session state".into());
                    return (used + discard, Err(e));
                }
            };
            used += discard;
            if let Some(pass) = pass {
                if self.phase == Phase::Handshaking && !self.conn.is_handshaking() {
                    self.phase = Phase::Done;
                }
                return (used, Ok(pass));
            }
        }
    }
}

/// The alert that tells the client why, before any record of ours was sent.
fn alert(e: &rustls::Error) -> u8 {
    use rustls::Error as E;
    match e {
        E::PeerSentOversizedRecord => 22,
        E::InvalidMessage(_) => 50,
        E::NoApplicationProtocol => 120,
        E::PeerIncompatible(_) => 40,
        _ => 10,
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

impl<T: Transport> Read for TlsStream<T> {
    /// Plaintext, as much as `buf` holds or the socket has: short only once the socket is
    /// drained (`WouldBlock` when it had nothing), 0 at the end (the client's close, with or
    /// without `close_notify`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.session.phase == Phase::Fresh {
            self.session.phase = Phase::Handshaking;
            if self.plain_http()? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP on the HTTPS port",
                ));
            }
        }
        // Plaintext left over from a record the last read had no room for.
        let mut n = 0;
        {
            let s = &mut *self.session;
            if s.taken < s.plain.len() {
                n = (s.plain.len() - s.taken).min(buf.len());
                buf[..n].copy_from_slice(&s.plain[s.taken..s.taken + n]);
                s.taken += n;
                if s.taken == s.plain.len() {
                    s.plain = Vec::new();
                    s.taken = 0;
                }
            }
        }
        // Records already here (a partial one completed by the last read, or records the
        // last read had no room for), then the socket's.
        let mut pass = self.pump(buf, &mut n)?;
        let mut drained = false;
        loop {
            // Handshake messages, tickets: now. What the socket does not take waits for its
            // writable event (`unsent`).
            match self.send() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            if matches!(pass, Pass::Full) || self.session.ended {
                return Ok(n);
            }
            if drained {
                // Edge-triggered epoll reports what comes next: no read to learn it is empty.
                return if n > 0 {
                    Ok(n)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            pass = match self.receive(buf, &mut n) {
                Ok(Some((pass, short))) => {
                    drained = short;
                    pass
                }
                Ok(None) => {
                    if self.session.conn.is_handshaking() {
                        self.fail(TlsFailure::Closed);
                    }
                    self.session.ended = true;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Pass::Input,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => return Ok(n),
                Err(e) => return Err(e),
            };
        }
    }
}

impl<T: Transport> Write for TlsStream<T> {
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
            // Records already read are decrypted (into the session's plaintext buffer, for
            // the next read) before the session can write.
            let mut n = 0;
            if let Pass::Input = self.pump(&mut [], &mut n)? {
                return Err(io::Error::other("TLS handshake not done"));
            }
            // The next batch: slices of `bufs` from `taken`, up to BATCH bytes, sealed one
            // slice at a time (a response head and its body's first slice are two records).
            let (mut skip, mut room) = (taken, BATCH);
            for b in bufs {
                if room == 0 {
                    break;
                }
                if skip >= b.len() {
                    skip -= b.len();
                    continue;
                }
                let part = &b[skip..(skip + room).min(b.len())];
                skip = 0;
                room -= part.len();
                self.seal(part)?;
                taken += part.len();
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.send() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }
}

impl<T: Transport> Socket for TlsStream<T> {
    fn shutdown_write(&self) -> io::Result<()> {
        self.tcp.shutdown_write()
    }

    fn reset(&self) {
        self.tcp.reset();
    }

    #[inline]
    fn handshaking(&self) -> bool {
        self.session.conn.is_handshaking()
    }

    #[inline]
    fn unsent(&self) -> bool {
        self.session.sent < self.session.outgoing.len()
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
