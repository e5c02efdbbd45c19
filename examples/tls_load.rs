//! A TLS handshake load for `benches/tls.py`: threads that each connect, handshake, send one
//! `GET` with `Connection: close`, read the response to its end and start again, for a while.
//! `full` handshakes from scratch every time; `resumed` keeps each thread's session (a TLS 1.3
//! ticket, or a TLS 1.2 session id) and resumes it. Certificates are not verified: this
//! measures the server, whose certificate is made for the run.
//!
//!     cargo build --release --example tls_load
//!     target/release/examples/tls_load ADDR full|resumed THREADS SECONDS [1.2|1.3]
//!
//! Prints one line: `handshakes=N resumed=R failed=F seconds=S`, and the first few failures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate (the run made it); signatures are still checked.
#[derive(Debug)]
struct Trusting(Arc<CryptoProvider>);

impl ServerCertVerifier for Trusting {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn config(resume: bool, version: &str) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        "1.2" => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Trusting(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// One connection: handshake, one request, the response to its end. `Ok(resumed)`.
fn once(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<bool, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        // A close without close_notify still ends a Content-Length response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    if !got.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "response: {:?}",
            String::from_utf8_lossy(&got[..got.len().min(60)])
        ));
    }
    Ok(resumed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: tls_load ADDR full|resumed THREADS SECONDS [1.2|1.3]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let resume = args[2] == "resumed";
    let threads: usize = args[3].parse().expect("THREADS");
    let secs: f64 = args[4].parse().expect("SECONDS");
    let version = args.get(5).map_or("1.3", String::as_str).to_owned();
    let (done, resumed, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let errors = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (done, resumed, failed, errors) = (
                done.clone(),
                resumed.clone(),
                failed.clone(),
                errors.clone(),
            );
            let config = config(resume, &version);
            std::thread::spawn(move || {
                while Instant::now() < end {
                    match once(addr, &config) {
                        Ok(r) => {
                            done.fetch_add(1, Relaxed);
                            if r {
                                resumed.fetch_add(1, Relaxed);
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Relaxed);
                            let mut errors = errors.lock().unwrap();
                            if errors.len() < 5 {
                                errors.push(e);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    println!(
        "handshakes={} resumed={} failed={} seconds={:.3}",
        done.load(Relaxed),
        resumed.load(Relaxed),
        failed.load(Relaxed),
        start.elapsed().as_secs_f64()
    );
    for e in errors.lock().unwrap().iter() {
        println!("error: {e}");
    }
}
