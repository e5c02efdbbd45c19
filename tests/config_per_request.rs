//! A request is answered under the config in force when its first byte arrived, however many
//! reloads come before it completes, and its timeouts come from that same config; the
//! connection moves to the newest config between requests.

mod common;

use std::time::{Duration, Instant};

use common::{roundtrip, Server};

/// A whole config whose default response is `body` and whose body timeout is `body_timeout`.
fn config(body: &str, body_timeout: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nworkers = 1\nmetrics_listen = \"off\"\n\
         body_timeout = \"{body_timeout}\"\n[default_response]\nbody = \"{body}\\n\"\n"
    )
}

/// Reload to `config` and wait until the worker serves new connections by it.
fn reload_to(server: &Server, config: &str, body: &str, reloads: usize) {
    server.reload_with(config);
    server.wait_stderr("cerberus: reloaded", reloads);
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("{body}\n");
    while roundtrip(server.addr(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").body != want.as_bytes() {
        assert!(Instant::now() < deadline, "the reload to {body} never took");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_partial_request_keeps_its_config_and_timeouts_through_two_reloads() {
    let server = Server::builder(&config("alpha", "3s"))
        .flags_from_config()
        .start();
    let mut client = server.connect();
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhe");
    std::thread::sleep(Duration::from_millis(50));
    reload_to(&server, &config("bravo", "150ms"), "bravo", 1);
    // More of the body: the deadline restarts, from the request's config (3 s), not bravo's.
    client.send(b"l");
    reload_to(&server, &config("charlie", "150ms"), "charlie", 2);
    // Well past the newer configs' body timeout, well inside the request's own.
    std::thread::sleep(Duration::from_millis(500));
    client.send(b"lo");
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"alpha\n", "answered under another config");
    // An in-place reload keeps the connection; its next request is served by the newest.
    assert_eq!(response.header("Connection"), None);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().body, b"charlie\n");
}

#[test]
fn an_idle_connection_moves_to_the_newest_config_and_its_timeouts() {
    let slow = "listen = \"127.0.0.1:0\"\nworkers = 1\nmetrics_listen = \"off\"\n\
                header_timeout = \"5s\"\n[default_response]\nbody = \"alpha\\n\"\n";
    let quick = slow
        .replace("\"5s\"", "\"200ms\"")
        .replace("alpha", "bravo");
    let server = Server::builder(slow).flags_from_config().start();
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.read_response().body, b"alpha\n");
    reload_to(&server, &quick, "bravo", 1);
    // The next request starts under bravo's config: a head left incomplete gets its 408
    // after bravo's 200 ms, not alpha's 5 s.
    let start = Instant::now();
    client.send(b"GET / HTTP/1.1\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 408);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
