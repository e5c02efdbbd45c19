//! Minimum rates: a client that trickles its body ("slow POST") or reads its response a few
//! bytes at a time ("slow read") keeps the gap timeouts at bay, so `min_body_rate` and
//! `min_send_rate` close it once a window of `min_rate_window` averages below the rate, and
//! count it under its own reason; a slow but real client (16 KiB/s, a poor mobile link) is
//! never cut off. A reader too slow to free even the kernel's share of the output (32 KiB)
//! makes no progress at all, and `write_timeout` closes it. The window is 2 s and the write
//! timeout 10 s here (10 s and 30 s by default), and the send rate 8 KiB/s, to keep the tests
//! short.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::metrics_helpers::scrape_until;
use common::Server;

const MIB: usize = 1 << 20;

fn start() -> Server {
    let config = "min_rate_window = \"2s\"\nmin_send_rate = \"8KiB/s\"\n\
                  write_timeout = \"10s\"\nmax_body = 2097152\n\
                  [[route]]\npath = \"/echo\"\nhandler = \"echo\"\n\
                  [[route]]\npath = \"/big\"\nbody_file = \"$DIR/big\"\n";
    Server::builder(config)
        .metrics_listen("127.0.0.1:0")
        .file("big", &vec![b'x'; MIB])
        .start()
}

/// Send `chunk` bytes every 100 ms after `head`, until the server closes or `limit` passes;
/// returns how long the server took to close, or `None` if it never did.
fn trickle_body(server: &Server, chunk: usize, limit: Duration) -> Option<Duration> {
    let mut c = TcpStream::connect(server.addr()).unwrap();
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {MIB}\r\n\r\n");
    c.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    let piece = vec![b'a'; chunk];
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        if c.write_all(&piece).is_err() {
            return Some(start.elapsed());
        }
    }
    None
}

/// `GET /big` (1 MiB) with a small receive buffer, reading `chunk` bytes every 100 ms for
/// `limit` or until the server closes (as the client sees it). Returns how long the server
/// took to count a close (`None`: it did not), and the bytes read.
fn read_slowly(server: &Server, chunk: usize, limit: Duration) -> (Option<Duration>, usize) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr().into()).unwrap();
    let mut c: TcpStream = socket.into();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let (mut buf, mut got) = (vec![0; chunk], 0);
    let mut closed = None;
    while start.elapsed() < limit && closed.is_none() {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        std::thread::sleep(Duration::from_millis(100));
        // The server may close while the kernel still holds what it had queued: the client
        // reads that for a while yet. The server's own count says when it gave up.
        closed = (closes(server) > 0.0).then(|| start.elapsed());
    }
    (closed, got)
}

/// Connections the server closed for being slow or silent.
fn closes(server: &Server) -> f64 {
    let e = common::metrics_helpers::scrape(server.metrics());
    [
        "min_body_rate",
        "min_send_rate",
        "write_timeout",
        "body_timeout",
    ]
    .iter()
    .filter_map(|r| e.value("cerberus_connections_closed_total", &[("reason", r)]))
    .sum()
}

fn closed_for(server: &Server, reason: &str) -> f64 {
    let label = [("reason", reason)];
    let e = scrape_until(server.metrics(), Duration::from_secs(5), |e| {
        e.value("cerberus_connections_closed_total", &label) > Some(0.0)
    });
    e.value("cerberus_connections_closed_total", &label)
        .unwrap_or(0.0)
}

#[test]
fn a_body_trickled_at_100_bytes_a_second_is_closed_after_the_window() {
    let server = start();
    let took = trickle_body(&server, 10, Duration::from_secs(15))
        .expect("a 100 B/s body was never cut off");
    eprintln!("slow POST (100 B/s of a 1 MiB body): closed after {took:.1?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(closed_for(&server, "min_body_rate"), 1.0);
}

#[test]
fn a_response_read_at_4_kib_a_second_is_closed_by_the_send_rate() {
    let server = start();
    let (took, got) = read_slowly(&server, 400, Duration::from_secs(30));
    let took = took.expect("a 4 KiB/s reader was never cut off");
    eprintln!("slow read (4 KiB/s of a 1 MiB response): closed after {took:.1?}, {got} bytes read");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(got < MIB, "the whole response was read");
    assert_eq!(closed_for(&server, "min_send_rate"), 1.0);
}

#[test]
fn a_response_read_at_100_bytes_a_second_is_closed_at_the_write_timeout() {
    let server = start();
    let (took, got) = read_slowly(&server, 10, Duration::from_secs(30));
    let took = took.expect("a 100 B/s reader was never cut off");
    eprintln!("slow read (100 B/s of a 1 MiB response): closed after {took:.1?}, {got} bytes read");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(closed_for(&server, "write_timeout"), 1.0);
}

#[test]
fn a_mobile_client_at_16_kib_a_second_is_never_cut_off() {
    let server = start();
    // 1,600 bytes every 100 ms, a little under 16 KiB/s, for 5 s: two and a half windows.
    assert_eq!(trickle_body(&server, 1_600, Duration::from_secs(5)), None);
    let (closed, got) = read_slowly(&server, 1_600, Duration::from_secs(8));
    assert_eq!(closed, None, "the reader was cut off after {got} bytes");
    assert!(got > 60_000, "only {got} bytes in 8 s");
    assert_eq!(closes(&server), 0.0);
}
