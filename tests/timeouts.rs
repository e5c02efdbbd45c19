//! Timeouts, with short configured values: a head that does not arrive (408), an idle
//! keep-alive connection, a body that stops, a slow-loris head, and a client that never reads.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{default_response, error_response, normalize_date, Server};

/// Slack for timer resolution (10 ms ticks) and a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(700);

/// Connect, send `first` (maybe nothing), and wait for the 408 and the close: how long it took.
fn time_to_408(server: &Server, first: &str) -> Duration {
    let mut c = server.connect();
    let start = Instant::now();
    if !first.is_empty() {
        c.send(first);
    }
    let got = normalize_date(&c.read_to_eof());
    let elapsed = start.elapsed();
    assert_eq!(got, error_response(408, "Request Timeout"));
    elapsed
}

#[test]
fn partial_head_gets_408_then_close_at_header_timeout() {
    let server = Server::start("header_timeout = \"300ms\"");
    let elapsed = time_to_408(&server, "GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(
        elapsed >= Duration::from_millis(280) && elapsed < Duration::from_millis(300) + SLACK,
        "408 after {elapsed:?}"
    );
}

#[test]
fn silent_connection_gets_408_at_header_timeout() {
    let server = Server::start("header_timeout = \"300ms\"\ndefer_accept = false");
    let elapsed = time_to_408(&server, "");
    assert!(elapsed < Duration::from_millis(300) + SLACK, "{elapsed:?}");
}

#[test]
fn with_defer_accept_a_silent_connection_is_taken_after_a_second_then_timed_out() {
    // TCP_DEFER_ACCEPT (the default): the kernel holds a connection that has sent nothing
    // until it retransmits its SYN-ACK, about 1 s later; the header timeout runs from then.
    let server = Server::start("header_timeout = \"300ms\"");
    let elapsed = time_to_408(&server, "");
    assert!(
        elapsed >= Duration::from_millis(1250) && elapsed < Duration::from_millis(1300) + SLACK,
        "{elapsed:?}"
    );
}

#[test]
fn with_defer_accept_a_request_is_answered_at_once() {
    let server = Server::start("");
    for close in [false, true] {
        let mut c = server.connect();
        let start = Instant::now();
        let connection = if close { "Connection: close\r\n" } else { "" };
        c.send(format!("GET / HTTP/1.1\r\nHost: x\r\n{connection}\r\n"));
        let res = c.read_response();
        assert!(
            start.elapsed() < SLACK,
            "answered after {:?}",
            start.elapsed()
        );
        assert_eq!(res.status, 200, "{res:?}");
        if close {
            c.expect_eof_within(SLACK);
        }
    }
}

#[test]
fn idle_keep_alive_connection_is_closed_at_keepalive_timeout() {
    let server = Server::start("keepalive_timeout = \"300ms\"\nheader_timeout = \"10s\"");
    let mut c = server.connect();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().normalized(), default_response(""));
    let waited = c.expect_eof_within(Duration::from_secs(3));
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(300) + SLACK,
        "closed after {waited:?}"
    );
}

#[test]
fn keep_alive_connection_in_use_is_not_closed() {
    // Each request restarts the idle clock: 10 requests 100 ms apart outlive a 300 ms timeout.
    let server = Server::start("keepalive_timeout = \"300ms\"");
    let mut c = server.connect();
    for _ in 0..10 {
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response().normalized(), default_response(""));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stalled_body_is_closed_at_body_timeout_without_a_response() {
    let server =
        Server::start("body_timeout = \"300ms\"\n[[route]]\npath = \"/e\"\nhandler = \"echo\"");
    let mut c = server.connect();
    c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let start = Instant::now();
    let got = c.read_to_eof();
    let elapsed = start.elapsed();
    assert_eq!(normalize_date(&got), "");
    assert!(elapsed < Duration::from_millis(300) + SLACK, "{elapsed:?}");
}

#[test]
fn body_bytes_restart_the_body_timeout() {
    let server =
        Server::start("body_timeout = \"300ms\"\n[[route]]\npath = \"/e\"\nhandler = \"echo\"");
    let mut c = server.connect();
    c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n");
    for b in b"abcdef" {
        std::thread::sleep(Duration::from_millis(150));
        c.send([*b]);
    }
    let res = c.read_response();
    assert_eq!((res.status, res.body.as_slice()), (200, &b"abcdef"[..]));
}

#[test]
fn slow_loris_gets_408_at_header_timeout_despite_trickled_bytes() {
    let server = Server::start("header_timeout = \"500ms\"");
    let c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let head =
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in head {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let start = Instant::now();
    let mut reader = c.stream;
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let arrived = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break start.elapsed(),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // The trickle may race the close into a reset; the response must be complete by then.
            Err(_) if !got.is_empty() => break start.elapsed(),
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(normalize_date(&got), error_response(408, "Request Timeout"));
    assert!(
        arrived >= Duration::from_millis(450) && arrived < Duration::from_millis(500) + SLACK,
        "408 after {arrived:?}; the header deadline must not move with each byte"
    );
    trickle.join().unwrap();
}

#[test]
fn client_that_never_reads_is_closed_at_write_timeout() {
    // One 32 MiB response is more than the socket buffers of both ends hold, so unsent bytes
    // stay queued in the server and the write timeout applies.
    let server =
        Server::builder("write_timeout = \"1s\"\n[default_response]\nbody_file = \"$DIR/big\"")
            .file("big", &vec![b'b'; 32 << 20])
            .start();
    let baseline = server.open_fds();
    let mut stuck = server.connect();
    stuck.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server.open_fds(),
        baseline + 1,
        "the stuck connection is open"
    );
    let start = Instant::now();
    while server.open_fds() > baseline {
        assert!(
            start.elapsed() < Duration::from_secs(1) + SLACK * 2,
            "stuck connection still open after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(700),
        "closed too early"
    );
    // What did arrive is the start of the response; then the connection ends.
    let head = stuck.read_exact_bytes(17);
    assert_eq!(head, b"HTTP/1.1 200 OK\r\n");
}
