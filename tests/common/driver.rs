//! A server's reading of one connection's bytes, shared by the conformance test, the property
//! tests and the fuzz target: parse a head, read the body (by `Content-Length` or chunked,
//! collecting trailers), then parse the next pipelined request.
//!
//! Each consumer includes this file with `#[path = ...] mod driver;` rather than through
//! `tests/common`, so the fuzz crate can use it too. On the way it asserts the limits that must
//! hold for any input: a head is never Partial with [`MAX_HEAD`] bytes or more, the chunked
//! decoder never waits for more past its line and trailer limits, and nothing consumes bytes it
//! was not given.

use cerberus::http::{
    BodyKind, Chunk, ChunkedDecoder, Head, ParseError, RequestParser, Status, Version,
    MAX_CHUNK_LINE, MAX_HEAD, MAX_TRAILERS,
};

/// How a consumer wants the connection read.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Largest de-chunked body the decoder accepts; small ones exercise the limit.
    pub max_body: u64,
    /// Stop after a message that is not keep-alive, as a server does: any byte after it is
    /// [`Failure::DataAfterClose`]. When false the driver pipelines regardless, so that every
    /// byte gets parsed, and the messages record `keep_alive` for the caller to check.
    pub honour_close: bool,
}

/// Everything the parser and decoder report about one request, body included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub method: String,
    pub target: String,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    pub framing: BodyKind,
    pub keep_alive: bool,
    pub hosts: usize,
    /// The authority of an absolute-form target, else the `Host` value.
    pub host: Option<String>,
    pub body: Vec<u8>,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why the driver stopped with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Parse(ParseError),
    /// Bytes after a message that ends the connection (llhttp: "Data after `Connection: close`").
    /// Only with [`Config::honour_close`].
    DataAfterClose,
}

/// What a run saw once every byte was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Messages whose body was read to its end, in order.
    pub messages: Vec<Message>,
    /// The message whose body was still being read, as far as it got.
    pub open: Option<Message>,
    /// The first error; nothing after it was parsed.
    pub error: Option<Failure>,
    /// How many input bytes were used.
    pub used: usize,
}

/// Feed `input` in pieces ending at each of `cuts` (any order, any value), then whole.
pub fn run(input: &[u8], cuts: &[usize], config: Config) -> Outcome {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut d = Driver::new(config);
    for c in cuts {
        d.feed(&input[..c]);
    }
    d.feed(input);
    Outcome {
        messages: d.done,
        open: d.open,
        error: d.error,
        used: d.pos,
    }
}

/// What the driver is waiting for.
enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The last message was not keep-alive (with `honour_close`): nothing may follow.
    Closed,
}

/// A connection's worth of parsing: owns the parser, borrows nothing between calls.
struct Driver {
    config: Config,
    parser: RequestParser,
    state: State,
    /// Offset of the first byte not yet used.
    pos: usize,
    /// The message whose body is being read.
    open: Option<Message>,
    done: Vec<Message>,
    error: Option<Failure>,
}

impl Driver {
    fn new(config: Config) -> Driver {
        Driver {
            config,
            parser: RequestParser::new(),
            state: State::Head,
            pos: 0,
            open: None,
            done: Vec::new(),
            error: None,
        }
    }

    /// Use what can be used of `input`, which extends what the previous call saw.
    fn feed(&mut self, input: &[u8]) {
        while self.error.is_none() {
            let rest = &input[self.pos..];
            match &mut self.state {
                State::Closed if rest.is_empty() => return,
                State::Closed => self.error = Some(Failure::DataAfterClose),
                State::Head => match self.parser.parse(rest) {
                    Status::Complete(head, n) => {
                        assert!(n <= MAX_HEAD && n <= rest.len(), "consumed {n}");
                        let message = message_of(&head);
                        self.state = match message.framing {
                            BodyKind::None => State::Length(0),
                            BodyKind::Length(n) => State::Length(n),
                            BodyKind::Chunked => {
                                State::Chunked(ChunkedDecoder::new(self.config.max_body))
                            }
                        };
                        self.open = Some(message);
                        self.pos += n;
                    }
                    Status::Partial => {
                        assert!(rest.len() < MAX_HEAD, "Partial with {} bytes", rest.len());
                        return;
                    }
                    Status::Error(e) => self.error = Some(Failure::Parse(e)),
                },
                State::Length(0) => self.finish(),
                State::Length(_) if rest.is_empty() => return,
                State::Length(remaining) => {
                    let n = (*remaining).min(rest.len() as u64) as usize;
                    *remaining -= n as u64;
                    self.message().body.extend_from_slice(&rest[..n]);
                    self.pos += n;
                }
                State::Chunked(decoder) => match decoder.decode(rest) {
                    Err(e) => self.error = Some(Failure::Parse(e)),
                    Ok((used, chunk)) => {
                        if self.chunk(rest, used, chunk) {
                            return;
                        }
                    }
                },
            }
        }
    }

    /// Take one decoded piece of a chunked body; true when the decoder needs more input.
    fn chunk(&mut self, rest: &[u8], used: usize, chunk: Chunk) -> bool {
        assert!(used <= rest.len());
        self.pos += used;
        match chunk {
            Chunk::Data(d) => {
                assert!(!d.is_empty() && d.len() == used);
                self.message().body.extend_from_slice(d);
            }
            Chunk::Trailer(n, v) => self.message().trailers.push((n.to_vec(), v.to_vec())),
            Chunk::End => self.finish(),
            Chunk::NeedMore if used == 0 => {
                let limit = MAX_CHUNK_LINE.max(MAX_TRAILERS);
                assert!(rest.len() < limit, "NeedMore with {} bytes", rest.len());
                return true;
            }
            Chunk::NeedMore => {}
        }
        false
    }

    fn message(&mut self) -> &mut Message {
        self.open.as_mut().expect("a message is open")
    }

    fn finish(&mut self) {
        let message = self.open.take().expect("a message is open");
        let close = self.config.honour_close && !message.keep_alive;
        self.done.push(message);
        self.state = if close { State::Closed } else { State::Head };
    }
}

/// A message with what `head` says and no body yet.
fn message_of(head: &Head) -> Message {
    Message {
        method: head.method().to_string(),
        target: head.target().to_string(),
        path: head.path().to_string(),
        query: head.query().map(str::to_string),
        version: head.version(),
        fields: head
            .fields()
            .map(|f| (f.name.to_vec(), f.value.to_vec()))
            .collect(),
        framing: head.body(),
        keep_alive: head.keep_alive(),
        hosts: head.host_count(),
        host: head.host().map(str::to_string),
        body: Vec::new(),
        trailers: Vec::new(),
    }
}
