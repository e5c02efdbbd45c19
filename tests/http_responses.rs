//! What the server answers, byte for byte: the default response, HEAD, every error status, and
//! the built-in handlers (`static`, `echo`, `inspect`) behind configured routes.

mod common;

use common::{default_response, error_response, roundtrip, roundtrip_to_eof, Server, DATE};
use serde_json::{json, Value};

/// Routes used by most tests here.
const ROUTES: &str = r#"
max_body = 1024

[[route]]
path = "/echo"
handler = "echo"

[[route]]
prefix = "/inspect"
handler = "inspect"

[[route]]
method = "POST"
path = "/submit"
handler = "echo"

[[route]]
method = "GET"
path = "/submit"
body = "form\n"
"#;

#[test]
fn default_response_bytes() {
    let server = Server::start("");
    let res = roundtrip(server.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(res.normalized(), default_response(""));
}

#[test]
fn head_gets_the_get_headers_and_no_body() {
    let server = Server::start("");
    let mut c = server.connect();
    c.send("HEAD /anything HTTP/1.1\r\nHost: x\r\n\r\n");
    let res = c.read_head_response();
    assert_eq!(
        res.normalized(),
        format!(
            "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n\
             Content-Length: 21\r\n\r\n"
        )
    );
    // No body bytes follow: the next response starts right after the head.
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().normalized(), default_response(""));
}

/// Each case: a name, the request bytes, and the status the server must answer (then close).
const ERRORS: &[(&str, &[u8], u16, &str)] = &[
    (
        "garbage request line",
        b"HELLO\r\n\r\n",
        400,
        "Bad Request",
    ),
    (
        "whitespace before colon",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        400,
        "Bad Request",
    ),
    (
        "bare LF",
        b"GET / HTTP/1.1\nHost: x\n\n",
        400,
        "Bad Request",
    ),
    (
        "missing Host on 1.1",
        b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
        400,
        "Bad Request",
    ),
    (
        "two Host headers",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
        "Bad Request",
    ),
    (
        "Content-Length and Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Bad Request",
    ),
    (
        "body over max_body",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n",
        413,
        "Content Too Large",
    ),
    (
        "Expect: something-else",
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n",
        417,
        "Expectation Failed",
    ),
    (
        "Transfer-Encoding: gzip, chunked",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        "Not Implemented",
    ),
    (
        "unknown method BREW",
        b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
        501,
        "Not Implemented",
    ),
    (
        "HTTP/2.0",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        505,
        "HTTP Version Not Supported",
    ),
];

#[test]
fn every_error_status_has_exact_bytes_and_closes() {
    for (name, request, status, reason) in ERRORS {
        // A fresh server per case, so one case cannot affect the next (see
        // `http_framing::an_error_on_one_connection_does_not_affect_the_next`).
        let server = Server::start(ROUTES);
        let got = roundtrip_to_eof(server.addr(), request);
        assert_eq!(got, error_response(*status, reason), "case: {name}");
    }
}

#[test]
fn request_line_over_8_kib_is_414() {
    let server = Server::start("");
    let target = "a".repeat(9 * 1024);
    let request = format!("GET /{target} HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, error_response(414, "URI Too Long"));
}

#[test]
fn head_over_16_kib_is_431() {
    let server = Server::start("");
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        request.push_str(&format!("X-Fill-{i}: {}\r\n", "v".repeat(1000)));
    }
    request.push_str("\r\n");
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, error_response(431, "Request Header Fields Too Large"));
}

#[test]
fn more_than_100_headers_is_431() {
    let server = Server::start("");
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..100 {
        request.push_str(&format!("X-{i}: y\r\n"));
    }
    request.push_str("\r\n");
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, error_response(431, "Request Header Fields Too Large"));
}

#[test]
fn exactly_100_headers_are_accepted() {
    let server = Server::start("");
    let mut request = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..99 {
        request.push_str(&format!("X-{i}: y\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let request = request.replacen("X-98: y\r\n", "", 1);
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, default_response("Connection: close\r\n"));
}

#[test]
fn chunk_line_over_4_kib_is_400_and_trailers_over_8_kib_are_431() {
    let server = Server::start("");
    let long_ext = format!("1;{}=v\r\na\r\n0\r\n\r\n", "e".repeat(5000));
    let request =
        format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{long_ext}");
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, error_response(400, "Bad Request"));

    let server = Server::start("");
    let trailer = format!("X-T: {}\r\n", "t".repeat(1000)).repeat(9);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n{trailer}\r\n"
    );
    let got = roundtrip_to_eof(server.addr(), request.as_bytes());
    assert_eq!(got, error_response(431, "Request Header Fields Too Large"));
}

#[test]
fn method_not_allowed_lists_allow() {
    let server = Server::start(ROUTES);
    let got = roundtrip_to_eof(
        server.addr(),
        b"PUT /submit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        got,
        format!(
            "HTTP/1.1 405 Method Not Allowed\r\nServer: cerberus\r\nDate: {DATE}\r\n\
             Allow: POST, GET, HEAD\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\
             Connection: close\r\n\r\nMethod Not Allowed\n"
        )
    );
    // The allowed methods reach their handlers.
    let res = roundtrip(
        server.addr(),
        b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!((res.status, res.text().as_str()), (200, "hi"));
    let res = roundtrip(server.addr(), b"GET /submit HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((res.status, res.text().as_str()), (200, "form\n"));
}

#[test]
fn invalid_json_is_400_with_its_position() {
    let server = Server::start(ROUTES);
    let body = "{\n  \"a\": 1,\n  \"b\": [1,, 2]\n}";
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = server.connect();
    c.send(&request);
    let res = c.read_response();
    assert_eq!(res.status, 400);
    let doc: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(doc["line"], json!(3));
    assert_eq!(doc["column"], json!(11));
    assert_eq!(doc["error"], json!("expected value at line 3 column 11"));
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error", "line", "column"]);
    let text = res.text();
    assert_eq!(
        res.normalized(),
        format!(
            "HTTP/1.1 400 Bad Request\r\nServer: cerberus\r\nDate: {DATE}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
    );
    // The body was well framed, so the connection stays usable.
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().normalized(), default_response(""));
}

#[test]
fn json_with_invalid_utf8_in_a_string_is_400() {
    let server = Server::start(ROUTES);
    let body: &[u8] = b"{\"name\": \"caf\xe9\"}";
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let res = roundtrip(server.addr(), &request);
    assert_eq!(res.status, 400, "{res:?}");
    let doc: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(
        (&doc["line"], &doc["column"]),
        (&json!(1), &json!(14)),
        "{doc}"
    );
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("invalid unicode code point"),
        "{doc}"
    );
}

#[test]
fn static_route_serves_status_headers_and_body_file() {
    let server = Server::builder(
        r#"
[[route]]
path = "/old"
status = 404
content_type = "text/html"
body_file = "$DIR/page.html"
headers = { "X-Reason" = "moved away", "Cache-Control" = "no-store" }
"#,
    )
    .file("page.html", b"<h1>gone</h1>\n")
    .start();
    let got = roundtrip_to_eof(
        server.addr(),
        b"GET /old HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        got,
        format!(
            "HTTP/1.1 404 Not Found\r\nServer: cerberus\r\nDate: {DATE}\r\n\
             Content-Type: text/html\r\nCache-Control: no-store\r\nX-Reason: moved away\r\n\
             Content-Length: 14\r\nConnection: close\r\n\r\n<h1>gone</h1>\n"
        )
    );
    // Other paths still get the default response.
    let res = roundtrip(server.addr(), b"GET /old/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(res.normalized(), default_response(""));
}

#[test]
fn echo_returns_body_and_content_type() {
    let server = Server::start(ROUTES);
    let res = roundtrip(
        server.addr(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-note; q=1\r\n\
          Content-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(
        res.normalized(),
        format!(
            "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\n\
             Content-Type: text/x-note; q=1\r\nContent-Length: 11\r\n\r\nhello world"
        )
    );
    // Without a Content-Type (and without a body) there is none in the response.
    let res = roundtrip(server.addr(), b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        res.normalized(),
        format!("HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Length: 0\r\n\r\n")
    );
}

#[test]
fn echo_dechunks_a_chunked_request() {
    let server = Server::start(ROUTES);
    let res = roundtrip(
        server.addr(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n\
          5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(
        res.normalized(),
        format!(
            "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\n\
             Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
        )
    );
}

#[test]
fn inspect_describes_the_request_in_order() {
    let server = Server::start(ROUTES);
    let body = r#"{"k": [1, 2], "s": "v"}"#;
    let request = format!(
        "POST /inspect/a%20b?x=1&y HTTP/1.1\r\nHost: example\r\nX-Second: 2\r\n\
         content-type: application/json\r\nX-Dup: a\r\nX-Dup: b\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let res = roundtrip(server.addr(), request.as_bytes());
    assert_eq!(res.status, 200);
    assert_eq!(res.header("Content-Type"), Some("application/json"));
    let expected = json!({
        "method": "POST",
        "target": "/inspect/a%20b?x=1&y",
        "path": "/inspect/a%20b",
        "query": "x=1&y",
        "host": "example",
        "version": "HTTP/1.1",
        "headers": [
            ["Host", "example"],
            ["X-Second", "2"],
            ["content-type", "application/json"],
            ["X-Dup", "a"],
            ["X-Dup", "b"],
            ["Content-Length", body.len().to_string()],
        ],
        "body": body,
        "json": {"k": [1, 2], "s": "v"},
    });
    // Compare the text, so the key order is checked too.
    assert_eq!(res.text(), serde_json::to_string(&expected).unwrap());
}

#[test]
fn inspect_query_is_null_without_question_mark_and_json_null_for_other_types() {
    let server = Server::start(ROUTES);
    let res = roundtrip(
        server.addr(),
        b"PUT /inspect HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    );
    let expected = json!({
        "method": "PUT",
        "target": "/inspect",
        "path": "/inspect",
        "query": null,
        "host": null,
        "version": "HTTP/1.0",
        "headers": [["Content-Length", "3"]],
        "body": "abc",
        "json": null,
    });
    assert_eq!(res.text(), serde_json::to_string(&expected).unwrap());
    // An empty query is a string, not null.
    let res = roundtrip(server.addr(), b"GET /inspect? HTTP/1.1\r\nHost: h\r\n\r\n");
    let doc: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(doc["query"], json!(""));
    assert_eq!(doc["path"], json!("/inspect"));
}
