//! How requests are framed on a connection: pipelining, partial writes, chunked bodies,
//! `Expect: 100-continue`, keep-alive and `Connection` handling, and the body limit.

mod common;

use std::time::Duration;

use common::{default_response, error_response, roundtrip_to_eof, Server, DATE};
use serde_json::Value;

/// Echo and inspect routes, and a small body limit.
const ROUTES: &str = r#"
max_body = 64

[[route]]
prefix = "/echo"
handler = "echo"

[[route]]
prefix = "/inspect"
handler = "inspect"
"#;

const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The exact bytes of an echo response with this body and no Content-Type.
fn echo_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post_echo(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn sixteen_pipelined_requests_are_answered_in_order() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    let mut batch = String::new();
    for i in 0..16 {
        match i % 3 {
            0 => batch.push_str(&post_echo(&format!("/echo/{i}"), &format!("body {i}"))),
            1 => batch.push_str(&format!("GET /inspect/{i} HTTP/1.1\r\nHost: x\r\n\r\n")),
            _ => batch.push_str(GET),
        }
    }
    c.send(&batch);
    for i in 0..16 {
        let res = c.read_response();
        match i % 3 {
            0 => assert_eq!(res.normalized(), echo_response(&format!("body {i}"))),
            1 => {
                let doc: Value = serde_json::from_slice(&res.body).unwrap();
                assert_eq!(doc["path"], format!("/inspect/{i}"), "response {i}");
            }
            _ => assert_eq!(res.normalized(), default_response(""), "response {i}"),
        }
    }
    // Nothing more: the connection is idle and open.
    c.expect_open_for(Duration::from_millis(200));
}

#[test]
fn pipelined_requests_beyond_max_output_are_all_answered() {
    // 500 requests in one write produce ~60 KB of responses, far over max_output: the server
    // must pause reading, then resume once the client has read what was queued.
    let server = Server::start("max_output = 4096\nheader_timeout = \"30s\"");
    let mut c = server.connect();
    c.send(GET.repeat(500));
    for i in 0..500 {
        let res = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(res.normalized(), default_response(""), "response {i}");
    }
}

#[test]
fn a_request_written_one_byte_at_a_time() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    let request = post_echo("/echo", "slow body");
    for b in request.as_bytes() {
        c.send([*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.read_response().normalized(), echo_response("slow body"));
}

#[test]
fn chunked_body_in_pieces() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send("4\r\nWiki\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send("5\r\npedia\r");
    std::thread::sleep(Duration::from_millis(50));
    c.send("\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n");
    assert_eq!(
        c.read_response().normalized(),
        echo_response("Wikipedia in\r\n\r\nchunks.")
    );
    c.send(GET);
    assert_eq!(c.read_response().normalized(), default_response(""));
}

#[test]
fn expect_100_continue_then_body() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(c.read_exact_bytes(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send("hello");
    assert_eq!(c.read_response().normalized(), echo_response("hello"));
}

#[test]
fn expect_100_continue_over_the_limit_is_413_without_the_body() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n");
    assert_eq!(
        common::normalize_date(&c.read_to_eof()),
        error_response(413, "Content Too Large")
    );
}

#[test]
fn body_limit_is_inclusive_for_content_length_and_chunked() {
    let server = Server::start(ROUTES);
    let max = "m".repeat(64);
    let mut c = server.connect();
    c.send(post_echo("/echo", &max));
    assert_eq!(c.read_response().normalized(), echo_response(&max));

    let over = "o".repeat(65);
    let got = roundtrip_to_eof(server.addr(), post_echo("/echo", &over).as_bytes());
    assert_eq!(got, error_response(413, "Content Too Large"));

    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         20\r\n{a}\r\n21\r\n{b}\r\n0\r\n\r\n",
        a = "a".repeat(32),
        b = "b".repeat(33)
    );
    let got = roundtrip_to_eof(server.addr(), chunked.as_bytes());
    assert_eq!(got, error_response(413, "Content Too Large"));
}

#[test]
fn one_mib_body_is_echoed_whole() {
    // The default max_body (1 MiB) and max_output (1 MiB): the largest body allowed, read over
    // many socket reads, and a response as large as the output limit.
    let server = Server::start("[[route]]\npath = \"/echo\"\nhandler = \"echo\"");
    let body: String = (0..1 << 20)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut c = server.connect();
    let writer_stream = c.stream.try_clone().unwrap();
    let request = post_echo("/echo", &body);
    let writer = std::thread::spawn(move || {
        let mut w = writer_stream;
        std::io::Write::write_all(&mut w, request.as_bytes()).unwrap();
    });
    let res = c.read_response();
    writer.join().unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("Content-Length"), Some("1048576"));
    assert!(res.body == body.as_bytes(), "body differs");
    c.send(GET);
    assert_eq!(c.read_response().normalized(), default_response(""));
}

#[test]
fn expect_100_continue_with_a_chunked_body() {
    let server = Server::start(ROUTES);
    let mut c = server.connect();
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(c.read_exact_bytes(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send("3\r\nabc\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send("0\r\n\r\n");
    assert_eq!(c.read_response().normalized(), echo_response("abc"));
}

#[test]
fn keep_alive_for_1000_requests() {
    let server = Server::start("");
    let mut c = server.connect();
    for i in 0..1000 {
        c.send(GET);
        let res = c.read_response();
        assert_eq!(res.normalized(), default_response(""), "request {i}");
    }
}

#[test]
fn http_1_0_closes_after_the_response() {
    let server = Server::start("");
    let got = roundtrip_to_eof(server.addr(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(got, default_response("Connection: close\r\n"));
}

#[test]
fn http_1_0_keep_alive_stays_open() {
    let server = Server::start("");
    let mut c = server.connect();
    for _ in 0..3 {
        c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            c.read_response().normalized(),
            default_response("Connection: keep-alive\r\n")
        );
    }
    c.expect_open_for(Duration::from_millis(200));
}

#[test]
fn connection_close_on_1_1_closes() {
    let server = Server::start("");
    let got = roundtrip_to_eof(
        server.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(got, default_response("Connection: close\r\n"));
}

#[test]
fn requests_after_connection_close_are_not_answered() {
    let server = Server::start("");
    let got = roundtrip_to_eof(
        server.addr(),
        format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{GET}{GET}").as_bytes(),
    );
    assert_eq!(got, default_response("Connection: close\r\n"));
}

#[test]
fn client_half_close_after_its_responses_gets_eof() {
    let server = Server::start("");
    let mut c = server.connect();
    c.send(format!("{GET}{GET}"));
    let first = c.read_response();
    let second = c.read_response();
    assert_eq!(first.normalized(), default_response(""));
    assert_eq!(second.normalized(), default_response(""));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_eof_within(Duration::from_secs(2));
}

#[test]
fn client_half_close_still_gets_its_responses_then_eof() {
    let server = Server::start("");
    let mut c = server.connect();
    c.send(format!("{GET}{GET}"));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let got = common::normalize_date(&c.read_to_eof());
    assert_eq!(got, default_response("").repeat(2));
}

#[test]
fn an_error_on_one_connection_does_not_affect_the_next() {
    let server = Server::start("");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    let got = roundtrip_to_eof(server.addr(), many.as_bytes());
    assert_eq!(got, error_response(431, "Request Header Fields Too Large"));
    // A new, valid request on another connection.
    let got = roundtrip_to_eof(
        server.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(got, default_response("Connection: close\r\n"));
}

#[test]
fn partial_heads_on_two_connections_do_not_mix() {
    let server = Server::start(ROUTES);
    let mut a = server.connect();
    let mut b = server.connect();
    a.send("GET /inspect/a HTTP/1.1\r\nHost: a\r\nX-From: a\r\n");
    std::thread::sleep(Duration::from_millis(50));
    b.send("GET /inspect/bbbbbbbb HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(50));
    b.send("Host: b\r\nX-From: b\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    a.send("\r\n");
    for (c, who) in [(&mut a, "a"), (&mut b, "b")] {
        let res = c.read_response();
        assert_eq!(res.status, 200, "{who}: {}", res.normalized());
        let doc: Value = serde_json::from_slice(&res.body).unwrap();
        let path = if who == "a" {
            "/inspect/a"
        } else {
            "/inspect/bbbbbbbb"
        };
        assert_eq!(doc["path"], path);
        assert_eq!(
            doc["headers"],
            serde_json::json!([["Host", who], ["X-From", who]])
        );
    }
}
