//! JSON bodies over a real socket: the verdict and the 400's bytes do not depend on how the
//! body arrived. The server validates a body once it is complete, so a body sent whole, in
//! small pieces (each its own read), or in chunks cut inside an escape or a UTF-8 sequence,
//! gets the same answer byte for byte.

mod common;

use common::{Client, Response, Server};
use std::thread::sleep;
use std::time::Duration;

const CONFIG: &str = r#"
max_body = 65536

[[route]]
path = "/echo"
handler = "echo"
"#;

/// The 921-byte body of `compare.py`'s post-json scenario.
const POST_JSON: &[u8] = include_bytes!("data/post-json.json");

/// Pieces this small, with a pause between them, reach the server as separate reads.
const PIECE: usize = 7;

/// The request head for a JSON body of `len` bytes.
fn head(len: usize) -> String {
    format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
}

/// Send `bytes` in `PIECE`-byte writes, pausing between them, and read the response.
fn send_in_pieces(c: &mut Client, bytes: &[u8]) -> Response {
    for piece in bytes.chunks(PIECE) {
        c.send(piece);
        sleep(Duration::from_millis(1));
    }
    c.read_response()
}

/// The response to a request for `body`, sent whole, and sent in small pieces; they must be
/// the same bytes (but for the Date).
fn whole_and_in_pieces(server: &Server, request: &[u8]) -> Response {
    let mut c = server.connect();
    c.send(request);
    let whole = c.read_response();
    let pieces = send_in_pieces(&mut c, request);
    assert_eq!(pieces.normalized(), whole.normalized());
    whole
}

fn request(body: &[u8]) -> Vec<u8> {
    [head(body.len()).as_bytes(), body].concat()
}

#[test]
fn a_valid_body_is_accepted_however_it_arrives() {
    let server = Server::start(CONFIG);
    let res = whole_and_in_pieces(&server, &request(POST_JSON));
    assert_eq!((res.status, &res.body[..]), (200, POST_JSON));
    let tricky = "{\"caf\u{e9}\": \"\\u00e9\\ud83d\\ude00 \u{1F600}\", \"n\": -0.5e+3}".as_bytes();
    let res = whole_and_in_pieces(&server, &request(tricky));
    assert_eq!((res.status, &res.body[..]), (200, tricky));
}

#[test]
fn an_invalid_body_gets_the_same_400_however_it_arrives() {
    let server = Server::start(CONFIG);
    // The error is in the last bytes: the array is closed by `}`.
    let mut body = POST_JSON.to_vec();
    let n = body.len();
    body[n - 2] = b'}';
    let res = whole_and_in_pieces(&server, &request(&body));
    assert_eq!(res.status, 400);
    assert_eq!(
        res.text(),
        format!(
            r#"{{"error":"expected `,` or `]` at line 1 column {}","line":1,"column":{}}}"#,
            n - 1,
            n - 1
        )
    );
    // Invalid UTF-8 in a string.
    let res = whole_and_in_pieces(&server, &request(b"[\"caf\xe9\"]"));
    assert_eq!(res.status, 400);
}

#[test]
fn chunks_cut_inside_an_escape_or_a_utf8_sequence_change_nothing() {
    let server = Server::start(CONFIG);
    let body = "[\"\\u00e9\u{e9}\"]".as_bytes();
    // Cut after `[\"\\u0` (inside the escape) and after the first byte of `é`.
    let (a, rest) = body.split_at(5);
    let (b, c) = rest.split_at(4);
    assert_eq!(b.last(), Some(&0xc3));
    let mut chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for chunk in [a, b, c] {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let res = whole_and_in_pieces(&server, &chunked);
    assert_eq!((res.status, &res.body[..]), (200, body));
    // The same cuts in a body with a bad escape: a 400, however it arrives.
    let mut bad = chunked;
    let u = common::find(&bad, b"\\u0").expect("the escape") + 1;
    bad[u] = b'x';
    let res = whole_and_in_pieces(&server, &bad);
    assert_eq!(res.status, 400, "{res:?}");
}
