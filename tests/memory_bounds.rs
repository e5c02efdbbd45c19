//! Memory bounds: what hostile requests and clients cost the server, measured as
//! the growth of its peak RSS (`VmHWM`) over the peak after start-up. Each test starts its own
//! server, so each peak is that test's alone; run with `--nocapture` to see them.
//!
//! The rule: bytes past a limit are never held, and a client that does not read holds at most
//! `max_output` of responses (plus one read buffer of requests).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{default_response, error_response, normalize_date, Client, Server};

/// An echo route, so a body that is accepted comes back and can be checked.
const ECHO: &str = "[[route]]\npath = \"/e\"\nhandler = \"echo\"";
/// One keep-alive request.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// Allocator and debug-build noise allowed on top of what a test's bound names.
const NOISE_KIB: u64 = 4 * 1024;

/// Start a server and answer one request, so that every buffer allocated on first use
/// exists; returns the server and its peak RSS then.
fn warmed(server: Server) -> (Server, u64) {
    let mut c = server.connect();
    c.send(GET);
    assert_eq!(c.read_response().normalized(), default_response(""));
    let baseline = server.peak_rss_kib();
    (server, baseline)
}

/// The growth of the peak RSS over `baseline`, in KiB, printed with `label`.
fn peak_growth(server: &Server, baseline: u64, label: &str) -> u64 {
    let peak = server.peak_rss_kib();
    let grown = peak.saturating_sub(baseline);
    eprintln!("{label}: peak RSS {peak} KiB, baseline {baseline} KiB, +{grown} KiB");
    grown
}

/// Send `head`, then `body` in 64 KiB writes from another thread (stopping at the first write
/// error: the server may close once it has answered), and read the response to EOF.
fn send_and_read_to_eof(c: &mut Client, head: &[u8], body: Vec<u8>) -> String {
    c.send(head);
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for piece in body.chunks(64 << 10) {
            if writer.write_all(piece).is_err() {
                return;
            }
        }
    });
    let got = normalize_date(&c.read_to_eof());
    sender.join().unwrap();
    got
}

#[test]
fn a_10_mb_body_against_the_1_mib_limit_gets_413_and_is_never_held() {
    let (server, baseline) = warmed(Server::start(ECHO));
    let body = vec![b'x'; 10_000_000];
    let head = format!(
        "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let got = send_and_read_to_eof(&mut server.connect(), head.as_bytes(), body.clone());
    assert_eq!(got, error_response(413, "Content Too Large"));
    let by_length = peak_growth(&server, baseline, "10 MB body, Content-Length");

    // Chunked, the size is only known as it arrives: at most `max_body` decoded bytes are kept.
    let mut chunked = Vec::new();
    for piece in body.chunks(60_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let got = send_and_read_to_eof(&mut server.connect(), head.as_bytes(), chunked);
    assert_eq!(got, error_response(413, "Content Too Large"));
    let by_chunks = peak_growth(&server, baseline, "10 MB body, chunked");
    assert!(
        by_length < NOISE_KIB,
        "+{by_length} KiB for a rejected body"
    );
    // The decoded body up to the limit, and as much encoded input again.
    assert!(by_chunks < 2 * 1024 + NOISE_KIB, "+{by_chunks} KiB");
}

#[test]
fn a_100_kb_request_line_gets_414() {
    let (server, baseline) = warmed(Server::start(""));
    let head = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let got = send_and_read_to_eof(&mut server.connect(), head.as_bytes(), Vec::new());
    assert_eq!(got, error_response(414, "URI Too Long"));
    let grown = peak_growth(&server, baseline, "100 KB request line");
    assert!(grown < NOISE_KIB, "+{grown} KiB");
}

#[test]
fn ten_thousand_headers_get_431() {
    let (server, baseline) = warmed(Server::start(""));
    let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        head.push_str(&format!("X-Field-{i}: value\r\n"));
    }
    head.push_str("\r\n");
    let got = send_and_read_to_eof(&mut server.connect(), head.as_bytes(), Vec::new());
    assert_eq!(got, error_response(431, "Request Header Fields Too Large"));
    let grown = peak_growth(&server, baseline, "10,000 header fields");
    assert!(grown < NOISE_KIB, "+{grown} KiB");
}

#[test]
fn a_1_gb_chunk_size_gets_413_without_allocating_it() {
    let (server, baseline) = warmed(Server::start(ECHO));
    let head = "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n";
    let got = send_and_read_to_eof(&mut server.connect(), head.as_bytes(), vec![b'y'; 1 << 20]);
    assert_eq!(got, error_response(413, "Content Too Large"));
    let grown = peak_growth(&server, baseline, "1 GB chunk size");
    assert!(grown < NOISE_KIB, "+{grown} KiB");
}

/// One chunk of one data byte behind a 4,000-byte extension: 4,011 encoded bytes.
fn extension_unit() -> Vec<u8> {
    format!("1;e={}\r\nA\r\n", "x".repeat(4000)).into_bytes()
}

#[test]
fn a_chunk_extension_flood_is_not_buffered() {
    const BLOCK_UNITS: usize = 1_000;
    const BLOCKS: usize = 52;
    let (server, baseline) = warmed(Server::start(ECHO));
    let block = extension_unit().repeat(BLOCK_UNITS);
    let mut c = server.connect();
    c.send("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut writer = c.stream.try_clone().unwrap();
    let start = Instant::now();
    // About 208 MB in 4 MB writes; stop early if the server closes, or after 30 s.
    let sender = std::thread::spawn(move || {
        for _ in 0..BLOCKS {
            if start.elapsed() > Duration::from_secs(30) || writer.write_all(&block).is_err() {
                return false;
            }
        }
        writer.write_all(b"0\r\n\r\n").is_ok()
    });
    c.set_read_timeout(Duration::from_secs(40));
    let res = c.try_read_response(false);
    let sent_all = sender.join().unwrap();
    let grown = peak_growth(&server, baseline, "chunk-extension flood (~208 MB)");
    eprintln!(
        "flood took {:?}; all sent: {sent_all}; response: {:?}",
        start.elapsed(),
        res.as_ref().map(|r| r.status)
    );
    // Either the decoded body (52,000 bytes) comes back, or the encoded size has a limit
    // of its own and the request is refused. What must not happen is holding the encoding.
    match res {
        Ok(r) if r.status == 200 => assert_eq!(r.body, vec![b'A'; BLOCK_UNITS * BLOCKS]),
        Ok(r) => assert!((400..500).contains(&r.status), "{}", r.normalized()),
        Err(e) => panic!("no response: {e}"),
    }
    assert!(grown < 20 * 1024, "+{grown} KiB for 52 KB of data");
}

#[test]
fn ten_thousand_pipelined_requests_read_slowly() {
    let (server, baseline) = warmed(Server::start(""));
    let mut c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    // 270 KB of requests; the writes block whenever the server stops reading.
    let sender = std::thread::spawn(move || writer.write_all(&GET.repeat(10_000)).is_ok());
    let expected = default_response("");
    for i in 0..10_000 {
        if i % 100 == 99 {
            // About 650 KB/s: far slower than the server answers.
            std::thread::sleep(Duration::from_millis(20));
        }
        let res = c.read_response();
        assert_eq!(res.normalized(), expected, "response {i}");
    }
    assert!(sender.join().unwrap(), "the requests could not all be sent");
    let grown = peak_growth(&server, baseline, "10,000 pipelined requests read slowly");
    // At most `max_output` (1 MiB) of responses waits for the client.
    assert!(grown < 1024 + NOISE_KIB, "+{grown} KiB");
}

#[test]
fn fifty_clients_that_never_read_hold_at_most_max_output_each() {
    const CLIENTS: u64 = 50;
    const MAX_OUTPUT_KIB: u64 = 256;
    // 300 requests for a 16 KiB response: 4.8 MB per client, more than the kernel's buffers
    // take, so each connection reaches `max_output` (256 KiB here, to make the bound tight).
    let config = format!(
        "max_output = {}\nwrite_timeout = \"30s\"\n[default_response]\nbody_file = \"$DIR/body\"",
        MAX_OUTPUT_KIB * 1024
    );
    let server = Server::builder(&config)
        .file("body", &[b'b'; 16 << 10])
        .start();
    let mut warm = server.connect();
    warm.send(GET);
    assert_eq!(warm.read_response().status, 200);
    let baseline = server.peak_rss_kib();
    let stuck: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let mut c = server.connect();
            c.send(GET.repeat(300));
            c
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // Others are still served.
    warm.send(GET);
    let res = warm.read_response();
    assert_eq!((res.status, res.body.len()), (200, 16 << 10));
    let grown = peak_growth(&server, baseline, "50 clients that never read");
    // `max_output` of responses, one response being built, and one 64 KiB read each.
    let bound = CLIENTS * (MAX_OUTPUT_KIB + 16 + 64) + NOISE_KIB;
    assert!(grown < bound, "+{grown} KiB, bound {bound} KiB");
    drop(stuck);
}
