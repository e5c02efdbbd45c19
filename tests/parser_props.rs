//! Property tests of the request parser and the chunked decoder.
//!
//! Valid requests (and pipelined runs of them) are generated as values, serialized to bytes,
//! and parsed back: the result must equal what was generated, whether the bytes arrive whole,
//! split in two, or in random pieces. Arbitrary and mutated bytes must never panic, never
//! complete a head longer than [`MAX_HEAD`], and never wait for more once a limit is passed.

use cerberus::http::{
    BodyKind, Chunk, ChunkedDecoder, RequestParser, Status, Version, MAX_CHUNK_LINE, MAX_HEAD,
    MAX_REQUEST_LINE, MAX_TRAILERS,
};
use proptest::prelude::*;
use proptest::sample::Index;

#[path = "common/driver.rs"]
mod driver;

use driver::{Config, Message, Outcome};

/// Largest de-chunked body the driver accepts.
const MAX_BODY: u64 = 1 << 16;

/// A server's view of one connection that keeps pipelining whatever `keep_alive` says, so that
/// every byte gets parsed; the messages record `keep_alive` for the round-trip check.
const CONFIG: Config = Config {
    max_body: MAX_BODY,
    honour_close: false,
};

/// Feed `input` in pieces ending at each of `cuts` (any order, any value), then whole.
fn run(input: &[u8], cuts: &[usize]) -> Outcome {
    driver::run(input, cuts, CONFIG)
}

/// A generated request: the values the parser must report, and how to write them.
#[derive(Debug, Clone)]
struct Request {
    leading_crlfs: usize,
    method: &'static str,
    target: String,
    version: Version,
    /// A `Host` field's value, and where among the ordinary fields it goes.
    host: Option<(String, Index)>,
    /// Ordinary fields: name, value, and the whitespace written before and after the value.
    fields: Vec<(String, Vec<u8>, String, String)>,
    connection: Option<&'static str>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// The body, the `Content-Length` digits' leading zeros, and where the field goes.
    Length(Vec<u8>, usize, Index),
    /// Chunks (data, size written in upper case, leading zeros, extensions), the last chunk's
    /// extensions, and the trailers.
    Chunked(
        Vec<(Vec<u8>, bool, usize, String)>,
        String,
        Vec<(String, Vec<u8>)>,
    ),
}

/// Methods of valid requests. Not CONNECT, which the parser refuses (we are no proxy).
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "M-SEARCH",
    "QUERY", "PURGE",
];

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}"
}

/// A field name that has no meaning to the parser's framing, connection or Host logic.
fn plain_name() -> impl Strategy<Value = String> {
    prop_oneof![token(), Just("Accept".to_string())].prop_filter(
        "framing fields and Host are generated separately",
        |n| {
            !["content-length", "transfer-encoding", "connection", "host"]
                .iter()
                .any(|s| n.eq_ignore_ascii_case(s))
        },
    )
}

/// A valid `Host` value: `uri-host [ ":" port ]`, possibly empty.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9._~!$&'()*+,;=-]{1,12}(:[0-9]{0,5})?",
        1 => Just(String::new()),
        1 => "(%[0-9a-fA-F]{2}){1,3}",
        1 => "\\[(::1|2001:db8::[0-9a-f]{1,4}|v1\\.[a-z:]{1,5})\\](:[0-9]{1,5})?",
    ]
}

/// A field value without surrounding whitespace: visible ASCII, obs-text, inner SP/HTAB.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let visible = prop_oneof![0x21u8..=0x7E, 0x80u8..=0xFF];
    let inner =
        prop_oneof![4 => 0x21u8..=0x7E, 1 => 0x80u8..=0xFF, 1 => Just(b' '), 1 => Just(b'\t')];
    prop_oneof![
        Just(Vec::new()),
        (
            visible.clone(),
            prop::collection::vec(inner, 0..30),
            visible
        )
            .prop_map(|(a, mid, z)| [vec![a], mid, vec![z]].concat()),
    ]
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

/// A target in origin-, asterisk- or absolute-form (any case of scheme, maybe empty path).
fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "/[!-\"$-~]{0,40}",
        1 => Just("*".to_string()),
        1 => "[hH][tT][tT][pP][sS]?://[a-z]{1,10}\\.example(:[0-9]{1,5})?(/[a-z?=&]{0,10})?(\\?[a-z=&]{0,5})?",
    ]
}

/// Chunk extensions, e.g. ` ; a = b;c="x\"y"`.
fn extensions() -> impl Strategy<Value = String> {
    let ext_value = prop_oneof![
        Just(String::new()),
        token().prop_map(|t| format!("={t}")),
        "[ -!#-\\[\\]-~]{0,10}".prop_map(|q| format!(" = \"{q}\\\"\"")),
    ];
    prop::collection::vec((ows(), token(), ext_value), 0..3).prop_map(|exts| {
        exts.into_iter()
            .map(|(ws, name, v)| format!("{ws};{name}{v}"))
            .collect()
    })
}

fn body() -> impl Strategy<Value = Body> {
    let bytes = prop::collection::vec(any::<u8>(), 0..100);
    let chunk = (
        prop::collection::vec(any::<u8>(), 1..40),
        any::<bool>(),
        0..3usize,
        extensions(),
    );
    prop_oneof![
        Just(Body::None),
        (bytes, 0..3usize, any::<Index>()).prop_map(|(b, z, at)| Body::Length(b, z, at)),
        (
            prop::collection::vec(chunk, 0..5),
            extensions(),
            prop::collection::vec((plain_name(), value()), 0..3),
        )
            .prop_map(|(c, e, t)| Body::Chunked(c, e, t)),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        0..2usize,
        prop::sample::select(METHODS),
        target(),
        prop_oneof![Just(Version::Http10), Just(Version::Http11)],
        prop::option::of((host(), any::<Index>())),
        prop::collection::vec((plain_name(), value(), ows(), ows()), 0..8),
        prop::option::of(prop::sample::select(
            &["close", "keep-alive", "Keep-Alive, Upgrade", "upgrade"][..],
        )),
        body(),
    )
        .prop_map(
            |(leading_crlfs, method, target, version, host, fields, connection, body)| Request {
                leading_crlfs,
                // Only OPTIONS may ask about `*`.
                method: if target == "*" { "OPTIONS" } else { method },
                target,
                version,
                host,
                fields,
                connection,
                body,
            },
        )
}

impl Request {
    /// The fields as they go on the wire: (name, value, OWS before, OWS after).
    fn wire_fields(&self) -> Vec<(String, Vec<u8>, String, String)> {
        let mut fields = self.fields.clone();
        if let Some((host, at)) = &self.host {
            let field = (
                "Host".into(),
                host.clone().into_bytes(),
                " ".into(),
                "".into(),
            );
            fields.insert(at.index(fields.len() + 1), field);
        }
        if let Some(c) = self.connection {
            fields.push(("Connection".into(), c.into(), " ".into(), String::new()));
        }
        match &self.body {
            Body::None => {}
            Body::Length(b, zeros, at) => {
                let v = format!("{}{}", "0".repeat(*zeros), b.len());
                let field = (
                    "Content-Length".into(),
                    v.into_bytes(),
                    " ".into(),
                    "".into(),
                );
                fields.insert(at.index(fields.len() + 1), field);
            }
            Body::Chunked(..) => {
                let v = b"chunked".to_vec();
                fields.push(("Transfer-Encoding".into(), v, " ".into(), "\t".into()));
            }
        }
        fields
    }

    fn serialize(&self, out: &mut Vec<u8>) {
        out.extend(b"\r\n".repeat(self.leading_crlfs));
        let version = self.version.as_str();
        out.extend(format!("{} {} {version}\r\n", self.method, self.target).as_bytes());
        for (name, value, before, after) in self.wire_fields() {
            out.extend(format!("{name}:{before}").as_bytes());
            out.extend(&value);
            out.extend(format!("{after}\r\n").as_bytes());
        }
        out.extend(b"\r\n");
        match &self.body {
            Body::None => {}
            Body::Length(b, ..) => out.extend(b),
            Body::Chunked(chunks, last_ext, trailers) => {
                for (data, upper, zeros, ext) in chunks {
                    let size = match upper {
                        true => format!("{:X}", data.len()),
                        false => format!("{:x}", data.len()),
                    };
                    out.extend(format!("{}{size}{ext}\r\n", "0".repeat(*zeros)).as_bytes());
                    out.extend(data);
                    out.extend(b"\r\n");
                }
                out.extend(format!("0{last_ext}\r\n").as_bytes());
                for (name, value) in trailers {
                    out.extend(format!("{name}: ").as_bytes());
                    out.extend(value);
                    out.extend(b"\r\n");
                }
                out.extend(b"\r\n");
            }
        }
    }

    /// What the parser must report for this request.
    fn expected(&self) -> Message {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self
            .wire_fields()
            .into_iter()
            .map(|(n, v, ..)| (n.into_bytes(), v))
            .collect();
        let host_field = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        let hosts = fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"host"))
            .count();
        let (close, keep) = match self.connection {
            Some(c) => (c == "close", c.to_ascii_lowercase().contains("keep-alive")),
            None => (false, false),
        };
        let chunked = matches!(self.body, Body::Chunked(..));
        let keep_alive = match self.version {
            Version::Http10 => keep && !close && !chunked,
            Version::Http11 => !close,
        };
        let (framing, body, trailers) = match &self.body {
            Body::None => (BodyKind::None, Vec::new(), Vec::new()),
            Body::Length(b, ..) if b.is_empty() => (BodyKind::None, Vec::new(), Vec::new()),
            Body::Length(b, ..) => (BodyKind::Length(b.len() as u64), b.clone(), Vec::new()),
            Body::Chunked(chunks, _, trailers) => (
                BodyKind::Chunked,
                chunks.iter().flat_map(|c| c.0.clone()).collect(),
                trailers
                    .iter()
                    .map(|(n, v)| (n.clone().into_bytes(), v.clone()))
                    .collect(),
            ),
        };
        let (uri, query) = match self.target.split_once('?') {
            Some((uri, query)) => (uri, Some(query.to_string())),
            None => (self.target.as_str(), None),
        };
        // An absolute-form target: its path is what follows the authority, `/` if nothing
        // does, and its authority is the host.
        // (An origin-form target starts with `/`, whatever it contains.)
        let absolute = uri.split_once("://").filter(|_| !uri.starts_with('/'));
        let (path, host) = match absolute {
            Some((_, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let path = if path.is_empty() { "/" } else { path };
                (path, Some(authority.to_string()))
            }
            None => (uri, host_field),
        };
        Message {
            method: self.method.to_string(),
            target: self.target.clone(),
            path: path.to_string(),
            query,
            version: self.version,
            fields,
            framing,
            keep_alive,
            hosts,
            host,
            body,
            trailers,
        }
    }
}

fn pipeline() -> impl Strategy<Value = Vec<Request>> {
    prop::collection::vec(request(), 1..4)
}

fn serialize_all(requests: &[Request]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in requests {
        r.serialize(&mut bytes);
    }
    bytes
}

/// A change to a valid request: overwrite, insert or delete one byte.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(&b"\r\n \t:;,\"\\#0aF"[..]),
    ];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *m {
        Mutation::Set(ref i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        Mutation::Insert(ref i, b) => bytes.insert(i.index(bytes.len() + 1), b),
        Mutation::Delete(ref i) => {
            bytes.remove(i.index(bytes.len()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_round_trip_whole_split_and_in_pieces(
        requests in pipeline(),
        split in any::<Index>(),
        pieces in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let bytes = serialize_all(&requests);
        let expected: Vec<Message> = requests.iter().map(Request::expected).collect();
        let whole = run(&bytes, &[]);
        let clean = Outcome { messages: expected, open: None, error: None, used: bytes.len() };
        prop_assert_eq!(&whole, &clean);
        let at = split.index(bytes.len() + 1);
        prop_assert_eq!(&run(&bytes, &[at]), &whole, "split at {}", at);
        let cuts: Vec<usize> = pieces.iter().map(|i| i.index(bytes.len() + 1)).collect();
        prop_assert_eq!(&run(&bytes, &cuts), &whole, "cuts {:?}", cuts);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_agrees(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        split in any::<Index>(),
    ) {
        let whole = run(&bytes, &[]);
        prop_assert_eq!(run(&bytes, &[split.index(bytes.len() + 1)]), whole);
    }

    #[test]
    fn mutated_requests_never_panic_and_split_agrees(
        requests in pipeline(),
        mutations in prop::collection::vec(mutation(), 1..4),
        split in any::<Index>(),
    ) {
        let mut bytes = serialize_all(&requests);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        let whole = run(&bytes, &[]);
        prop_assert_eq!(run(&bytes, &[split.index(bytes.len() + 1)]), whole);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        split in any::<Index>(),
    ) {
        // Straight into the decoder, as if a chunked head had just been parsed.
        let mut input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let head = input.len();
        input.extend(&bytes);
        let whole = run(&input, &[]);
        prop_assert_eq!(run(&input, &[head + split.index(bytes.len() + 1)]), whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn oversized_heads_are_errors_never_partial(
        filler in prop::collection::vec(prop_oneof![0x20u8..=0x7E, Just(b'\t')], 64..512),
        garbage in prop::collection::vec(any::<u8>(), MAX_HEAD..MAX_HEAD + 64),
        split in any::<Index>(),
    ) {
        // Valid-looking fields that never end the head.
        let mut fields = b"GET / HTTP/1.1\r\n".to_vec();
        let mut n = 0;
        while fields.len() <= MAX_HEAD {
            fields.extend(format!("X-{n}: ").as_bytes());
            fields.extend(&filler);
            fields.extend(b"\r\n");
            n += 1;
        }
        // A request line that never ends.
        let mut line = b"GET /".to_vec();
        while line.len() <= MAX_REQUEST_LINE {
            line.extend(filler.iter().map(|&c| if c <= b' ' || c == b'#' { b'a' } else { c }));
        }
        for input in [&fields, &line, &garbage] {
            let mut p = RequestParser::new();
            let at = split.index(input.len());
            let first = p.parse(&input[..at]);
            prop_assert!(!matches!(first, Status::Complete(..)), "{:?}", first);
            let status = p.parse(input);
            prop_assert!(matches!(status, Status::Error(_)), "{:?}", status);
            prop_assert!(matches!(RequestParser::new().parse(input), Status::Error(_)));
        }
    }

    #[test]
    fn oversized_chunk_lines_and_trailers_are_errors_never_need_more(
        ext in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'='), Just(b';')], 64..256),
        garbage in prop::collection::vec(any::<u8>(), MAX_TRAILERS..MAX_TRAILERS + 64),
    ) {
        let mut line = b"1;".to_vec();
        while line.len() <= MAX_CHUNK_LINE {
            line.extend(&ext);
        }
        let mut trailers = b"0\r\n".to_vec();
        let mut n = 0;
        while trailers.len() <= MAX_TRAILERS + 16 {
            trailers.extend(format!("X-{n}: v\r\n").as_bytes());
            n += 1;
        }
        for input in [&line, &trailers, &garbage] {
            let mut d = ChunkedDecoder::new(MAX_BODY);
            let mut pos = 0;
            let end = loop {
                match d.decode(&input[pos..]) {
                    Err(e) => break Err(e),
                    Ok((0, Chunk::NeedMore)) => break Ok(()),
                    Ok((_, Chunk::End)) => break Ok(()),
                    Ok((used, _)) => pos += used,
                }
            };
            prop_assert!(end.is_err(), "{} bytes: {:?} at {}", input.len(), end, pos);
        }
    }
}

/// The generators produce what they claim: a known serialization parses to the known message.
#[test]
fn serializer_writes_what_a_client_would() {
    let r = Request {
        leading_crlfs: 1,
        method: "POST",
        target: "/a?b".into(),
        version: Version::Http11,
        host: None,
        fields: vec![("Host".into(), b"x".to_vec(), "\t".into(), " ".into())],
        connection: Some("close"),
        body: Body::Chunked(
            vec![(b"hello".to_vec(), true, 1, ";a=b".into())],
            String::new(),
            vec![("T".into(), b"1".to_vec())],
        ),
    };
    let mut bytes = Vec::new();
    r.serialize(&mut bytes);
    assert_eq!(
        bytes,
        b"\r\nPOST /a?b HTTP/1.1\r\nHost:\tx \r\nConnection: close\r\n\
          Transfer-Encoding: chunked\t\r\n\r\n05;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n"
    );
    let Outcome {
        messages,
        open,
        error,
        used,
    } = run(&bytes, &[]);
    assert_eq!((open, error, used), (None, None, bytes.len()));
    assert_eq!(messages, vec![r.expected()]);
    assert!(!messages[0].keep_alive);
    assert_eq!(messages[0].body, b"hello");
    assert_eq!(messages[0].path, "/a");
    assert_eq!(messages[0].query.as_deref(), Some("b"));
    assert_eq!(messages[0].host.as_deref(), Some("x"));
}
