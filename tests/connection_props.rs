//! The connection state machine, driven over a scripted socket (`cerberus::fuzzing`): however
//! the request bytes arrive and however little the socket takes per write, the client gets
//! the same responses as when everything arrives at once, over plain TCP and through the
//! HTTPS connection code. The fuzz targets `fuzz/fuzz_targets/connection.rs` and `tls.rs` run
//! the same oracles on arbitrary bytes.

use proptest::prelude::*;

/// Requests of every shape the connection handles differently: keep-alive and close, bodies
/// by length and chunked (with extensions and trailers), 100-continue, JSON valid and not,
/// shaped bodies, HTTP/1.0, pipelined junk and malformed heads (which end the connection).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        Just(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"GET /inspect?q=1 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec()),
        Just(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": [1]".to_vec()),
        Just(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\":[1]}".to_vec()),
        // Shaped bodies, written from the pattern with their heads (and, in a drip, each
        // piece's CRLF and the last chunk) in the same write: a drip with no interval is
        // due at once, like the body.
        Just(b"GET /shape?size=3000 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"GET /shape?size=700&drip=3x0ms HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        body.clone().prop_map(|b| {
            let mut r = format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .into_bytes();
            r.extend_from_slice(&b);
            r
        }),
        (body.clone(), 1usize..40).prop_map(|(b, piece)| {
            let mut r = b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in b.chunks(piece) {
                r.extend_from_slice(format!("{:x};ext=v\r\n", chunk.len()).as_bytes());
                r.extend_from_slice(chunk);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
            r
        }),
    ]
}

proptest! {
    // Each case is a TLS handshake as well: fewer of them.
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The same oracle through the HTTPS connection code: a real rustls client's records cut
    /// anywhere, the server's writes limited anywhere, TLS 1.3 and 1.2.
    #[test]
    fn over_tls_responses_do_not_depend_on_how_records_arrive_or_leave(
        requests in proptest::collection::vec(request(), 1..6),
        script in proptest::collection::vec(any::<u8>(), 0..120),
        tls12 in any::<bool>(),
    ) {
        cerberus::fuzzing::run_tls(&script, &requests.concat(), tls12);
    }

    /// Anything at all as a TLS client's bytes, in any pieces: no panic, and the connection
    /// ends.
    #[test]
    fn tls_connections_survive_arbitrary_bytes(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        script in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut input = input;
        // Half the cases start like a ClientHello, so the session gets past its first check.
        if input.first().is_some_and(|b| b % 2 == 0) {
            input.splice(0..0, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
        }
        cerberus::fuzzing::tls_bytes(&script, &input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn responses_do_not_depend_on_how_bytes_arrive_or_leave(
        requests in proptest::collection::vec(request(), 1..8),
        script in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        cerberus::fuzzing::run(&script, &requests.concat());
    }
}

/// A head that arrives before its body gets a `100 Continue` that the whole run does not;
/// the final responses must still match.
#[test]
fn a_head_that_arrives_before_its_body_still_gets_the_same_final_response() {
    let request =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello";
    // 0x7e: deliver 64 bytes (the head), then 0x09: 72 bytes of room, then the rest.
    cerberus::fuzzing::run(&[0x7e, 0x09, 0x08], request);
}

/// The oracle can fail: it compares byte for byte, setting aside only `Date` values and
/// `100 Continue`.
#[test]
fn the_oracle_sets_aside_dates_and_continues_but_nothing_else() {
    let a = b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 11:16:08 GMT\r\nContent-Length: 1\r\n\r\nA";
    let b = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 11:16:09 GMT\r\nContent-Length: 1\r\n\r\nA";
    cerberus::fuzzing::assert_same_responses(a, b);
    let c = b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 11:16:08 GMT\r\nContent-Length: 1\r\n\r\nB";
    let differs = std::panic::catch_unwind(|| cerberus::fuzzing::assert_same_responses(a, c));
    assert!(differs.is_err(), "a different body must fail the oracle");
}
