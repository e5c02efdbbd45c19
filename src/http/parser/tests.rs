//! Unit tests of the request-head parser.

use super::*;
use crate::http::BodyKind;

fn verdict(input: &[u8]) -> Result<Option<usize>, ParseError> {
    match RequestParser::new().parse(input) {
        Status::Complete(_, n) => Ok(Some(n)),
        Status::Partial => Ok(None),
        Status::Error(e) => Err(e),
    }
}

#[test]
fn parses_a_simple_get() {
    let mut p = RequestParser::new();
    let input =
        b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\nrest";
    let Status::Complete(head, n) = p.parse(input) else {
        panic!("not complete")
    };
    assert_eq!(&input[n..], b"rest");
    assert_eq!(head.method(), "GET");
    assert_eq!(head.target(), "/a/b?x=1&y");
    assert_eq!(head.path(), "/a/b");
    assert_eq!(head.query(), Some("x=1&y"));
    assert_eq!(head.version(), Version::Http11);
    let fields: Vec<_> = head.fields().map(|f| (f.name, f.value)).collect();
    assert_eq!(
        fields,
        vec![
            (&b"Host"[..], &b"example.com"[..]),
            (b"X-Empty", b""),
            (b"X-Pad", b"v")
        ]
    );
    assert_eq!(head.host_count(), 1);
    assert!(head.keep_alive());
    assert_eq!(head.body(), BodyKind::None);
}

#[test]
fn every_split_gives_the_same_result() {
    let input = b"\r\nPOST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello";
    for split in 0..input.len() - 5 {
        let mut p = RequestParser::new();
        assert!(
            matches!(p.parse(&input[..split]), Status::Partial),
            "split {split}"
        );
        let Status::Complete(head, n) = p.parse(input) else {
            panic!("split {split}")
        };
        assert_eq!(n, input.len() - 5);
        assert_eq!(head.body(), BodyKind::Length(5));
        assert!(head.keep_alive());
        assert_eq!(head.version(), Version::Http10);
    }
}

#[test]
fn rejects_each_rule_with_its_own_kind() {
    use ParseError::*;
    let cases: &[(&[u8], ParseError)] = &[
        (b"G(T / HTTP/1.1\r\n\r\n", InvalidMethod),
        (b"FOO / HTTP/1.1\r\n\r\n", UnknownMethod),
        (b"GET /a#b HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET /\x7f HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET  / HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
        (b"GET / HTTP/0.9\r\n\r\n", UnsupportedVersion),
        (b"GET / HTTP/1.10\r\n\r\n", InvalidVersion),
        (b"GET admin HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET x:80 HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET ftp://x/ HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET http://u@x/ HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET http:///a HTTP/1.1\r\n\r\n", InvalidTarget),
        (b"GET * HTTP/1.1\r\n\r\n", AsteriskNotOptions),
        (b"HEAD * HTTP/1.1\r\n\r\n", AsteriskNotOptions),
        (b"CONNECT x:443 HTTP/1.1\r\n\r\n", ConnectNotSupported),
        (b"CONNECT / HTTP/1.1\r\n\r\n", ConnectNotSupported),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n", DuplicateHost),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: u@a\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a:xyz\r\n", InvalidHost),
        (b"GET / HTTP/1.x\r\n\r\n", InvalidVersion),
        (b"GET / FTP/1.1\r\n\r\n", InvalidVersion),
        (b"GET /\r\n\r\n", InvalidVersion),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", BareLf),
        (b"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\n: a\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon),
        (b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", ObsFold),
        (b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", BareCr),
        (b"GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", BareLf),
        (b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", InvalidHeaderValue),
        (b"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", InvalidHeaderValue),
        (
            b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            InvalidContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            InvalidContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
            ContentLengthOverflow,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
            ConflictingContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n",
            TransferEncodingWithContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n",
            TransferEncodingWithContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            ChunkedNotLast,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n",
            ChunkedNotLast,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            UnsupportedTransferCoding,
        ),
        (
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            DuplicateChunked,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            verdict(input),
            Err(*want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn enforces_limits_without_reading_past_them() {
    let mut line = b"GET /".to_vec();
    line.resize(MAX_REQUEST_LINE + 1, b'a');
    assert_eq!(verdict(&line), Err(ParseError::RequestLineTooLong));
    line.truncate(MAX_REQUEST_LINE - 20);
    line.extend_from_slice(b" HTTP/1.1\r\n");
    assert_eq!(verdict(&line), Ok(None));

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    assert_eq!(verdict(&many), Err(ParseError::TooManyHeaders));

    let mut big = b"GET / HTTP/1.1\r\n".to_vec();
    while big.len() < MAX_HEAD {
        big.extend_from_slice(format!("X-Pad: {}\r\n", "p".repeat(400)).as_bytes());
    }
    assert_eq!(verdict(&big), Err(ParseError::HeadTooLarge));
}

#[test]
fn connection_semantics() {
    let keep = |input: &[u8]| match RequestParser::new().parse(input) {
        Status::Complete(head, _) => head.keep_alive(),
        other => panic!("{other:?}"),
    };
    assert!(keep(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!keep(b"GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n"));
    assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    let mut p = RequestParser::new();
    let Status::Complete(head, _) = p.parse(
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    ) else {
        panic!()
    };
    assert_eq!(head.expect(), Expect::Continue);
    assert_eq!(head.host_count(), 1);
    assert_eq!(head.body(), BodyKind::Chunked);
}

/// (path, query, host) of a complete head.
fn target_parts(input: &[u8]) -> (String, Option<String>, Option<String>) {
    let mut p = RequestParser::new();
    let Status::Complete(head, _) = p.parse(input) else {
        panic!("not complete: {:?}", String::from_utf8_lossy(input))
    };
    let own = |s: Option<&str>| s.map(str::to_string);
    (head.path().into(), own(head.query()), own(head.host()))
}

#[test]
fn absolute_form_routes_on_its_path_and_its_authority_is_the_host() {
    let parts = |path: &str, query: Option<&str>, host: &str| {
        (path.into(), query.map(Into::into), Some(host.into()))
    };
    let cases: &[(&[u8], _)] = &[
        (
            b"GET http://x/admin/x HTTP/1.1\r\nHost: other\r\n\r\n",
            parts("/admin/x", None, "x"),
        ),
        (
            b"GET HTTPS://a.example:8443/p?q=1 HTTP/1.1\r\nHost: b\r\n\r\n",
            parts("/p", Some("q=1"), "a.example:8443"),
        ),
        (
            b"GET http://x HTTP/1.1\r\nHost: x\r\n\r\n",
            parts("/", None, "x"),
        ),
        (
            b"GET http://x?a=b HTTP/1.1\r\nHost: x\r\n\r\n",
            parts("/", Some("a=b"), "x"),
        ),
        (
            b"GET http://[::1]:80/a HTTP/1.0\r\n\r\n",
            parts("/a", None, "[::1]:80"),
        ),
        (
            b"GET /o?x HTTP/1.1\r\nHost: h:1\r\n\r\n",
            parts("/o", Some("x"), "h:1"),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            &target_parts(input),
            want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // The whole target is still reported as received.
    let mut p = RequestParser::new();
    let Status::Complete(head, _) = p.parse(b"GET http://x HTTP/1.1\r\n\r\n") else {
        panic!()
    };
    assert_eq!(head.target(), "http://x");
    assert_eq!(head.path_bytes(), b"/");
    assert!(!head.is_asterisk());
}

#[test]
fn a_request_without_absolute_form_takes_its_host_from_the_field() {
    assert_eq!(target_parts(b"GET / HTTP/1.0\r\n\r\n").2, None);
    assert_eq!(
        target_parts(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").2,
        Some(String::new())
    );
    // The previous request's Host and authority do not leak into the next.
    let mut p = RequestParser::new();
    let input = b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let Status::Complete(_, n) = p.parse(input) else {
        panic!()
    };
    let Status::Complete(head, _) = p.parse(&input[n..]) else {
        panic!()
    };
    assert_eq!((head.host(), head.host_count()), (None, 0));
}

#[test]
fn options_may_use_the_asterisk_form() {
    let mut p = RequestParser::new();
    let Status::Complete(head, _) = p.parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n") else {
        panic!()
    };
    assert!(head.is_asterisk());
    assert_eq!((head.path(), head.host()), ("*", Some("x")));
}

#[test]
fn a_higher_minor_version_is_http11() {
    for minor in b'1'..=b'9' {
        let input = [b"GET / HTTP/1.", &[minor][..], b"\r\n\r\n"].concat();
        let mut p = RequestParser::new();
        let Status::Complete(head, _) = p.parse(&input) else {
            panic!("{minor}")
        };
        assert_eq!(head.version(), Version::Http11);
        assert!(head.keep_alive());
    }
}

#[test]
fn a_head_request_is_recognised_even_when_invalid() {
    assert!(is_head_request(b"HEAD * HTTP/1.1\r\n"));
    assert!(is_head_request(b"\r\n\r\nHEAD / HTTP/1.1\r\nHost: a b\r\n"));
    for other in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"HEADER / HTTP/1.1",
        b"HEAD",
        b"\nHEAD /",
        b"",
    ] {
        assert!(!is_head_request(other), "{other:?}");
    }
}

#[test]
fn an_origin_form_target_that_contains_a_scheme_separator_is_still_a_path() {
    let mut p = RequestParser::new();
    let input = b"GET /://x/y?q HTTP/1.1\r\nHost: h\r\n\r\n";
    let Status::Complete(head, _) = p.parse(input) else {
        panic!("not complete");
    };
    assert_eq!((head.path(), head.query()), ("/://x/y", Some("q")));
    assert_eq!(head.host(), Some("h"));
}
