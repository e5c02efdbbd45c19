//! Load: thousands of concurrent keep-alive connections, and a client that never reads its
//! responses while others are served.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{default_response, Client, Server};

/// Concurrent connections. The test process holds one descriptor per client socket, so this
/// stays well under the 20,000 open-file limit of CI (checked at run time).
const CONNECTIONS: usize = 5_000;
/// Requests per connection.
const ROUNDS: usize = 3;
/// Client threads; each drives its slice of the connections in lock step.
const THREADS: usize = 8;
const _: () = assert!(
    CONNECTIONS % THREADS == 0,
    "every thread gets the same share"
);

/// The soft `RLIMIT_NOFILE` of this process.
fn nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live, properly aligned
    // local of that type.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    limit.rlim_cur
}

/// Open `count` connections, then send one request on each and read every response, `ROUNDS`
/// times. After the first round (failed or not, so the test never hangs on the barrier), every
/// thread waits on `all_open` twice: between the two, the test counts the server's descriptors
/// while every connection is open and idle. Returns the responses checked.
fn drive(addr: SocketAddr, count: usize, all_open: &Barrier) -> usize {
    let mut clients: Vec<Client> = (0..count).map(|_| Client::connect(addr)).collect();
    let expected = default_response("");
    let mut round_trip = |round: usize| -> Result<usize, String> {
        for c in &mut clients {
            c.try_send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .map_err(|e| format!("round {round}: send: {e}"))?;
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let res = c
                .try_read_response(false)
                .map_err(|e| format!("round {round}, connection {i}: {e}"))?;
            if res.normalized() != expected {
                return Err(format!("round {round}, connection {i}: {res:?}"));
            }
        }
        Ok(clients.len())
    };
    let first = round_trip(0);
    all_open.wait();
    all_open.wait();
    let mut checked = first.unwrap_or_else(|e| panic!("{e}"));
    for round in 1..ROUNDS {
        checked += round_trip(round).unwrap_or_else(|e| panic!("{e}"));
    }
    checked
}

#[test]
fn five_thousand_concurrent_keep_alive_connections() {
    let limit = nofile_limit();
    assert!(
        limit >= CONNECTIONS as u64 + 200,
        "RLIMIT_NOFILE {limit} is too low for {CONNECTIONS} client sockets"
    );
    let server = Server::builder("backlog = 8192").workers(2).start();
    let addr = server.addr();
    let start = Instant::now();
    let all_open = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let all_open = all_open.clone();
            std::thread::spawn(move || drive(addr, CONNECTIONS / THREADS, &all_open))
        })
        .collect();
    all_open.wait();
    // Every connection has been answered once and is still open: the server holds a
    // descriptor for each. (A connection is only accepted once it speaks: TCP_DEFER_ACCEPT.)
    let open = server.open_fds();
    assert!(
        open >= CONNECTIONS,
        "server has only {open} descriptors open for {CONNECTIONS} kept-alive connections"
    );
    all_open.wait();
    let checked: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(checked, CONNECTIONS * ROUNDS);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    eprintln!("{CONNECTIONS} connections x {ROUNDS} requests in {took:?}");
}

#[test]
fn a_client_that_never_reads_does_not_grow_memory_or_block_others() {
    let server = Server::builder("write_timeout = \"30s\"").start();
    let before = server.rss_kib();
    let mut stuck = server.connect();
    stuck
        .stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let batch = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1_000);
    // 50,000 pipelined requests, never reading a response. The writes may block once the
    // server stops reading; that is the point.
    let writer = std::thread::spawn(move || {
        for _ in 0..50 {
            if stuck.try_send(&batch).is_err() {
                break;
            }
        }
        stuck
    });
    let started = Instant::now();
    let mut other = server.connect();
    while started.elapsed() < Duration::from_secs(2) {
        other.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(other.read_response().normalized(), default_response(""));
        std::thread::sleep(Duration::from_millis(20));
    }
    let stuck = writer.join().unwrap();
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    // The other client is still served after the stuck one has sent everything it could.
    let mut late = server.connect();
    late.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(late.read_response().normalized(), default_response(""));
    drop(stuck);
}

#[test]
fn connections_past_max_connections_wait_in_the_queue_until_one_closes() {
    let server = Server::start("max_connections = 2");
    let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = server.connect();
    let mut second = server.connect();
    for c in [&mut first, &mut second] {
        c.send(request);
        assert_eq!(c.read_response().status, 200);
    }
    // The third connection completes its handshake in the kernel, but the worker does not
    // take it while two are open: its request waits unanswered.
    let mut third = server.connect();
    third.send(request);
    third.expect_open_for(Duration::from_millis(500));
    drop(first);
    assert_eq!(third.read_response().normalized(), default_response(""));
}

#[test]
fn a_limit_of_one_connection_serves_a_queue_of_one_shot_clients_in_turn() {
    // Each client is accepted, answered and closed before the socket ever enters epoll
    // (TCP_DEFER_ACCEPT), so every close frees the only slot from inside an accept batch.
    let server = Server::start("max_connections = 1");
    let mut clients: Vec<Client> = (0..500)
        .map(|_| {
            let mut c = server.connect();
            c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            c
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let res = c.read_response();
        assert_eq!(res.status, 200, "client {i}: {res:?}");
        c.expect_eof_within(Duration::from_secs(5));
    }
}
