//! Slow clients: thousands of slow-loris heads beside normal keep-alive clients, a body
//! trickled slower than `body_timeout`, a client that trickles bytes but never reads its
//! responses (closed at `write_timeout`: only bytes it takes count as progress), and a
//! pipeline that completes one request and starts the next in every write (never timed out:
//! the head deadline runs from the first byte of the request still incomplete).
//!
//! Run with `--nocapture` to see the keep-alive clients' rps and p99 with and without the attack.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{default_response, normalize_date, Client, Server};

/// Slack for timer resolution (10 ms ticks) and a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(700);
/// One keep-alive request.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// Normal keep-alive clients, one thread each.
const NORMAL: usize = 64;
/// Slow-loris connections. The test process holds one descriptor each, as does the server:
/// both stay well under the 20,000 open-file limit.
const LORIS: usize = 5_000;
/// How long the normal clients are measured, with and without the attack.
const WINDOW: Duration = Duration::from_secs(3);

/// The slow-loris test saturates both cores of a CI machine: the timing tests here wait for it
/// rather than measure a starved server (and it measures rps without them).
static CPU: Mutex<()> = Mutex::new(());

/// Take [`CPU`], even if a test that held it failed.
fn cpu() -> std::sync::MutexGuard<'static, ()> {
    CPU.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the normal clients saw in one measurement window.
struct Load {
    /// Responses received, all checked.
    requests: usize,
    /// The fewest responses one client received (a starved client has 0).
    fewest: usize,
    /// Every failure: a read error, an EOF, or a wrong response.
    errors: Vec<String>,
    /// Latency of one request, 99th percentile.
    p99: Duration,
}

impl Load {
    fn report(&self, label: &str) {
        let rps = self.requests as f64 / WINDOW.as_secs_f64();
        eprintln!(
            "{label}: {} requests in {WINDOW:?} = {rps:.0} rps, p99 {:.2} ms, {} errors, \
             fewest per client {}",
            self.requests,
            self.p99.as_secs_f64() * 1e3,
            self.errors.len(),
            self.fewest
        );
    }
}

/// `NORMAL` keep-alive clients, each sending one GET at a time for `WINDOW`.
fn keep_alive_load(addr: SocketAddr) -> Load {
    let expected = default_response("");
    let results: Vec<(Vec<Duration>, Option<String>)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..NORMAL)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(addr);
                    let mut latencies = Vec::new();
                    let start = Instant::now();
                    while start.elapsed() < WINDOW {
                        let sent = Instant::now();
                        if let Err(e) = c.try_send(GET) {
                            return (latencies, Some(format!("send: {e}")));
                        }
                        match c.try_read_response(false) {
                            Ok(res) if res.normalized() == expected => {}
                            Ok(res) => return (latencies, Some(format!("wrong: {res:?}"))),
                            Err(e) => return (latencies, Some(format!("read: {e}"))),
                        }
                        latencies.push(sent.elapsed());
                    }
                    (latencies, None)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let fewest = results.iter().map(|(l, _)| l.len()).min().unwrap_or(0);
    let errors = results.iter().filter_map(|(_, e)| e.clone()).collect();
    let mut all: Vec<Duration> = results.into_iter().flat_map(|(l, _)| l).collect();
    all.sort_unstable();
    let p99 = all
        .get((all.len() * 99 / 100).min(all.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Load {
        requests: all.len(),
        fewest,
        errors,
        p99,
    }
}

/// Open `LORIS` connections, each with the start of a head that never ends.
fn open_loris(addr: SocketAddr) -> Vec<TcpStream> {
    (0..LORIS)
        .map(|i| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("slow-loris connection {i}: {e}"));
            s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Loris: ")
                .unwrap_or_else(|e| panic!("slow-loris connection {i}: {e}"));
            s
        })
        .collect()
}

#[test]
fn five_thousand_slow_loris_heads_do_not_hurt_keep_alive_clients() {
    let _cpu = cpu();
    // A header timeout longer than the test: the attack holds its connections throughout.
    let server = Server::builder("backlog = 8192\nheader_timeout = \"30s\"")
        .workers(2)
        .start();
    let addr = server.addr();
    let before = keep_alive_load(addr);
    before.report("keep-alive clients without slow-loris");

    let mut loris = open_loris(addr);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let during = std::thread::scope(|s| {
        // One more byte of a header value on every connection, about once a second.
        let trickle = s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let round = Instant::now();
                for l in &mut loris {
                    let _ = l.write_all(b"a");
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
            }
        });
        let load = keep_alive_load(addr);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        trickle.join().unwrap();
        load
    });
    during.report(&format!("keep-alive clients with {LORIS} slow-loris"));
    // The attack was real: the server still holds every slow-loris connection.
    let open = server.open_fds();
    assert!(open >= LORIS, "server holds only {open} descriptors");
    for (label, load) in [("without", &before), ("with", &during)] {
        assert!(
            load.errors.is_empty(),
            "{label} the attack: {:?}",
            load.errors
        );
        assert!(load.fewest > 0, "{label} the attack, a client was starved");
        assert!(
            load.p99 < Duration::from_secs(2),
            "{label}: p99 {:?}",
            load.p99
        );
    }
    drop(loris);
}

#[test]
fn a_body_trickled_slower_than_body_timeout_is_closed_on_time() {
    let _cpu = cpu();
    let server =
        Server::start("body_timeout = \"500ms\"\n[[route]]\npath = \"/e\"\nhandler = \"echo\"");
    let heads = [
        "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        "POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n",
    ];
    for head in heads {
        let mut c = server.connect();
        let mut writer = c.stream.try_clone().unwrap();
        c.send(head);
        let start = Instant::now();
        // A byte every 800 ms: each gap is longer than the body timeout.
        let trickle = std::thread::spawn(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(800));
                if writer.write_all(b"z").is_err() {
                    return;
                }
            }
        });
        let got = c.read_to_eof();
        let elapsed = start.elapsed();
        assert_eq!(
            normalize_date(&got),
            "",
            "{head:?}: no response to half a body"
        );
        assert!(
            elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(500) + SLACK,
            "{head:?}: closed after {elapsed:?}"
        );
        trickle.join().unwrap();
    }
    // The server is unharmed.
    let mut c = server.connect();
    c.send(GET);
    assert_eq!(c.read_response().normalized(), default_response(""));
}

/// A connection whose receive buffer is 4 KiB, so the kernel takes almost nothing from the
/// server once the test stops reading.
fn small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).unwrap();
    stream
}

#[test]
fn a_client_that_trickles_bytes_but_never_reads_is_closed_at_write_timeout() {
    let _cpu = cpu();
    // 64 pipelined GETs of a 256 KiB response: 16 MiB, far more than `max_output` (1 MiB) and
    // the kernel's buffers, so the server's send queue fills and stays full. The requests
    // themselves (under 2 KiB) all reach the server, and so does every later `\r\n`.
    let server =
        Server::builder("write_timeout = \"3s\"\n[default_response]\nbody_file = \"$DIR/big\"")
            .file("big", &vec![b'b'; 256 << 10])
            .start();
    let baseline = server.open_fds();
    let mut stream = small_receive_buffer(server.addr());
    stream.write_all(&GET.repeat(64)).unwrap();
    stream.set_nonblocking(true).unwrap();
    let start = Instant::now();
    while server.open_fds() <= baseline {
        assert!(start.elapsed() < SLACK, "the connection was never accepted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let limit = Duration::from_secs(3) + SLACK * 2;
    let mut trickled = 0;
    let closed_after = loop {
        if server.open_fds() <= baseline {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still open after {:?} with write_timeout = 3s ({trickled} x \\r\\n sent)",
            start.elapsed()
        );
        if start.elapsed() >= Duration::from_secs(trickled + 1) {
            // Never read; keep the connection "active" with an empty line once a second.
            let _ = stream.write(b"\r\n");
            trickled += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("closed after {closed_after:?}, {trickled} x \\r\\n sent");
    assert!(
        closed_after >= Duration::from_millis(2500),
        "closed after {closed_after:?}, before the write timeout"
    );
}

#[test]
fn a_pipeline_that_finishes_a_request_in_every_write_is_never_timed_out() {
    let _cpu = cpu();
    let server = Server::start("header_timeout = \"3s\"");
    let mut c = server.connect();
    // Every write holds the rest of request N and the first 10 bytes of request N+1, so a
    // request is always incomplete, but none is older than 250 ms.
    let next = [&GET[10..], &GET[..10]].concat();
    c.send(&GET[..10]);
    let start = Instant::now();
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(250));
        let at = start.elapsed();
        if let Err(e) = c.try_send(&next) {
            panic!("send after {answered} x 200, at {at:?}: {e}");
        }
        match c.try_read_response(false) {
            Ok(res) => assert_eq!(
                res.status,
                200,
                "after {answered} x 200, at {at:?}: {}",
                res.normalized()
            ),
            Err(e) => panic!("after {answered} x 200, at {at:?}: {e}"),
        }
        answered += 1;
    }
    eprintln!("{answered} x 200 in {:?}", start.elapsed());
    assert!(answered >= 28, "only {answered} responses in 8 s");
}
