//! A harness that drives one connection's state machine over a scripted socket, for the fuzz
//! target `fuzz/fuzz_targets/connection.rs` and the property test `tests/connection_props.rs`.
//! Not part of the API (the crate re-exports it hidden, as `cerberus::fuzzing`).
//!
//! The script decides how the request bytes arrive (in what pieces) and how much the socket
//! takes on each write; the oracle is that none of it may change what the client receives.
//! The same bytes delivered whole, to a socket that takes everything, must produce the same
//! responses byte for byte (`Date` values aside), and the worker's write buffer must be
//! empty after every event.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::conn::{Conn, Io, Outcome, Ready, Socket};
use super::ctx::{Ctx, Shared};
use super::tls::{TlsStream, Transport};
use crate::config::Config;
use crate::handler::Router;
use crate::http::RequestParser;
use crate::stats::StatsWriter;

/// The config the harness serves by: an echo route (so bodies reach the output), `inspect`,
/// `shape` (bodies written from the pattern, with no delay so that no alarm is needed), the
/// static default, and a small `max_output` so that backpressure happens.
const CONFIG: &str = r#"
max_output = 2048
max_body = 65536
[[route]]
path = "/echo"
handler = "echo"
[[route]]
path = "/inspect"
handler = "inspect"
[[route]]
path = "/shape"
handler = "shape"
"#;

/// A socket whose input arrives as the script says and whose writes are limited by a budget.
#[derive(Debug, Default)]
struct ScriptedSocket {
    /// Bytes the client has sent that the server has not read.
    input: VecDeque<u8>,
    /// The client has shut its side: reads end with EOF once `input` is empty.
    eof: bool,
    /// Bytes the socket takes before it reports `WouldBlock`.
    budget: usize,
    /// Everything the server wrote.
    output: Vec<u8>,
}

impl ScriptedSocket {
    /// Copy what the client sent into `buf`, as a read would: `WouldBlock` with nothing
    /// there, 0 once it closed. The bytes stay until the caller drains them.
    fn look(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (slot, byte) in buf.iter_mut().zip(self.input.iter()) {
            *slot = *byte;
        }
        Ok(n)
    }
}

impl Read for ScriptedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.look(buf)?;
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for ScriptedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for ScriptedSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }

    fn reset(&self) {}
}

impl Transport for ScriptedSocket {
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.look(buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }

    fn reset(&self) {}
}

/// Where the harness's socket is: plain, or under TLS.
trait Scripted: Socket {
    fn script(&mut self) -> &mut ScriptedSocket;
}

impl Scripted for ScriptedSocket {
    fn script(&mut self) -> &mut ScriptedSocket {
        self
    }
}

impl Scripted for TlsStream<ScriptedSocket> {
    fn script(&mut self) -> &mut ScriptedSocket {
        self.transport_mut()
    }
}

/// The config and routes, built once: parsing TOML for every run would dominate a fuzzer's
/// time.
fn shared() -> Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let config: Config = toml::from_str(CONFIG).expect("the harness config parses");
            let router = Router::from_config(&config).expect("the harness routes build");
            Arc::new(Shared {
                config,
                router,
                tls: None,
            })
        })
        .clone()
}

/// One connection and the worker state it borrows.
struct Harness<S = ScriptedSocket> {
    conn: Conn<S>,
    ctx: Ctx,
    rbuf: Vec<u8>,
    parser: RequestParser,
    closed: bool,
}

impl Harness {
    fn new(read_buf: usize) -> Harness {
        Harness::over(ScriptedSocket::default(), read_buf)
    }
}

impl<S: Scripted> Harness<S> {
    fn over(socket: S, read_buf: usize) -> Harness<S> {
        let stats = StatsWriter::new();
        Harness {
            conn: Conn::new(socket, shared(), std::net::Ipv4Addr::LOCALHOST.into()),
            ctx: Ctx::new(0, shared(), stats, Instant::now(), 4096),
            rbuf: vec![0; read_buf],
            parser: RequestParser::new(),
            closed: false,
        }
    }

    /// Deliver an event, as the worker would; checks the write buffer's invariant.
    fn event(&mut self, readable: bool, writable: bool) {
        if self.closed {
            return;
        }
        let ready = Ready {
            readable,
            writable,
            read_closed: self.socket().eof,
        };
        let io = Io {
            rbuf: &mut self.rbuf,
            parser: &mut self.parser,
        };
        self.ctx.now = Instant::now();
        let outcome = self.conn.on_event(ready, io, &mut self.ctx);
        assert!(self.ctx.wbuf.is_empty(), "an event left staged bytes");
        self.closed = matches!(outcome, Outcome::Close(_));
    }

    fn socket(&mut self) -> &mut ScriptedSocket {
        self.conn.socket_mut().script()
    }

    /// Let the client read everything owed and close its side; the connection then ends.
    fn finish(&mut self) {
        self.socket().eof = true;
        // Each round the socket takes everything: what is owed drains, held-back requests
        // are answered, and the EOF is read. A few rounds always suffice; more is a hang.
        for _ in 0..64 {
            if self.closed {
                return;
            }
            self.socket().budget = usize::MAX;
            self.event(true, true);
        }
        panic!("the connection never finished");
    }
}

/// Run `script` (see the module doc) over `requests`; panics if the oracle fails.
///
/// The script is read a byte at a time: an even byte delivers the next `byte / 2 + 1` bytes
/// of `requests` and reports the socket readable; an odd one gives the socket `byte * 8`
/// bytes of room and reports it writable. Whatever the script leaves undelivered arrives at
/// the end, before the client reads everything and closes.
pub fn run(script: &[u8], requests: &[u8]) {
    let expected = whole(requests);
    let mut h = Harness::new(64);
    let mut sent = 0;
    for &op in script {
        if op % 2 == 0 {
            let n = (usize::from(op) / 2 + 1).min(requests.len() - sent);
            h.socket().input.extend(&requests[sent..sent + n]);
            sent += n;
            h.event(true, false);
        } else {
            h.socket().budget = usize::from(op) * 8;
            h.event(false, true);
        }
    }
    h.socket().input.extend(&requests[sent..]);
    h.finish();
    assert_same_responses(&expected, &h.socket().output);
}

/// Panics unless `whole` and `pieces` are the same responses, `Date` values and interim
/// `100 Continue` responses aside.
pub fn assert_same_responses(whole: &[u8], pieces: &[u8]) {
    let (whole, pieces) = (without_dates(whole), without_dates(pieces));
    assert!(
        whole == pieces,
        "responses depend on how the bytes arrived:\nwhole: {:?}\npieces: {:?}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&pieces)
    );
}

/// The responses to `requests` delivered at once to a socket that takes everything.
fn whole(requests: &[u8]) -> Vec<u8> {
    let mut h = Harness::new(64 * 1024);
    h.socket().input.extend(requests);
    h.socket().budget = usize::MAX;
    h.event(true, true);
    h.finish();
    std::mem::take(&mut h.socket().output)
}

/// `bytes` with every `Date:` header value blanked (the two runs may straddle a second) and
/// without interim `100 Continue` responses, which are sent only when a head arrives before
/// its body: the one thing the order of arrival may rightly change.
fn without_dates(bytes: &[u8]) -> Vec<u8> {
    const DATE: &[u8] = b"\r\nDate: ";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut kept = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(CONTINUE.len()).position(|w| w == CONTINUE) {
        kept.extend_from_slice(&rest[..at]);
        rest = &rest[at + CONTINUE.len()..];
    }
    kept.extend_from_slice(rest);
    let mut out = Vec::with_capacity(kept.len());
    let mut rest = &kept[..];
    while let Some(at) = rest.windows(DATE.len()).position(|w| w == DATE) {
        let value = at + DATE.len();
        out.extend_from_slice(&rest[..value]);
        let end = rest[value..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

/// The harness's TLS config: a throwaway certificate made for it (`fuzz_tls/`), good for a
/// century, ECDSA P-256.
fn tls_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_pki_types::pem::PemObject;
            let cert = rustls_pki_types::CertificateDer::from_pem_slice(include_bytes!(
                "fuzz_tls/cert.pem"
            ))
            .expect("the harness certificate parses");
            let key =
                rustls_pki_types::PrivateKeyDer::from_pem_slice(include_bytes!("fuzz_tls/key.pem"))
                    .expect("the harness key parses");
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .expect("the harness pair matches");
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// A client that trusts whatever the harness presents (signatures are still checked).
#[derive(Debug)]
struct Trusting(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Trusting {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// [`run`] over TLS: a real rustls client (TLS 1.3, or 1.2 when `tls12`) sends `requests`
/// through the HTTPS connection code; the script cuts the client's ciphertext into pieces
/// and limits how much of the server's each write may give the socket. The client must
/// decrypt exactly the responses the plain connection gives the same requests at once.
pub fn run_tls(script: &[u8], requests: &[u8], tls12: bool) {
    let expected = whole(requests);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Trusting(provider)))
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), name).expect("a client session");
    let stream = TlsStream::new(ScriptedSocket::default(), &tls_config()).expect("a session");
    let mut h = Harness::over(stream, 64);
    let (mut wire, mut queued, mut got) = (VecDeque::new(), 0, Vec::new());
    let mut exchange = |h: &mut Harness<TlsStream<ScriptedSocket>>,
                        wire: &mut VecDeque<u8>,
                        queued: &mut usize| {
        exchange(h, wire, &mut client, &requests[*queued..], &mut got).map(|n| *queued += n)
    };
    for &op in script {
        let _ = exchange(&mut h, &mut wire, &mut queued);
        if op % 2 == 0 {
            let n = (usize::from(op) / 2 + 1).min(wire.len());
            let piece: Vec<u8> = wire.drain(..n).collect();
            h.socket().input.extend(piece);
            h.event(true, false);
        } else {
            h.socket().budget = usize::from(op) * 8;
            h.event(false, true);
        }
    }
    // The rest arrives, the socket takes everything, and once every request is out the
    // client closes its side.
    for _ in 0..256 {
        let handshaking = exchange(&mut h, &mut wire, &mut queued).is_none();
        if h.closed {
            break;
        }
        let all = queued == requests.len() && !handshaking && wire.is_empty();
        h.socket().input.extend(wire.drain(..));
        h.socket().eof = all;
        h.socket().budget = usize::MAX;
        h.event(true, true);
    }
    let _ = exchange(&mut h, &mut wire, &mut queued);
    assert!(h.closed, "the TLS connection never finished");
    assert_same_responses(&expected, &got);
}

/// One round between the client and the harness's wire: the client's plaintext (`more`)
/// into its session, its ciphertext onto `wire`, the server's output into the client, whose
/// plaintext goes to `got`. Returns how much of `more` the client took, or `None` while it
/// is still in its handshake.
fn exchange(
    h: &mut Harness<TlsStream<ScriptedSocket>>,
    wire: &mut VecDeque<u8>,
    client: &mut rustls::ClientConnection,
    more: &[u8],
    got: &mut Vec<u8>,
) -> Option<usize> {
    let mut taken = None;
    if !client.is_handshaking() {
        taken = Some(client.writer().write(more).unwrap_or(0));
    }
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).expect("into memory");
    }
    wire.extend(out);
    let output = std::mem::take(&mut h.socket().output);
    let mut from = &output[..];
    while !from.is_empty() {
        if client.read_tls(&mut from).is_err() || client.process_new_packets().is_err() {
            break;
        }
        let mut plain = [0u8; 4096];
        while let Ok(n) = client.reader().read(&mut plain) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&plain[..n]);
        }
    }
    taken
}

/// The HTTPS connection code fed `input` as a client's ciphertext (anything at all), in
/// pieces at the script's cuts: it must not panic, and it must end.
pub fn tls_bytes(script: &[u8], input: &[u8]) {
    let stream = TlsStream::new(ScriptedSocket::default(), &tls_config()).expect("a session");
    let mut h = Harness::over(stream, 64);
    let mut sent = 0;
    for &op in script {
        let n = (usize::from(op) + 1).min(input.len() - sent);
        h.socket().input.extend(&input[sent..sent + n]);
        sent += n;
        h.socket().budget = usize::from(op) * 8;
        h.event(true, true);
    }
    h.socket().input.extend(&input[sent..]);
    h.finish();
}
