//! What the HTTPS tests share: certificates made on the spot (a CA, and leaves it signs, current,
//! expired, ECDSA or RSA), and a rustls client that speaks HTTP/1.1 to the server.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Every socket read and write gives up after this.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority the clients trust, which signs the server's certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, as PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
    /// The DER of the leaf, to tell which one a server presented.
    pub der: Vec<u8>,
}

/// The kind of key a leaf has.
#[derive(Clone, Copy)]
pub enum Key {
    EcdsaP256,
    Rsa2048,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Cerberus test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// The CA's certificate, as PEM (for curl and openssl).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf for `names`, valid from a day ago for `days` (negative: expired).
    pub fn leaf(&self, names: &[&str], key: Key, days: i64) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time_now();
        params.not_before = now - time::Duration::days(if days < 0 { 30 } else { 1 });
        params.not_after = now + time::Duration::days(days);
        let key = match key {
            Key::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            Key::Rsa2048 => KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap(),
        };
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client that trusts this CA and offers `http/1.1`, with TLS 1.3 and 1.2 or only
    /// `version`.
    pub fn client(
        &self,
        version: Option<&'static rustls::SupportedProtocolVersion>,
    ) -> Arc<ClientConfig> {
        self.client_with_clock(
            version,
            Arc::new(rustls::time_provider::DefaultTimeProvider),
        )
    }

    /// [`Ca::client`], reading the time from `clock`.
    pub fn client_with_clock(
        &self,
        version: Option<&'static rustls::SupportedProtocolVersion>,
        clock: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
            Some(v) => vec![v],
            None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut config = ClientConfig::builder_with_details(provider, clock)
            .with_protocol_versions(&versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Write `leaf` as `<stem>.pem` and `<stem>.key` in `dir`.
pub fn write_leaf(dir: &Path, stem: &str, leaf: &Leaf) {
    std::fs::write(dir.join(format!("{stem}.pem")), &leaf.cert).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), &leaf.key).unwrap();
}

/// A `[tls]` table serving `$DIR/<stem>.pem` and `.key`, on any port.
pub fn tls_table(stem: &str, extra: &str) -> String {
    format!(
        "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"$DIR/{stem}.pem\"\nkey = \"$DIR/{stem}.key\"\n{extra}\n"
    )
}

/// A response: status, head text, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTPS connection.
pub struct Https {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
    /// Bytes read past the last response.
    rest: Vec<u8>,
}

impl Https {
    /// Connect and finish the handshake, asking for `name` (SNI).
    pub fn connect(addr: SocketAddr, name: &str, config: &Arc<ClientConfig>) -> io::Result<Https> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Https {
            stream,
            rest: Vec::new(),
        })
    }

    /// The leaf certificate the server presented.
    pub fn peer_leaf(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().unwrap()[0].to_vec()
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// GET `path` and read the response.
    pub fn get(&mut self, path: &str) -> io::Result<Reply> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())?;
        self.read_reply()
    }

    /// Read one response framed by Content-Length.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut buf = std::mem::take(&mut self.rest);
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill(&mut buf)?;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            self.fill(&mut buf)?;
        }
        self.rest = buf.split_off(head_end + length);
        let body = buf.split_off(head_end);
        Ok(Reply { status, head, body })
    }

    fn fill(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}
