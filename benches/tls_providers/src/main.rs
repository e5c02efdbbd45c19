//! Why Cerberus uses aws-lc-rs: the server's share of a full TLS 1.3 handshake (ECDSA P-256),
//! and AES-GCM encryption of 64 MiB, in memory, with rustls's aws-lc-rs and ring providers
//! (the client is always aws-lc-rs). Each provider is measured twice, alternating.
//!
//!     cd benches/tls_providers && cargo run --release            # rustls's default key shares
//!     cd benches/tls_providers && cargo run --release -- x25519  # the client offers X25519 only
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().clone();
    let mut roots = RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let mut cp = rustls::crypto::aws_lc_rs::default_provider();
    if std::env::args().nth(1).as_deref() == Some("x25519") {
        cp.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    let client_cfg = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(cp))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for (name, provider) in [
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
        ("ring", rustls::crypto::ring::default_provider()),
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
        ("ring", rustls::crypto::ring::default_provider()),
    ] {
        let provider = Arc::new(provider);
        let mut sc = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        sc.send_tls13_tickets = 0;
        let sc = Arc::new(sc);
        let n = 2000;
        let mut server_time = Duration::ZERO;
        for _ in 0..n {
            let mut client =
                ClientConnection::new(client_cfg.clone(), "localhost".try_into().unwrap()).unwrap();
            let mut srv = ServerConnection::new(sc.clone()).unwrap();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                while client.wants_write() {
                    client.write_tls(&mut buf).unwrap();
                }
                let t = Instant::now();
                if !buf.is_empty() {
                    srv.read_tls(&mut &buf[..]).unwrap();
                    srv.process_new_packets().unwrap();
                }
                let mut out = Vec::new();
                while srv.wants_write() {
                    srv.write_tls(&mut out).unwrap();
                }
                server_time += t.elapsed();
                if !out.is_empty() {
                    client.read_tls(&mut &out[..]).unwrap();
                    client.process_new_packets().unwrap();
                }
                if !client.is_handshaking() && !srv.is_handshaking() && !client.wants_write() {
                    break;
                }
            }
        }
        // bulk: 64 MiB of application data encrypted by the server
        let mut client =
            ClientConnection::new(client_cfg.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut srv = ServerConnection::new(sc.clone()).unwrap();
        loop {
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                srv.read_tls(&mut &buf[..]).unwrap();
                srv.process_new_packets().unwrap();
            }
            let mut out = Vec::new();
            while srv.wants_write() {
                srv.write_tls(&mut out).unwrap();
            }
            if !out.is_empty() {
                client.read_tls(&mut &out[..]).unwrap();
                client.process_new_packets().unwrap();
            }
            if !client.is_handshaking()
                && !srv.is_handshaking()
                && !client.wants_write()
                && !srv.wants_write()
            {
                break;
            }
        }
        let chunk = vec![7u8; 64 * 1024];
        let t = Instant::now();
        let mut sink = Vec::with_capacity(80 << 10);
        for _ in 0..1024 {
            use std::io::Write;
            srv.writer().write_all(&chunk).unwrap();
            while srv.wants_write() {
                sink.clear();
                srv.write_tls(&mut sink).unwrap();
            }
        }
        let bulk = t.elapsed();
        println!("{name:10} full handshake server side {:6.1} us   encrypt 64 MiB {:6.1} ms ({:.2} GB/s)", server_time.as_secs_f64() * 1e6 / n as f64, bulk.as_secs_f64() * 1e3, 64.0 * 1.048576 / 1e3 / bulk.as_secs_f64());
    }
}
